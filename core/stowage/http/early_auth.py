"""Refusing an unauthenticated upload on its head, before its body is read (``Expect: 100-continue``).

A client that sends ``Expect: 100-continue`` (curl does for bodies over 1 MiB) waits for the server's
``100 Continue`` before sending the body. waitress answers 100 by itself as soon as the headers are in,
then receives and spools the whole body before the application sees the request, so an anonymous PUT of
a 1 GiB file was refused only after the gigabyte had been uploaded. The bundled server asks
:meth:`EarlyAuth.refuses` first (:class:`stowage.server.EarlyAuthParser`); when it says yes, no 100 is
sent, the body is never read, and the request reaches the application with an empty body and
:data:`EARLY_REFUSED` in its environ, which makes the same code that decides the 401 answer it (with the
format's own challenge), audited and logged like any other refusal; the connection is then closed.

Only what is certain without the body is refused early: a write without an ``Authorization`` header to
``/repository/<name>/...`` that the permission check would answer 401, and a REST call while anonymous
access is off. Anything else (a wrong password, a 403, a missing repository) takes the ordinary path.
"""

from __future__ import annotations

import io
import logging
import sys
from typing import TYPE_CHECKING, Mapping

import falcon

from stowage.errors import Unauthorized

if TYPE_CHECKING:
    from stowage.http.repository_resource import RepositorySink
    from stowage.stowage import Stowage

log = logging.getLogger(__name__)

#: set in the WSGI environ of a request whose body the server refused to read.
EARLY_REFUSED = "stowage.early_refused"
#: methods whose body an early refusal saves (GET/HEAD/DELETE carry none worth saving).
BODY_METHODS = frozenset({"PUT", "POST", "PATCH"})
REPOSITORY_PREFIX = "/repository/"


class EarlyAuth:
    def __init__(self, stowage: "Stowage", sink: "RepositorySink"):
        self.stowage = stowage
        self.sink = sink

    def refuses(self, method: str, path: str, request_uri: str, headers: Mapping[str, str]) -> bool:
        """Whether a request with this head is refused 401 whatever its body.

        ``headers`` as waitress keeps them (``AUTHORIZATION``, ``CONTENT_TYPE``: upper case, underscores).
        Never raises: when in doubt the request takes the ordinary path.
        """
        if method.upper() not in BODY_METHODS or headers.get("AUTHORIZATION"):
            return False
        try:
            if path.startswith(REPOSITORY_PREFIX):
                return self._repository_refuses(method, path, request_uri, headers)
            from stowage.http.anonymous import gate_refuses

            if headers.get("COOKIE"):
                return False  # a web UI session may authorise it: not certain, the ordinary path decides
            return gate_refuses(self.stowage, path, authorized=False)
        except Exception:
            log.debug("early authorization check failed; the request takes the ordinary path", exc_info=True)
            return False

    def _repository_refuses(self, method: str, path: str, request_uri: str, headers: Mapping[str, str]) -> bool:
        environ = {"REQUEST_METHOD": method.upper(), "PATH_INFO": path, "REQUEST_URI": request_uri,
                   "QUERY_STRING": "", "SERVER_NAME": "localhost", "SERVER_PORT": "80",
                   "SERVER_PROTOCOL": "HTTP/1.1", "wsgi.url_scheme": "http", "wsgi.input": io.BytesIO(),
                   "wsgi.errors": sys.stderr, "CONTENT_LENGTH": "0"}
        for key, value in headers.items():
            if key not in ("CONTENT_LENGTH", "CONTENT_TYPE"):
                environ["HTTP_" + key] = value
        try:
            self.sink.authorize(falcon.Request(environ), falcon.Response())
        except Unauthorized:
            return True
        except Exception:
            return False  # 403, 404, a bad path: the ordinary path answers them
        return False
