"""The Docker bearer-token flow: a token service on every listener and HMAC-signed, short-lived tokens.

A token stands for the user who asked for it (or for anonymous), not for one repository: permissions are
checked on every request, as Nexus does. Clients such as oras-py reuse their first token for every
repository they touch, so a token narrowed to one scope would break their pushes.

A token is good for the registry only (audience ``docker``: never the REST API), carries the identity and
credential generation of its user (a password change, disable or delete ends it, though it is never
stored: at once in the process that made the change, within ``Security.DECISION_TTL`` in the others, as
for role changes), and lives ``[server] dockerTokenSeconds``. Refresh tokens (``offline_token``) are accepted
by the token service only. The signing key is derived from the server's secret key, which is never in
the catalog (see ``stowage.secret_key``).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time

from attrs import evolve

from stowage.plugin import DOCKER_TOKEN_REALM, App, Forbidden, LRUCache, User

#: the audience of the registry's endpoints (the format name, as for every repository's content).
AUDIENCE = "docker"
#: lifetime of refresh tokens (``offline_token=true``), seconds.
REFRESH_TTL = 24 * 3600
#: the service name in challenges and tokens.
SERVICE = "stowage"
#: the user a token issued without credentials stands for; never a stored user.
ANONYMOUS = User(user_id="anonymous", roles=(), source="docker-token", realm=DOCKER_TOKEN_REALM, anonymous=True,
                 audiences=(AUDIENCE,))
_PREFIX = "dkr1."
ACCESS = "access"
REFRESH = "refresh"
#: verified tokens whose claims a process keeps (a few hundred bytes each).
CLAIMS_CACHED = 4096


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _sign(stowage: App, body: str) -> str:
    # the key is derived once per app, not per request (the server's secret does not change while it runs)
    key = stowage.extension("docker-token-key", lambda: stowage.signing_key("docker-token"))
    return _b64(hmac.new(key, body.encode(), hashlib.sha256).digest())


def issue(stowage: App, user: User | None, *, use: str = ACCESS) -> tuple[str, int]:
    """A token for ``user`` (None: anonymous) and its lifetime in seconds."""
    ttl = REFRESH_TTL if use == REFRESH else stowage.settings.docker_token_seconds
    claims: dict = {"sub": None, "use": use, "exp": int(time.time()) + ttl, "jti": secrets.token_hex(8)}
    if user is not None and user.source in ("", "default"):
        stored = stowage.security.get_user(user.user_id)
        if stored is None:
            raise Forbidden(f"user {user.user_id} is not a stored user; no token can be issued to it")
        claims.update(sub=stored.user_id, idn=stored.identity, gen=stored.generation)
    elif user is not None:
        # a directory user: the token is good while the directory still knows them (see ``verify``)
        claims.update(sub=user.user_id, src=user.source)
    body = _b64(json.dumps(claims, separators=(",", ":")).encode())
    return f"{_PREFIX}{body}.{_sign(stowage, body)}", ttl


def is_token(credentials: str) -> bool:
    return credentials.startswith(_PREFIX)


def verify(stowage: App, token: str, *, use: str = ACCESS) -> User | None:
    """The user a valid, unexpired token stands for (:data:`ANONYMOUS` for anonymous ones), or None."""
    payload = _claims(stowage, token)
    if payload is None or payload.get("use") != use or payload["exp"] < time.time():
        return None
    if not stowage.security.realms.is_active(DOCKER_TOKEN_REALM):
        return None
    if payload.get("sub") is None:
        return ANONYMOUS if stowage.security.anonymous_access else None
    if payload.get("src") not in (None, "default"):
        user = stowage.security.find_user(str(payload["sub"]), str(payload["src"]))
        user = user if user is not None and user.status == "active" else None
    else:
        user = stowage.security.holds_current_credentials(stowage.security.current_user(str(payload["sub"])),
                                                          str(payload.get("idn", "")), payload.get("gen"))
    return None if user is None else evolve(user, realm=DOCKER_TOKEN_REALM, audiences=(AUDIENCE,))


def _claims(stowage: App, token: str) -> dict | None:
    """The claims of ``token`` if its signature verifies. A client sends the same token with every request
    of a pull, so verified claims are kept by token (only what the token itself says: expiry, realm and
    the user's current credentials are checked on every use); a token that fails is never kept."""
    cache = stowage.extension("docker-token-claims", lambda: LRUCache(CLAIMS_CACHED))
    payload = cache.get(token)
    if payload is not None:
        return payload
    if not token.startswith(_PREFIX):
        return None
    body, _, signature = token[len(_PREFIX):].partition(".")
    # as bytes: compare_digest refuses str with non-ASCII characters (a TypeError, a 500, for a forged header)
    if not hmac.compare_digest(_sign(stowage, body).encode(), signature.encode("utf-8", "surrogateescape")):
        return None
    try:
        payload = json.loads(_unb64(body))
    except ValueError:
        return None
    if not isinstance(payload, dict) or not isinstance(payload.get("exp"), int):
        return None
    cache.put(token, payload)
    return payload


def is_anonymous(user: User | None) -> bool:
    return user is None or user is ANONYMOUS or (user.source == "docker-token" and user.user_id == "anonymous")
