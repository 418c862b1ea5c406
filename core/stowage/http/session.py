"""Web UI sign-in sessions: a random id in an HttpOnly cookie, the session itself in the catalog.

The catalog holds the sessions (namespace ``ui.sessions``), so every worker process and every node sees a
sign-in and a sign-out at once. Only the SHA-256 of a session id is stored: someone who reads the catalog
(a backup, a leaked file) cannot sign in with what they find there.

A session ends when the user signs out, after ``[server] sessionIdleTimeout`` seconds without a request,
or ``[server] sessionMaxAge`` seconds after sign-in, whichever comes first. Each session carries its own
CSRF token (:attr:`Session.csrf_token`): pages put it in a hidden field of every form, scripts send it as
the ``NX-ANTI-CSRF-TOKEN`` header, and :mod:`stowage.http.csrf` refuses any state-changing request made
with the session cookie that does not repeat it.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from typing import TYPE_CHECKING, Any

import falcon
from attrs import evolve, frozen

from stowage.security import User

if TYPE_CHECKING:
    from stowage.stowage import Stowage

SESSIONS = "ui.sessions"
#: the cookie carrying the session id (HttpOnly: no script, ours included, ever reads it).
SESSION_COOKIE = "STOWAGE-SESSION"
#: a session's last-seen time is written at most this often (seconds): not one catalog write per request.
TOUCH_INTERVAL = 60.0


@frozen
class Session:
    key: str
    user_id: str
    #: the user as the realm that signed them in described them (roles of an LDAP user, for example).
    roles: tuple[str, ...]
    source: str
    csrf_token: str
    created: float
    last_seen: float
    #: the stored user's identity at sign-in: a user deleted and created again is someone else.
    identity: str = ""
    #: the realm that checked the sign-in (a password realm, or the user-token realm), and the
    #: audiences its credentials were good for: the session is good for no more than they were.
    realm: str = ""
    audiences: tuple[str, ...] | None = None

    def to_document(self) -> dict[str, Any]:
        return {"userId": self.user_id, "roles": list(self.roles), "source": self.source,
                "csrfToken": self.csrf_token, "created": self.created, "lastSeen": self.last_seen,
                "identity": self.identity, "realm": self.realm,
                "audiences": list(self.audiences) if self.audiences is not None else None}

    @classmethod
    def from_document(cls, key: str, data: dict[str, Any]) -> "Session":
        audiences = data.get("audiences")
        return cls(key=key, user_id=data["userId"], roles=tuple(data.get("roles", ())),
                   source=data.get("source", "default"), csrf_token=data["csrfToken"],
                   created=float(data["created"]), last_seen=float(data["lastSeen"]),
                   identity=data.get("identity", ""), realm=data.get("realm", ""),
                   audiences=tuple(audiences) if audiences is not None else None)


def _key(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()


def secure_request(req: falcon.Request, stowage: "Stowage") -> bool:
    """Whether the browser reached us over HTTPS: directly, through a trusted reverse proxy (waitress
    rewrites the scheme from its ``X-Forwarded-Proto``, see ``[server] trustedProxy``), or as the
    configured ``baseUrl`` says."""
    return req.scheme == "https" or stowage.settings.base_url.lower().startswith("https:")


class SessionStore:
    """Sessions over the catalog's documents; every method is safe to call from any process or node."""

    def __init__(self, stowage: "Stowage"):
        self.stowage = stowage

    @property
    def idle_timeout(self) -> float:
        return self.stowage.settings.session_idle_timeout

    @property
    def max_age(self) -> float:
        return self.stowage.settings.session_max_age

    def create(self, user: User) -> tuple[str, Session]:
        """A new session for ``user``: its id (for the cookie, never stored) and the stored session."""
        self.purge_expired()
        session_id = secrets.token_urlsafe(32)
        now = time.time()
        session = Session(key=_key(session_id), user_id=user.user_id, roles=tuple(user.roles), source=user.source,
                          csrf_token=secrets.token_urlsafe(32), created=now, last_seen=now, identity=user.identity,
                          realm=user.realm, audiences=user.audiences)
        self.stowage.catalog.put_document(SESSIONS, session.key, session.to_document())
        return session_id, session

    def find(self, session_id: str) -> Session | None:
        """The live session with this id; an expired one is deleted and None returned."""
        if not session_id or len(session_id) > 128:
            return None
        key = _key(session_id)
        data = self.stowage.catalog.get_document(SESSIONS, key)
        if data is None:
            return None
        session = Session.from_document(key, data)
        now = time.time()
        if self.expired(session, now):
            self.stowage.catalog.delete_document(SESSIONS, key)
            return None
        if now - session.last_seen >= TOUCH_INTERVAL:
            session = evolve(session, last_seen=now)
            self.stowage.catalog.put_document(SESSIONS, key, session.to_document())
        return session

    def expired(self, session: Session, now: float) -> bool:
        return now - session.last_seen > self.idle_timeout or now - session.created > self.max_age

    def end(self, session_id: str) -> bool:
        return self.stowage.catalog.delete_document(SESSIONS, _key(session_id))

    def end_all_for(self, user_id: str, *, keep: str | None = None) -> int:
        """End every session of a user (their password changed), except the one whose key is ``keep``."""
        ended = 0
        for key, data in self.stowage.catalog.list_documents(SESSIONS):
            if data.get("userId") == user_id and key != keep:
                ended += self.stowage.catalog.delete_document(SESSIONS, key)
        return ended

    def purge_expired(self) -> None:
        now = time.time()
        for key, data in self.stowage.catalog.list_documents(SESSIONS):
            if self.expired(Session.from_document(key, data), now):
                self.stowage.catalog.delete_document(SESSIONS, key)

    def user(self, session: Session) -> User | None:
        """Who the session acts for now: a local user as currently stored (disabled or deleted: nobody);
        a user of another realm as that realm described them at sign-in."""
        stored = self.stowage.security.get_user(session.user_id)
        if stored is not None and stored.source == session.source:
            if stored.status != "active" or (session.identity and stored.identity != session.identity):
                return None  # disabled, or deleted and created again: not the user who signed in
            return evolve(stored, realm=session.realm, audiences=session.audiences)
        if session.source == "default":
            return None  # a local user that no longer exists
        return User(user_id=session.user_id, roles=session.roles, source=session.source, realm=session.realm,
                    audiences=session.audiences)


