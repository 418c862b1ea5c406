"""Running maintenance tasks (:class:`~stowage.registration.Task`) once across workers and nodes.

A run holds the catalog lease ``task:<type>`` (renewed while it runs), so ``currentState`` is the same
on every node and a second ``run`` anywhere is refused while one is going. The outcome of the last run
is a catalog document. :class:`TaskRunner` is per app (``stowage.extension("tasks", ...)``).
"""

from __future__ import annotations

import datetime
import logging
import secrets
import threading
import time
from typing import TYPE_CHECKING, Any

from stowage.errors import Conflict, NotFound
from stowage.registration import Task

if TYPE_CHECKING:
    from stowage.stowage import Stowage

log = logging.getLogger(__name__)

RUNS = "tasks.runs"
#: seconds a run's lease lasts without renewal (a crashed node's run is seen as over after this).
LEASE_SECONDS = 60.0


def _iso(timestamp: float | None) -> str | None:
    if timestamp is None:
        return None
    return datetime.datetime.fromtimestamp(timestamp, tz=datetime.timezone.utc).isoformat(timespec="milliseconds")


class TaskRunner:
    def __init__(self, stowage: "Stowage"):
        self.stowage = stowage
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()

    @classmethod
    def of(cls, stowage: "Stowage") -> "TaskRunner":
        return stowage.extension("tasks", lambda: cls(stowage))

    @property
    def tasks(self) -> dict[str, Task]:
        return dict(self.stowage.plugins.tasks)

    def get(self, task_id: str) -> Task:
        try:
            return self.stowage.plugins.tasks[task_id]
        except KeyError:
            raise NotFound(f"task {task_id} not found") from None

    def last_run(self, task: Task) -> dict[str, Any]:
        return self.stowage.catalog.get_document(RUNS, task.type) or {}

    def running(self, task: Task) -> bool:
        return self.stowage.catalog.lease_holder(f"task:{task.type}") is not None

    def describe(self, task: Task) -> dict[str, Any]:
        """Nexus's ``TaskXO``."""
        last = self.last_run(task)
        last_run = last.get("lastRun")
        next_run = None
        if task.interval:
            next_run = (last_run or last.get("scheduledFrom") or time.time()) + task.interval
        return {"id": task.type, "name": task.name, "type": task.type, "message": last.get("message"),
                "currentState": "RUNNING" if self.running(task) else "WAITING",
                "lastRun": _iso(last_run), "nextRun": _iso(next_run), "lastRunResult": last.get("lastRunResult")}

    def start(self, task: Task, *, only_if_due: bool = False) -> threading.Thread | None:
        """Run ``task`` in a background thread; :class:`Conflict` when it is running anywhere."""
        key = f"task:{task.type}"
        owner = f"{self.stowage.node_id}:{secrets.token_hex(4)}"
        catalog = self.stowage.catalog
        with catalog.transaction():
            if not catalog.acquire_lease(key, owner, LEASE_SECONDS):
                if only_if_due:
                    return None
                raise Conflict(f"task {task.type} is already running")
            if only_if_due and not self.due(task):  # another node ran it while we were deciding
                catalog.release_lease(key, owner)
                return None
        thread = threading.Thread(target=self._run, args=(task, key, owner), name=f"stowage-task-{task.type}",
                                  daemon=True)
        with self._lock:
            self._threads = [t for t in self._threads if t.is_alive()] + [thread]
        thread.start()
        return thread

    def due(self, task: Task) -> bool:
        if not task.interval:
            return False
        last = self.last_run(task)
        if not last:  # first start: count the interval from now, don't collect at every boot
            self.stowage.catalog.put_document(RUNS, task.type, {"scheduledFrom": time.time()})
            return False
        return (last.get("lastRun") or last.get("scheduledFrom") or 0) + task.interval <= time.time()

    def run_due(self) -> None:
        for task in self.tasks.values():
            if task.interval and self.due(task):
                self.start(task, only_if_due=True)

    def _run(self, task: Task, key: str, owner: str) -> None:
        catalog = self.stowage.catalog
        done = threading.Event()

        def heartbeat() -> None:
            while not done.wait(LEASE_SECONDS / 3):
                try:
                    catalog.acquire_lease(key, owner, LEASE_SECONDS)
                except Exception:
                    log.exception("task %s: renewing its lease failed", task.type)

        threading.Thread(target=heartbeat, name=f"stowage-task-lease-{task.type}", daemon=True).start()
        started = time.time()
        try:
            message = task.run(self.stowage)
            result = {"lastRunResult": "OK", "message": message or f"{task.name}: done"}
        except Exception as error:
            log.exception("task %s failed", task.type)
            result = {"lastRunResult": "FAILED", "message": f"{type(error).__name__}: {error}"}
        finally:
            done.set()
        try:
            with catalog.transaction():
                catalog.put_document(RUNS, task.type, {"lastRun": started, "duration": time.time() - started,
                                                       "node": self.stowage.node_id, **result})
                catalog.release_lease(key, owner)
        except Exception:
            log.exception("task %s: recording its outcome failed", task.type)

    def close(self) -> None:
        with self._lock:
            threads = list(self._threads)
        for thread in threads:
            thread.join(timeout=30)
