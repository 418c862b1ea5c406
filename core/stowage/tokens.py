"""Stored tokens that stand for a user: ``npm login`` bearer tokens and Nexus user tokens.

A token is a 256-bit random secret; the catalog keeps only its SHA-256 (a copy of the catalog reveals no
usable token; a slow hash buys nothing against a secret of that size). A local user's token holds the
identity and credential generation of its user at issue time (see :class:`~stowage.security.User`): a
password change, a disable or a delete ends every token of the user, and a user created again under the
same id does not inherit them. A directory user's token (``LdapRealm``) is bound to the directory's answer:
it works while the directory still knows the user (Stowage never sees a directory password change). A
token authenticates only while its realm (``NpmToken``, ``User-Token-Realm``) is active. Each token names the audiences it is good for (``npm``: npm repositories only), expires,
and records when it was last used (written at most once a minute, so using a token stays a read).

User tokens (Nexus's name-code/pass-code pairs) are records of kind ``user-token`` whose secret is
``<nameCode>:<passCode>``: they work as the user name and password of HTTP Basic for every client.
"""

from __future__ import annotations

import hashlib
import secrets
import string
import time
from typing import Any

import cattrs
from attrs import evolve, frozen

from stowage.catalog import Catalog
from stowage.errors import Forbidden
from stowage.realms import NPM_TOKEN_REALM, USER_TOKEN_REALM
from stowage.security import SecurityRealm, User

TOKENS = "security.tokens"
USER_TOKEN_SETTINGS = ("security.settings", "user-tokens")

NPM = "npm"
USER_TOKEN = "user-token"
#: the ``source`` of users kept in the catalog.
LOCAL_SOURCE = "default"
#: the realm that authenticates each kind of stored token.
KIND_REALMS = {NPM: NPM_TOKEN_REALM, USER_TOKEN: USER_TOKEN_REALM}
#: characters of the public part of a token id (a prefix of the secret's hash: reveals nothing usable).
ID_LENGTH = 24
#: a token's ``lastUsed`` is rewritten only when older than this (seconds): using a token stays a read.
LAST_USED_RESOLUTION = 60.0
_NAME_CODE_ALPHABET = string.ascii_letters + string.digits
_PASS_CODE_ALPHABET = _NAME_CODE_ALPHABET

_converter = cattrs.Converter()


@frozen
class Token:
    """One stored token, without its secret."""

    id: str
    user_id: str
    identity: str
    generation: int
    kind: str
    #: what the token is good for (``npm``, ``pypi``, ``rest``...); None: everything its user may do.
    audiences: tuple[str, ...] | None
    created: float
    expires: float | None
    last_used: float | None = None
    #: user tokens: the public half of the pair, and the realm of the user it belongs to.
    name_code: str = ""
    user_realm: str = ""
    created_by: str = ""
    #: the user's ``source``: ``default`` for local users (bound to identity and generation), else the
    #: realm's (``LDAP``: bound to the directory's answer).
    source: str = "default"

    def expired(self, now: float) -> bool:
        return self.expires is not None and self.expires <= now


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


