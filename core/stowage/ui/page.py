"""The page frame every UI page shares: escaping, links under the server's prefix, layout, headers.

Everything that reaches HTML goes through :func:`esc` (text and attribute values alike); URLs are built
with :func:`quote` first and escaped after. Pages carry a strict Content-Security-Policy: no inline
script or style, only the two static files of :mod:`stowage.ui.static`.
"""

from __future__ import annotations

import html
import time
from typing import TYPE_CHECKING, Iterable
from urllib.parse import quote, urlencode, urlsplit

import falcon

from stowage.errors import StowageError
from stowage.http.auth import authenticate
from stowage.http.csrf import CSRF_TOKEN, issue_csrf_cookie
from stowage.http.session import current_session
from stowage.http.request import external_base_url
from stowage.ui import static

if TYPE_CHECKING:
    from stowage.security import User
    from stowage.stowage import Stowage

BROWSE = "/service/rest/repository/browse"
# connect-src 'self': the forms' script sends them to the REST API of this same origin, nowhere else.
CSP = ("default-src 'none'; style-src 'self'; script-src 'self'; connect-src 'self'; img-src 'self' data:; "
       "form-action 'self'; "
       "frame-ancestors 'none'; base-uri 'none'")


#: a crate, inline so that browsers do not ask for /favicon.ico.
FAVICON = ("data:image/svg+xml,%3Csvg xmlns='http://www.w3.org/2000/svg' viewBox='0 0 16 16'%3E%3Crect x='1' y='3' "
           "width='14' height='11' rx='1' fill='%231f6feb'/%3E%3Cpath d='M1 7h14M6 3v11' stroke='white'/%3E%3C/svg%3E")


def esc(value: object) -> str:
    """Text or attribute value, HTML-escaped (quotes included)."""
    return html.escape(str(value), quote=True)


def path_url(path: str) -> str:
    """A repository path as a URL path (``/`` kept, everything else percent-encoded)."""
    return quote(path, safe="/")


def human_size(size: int) -> str:
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{size} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} B"  # pragma: no cover - the loop always returns


def timestamp(seconds: float | None) -> str:
    if not seconds:
        return ""
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(seconds))


def copy_button(value: str, label: str = "copy") -> str:
    return (f'<button type="button" class="copy" data-copy="{esc(value)}" title="Copy to clipboard">'
            f"{esc(label)}</button>")


class Site:
    """Where this request sees the server: links carry the reverse proxy's prefix (``X-Forwarded-Prefix``)."""

    def __init__(self, req: falcon.Request, stowage: "Stowage"):
        self.req = req
        self.stowage = stowage
        self.base_url = external_base_url(req, stowage)
        self.root = urlsplit(self.base_url).path.rstrip("/")
        #: what this page's forms send back as ``NX-ANTI-CSRF-TOKEN`` (the session's own token when signed in).
        self.csrf_token = ""

    @property
    def user(self) -> "User | None":
        try:
            return authenticate(self.req, self.stowage)
        except StowageError:
            return None

    @property
    def is_admin(self) -> bool:
        user = self.user
        # The same test as the REST API's require_admin: nx-all, or a wildcard privilege nexus:*.
        return user is not None and self.stowage.security.permits(user, "nexus", "*")

    def csrf_field(self) -> str:
        """The hidden field every state-changing form carries."""
        return f'<input type="hidden" name="{CSRF_TOKEN}" value="{esc(self.csrf_token)}">'

    def link(self, path: str, **params: str | None) -> str:
        """An absolute path on this server (``path`` already URL-encoded), with query parameters."""
        query = urlencode({k: v for k, v in params.items() if v})
        return f"{self.root}{path}" + (f"?{query}" if query else "")

    def browse(self, repository: str, directory: str = "", **params: str | None) -> str:
        return self.link(f"{BROWSE}/{quote(repository, safe='')}/{path_url(directory)}", **params)

    def download(self, repository: str, path: str) -> str:
        return self.link(f"/repository/{quote(repository, safe='')}/{path_url(path)}")

    def repository_url(self, repository: str) -> str:
        return f"{self.base_url}/repository/{repository}/"


