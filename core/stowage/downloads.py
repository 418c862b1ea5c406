"""Recording when assets were last downloaded, off the request path.

A download (a GET answered 200, 206 or 304) only notes the asset's id in this process's pending set,
and only when the asset's stored ``last_downloaded`` is older than ``lastDownloadedIntervalSeconds``
(12 hours by default, as in Nexus). A background thread writes the pending set in one catalog
transaction every ``lastDownloadedFlushSeconds``; the write itself re-checks the stored value, so several
worker processes or nodes that served the same asset write it at most once per interval between them.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import TYPE_CHECKING

from stowage.models import Asset

if TYPE_CHECKING:
    from stowage.stowage import Stowage

log = logging.getLogger(__name__)

#: ids this process recorded recently (skipped until the interval passes) are forgotten past this many.
MEMORY_LIMIT = 100_000


class DownloadTracker:
    def __init__(self, stowage: "Stowage"):
        self.stowage = stowage
        self.interval = stowage.settings.last_downloaded_interval_seconds
        self._pending: dict[int, float] = {}
        self._recorded: dict[int, float] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @classmethod
    def of(cls, stowage: "Stowage") -> "DownloadTracker":
        return stowage.extension("downloads", lambda: cls(stowage))

    def downloaded(self, asset: Asset) -> None:
        """Note that ``asset`` was just downloaded (cheap: a dictionary update at most).

        A proxy miss streamed while it downloads has no row yet: its ``created`` time stands for it.
        """
        if getattr(asset, "id", None) is None:
            return
        now = time.time()
        if asset.last_downloaded is not None and asset.last_downloaded > now - self.interval:
            return
        with self._lock:
            if asset.id in self._pending or self._recorded.get(asset.id, 0.0) > now - self.interval:
                return
            self._pending[asset.id] = now
            if self._thread is None:
                self._thread = threading.Thread(target=self._flush_forever, name="stowage-downloads", daemon=True)
                self._thread.start()

    def flush(self) -> int:
        """Write the pending downloads now; returns how many rows changed."""
        with self._lock:
            pending, self._pending = self._pending, {}
            if len(self._recorded) > MEMORY_LIMIT:
                self._recorded.clear()
            self._recorded.update(pending)
        if not pending:
            return 0
        return self.stowage.catalog.record_downloads(sorted(pending.items()), time.time() - self.interval)

    def _flush_forever(self) -> None:
        while not self._stop.wait(self.stowage.settings.last_downloaded_flush_seconds):
            try:
                self.flush()
            except Exception:  # the catalog is busy or gone: the next round tries again
                log.exception("recording downloads failed")

    def close(self) -> None:
        self._stop.set()
        try:
            self.flush()
        except Exception:
            log.exception("recording downloads at shutdown failed")
