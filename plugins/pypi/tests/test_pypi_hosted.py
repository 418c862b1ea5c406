"""Hosted pypi repositories through the HTTP API: uploads and their validation, the simple index in both
forms, PEP 658 metadata files, yanking, deletion."""

from __future__ import annotations

import hashlib
import html.parser
import json
from pathlib import Path
from urllib.parse import urljoin

import pytest
import urllib3

from pypi_kit import make_sdist, make_wheel
from stowage.plugin import BlobInfo, Component

JSON = "application/vnd.pypi.simple.v1+json"


@pytest.fixture
def app(stowage_factory):
    test_stowage = stowage_factory()
    test_stowage.create_repository(name="pypi-hosted", format="pypi", type="hosted")
    return test_stowage


def upload(app, path: Path, *, url: str = "/repository/pypi-hosted/", filename: str | None = None, **fields):
    form = {":action": "file_upload", "protocol_version": "1", "metadata_version": "2.1",
            "sha256_digest": hashlib.sha256(path.read_bytes()).hexdigest(),
            "filetype": "bdist_wheel" if path.name.endswith(".whl") else "sdist"}
    form.update({k: v for k, v in fields.items() if v is not None})
    for key in [k for k, v in fields.items() if v is None]:
        form.pop(key, None)
    body, content_type = urllib3.encode_multipart_formdata(
        {**form, "content": (filename or path.name, path.read_bytes(), "application/octet-stream")})
    return app.client.simulate_post(url, body=body, headers={**app.admin, "Content-Type": content_type})


def project_json(app, project: str, repo: str = "pypi-hosted") -> dict:
    result = app.client.simulate_get(f"/repository/{repo}/simple/{project}/", headers={"Accept": JSON})
    assert result.status_code == 200, result.text
    assert result.headers["Content-Type"] == JSON
    return json.loads(result.text)


def assets(app, repo: str = "pypi-hosted") -> list[str]:
    return [a.path for a in app.stowage.catalog.iter_assets(repo)]


def test_upload_then_index_in_both_forms(app, dists):
    wheel = make_wheel(dists, "Demo_Pkg", "1.0", requires_python=">=3.8,<4")
    sdist = make_sdist(dists, "Demo_Pkg", "1.0")
    assert upload(app, wheel, name="Demo_Pkg", version="1.0").status_code == 200
    assert upload(app, sdist, name="demo-pkg", version="1.0").status_code == 200

    page = project_json(app, "demo-pkg")
    assert page["meta"]["api-version"] == "1.1"
    assert page["name"] == "demo-pkg" and page["versions"] == ["1.0"]
    by_name = {f["filename"]: f for f in page["files"]}
    wheel_entry = by_name[wheel.name]
    assert wheel_entry["hashes"] == {"sha256": hashlib.sha256(wheel.read_bytes()).hexdigest()}
    assert wheel_entry["size"] == wheel.stat().st_size
    assert wheel_entry["upload-time"].endswith("Z") and wheel_entry["requires-python"] == ">=3.8,<4"
    assert wheel_entry["yanked"] is False
    url = urljoin("/repository/pypi-hosted/simple/demo-pkg/", wheel_entry["url"])
    assert url == f"/repository/pypi-hosted/packages/demo-pkg/1.0/{wheel.name}"
    metadata = app.client.simulate_get(f"{url}.metadata")
    assert metadata.status_code == 200 and b"Name: Demo_Pkg" in metadata.content
    assert wheel_entry["core-metadata"] == {"sha256": hashlib.sha256(metadata.content).hexdigest()}
    assert wheel_entry["dist-info-metadata"] == wheel_entry["core-metadata"]
    assert by_name[sdist.name]["core-metadata"] is False
    download = app.client.simulate_get(url)
    assert download.content == wheel.read_bytes()

    page_html = app.client.simulate_get("/repository/pypi-hosted/simple/demo-pkg/", headers={"Accept": "text/html"})
    assert page_html.headers["Content-Type"].startswith("text/html")
    assert page_html.headers["Vary"] == "Accept, Accept-Encoding"
    assert 'data-requires-python="&gt;=3.8,&lt;4"' in page_html.text
    anchors = _anchors(page_html.text)
    assert {text for _, text in anchors} == {wheel.name, sdist.name}
    for attributes, text in anchors:
        assert "#sha256=" in attributes["href"]
        if text == wheel.name:
            assert attributes["data-core-metadata"].startswith("sha256=")
            assert attributes["data-dist-info-metadata"] == attributes["data-core-metadata"]
            assert attributes["data-requires-python"] == ">=3.8,<4"

    root = app.client.simulate_get("/repository/pypi-hosted/simple/", headers={"Accept": JSON})
    assert json.loads(root.text)["projects"] == [{"name": "Demo_Pkg"}]
    root_html = app.client.simulate_get("/repository/pypi-hosted/simple/")
    assert '<a href="demo-pkg/">Demo_Pkg</a>' in root_html.text


