"""Hosted yum repositories: upload validation, deploy policy, depth, incremental coalesced repodata."""

from __future__ import annotations

import gzip
import hashlib
import re
import time
from pathlib import Path

import createrepo_c as cr
import pytest

from stowage.plugin import BackgroundWork

from stowage_yum import generate as generate_module
from stowage_yum import hosted, regeneration, rpmfile, state
from stowage_yum.regeneration import pending_roots
from stowage_yum.state import JOB, generation_namespace


def put(ts, path: str, data: bytes, repo: str = "yum-hosted"):
    return ts.client.simulate_put(f"/repository/{repo}/{path}", body=data, headers=ts.admin)


def get(ts, path: str, repo: str = "yum-hosted"):
    return ts.client.simulate_get(f"/repository/{repo}/{path}")


def run_once(ts, repo: str = "yum-hosted") -> int:
    """Run the repository's markers now in this thread; 0 for a marker whose lease another holds."""
    return BackgroundWork.of(ts.stowage).run_pending(job=JOB, repository=repo, due_only=False)


def flush(ts, repo: str = "yum-hosted", timeout: float = 60.0) -> int:
    """Bring the repodata up to date: run what is requested now, then wait while another holder of the
    lease (the app's own scheduler thread, whose short delay a slow upload outlasts) finishes its run.
    Returns how many runs this thread made."""
    done = run_once(ts, repo)
    deadline = time.monotonic() + timeout
    while pending_roots(ts.stowage.repository(repo)):
        assert time.monotonic() < deadline, BackgroundWork.of(ts.stowage).pending(JOB, repo)
        time.sleep(0.02)
        done += run_once(ts, repo)
    return done


