"""Domain errors. Code raises these; ``stowage.http.errors`` turns them into HTTP in one place.

Every error has a stable ``code`` (clients and tests match on it) and an HTTP ``status``.
"""

from __future__ import annotations


class StowageError(Exception):
    """Base of every error Stowage reports to a client."""

    code: str = "INTERNAL_ERROR"
    status: int = 500

    def __init__(self, message: str, *, detail: object = None, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.message = message
        self.detail = detail
        self.headers = dict(headers or {})


class BadRequest(StowageError):
    code, status = "BAD_REQUEST", 400


class InvalidPath(BadRequest):
    code = "INVALID_PATH"


class InvalidContent(BadRequest):
    code = "INVALID_CONTENT"


class DigestMismatch(BadRequest):
    code = "DIGEST_INVALID"


class Unauthorized(StowageError):
    code, status = "UNAUTHORIZED", 401


class Forbidden(StowageError):
    code, status = "DENIED", 403


class NotFound(StowageError):
    code, status = "NOT_FOUND", 404


class RepositoryNotFound(NotFound):
    code = "REPOSITORY_NOT_FOUND"


class MethodNotAllowed(StowageError):
    code, status = "METHOD_NOT_ALLOWED", 405

    def __init__(self, message: str, *, allowed: list[str] | None = None, **kwargs):
        super().__init__(message, **kwargs)
        if allowed:
            self.headers.setdefault("Allow", ", ".join(allowed))


class TooManyRequests(StowageError):
    """Refused for now (sign-in throttling); ``Retry-After`` says for how long."""

    code, status = "TOO_MANY_REQUESTS", 429


class ValidationFailed(BadRequest):
    """A request body that misses or mistypes fields: ``detail`` is Nexus's ``ValidationErrorXO`` list,
    ``[{"id": "PARAMETER <field>", "message": ...}]``, which is also the response body."""

    code = "VALIDATION_FAILED"

    def __init__(self, errors: list[dict[str, str]], **kwargs):
        super().__init__("; ".join(f"{e['id']}: {e['message']}" for e in errors), detail=errors, **kwargs)


class Conflict(StowageError):
    code, status = "CONFLICT", 409


class WritePolicyViolation(StowageError):
    """A write the hosted repository's ``storage.writePolicy`` does not allow (Nexus answers 400)."""

    code, status = "WRITE_POLICY", 400


class NamePolicyViolation(StowageError):
    code, status = "NAME_POLICY", 403


class IncompleteBody(BadRequest):
    """The request body ended before its length or last chunk: the client went away or broke the framing."""

    code = "INCOMPLETE_BODY"


class RequestTimeout(StowageError):
    """The client stopped sending the request body for longer than the server waits."""

    code, status = "REQUEST_TIMEOUT", 408


class PayloadTooLarge(StowageError):
    code, status = "PAYLOAD_TOO_LARGE", 413


class LengthRequired(StowageError):
    code, status = "LENGTH_REQUIRED", 411


class UnsupportedMediaType(StowageError):
    code, status = "UNSUPPORTED_MEDIA_TYPE", 415


class RangeNotSatisfiable(StowageError):
    code, status = "RANGE_NOT_SATISFIABLE", 416


class InsufficientStorage(StowageError):
    """The server's disk (or quota) is full: nothing was stored, the client may retry once room is made.

    Raised by :func:`stowage.http.errors.storage_error` for ``ENOSPC``/``EDQUOT``/``EFBIG`` and SQLite's
    ``SQLITE_FULL`` wherever they surface, so every format answers 507 in its own error envelope.
    """

    code, status = "INSUFFICIENT_STORAGE", 507


class NotSupported(StowageError):
    """The configured blob store or server cannot do what the request needs (e.g. resumable uploads)."""

    code, status = "UNSUPPORTED", 501


class ConfigurationError(StowageError):
    """A repository or server setting that cannot be applied; names the offending key or member."""

    code, status = "INVALID_CONFIGURATION", 400


class InvalidSettings(ConfigurationError):
    """Settings (a repository body, a configuration file's table) that break their schema field by field:
    ``detail`` is Nexus's ``ValidationErrorXO`` list, ``[{"id": "PARAMETER <field>", "message": ...}]``,
    which the REST API answers; the message joins the field messages (what the command line prints)."""

    def __init__(self, errors: list[dict[str, str]], **kwargs):
        super().__init__("; ".join(e["message"] for e in errors), detail=errors, **kwargs)


class FormatUnavailable(StowageError):
    """The repository's format plugin is not installed or failed to load; nothing is lost."""

    code, status = "FORMAT_UNAVAILABLE", 503


class SecretUnreadable(StowageError):
    """A secret stored in the catalog cannot be opened on this node (sealed with another secret key)."""

    code, status = "SECRET_UNREADABLE", 503


class RepositoryOffline(StowageError):
    code, status = "REPOSITORY_OFFLINE", 503


class UpstreamError(StowageError):
    """The proxy's remote failed and nothing usable is cached."""

    code, status = "UPSTREAM_ERROR", 502


class UpstreamTimeout(UpstreamError):
    code, status = "UPSTREAM_TIMEOUT", 504


class UpstreamBlocked(UpstreamError):
    code, status = "UPSTREAM_BLOCKED", 503


class PluginError(StowageError):
    code = "PLUGIN_ERROR"
