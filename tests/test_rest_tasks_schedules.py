"""Tasks as Nexus has them: templates, several tasks of one type, schedules, stop, progress, crashed runs."""

import datetime
import threading
import time

import pytest
import urllib3

from stowage.errors import BadRequest
from stowage.hookspecs import hookimpl
from stowage.registration import Task, TaskProperty
from stowage.schedules import next_run, parse_frequency
from stowage.tasks import RUNS, TaskRunner

V1 = "/service/rest/v1"


class SlowPlugin:
    """A task type with a property that works in steps, reports progress and honours stop."""

    def __init__(self):
        self.runs = []
        self.release = threading.Event()

    @hookimpl
    def stowage_register_tasks(self):
        def count(context):
            steps = int(context.properties["steps"])
            for step in range(steps):
                context.check_stopped()
                context.progress(f"counted {step:,} of {steps:,}", force=True)
                self.release.wait(0.05)
            self.runs.append(dict(context.properties))
            return f"counted {steps} for {context.properties.get('label', '-')}"

        return [Task(type="demo.count", name="Count", run=count,
                     properties=[TaskProperty("steps", "Steps", type="integer", required=True),
                                 TaskProperty("label", "Label")])]


def call(url, method, path, headers, body=None):
    return urllib3.request(method, f"{url}{V1}{path}", headers=headers, json=body)


def wait_done(url, headers, task_id, timeout=20):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        task = call(url, "GET", f"/tasks/{task_id}", headers).json()
        if task["currentState"] == "WAITING" and task["lastRunResult"]:
            return task
        time.sleep(0.05)
    raise AssertionError(f"{task_id} did not finish")


@pytest.fixture
def served(stowage_factory, live_server_factory):
    plugin = SlowPlugin()
    ts = stowage_factory(plugins=[plugin])
    return plugin, ts, live_server_factory(ts)


def test_templates_list_every_type_with_its_properties(served):
    _, ts, live = served
    templates = call(live.url, "GET", "/tasks/templates", ts.admin).json()
    by_type = {t["type"]: t for t in templates}
    assert {"demo.count", "blobstore.compact", "repository.cleanup"} <= set(by_type)
    count = by_type["demo.count"]
    assert count["properties"] == {"steps": "", "label": ""} and count["frequency"] == {"schedule": "manual"}
    assert {"id": "steps", "label": "Steps", "type": "integer", "required": True, "default": None} in \
        count["propertyDefinitions"]
    assert call(live.url, "GET", "/tasks/templates/demo.count", ts.admin).json() == count
    assert call(live.url, "GET", "/tasks/templates/nope", ts.admin).status == 404
    assert call(live.url, "GET", "/tasks/templates", {}).status == 401


def test_several_tasks_of_one_type_each_with_its_id_and_properties(served):
    plugin, ts, live = served
    # a type with a required property has no default task
    assert call(live.url, "GET", "/tasks?type=demo.count", ts.admin).json()["items"] == []
    ids = []
    for label in ("a", "b"):
        answer = call(live.url, "POST", "/tasks", ts.admin, {
            "type": "demo.count", "name": f"count {label}", "enabled": True,
            "frequency": {"schedule": "manual"}, "properties": {"steps": "2", "label": label}})
        assert answer.status == 201, answer.data
        created = answer.json()
        assert created["type"] == "demo.count" and created["id"] != "demo.count"
        assert created["properties"] == {"steps": "2", "label": label} and created["nextRun"] is None
        ids.append(created["id"])
    listed = call(live.url, "GET", "/tasks?type=demo.count", ts.admin).json()["items"]
    assert sorted(t["id"] for t in listed) == sorted(ids)
    assert call(live.url, "POST", f"/tasks/{ids[1]}/run", ts.admin).status == 204
    task = wait_done(live.url, ts.admin, ids[1])
    assert task["lastRunResult"] == "OK" and task["message"] == "counted 2 for b"
    assert plugin.runs == [{"steps": "2", "label": "b"}]
    assert call(live.url, "GET", f"/tasks/{ids[0]}", ts.admin).json()["lastRun"] is None

    updated = call(live.url, "PUT", f"/tasks/{ids[0]}", ts.admin, {"name": "renamed", "properties": {"steps": "1"}})
    assert updated.status == 200 and updated.json()["name"] == "renamed"
    assert updated.json()["properties"] == {"steps": "1"}
    assert call(live.url, "PUT", f"/tasks/{ids[0]}", ts.admin, {"type": "blobstore.compact"}).status == 400
    assert call(live.url, "DELETE", f"/tasks/{ids[0]}", ts.admin).status == 204
    assert call(live.url, "GET", f"/tasks/{ids[0]}", ts.admin).status == 404
    assert call(live.url, "DELETE", f"/tasks/{ids[0]}", ts.admin).status == 404


