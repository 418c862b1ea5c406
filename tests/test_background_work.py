"""Background work (``stowage.background``): coalesced per repository and key, one process at a time under a
catalog lease (SQLite and PostgreSQL), resumed after ``kill -9``, retried after a failure."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import attrs
import pytest

from stowage.errors import PluginError
from stowage.plugin import BackgroundJob, BackgroundWork, Work, hookimpl
from stowage.settings import CatalogSettings
from stowage.testing import python_process

JOB = "test.index"
STATE = "test-background"
REPOSITORIES = [{"name": "r", "format": "raw", "type": "hosted"}]


def record_run(work: Work) -> None:
    """Records each run in the catalog (visible to every process); ``control`` makes it block or fail."""
    catalog = work.stowage.catalog
    with catalog.transaction():
        runs = catalog.get_document(STATE, "runs") or []
        catalog.put_document(STATE, "runs", [*runs, {"repository": work.repository.name, "key": work.key,
                                                     "items": None if work.items is None else list(work.items),
                                                     "force": work.force, "pid": os.getpid()}])
    deadline = time.monotonic() + 60
    while (catalog.get_document(STATE, "control") or {}).get("block") and time.monotonic() < deadline:
        time.sleep(0.02)
    control = catalog.get_document(STATE, "control") or {}
    if control.get("fail"):
        raise RuntimeError("asked to fail")
    if control.get("again"):
        work.again(control["again"])
    if control.get("check_lease"):
        work.check_lease()


class IndexPlugin:
    @hookimpl
    def stowage_register_background_jobs(self) -> list[BackgroundJob]:
        return [BackgroundJob(name=JOB, run=record_run, delay=3600.0, max_delay=7200.0, lease_seconds=2.0)]


def runs(stowage) -> list[dict]:
    return stowage.catalog.get_document(STATE, "runs") or []


def control(stowage, **values) -> None:
    stowage.catalog.put_document(STATE, "control", values)


def wait_for(condition, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


@pytest.fixture(params=["sqlite", "postgresql"])
def catalog_kwargs(request: pytest.FixtureRequest) -> dict:
    """How to reach one catalog that every app of a test shares (SQLite: the shared data directory)."""
    if request.param == "sqlite":
        return {}
    url = request.getfixturevalue("postgres_catalog_url")
    return {"catalog": CatalogSettings(type="postgresql", url=url, pool_size=4)}


@pytest.fixture
def make_app(stowage_factory, tmp_path: Path, catalog_kwargs: dict):
    def make():
        return stowage_factory(data_dir=tmp_path / "data", plugins=[IndexPlugin()], repositories=REPOSITORIES,
                               **catalog_kwargs).stowage

    return make


def test_hook_stowage_register_background_jobs(stowage_factory):
    stowage = stowage_factory(plugins=[IndexPlugin()], repositories=REPOSITORIES).stowage
    work = BackgroundWork.of(stowage)
    assert work.job(JOB).lease_seconds == 2.0
    assert stowage.plugins.background_jobs[JOB].run is record_run
    work.request(JOB, "r", "k", item="a")
    assert work.run_pending(due_only=False) == 1
    assert runs(stowage) == [{"repository": "r", "key": "k", "items": ["a"], "force": False, "pid": os.getpid()}]


def test_requests_coalesce_into_one_run(stowage_factory):
    stowage = stowage_factory(plugins=[IndexPlugin()], repositories=REPOSITORIES).stowage
    work = BackgroundWork.of(stowage)
    for i in range(50):
        with stowage.catalog.transaction():  # as a change would: the request commits with it
            work.request(JOB, "r", "root/", item=f"p{i % 25}")
    [pending] = work.pending(JOB)
    assert (pending.repository, pending.key, pending.seq) == ("r", "root/", 50)
    assert pending.items == [f"p{i}" for i in range(25)]  # each once, in request order
    assert work.run_pending() == 0  # the burst is not over (delay 3600 s)
    assert work.run_pending(due_only=False) == 1
    assert [run["items"] for run in runs(stowage)] == [[f"p{i}" for i in range(25)]]
    assert work.pending() == []


def test_too_many_items_or_none_asks_for_everything(stowage_factory):
    stowage = stowage_factory(plugins=[IndexPlugin()], repositories=REPOSITORIES).stowage
    work = BackgroundWork.of(stowage)
    work.configure(JOB, max_items=3)
    for i in range(5):
        work.request(JOB, "r", "a", item=str(i))
    work.request(JOB, "r", "b", item="x")
    work.request(JOB, "r", "b")
    work.request(JOB, "r", "b", item="y")
    assert {p.key: p.items for p in work.pending()} == {"a": None, "b": None}
    work.run_now(JOB, "r", "c", force=True)
    assert runs(stowage)[-1]["items"] is None and runs(stowage)[-1]["force"] is True


def test_the_scheduler_runs_a_burst_once_it_is_over(stowage_factory):
    stowage = stowage_factory(plugins=[IndexPlugin()], repositories=REPOSITORIES).stowage
    work = BackgroundWork.of(stowage)
    for item in "abc":  # the registered 3600 s delay: no load can split this burst
        work.request(JOB, "r", "k", item=item)
    assert runs(stowage) == []
    work.configure(JOB, delay=0.3)  # the burst is over: the scheduler runs it once 0.3 s have passed
    work.nudge()
    wait_for(lambda: runs(stowage), timeout=60)
    assert [run["items"] for run in runs(stowage)] == [["a", "b", "c"]]
    wait_for(lambda: work.pending() == [])
    # max_delay: a key requested without a pause still runs
    work.configure(JOB, delay=3600.0, max_delay=0.5)
    started = time.monotonic()
    while len(runs(stowage)) == 1:
        assert time.monotonic() - started < 60
        work.request(JOB, "r", "k", item="busy")
        time.sleep(0.05)
    assert runs(stowage)[1]["items"][0] == "busy"


def test_a_request_during_a_run_runs_again(make_app):
    stowage = make_app()
    work = BackgroundWork.of(stowage)
    work.request(JOB, "r", "k", item="a")
    control(stowage, block=True)
    runner = threading.Thread(target=work.run_pending, kwargs={"due_only": False})
    runner.start()
    wait_for(lambda: runs(stowage))
    work.request(JOB, "r", "k", item="b")  # arrives while "a" is processed
    control(stowage)
    runner.join()
    [pending] = work.pending()
    assert "b" in pending.items
    assert work.run_pending(due_only=False) == 1
    assert "b" in runs(stowage)[-1]["items"]
    assert work.pending() == []


def test_one_process_at_a_time(make_app):
    first, second = make_app(), make_app()  # two processes' apps on one catalog
    first_work, second_work = BackgroundWork.of(first), BackgroundWork.of(second)
    # A 4 s lease renewed every 1.3 s: a loaded machine's stall of the renewing thread stays inside it.
    first_work.configure(JOB, lease_seconds=4.0)
    first_work.request(JOB, "r", "k", item="a")
    control(first, block=True)
    runner = threading.Thread(target=first_work.run_pending, kwargs={"due_only": False})
    runner.start()
    wait_for(lambda: runs(first))
    time.sleep(4.5)  # past lease_seconds: the running process renews its lease
    assert second_work.run_now(JOB, "r", "k") is False
    assert second_work.run_pending(due_only=False) == 0
    control(first)
    runner.join()
    assert len(runs(second)) == 1 and second_work.pending() == []
    assert second_work.run_now(JOB, "r", "k", wait=5) is True


def test_threads_of_one_process_do_not_share_a_lease(stowage_factory):
    stowage = stowage_factory(plugins=[IndexPlugin()], repositories=REPOSITORIES).stowage
    work = BackgroundWork.of(stowage)
    work.configure(JOB, lease_seconds=30.0)  # no expiry however loaded the machine is
    control(stowage, block=True)
    runner = threading.Thread(target=work.run_now, args=(JOB, "r", "k"))
    runner.start()
    wait_for(lambda: runs(stowage))
    assert work.run_now(JOB, "r", "k") is False  # same node, other thread: the lease owner is per run
    control(stowage)
    runner.join()


def test_a_run_that_lost_its_lease_publishes_nothing_and_stays_requested(stowage_factory, caplog):
    stowage = stowage_factory(plugins=[IndexPlugin()], repositories=REPOSITORIES).stowage
    work = BackgroundWork.of(stowage)
    work.request(JOB, "r", "k", item="a")
    control(stowage, block=True, check_lease=True)
    runner = threading.Thread(target=work.run_pending, kwargs={"due_only": False})
    runner.start()
    wait_for(lambda: runs(stowage))
    lease = f"background:{JOB}/r/k"
    catalog = stowage.catalog
    with catalog.transaction():  # as if this process had stalled past the lease and another took it
        catalog.release_lease(lease, catalog.lease_holder(lease))
        assert catalog.acquire_lease(lease, "another-process", 60)
    # the next renewal (every third of the 2 s lease) finds it taken and says so
    wait_for(lambda: "lost the lease" in caplog.text, timeout=60)
    control(stowage, check_lease=True)
    runner.join()
    assert "lost the lease" in caplog.text
    [pending] = work.pending()
    assert pending.items == ["a"] and catalog.lease_holder(lease) == "another-process"


HOLDER = """
import os, sys
sys.path.insert(0, {tests!r})
from test_background_work import IndexPlugin, REPOSITORIES
from stowage.plugin import BackgroundWork
from stowage.settings import CatalogSettings
from stowage.testing.harness import build_stowage
kwargs = {{"catalog": CatalogSettings(type="postgresql", url={url!r}, pool_size=2)}} if {url!r} else {{}}
stowage = build_stowage({data!r}, plugins=[IndexPlugin()], repositories=REPOSITORIES, **kwargs).stowage
BackgroundWork.of(stowage).run_pending(due_only=False)  # blocks in the run until it is killed
"""


@pytest.mark.slow
def test_a_run_killed_with_sigkill_is_taken_over(make_app, tmp_path: Path, catalog_kwargs: dict):
    stowage = make_app()
    work = BackgroundWork.of(stowage)
    work.request(JOB, "r", "k", item="a")
    control(stowage, block=True)
    url = catalog_kwargs["catalog"].url if catalog_kwargs else ""
    script = HOLDER.format(tests=str(Path(__file__).parent), url=url, data=str(tmp_path / "data"))
    with python_process(script) as holder:
        wait_for(lambda: runs(stowage), timeout=60)
        assert runs(stowage)[0]["pid"] == holder.pid
        assert work.run_now(JOB, "r", "k") is False  # the holder's lease is alive
    assert holder.returncode == -signal.SIGKILL
    control(stowage)
    [pending] = work.pending()  # the work it was doing is still requested
    assert pending.items == ["a"]
    wait_for(lambda: work.run_pending(due_only=False) == 1, timeout=60)  # once its lease expired (2 s)
    assert runs(stowage)[-1]["pid"] == os.getpid() and runs(stowage)[-1]["items"] == ["a"]
    assert work.pending() == []


def test_a_failed_run_is_retried_later(stowage_factory, caplog):
    stowage = stowage_factory(plugins=[IndexPlugin()], repositories=REPOSITORIES).stowage
    work = BackgroundWork.of(stowage)
    control(stowage, fail=True)
    work.request(JOB, "r", "k", item="a")
    assert work.run_pending(due_only=False) == 0
    assert "asked to fail" in caplog.text
    [pending] = work.pending()
    assert pending.items == ["a"] and pending.not_before > time.time()  # backs off before the next try
    assert not pending.due(attrs.evolve(work.job(JOB), delay=0.0), time.time())
    with pytest.raises(RuntimeError, match="asked to fail"):  # run_now: the caller sees the error
        work.run_now(JOB, "r", "k")
    assert work.pending()[0].items == ["a"]
    control(stowage)
    assert work.run_pending(due_only=False) == 1
    assert work.pending() == []


def test_again_schedules_a_follow_up_run(stowage_factory):
    stowage = stowage_factory(plugins=[IndexPlugin()], repositories=REPOSITORIES).stowage
    work = BackgroundWork.of(stowage)
    work.close()  # no scheduler thread: the test runs what is due itself
    work.configure(JOB, delay=0.0)
    control(stowage, again=0.5)
    before = time.time()
    assert work.run_now(JOB, "r", "k") is True
    after = time.time()
    [pending] = work.pending()
    assert pending.follow_up and pending.items == []
    # not before 0.5 s after the run (checked on the marker: a loaded machine may take longer than
    # 0.5 s to get here, so "run_pending() finds nothing due now" would be a race)
    assert before + 0.5 <= pending.not_before <= after + 0.5
    assert not pending.due(work.job(JOB), pending.not_before - 0.01)
    control(stowage)
    time.sleep(max(0.0, pending.not_before - time.time()) + 0.05)
    assert work.run_pending() == 1 and work.pending() == []
    # a real request merges into a waiting follow-up as a new burst
    control(stowage, again=60)
    work.run_now(JOB, "r", "k")
    work.configure(JOB, delay=3600.0)
    work.request(JOB, "r", "k", item="z")
    [pending] = work.pending()
    assert pending.items == ["z"] and pending.not_before is None and time.time() - pending.first < 5
    assert not pending.follow_up


def test_work_for_a_deleted_repository_is_dropped(stowage_factory):
    stowage = stowage_factory(plugins=[IndexPlugin()], repositories=REPOSITORIES).stowage
    work = BackgroundWork.of(stowage)
    work.request(JOB, "gone", "k", item="a")
    assert work.run_pending(due_only=False) == 0
    assert work.pending() == [] and runs(stowage) == []


def test_registrations_are_validated(stowage_factory):
    with pytest.raises(ValueError, match="dotted lower-case"):
        BackgroundJob(name="Index", run=record_run)
    with pytest.raises(ValueError, match="lease_seconds"):
        BackgroundJob(name="a.b", run=record_run, lease_seconds=0)
    with pytest.raises(PluginError, match="already registered"):
        stowage_factory(plugins=[IndexPlugin(), type("Again", (IndexPlugin,), {})()])
