"""``/login``: the sign-in page that starts a session; ``/logout``: the form that ends it.

Sign-in checks the user name and password through the same path as an ``Authorization`` header
(:func:`stowage.http.auth.sign_in`: throttling, the sign-in log, the ``stowage_authenticate`` hook), so
whatever applies to credentials there (realms, LDAP, user tokens as passwords) applies here. A request
that already sends valid Basic credentials to ``GET /login`` is simply sent on (browsers that answered a
Basic challenge, scripts).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import falcon

from stowage.errors import StowageError, Unauthorized
from stowage.http.auth import authenticate, sign_in
from stowage.security import REST_AUDIENCE
from stowage.http.csrf import read_form
from stowage.http.session import (SESSION_COOKIE, clear_session_cookie, current_session, sessions,
                                  set_session_cookie)
from stowage.ui.page import Site, esc, render, send_html, start

if TYPE_CHECKING:
    from stowage.stowage import Stowage

log = logging.getLogger("stowage.ui")


def safe_next(value: str | None) -> str:
    """A path on this server to return to after signing in; anything else (other hosts) means ``/``."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return "/"
    if any(ord(ch) < 0x20 for ch in value):
        return "/"
    return value


def _redirect(resp: falcon.Response, site: Site, target: str) -> None:
    resp.status = falcon.HTTP_303
    resp.location = site.root + safe_next(target)
    resp.set_header("Cache-Control", "no-store")


def sign_in_form(site: Site, next_path: str, *, user_id: str = "", error: str = "") -> str:
    alert = f'<p class="error" role="alert" id="signin-error">{esc(error)}</p>' if error else ""
    described = ' aria-describedby="signin-error"' if error else ""
    return (f'{alert}<form class="signin" method="post" action="{esc(site.link("/login"))}">'
            f'{site.csrf_field()}<input type="hidden" name="next" value="{esc(next_path)}">'
            f'<label for="username">User name</label>'
            f'<input id="username" name="username" autocomplete="username" required autofocus '
            f'value="{esc(user_id)}"{described}>'
            f'<label for="password">Password</label>'
            f'<input id="password" name="password" type="password" autocomplete="current-password" required>'
            '<button type="submit" class="primary">Sign in</button></form>'
            '<p class="muted">A user token works as the password. Package clients keep using their '
            'credentials as before; this only signs the browser in.</p>')


class LoginResource:
    def __init__(self, stowage: "Stowage"):
        self.stowage = stowage

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        site = start(req, resp, self.stowage)
        next_path = safe_next(req.get_param("next"))
        if authenticate(req, self.stowage) is not None:
            _redirect(resp, site, next_path)
            return
        send_html(resp, render(site, "Sign in", sign_in_form(site, next_path)))

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        site = start(req, resp, self.stowage)
        form = read_form(req)
        user_id, password = form.get("username", "").strip(), form.get("password", "")
        next_path = safe_next(form.get("next"))
        user = None
        if user_id and password and ":" not in user_id:
            try:
                user = sign_in(req, self.stowage, user_id, password, audience=REST_AUDIENCE)
            except Unauthorized:
                user = None
            except StowageError as error:  # throttled (429): say so next to the form
                send_html(resp, render(site, "Sign in", sign_in_form(site, next_path, user_id=user_id,
                                                                      error=error.message)),
                          falcon.code_to_http_status(error.status))
                if "Retry-After" in error.headers:
                    resp.set_header("Retry-After", error.headers["Retry-After"])
                return
        if user is None:
            log.info("UI sign-in refused for %r", user_id)
            send_html(resp, render(site, "Sign in", sign_in_form(
                site, next_path, user_id=user_id, error="Wrong user name or password.")), falcon.HTTP_401)
            return
        store = sessions(self.stowage)
        for old in req.get_cookie_values(SESSION_COOKIE) or ():
            store.end(old)  # never keep a session id that existed before sign-in (fixation)
        session_id, _ = store.create(user)
        set_session_cookie(req, resp, self.stowage, session_id)
        log.info("UI sign-in: %s", user.user_id)
        _redirect(resp, site, next_path)


class LogoutResource:
    """``POST /logout`` ends the session on the server (its cookie is worthless from then on)."""

    def __init__(self, stowage: "Stowage"):
        self.stowage = stowage

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        site = start(req, resp, self.stowage)
        session = current_session(req, self.stowage)
        store = sessions(self.stowage)
        for value in req.get_cookie_values(SESSION_COOKIE) or ():
            store.end(value)
        clear_session_cookie(req, resp, self.stowage)
        if session is not None:
            log.info("UI sign-out: %s", session.user_id)
            self.stowage.audit.record("security", "signout", session.user_id, user=session.user_id,
                                      address=req.remote_addr or "", attributes={"scheme": "session"})
        _redirect(resp, site, "/login")