def sessions(stowage: "Stowage") -> SessionStore:
    return stowage.extension("ui-sessions", lambda: SessionStore(stowage))


def current_session(req: falcon.Request, stowage: "Stowage") -> Session | None:
    """The live session the request's cookie names (looked up once per request), or None."""
    cached = getattr(req.context, "session", False)
    if cached is not False:
        return cached
    session = None
    # most requests are from clients without cookies: skip falcon's cookie parsing for them
    for value in (req.get_cookie_values(SESSION_COOKIE) or ()) if "HTTP_COOKIE" in req.env else ():
        session = sessions(stowage).find(value)
        if session is not None:
            break
    req.context.session = session
    return session


def valid_session_token(session: Session, token: str) -> bool:
    return len(token) >= 16 and hmac.compare_digest(token, session.csrf_token)


def set_session_cookie(req: falcon.Request, resp: falcon.Response, stowage: "Stowage", session_id: str) -> None:
    # No Max-Age: a browser session cookie, gone when the browser closes; the server enforces the timeouts.
    resp.set_cookie(SESSION_COOKIE, session_id, path="/", http_only=True, same_site="Strict",
                    secure=secure_request(req, stowage))


def clear_session_cookie(req: falcon.Request, resp: falcon.Response, stowage: "Stowage") -> None:
    resp.unset_cookie(SESSION_COOKIE, path="/")
