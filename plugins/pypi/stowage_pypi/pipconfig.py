"""``@pip-index@``: the index that pip on this machine is configured to use, read from pip's own
configuration, so a shared Stowage configuration names no index host.

Resolution follows pip (https://pip.pypa.io/en/stable/topics/configuration/), highest priority first:

1. the ``PIP_INDEX_URL`` environment variable;
2. ``PIP_CONFIG_FILE`` (when it is ``/dev/null`` no file is read at all, as in pip);
3. the site file ``<sys.prefix>/pip.conf``;
4. the user files ``$XDG_CONFIG_HOME/pip/pip.conf`` (``~/.config/pip/pip.conf``) and ``~/.pip/pip.conf``
   (skipped when ``PIP_CONFIG_FILE`` names an existing file, as in pip);
5. the global files ``<dir>/pip/pip.conf`` for each of ``$XDG_CONFIG_DIRS`` (``/etc/xdg``) and
   ``/etc/pip.conf``;

in each file the ``[install]`` section's ``index-url`` before ``[global]``'s; and pip's built-in default,
``https://pypi.org/simple``, when none sets it.
"""

from __future__ import annotations

import configparser
import os
import sys
from pathlib import Path
from typing import Mapping

PLACEHOLDER = "@pip-index@"
PIP_DEFAULT_INDEX = "https://pypi.org/simple"


def config_files(environ: Mapping[str, str]) -> list[Path]:
    """pip's configuration files, lowest priority first (later files override earlier ones)."""
    env_file = environ.get("PIP_CONFIG_FILE")
    if env_file == os.devnull:
        return []
    files: list[Path] = []
    xdg_dirs = environ.get("XDG_CONFIG_DIRS") or "/etc/xdg"
    files += [Path(d) / "pip" / "pip.conf" for d in reversed(xdg_dirs.split(os.pathsep)) if d]
    files.append(Path("/etc/pip.conf"))
    if not (env_file and Path(env_file).exists()):
        home = Path(environ.get("HOME") or Path.home())
        files.append(home / ".pip" / "pip.conf")
        files.append(Path(environ.get("XDG_CONFIG_HOME") or home / ".config") / "pip" / "pip.conf")
    files.append(Path(sys.prefix) / "pip.conf")
    if env_file:
        files.append(Path(env_file))
    return files


def pip_index_url(environ: Mapping[str, str] | None = None) -> str:
    """The index URL pip would install from on this machine."""
    environ = os.environ if environ is None else environ
    if environ.get("PIP_INDEX_URL"):
        return environ["PIP_INDEX_URL"].split()[0]
    found = None
    for path in config_files(environ):
        parser = configparser.RawConfigParser()
        try:
            parser.read(path, encoding="utf-8")
        except (OSError, configparser.Error):
            continue
        for section in ("global", "install"):  # [install] overrides [global] within a file
            if parser.has_option(section, "index-url"):
                found = parser.get(section, "index-url").strip().split()[0] or found
            elif parser.has_option(section, "index_url"):
                found = parser.get(section, "index_url").strip().split()[0] or found
    return found or PIP_DEFAULT_INDEX


def expand_remote_url(url: str) -> str:
    """``Format.expand_remote_url`` for pypi: replaces ``@pip-index@``; any other URL is kept."""
    if url.strip() == PLACEHOLDER:
        return pip_index_url()
    return url
