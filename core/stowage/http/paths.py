"""The one function that turns a request path into a repository path.

Blobs are stored by digest, never by path, so a bad path cannot reach the filesystem; this still refuses
anything that could mean another location (``..``, encoded traversal, backslashes, absolute or empty
segments, control characters) so that no two spellings name one asset and browse URLs stay sane.
"""

from __future__ import annotations

import re
import unicodedata
from urllib.parse import unquote

from stowage.errors import InvalidPath

MAX_PATH_LENGTH = 4096
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def clean_path(raw: str, *, allow_trailing_slash: bool = True) -> str:
    """Decode and validate a percent-encoded path below a repository (without its leading ``/``).

    Returns the NFC-normalised path with ``/`` separators; a trailing ``/`` (a directory) is kept when
    allowed. Raises :class:`~stowage.errors.InvalidPath` otherwise.
    """
    if len(raw) > MAX_PATH_LENGTH:
        raise InvalidPath("path is too long")
    try:
        decoded = unquote(raw, encoding="utf-8", errors="strict")
    except UnicodeDecodeError:
        raise InvalidPath("path is not valid UTF-8") from None
    if "%" in decoded and decoded != unquote(decoded):
        raise InvalidPath("path is encoded more than once")
    if "\\" in decoded:
        raise InvalidPath("backslashes are not allowed in paths")
    if _CONTROL.search(decoded):
        raise InvalidPath("control characters are not allowed in paths")
    decoded = unicodedata.normalize("NFC", decoded)
    if decoded.startswith("/"):
        raise InvalidPath("absolute paths are not allowed")
    directory = decoded.endswith("/")
    if directory:
        if not allow_trailing_slash:
            raise InvalidPath("path must name a file, not a directory")
        decoded = decoded[:-1]
    if not decoded:
        return "/" if directory else ""
    for segment in decoded.split("/"):
        if segment in ("", ".", ".."):
            raise InvalidPath(f"path segment {segment!r} is not allowed")
    return decoded + "/" if directory else decoded