def render(site: Site, title: str, body: str, *, crumbs: Iterable[tuple[str, str | None]] = ()) -> bytes:
    """The whole page: header with navigation and the signed-in user, breadcrumbs, then ``body``."""
    user = site.user
    here = site.req.relative_uri
    if user is None:
        account = f'<a href="{esc(site.link("/login", next=here))}">Sign in</a>'
    else:
        account = f'<span class="user">Signed in as <b>{esc(user.user_id)}</b></span>'
        if current_session(site.req, site.stowage) is not None:
            account += (f'<form class="signout" method="post" action="{esc(site.link("/logout"))}">'
                        f'{site.csrf_field()}<button type="submit">Sign out</button></form>')
    links = [("Repositories", "/")]
    if user is not None:
        links.append(("Upload", "/upload"))
        links.append(("Account", "/account"))
    if site.is_admin:
        links.append(("Administration", "/admin"))
    nav = "".join(f'<a href="{esc(site.link(path))}">{esc(text)}</a>' for text, path in links)
    trail = "".join(f'<li><a href="{esc(href)}">{esc(text)}</a></li>' if href else f"<li>{esc(text)}</li>"
                    for text, href in crumbs)
    nav_crumbs = f'<nav aria-label="breadcrumbs"><ol class="crumbs">{trail}</ol></nav>' if trail else ""
    query = (site.req.get_param("q") or "") if site.req.path.endswith("/search") else ""
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{esc(title)} - Stowage</title>"
        f'<link rel="icon" href="{esc(FAVICON)}">'
        f'<link rel="stylesheet" href="{esc(site.link(static.CSS_PATH, v=static.VERSION))}">'
        f'<script src="{esc(site.link(static.JS_PATH, v=static.VERSION))}" defer></script>'
        "</head><body><header>"
        f'<a class="brand" href="{esc(site.link("/"))}">Stowage</a>'
        f'<nav class="main" aria-label="main">{nav}</nav>'
        f'<form class="search" role="search" action="{esc(site.link("/search"))}" method="get">'
        f'<input type="search" name="q" value="{esc(query)}" placeholder="Search artifacts" aria-label="Search">'
        '<button type="submit">Search</button></form>'
        f'<span class="account">{account}</span></header><main>{nav_crumbs}'
        f"<h1>{esc(title)}</h1>{body}</main>"
        f'<footer><a href="{esc(site.link("/service/rest/v1/repositories"))}">REST API</a> · '
        f'<a href="{esc(site.link("/-/plugins.json"))}">plugins</a></footer></body></html>'
    ).encode()


def send_html(resp: falcon.Response, body: bytes, status: str = falcon.HTTP_200) -> None:
    resp.status = status
    resp.content_type = "text/html; charset=utf-8"
    resp.set_header("Content-Security-Policy", CSP)
    resp.set_header("X-Content-Type-Options", "nosniff")
    resp.set_header("Referrer-Policy", "same-origin")
    resp.set_header("Cache-Control", "no-store")
    resp.data = body


class HtmlErrors:
    """Renders domain errors raised by UI pages as HTML pages (core's error handler calls it)."""

    def __init__(self, req: falcon.Request, stowage: "Stowage"):
        self.req = req
        self.stowage = stowage

    def __call__(self, request: object, error: StowageError) -> tuple[str, bytes]:
        site = Site(self.req, self.stowage)
        body = (f'<p class="error">{esc(error.message)}</p>'
                f'<p><a href="{esc(site.link("/"))}">Back to the repositories</a></p>')
        return "text/html; charset=utf-8", render(site, f"{error.status} {error.code.replace('_', ' ').title()}", body)


def signed_in_page(req: falcon.Request, resp: falcon.Response, stowage: "Stowage") -> Site | None:
    """:func:`start` for a page only a signed-in user sees: None after redirecting an anonymous visitor
    to sign in and come back (the caller returns at once). The redirect is never cached: it depends on
    the session cookie, which a shared cache does not key on."""
    site = start(req, resp, stowage)
    if site.user is None:
        resp.status = falcon.HTTP_303
        resp.location = site.link("/login", next=req.relative_uri)
        resp.set_header("Cache-Control", "no-store")
        return None
    return site


def start(req: falcon.Request, resp: falcon.Response, stowage: "Stowage") -> Site:
    """Every UI handler's first line: errors from here on render as HTML pages."""
    req.context.error_renderer = HtmlErrors(req, stowage)
    # Our own pages' forms send a token back as the NX-ANTI-CSRF-TOKEN header (or field): the session's
    # when signed in, else the double-submit cookie's.
    cookie_token = issue_csrf_cookie(req, resp, stowage)
    resp.set_header("Content-Security-Policy", CSP)
    resp.set_header("X-Content-Type-Options", "nosniff")
    site = Site(req, stowage)
    session = current_session(req, stowage)
    site.csrf_token = session.csrf_token if session is not None else cookie_token
    return site