@pytest.mark.parametrize("body, words", [
    ({"type": "nope", "name": "x"}, "not a task type"),
    ({"type": "demo.count", "name": "x"}, "properties.steps is required"),
    ({"type": "demo.count", "name": "x", "properties": {"steps": "many"}}, "whole number"),
    ({"type": "demo.count", "name": "x", "properties": {"steps": "1", "colour": "red"}}, "no property colour"),
    ({"type": "demo.count", "name": "", "properties": {"steps": "1"}}, "name"),
    ({"type": "demo.count", "name": "x", "properties": {"steps": "1"}, "frequency": {"schedule": "sometimes"}},
     "frequency.schedule"),
    ({"type": "demo.count", "name": "x", "properties": {"steps": "1"},
      "frequency": {"schedule": "cron", "cronExpression": "0 0 25 * * ?"}}, "cronExpression"),
    ({"type": "demo.count", "name": "x", "properties": {"steps": "1"},
      "frequency": {"schedule": "weekly", "recurringDays": [8]}}, "recurringDays"),
    ({"type": "demo.count", "name": "x", "properties": {"steps": "1"},
      "frequency": {"schedule": "daily", "timeZoneOffset": "+25:00"}}, "timeZoneOffset"),
    ({"type": "blobstore.compact", "name": "x", "properties": {"blobstoreName": "missing"}}, "does not exist"),
    (["not", "an", "object"], "JSON object"),
])
def test_bad_task_bodies_are_400_and_create_nothing(served, body, words):
    _, ts, live = served
    before = call(live.url, "GET", "/tasks", ts.admin).json()["items"]
    answer = call(live.url, "POST", "/tasks", ts.admin, body)
    assert answer.status == 400 and words in answer.data.decode(), answer.data
    assert call(live.url, "GET", "/tasks", ts.admin).json()["items"] == before


def test_a_long_task_reports_progress_and_can_be_stopped(served):
    plugin, ts, live = served
    task_id = call(live.url, "POST", "/tasks", ts.admin, {"type": "demo.count", "name": "long",
                                                        "properties": {"steps": "100000"}}).json()["id"]
    assert call(live.url, "POST", f"/tasks/{task_id}/stop", ts.admin).status == 409  # not running
    assert call(live.url, "POST", f"/tasks/{task_id}/run", ts.admin).status == 204
    deadline = time.monotonic() + 10
    while True:
        task = call(live.url, "GET", f"/tasks/{task_id}", ts.admin).json()
        if task["currentState"] == "RUNNING" and task["message"].startswith("counted ") and \
                not task["message"].startswith("counted 0 "):
            break
        assert time.monotonic() < deadline, task
        time.sleep(0.05)
    assert "of 100,000" in task["message"]
    assert call(live.url, "POST", f"/tasks/{task_id}/run", ts.admin).status == 409
    assert call(live.url, "POST", f"/tasks/{task_id}/stop", ts.admin).status == 204
    task = wait_done(live.url, ts.admin, task_id)
    assert task["lastRunResult"] == "CANCELED" and "of 100,000" in task["message"]
    assert plugin.runs == []


def test_a_disabled_task_is_not_run_on_request(served):
    _, ts, live = served
    task_id = call(live.url, "POST", "/tasks", ts.admin, {"type": "demo.count", "name": "off", "enabled": False,
                                                        "properties": {"steps": "1"}}).json()["id"]
    assert call(live.url, "POST", f"/tasks/{task_id}/run", ts.admin).status == 405


def test_a_run_that_died_with_its_process_is_marked_failed(served):
    _, ts, live = served
    runner = TaskRunner.of(ts.stowage)
    task_id = call(live.url, "POST", "/tasks", ts.admin, {"type": "demo.count", "name": "x",
                                                        "properties": {"steps": "1"}}).json()["id"]
    # what a node that was killed mid-run leaves behind: a run state whose lease is no longer renewed
    catalog = ts.stowage.catalog
    catalog.put_document(RUNS, task_id, {"runStarted": time.time() - 120, "node": "gone:1",
                                         "message": "counted 5 of 9"})
    assert catalog.acquire_lease(f"task:{task_id}", "gone:1", 0.2)
    assert call(live.url, "GET", f"/tasks/{task_id}", ts.admin).json()["currentState"] == "RUNNING"
    time.sleep(0.3)
    task = call(live.url, "GET", f"/tasks/{task_id}", ts.admin).json()
    assert task["currentState"] == "WAITING" and task["lastRunResult"] == "FAILED"
    assert "gone:1" in task["message"] and "counted 5 of 9" in task["message"] and task["lastRun"]
    assert runner.start(task_id) is not None  # and it can run again


