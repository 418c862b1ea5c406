"""Cross-site request forgery: a browser that holds a user's credentials must not act for another site.

A browser sends the credentials it holds (HTTP basic from an earlier sign-in, cookies) with any request a
page makes, whichever site the page came from. Format clients (pip, twine, npm, docker, skopeo, dnf, curl)
never send cookies, ``Origin`` or ``Sec-Fetch-Site``, so a state-changing request that does is a browser's,
and it must prove it comes from a page of Stowage's own origin: the ``NX-ANTI-CSRF-TOKEN`` header equal to
the cookie of the same name (Nexus's names; a page of another site can neither read our cookie nor send
a custom header without a CORS pre-flight we never grant). A same-origin ``fetch`` without cookies passes
on its matching ``Origin``.

The token is a double-submit value, not tied to a session: the web UI's sign-in sessions (a later issue)
keep using it by setting the cookie at sign-in (:func:`issue_csrf_cookie`) and refusing a session
cookie without it, through this same check.
"""

from __future__ import annotations

import hmac
import secrets
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import falcon

from stowage.errors import Forbidden
from stowage.http.request import external_base_url

if TYPE_CHECKING:
    from stowage.stowage import Stowage

#: header and cookie name (Nexus's): the header must repeat the cookie's value.
CSRF_TOKEN = "NX-ANTI-CSRF-TOKEN"
#: methods that never change anything and need no token.
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
_DEFAULT_PORTS = {"http": 80, "https": 443}


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


def has_valid_token(req: falcon.Request) -> bool:
    header = req.get_header(CSRF_TOKEN) or ""
    cookies = req.get_cookie_values(CSRF_TOKEN) or []
    return len(header) >= 16 and any(hmac.compare_digest(header, cookie) for cookie in cookies)


def issue_csrf_cookie(req: falcon.Request, resp: falcon.Response) -> None:
    """Give a browser a token cookie (readable by our own pages' scripts) unless it has one."""
    if req.get_cookie_values(CSRF_TOKEN):
        return
    resp.set_cookie(CSRF_TOKEN, secrets.token_urlsafe(32), path="/", http_only=False, same_site="Strict",
                    secure=req.scheme == "https")


class CsrfMiddleware:
    """Refuses state-changing browser requests without a valid token, on every route (REST API, format
    upload endpoints, ``/v2``)."""

    def __init__(self, stowage: "Stowage"):
        self.stowage = stowage

    def process_request(self, req: falcon.Request, resp: falcon.Response) -> None:
        if req.method in SAFE_METHODS:
            return
        reason = browser_context(req, self.stowage)
        if reason is None or has_valid_token(req):
            return
        raise CsrfForbidden(f"{req.method} {req.path} refused as a possible cross-site request forgery: {reason}. "
                            f"A browser page must send the {CSRF_TOKEN} header with the value of the "
                            f"{CSRF_TOKEN} cookie; scripts and package clients send neither cookies nor Origin")
