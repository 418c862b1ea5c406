"""The raw "how to use" snippet, copied from the browse page as a user would, runs with real curl."""

from __future__ import annotations

import html
import os
import re
import shutil
import subprocess

import pytest
import urllib3

pytestmark = pytest.mark.skipif(shutil.which("curl") is None and not os.environ.get("CI"),
                                reason="curl is not installed")

UPLOAD = "# upload (HTTP basic credentials; PUT creates the directories)"
COMPONENTS = "# or several files in one request through the components API"


def test_raw_snippet_commands_work_with_curl(stowage_factory, live_server_factory, tmp_path):
    ts = stowage_factory()
    ts.create_repository(name="raw-hosted", format="raw", type="hosted")
    live = live_server_factory(ts)
    page = urllib3.request("GET", f"{live.url}/service/rest/repository/browse/raw-hosted/").data.decode()
    snippet = html.unescape(re.search(r'<details id="usage" open><summary>How to use</summary><pre>(.*?)</pre>',
                                      page, flags=re.DOTALL).group(1))
    filled = snippet.replace("<user>", f"admin:{ts.admin_password}").replace("<directory>", "docs")
    blocks = {block.splitlines()[0]: "\n".join(block.splitlines()[1:]) for block in filled.split("\n\n")}
    assert set(blocks) == {"# download", UPLOAD, COMPONENTS, "# delete"}
    source, target = tmp_path / "src", tmp_path / "out"
    source.mkdir()
    target.mkdir()
    (source / "hello.txt").write_bytes(b"hello from the snippet\n")
    (source / "other.txt").write_bytes(b"uploaded through the components API\n")

    def run(name: str, file: str, cwd) -> None:
        done = subprocess.run(["bash", "-ec", blocks[name].replace("<file>", file)], cwd=cwd,
                              capture_output=True, timeout=30)
        assert done.returncode == 0, done.stderr

    def fetch(path: str) -> urllib3.BaseHTTPResponse:
        return urllib3.request("GET", f"{live.url}/repository/raw-hosted/{path}")

    run(UPLOAD, "hello.txt", source)
    assert fetch("docs/hello.txt").data == b"hello from the snippet\n"
    run("# download", "hello.txt", target)
    assert (target / "hello.txt").read_bytes() == b"hello from the snippet\n"
    run(COMPONENTS, "other.txt", source)
    assert fetch("docs/other.txt").data == b"uploaded through the components API\n"
    run("# delete", "hello.txt", source)
    assert fetch("docs/hello.txt").status == 404
