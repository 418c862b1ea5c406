"""``stowage verify`` / ``--repair`` on the issue's exact scenario: one hosted blob with 16 bytes changed, one
cached proxy blob deleted, one yum repository's current repomd.xml replaced by an older generation's bytes."""

from __future__ import annotations

import hashlib
import os
import re

from stowage.verify import run_verify
from stowage.plugin import BackgroundWork
from stowage_yum.state import JOB

RAW_BYTES = os.urandom(50_000)
UPSTREAM_BYTES = os.urandom(30_000)


def flush(ts) -> None:
    BackgroundWork.of(ts.stowage).run_pending(job=JOB, repository="yum-hosted", due_only=False)


def blob_file(ts, repository: str, path: str):
    asset = ts.stowage.catalog.get_asset(repository, path)
    return ts.stowage.repository(repository).blob_store.path_for(asset.blob_sha256)


def served_packages(ts) -> list[str]:
    """The RPM names the served repodata lists, after checking repomd's checksums against the files."""
    import gzip

    repomd = ts.client.simulate_get("/repository/yum-hosted/repodata/repomd.xml").text
    block = re.search(r'<data type="primary">.*?</data>', repomd, re.S).group(0)
    href = re.search(r'<location href="([^"]+)"', block).group(1)
    checksum = re.search(r'<checksum type="sha256">(\w+)<', block).group(1)
    body = ts.client.simulate_get(f"/repository/yum-hosted/{href}").content
    assert hashlib.sha256(body).hexdigest() == checksum
    return sorted(re.findall(r'<location href="([^"]+)"', gzip.decompress(body).decode()))


def test_verify_finds_exactly_the_three_problems_and_repair_leaves_only_the_hosted_loss(yum_app, rpms,
                                                                                          fault_upstream):
    fault_upstream.put("tools/cached.bin", UPSTREAM_BYTES)
    ts = yum_app()
    ts.create_repository(name="raw-hosted", format="raw", type="hosted")
    ts.create_repository(name="raw-proxy", format="raw", type="proxy", proxy={"remoteUrl": fault_upstream.url})
    assert ts.client.simulate_put("/repository/raw-hosted/release/app.bin", body=RAW_BYTES,
                                  headers=ts.admin).status_code == 201
    assert ts.client.simulate_get("/repository/raw-proxy/tools/cached.bin").content == UPSTREAM_BYTES
    assert ts.client.simulate_put("/repository/yum-hosted/hello-1.0-1.noarch.rpm",
                                  body=rpms["hello-1.0"].read_bytes(), headers=ts.admin).status_code == 201
    flush(ts)
    older_repomd = blob_file(ts, "yum-hosted", "repodata/repomd.xml").read_bytes()
    assert ts.client.simulate_put("/repository/yum-hosted/world-2.0-1.noarch.rpm",
                                  body=rpms["world-2.0"].read_bytes(), headers=ts.admin).status_code == 201
    flush(ts)

    healthy = run_verify(ts.stowage, deep=True)
    assert healthy.ok and healthy.findings == [], healthy.lines()
    assert healthy.assets >= 8 and healthy.deep

    hosted_blob = blob_file(ts, "raw-hosted", "release/app.bin")
    with open(hosted_blob, "r+b") as handle:  # 16 bytes changed in place: same size, other content
        handle.seek(1000)
        handle.write(bytes(b ^ 0xFF for b in RAW_BYTES[1000:1016]))
    os.unlink(blob_file(ts, "raw-proxy", "tools/cached.bin"))
    current_repomd = blob_file(ts, "yum-hosted", "repodata/repomd.xml")
    assert current_repomd.read_bytes() != older_repomd
    current_repomd.write_bytes(older_repomd)

    broken = run_verify(ts.stowage, deep=True)
    assert not broken.ok
    assert [(f.repository, f.path) for f in sorted(broken.findings, key=lambda f: f.repository)] == [
        ("raw-hosted", "release/app.bin"), ("raw-proxy", "tools/cached.bin"), ("yum-hosted", "repodata/repomd.xml")]
    lines = broken.lines()
    assert lines[0].startswith("raw-hosted release/app.bin: blob ") and "corrupt" in lines[0]
    assert lines[1].startswith("raw-proxy tools/cached.bin: blob ") and "missing" in lines[1]
    assert lines[2].startswith("yum-hosted repodata/repomd.xml: ") and "repodata lists 1 package(s)" in lines[2]
    assert "3 problem(s)" in broken.summary()

    repaired = run_verify(ts.stowage, deep=True, repair=True)
    outcome = {f.repository: f for f in repaired.findings}
    assert set(outcome) == {"raw-hosted", "raw-proxy", "yum-hosted"}
    assert outcome["raw-hosted"].lost and not outcome["raw-hosted"].repaired
    assert "LOST" in outcome["raw-hosted"].line()
    assert outcome["raw-proxy"].repaired.startswith("dropped the cached copy")
    assert outcome["yum-hosted"].repaired.startswith("regenerated the repodata")
    assert not repaired.ok
    # The hosted loss is listed, never dropped: the asset is still in the catalog.
    assert ts.stowage.catalog.get_asset("raw-hosted", "release/app.bin") is not None

    fetched_before = fault_upstream.count("tools/cached.bin")
    assert ts.client.simulate_get("/repository/raw-proxy/tools/cached.bin").content == UPSTREAM_BYTES
    assert fault_upstream.count("tools/cached.bin") == fetched_before + 1
    assert served_packages(ts) == ["hello-1.0-1.noarch.rpm", "world-2.0-1.noarch.rpm"]

    again = run_verify(ts.stowage, deep=True)
    assert [line.split(":")[0] for line in again.lines()] == ["raw-hosted release/app.bin"]
    assert not again.ok


