"""/service/rest/v1/cleanup-policies, repositories' cleanup.policyNames, the preview, and raw cleanup."""

import threading
import time

import pytest
import urllib3

from stowage.cleanup import run_cleanup
from stowage.settings import load_config_file
from stowage.serialization import make_converter

V1 = "/service/rest/v1"


def call(url, method, path, headers, body=None):
    return urllib3.request(method, f"{url}{V1}{path}", headers=headers, json=body)


@pytest.fixture
def served(stowage_factory, live_server_factory):
    ts = stowage_factory()
    return ts, live_server_factory(ts)


def test_policy_crud_in_nexus_shapes(served):
    ts, live = served
    body = {"name": "old-snapshots", "notes": "n", "format": "raw", "criteriaLastBlobUpdated": 30,
            "criteriaLastDownloaded": 60, "criteriaReleaseType": "PRERELEASES", "criteriaAssetRegex": r".*\.tmp",
            "retain": 3}
    assert call(live.url, "POST", "/cleanup-policies", ts.admin, body).status == 201
    assert call(live.url, "GET", "/cleanup-policies/old-snapshots", ts.admin).json() == body
    assert call(live.url, "GET", "/cleanup-policies", ts.admin).json() == [body]
    assert call(live.url, "POST", "/cleanup-policies", ts.admin, body).status == 409
    changed = dict(body, retain=None, notes="changed", format="*")
    assert call(live.url, "PUT", "/cleanup-policies/old-snapshots", ts.admin, changed).status == 204
    assert call(live.url, "GET", "/cleanup-policies/old-snapshots", ts.admin).json() == changed
    assert call(live.url, "PUT", "/cleanup-policies/nope", ts.admin, dict(body, name="nope")).status == 404
    assert call(live.url, "GET", "/cleanup-policies/nope", ts.admin).status == 404
    assert call(live.url, "DELETE", "/cleanup-policies/old-snapshots", ts.admin).status == 204
    assert call(live.url, "DELETE", "/cleanup-policies/old-snapshots", ts.admin).status == 404
    assert call(live.url, "GET", "/cleanup-policies", {}).status == 401
    from stowage.security import User
    from stowage.testing.harness import basic_auth

    ts.stowage.security.save_user(User(user_id="dev", roles=("nx-deployer",)), "dev-pw")
    developer = basic_auth("dev", "dev-pw")
    for method, path, body in (("GET", "/cleanup-policies", None), ("POST", "/cleanup-policies", body),
                               ("DELETE", "/cleanup-policies/x", None),
                               ("POST", "/cleanup-policies/preview", dict(body, repository="x"))):
        assert call(live.url, method, path, developer, body).status == 403, (method, path)


@pytest.mark.parametrize("change, words", [
    ({"criteriaAssetRegex": "(unclosed"}, "not a valid regular expression"),
    ({"format": "cobol"}, "not an installed format"),
    ({"retain": 0}, "retain must be a whole number"),
    ({"criteriaLastDownloaded": -1}, "criteriaLastDownloaded"),
    ({"criteriaLastBlobUpdated": 10**9}, "criteriaLastBlobUpdated"),
    ({"criteriaLastBlobUpdated": True}, "criteriaLastBlobUpdated"),
    ({"criteriaReleaseType": "SOMETIMES"}, "criteriaReleaseType"),
    ({"name": "../etc"}, "name"),
    ({"name": "x" * 300}, "name"),
    ({"colour": "red"}, "unknown field"),
])
def test_bad_policies_are_400_and_change_nothing(served, change, words):
    ts, live = served
    answer = call(live.url, "POST", "/cleanup-policies", ts.admin, {"name": "p", "format": "raw", "retain": 1, **change})
    assert answer.status == 400 and words in answer.data.decode(), answer.data
    assert call(live.url, "GET", "/cleanup-policies", ts.admin).json() == []


