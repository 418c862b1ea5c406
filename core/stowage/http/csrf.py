"""Cross-site request forgery: a browser that holds a user's credentials must not act for another site.

A browser sends the credentials it holds (HTTP basic from an earlier sign-in, cookies) with any request a
page makes, whichever site the page came from. Format clients (pip, twine, npm, docker, skopeo, dnf, curl)
never send cookies, ``Origin`` or ``Sec-Fetch-Site``, so a state-changing request that does is a browser's,
and it must prove it comes from a page of Stowage's own origin: the ``NX-ANTI-CSRF-TOKEN`` header equal to
the cookie of the same name (Nexus's names; a page of another site can neither read our cookie nor send
a custom header without a CORS pre-flight we never grant). A same-origin ``fetch`` without cookies passes
on its matching ``Origin``.

Without a session the token is a double-submit value. A request that carries a live web UI session
cookie (:mod:`stowage.http.session`) must instead repeat that session's own token, which the UI's pages
put in a hidden field of every form: a token read or planted elsewhere (a sibling sub-domain can set
cookies for ours) never acts with a session. The UI's plain HTML forms (sign-in, sign-out) send the token
as the form field ``NX-ANTI-CSRF-TOKEN``; everything else sends the header.
"""

from __future__ import annotations

import hmac
import secrets
from typing import TYPE_CHECKING
from urllib.parse import parse_qs, urlsplit

import falcon

from stowage.errors import BadRequest, Forbidden
from stowage.http.request import external_base_url
from stowage.http.session import current_session, secure_request, valid_session_token

if TYPE_CHECKING:
    from stowage.stowage import Stowage

#: header and cookie name (Nexus's): the header must repeat the cookie's value.
CSRF_TOKEN = "NX-ANTI-CSRF-TOKEN"
#: methods that never change anything and need no token.
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
_DEFAULT_PORTS = {"http": 80, "https": 443}
#: the UI's plain HTML forms (no script): their token comes in the form field named :data:`CSRF_TOKEN`.
FORM_PATHS = frozenset({"/login", "/logout"})
#: a sign-in or sign-out form is a few hundred bytes; anything bigger is not one of ours.
MAX_FORM_BYTES = 16 * 1024


class CsrfForbidden(Forbidden):
    code = "CSRF_REFUSED"


def _origin_key(url: str) -> tuple[str, str, int] | None:
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    if not parts.scheme or not parts.hostname:
        return None
    scheme = parts.scheme.lower()
    return scheme, parts.hostname.lower(), port or _DEFAULT_PORTS.get(scheme, 0)


def same_origin(origin: str, req: falcon.Request, stowage: "Stowage") -> bool:
    """Whether ``origin`` is this server as the client reached it (its base URL or the ``Host`` it used)."""
    key = _origin_key(origin)
    if key is None:
        return False  # "null" (sandboxed documents, file:) or garbage
    candidates = {external_base_url(req, stowage), f"{req.scheme}://{req.get_header('Host') or req.netloc}"}
    return any(key == _origin_key(candidate) for candidate in candidates)


def browser_context(req: falcon.Request, stowage: "Stowage") -> str | None:
    """Why the request looks like a browser's that may come from another site; None for plain clients."""
    if req.get_header("Cookie"):
        return "it carries cookies"
    site = (req.get_header("Sec-Fetch-Site") or "").lower()
    if site in ("cross-site", "same-site"):
        return f"Sec-Fetch-Site is {site}"
    origin = req.get_header("Origin")
    if origin is not None and not same_origin(origin, req, stowage):
        return f"its Origin {origin} is not this server"
    return None


def read_form(req: falcon.Request) -> dict[str, str]:
    """The fields of a UI form post (``application/x-www-form-urlencoded``), read once per request."""
    cached = getattr(req.context, "form", None)
    if cached is not None:
        return cached
    media_type = (req.content_type or "").split(";")[0].strip().lower()
    form: dict[str, str] = {}
    if media_type == "application/x-www-form-urlencoded":
        length = req.content_length or 0
        if length > MAX_FORM_BYTES:
            raise BadRequest(f"a form body is at most {MAX_FORM_BYTES} bytes")
        body = req.bounded_stream.read(length).decode("utf-8", "replace") if length else ""
        form = {key: values[0] for key, values in parse_qs(body, keep_blank_values=True).items()}
    req.context.form = form
    return form


def sent_token(req: falcon.Request) -> str:
    header = req.get_header(CSRF_TOKEN)
    if header is not None:
        return header
    if req.path in FORM_PATHS:
        return read_form(req).get(CSRF_TOKEN, "")
    return ""


def has_valid_token(req: falcon.Request, stowage: "Stowage") -> bool:
    token = sent_token(req)
    session = current_session(req, stowage)
    if session is not None:
        return valid_session_token(session, token)
    cookies = req.get_cookie_values(CSRF_TOKEN) or []
    return len(token) >= 16 and any(hmac.compare_digest(token, cookie) for cookie in cookies)


def issue_csrf_cookie(req: falcon.Request, resp: falcon.Response, stowage: "Stowage | None" = None) -> str:
    """Give a browser a token cookie (readable by our own pages' scripts) unless it has one; the token."""
    existing = req.get_cookie_values(CSRF_TOKEN)
    if existing:
        return existing[0]
    token = secrets.token_urlsafe(32)
    secure = secure_request(req, stowage) if stowage is not None else req.scheme == "https"
    resp.set_cookie(CSRF_TOKEN, token, path="/", http_only=False, same_site="Strict", secure=secure)
    return token


class CsrfMiddleware:
    """Refuses state-changing browser requests without a valid token, on every route (REST API, format
    upload endpoints, ``/v2``)."""

    def __init__(self, stowage: "Stowage"):
        self.stowage = stowage

    def process_request(self, req: falcon.Request, resp: falcon.Response) -> None:
        if req.method in SAFE_METHODS:
            return
        reason = browser_context(req, self.stowage)
        if reason is None or has_valid_token(req, self.stowage):
            return
        raise CsrfForbidden(f"{req.method} {req.path} refused as a possible cross-site request forgery: {reason}. "
                            f"A browser page must send the {CSRF_TOKEN} header with the value of the "
                            f"{CSRF_TOKEN} cookie (with a signed-in session: the session's token, as its pages' forms carry it); scripts and package clients send neither cookies nor Origin")
