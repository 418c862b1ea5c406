"""Scheduled maintenance tasks, run once across workers and nodes.

A *task type* (:class:`~stowage.registration.Task`) is registered by a plugin; a *task* is one configured
instance of a type (its own id, name, schedule and property values), kept in the catalog (``tasks``), so
tasks and their schedules survive restarts and every node sees the same ones. What a task is doing and
how its last run ended is a second document (``tasks.runs``), written by the run, never by the REST API.

A run holds the catalog lease ``task:<id>`` (renewed while it runs): a second ``run`` anywhere is refused
while one is going, and a schedule fires on exactly one node. A run whose process dies stops renewing its
lease; whoever next looks at the task (the scheduler of any node, or a REST read) marks it FAILED.
``stop`` sets a flag in the run's document that the run checks between units of work, wherever it runs.
"""

from __future__ import annotations

import inspect
import logging
import secrets
import threading
import time
import uuid
from typing import TYPE_CHECKING, Any, Mapping

from stowage.errors import BadRequest, Conflict, MethodNotAllowed, NotFound
from stowage.registration import Task
from stowage.schedules import Frequency, next_run, parse_frequency
from stowage.serialization import iso_time

if TYPE_CHECKING:
    from stowage.stowage import Stowage

log = logging.getLogger(__name__)

TASKS = "tasks"
RUNS = "tasks.runs"
#: types whose default task was created once (deleting that task is then respected).
SEEDED = "tasks.seeded"
#: how often a run may write its progress message or look for a stop request.
PROGRESS_SECONDS = 1.0


class TaskStopped(Exception):
    """Raised inside a run by :meth:`TaskContext.check_stopped` once someone asked it to stop."""


class TaskContext:
    """What a running task sees: its settings, a way to report progress, and whether to stop."""

    def __init__(self, runner: "TaskRunner", task_id: str, properties: Mapping[str, str]):
        self.runner = runner
        self.task_id = task_id
        self.properties: Mapping[str, str] = dict(properties)
        self._written = 0.0
        self._checked = 0.0
        self._stopping = False

    def progress(self, message: str, *, force: bool = False) -> None:
        """Show ``message`` as the task's ``message`` while it runs (written at most once a second)."""
        now = time.monotonic()
        if not force and now - self._written < PROGRESS_SECONDS:
            return
        self._written = now
        self.runner._update_run(self.task_id, message=message)

    @property
    def stopping(self) -> bool:
        """True once ``POST /tasks/{id}/stop`` was called (on any node); checked at most once a second."""
        now = time.monotonic()
        if not self._stopping and now - self._checked >= PROGRESS_SECONDS:
            self._checked = now
            state = self.runner.stowage.catalog.get_document(RUNS, self.task_id) or {}
            self._stopping = bool(state.get("stopRequested"))
        return self._stopping

    def check_stopped(self) -> None:
        """Raise :class:`TaskStopped` if the task was asked to stop; call it between units of work."""
        if self.stopping:
            raise TaskStopped()


