"""The Docker bearer-token flow: a token service on every listener and HMAC-signed, short-lived tokens.

A token stands for the user who asked for it (or for anonymous), not for one repository: permissions are
checked on every request, as Nexus does. Clients such as oras-py reuse their first token for every
repository they touch, so a token narrowed to one scope would break their pushes.

The signing key is kept in the catalog (created on first use, in a transaction), so every process and
node verifies the tokens the others issue; ``server.secretKey`` replaces it when set.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from typing import TYPE_CHECKING

from stowage.plugin import Stowage, User

if TYPE_CHECKING:
    pass

TOKEN_TTL = 300
SECRET_DOCUMENT = ("docker", "token-secret")
#: the service name in challenges and tokens.
SERVICE = "stowage"
#: the user a token issued without credentials stands for; never a stored user.
ANONYMOUS = User(user_id="anonymous", roles=(), source="docker-token")
_PREFIX = "dkr1."
#: the security realm (Nexus's id) that must be active for these tokens to authenticate.
REALM = "DockerToken"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def signing_key(stowage: Stowage) -> bytes:
    def load() -> bytes:
        if stowage.settings.secret_key:
            return hashlib.sha256(("docker-token\0" + stowage.settings.secret_key).encode()).digest()
        catalog = stowage.catalog
        with catalog.transaction():
            value = catalog.get_document(*SECRET_DOCUMENT)
            if value is None:
                value = secrets.token_hex(32)
                catalog.put_document(*SECRET_DOCUMENT, value)
        return bytes.fromhex(value)

    return stowage.extension("docker-token-key", load)


def issue(stowage: Stowage, user: User | None, *, ttl: int = TOKEN_TTL) -> tuple[str, int]:
    """A token for ``user`` (None: anonymous) and its lifetime in seconds."""
    payload = json.dumps({"sub": user.user_id if user else None, "src": user.source if user else None,
                          "exp": int(time.time()) + ttl,
                          "jti": secrets.token_hex(8)}, separators=(",", ":")).encode()
    body = _b64(payload)
    signature = _b64(hmac.new(signing_key(stowage), body.encode(), hashlib.sha256).digest())
    return f"{_PREFIX}{body}.{signature}", ttl


def is_token(credentials: str) -> bool:
    return credentials.startswith(_PREFIX)


def verify(stowage: Stowage, token: str) -> User | None:
    """The user a valid, unexpired token stands for (:data:`ANONYMOUS` for anonymous ones), or None."""
    if not token.startswith(_PREFIX):
        return None
    body, _, signature = token[len(_PREFIX):].partition(".")
    expected = _b64(hmac.new(signing_key(stowage), body.encode(), hashlib.sha256).digest())
    if not hmac.compare_digest(expected, signature):
        return None
    try:
        payload = json.loads(_unb64(body))
    except ValueError:
        return None
    if not isinstance(payload, dict) or payload.get("exp", 0) < time.time():
        return None
    if not stowage.security.realms.is_active(REALM):
        return None
    if payload.get("sub") is None:
        return ANONYMOUS if stowage.security.anonymous_access else None
    user = stowage.security.find_user(payload["sub"], payload.get("src"))
    return user if user is not None and user.status == "active" else None


def is_anonymous(user: User | None) -> bool:
    return user is None or user is ANONYMOUS or (user.source == "docker-token" and user.user_id == "anonymous")