class TokenStore:
    """Issue, verify, list and revoke stored tokens (catalog documents, so every process and node agrees)."""

    def __init__(self, catalog: Catalog, security: SecurityRealm):
        self.catalog = catalog
        self.security = security
        self.user_tokens = UserTokenSettings(catalog)

    # -- issue and verify --------------------------------------------------------------------------------
    def issue(self, user: User, kind: str, *, audiences: tuple[str, ...] | None, lifetime: float | None,
              prefix: str = "", created_by: str = "", secret: str | None = None, name_code: str = "",
              user_realm: str = "") -> tuple[str, Token]:
        """A new token for ``user`` (as stored: its identity and generation are recorded) and its secret,
        which is shown once and never again."""
        if user.source in ("", LOCAL_SOURCE):
            stored = self.security.get_user(user.user_id)
            if stored is None or not stored.identity:
                raise Forbidden(f"user {user.user_id} is not a stored user; no token can be issued to it")
            identity, generation = stored.identity, stored.generation
        else:
            identity, generation = "", 0  # a directory user: bound to the directory's answer instead
        secret = secret or prefix + secrets.token_urlsafe(32)
        key = _hash(secret)
        now = time.time()
        token = Token(id=key[:ID_LENGTH], user_id=user.user_id, identity=identity, generation=generation,
                      kind=kind, audiences=audiences, created=now, expires=now + lifetime if lifetime else None,
                      name_code=name_code, user_realm=user_realm, created_by=created_by or user.user_id,
                      source=user.source or LOCAL_SOURCE)
        self.catalog.put_document(TOKENS, key, _converter.unstructure(token))
        return secret, token

    def authenticate(self, secret: str, *, kinds: tuple[str, ...]) -> User | None:
        """The user a live token of one of ``kinds`` stands for, carrying the token's realm and
        audiences; None for an unknown, expired or revoked token (a dead record is removed)."""
        key = _hash(secret)
        data = self.catalog.get_document(TOKENS, key)
        if data is None:
            return None
        token = _converter.structure(data, Token)
        if token.kind not in kinds or not self.security.realms.is_active(KIND_REALMS[token.kind]):
            return None
        now = time.time()
        user = self.holder(token)
        if user is None or token.expired(now):
            self.catalog.delete_document(TOKENS, key)
            return None
        if token.last_used is None or now - token.last_used > LAST_USED_RESOLUTION:
            self.catalog.put_document(TOKENS, key, _converter.unstructure(evolve(token, last_used=now)))
        return evolve(user, realm=KIND_REALMS.get(token.kind, token.kind), audiences=token.audiences)

    def holder(self, token: Token) -> User | None:
        """The user ``token`` stands for, if they still hold the credentials it was issued to."""
        if token.source == LOCAL_SOURCE:
            return self.security.holds_current_credentials(self.security.current_user(token.user_id),
                                                           token.identity, token.generation)
        user = self.security.find_user(token.user_id, token.source)
        return user if user is not None and user.status == "active" else None

    # -- list and revoke ---------------------------------------------------------------------------------
    def tokens_of(self, user_id: str, *, kind: str | None = None) -> list[Token]:
        """The live tokens of ``user_id`` (dead ones are removed on the way), oldest first."""
        now = time.time()
        found = []
        for key, data in self.catalog.list_documents(TOKENS):
            token = _converter.structure(data, Token)
            if token.user_id != user_id:
                continue
            if token.expired(now) or self.holder(token) is None:
                self.catalog.delete_document(TOKENS, key)
                continue
            if kind is None or token.kind == kind:
                found.append(token)
        return sorted(found, key=lambda t: t.created)

    def all_tokens(self, kind: str) -> list[Token]:
        """Every stored token of ``kind`` whose user still holds the credentials it was issued to, expired
        ones included (for an administrator's listing), oldest first."""
        found = []
        for _, data in self.catalog.list_documents(TOKENS):
            token = _converter.structure(data, Token)
            if token.kind == kind and self.holder(token) is not None:
                found.append(token)
        return sorted(found, key=lambda t: t.created)

    def revoke(self, user_id: str, token_id: str) -> bool:
        """Revoke the token of ``user_id`` whose id is ``token_id``; False when there is none."""
        if len(token_id) != ID_LENGTH or not all(c in string.hexdigits for c in token_id):
            return False
        for key, data in self.catalog.list_documents(TOKENS, prefix=token_id.lower()):
            if data.get("user_id") == user_id:
                return self.catalog.delete_document(TOKENS, key)
        return False

    def revoke_secret(self, secret: str) -> Token | None:
        """Revoke the token whose secret is ``secret``; the revoked token, or None."""
        key = _hash(secret)
        data = self.catalog.get_document(TOKENS, key)
        if data is None:
            return None
        self.catalog.delete_document(TOKENS, key)
        return _converter.structure(data, Token)

    def owner_of(self, secret: str) -> Token | None:
        data = self.catalog.get_document(TOKENS, _hash(secret))
        return None if data is None else _converter.structure(data, Token)

    def revoke_all(self, *, user_id: str | None = None, kind: str | None = None) -> int:
        removed = 0
        with self.catalog.transaction():
            for key, data in self.catalog.list_documents(TOKENS):
                if (user_id is None or data.get("user_id") == user_id) and (kind is None or data.get("kind") == kind):
                    removed += self.catalog.delete_document(TOKENS, key)
        return removed

    # -- user tokens -------------------------------------------------------------------------------------
    def create_user_token(self, user: User, user_realm: str, *, created_by: str) -> tuple[str, str, Token]:
        """A new name-code/pass-code pair for ``user``: (nameCode, passCode, record). The caller checks
        that the user has none yet."""
        settings = self.user_tokens.get()
        lifetime = settings["expirationDays"] * 86400 if settings["expirationEnabled"] else None
        name_code = "".join(secrets.choice(_NAME_CODE_ALPHABET) for _ in range(10))
        # Letters and digits only (264 bits): a pass code is typed on command lines (``twine -p``, ``docker
        # login -p``) and in URLs and .netrc files, where a leading "-" reads as an option and "_" or "-"
        # at an edge gets mangled by some clients.
        pass_code = "".join(secrets.choice(_PASS_CODE_ALPHABET) for _ in range(44))
        _, token = self.issue(user, USER_TOKEN, audiences=None, lifetime=lifetime, created_by=created_by,
                              secret=f"{name_code}:{pass_code}", name_code=name_code, user_realm=user_realm)
        return name_code, pass_code, token

    def user_token_of(self, user_id: str, user_realm: str) -> Token | None:
        return next((t for t in self.tokens_of(user_id, kind=USER_TOKEN) if t.user_realm == user_realm), None)


class UserTokenSettings:
    """Nexus's ``UserTokensApiModel``, in the catalog; read on content requests, so reused for a second."""

    DEFAULTS: dict[str, Any] = {"enabled": False, "expirationEnabled": False, "expirationDays": 30,
                                "protectContent": False}
    TTL = 1.0

    def __init__(self, catalog: Catalog):
        self.catalog = catalog
        self._cached: tuple[dict[str, Any], float] | None = None

    def get(self) -> dict[str, Any]:
        now = time.monotonic()
        cached = self._cached
        if cached is not None and cached[1] > now:
            return dict(cached[0])
        value = {**self.DEFAULTS, **(self.catalog.get_document(*USER_TOKEN_SETTINGS) or {})}
        self._cached = (value, now + self.TTL)
        return dict(value)

    def put(self, value: dict[str, Any]) -> dict[str, Any]:
        self.catalog.put_document(*USER_TOKEN_SETTINGS, {k: value[k] for k in self.DEFAULTS})
        self._cached = None
        return self.get()

    @property
    def enabled(self) -> bool:
        return bool(self.get()["enabled"])

    @property
    def protect_content(self) -> bool:
        settings = self.get()
        return bool(settings["enabled"] and settings["protectContent"])
