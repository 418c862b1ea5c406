"""Which serving processes share this catalog: a heartbeat per ``stowage serve`` worker, on every node.

Each process writes one catalog document (namespace ``cluster.workers``, key = its ``node_id``) when it starts
serving and again every :attr:`WorkerRegistry.beat_seconds` from the server's listener thread (never on the
request path), and deletes it when it stops gracefully. A process killed without stopping leaves its entry
behind: it reads as ``gone`` once it has not been seen for :attr:`WorkerRegistry.gone_after_seconds` and is
pruned after :attr:`WorkerRegistry.prune_after_seconds`. Documents, not a table, so both catalogs (SQLite and
PostgreSQL) carry it without a migration.
"""

from __future__ import annotations

import importlib.metadata
import logging
import os
import socket
import time
from typing import TYPE_CHECKING, Any

import attrs

if TYPE_CHECKING:
    from stowage.stowage import Stowage

log = logging.getLogger(__name__)

NAMESPACE = "cluster.workers"


@attrs.define
class WorkerBeat:
    """One serving process as it last described itself."""

    node: str
    pid: int
    addresses: list[str]
    version: str | None
    started: float
    last_seen: float


def _version() -> str | None:
    try:
        return importlib.metadata.version("stowage")
    except importlib.metadata.PackageNotFoundError:
        return None


class WorkerRegistry:
    """This process's heartbeat and the list of every process's (one per app: ``WorkerRegistry.of``)."""

    #: how often a serving process renews its entry.
    beat_seconds: float = 15.0
    #: an entry older than this is shown as ``gone`` (four missed beats: a busy catalog may delay one).
    gone_after_seconds: float = 60.0
    #: an entry older than this is deleted by whichever process beats next.
    prune_after_seconds: float = 600.0

    def __init__(self, stowage: "Stowage"):
        self.stowage = stowage
        self.key = stowage.node_id
        self.started = time.time()
        self._last_beat = 0.0

    @classmethod
    def of(cls, stowage: "Stowage") -> "WorkerRegistry":
        return stowage.extension("cluster-workers", lambda: cls(stowage))

    def beat(self, addresses: list[str], *, now: float | None = None) -> None:
        """Record that this process serves on ``addresses``, and prune entries long gone."""
        now = time.time() if now is None else now
        entry = WorkerBeat(node=self.stowage.settings.node_name or socket.gethostname(), pid=os.getpid(), addresses=addresses, version=_version(),
                           started=self.started, last_seen=now)
        converter = self.stowage.converter
        with self.stowage.catalog.transaction():
            self.stowage.catalog.put_document(NAMESPACE, self.key, converter.unstructure(entry))
        self._last_beat = time.monotonic()
        for key, beat in self._entries():
            if now - beat.last_seen > self.prune_after_seconds:
                with self.stowage.catalog.transaction():
                    self.stowage.catalog.delete_document(NAMESPACE, key)

    def beat_if_due(self, addresses: list[str]) -> None:
        if time.monotonic() - self._last_beat >= self.beat_seconds:
            self.beat(addresses)

    def leave(self) -> None:
        """Remove this process's entry (a graceful stop)."""
        with self.stowage.catalog.transaction():
            self.stowage.catalog.delete_document(NAMESPACE, self.key)

    def _entries(self) -> list[tuple[str, WorkerBeat]]:
        entries = []
        for key, value in self.stowage.catalog.list_documents(NAMESPACE):
            try:
                entries.append((key, self.stowage.converter.structure(value, WorkerBeat)))
            except Exception:  # written by another version: show what can be read, skip the rest
                log.warning("unreadable worker heartbeat %r", key)
        return entries

    def workers(self, *, now: float | None = None) -> list[dict[str, Any]]:
        """Every process's entry as JSON, with ``state`` ``alive`` or ``gone`` (what the UI and REST show)."""
        now = time.time() if now is None else now
        result = []
        for key, beat in sorted(self._entries(), key=lambda item: (item[1].node, item[1].pid, item[0])):
            result.append({
                "id": key, "node": beat.node, "pid": beat.pid, "addresses": beat.addresses, "version": beat.version,
                "started": beat.started, "lastSeen": beat.last_seen,
                "state": "gone" if now - beat.last_seen > self.gone_after_seconds else "alive",
                "self": key == self.key,
            })
        return result