class TaskRunner:
    def __init__(self, stowage: "Stowage"):
        self.stowage = stowage
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        self._seeded = False
        #: a run renews its lease every third of this; a run whose process died is FAILED after it.
        self.lease_seconds = stowage.settings.task_lease_seconds

    @classmethod
    def of(cls, stowage: "Stowage") -> "TaskRunner":
        return stowage.extension("tasks", lambda: cls(stowage))

    # -- types and tasks ------------------------------------------------------------------------------
    @property
    def types(self) -> dict[str, Task]:
        return dict(self.stowage.plugins.tasks)

    def task_type(self, type_id: str) -> Task:
        try:
            return self.stowage.plugins.tasks[type_id]
        except KeyError:
            raise NotFound(f"task type {type_id} not found") from None

    def ensure_defaults(self) -> None:
        """Create, once per catalog, the default task of each type that has one (id = the type)."""
        if self._seeded:
            return
        catalog = self.stowage.catalog
        seeded = {key for key, _ in catalog.list_documents(SEEDED)}
        missing = [t for t in self.types.values() if t.type not in seeded and t.initial_schedule is not None]
        if missing:
            now = time.time()
            with catalog.transaction():
                for task_type in missing:
                    if catalog.get_document(SEEDED, task_type.type) is not None:
                        continue
                    frequency = parse_frequency({"schedule": task_type.initial_schedule}, now)
                    if catalog.get_document(TASKS, task_type.type) is None:
                        self._save(task_type.type, {"type": task_type.type, "name": task_type.name,
                                                    "enabled": True, "frequency": frequency.to_json(),
                                                    "properties": self._properties(task_type, {})}, now)
                    catalog.put_document(SEEDED, task_type.type, True)
        self._seeded = True

    def tasks(self) -> list[dict[str, Any]]:
        self.ensure_defaults()
        return [dict(value, id=key) for key, value in self.stowage.catalog.list_documents(TASKS)]

    def get(self, task_id: str) -> dict[str, Any]:
        self.ensure_defaults()
        stored = self.stowage.catalog.get_document(TASKS, task_id)
        if stored is None:
            raise NotFound(f"task {task_id} not found")
        return dict(stored, id=task_id)

    def create(self, body: Mapping[str, Any]) -> dict[str, Any]:
        task_type = self.task_type_of(body)
        task_id = str(uuid.uuid4())
        self._save(task_id, self._parse(task_type, body), time.time())
        return self.get(task_id)

    def update(self, task_id: str, body: Mapping[str, Any]) -> dict[str, Any]:
        current = self.get(task_id)
        if "type" in body and body["type"] != current["type"]:
            raise BadRequest(f"task {task_id} is of type {current['type']}; the type cannot change")
        merged = {"type": current["type"], "name": current["name"], "enabled": current["enabled"],
                  "frequency": current["frequency"], "properties": current["properties"], **body}
        with self.stowage.catalog.transaction():
            self.get(task_id)  # deleted meanwhile?
            self._save(task_id, self._parse(self.task_type(current["type"]), merged), time.time())
        return self.get(task_id)

    def delete(self, task_id: str) -> None:
        catalog = self.stowage.catalog
        with catalog.transaction():
            self.get(task_id)
            if self.running(task_id):
                raise Conflict(f"task {task_id} is running; stop it first")
            catalog.delete_document(TASKS, task_id)
            catalog.delete_document(RUNS, task_id)

    def task_type_of(self, body: Mapping[str, Any]) -> Task:
        type_id = body.get("type")
        if not isinstance(type_id, str) or type_id not in self.stowage.plugins.tasks:
            known = ", ".join(sorted(self.stowage.plugins.tasks))
            raise BadRequest(f"type {type_id!r} is not a task type (known: {known})")
        return self.task_type(type_id)

    def _parse(self, task_type: Task, body: Mapping[str, Any]) -> dict[str, Any]:
        unknown = set(body) - {"type", "name", "enabled", "frequency", "properties", "alertEmail",
                               "notificationCondition", "id"}
        if unknown:
            raise BadRequest(f"unknown field(s) {', '.join(sorted(unknown))}")
        name = body.get("name", task_type.name)
        if not isinstance(name, str) or not name.strip() or len(name) > 255:
            raise BadRequest("name must be a non-empty string of at most 255 characters")
        enabled = body.get("enabled", True)
        if not isinstance(enabled, bool):
            raise BadRequest("enabled must be true or false")
        frequency = parse_frequency(body.get("frequency"), time.time())
        properties = body.get("properties") or {}
        if not isinstance(properties, Mapping):
            raise BadRequest("properties must be an object of strings")
        return {"type": task_type.type, "name": name, "enabled": enabled, "frequency": frequency.to_json(),
                "properties": self._properties(task_type, properties)}

    def _properties(self, task_type: Task, given: Mapping[str, Any]) -> dict[str, str]:
        declared = {p.id: p for p in task_type.properties}
        unknown = set(given) - set(declared)
        if unknown:
            raise BadRequest(f"task type {task_type.type} has no property {', '.join(sorted(unknown))} "
                             f"(it takes: {', '.join(declared) or 'none'})")
        values: dict[str, str] = {}
        for prop in task_type.properties:
            raw = given.get(prop.id, prop.default)
            if raw is None or raw == "":
                if prop.required:
                    raise BadRequest(f"properties.{prop.id} is required for a {task_type.type} task")
                continue
            if isinstance(raw, bool):
                raw = "true" if raw else "false"
            if not isinstance(raw, (str, int, float)):
                raise BadRequest(f"properties.{prop.id} must be a string")
            value = str(raw)
            if prop.type == "integer":
                try:
                    if int(value) < 0:
                        raise ValueError(value)
                except ValueError:
                    raise BadRequest(f"properties.{prop.id} must be a whole number >= 0, not {value!r}") from None
            elif prop.type == "boolean" and value not in ("true", "false"):
                raise BadRequest(f"properties.{prop.id} must be true or false")
            elif prop.type == "repository" and value != "*":
                if all(r.name != value for r in self.stowage.repositories()):
                    raise BadRequest(f"properties.{prop.id}: repository {value} does not exist")
            elif prop.type == "blobstore" and value not in self.stowage.blob_stores():
                raise BadRequest(f"properties.{prop.id}: blob store {value} does not exist")
            values[prop.id] = value
        return values

    def _save(self, task_id: str, config: dict[str, Any], now: float) -> None:
        catalog = self.stowage.catalog
        frequency = Frequency(**_frequency_fields(config["frequency"]))
        with catalog.transaction():
            catalog.put_document(TASKS, task_id, config)
            state = catalog.get_document(RUNS, task_id) or {}
            state["nextRun"] = next_run(frequency, now) if config["enabled"] else None
            catalog.put_document(RUNS, task_id, state)

    # -- state ----------------------------------------------------------------------------------------
    def state(self, task_id: str) -> dict[str, Any]:
        return self.stowage.catalog.get_document(RUNS, task_id) or {}

    def running(self, task_id: str) -> bool:
        return self.stowage.catalog.lease_holder(f"task:{task_id}") is not None

    def describe(self, task: Mapping[str, Any], *, full: bool = False) -> dict[str, Any]:
        """Nexus's ``TaskXO`` (``full``: with the template fields, for ``GET /tasks/{id}``)."""
        state = self.reap(task["id"])
        running = self.running(task["id"])
        body = {"id": task["id"], "name": task["name"], "type": task["type"], "message": state.get("message"),
                "currentState": "RUNNING" if running else "WAITING", "lastRun": iso_time(state.get("lastRun")),
                "nextRun": iso_time(state.get("nextRun")) if task["enabled"] else None,
                "lastRunResult": state.get("lastRunResult")}
        if full:
            body.update(enabled=task["enabled"], frequency=task["frequency"], properties=task["properties"],
                        notificationCondition="FAILURE")
        return body

    def reap(self, task_id: str) -> dict[str, Any]:
        """The run state, after marking FAILED a run whose process died (its lease expired)."""
        state = self.state(task_id)
        if not state.get("runStarted") or self.running(task_id):
            return state
        catalog = self.stowage.catalog
        with catalog.transaction():
            state = self.state(task_id)
            if state.get("runStarted") and not self.running(task_id):
                started = state.pop("runStarted")
                state.pop("stopRequested", None)
                state.update(lastRun=started, lastRunResult="FAILED",
                             message=f"the run on {state.pop('node', 'another node')} stopped with its process "
                                     f"(last message: {state.get('message')})")
                catalog.put_document(RUNS, task_id, state)
        return state

    def _update_run(self, task_id: str, **changes: Any) -> None:
        catalog = self.stowage.catalog
        with catalog.transaction():
            state = self.state(task_id)
            state.update(changes)
            catalog.put_document(RUNS, task_id, state)

    # -- running --------------------------------------------------------------------------------------
    def start(self, task_id: str, *, scheduled: bool = False) -> threading.Thread | None:
        """Run the task in a background thread; :class:`Conflict` when it is running anywhere.

        ``scheduled``: only if its next run is due (then the next one is computed), and quietly None
        when it is not due or runs elsewhere.
        """
        task = self.get(task_id)
        task_type = self.task_type(task["type"])
        if not task["enabled"] and not scheduled:
            raise MethodNotAllowed(f"task {task_id} is disabled")
        key = f"task:{task_id}"
        owner = f"{self.stowage.node_id}:{secrets.token_hex(4)}"
        catalog = self.stowage.catalog
        self.reap(task_id)
        with catalog.transaction():
            if not catalog.acquire_lease(key, owner, self.lease_seconds):
                if scheduled:
                    return None
                raise Conflict(f"task {task_id} is already running")
            state = self.state(task_id)
            now = time.time()
            if scheduled:
                due = state.get("nextRun")
                if not task["enabled"] or due is None or due > now:  # another node ran it meanwhile
                    catalog.release_lease(key, owner)
                    return None
                state["nextRun"] = next_run(Frequency(**_frequency_fields(task["frequency"])), now)
            state.update(runStarted=now, node=self.stowage.node_id, stopRequested=False,
                         message=f"{task['name']}: started")
            catalog.put_document(RUNS, task_id, state)
        context = TaskContext(self, task_id, task["properties"])
        thread = threading.Thread(target=self._run, args=(task_type, context, key, owner),
                                  name=f"stowage-task-{task_id}", daemon=True)
        with self._lock:
            self._threads = [t for t in self._threads if t.is_alive()] + [thread]
        thread.start()
        return thread

    def stop(self, task_id: str) -> None:
        self.get(task_id)
        with self.stowage.catalog.transaction():
            if not self.running(task_id):
                raise Conflict(f"task {task_id} is not running")
            self._update_run(task_id, stopRequested=True)

    def run_due(self) -> None:
        """Start every enabled task whose next run time has come (the scheduler calls this)."""
        now = time.time()
        for task in self.tasks():
            state = self.reap(task["id"])
            due = state.get("nextRun")
            if task["enabled"] and due is not None and due <= now:
                try:
                    self.start(task["id"], scheduled=True)
                except NotFound:  # its type's plugin is gone
                    log.warning("task %s: type %s is not installed; not run", task["id"], task["type"])

    def _run(self, task_type: Task, context: TaskContext, key: str, owner: str) -> None:
        catalog = self.stowage.catalog
        done = threading.Event()
        task_id = context.task_id

        def heartbeat() -> None:
            while not done.wait(self.lease_seconds / 3):
                try:
                    catalog.acquire_lease(key, owner, self.lease_seconds)
                except Exception:
                    log.exception("task %s: renewing its lease failed", task_id)

        threading.Thread(target=heartbeat, name=f"stowage-task-lease-{task_id}", daemon=True).start()
        try:
            message = call_task(task_type, self.stowage, context)
            result = {"lastRunResult": "OK", "message": message or f"{task_type.name}: done"}
        except TaskStopped:
            result = {"lastRunResult": "CANCELED",
                      "message": f"stopped on request ({self.state(task_id).get('message')})"}
        except Exception as error:
            log.exception("task %s (%s) failed", task_id, task_type.type)
            result = {"lastRunResult": "FAILED", "message": f"{type(error).__name__}: {error}"}
        finally:
            done.set()
        try:
            with catalog.transaction():
                state = self.state(task_id)
                started = state.pop("runStarted", None) or time.time()
                state.pop("stopRequested", None)
                state.pop("node", None)
                state.update(lastRun=started, duration=time.time() - started, **result)
                if catalog.get_document(TASKS, task_id) is not None:
                    catalog.put_document(RUNS, task_id, state)
                catalog.release_lease(key, owner)
        except Exception:
            log.exception("task %s: recording its outcome failed", task_id)

    def close(self) -> None:
        with self._lock:
            threads = list(self._threads)
        for thread in threads:
            thread.join(timeout=30)


def call_task(task_type: Task, stowage: "Stowage", context: TaskContext) -> str | None:
    """Call ``task_type.run`` with the arguments it names (``stowage``, ``context``)."""
    available = {"stowage": stowage, "context": context}
    try:
        names = inspect.signature(task_type.run).parameters
    except (TypeError, ValueError):
        return task_type.run(stowage)
    return task_type.run(**{name: value for name, value in available.items() if name in names})


def _frequency_fields(data: Mapping[str, Any]) -> dict[str, Any]:
    return {"schedule": data.get("schedule", "manual"), "start_date": data.get("startDate"),
            "time_zone_offset": data.get("timeZoneOffset") or "+00:00",
            "recurring_days": tuple(data.get("recurringDays") or ()), "cron_expression": data.get("cronExpression")}