def test_repositories_name_existing_policies_of_their_format_and_groups_none(served):
    ts, live = served
    call(live.url, "POST", "/cleanup-policies", ts.admin, {"name": "raw-old", "format": "raw", "criteriaLastBlobUpdated": 5})
    call(live.url, "POST", "/cleanup-policies", ts.admin, {"name": "npm-old", "format": "npm", "criteriaLastBlobUpdated": 5})
    hosted = {"name": "files", "online": True, "storage": {"blobStoreName": "default", "strictContentTypeValidation": True,
                                                          "writePolicy": "ALLOW"}}
    for names, words in ((["missing"], "does not exist"), (["npm-old"], "is for npm repositories")):
        answer = call(live.url, "POST", "/repositories/raw/hosted", ts.admin, dict(hosted, cleanup={"policyNames": names}))
        assert answer.status == 400 and words in answer.data.decode()
    assert call(live.url, "GET", "/repositories/files", ts.admin).status == 404
    assert call(live.url, "POST", "/repositories/raw/hosted", ts.admin,
                dict(hosted, cleanup={"policyNames": ["raw-old"]})).status == 201
    group = {"name": "all", "online": True, "storage": {"blobStoreName": "default", "strictContentTypeValidation": True},
             "group": {"memberNames": ["files"]}, "cleanup": {"policyNames": ["raw-old"]}}
    answer = call(live.url, "POST", "/repositories/raw/group", ts.admin, group)
    assert answer.status == 400 and "group" in answer.data.decode()
    # in use: not deletable (409 naming the repository), not turned into another format
    answer = call(live.url, "DELETE", "/cleanup-policies/raw-old", ts.admin)
    assert answer.status == 409 and "files" in answer.data.decode()
    answer = call(live.url, "PUT", "/cleanup-policies/raw-old", ts.admin, {"name": "raw-old", "format": "npm"})
    assert answer.status == 400
    assert call(live.url, "PUT", "/repositories/raw/hosted/files", ts.admin, dict(hosted, cleanup={"policyNames": []})).status == 204
    assert call(live.url, "DELETE", "/cleanup-policies/raw-old", ts.admin).status == 204


def test_policies_from_the_configuration_file(tmp_path, stowage_factory):
    config = tmp_path / "stowage.toml"
    config.write_text('''
[[cleanupPolicies]]
name = "tmp-files"
format = "raw"
criteriaAssetRegex = ".*\\\\.tmp"

[[repositories]]
name = "files"
format = "raw"
type = "hosted"
cleanup = { policyNames = ["tmp-files"] }
''')
    loaded = load_config_file(config, make_converter())
    ts = stowage_factory(repositories=loaded.repositories, cleanup_policies=loaded.cleanup_policies)
    policy = ts.client.simulate_get(f"{V1}/cleanup-policies/tmp-files", headers=ts.admin).json
    assert policy["criteriaAssetRegex"] == r".*\.tmp" and policy["format"] == "raw"
    assert ts.stowage.repository("files").config.cleanup.policy_names == ("tmp-files",)
    bad = tmp_path / "bad.toml"
    bad.write_text('[[cleanupPolicies]]\nname = "x"\nformat = "raw"\nretain = 0\n')
    with pytest.raises(Exception, match=r"cleanupPolicies\[0\]: retain"):
        stowage_factory(cleanup_policies=load_config_file(bad, make_converter()).cleanup_policies)


def _raw_repository(ts, live, policy):
    call(live.url, "POST", "/cleanup-policies", ts.admin, policy)
    ts.create_repository(name="files", format="raw", type="hosted", storage={"writePolicy": "ALLOW"},
                         cleanup={"policyNames": [policy["name"]]})
    for path in ("keep/a.txt", "keep/b.bin", "drop/c.tmp", "drop/d.tmp", "keep/e.tmp.txt"):
        assert urllib3.request("PUT", f"{live.url}/repository/files/{path}", body=path.encode() * 100,
                               headers=ts.admin).status == 201


