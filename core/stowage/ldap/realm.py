"""The ``LdapRealm``: users and their groups from the configured directories, tried in order.

LDAP groups become the user's roles by name (as in Nexus: a Stowage role whose id is the group name gives
its privileges; groups with no such role grant nothing). Successful sign-ins are remembered for
``[security] ldapAuthCacheSeconds`` in this process, keyed on an HMAC of the password under a per-process
random salt, so ``pip install`` of 100 files makes one bind, not 100; the directory's answer (a changed
password, a removed group) applies when the entry expires, and while the directory is down cached
sign-ins keep working until then. A server that keeps failing is skipped for its
``connectionRetryDelaySeconds`` once it has failed more than ``maxIncidentsCount`` times in a row.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import threading
import time
from typing import Callable

from attrs import evolve

from stowage.catalog import Catalog
from stowage.ldap.directory import Directory, DirectoryUnavailable, DirectoryUser
from stowage.ldap.servers import LdapServer, LdapServers
from stowage.realms import LDAP_REALM
from stowage.sealed import Sealer, SealError
from stowage.security import User

log = logging.getLogger(__name__)

__all__ = ["LDAP_REALM", "LDAP_SOURCE", "LdapRealm"]
#: the ``source`` of users this realm authenticates (Nexus's user source id for LDAP).
LDAP_SOURCE = "LDAP"
_CACHE_LIMIT = 10_000


def _user(found: DirectoryUser) -> User:
    return User(user_id=found.user_id, roles=found.groups, first_name=found.real_name,
                email_address=found.email_address, source=LDAP_SOURCE)


class LdapRealm:
    def __init__(self, catalog: Catalog, cache_seconds: float = 300.0, *, sealer: Sealer,
                 clock: Callable[[], float] = time.monotonic):
        self.servers = LdapServers(catalog, sealer)
        self.sealer = sealer
        self.cache_seconds = cache_seconds
        self._clock = clock
        self._salt = os.urandom(32)
        #: HMAC(user, password) -> (server fingerprint, user, expiry): an entry is valid only while the server
        #: that signed the user in keeps the same settings (changed or deleted on any node: asked again).
        self._signed_in: dict[bytes, tuple[str, User, float]] = {}
        #: user id -> (server fingerprint, user, expiry): users looked up without a password (token holders)
        self._looked_up: dict[str, tuple[str, User, float]] = {}
        #: server fingerprint -> (consecutive failures, skipped until)
        self._incidents: dict[str, tuple[int, float]] = {}
        self._lock = threading.Lock()

    def authenticate(self, user_id: str, password: str) -> User | None:
        """The directory user when ``password`` is theirs on the first server that knows them."""
        if not user_id or not password:
            return None
        key = hmac.new(self._salt, f"{user_id}\0{password}".encode(), hashlib.sha256).digest()
        user = self._first_answer(self._signed_in, key, f"sign-in of {user_id!r}",
                                  lambda directory: directory.authenticate(user_id, password))
        if user is None:
            log.info("LDAP sign-in of %r refused: no configured server accepted the credentials", user_id)
        return user

    def find_user(self, user_id: str) -> User | None:
        """The directory user ``user_id`` (for credentials issued earlier, like tokens), or None."""
        if not user_id:
            return None
        return self._first_answer(self._looked_up, user_id, f"look-up of {user_id!r}",
                                  lambda directory: directory.find_user(user_id))

    def _first_answer(self, cache: dict, key: object, what: str,
                      question: Callable[[Directory], DirectoryUser | None]) -> User | None:
        """The cached answer while it is fresh and its server unchanged; else the first server's that finds
        the user (servers that fail are logged and skipped)."""
        servers = self.servers.list()
        if not servers:
            return None
        now = self._clock()
        with self._lock:
            cached = cache.get(key)
        if cached is not None and cached[2] > now and any(s.fingerprint == cached[0] for s in servers):
            return cached[1]
        for server in servers:
            try:
                found = self._ask(server, question)
            except DirectoryUnavailable as error:
                log.warning("LDAP %s: %s", what, error)
                continue
            if found is not None:
                user = _user(found)
                self._remember(cache, key, (server.fingerprint, user, now + self.cache_seconds))
                return user
        return None

    def forget(self) -> None:
        """Drop every cached sign-in (the server settings changed in this process)."""
        with self._lock:
            self._signed_in.clear()
            self._looked_up.clear()
            self._incidents.clear()

    def _remember(self, cache: dict, key: object, value: tuple[str, User, float]) -> None:
        with self._lock:
            if len(cache) >= _CACHE_LIMIT:
                now = self._clock()
                for stale in [k for k, v in cache.items() if v[2] <= now]:
                    del cache[stale]
                if len(cache) >= _CACHE_LIMIT:
                    cache.clear()
            cache[key] = value

    def _opened(self, server: LdapServer) -> LdapServer:
        """``server`` with its bind password opened, just for the bind."""
        try:
            return evolve(server, auth_password=self.sealer.unseal(server.auth_password))
        except SealError as error:
            log.error("LDAP server %s: its bind password cannot be read: %s", server.name, error)
            raise DirectoryUnavailable(f"LDAP server {server.name}: its bind password cannot be read: {error}") \
                from None

    def _ask(self, server: LdapServer, question: Callable[[Directory], DirectoryUser | None]) -> DirectoryUser | None:
        now = self._clock()
        with self._lock:
            failures, skipped_until = self._incidents.get(server.fingerprint, (0, 0.0))
        if skipped_until > now:
            raise DirectoryUnavailable(f"LDAP server {server.name} is skipped for {skipped_until - now:.0f} s "
                                       f"after {failures} failures in a row")
        try:
            answer = question(Directory(self._opened(server)))
        except DirectoryUnavailable:
            failures += 1
            until = now + server.connection_retry_delay_seconds if failures > server.max_incidents_count else 0.0
            with self._lock:
                self._incidents[server.fingerprint] = (failures, until)
            raise
        if failures:
            with self._lock:
                self._incidents.pop(server.fingerprint, None)
        return answer
