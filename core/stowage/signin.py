"""Brute-force protection and the sign-in log.

Failures are counted per (user, client address) and per client address, in the catalog so every worker
and node sees them. After a few free failures the pair (or the address) must wait before its next
attempt, the wait doubling with each failure up to :attr:`SignInGuard.MAX_DELAY`; until then attempts
are answered 429 with ``Retry-After`` and no password is checked. The user alone is never locked: an
attacker at another address cannot keep the real administrator out.

Only failures write. A request with a good password costs one read of the two counters (a primary-key
lookup); one with a good bearer token reads none (a token is checked first: no one guesses one, and a
throttled address still gets 429 for every token that fails); counters are forgotten :attr:`SignInGuard.FORGET_AFTER` seconds after their last failure, and a
successful sign-in clears its pair's counter.

Every failed sign-in, and every successful one the first time a process sees the credentials from that
address (not each of the hundred requests of one ``pip install``), is logged to ``stowage.security.signin``
with the user, address, realm and result; never the password.
"""

from __future__ import annotations

import hashlib
import json
import logging
import secrets
import threading
import time
from typing import Any

from attrs import frozen

from stowage.catalog import Catalog

log = logging.getLogger("stowage.security.signin")

FAILURES = "security.signin-failures"


@frozen
class Verdict:
    """The throttling state of one attempt, read before its credentials are checked."""

    #: seconds the caller must wait (0: go ahead).
    retry_after: float
    #: the (user, address) pair has failures on record (a success clears them).
    pair_on_record: bool


#: the verdict of an attempt whose counters were not read (a bearer token that verified: see
#: :func:`stowage.http.auth.authenticate`): nothing to clear.
NO_FAILURES = Verdict(retry_after=0.0, pair_on_record=False)


class SignInGuard:
    #: failures a (user, address) pair may make before it has to wait.
    PAIR_FREE_FAILURES = 5
    #: failures an address may make (whatever the user names) before it has to wait: higher, since many
    #: people may share an address behind a NAT.
    ADDRESS_FREE_FAILURES = 20
    #: the first wait (seconds); each further failure doubles it.
    BASE_DELAY = 1.0
    MAX_DELAY = 900.0
    #: seconds without a failure after which a counter starts again from zero.
    FORGET_AFTER = 3600.0
    #: seconds a process remembers having logged a successful sign-in (credentials + address).
    LOGGED_TTL = 300.0
    #: one failure in this many sweeps the counters that are no longer counted.
    PRUNE_ONE_IN = 100

    def __init__(self, catalog: Catalog):
        self.catalog = catalog
        self._logged: dict[str, float] = {}
        self._lock = threading.Lock()

    # -- throttling ---------------------------------------------------------------------------------------
    def verdict(self, user_id: str, address: str, now: float | None = None) -> Verdict:
        now = time.time() if now is None else now
        pair = self.catalog.get_document(FAILURES, _pair_key(user_id, address)) if user_id else None
        by_address = self.catalog.get_document(FAILURES, _address_key(address))
        waits = [record["blockedUntil"] - now for record in (pair, by_address)
                 if record and now - record["last"] < self.FORGET_AFTER]
        return Verdict(retry_after=max([0.0, *waits]), pair_on_record=pair is not None)

    def failed(self, user_id: str, address: str, *, realm: str, result: str = "failure") -> None:
        now = time.time()
        with self.catalog.transaction():
            if user_id:
                self._count(_pair_key(user_id, address), self.PAIR_FREE_FAILURES, now)
            self._count(_address_key(address), self.ADDRESS_FREE_FAILURES, now)
        log.warning("sign-in failed: user=%s address=%s realm=%s result=%s", user_id or "-", address, realm,
                    result)
        if secrets.randbelow(self.PRUNE_ONE_IN) == 0:
            # Counters of addresses that stopped failing would pile up; failures are rare, so an occasional
            # sweep on the failure path keeps the table small without a task or a cost on successes.
            self.forget_stale(now)

    def refused(self, user_id: str, address: str, retry_after: float) -> None:
        """An attempt answered 429 (logged; not counted, so waiting out the delay is enough)."""
        log.warning("sign-in refused: user=%s address=%s realm=- result=throttled retryAfter=%.1f",
                    user_id or "-", address, retry_after)

    def succeeded(self, sent_user_id: str, address: str, *, user_id: str, realm: str, credentials: str,
                  verdict: Verdict) -> None:
        """:param sent_user_id: the name the credentials carried (a user token's name code, for one)."""
        if verdict.pair_on_record:
            self.catalog.delete_document(FAILURES, _pair_key(sent_user_id, address))
        seen = hashlib.sha256(f"{address}\0{credentials}".encode()).hexdigest()
        now = time.monotonic()
        with self._lock:
            if self._logged.get(seen, 0.0) > now:
                return
            if len(self._logged) > 10_000:
                self._logged.clear()
            self._logged[seen] = now + self.LOGGED_TTL
        log.info("sign-in: user=%s address=%s realm=%s result=success", user_id, address, realm)

    def forget_stale(self, now: float | None = None) -> int:
        """Delete counters whose last failure is older than :attr:`FORGET_AFTER` (they no longer count)."""
        cutoff = (time.time() if now is None else now) - self.FORGET_AFTER
        stale = [key for key, record in self.catalog.list_documents(FAILURES) if record.get("last", 0.0) < cutoff]
        for key in stale:
            self.catalog.delete_document(FAILURES, key)
        return len(stale)

    def _count(self, key: str, free: int, now: float) -> None:
        record: dict[str, Any] = self.catalog.get_document(FAILURES, key) or {}
        failures = record.get("failures", 0) if now - record.get("last", 0.0) < self.FORGET_AFTER else 0
        failures += 1
        delay = 0.0 if failures < free else min(self.BASE_DELAY * 2 ** (failures - free), self.MAX_DELAY)
        self.catalog.put_document(FAILURES, key, {"failures": failures, "last": now, "blockedUntil": now + delay})


def _pair_key(user_id: str, address: str) -> str:
    # JSON, not a NUL separator: PostgreSQL text cannot hold NUL, and JSON escapes any the user id carries.
    return "pair:" + json.dumps([address, user_id])


def _address_key(address: str) -> str:
    return f"address:{address}"