def test_raw_asset_regex_removes_matching_paths_only_and_preview_is_what_runs(served):
    ts, live = served
    policy = {"name": "tmp-files", "format": "raw", "criteriaAssetRegex": r".*\.tmp"}
    _raw_repository(ts, live, policy)
    preview = call(live.url, "POST", "/cleanup-policies/preview", ts.admin, dict(policy, repository="files")).json()
    assert [item["name"] for item in preview["items"]] == ["drop/c.tmp", "drop/d.tmp"]
    assert preview["items"][0]["assets"] == [{"path": "drop/c.tmp", "fileSize": 1000}]
    assert preview["totalBytes"] == 2000
    assert urllib3.request("GET", f"{live.url}/repository/files/drop/c.tmp").status == 200  # nothing removed yet
    before = {a.path for a in ts.stowage.catalog.iter_assets("files")}
    report = run_cleanup(ts.stowage)
    assert report.removed == 2 and report.removed_bytes == preview["totalBytes"]
    after = {a.path for a in ts.stowage.catalog.iter_assets("files")}
    assert before - after == {a["path"] for item in preview["items"] for a in item["assets"]}
    for path, status in (("drop/c.tmp", 404), ("drop/d.tmp", 404), ("keep/a.txt", 200), ("keep/e.tmp.txt", 200)):
        assert urllib3.request("GET", f"{live.url}/repository/files/{path}").status == status, path
    events = call(live.url, "GET", "/audit?action=content.cleanup", ts.admin).json()["items"]
    assert sorted(e["target"] for e in events) == ["drop/c.tmp", "drop/d.tmp"]
    assert {e["repository"] for e in events} == {"files"}


def test_criteria_hold_together(served):
    ts, live = served
    # the regex matches, but nothing is older than a day: nothing goes
    policy = {"name": "tmp-old", "format": "raw", "criteriaAssetRegex": r".*\.tmp", "criteriaLastBlobUpdated": 1}
    _raw_repository(ts, live, policy)
    assert call(live.url, "POST", "/cleanup-policies/preview", ts.admin,
                dict(policy, repository="files")).json() == {"items": [], "totalBytes": 0}
    assert run_cleanup(ts.stowage).removed == 0
    later = time.time() + 2 * 86400
    from stowage.cleanup import preview
    from stowage.cleanup_policies import CleanupPolicies

    policies = CleanupPolicies.of(ts.stowage).for_repository(ts.stowage.repository("files").config)
    assert [c.name for c in preview(ts.stowage.repository("files"), policies, now=later)] == ["drop/c.tmp",
                                                                                                "drop/d.tmp"]


def test_preview_refuses_what_it_cannot_answer(served):
    ts, live = served
    ts.create_repository(name="files", format="raw", type="hosted")
    for body, status in (({"name": "p", "format": "raw", "retain": 1}, 400),
                         ({"name": "p", "format": "raw", "retain": 1, "repository": "nope"}, 404),
                         ({"name": "p", "format": "npm", "retain": 1, "repository": "files"}, 400),
                         ({"format": "raw", "criteriaAssetRegex": "(", "repository": "files"}, 400)):
        assert call(live.url, "POST", "/cleanup-policies/preview", ts.admin, body).status == status, body


def test_the_cleanup_task_reports_progress_and_downloads_of_kept_files_never_fail(served):
    ts, live = served
    call(live.url, "POST", "/cleanup-policies", ts.admin, {"name": "tmp", "format": "raw", "criteriaAssetRegex": r".*\.tmp"})
    ts.create_repository(name="files", format="raw", type="hosted", storage={"writePolicy": "ALLOW"},
                         cleanup={"policyNames": ["tmp"]})
    repository = ts.stowage.repository("files")
    import io

    for n in range(300):
        repository.store(f"d/{n}.tmp", io.BytesIO(b"x" * 10), length=10)
    kept = b"kept bytes " * 5000
    repository.store("kept.bin", io.BytesIO(kept), length=len(kept))
    errors, stop = [], threading.Event()

    def download():
        http = urllib3.PoolManager()
        while not stop.is_set():
            answer = http.request("GET", f"{live.url}/repository/files/kept.bin")
            if answer.status != 200 or answer.data != kept:
                errors.append((answer.status, len(answer.data)))

    threads = [threading.Thread(target=download) for _ in range(2)]
    for thread in threads:
        thread.start()
    try:
        assert call(live.url, "POST", "/tasks/repository.cleanup/run", ts.admin).status == 204
        deadline = time.monotonic() + 60
        while True:
            task = call(live.url, "GET", "/tasks/repository.cleanup", ts.admin).json()
            if task["currentState"] == "WAITING" and task["lastRunResult"]:
                break
            assert time.monotonic() < deadline
            time.sleep(0.05)
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    assert task["lastRunResult"] == "OK" and task["message"].startswith("removed 300 of 300"), task
    assert not errors, errors[:3]
    assert [a.path for a in ts.stowage.catalog.iter_assets("files")] == ["kept.bin"]
