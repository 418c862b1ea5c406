"""The one place domain errors become HTTP responses, in the body each client expects."""

from __future__ import annotations

import errno
import json
import logging
import sqlite3
from typing import TYPE_CHECKING, Any

import falcon
from falcon.app_helpers import default_serialize_error

from stowage.errors import BadRequest, InsufficientStorage, InvalidSettings, StowageError, ValidationFailed
from stowage.formats import default_error_body

if TYPE_CHECKING:
    from stowage.stowage import Stowage

log = logging.getLogger("stowage.http")

#: where errors answer Nexus's JSON shapes whatever the Accept header says.
REST_PREFIX = "/service/rest/"


def rest_error_body(error: StowageError) -> bytes:
    """Nexus's error shapes: its validation list for field errors, else an object with a ``message``."""
    if isinstance(error, (ValidationFailed, InvalidSettings)):
        return json.dumps(error.detail).encode()
    return json.dumps({"code": error.code, "message": error.message}).encode()


def _serialize_http_error(req: falcon.Request, resp: falcon.Response, error: falcon.HTTPError) -> None:
    """Falcon's own errors (unknown route, 405...) under ``/service/rest`` carry a ``message`` too:
    clients that read Nexus's error shape must not crash on ``{"title": ...}``."""
    if not req.path.startswith(REST_PREFIX):
        default_serialize_error(req, resp, error)
        return
    message = error.description or (f"no such endpoint: {req.method} {req.path}" if error.status_code == 404
                                    else error.title or "error")
    # "405 Method Not Allowed" -> METHOD_NOT_ALLOWED, like the codes of Stowage's own errors
    code = (error.title or "").lstrip("0123456789 ").upper().replace(" ", "_") or f"HTTP_{error.status_code}"
    resp.content_type = "application/json"
    resp.data = json.dumps({"code": code, "message": message}).encode()


def install_error_handlers(app: falcon.App, stowage: "Stowage") -> None:
    def handle_stowage_error(req: falcon.Request, resp: falcon.Response, error: StowageError, params: Any) -> None:
        renderer = getattr(req.context, "error_renderer", None)
        request = getattr(req.context, "repo_request", None)
        translate = getattr(req.context, "error_translator", None)
        if translate is not None:  # the format's code and status for core's errors (FormatHandler.translate_error)
            error = translate(error)
        if renderer is not None:
            content_type, body = renderer(request, error)
        elif req.path.startswith(REST_PREFIX):
            content_type, body = "application/json", rest_error_body(error)
        else:
            content_type, body = default_error_body(error, req.get_header("Accept") or "")
        _close_stream(resp)
        resp.status = falcon.code_to_http_status(error.status)
        resp.content_type = content_type
        resp.data = body
        resp.content_length = len(body)
        for name, value in error.headers.items():
            resp.set_header(name, value)
        if error.status >= 500:
            log.warning("%s %s: %s %s", req.method, req.path, error.code, error.message)

    def handle_unexpected(req: falcon.Request, resp: falcon.Response, error: Exception, params: Any) -> None:
        if isinstance(error, falcon.HTTPError):
            raise error  # falcon's own (404 for unknown routes, 405...) keep their behaviour
        full = storage_error(error)
        if full is not None:
            handle_stowage_error(req, resp, full, params)
            return
        if isinstance(error, UnicodeDecodeError):
            # Bytes from the request that had to be text (a header, a form field name): the client's fault.
            # Logged with its traceback all the same: the place that decoded them should say so itself.
            log.warning("undecodable request bytes in %s %s", req.method, req.path, exc_info=error)
            handle_stowage_error(req, resp, BadRequest(f"the request has bytes that are not valid UTF-8 "
                                                       f"where text is expected: {error.reason}"), params)
            return
        log.exception("unhandled error in %s %s", req.method, req.path)
        handle_stowage_error(req, resp, StowageError("internal error; see the server log"), params)

    app.set_error_serializer(_serialize_http_error)
    app.add_error_handler(Exception, handle_unexpected)
    app.add_error_handler(StowageError, handle_stowage_error)


#: errno values that mean "no room to write": a full disk, a full quota, a file-size limit.
_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})


def storage_error(error: BaseException) -> InsufficientStorage | None:
    """The 507 to answer when ``error`` (or one it was raised from) says the disk or quota is full."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, OSError) and current.errno in _FULL_ERRNOS:
            return InsufficientStorage("insufficient storage: the server's disk is full; nothing was stored "
                                       "(retry once room is made)")
        if isinstance(current, sqlite3.Error) and getattr(current, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL:
            return InsufficientStorage("insufficient storage: the catalog's disk is full; nothing was stored "
                                       "(retry once room is made)")
        current = current.__cause__ or current.__context__
    return None


def _close_stream(resp: falcon.Response) -> None:
    stream = resp.stream
    if stream is not None and hasattr(stream, "close"):
        stream.close()
    resp.stream = None
