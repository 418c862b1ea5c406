"""Registry errors in the distribution spec's envelope: ``{"errors": [{"code", "message", "detail"}]}``.

Core's errors are translated once, at the edge of a registry request (:func:`translate`), so the status
and the code a client sees are the spec's (``DENIED`` for a policy refusal, ``UNSUPPORTED`` for a push to
a group...).
"""

from __future__ import annotations

import json

from stowage.plugin import StowageError


class RegistryError(StowageError):
    """An error with one of the spec's codes (``BLOB_UNKNOWN``, ``MANIFEST_INVALID``...)."""

    def __init__(self, code: str, message: str, *, status: int, detail: object = None,
                 headers: dict[str, str] | None = None):
        super().__init__(message, detail=detail, headers=headers)
        self.code = code
        self.status = status


def blob_unknown(digest: str) -> RegistryError:
    return RegistryError("BLOB_UNKNOWN", f"blob unknown to registry: {digest}", status=404, detail={"digest": digest})


def manifest_unknown(reference: str) -> RegistryError:
    return RegistryError("MANIFEST_UNKNOWN", f"manifest unknown: {reference}", status=404,
                         detail={"reference": reference})


def name_unknown(name: str) -> RegistryError:
    return RegistryError("NAME_UNKNOWN", f"repository name not known to registry: {name}", status=404,
                         detail={"name": name})


def upload_unknown(upload_id: str) -> RegistryError:
    return RegistryError("BLOB_UPLOAD_UNKNOWN", f"blob upload unknown: {upload_id}", status=404)


def digest_invalid(message: str) -> RegistryError:
    return RegistryError("DIGEST_INVALID", message, status=400)


def unsupported(message: str) -> RegistryError:
    return RegistryError("UNSUPPORTED", message, status=405)


#: core error code -> (spec code, status)
_CORE = {
    "DIGEST_INVALID": ("DIGEST_INVALID", 400),
    "UNAUTHORIZED": ("UNAUTHORIZED", 401),
    "DENIED": ("DENIED", 403),
    "NAME_POLICY": ("DENIED", 403),
    "WRITE_POLICY": ("DENIED", 403),
    "METHOD_NOT_ALLOWED": ("UNSUPPORTED", 405),
    "INVALID_CONTENT": ("SIZE_INVALID", 400),
    "INVALID_PATH": ("NAME_INVALID", 400),
    "REPOSITORY_NOT_FOUND": ("NAME_UNKNOWN", 404),
    "REPOSITORY_OFFLINE": ("UNAVAILABLE", 503),
    "NOT_FOUND": ("NAME_UNKNOWN", 404),
    "PAYLOAD_TOO_LARGE": ("SIZE_INVALID", 413),
    "BAD_REQUEST": ("UNSUPPORTED", 400),
    "UNSUPPORTED": ("UNSUPPORTED", 501),
    "TOO_MANY_REQUESTS": ("TOOMANYREQUESTS", 429),
}


def translate(error: StowageError) -> StowageError:
    """The spec's code and status for a core error (upstream and server errors keep theirs)."""
    if isinstance(error, RegistryError):
        return error
    found = _CORE.get(error.code)
    if found is None:
        return error
    code, status = found
    return RegistryError(code, error.message, status=status, detail=error.detail, headers=error.headers)


def error_body(error: StowageError) -> tuple[str, bytes]:
    code = error.code if isinstance(error, RegistryError) else translate(error).code
    entry: dict[str, object] = {"code": code, "message": error.message}
    if error.detail is not None:
        entry["detail"] = error.detail
    return "application/json", json.dumps({"errors": [entry]}).encode()
