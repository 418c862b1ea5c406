"""The server's signing key: ``[server] secretKey``, else ``STOWAGE_SECRET_KEY``, else a file in the data
directory created once and shared by every worker of the node.

The key signs tokens that are checked without a catalog lookup (Docker bearer tokens). It is never kept in
the catalog: a copy of the catalog (a backup, a stolen file) must not be enough to forge a token. It is
loaded when the application object is built, so a worker never answers a token request without it.
Nodes of a cluster must be given the same ``secretKey``: each node would otherwise generate its own and
refuse the others' tokens.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from pathlib import Path

from stowage.errors import ConfigurationError

ENVIRONMENT_VARIABLE = "STOWAGE_SECRET_KEY"
FILE_NAME = "secret.key"


def load_secret_key(configured: str, data_dir: Path) -> bytes:
    """The key from the configuration, the environment or ``<data_dir>/secret.key`` (created when absent)."""
    value = configured or os.environ.get(ENVIRONMENT_VARIABLE, "")
    if value:
        return value.encode()
    path = data_dir / FILE_NAME
    try:
        return _read(path)
    except FileNotFoundError:
        pass
    data_dir.mkdir(parents=True, exist_ok=True)
    # Written to a private temporary file, then linked into place: link() fails when another worker won
    # the race, and a reader never sees a half-written key.
    temporary = data_dir / f".{FILE_NAME}.{os.getpid()}.{secrets.token_hex(4)}"
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_hex(32) + "\n")
        try:
            os.link(temporary, path)
        except FileExistsError:
            pass
    finally:
        temporary.unlink(missing_ok=True)
    return _read(path)


def _read(path: Path) -> bytes:
    text = path.read_text().strip()
    if len(text) < 32:
        raise ConfigurationError(f"{path} holds no usable secret key (at least 32 characters); delete it "
                                 f"to have a new one generated, or set [server] secretKey")
    return text.encode()


def derive_key(secret: bytes, purpose: str) -> bytes:
    """A key for one purpose (``docker-token``, ...): a token of one kind never verifies as another."""
    return hmac.new(secret, purpose.encode(), hashlib.sha256).digest()