def test_schedules_fire_once_across_nodes_and_survive_restarts(stowage_factory, live_server_factory, tmp_path):
    plugins = [SlowPlugin(), SlowPlugin()]
    first = stowage_factory(plugins=[plugins[0]], data_dir=tmp_path / "shared", scheduler_interval_seconds=0.1)
    soon = int(time.time()) + 4  # later than the POST can take on a loaded machine
    created = call(live_server_factory(first).url, "POST", "/tasks", first.admin, {
        "type": "demo.count", "name": "nightly", "properties": {"steps": "1"},
        "frequency": {"schedule": "once", "startDate": soon}}).json()
    task_id = created["id"]
    assert created["nextRun"].startswith(
        datetime.datetime.fromtimestamp(soon, datetime.timezone.utc).isoformat()[:19])
    first.stowage.close()  # "restart": the schedule is in the catalog, not in this process
    nodes = [stowage_factory(plugins=[plugin], data_dir=tmp_path / "shared", scheduler_interval_seconds=0.1)
             for plugin in plugins]
    one = live_server_factory(nodes[0])
    live_server_factory(nodes[1])
    task = wait_done(one.url, nodes[0].admin, task_id)
    time.sleep(0.5)
    assert task["lastRunResult"] == "OK" and task["nextRun"] is None
    assert len(plugins[0].runs) + len(plugins[1].runs) == 1


def test_the_default_cleanup_task_exists_and_is_daily(served):
    _, ts, live = served
    task = call(live.url, "GET", "/tasks/repository.cleanup", ts.admin).json()
    assert task["type"] == "repository.cleanup" and task["frequency"]["schedule"] == "daily"
    assert task["nextRun"] is not None
    # deleting a default task is respected by the next start
    assert call(live.url, "DELETE", "/tasks/repository.cleanup", ts.admin).status == 204
    TaskRunner.of(ts.stowage)._seeded = False
    assert call(live.url, "GET", "/tasks/repository.cleanup", ts.admin).status == 404


UTC = datetime.timezone.utc


def at(*args, tz=UTC):
    return datetime.datetime(*args, tzinfo=tz).timestamp()


@pytest.mark.parametrize("frequency, after, expected", [
    ({"schedule": "manual"}, at(2026, 1, 1), None),
    ({"schedule": "once", "startDate": int(at(2026, 1, 2))}, at(2026, 1, 1), at(2026, 1, 2)),
    ({"schedule": "once", "startDate": int(at(2026, 1, 2))}, at(2026, 1, 3), None),
    ({"schedule": "hourly", "startDate": int(at(2026, 1, 1, 0, 30))}, at(2026, 1, 1, 5, 0), at(2026, 1, 1, 5, 30)),
    ({"schedule": "daily", "startDate": int(at(2026, 1, 1, 2, 0))}, at(2026, 1, 5, 3, 0), at(2026, 1, 6, 2, 0)),
    # 2026-01-01 is a Thursday; 2 = Monday, 6 = Friday (1 = Sunday, as in Nexus)
    ({"schedule": "weekly", "startDate": int(at(2026, 1, 1, 1, 0)), "recurringDays": [2, 6]},
     at(2026, 1, 1, 2, 0), at(2026, 1, 2, 1, 0)),
    ({"schedule": "weekly", "startDate": int(at(2026, 1, 1, 1, 0)), "recurringDays": [2]},
     at(2026, 1, 1, 2, 0), at(2026, 1, 5, 1, 0)),
    ({"schedule": "monthly", "startDate": int(at(2026, 1, 1, 1, 0)), "recurringDays": [31]},
     at(2026, 2, 1), at(2026, 3, 31, 1, 0)),
    ({"schedule": "daily", "startDate": int(at(2026, 1, 1, 23, 0)), "timeZoneOffset": "-05:00"},
     at(2026, 1, 2, 0, 0), at(2026, 1, 2, 23, 0)),
    # Quartz: sec min hour day month weekday; "?" for no value; weekday 2 = Monday
    ({"schedule": "cron", "cronExpression": "0 30 2 ? * 2", "startDate": int(at(2026, 1, 1))},
     at(2026, 1, 1), at(2026, 1, 5, 2, 30)),
    ({"schedule": "cron", "cronExpression": "0 0 1 * * ?", "timeZoneOffset": "+02:00",
      "startDate": int(at(2026, 1, 1))}, at(2026, 1, 1, 0, 0), at(2026, 1, 1, 23, 0)),
    ({"schedule": "cron", "cronExpression": "15 0/10 * * * ? 2027", "startDate": int(at(2026, 1, 1))},
     at(2026, 1, 1), at(2027, 1, 1, 0, 0, 15)),
    ({"schedule": "cron", "cronExpression": "*/5 * * * *", "startDate": int(at(2026, 1, 1))},
     at(2026, 1, 1, 0, 1), at(2026, 1, 1, 0, 5)),
])
def test_next_run_of_each_schedule(frequency, after, expected):
    assert next_run(parse_frequency(frequency, at(2025, 12, 1)), after) == expected


@pytest.mark.parametrize("expression", ["0 0 25 * * ?", "0 0 * * * 8", "1 2 3", "a b c d e f", "0 0 0 32 * ?"])
def test_bad_cron_expressions_are_refused(expression):
    with pytest.raises(BadRequest):
        parse_frequency({"schedule": "cron", "cronExpression": expression}, time.time())