def _anchors(text: str) -> list[tuple[dict, str]]:
    class Parser(html.parser.HTMLParser):
        def __init__(self):
            super().__init__()
            self.found, self.current = [], None

        def handle_starttag(self, tag, attrs):
            if tag == "a":
                self.current = dict(attrs)

        def handle_data(self, data):
            if self.current is not None:
                self.found.append((self.current, data))
                self.current = None

    parser = Parser()
    parser.feed(text)
    return parser.found


@pytest.mark.parametrize(("accept", "expected"), [
    (None, "text/html"),
    ("application/vnd.pypi.simple.v1+json", JSON),
    ("application/vnd.pypi.simple.v1+json;q=0.5, text/html;q=0.9", "text/html"),
    ("application/vnd.pypi.simple.v1+html;q=0.2, application/vnd.pypi.simple.v1+json;q=0.3", JSON),
    ("application/vnd.pypi.simple.latest+html", "application/vnd.pypi.simple.v1+html"),
    ("*/*", "text/html"),
])
def test_content_negotiation(app, dists, accept, expected):
    upload(app, make_wheel(dists, "neg", "1.0"))
    result = app.client.simulate_get("/repository/pypi-hosted/simple/neg/", headers={"Accept": accept} if accept else {})
    assert result.status_code == 200
    assert result.headers["Content-Type"].split(";")[0] == expected
    assert result.headers["Vary"] == "Accept, Accept-Encoding"


def test_unacceptable_type_is_406(app, dists):
    upload(app, make_wheel(dists, "neg", "1.0"))
    result = app.client.simulate_get("/repository/pypi-hosted/simple/neg/", headers={"Accept": "application/xml"})
    assert result.status_code == 406


def test_non_normalised_project_url_redirects(app, dists):
    upload(app, make_wheel(dists, "Some.Thing", "1.0"))
    result = app.client.simulate_get("/repository/pypi-hosted/simple/Some.Thing/")
    assert result.status_code == 301
    assert result.headers["Location"].endswith("/repository/pypi-hosted/simple/some-thing/")
    assert app.client.simulate_get("/repository/pypi-hosted/simple/some-thing").status_code == 301
    assert app.client.simulate_get("/repository/pypi-hosted/simple/some-thing/").status_code == 200
    assert app.client.simulate_get("/repository/pypi-hosted/simple/other/").status_code == 404


def test_second_upload_of_same_file_is_400(app, dists):
    wheel = make_wheel(dists, "once", "1.0")
    assert upload(app, wheel).status_code == 200
    again = upload(app, wheel)
    assert again.status_code == 400
    assert "does not allow updating" in again.text
    assert "does not allow updating" in again.status


def test_name_mismatch_is_refused_naming_both(app, dists):
    wheel = make_wheel(dists, "real-name", "1.0")
    result = upload(app, wheel, name="other-name")
    assert result.status_code == 400
    assert "other-name" in result.text and "real-name" in result.text
    assert assets(app) == []
    assert app.client.simulate_get("/repository/pypi-hosted/simple/real-name/").status_code == 404


def test_metadata_name_differing_from_filename_is_refused(app, dists):
    wheel = make_wheel(dists, "alpha", "1.0", metadata_name="beta")
    result = upload(app, wheel, name="alpha")
    assert result.status_code == 400 and "beta" in result.text and "alpha" in result.text
    assert assets(app) == []


def test_version_mismatch_is_refused(app, dists):
    wheel = make_wheel(dists, "vers", "1.0", metadata_version="2.0")
    result = upload(app, wheel)
    assert result.status_code == 400 and "2.0" in result.text
    assert upload(app, make_wheel(dists, "vers2", "1.0"), version="1.1").status_code == 400
    assert assets(app) == []