def test_a_pending_regeneration_is_not_a_problem(yum_app, rpms):
    ts = yum_app(delay=3600)  # the regenerator waits: the upload's change marker stays pending
    assert ts.client.simulate_put("/repository/yum-hosted/hello-1.0-1.noarch.rpm",
                                  body=rpms["hello-1.0"].read_bytes(), headers=ts.admin).status_code == 201
    report = run_verify(ts.stowage)
    assert report.ok, report.lines()


def test_hook_stowage_register_metadata_checks(yum_app, rpms):
    """The yum plugin's registered check is what finds repodata that lists the wrong packages."""
    ts = yum_app()
    checks = [c for c in ts.stowage.plugins.metadata_checks if c.format == "yum"]
    assert [c.name for c in checks] == ["yum-repodata"]
    ts.client.simulate_put("/repository/yum-hosted/hello-1.0-1.noarch.rpm", body=rpms["hello-1.0"].read_bytes(),
                           headers=ts.admin)
    flush(ts)
    assert checks[0].check(ts.stowage.repository("yum-hosted")) == []
    # an RPM recorded without regeneration (as a restore of a mismatched catalog would leave it)
    catalog = ts.stowage.catalog
    asset = catalog.get_asset("yum-hosted", "hello-1.0-1.noarch.rpm")
    repository = ts.stowage.repository("yum-hosted")
    from stowage.models import BlobInfo

    repository.record("extra/hello-copy-1.0-1.noarch.rpm", BlobInfo(sha256=asset.blob_sha256, size=asset.size))
    catalog.delete_document("background-work", f"{JOB}/yum-hosted/")
    problems = checks[0].check(repository)
    assert [p.path for p in problems] == ["repodata/repomd.xml"]
    assert "not listed: extra/hello-copy-1.0-1.noarch.rpm" in problems[0].message
    assert checks[0].repair(repository, problems) == {"repodata/repomd.xml": "regenerated the repodata of /"}
    assert checks[0].check(repository) == []