def wait_until(condition, timeout: float = 60.0, interval: float = 0.05):
    """Poll until ``condition()`` is true (and return it); fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not (result := condition()):
        assert time.monotonic() < deadline, f"not true after {timeout} s"
        time.sleep(interval)
    return result


def repodata(ts, root: str = "", repo: str = "yum-hosted") -> dict[str, list]:
    """Parsed primary/filelists/other as served, after checking every repomd.xml checksum and size."""
    response = get(ts, f"{root}repodata/repomd.xml", repo)
    assert response.status_code == 200, response.text
    found = {"revision": int(re.search(r"<revision>(\d+)</revision>", response.text).group(1))}
    for block in re.findall(r"<data type=.*?</data>", response.text, re.S):
        kind = re.search(r'type="(\w+)"', block).group(1)
        href = re.search(r'<location href="([^"]+)"', block).group(1)
        checksum = re.search(r'<checksum type="sha256">(\w+)<', block).group(1)
        open_checksum = re.search(r'<open-checksum type="sha256">(\w+)<', block).group(1)
        size = int(re.search(r"<size>(\d+)</size>", block).group(1))
        body = get(ts, f"{root}{href}", repo).content
        assert hashlib.sha256(body).hexdigest() == checksum and len(body) == size, kind
        opened = gzip.decompress(body)
        assert hashlib.sha256(opened).hexdigest() == open_checksum, kind
        found[kind] = opened
    return found


def names(primary: bytes) -> list[str]:
    return sorted(re.findall(r'<location href="([^"]+)"', primary.decode()))


def test_upload_then_metadata_lists_it_with_matching_checksums(yum_app, rpms):
    ts = yum_app()
    assert put(ts, "hello-1.0-1.noarch.rpm", rpms["hello-1.0"].read_bytes()).status_code == 201
    assert put(ts, "sub/world-2.0-1.noarch.rpm", rpms["world-2.0"].read_bytes()).status_code == 201
    flush(ts)
    data = repodata(ts)
    assert names(data["primary"]) == ["hello-1.0-1.noarch.rpm", "sub/world-2.0-1.noarch.rpm"]
    sha = hashlib.sha256(rpms["hello-1.0"].read_bytes()).hexdigest()
    assert f'pkgid="YES">{sha}</checksum>' in data["primary"].decode()
    assert b'<rpm:entry name="world" flags="GE" epoch="0" ver="2"/>' in data["primary"]
    assert b"/usr/share/hello/VERSION" in data["filelists"]
    assert b"Version 1.0." in data["other"]
    served = get(ts, "hello-1.0-1.noarch.rpm")
    assert served.status_code == 200 and served.headers["content-type"] == "application/x-rpm"
    assert served.content == rpms["hello-1.0"].read_bytes()


def test_text_file_as_rpm_is_refused_and_revision_unchanged(yum_app, rpms):
    ts = yum_app()
    put(ts, "hello-1.0-1.noarch.rpm", rpms["hello-1.0"].read_bytes())
    flush(ts)
    before = repodata(ts)
    response = put(ts, "x.rpm", b"this is a text file, not an RPM\n")
    assert response.status_code == 400
    assert "x.rpm is not a valid RPM package" in response.text
    assert get(ts, "x.rpm").status_code == 404
    assert BackgroundWork.of(ts.stowage).pending(JOB) == []
    flush(ts)
    assert repodata(ts) == before


def test_filename_must_match_header(yum_app, rpms):
    ts = yum_app()
    response = put(ts, "world-2.0-1.noarch.rpm", rpms["hello-1.0"].read_bytes())
    assert response.status_code == 400 and "does not match its RPM header" in response.text
    response = put(ts, "hello-1.0-1.x86_64.rpm", rpms["hello-1.0"].read_bytes())
    assert response.status_code == 400 and "hello-1.0-1.noarch.rpm" in response.text


def test_strict_deploy_policy_refuses_other_files_permissive_accepts(yum_app, rpms):
    ts = yum_app()
    assert put(ts, "notes.txt", b"hi").status_code == 400
    assert "STRICT" in put(ts, "notes.txt", b"hi").text
    assert put(ts, "repodata/repomd.xml", b"<repomd/>").status_code == 400
    ts.create_repository(name="yum-loose", format="yum", type="hosted", yum={"deployPolicy": "PERMISSIVE"})
    assert put(ts, "notes.txt", b"hi", repo="yum-loose").status_code == 201
    assert put(ts, "bad.rpm", b"not an rpm", repo="yum-loose").status_code == 400


def test_repodata_depth(yum_app, rpms):
    ts = yum_app(depth=2)
    response = put(ts, "el9/hello-1.0-1.noarch.rpm", rpms["hello-1.0"].read_bytes())
    assert response.status_code == 400 and "repodataDepth 2" in response.text
    assert put(ts, "el9/x86_64/hello-1.0-1.noarch.rpm", rpms["hello-1.0"].read_bytes()).status_code == 201
    assert put(ts, "el9/x86_64/Packages/world-2.0-1.noarch.rpm", rpms["world-2.0"].read_bytes()).status_code == 201
    assert put(ts, "el8/noarch/lib-3.0-1.noarch.rpm", rpms["lib-3.0"].read_bytes()).status_code == 201
    flush(ts)
    assert names(repodata(ts, "el9/x86_64/")["primary"]) == ["Packages/world-2.0-1.noarch.rpm",
                                                            "hello-1.0-1.noarch.rpm"]
    assert names(repodata(ts, "el8/noarch/")["primary"]) == ["lib-3.0-1.noarch.rpm"]
    assert get(ts, "repodata/repomd.xml").status_code == 404


def test_bad_depth_setting_is_refused(yum_app):
    ts = yum_app()
    from stowage.plugin import ConfigurationError

    with pytest.raises(ConfigurationError, match="repodataDepth"):
        ts.create_repository(name="yum-deep", format="yum", type="hosted", yum={"repodataDepth": 6})


def test_component_upload_and_rest_delete(yum_app, rpms):
    ts = yum_app()
    with open(rpms["hello-1.1"], "rb") as handle:
        response = ts.client.simulate_post(
            "/service/rest/v1/components", params={"repository": "yum-hosted"}, headers=ts.admin,
            **_multipart({"yum.directory": "/pool/", "yum.asset.filename": "hello-1.1-1.noarch.rpm"},
                         ("yum.asset", "hello-1.1-1.noarch.rpm", handle.read())))
    assert response.status_code == 204, response.text
    flush(ts)
    assert names(repodata(ts)["primary"]) == ["pool/hello-1.1-1.noarch.rpm"]
    components = ts.client.simulate_get("/service/rest/v1/components", params={"repository": "yum-hosted"},
                                        headers=ts.admin).json["items"]
    assert [(c["name"], c["version"]) for c in components] == [("hello", "1.1-1")]
    assert ts.client.simulate_delete(f"/service/rest/v1/components/{components[0]['id']}",
                                     headers=ts.admin).status_code == 204
    flush(ts)
    assert names(repodata(ts)["primary"]) == []
    bad = ts.client.simulate_post("/service/rest/v1/components", params={"repository": "yum-hosted"},
                                  headers=ts.admin, **_multipart({"yum.asset.filename": "x.rpm"},
                                                                 ("yum.asset", "x.rpm", b"plain text")))
    assert bad.status_code == 400


def _multipart(fields: dict[str, str], file: tuple[str, str, bytes]) -> dict:
    boundary = "stowageboundary"
    parts = []
    for name, value in fields.items():
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode())
    name, filename, data = file
    parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; filename="{filename}"\r\n'
                 f"Content-Type: application/x-rpm\r\n\r\n".encode() + data + b"\r\n")
    parts.append(f"--{boundary}--\r\n".encode())
    return {"body": b"".join(parts), "content_type": f"multipart/form-data; boundary={boundary}"}


def test_burst_coalesces_into_one_regeneration(yum_app, rpms, monkeypatch):
    # A delay no burst of four uploads outlasts, however loaded the machine; shortened once the burst is over.
    ts = yum_app(delay=3600)
    generations = []
    original = regeneration.generate

    def counting(repository, root, **kwargs):
        generations.append(root)
        return original(repository, root, **kwargs)

    monkeypatch.setattr(regeneration, "generate", counting)
    for key in ("hello-1.0", "hello-1.1", "world-2.0", "lib-3.0"):
        assert put(ts, rpms[key].name, rpms[key].read_bytes()).status_code == 201
    assert generations == []  # still inside the burst
    [burst] = BackgroundWork.of(ts.stowage).pending(JOB)
    assert len(burst.items) == 4 and burst.seq == 4  # four requests, one marker
    BackgroundWork.of(ts.stowage).configure(JOB, delay=0.2)  # the burst is over: the scheduler runs it
    BackgroundWork.of(ts.stowage).nudge()
    wait_until(lambda: not BackgroundWork.of(ts.stowage).pending(JOB))
    assert generations == [""]
    assert len(names(repodata(ts)["primary"])) == 4
    assert BackgroundWork.of(ts.stowage).pending(JOB) == []


def test_delete_removes_package_within_coalescing_delay(yum_app, rpms):
    ts = yum_app(delay=3600)  # held until the request is looked at, then the 0.3 s delay below
    put(ts, "hello-1.0-1.noarch.rpm", rpms["hello-1.0"].read_bytes())
    put(ts, "hello-1.1-1.noarch.rpm", rpms["hello-1.1"].read_bytes())
    flush(ts)
    assert ts.client.simulate_delete("/repository/yum-hosted/hello-1.1-1.noarch.rpm",
                                     headers=ts.admin).status_code == 204
    # The delete is published by the app's own scheduler (nobody flushes), once the coalescing delay is
    # over. How soon depends on the machine's load, so what is checked exactly is the request's timing
    # (due after the delay, not before); the run itself is waited for with a generous bound.
    [request] = BackgroundWork.of(ts.stowage).pending(JOB)
    assert request.items == ["hello-1.1-1.noarch.rpm"]
    BackgroundWork.of(ts.stowage).configure(JOB, delay=0.3)
    job = BackgroundWork.of(ts.stowage).job(JOB)
    assert request.due(job, request.last + 0.31) and not request.due(job, request.last + 0.29)
    BackgroundWork.of(ts.stowage).nudge()
    wait_until(lambda: names(repodata(ts)["primary"]) == ["hello-1.0-1.noarch.rpm"])


def test_adding_one_rpm_reads_only_that_rpm(yum_app, rpms, monkeypatch):
    ts = yum_app()
    for key in ("hello-1.0", "hello-1.1", "world-2.0"):
        put(ts, rpms[key].name, rpms[key].read_bytes())
    flush(ts)
    reads = []
    original = rpmfile.read_rpm

    def counting(local_path, href):
        reads.append(href)
        return original(local_path, href)

    monkeypatch.setattr(hosted, "read_rpm", counting)  # the upload's one read
    monkeypatch.setattr(generate_module, "read_rpm", counting)  # none by the regeneration
    put(ts, rpms["lib-3.0"].name, rpms["lib-3.0"].read_bytes())
    flush(ts)
    assert reads == ["lib-3.0-1.noarch.rpm"]
    assert len(names(repodata(ts)["primary"])) == 4


def test_segments_recompress_only_changed_buckets(yum_app, rpms, monkeypatch):
    from stowage_yum import repodata as repodata_module

    monkeypatch.setattr(repodata_module, "BUCKET_TARGET", 1)  # 3 or 4 packages -> 4 buckets
    ts = yum_app()
    for key in ("hello-1.0", "hello-1.1", "world-2.0", "lib-3.0"):
        put(ts, rpms[key].name, rpms[key].read_bytes())
    flush(ts)
    built = []
    original = generate_module.build_segment
    monkeypatch.setattr(generate_module, "build_segment", lambda key, records: built.append(len(records)) or
                        original(key, records))
    ts.client.simulate_delete("/repository/yum-hosted/world-2.0-1.noarch.rpm", headers=ts.admin)
    flush(ts)
    assert len(built) == 1  # only the bucket that held world is rebuilt
    data = repodata(ts)
    assert names(data["primary"]) == ["hello-1.0-1.noarch.rpm", "hello-1.1-1.noarch.rpm", "lib-3.0-1.noarch.rpm"]
    assert b'packages="3"' in data["primary"]


def test_previous_generation_stays_for_grace_period_then_is_cleaned(yum_app, rpms):
    ts = yum_app()
    put(ts, "hello-1.0-1.noarch.rpm", rpms["hello-1.0"].read_bytes())
    flush(ts)
    old = get(ts, "repodata/repomd.xml").text
    old_files = re.findall(r'href="(repodata/[^"]+)"', old)
    put(ts, "world-2.0-1.noarch.rpm", rpms["world-2.0"].read_bytes())
    flush(ts)
    assert get(ts, "repodata/repomd.xml").text != old
    for path in old_files:  # a client holding the old repomd.xml can still fetch what it names
        assert get(ts, path).status_code == 200
    worker = regeneration.regeneration_settings(ts.stowage)
    worker.grace_seconds = 0
    put(ts, "lib-3.0-1.noarch.rpm", rpms["lib-3.0"].read_bytes())
    flush(ts)
    for path in old_files:
        assert get(ts, path).status_code == 404
    current = re.findall(r'href="(repodata/[^"]+)"', get(ts, "repodata/repomd.xml").text)
    # Without any further change, a follow-up run removes a generation whose grace period is over.
    worker.grace_seconds = 3600
    put(ts, "hello-1.1-1.noarch.rpm", rpms["hello-1.1"].read_bytes())
    flush(ts)
    assert all(get(ts, path).status_code == 200 for path in current)
    [follow_up] = BackgroundWork.of(ts.stowage).pending(JOB)
    assert follow_up.items == [] and follow_up.not_before > time.time() + 3000
    worker.grace_seconds = 0
    assert flush(ts) == 1
    assert all(get(ts, path).status_code == 404 for path in current)
    current = re.findall(r'href="(repodata/[^"]+)"', get(ts, "repodata/repomd.xml").text)
    for path in current:
        assert get(ts, path).status_code == 200
    published = ts.stowage.catalog.get_document(generation_namespace("yum-hosted"), "")
    assert sorted(published["files"]) == sorted(current)


def test_two_processes_share_the_work_through_the_catalog(yum_app, stowage_factory, rpms, tmp_path):
    """Two apps on one data directory: an upload to one is published by whichever takes the lease."""
    first = yum_app(data_dir=tmp_path / "shared")
    second = stowage_factory(data_dir=tmp_path / "shared")
    for app in (first, second):
        BackgroundWork.of(app.stowage).configure(JOB, delay=0.1)
    lease_key = f"background:{JOB}/yum-hosted/"
    assert first.stowage.catalog.acquire_lease(lease_key, "someone-else", 30)
    put(first, "hello-1.0-1.noarch.rpm", rpms["hello-1.0"].read_bytes())
    for app in (first, second):  # lease held: neither process regenerates
        assert run_once(app) == 0
    assert len(BackgroundWork.of(first.stowage).pending(JOB)) == 1
    first.stowage.catalog.release_lease(lease_key, "someone-else")
    BackgroundWork.of(first.stowage).close()  # only the second process is left to do it
    wait_until(lambda: not BackgroundWork.of(first.stowage).pending(JOB))
    assert names(repodata(second)["primary"]) == ["hello-1.0-1.noarch.rpm"]


def test_empty_repository_serves_empty_repodata(yum_app):
    ts = yum_app()
    data = repodata(ts, repo="yum-hosted2")
    assert b'packages="0"' in data["primary"]


def test_rebuild_index_reextracts_every_package(yum_app, rpms, monkeypatch):
    ts = yum_app()
    put(ts, "hello-1.0-1.noarch.rpm", rpms["hello-1.0"].read_bytes())
    put(ts, "world-2.0-1.noarch.rpm", rpms["world-2.0"].read_bytes())
    flush(ts)
    before = repodata(ts)
    # The kept state is lost or damaged: rebuild-index recovers it from the RPMs themselves.
    for key, _ in ts.stowage.catalog.list_documents(state.segment_namespace("yum-hosted")):
        ts.stowage.catalog.delete_document(state.segment_namespace("yum-hosted"), key)
    reads = []
    original = rpmfile.read_rpm
    monkeypatch.setattr(generate_module, "read_rpm", lambda local, href: reads.append(href) or original(local, href))
    response = ts.client.simulate_post("/service/rest/v1/repositories/yum-hosted/rebuild-index", headers=ts.admin)
    assert response.status_code in (200, 204), response.text
    assert sorted(reads) == ["hello-1.0-1.noarch.rpm", "world-2.0-1.noarch.rpm"]
    after = repodata(ts)
    assert after["revision"] > before["revision"]
    assert {k: v for k, v in after.items() if k != "revision"} == {k: v for k, v in before.items() if k != "revision"}


def test_changed_bucket_reuses_kept_chunks_of_its_other_packages(yum_app, rpms, monkeypatch):
    """With one bucket, adding a package rebuilds it from the kept chunks: no RPM is read again."""
    ts = yum_app()
    for key in ("hello-1.0", "hello-1.1"):
        put(ts, rpms[key].name, rpms[key].read_bytes())
    flush(ts)
    assert ts.stowage.catalog.list_documents(state.package_namespace("yum-hosted")) == []  # folded into segments
    monkeypatch.setattr(generate_module, "read_rpm", lambda *args: pytest.fail("an RPM was read again"))
    monkeypatch.setattr(generate_module, "rpm_assets", lambda *args: pytest.fail("the catalog was listed"))
    ts.client.simulate_delete("/repository/yum-hosted/hello-1.0-1.noarch.rpm", headers=ts.admin)
    flush(ts)
    assert names(repodata(ts)["primary"]) == ["hello-1.1-1.noarch.rpm"]


def test_generated_files_parse_with_createrepo_c(yum_app, rpms, tmp_path):
    ts = yum_app()
    for key in rpms:
        put(ts, rpms[key].name, rpms[key].read_bytes())
    flush(ts)
    _download_repo(ts, tmp_path / "repo")
    metadata = cr.Metadata()
    metadata.locate_and_load_xml(str(tmp_path / "repo"))
    assert sorted(metadata.get(k).name for k in metadata.keys()) == ["hello", "hello", "lib", "world"]


def _download_repo(ts, target: Path, repo: str = "yum-hosted") -> None:
    (target / "repodata").mkdir(parents=True)
    repomd = get(ts, "repodata/repomd.xml", repo).content
    (target / "repodata" / "repomd.xml").write_bytes(repomd)
    for href in re.findall(r'href="(repodata/[^"]+)"', repomd.decode()):
        (target / href).write_bytes(get(ts, href, repo).content)


def test_rebuild_of_many_packages_uses_worker_processes(yum_app, rpms, monkeypatch):
    from stowage_yum import extract

    monkeypatch.setattr(extract, "PARALLEL_THRESHOLD", 2)
    batches = []
    original = extract.extract_parallel
    monkeypatch.setattr(extract, "extract_parallel", lambda items: batches.append(len(items)) or original(items))
    ts = yum_app()
    for key in ("hello-1.0", "world-2.0", "lib-3.0"):
        put(ts, rpms[key].name, rpms[key].read_bytes())
    flush(ts)
    before = repodata(ts)
    monkeypatch.setattr(hosted, "read_rpm", lambda *args: pytest.fail("read in-process"))
    regeneration.rebuild(ts.stowage.repository("yum-hosted"))
    assert batches == [3]
    after = repodata(ts)
    assert {k: v for k, v in after.items() if k != "revision"} == {k: v for k, v in before.items() if k != "revision"}


def test_changing_the_depth_then_rebuilding_moves_the_repodata(yum_app, rpms):
    ts = yum_app()
    put(ts, "el9/hello-1.0-1.noarch.rpm", rpms["hello-1.0"].read_bytes())
    flush(ts)
    assert names(repodata(ts)["primary"]) == ["el9/hello-1.0-1.noarch.rpm"]
    ts.stowage.save_repository(ts.stowage.parse_repository(
        {"name": "yum-hosted", "format": "yum", "type": "hosted", "yum": {"repodataDepth": 1}}))
    assert ts.client.simulate_post("/service/rest/v1/repositories/yum-hosted/rebuild-index",
                                   headers=ts.admin).status_code in (200, 204)
    assert names(repodata(ts, "el9/")["primary"]) == ["hello-1.0-1.noarch.rpm"]
    assert get(ts, "repodata/repomd.xml").status_code == 404


def test_rebuild_metadata_task(yum_app, rpms):
    ts = yum_app()
    put(ts, "hello-1.0-1.noarch.rpm", rpms["hello-1.0"].read_bytes())
    flush(ts)
    before = repodata(ts)["revision"]
    response = ts.client.simulate_post("/service/rest/v1/tasks/yum.rebuild-metadata/run", headers=ts.admin)
    assert response.status_code in (200, 202, 204), response.text
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        task = ts.client.simulate_get("/service/rest/v1/tasks/yum.rebuild-metadata", headers=ts.admin).json
        if task["lastRunResult"]:
            break
        time.sleep(0.1)
    assert task["lastRunResult"] == "OK", task
    assert "yum-hosted" in task["message"]
    assert repodata(ts)["revision"] > before


def test_a_refused_upload_requests_no_regeneration(yum_app, rpms):
    """The request is written in the upload's transaction: an upload that is refused leaves none."""
    ts = yum_app(delay=3600)
    assert put(ts, "hello-1.0-1.noarch.rpm", rpms["hello-1.0"].read_bytes()).status_code == 201
    [before] = BackgroundWork.of(ts.stowage).pending(JOB)
    assert before.items == ["hello-1.0-1.noarch.rpm"]
    # ALLOW_ONCE (yum's default): the same path again is refused
    assert put(ts, "hello-1.0-1.noarch.rpm", rpms["hello-1.0"].read_bytes()).status_code == 400
    [after] = BackgroundWork.of(ts.stowage).pending(JOB)
    assert after.seq == before.seq