def test_truncated_and_corrupt_wheels_are_refused(app, dists):
    wheel = make_wheel(dists, "trunc", "1.0")
    data = wheel.read_bytes()
    truncated = dists / "cut" / wheel.name
    truncated.parent.mkdir()
    truncated.write_bytes(data[: len(data) // 2])
    result = upload(app, truncated)
    assert result.status_code == 400 and "not a valid wheel" in result.text
    sdist = make_sdist(dists, "trunc", "1.0")
    cut_sdist = dists / "cut" / sdist.name
    cut_sdist.write_bytes(sdist.read_bytes()[:-40])
    assert upload(app, cut_sdist).status_code == 400
    assert assets(app) == []


def test_bad_filename_digest_and_action(app, dists):
    wheel = make_wheel(dists, "good", "1.0")
    assert "invalid distribution filename" in upload(app, wheel, filename="good.exe").text
    wrong = upload(app, wheel, sha256_digest="0" * 64)
    assert wrong.status_code == 400 and "sha256_digest" in wrong.text
    assert upload(app, wheel, **{":action": "submit"}).status_code == 400
    assert assets(app) == []


def test_legacy_path_anonymous_and_non_hosted(app, dists, stowage_factory):
    wheel = make_wheel(dists, "legacy-path", "1.0")
    assert upload(app, wheel, url="/repository/pypi-hosted/legacy/").status_code == 200
    app.create_repository(name="pypi-group", format="pypi", type="group", group={"memberNames": ["pypi-hosted"]})
    assert upload(app, make_wheel(dists, "x", "1.0"), url="/repository/pypi-group/").status_code == 405
    body, content_type = urllib3.encode_multipart_formdata({":action": "file_upload"})
    anonymous = app.client.simulate_post("/repository/pypi-hosted/", body=body, headers={"Content-Type": content_type})
    assert anonymous.status_code == 401


def test_rest_component_upload_and_delete_update_the_index(app, dists):
    wheel = make_wheel(dists, "restpkg", "1.0")
    body, content_type = urllib3.encode_multipart_formdata({"pypi.asset": (wheel.name, wheel.read_bytes())})
    result = app.client.simulate_post("/service/rest/v1/components", params={"repository": "pypi-hosted"},
                                      body=body, headers={**app.admin, "Content-Type": content_type})
    assert result.status_code == 204, result.text
    upload(app, make_wheel(dists, "restpkg", "2.0"))
    assert [f["filename"] for f in project_json(app, "restpkg")["files"]] == [
        "restpkg-1.0-py3-none-any.whl", "restpkg-2.0-py3-none-any.whl"]

    components = app.client.simulate_get("/service/rest/v1/components", params={"repository": "pypi-hosted"},
                                         headers=app.admin).json["items"]
    first = next(c for c in components if c["version"] == "1.0")
    assert {a["path"] for a in first["assets"]} == {"packages/restpkg/1.0/restpkg-1.0-py3-none-any.whl",
                                                    "packages/restpkg/1.0/restpkg-1.0-py3-none-any.whl.metadata"}
    assert app.client.simulate_delete(f"/service/rest/v1/components/{first['id']}", headers=app.admin).status_code == 204
    assert [f["filename"] for f in project_json(app, "restpkg")["files"]] == ["restpkg-2.0-py3-none-any.whl"]

    second = next(c for c in components if c["version"] == "2.0")
    wheel_asset = next(a for a in second["assets"] if a["path"].endswith(".whl"))
    assert app.client.simulate_delete(f"/service/rest/v1/assets/{wheel_asset['id']}", headers=app.admin).status_code == 204
    assert app.client.simulate_get("/repository/pypi-hosted/simple/restpkg/").status_code == 404
    assert assets(app) == []  # the .metadata file went with its wheel
    assert app.client.simulate_get("/repository/pypi-hosted/simple/", headers={"Accept": JSON}).json["projects"] == []


def test_yank_and_unyank_release_and_file(app, dists):
    upload(app, make_wheel(dists, "yanky", "1.0"))
    upload(app, make_sdist(dists, "yanky", "1.0"))
    upload(app, make_wheel(dists, "yanky", "1.1"))
    base = "/service/rest/v1/pypi/pypi-hosted"
    anonymous = app.client.simulate_put(f"{base}/projects/yanky/versions/1.0/yank", json={"reason": "x"})
    assert anonymous.status_code == 401
    result = app.client.simulate_put(f"{base}/projects/Yanky/versions/1.0/yank", json={"reason": "broken <build>"},
                                     headers=app.admin)
    assert result.status_code == 200
    assert {f["yanked"] for f in result.json["files"]} == {"broken <build>"}
    files = {f["filename"]: f["yanked"] for f in project_json(app, "yanky")["files"]}
    assert files == {"yanky-1.0-py3-none-any.whl": "broken <build>", "yanky-1.0.tar.gz": "broken <build>",
                     "yanky-1.1-py3-none-any.whl": False}
    page = app.client.simulate_get("/repository/pypi-hosted/simple/yanky/").text
    assert page.count('data-yanked="broken &lt;build&gt;"') == 2

    assert app.client.simulate_delete(f"{base}/projects/yanky/versions/1.0/yank", headers=app.admin).status_code == 200
    assert all(f["yanked"] is False for f in project_json(app, "yanky")["files"])

    file_result = app.client.simulate_put(f"{base}/files/yanky-1.1-py3-none-any.whl/yank", headers=app.admin)
    assert file_result.status_code == 200 and file_result.json["files"][0]["yanked"] is True
    files = {f["filename"]: f["yanked"] for f in project_json(app, "yanky")["files"]}
    assert files["yanky-1.1-py3-none-any.whl"] is True and files["yanky-1.0.tar.gz"] is False
    assert 'data-yanked=""' in app.client.simulate_get("/repository/pypi-hosted/simple/yanky/").text
    state = app.client.simulate_get(f"{base}/files/yanky-1.1-py3-none-any.whl/yank", headers=app.admin)
    assert state.json["files"][0]["yanked"] is True
    missing = app.client.simulate_put(f"{base}/projects/yanky/versions/9.9/yank", headers=app.admin)
    assert missing.status_code == 404


def _sqlite_work(app, call) -> tuple[int, int]:
    """(SQL statements, SQLite virtual-machine instructions) that ``call`` runs on this thread's connection."""
    if not hasattr(app.stowage.catalog, "_conn"):
        pytest.skip("counts the SQLite catalog's instructions (STOWAGE_TEST_CATALOG=postgresql)")
    conn = app.stowage.catalog._conn
    statements: list[str] = []
    steps = [0]

    def step() -> int:
        steps[0] += 1
        return 0

    conn.set_trace_callback(statements.append)
    conn.set_progress_handler(step, 1)
    try:
        call()
    finally:
        conn.set_progress_handler(None, 1)
        conn.set_trace_callback(None)
    return len(statements), steps[0]


def test_upload_cost_does_not_grow_with_the_repository(app, dists, monkeypatch):
    """An upload's catalog work at 2,000 projects is what it is in an empty repository (no timing: the
    count of statements and of SQLite instructions is exact, so this cannot be flaky)."""
    # Time-bound caches (permission decisions, the anonymous setting) would make the counts depend on how
    # long the set-up below takes; without them every upload does the same reads.
    app.stowage.security.DECISION_TTL = 0
    # The same for every other one-second setting cache on the upload path (a set-up slower than a second
    # on a loaded machine re-read them and counted 1-2 statements more).
    app.stowage.CONFIG_RECHECK_SECONDS = 0
    from stowage.realms import ActiveRealms
    from stowage.tokens import UserTokenSettings

    monkeypatch.setattr(ActiveRealms, "TTL", 0)
    monkeypatch.setattr(UserTokenSettings, "TTL", 0)
    # SQLite's asset-row cache serves a row read again within one second: an upload slower than that on a
    # loaded machine re-read it (one statement more). Off, every upload does the same reads.
    from stowage.catalog import sqlite_changes

    monkeypatch.setattr(sqlite_changes, "MAX_AGE_SECONDS", 0)
    first, second = make_wheel(dists, "probe-a", "1.0"), make_wheel(dists, "probe-b", "1.0")
    upload(app, make_wheel(dists, "probe-warm-up", "1.0"))  # one-time work: admin's password check
    empty = _sqlite_work(app, lambda: upload(app, first))
    repository = app.stowage.repository("pypi-hosted")
    with app.stowage.catalog.transaction():  # what 2,000 uploads leave in the catalog, written directly
        for i in range(2000):
            component = Component(repository="pypi-hosted", format="pypi", name=f"proj{i:05d}", version="1.0")
            blob = BlobInfo(sha256=f"{i:064x}", size=1)
            for path in (f"packages/proj{i:05d}/1.0/proj{i:05d}-1.0-py3-none-any.whl",
                         f"packages/proj{i:05d}/1.0/proj{i:05d}-1.0-py3-none-any.whl.metadata"):
                repository.record(path, blob, component=component,
                                  attributes={"pypi": {"project": f"proj{i:05d}", "version": "1.0"}})
    assert len(project_json(app, "proj01999")["files"]) == 1
    full = _sqlite_work(app, lambda: upload(app, second))
    assert project_json(app, "probe-b")["files"][0]["filename"] == second.name
    assert full[0] == empty[0], (empty, full)
    assert full[1] <= empty[1] * 1.1, (empty, full)


def test_refused_upload_leaves_no_blob(app, dists):
    store = app.stowage.blob_store("default")
    wheel = make_wheel(dists, "refused", "1.0", metadata_version="2.0")
    assert upload(app, wheel).status_code == 400
    assert upload(app, make_wheel(dists, "refused", "1.0"), sha256_digest="0" * 64).status_code == 400
    assert list(store.digests()) == [] and list(store.tmp_dir.iterdir()) == []
    assert upload(app, make_wheel(dists, "accepted", "1.0")).status_code == 200
    assert len(list(store.digests())) == 2  # the wheel and its .metadata
    assert list(store.tmp_dir.iterdir()) == []


def test_upload_to_a_store_that_cannot_reread_uncommitted_bytes(app, dists, monkeypatch):
    """Blob stores that cannot re-read uncommitted bytes (S3): core tees the upload into a local copy, so
    the wheel is still checked before it is stored and a refused one leaves no blob."""
    from stowage.blobstore.file import FileBlobWriter
    from stowage.backends import BlobWriter

    monkeypatch.setattr(FileBlobWriter, "open_partial", BlobWriter.open_partial)
    monkeypatch.setattr(FileBlobWriter, "partial_path", BlobWriter.partial_path)
    store = app.stowage.blob_store("default")
    assert upload(app, make_wheel(dists, "fallback", "1.0")).status_code == 200
    assert [f["filename"] for f in project_json(app, "fallback")["files"]] == ["fallback-1.0-py3-none-any.whl"]
    blobs = sorted(store.digests())
    assert upload(app, make_wheel(dists, "fallback", "2.0", metadata_version="3.0")).status_code == 400
    assert assets(app) == ["packages/fallback/1.0/fallback-1.0-py3-none-any.whl",
                           "packages/fallback/1.0/fallback-1.0-py3-none-any.whl.metadata"]
    assert sorted(store.digests()) == blobs and list(store.tmp_dir.iterdir()) == []
    assert not any((app.stowage.settings.data_path / "tmp").glob("staged-*"))


def test_cached_index_pages_follow_uploads_made_by_another_process(stowage_factory, dists, tmp_path):
    """Two apps over one data directory (two workers): pages one has rendered and cached change as soon
    as the other records an upload, because the cache is keyed on the catalog's revision."""
    first = stowage_factory(data_dir=tmp_path / "shared")
    first.create_repository(name="pypi-hosted", format="pypi", type="hosted")
    second = stowage_factory(data_dir=tmp_path / "shared")
    assert upload(first, make_wheel(dists, "shared-pkg", "1.0")).status_code == 200
    for _ in range(2):  # rendered, then served from the cache
        assert [f["filename"] for f in project_json(first, "shared-pkg")["files"]] == ["shared_pkg-1.0-py3-none-any.whl"]
        root = first.client.simulate_get("/repository/pypi-hosted/simple/", headers={"Accept": JSON}).json
        assert [p["name"] for p in root["projects"]] == ["shared-pkg"]
    assert upload(second, make_wheel(dists, "shared-pkg", "1.1")).status_code == 200
    assert upload(second, make_wheel(dists, "another", "1.0")).status_code == 200
    assert [f["filename"] for f in project_json(first, "shared-pkg")["files"]] == [
        "shared_pkg-1.0-py3-none-any.whl", "shared_pkg-1.1-py3-none-any.whl"]
    root = first.client.simulate_get("/repository/pypi-hosted/simple/", headers={"Accept": JSON}).json
    assert [p["name"] for p in root["projects"]] == ["another", "shared-pkg"]
