"""The ``stowage_register_tasks`` hook: plugin tasks appear in /service/rest/v1/tasks and run there."""

import time

import pytest
import urllib3

from stowage.errors import PluginError
from stowage.hookspecs import hookimpl
from stowage.registration import Task

V1 = "/service/rest/v1"


class RebuildPlugin:
    """What a format plugin does, e.g. yum: a task that rebuilds its metadata."""

    def __init__(self):
        self.runs = []

    @hookimpl
    def stowage_register_tasks(self):
        def rebuild(stowage):
            self.runs.append(stowage)
            return f"rebuilt metadata of {len(stowage.repositories())} repositories"

        def broken(stowage):
            raise RuntimeError("upstream index unreadable")

        return [Task(type="demo.rebuild-metadata", name="Rebuild demo metadata", run=rebuild),
                Task(type="demo.broken", name="Always fails", run=broken)]


def wait_done(url, headers, task_id):
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        task = urllib3.request("GET", f"{url}{V1}/tasks/{task_id}", headers=headers).json()
        if task["currentState"] == "WAITING" and task["lastRunResult"]:
            return task
        time.sleep(0.05)
    raise AssertionError(f"{task_id} did not finish")


def test_hook_stowage_register_tasks(stowage_factory, live_server_factory):
    plugin = RebuildPlugin()
    ts = stowage_factory(plugins=[plugin])
    live = live_server_factory(ts)
    ids = {t["id"] for t in urllib3.request("GET", f"{live.url}{V1}/tasks", headers=ts.admin).json()["items"]}
    assert {"demo.rebuild-metadata", "demo.broken", "blobstore.compact"} <= ids

    assert urllib3.request("POST", f"{live.url}{V1}/tasks/demo.rebuild-metadata/run", headers=ts.admin).status == 204
    task = wait_done(live.url, ts.admin, "demo.rebuild-metadata")
    assert task["lastRunResult"] == "OK" and task["message"] == "rebuilt metadata of 0 repositories"
    assert task["lastRun"] and task["nextRun"] is None
    assert plugin.runs == [ts.stowage]

    urllib3.request("POST", f"{live.url}{V1}/tasks/demo.broken/run", headers=ts.admin)
    task = wait_done(live.url, ts.admin, "demo.broken")
    assert task["lastRunResult"] == "FAILED" and "upstream index unreadable" in task["message"]


class Duplicate:
    @hookimpl
    def stowage_register_tasks(self):
        return [Task(type="blobstore.compact", name="mine", run=lambda stowage: None)]


class NotATask:
    @hookimpl
    def stowage_register_tasks(self):
        return [{"type": "demo.dict"}]


@pytest.mark.parametrize("plugin", [Duplicate(), NotATask()], ids=["duplicate-type", "not-a-task"])
def test_bad_task_registrations_are_refused(plugin):
    from stowage.pluginmanager import make_plugin_manager

    with pytest.raises(PluginError):
        make_plugin_manager(load_entrypoints=False, plugins=[plugin], strict=True)
    manager = make_plugin_manager(load_entrypoints=False, plugins=[plugin], strict=False)
    assert manager.failures and manager.tasks["blobstore.compact"].name != "mine"


def test_task_types_are_checked():
    with pytest.raises(ValueError):
        Task(type="Not A Type", name="x", run=lambda stowage: None)
