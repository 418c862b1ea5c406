"""Background work per repository: coalesced, lease-guarded in the catalog, restartable after a crash.

A format that keeps derived state (yum's repodata, any index rebuilt from the catalog) registers a
:class:`~stowage.registration.BackgroundJob` and *requests* work where a change happens::

    BackgroundWork.of(stowage).request("yum.repodata", repository.name, key=root, item=path)

Everything lives in the catalog, shared by every worker process and node:

- A request writes (or extends) one **marker** document, namespace ``background-work``, key
  ``<job>/<repository>/<key>``: the first and last request times, a sequence number and the requested
  items (None: "everything", also once more than ``max_items`` were requested). Call it inside the
  transaction of the change: the change and the promise to process it commit together.
- Any process's scheduler thread runs a marker once its burst is over (``delay`` seconds without a new
  request, at most ``max_delay`` after the first), so many requests become one run.
- A run holds the catalog lease ``background:<job>/<repository>/<key>`` (renewed while it runs), so one
  process in the cluster runs it at a time. The marker is removed afterwards only if no request arrived
  during the run; otherwise it runs again. A process killed mid-run (``kill -9``) stops renewing: its
  lease expires after ``lease_seconds`` and another process (or the restarted one) runs the marker,
  which is still there.

A failed run keeps its marker and is retried with a growing back-off. Runs must be idempotent: after a
crash, or when requests arrive during a run, the same items may be processed again.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from typing import TYPE_CHECKING, Any

from attrs import define, evolve, field

from stowage.errors import Conflict, NotFound

if TYPE_CHECKING:
    from stowage.registration import BackgroundJob
    from stowage.repository import Repository
    from stowage.stowage import Stowage

log = logging.getLogger(__name__)

NAMESPACE = "background-work"
#: a failed run is retried after this many seconds, doubled per consecutive failure up to the maximum.
RETRY_SECONDS = 5.0
MAX_RETRY_SECONDS = 600.0


def marker_key(job: str, repository: str, key: str) -> str:
    return f"{job}/{repository}/{key}"


def split_marker_key(marker: str) -> tuple[str, str, str]:
    """(job, repository, key): job names and repository names never contain ``/``; keys may."""
    job, repository, key = marker.split("/", 2)
    return job, repository, key


@define
class Pending:
    """A marker: work requested and not yet done."""

    job: str
    repository: str
    key: str
    #: the requested items in request order; None: everything (a full run)
    items: list[str] | None
    first: float
    last: float
    seq: int
    not_before: float | None = None
    #: only a follow-up a run asked for (``Work.again``) is waiting, no request
    follow_up: bool = False

    @classmethod
    def of(cls, marker: str, value: dict[str, Any]) -> "Pending":
        job, repository, key = split_marker_key(marker)
        return cls(job=job, repository=repository, key=key, items=value.get("items"), first=value["first"],
                   last=value["last"], seq=value["seq"], not_before=value.get("notBefore"),
                   follow_up=bool(value.get("followUp")))

    def due(self, job: "BackgroundJob", now: float) -> bool:
        if self.not_before is not None and now < self.not_before:
            return False
        return now - self.last >= job.delay or now - self.first >= job.max_delay


@define
class Work:
    """What a job's ``run`` receives: one (repository, key) to bring up to date.

    :ivar items: what was requested since the last run, in order; None: everything (a full run: too many
        items, a request without an item, or ``force``). An empty tuple: nothing in particular (a run
        asked for by :meth:`BackgroundWork.run_now` or :meth:`again`).
    :ivar force: redo everything from the source data (``rebuild-index``), not only what changed.
    """

    stowage: "Stowage"
    repository: "Repository"
    key: str
    items: tuple[str, ...] | None
    force: bool = False
    again_after: float | None = field(default=None, init=False)
    _lost: threading.Event = field(factory=threading.Event, init=False, repr=False)

    def again(self, after: float) -> None:
        """Run this (repository, key) again ``after`` seconds from now even if nothing is requested
        meanwhile (expiring what a run left for later: old files kept for a grace period)."""
        self.again_after = after if self.again_after is None else min(self.again_after, after)

    @property
    def lease_lost(self) -> bool:
        """True once renewing the lease failed (this process stalled longer than ``lease_seconds``):
        another process may be running the same work; stop before publishing anything more."""
        return self._lost.is_set()

    def check_lease(self) -> None:
        """Raise :class:`~stowage.errors.Conflict` if the lease was lost (call it before publishing: the
        run then fails and its request stays, to be retried)."""
        if self._lost.is_set():
            raise Conflict(f"lost the lease on {self.repository.name} {self.key!r}: another process may be "
                           f"running the same work")


class BackgroundWork:
    """This process's scheduler of registered background jobs (one per app: :meth:`of`)."""

    def __init__(self, stowage: "Stowage"):
        self.stowage = stowage
        self.jobs: dict[str, BackgroundJob] = dict(stowage.plugins.background_jobs)
        #: how often the scheduler looks for due markers (a request in this process wakes it at once).
        self.poll_seconds = 0.5
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    @classmethod
    def of(cls, stowage: "Stowage") -> "BackgroundWork":
        return stowage.extension("stowage.background-work", lambda: cls(stowage))

    def job(self, name: str) -> "BackgroundJob":
        try:
            return self.jobs[name]
        except KeyError:
            raise NotFound(f"no background job {name!r} is registered") from None

    def configure(self, name: str, **changes: Any) -> None:
        """Change a registered job's timing in this process (``delay=``, ``max_delay=``, ``lease_seconds=``)."""
        self.jobs[name] = evolve(self.job(name), **changes)

    # -- requests ---------------------------------------------------------------------------------------
    def request(self, job: str, repository: str, key: str = "", *, item: str | None = None) -> None:
        """Ask for a run of ``job`` on (``repository``, ``key``); call it in the change's transaction.

        :param item: what changed (a path); None asks for a full run. Repeated requests before the run
            coalesce: the items are collected (each once), up to the job's ``max_items``.
        """
        spec = self.job(job)
        catalog = self.stowage.catalog
        name = marker_key(job, repository, key)
        now = time.time()
        with catalog.transaction():
            current = catalog.get_document(NAMESPACE, name)
            if current is None:
                marker: dict[str, Any] = {"first": now, "last": now, "seq": 1, "items": []}
            else:
                marker = dict(current, last=now, seq=current["seq"] + 1)
                if marker.pop("followUp", False):  # only a scheduled follow-up was waiting: a new burst
                    marker["first"] = now
                    marker.pop("notBefore", None)
            items = marker["items"]
            if items is not None:
                if item is None or len(items) >= spec.max_items:
                    marker["items"] = None
                elif item not in items:
                    marker["items"] = [*items, item]
            catalog.put_document(NAMESPACE, name, marker)
        catalog.after_commit(self._wake.set)

    def pending(self, job: str | None = None, repository: str | None = None) -> list[Pending]:
        """The markers not yet run, of one job (and repository) or all."""
        prefix = "" if job is None else f"{job}/" if repository is None else f"{job}/{repository}/"
        found = [Pending.of(name, value) for name, value in self.stowage.catalog.list_documents(NAMESPACE,
                                                                                               prefix=prefix)]
        return [p for p in found if repository is None or p.repository == repository]

    # -- running ----------------------------------------------------------------------------------------
    def run_pending(self, *, job: str | None = None, repository: str | None = None, due_only: bool = True) -> int:
        """Run the markers whose burst is over (every marker unless ``due_only``); returns how many ran.
        A marker whose lease another process holds is left to it."""
        done = 0
        now = time.time()
        for pending in self.pending(job, repository):
            if self._stop.is_set() and threading.current_thread() is self._thread:
                break  # shutting down: the rest stays requested for the next process
            spec = self.jobs.get(pending.job)
            if spec is None:  # its plugin is not installed here; a process that has it will run it
                continue
            if due_only and not pending.due(spec, now):
                continue
            if self._run(spec, pending.repository, pending.key, only_if_pending=True, due_only=due_only):
                done += 1
        return done

    def run_now(self, job: str, repository: str, key: str = "", *, force: bool = False, wait: float = 0.0) -> bool:
        """Run ``job`` on (``repository``, ``key``) now in this thread, requested or not (a marker's items
        are included). Waits up to ``wait`` seconds for the lease; False if another process held it. What
        the run raises is raised here (a request for the key stays, retried later)."""
        return self._run(self.job(job), repository, key, force=force, wait=wait)

    def _run(self, spec: "BackgroundJob", repository: str, key: str, *, force: bool = False, wait: float = 0.0,
             only_if_pending: bool = False, due_only: bool = False) -> bool:
        catalog = self.stowage.catalog
        name = marker_key(spec.name, repository, key)
        lease = f"background:{name}"
        owner = f"{self.stowage.node_id}#{secrets.token_hex(4)}"
        deadline = time.monotonic() + wait
        while not catalog.acquire_lease(lease, owner, spec.lease_seconds):
            if time.monotonic() >= deadline or self._stop.is_set():
                return False
            time.sleep(0.05)
        try:
            marker = catalog.get_document(NAMESPACE, name)  # read under the lease: it may be done already
            if only_if_pending and (marker is None or due_only and not Pending.of(name, marker).due(spec, time.time())):
                return False  # done by another process meanwhile (and maybe requested again since)
            try:
                repo = self.stowage.repository(repository)
            except NotFound:  # the repository was deleted: nothing left to do for it
                catalog.delete_document(NAMESPACE, name)
                return False
            items: tuple[str, ...] | None = ()
            if force or (marker is not None and marker.get("items") is None):
                items = None
            elif marker is not None:
                items = tuple(marker["items"])
            work = Work(stowage=self.stowage, repository=repo, key=key, items=items, force=force)
            with _Heartbeat(self.stowage, lease, owner, spec.lease_seconds, work):
                try:
                    spec.run(work)
                except Exception:
                    try:
                        self._retry_later(name, marker)
                    except Exception:  # the catalog may be failing too (a full disk): the run's error matters
                        log.exception("recording the failure of %s on %s %r failed", spec.name, repository, key)
                    if not only_if_pending:  # run_now: the caller (a request, a task) reports it
                        raise
                    log.exception("background job %s on %s %r failed; it is retried", spec.name, repository, key)
                    return False
            self._finish(name, marker, work)
            return True
        finally:
            catalog.release_lease(lease, owner)

    @staticmethod
    def _follow_up(after: float) -> dict[str, Any]:
        now = time.time()
        return {"first": now, "last": now, "seq": 1, "items": [], "notBefore": now + after, "followUp": True}

    def _finish(self, name: str, marker: dict[str, Any] | None, work: Work) -> None:
        """Remove the marker the run started from, unless a request arrived meanwhile (it runs again)."""
        catalog = self.stowage.catalog
        with catalog.transaction():
            current = catalog.get_document(NAMESPACE, name)
            unchanged = current is None or (marker is not None and current["seq"] == marker["seq"])
            if not unchanged:
                return
            if work.again_after is not None:
                catalog.put_document(NAMESPACE, name, self._follow_up(work.again_after))
            elif current is not None:
                catalog.delete_document(NAMESPACE, name)

    def _retry_later(self, name: str, marker: dict[str, Any] | None) -> None:
        catalog = self.stowage.catalog
        with catalog.transaction():
            current = catalog.get_document(NAMESPACE, name)
            if current is None:  # a run_now without a request failed: nothing to retry
                return
            failures = int(current.get("failures", 0)) + 1
            backoff = min(RETRY_SECONDS * 2 ** (failures - 1), MAX_RETRY_SECONDS)
            catalog.put_document(NAMESPACE, name, dict(current, failures=failures, notBefore=time.time() + backoff))

    # -- the scheduler thread -----------------------------------------------------------------------------
    def start(self) -> None:
        """Start this process's scheduler thread (core does at app start when any job is registered)."""
        with self._lock:
            if self._thread is None and self.jobs:
                self._thread = threading.Thread(target=self._loop, name="stowage-background-work", daemon=True)
                self._thread.start()

    def close(self) -> None:
        self._stop.set()
        self._wake.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=30)

    def nudge(self) -> None:
        """Look for due markers now rather than at the next poll."""
        self._wake.set()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.run_pending(due_only=True)
            except Exception:  # the loop must survive a failed round; the markers stay for the next one
                log.exception("a background work round failed")
            self._wake.wait(self.poll_seconds)
            self._wake.clear()


class _Heartbeat:
    """Renews a run's lease every third of its time to live while the run lasts."""

    def __init__(self, stowage: "Stowage", lease: str, owner: str, ttl: float, work: Work):
        self.catalog = stowage.catalog
        self.lease, self.owner, self.ttl, self.work = lease, owner, ttl, work
        self._done = threading.Event()

    def __enter__(self) -> "_Heartbeat":
        threading.Thread(target=self._beat, name=f"stowage-lease-{self.lease}", daemon=True).start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._done.set()

    def _beat(self) -> None:
        while not self._done.wait(self.ttl / 3):
            try:
                if not self.catalog.acquire_lease(self.lease, self.owner, self.ttl):
                    log.warning("lost the lease %s (another process may run the same work)", self.lease)
                    self.work._lost.set()
                    return
            except Exception:
                log.exception("renewing the lease %s failed", self.lease)