def test_markers_of_the_older_regenerator_are_adopted(yum_app, stowage_factory, rpms, tmp_path, monkeypatch):
    from stowage.plugin import BackgroundJob

    # The restarted app's scheduler must not run the adopted request before this test looks at it.
    monkeypatch.setattr(regeneration, "background_job", lambda: BackgroundJob(
        name=JOB, run=regeneration.run, delay=3600, max_delay=7200, lease_seconds=60.0))
    ts = yum_app(data_dir=tmp_path / "shared", delay=3600)
    assert put(ts, "hello-1.0-1.noarch.rpm", rpms["hello-1.0"].read_bytes()).status_code == 201
    work = BackgroundWork.of(ts.stowage)
    with ts.stowage.catalog.transaction():  # as the older version left it: its own marker, no request
        for pending in work.pending(JOB):
            ts.stowage.catalog.delete_document("background-work", f"{JOB}/yum-hosted/{pending.key}")
        ts.stowage.catalog.put_document(regeneration.OLD_MARKERS, "yum-hosted/",
                                        {"first": 1.0, "last": 1.0, "seq": 1, "paths": ["hello-1.0-1.noarch.rpm"]})
    restarted = stowage_factory(data_dir=tmp_path / "shared")
    assert ts.stowage.catalog.list_documents(regeneration.OLD_MARKERS) == []
    [adopted] = BackgroundWork.of(restarted.stowage).pending(JOB)
    assert (adopted.repository, adopted.key, adopted.items) == ("yum-hosted", "", ["hello-1.0-1.noarch.rpm"])
    assert flush(restarted) == 1
    assert names(repodata(restarted)["primary"]) == ["hello-1.0-1.noarch.rpm"]


