"""The plugin test kit: build apps with chosen plugins, call them, run them on a loopback port.

Installed as a pytest plugin (``pytest11`` entry point ``stowage``), so every plugin's tests get the
fixtures in :mod:`stowage.testing.fixtures` without importing anything.
"""

from stowage.testing.harness import (ADMIN_PASSWORD, LiveServer, TestStowage, build_stowage, free_port,
                                     python_process)
from stowage.testing.upstream import FaultUpstream, LoggedRequest, curl_first_byte, file_sha256, sparse_file

__all__ = ["ADMIN_PASSWORD", "FaultUpstream", "LiveServer", "LoggedRequest", "TestStowage", "build_stowage",
           "curl_first_byte", "file_sha256", "free_port", "python_process", "sparse_file"]
