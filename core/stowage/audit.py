"""The audit trail: who changed what, when, from which address, and with what result.

Events live in the catalog's ``audit`` table (migration ``m011_audit``), so every node writes to and reads
from one trail; ``GET /service/rest/v1/audit`` pages through it for admins. Core records:

- sign-ins: failures each time, successes once per user and address every :data:`SIGNIN_REPEAT_SECONDS`
  per process (an authenticated ``pip install`` makes hundreds of requests; one line says it all);
- every change through the REST API (``stowage.http.audit_trail``: users, roles, privileges, selectors,
  realms, LDAP servers, tokens, repositories, blob stores, components, tasks), refused ones included;
- every content write and delete through ``/repository/<repo>/`` and plugin routes (uploads, publishes,
  deletes, refused ones included).

Anything else (a cleanup task removing an asset, a plugin's own change) calls :meth:`AuditLog.record`
through ``stowage.audit`` (``Stowage.audit``).
"""

from __future__ import annotations

import datetime
import logging
import math
import threading
import time
from typing import TYPE_CHECKING, Any, Mapping

if TYPE_CHECKING:
    import falcon

    from stowage.catalog import Catalog

log = logging.getLogger("stowage.audit")

#: the longest action or target kept (longer ones are cut).
MAX_FIELD = 1024
#: the domains core uses; plugins may add their own.
DOMAINS = ("security", "repository", "blobstore", "content", "tasks", "system")
RESULTS = ("success", "failure", "denied")
#: a successful sign-in of one user from one address is recorded at most this often per process.
SIGNIN_REPEAT_SECONDS = 900.0
#: a failed one at most this often (a flood of bad passwords must not become a flood of inserts).
SIGNIN_FAILURE_REPEAT_SECONDS = 1.0


def iso_timestamp(value: float) -> str:
    """ISO-8601 in UTC with milliseconds, as Nexus writes dates (``2026-12-06T08:30:00.123Z``)."""
    moment = datetime.datetime.fromtimestamp(value, tz=datetime.timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def parse_timestamp(text: str) -> float:
    """ISO-8601 (``Z`` or an offset; a date alone is midnight UTC) or seconds since the epoch."""
    try:
        value = float(text)
    except ValueError:
        pass
    else:
        if not math.isfinite(value):
            raise ValueError(f"not a time: {text!r}")
        return value
    moment = datetime.datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.timezone.utc)
    return moment.timestamp()


class AuditLog:
    """Records and reads audit events; one per app object (``stowage.audit``)."""

    def __init__(self, catalog: "Catalog"):
        self.catalog = catalog
        self._recent_signins: dict[tuple[str, str, bool], float] = {}
        self._lock = threading.Lock()

    def record(self, domain: str, action: str, target: str, *, user: str | None = None,
               address: str | None = None, repository: str | None = None, result: str = "success",
               attributes: Mapping[str, Any] | None = None) -> None:
        """Append one event. Inside a catalog transaction it commits (or not) with the change itself.

        :param domain: ``security``, ``repository``, ``blobstore``, ``content``, ``tasks``, ... .
        :param action: what happened, ``<object>.<verb>``: ``user.create``, ``content.upload``, ``signin``.
        :param target: what it happened to (a user id, a repository name, an asset path).
        :param user: who did it (None: anonymous or the server itself).
        :param address: the client's address (``REMOTE_ADDR``, after a trusted proxy's ``X-Forwarded-For``).
        :param repository: the repository concerned, where one is.
        :param result: ``success``, ``failure`` (refused as invalid, or failed) or ``denied`` (401/403).
        :param attributes: anything else worth keeping (HTTP method and status, sizes, reasons).
        """
        # Targets come from clients (paths, names in bodies): bounded, so the trail cannot be bloated.
        event = {"timestamp": time.time(), "user": user, "address": address, "domain": domain,
                 "action": action[:MAX_FIELD], "target": str(target)[:MAX_FIELD], "repository": repository,
                 "result": result, "attributes": dict(attributes or {})}
        log.debug("audit %s", event)
        try:
            self.catalog.append_audit(event)
        except Exception:  # the change itself must not fail because its trail could not be written
            log.exception("audit event not recorded: %s", event)

    def record_request(self, req: "falcon.Request", domain: str, action: str, target: str, *,
                       repository: str | None = None, result: str = "success",
                       attributes: Mapping[str, Any] | None = None) -> None:
        """:meth:`record` with the user and address of ``req`` (its authenticated user, if any)."""
        user = getattr(req.context, "user", None)
        self.record(domain, action, target, user=getattr(user, "user_id", None), address=req.remote_addr,
                    repository=repository, result=result, attributes=attributes)

    def record_change(self, req: "falcon.Request", domain: str, action: str, target: str, *,
                      repository: str | None = None, status: int = 200) -> None:
        """Record a successful change from inside its own catalog transaction (so the change and its
        event commit together) and tell the HTTP middleware it need not record it again. If the
        transaction rolls back, the middleware records the failure from the response instead."""
        self.record_request(req, domain, action, target, repository=repository,
                            attributes={"method": req.method, "path": req.path, "status": status})
        req.context.audited = True

    def signin(self, req: "falcon.Request", claimed: str, user_id: str | None, scheme: str) -> None:
        """A request presented credentials: ``user_id`` is who they proved to be (None: refused)."""
        address = req.remote_addr or ""
        succeeded = user_id is not None
        key = (user_id or claimed, address, succeeded)
        now = time.monotonic()
        repeat = SIGNIN_REPEAT_SECONDS if succeeded else SIGNIN_FAILURE_REPEAT_SECONDS
        with self._lock:
            last = self._recent_signins.get(key)
            if last is not None and now - last < repeat:
                return
            if len(self._recent_signins) > 10_000:
                self._recent_signins.clear()
            self._recent_signins[key] = now
        self.record("security", "signin", user_id or claimed, user=user_id, address=address,
                    result="success" if succeeded else "failure", attributes={"scheme": scheme})

    def purge(self, retention_days: float) -> str:
        """Delete events older than ``retention_days`` (0 or less: keep everything); a one-line summary."""
        if retention_days <= 0:
            return "audit retention is unlimited; nothing purged"
        removed = self.catalog.prune_audit(time.time() - retention_days * 86400)
        return f"purged {removed} audit event(s) older than {retention_days:g} day(s)"

    def query(self, *, user: str | None = None, action: str | None = None, repository: str | None = None,
              since: float | None = None, until: float | None = None, before_id: int | None = None,
              limit: int = 100) -> list[dict[str, Any]]:
        """Events, newest first (see :meth:`~stowage.catalog.Catalog.list_audit`)."""
        return self.catalog.list_audit(user=user, action=action, repository=repository, since=since, until=until,
                                       before_id=before_id, limit=limit)
