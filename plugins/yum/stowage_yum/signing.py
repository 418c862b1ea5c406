"""GPG signing of ``repomd.xml`` with a repository's configured key (``yumSigning.keypair``).

Uses the ``gpg`` command in a private, throw-away home directory per operation, so the server's own
keyrings are never touched and nothing secret stays on disk after the call.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import tempfile
from typing import TYPE_CHECKING, Iterator

from stowage.plugin import ConfigurationError

if TYPE_CHECKING:
    from stowage.plugin import App

    from stowage_yum.settings import YumSigningSettings


def gpg_binary() -> str:
    found = shutil.which("gpg")
    if found is None:
        raise ConfigurationError("yumSigning is configured but the gpg command is not installed")
    return found


def _run(home: str, args: list[str], data: bytes | None = None) -> bytes:
    result = subprocess.run([gpg_binary(), "--homedir", home, "--batch", "--no-tty", "--quiet", *args],
                            input=data, capture_output=True, timeout=60)
    if result.returncode != 0:
        raise ConfigurationError(f"gpg {' '.join(a for a in args if not a.startswith('/'))} failed: "
                                 f"{result.stderr.decode(errors='replace').strip()}")
    return result.stdout


@contextlib.contextmanager
def _with_key(settings: "YumSigningSettings") -> Iterator[str]:
    """A private gpg home holding the key; its agent is stopped and the directory removed afterwards.

    The home is made under the system temp directory: gpg-agent's socket path must stay short.
    """
    home = tempfile.mkdtemp(prefix="stowage-gpg-")
    try:
        _run(home, ["--import"], settings.keypair.encode())
        yield home
    finally:
        gpgconf = shutil.which("gpgconf")
        if gpgconf is not None:
            subprocess.run([gpgconf, "--homedir", home, "--kill", "gpg-agent"], capture_output=True, timeout=30)
        shutil.rmtree(home, ignore_errors=True)


def sign(stowage: "App", settings: "YumSigningSettings", data: bytes) -> bytes:
    """An ASCII-armoured detached signature of ``data``."""
    with _with_key(settings) as home:
        passphrase_file = f"{home}/passphrase"
        with open(passphrase_file, "w", encoding="utf-8") as handle:
            handle.write(settings.passphrase)
        data_file = f"{home}/data"
        with open(data_file, "wb") as handle:
            handle.write(data)
        return _run(home, ["--pinentry-mode", "loopback", "--passphrase-file", passphrase_file, "--armor",
                           "--detach-sign", "--output", "-", data_file])


def public_key(stowage: "App", settings: "YumSigningSettings") -> bytes:
    """The ASCII-armoured public key clients import (``gpgkey=.../repodata/repomd.xml.key``)."""
    with _with_key(settings) as home:
        return _run(home, ["--armor", "--export"])
