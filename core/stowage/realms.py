"""Security realms (Nexus's ids): which ways of signing in are on, and in which order they are tried.

The active list is a catalog document, so every worker and node agrees; each process re-reads it at most
every :attr:`ActiveRealms.TTL` seconds (a realm switched off elsewhere stops authenticating within about a
second; in the process that switched it, at once). A realm that is not active authenticates nobody.
"""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING, Callable, Protocol

from stowage.catalog import Catalog

if TYPE_CHECKING:
    from stowage.security import User

LOCAL_REALM = "NexusAuthenticatingRealm"
LDAP_REALM = "LdapRealm"
NPM_TOKEN_REALM = "NpmToken"
DOCKER_TOKEN_REALM = "DockerToken"
USER_TOKEN_REALM = "User-Token-Realm"

#: id -> name, as ``GET /service/rest/v1/security/realms/available`` lists them (Nexus's ids and names).
AVAILABLE: dict[str, str] = {
    LOCAL_REALM: "Local Authenticating Realm",
    LDAP_REALM: "LDAP Realm",
    NPM_TOKEN_REALM: "npm Bearer Token Realm",
    DOCKER_TOKEN_REALM: "Docker Bearer Token Realm",
    USER_TOKEN_REALM: "User Token Realm",
}
#: every realm is on until an administrator says otherwise: the LDAP realm does nothing until a server
#: is configured, and the token realms only accept tokens Stowage issued.
DEFAULT_ACTIVE: tuple[str, ...] = tuple(AVAILABLE)
SETTINGS = ("security.settings", "realms")


class PasswordRealm(Protocol):
    """A realm that checks a user name and password (and finds users it authenticated, for tokens)."""

    def authenticate(self, user_id: str, password: str) -> User | None: ...

    def find_user(self, user_id: str) -> User | None: ...


class UnknownRealm(ValueError):
    pass


class ActiveRealms:
    TTL = 1.0

    def __init__(self, catalog: Catalog, *, clock: Callable[[], float] = time.monotonic):
        self.catalog = catalog
        self._clock = clock
        self._cached: tuple[tuple[str, ...], float] | None = None
        self._lock = threading.Lock()

    def active(self) -> tuple[str, ...]:
        """The active realm ids, in the order they are tried."""
        now = self._clock()
        cached = self._cached
        if cached is not None and cached[1] > now:
            return cached[0]
        stored = self.catalog.get_document(*SETTINGS)
        ids = tuple(r for r in stored if r in AVAILABLE) if isinstance(stored, list) else DEFAULT_ACTIVE
        self._cached = (ids, now + self.TTL)
        return ids

    def is_active(self, realm_id: str) -> bool:
        return realm_id in self.active()

    def set_active(self, realm_ids: list[str]) -> tuple[str, ...]:
        unknown = [r for r in realm_ids if r not in AVAILABLE]
        if unknown:
            raise UnknownRealm(f"unknown realm(s): {', '.join(unknown)}; available: {', '.join(AVAILABLE)}")
        ordered = list(dict.fromkeys(realm_ids))  # a realm named twice is tried once, at its first place
        self.catalog.put_document(*SETTINGS, ordered)
        self._cached = None
        return tuple(ordered)