KILLED_REGENERATOR = """
import sys, time
from stowage.plugin import BackgroundJob, BackgroundWork
from stowage.settings import CatalogSettings
from stowage.testing.harness import build_stowage
from stowage_yum import regeneration
from stowage_yum.state import JOB

regeneration.generate = lambda *args, **kwargs: time.sleep(3600)  # stuck mid-regeneration until killed
# Registered with a 5 s lease (renewed every 1.7 s) and a delay its scheduler thread never reaches: only
# the explicit run below takes the work. (With yum's own 2 s delay, a start slower than 2 s let the
# scheduler thread take it first, with the 60 s lease, and the wait for its expiry ran out under load.)
regeneration.background_job = lambda: BackgroundJob(name=JOB, run=regeneration.run, delay=3600,
                                                    max_delay=7200, lease_seconds=5.0)
catalog = CatalogSettings(type="postgresql", url={url!r}, pool_size=2) if {url!r} else None
stowage = build_stowage({data!r}, **({{"catalog": catalog}} if catalog else {{}})).stowage
work = BackgroundWork.of(stowage)
work.close()
work.run_pending(job=JOB, due_only=False)
"""


@pytest.mark.slow
def test_a_regeneration_killed_with_sigkill_is_finished_by_another_process(yum_app, rpms, tmp_path):
    import signal

    from stowage.testing import python_process

    ts = yum_app(data_dir=tmp_path / "shared", delay=3600)
    assert put(ts, "hello-1.0-1.noarch.rpm", rpms["hello-1.0"].read_bytes()).status_code == 201
    work = BackgroundWork.of(ts.stowage)
    lease = f"background:{JOB}/yum-hosted/"
    catalog = ts.stowage.settings.catalog  # the same catalog as this test's app (SQLite or PostgreSQL)
    script = KILLED_REGENERATOR.format(data=str(tmp_path / "shared"),
                                       url=catalog.url if catalog.type == "postgresql" else "")
    with python_process(script) as holder:
        deadline = time.monotonic() + 60
        while ts.stowage.catalog.lease_holder(lease) is None:
            assert holder.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
        assert run_once(ts) == 0  # another process is regenerating the root
    assert holder.returncode == -signal.SIGKILL  # killed mid-regeneration
    assert ts.stowage.catalog.get_asset("yum-hosted", "repodata/repomd.xml") is None  # nothing was published
    [pending] = work.pending(JOB)
    assert pending.items == ["hello-1.0-1.noarch.rpm"]  # the request outlived the process
    deadline = time.monotonic() + 60  # the killed process's 5 s lease, with room for a loaded machine
    while run_once(ts) == 0:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert names(repodata(ts)["primary"]) == ["hello-1.0-1.noarch.rpm"]
    assert work.pending(JOB) == []
