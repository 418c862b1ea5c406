"""The raw format through a live server and curl."""

from __future__ import annotations

import subprocess
from urllib.parse import quote


def curl(*args: str) -> str:
    return subprocess.run(["curl", "-sS", *args], capture_output=True, text=True, check=True).stdout


def test_non_ascii_and_quoted_file_names_download(stowage_app, live_server_factory, tmp_path):
    stowage_app.create_repository(name="files", format="raw", type="hosted", raw={"contentDisposition": "INLINE"})
    server = live_server_factory(stowage_app)
    source = tmp_path / "f"
    source.write_bytes(b"content")
    for name in ("文件.txt", 'say "hi".txt', "résumé.pdf"):
        url = f"{server.url}/repository/files/docs/{quote(name)}"
        assert curl("-u", f"admin:{stowage_app.admin_password}", "--upload-file", str(source), "-o", "/dev/null",
                    "-w", "%{http_code}", url) == "201"
        head = curl("-D", "-", "-o", "/dev/null", url)
        assert head.startswith("HTTP/1.1 200"), head
        disposition = next(line for line in head.splitlines() if line.lower().startswith("content-disposition"))
        assert disposition.split(":", 1)[1].strip().startswith('inline; filename="')
        if not name.isascii() or '"' in name:
            assert f"filename*=UTF-8''{quote(name, safe='')}" in disposition
        assert curl(url) == "content"


def test_attachment_is_the_default(stowage_app):
    stowage_app.create_repository(name="files", format="raw", type="hosted")
    stowage_app.client.simulate_put("/repository/files/a/b.tgz", body=b"x", headers=stowage_app.admin)
    response = stowage_app.client.simulate_get("/repository/files/a/b.tgz")
    assert response.headers["content-disposition"] == 'attachment; filename="b.tgz"'
    # curl --upload-file sends no Content-Type: the type is guessed from the name
    import mimetypes

    assert response.headers["content-type"] == mimetypes.guess_type("b.tgz", strict=False)[0]


def test_raw_components_task_gives_older_files_their_component(stowage_app):
    """Files stored before raw components existed (no component) get one from the raw.components task."""
    import io

    from stowage_raw.plugin import add_missing_components

    stowage_app.create_repository(name="old", format="raw", type="hosted")
    repository = stowage_app.stowage.repository("old")
    repository.record("a/b/c.txt", repository.blob_store.store(io.BytesIO(b"c"), length=1))  # as older code did
    assert stowage_app.stowage.catalog.get_asset("old", "a/b/c.txt").component_id is None
    assert add_missing_components(stowage_app.stowage) == "components added for 1 raw file(s)"
    assert add_missing_components(stowage_app.stowage) == "components added for 0 raw file(s)"
    [component] = stowage_app.stowage.catalog.find_components("old")
    assert (component.group, component.name, component.version) == ("/a/b", "a/b/c.txt", "")
