"""Parsers and small pieces: upstream page parsing (both forms) against our own rendering, filenames,
Accept negotiation, and the ``@pip-index@`` resolution from pip's configuration."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stowage_pypi.distributions import file_path, parse_filename
from stowage_pypi.pipconfig import PIP_DEFAULT_INDEX, PLACEHOLDER, pip_index_url
from stowage_pypi.simple import (DistFile, ProjectPage, negotiate, parse_project, parse_root, render_project_html,
                                 render_project_json, render_root_html, render_root_json, RootIndex)

_files = st.builds(
    DistFile,
    filename=st.sampled_from(["pkg-1.0-py3-none-any.whl", "pkg-1.0.tar.gz", "pkg-2.0rc1-py3-none-any.whl",
                              "pkg-1.0+local-cp311-cp311-linux_x86_64.whl"]),
    path=st.just(""),
    sha256=st.one_of(st.none(), st.text("0123456789abcdef", min_size=64, max_size=64)),
    requires_python=st.one_of(st.none(), st.sampled_from([">=3.8", ">=3.8,<4", "!=3.0.*,>3"])),
    yanked=st.one_of(st.booleans(), st.text(st.characters(min_codepoint=32, max_codepoint=0x2FF), min_size=1,
                                            max_size=20)),
    core_metadata=st.one_of(st.booleans(), st.text("0123456789abcdef", min_size=64, max_size=64)),
)


@settings(max_examples=60, deadline=None)
@given(files=st.lists(_files, max_size=4, unique_by=lambda f: f.filename), as_json=st.booleans())
def test_parse_reads_back_what_we_render(files, as_json):
    files = [DistFile(filename=f.filename, path=file_path("pkg", f.filename), sha256=f.sha256,
                      requires_python=f.requires_python, yanked=f.yanked, core_metadata=f.core_metadata, size=10)
             for f in files]
    page = ProjectPage(name="pkg", files=tuple(files))
    body = render_project_json(page) if as_json else render_project_html(page)
    url = "http://upstream.example/simple/pkg/"
    parsed = parse_project(body, url, "pkg", lambda name: file_path("pkg", name))
    assert [f.filename for f in parsed.files] == [f.filename for f in files]
    for original, back in zip(files, parsed.files):
        assert back.sha256 == original.sha256
        assert back.requires_python == original.requires_python
        assert back.yanked == original.yanked
        assert back.core_metadata == original.core_metadata
        assert back.upstream_url == "http://upstream.example/" + original.path
        assert back.path == original.path


def test_parse_html_of_another_index():
    body = b"""<html><body>
    <a href="https://files.example/packages/aa/bb/Foo-1.0.tar.gz#sha256=abc" data-requires-python="&gt;=3.6">Foo-1.0.tar.gz</a>
    <a href="/x/foo-2.0-py3-none-any.whl#md5=ff" data-yanked data-dist-info-metadata="true">foo-2.0-py3-none-any.whl</a>
    </body></html>"""
    page = parse_project(body, "https://index.example/simple/foo/", "foo", lambda n: file_path("foo", n))
    first, second = page.files
    assert first.upstream_url == "https://files.example/packages/aa/bb/Foo-1.0.tar.gz"
    assert first.sha256 == "abc" and first.requires_python == ">=3.6" and first.path == "packages/foo/1.0/Foo-1.0.tar.gz"
    assert second.upstream_url == "https://index.example/x/foo-2.0-py3-none-any.whl"
    assert second.sha256 is None and second.yanked is True and second.core_metadata is True
    assert page.versions == ("1.0", "2.0")


def test_root_round_trip():
    index = RootIndex(projects=("Django", "zope.interface", "a_b"))
    for body in (render_root_html(index), render_root_json(index)):
        assert parse_root(body).projects == ("a_b", "Django", "zope.interface")


@pytest.mark.parametrize(("accept", "expected"), [
    ("", "text/html"),
    ("text/html;q=0.1, application/vnd.pypi.simple.v1+json;q=0.1", "application/vnd.pypi.simple.v1+json"),
    ("application/vnd.pypi.simple.v1+json;q=0, text/html", "text/html"),
    ("application/json", None),
    ("application/*", "application/vnd.pypi.simple.v1+json"),
    ("application/vnd.pypi.simple.v1+json; q=0.01, application/vnd.pypi.simple.v1+html; q=0.02",
     "application/vnd.pypi.simple.v1+html"),
])
def test_negotiate(accept, expected):
    assert negotiate(accept) == expected


@pytest.mark.parametrize(("filename", "project", "version", "filetype"), [
    ("foo_bar-1.0-py3-none-any.whl", "foo-bar", "1.0", "bdist_wheel"),
    ("Foo.Bar-2.0.post1.tar.gz", "foo-bar", "2.0.post1", "sdist"),
    ("legacy-name-0.1.zip", "legacy-name", "0.1", "sdist"),
])
def test_parse_filename(filename, project, version, filetype):
    dist = parse_filename(filename)
    assert (dist.project, str(dist.version), dist.filetype) == (project, version, filetype)
    assert dist.path == f"packages/{project}/{version}/{filename}"


@pytest.mark.parametrize("filename", ["foo.exe", "foo-1.0.egg", "noversion.whl", "../x-1.0.tar.gz", "a/b-1.0.tar.gz"])
def test_bad_filenames(filename):
    with pytest.raises(Exception, match="invalid distribution filename"):
        parse_filename(filename)


def test_pip_index_url_follows_pip_configuration(tmp_path: Path):
    home = tmp_path / "home"
    (home / ".config" / "pip").mkdir(parents=True)
    xdg = tmp_path / "xdg"
    (xdg / "pip").mkdir(parents=True)
    base = {"HOME": str(home), "XDG_CONFIG_DIRS": str(xdg)}
    # /etc/pip.conf may exist on this machine: compare with a configuration that sets nothing instead.
    assert pip_index_url({"PIP_CONFIG_FILE": os.devnull}) == PIP_DEFAULT_INDEX
    (xdg / "pip" / "pip.conf").write_text("[global]\nindex-url = http://127.0.0.1:1/global/simple\n")
    assert pip_index_url(base) == "http://127.0.0.1:1/global/simple"
    (home / ".config" / "pip" / "pip.conf").write_text(
        "[global]\nindex-url = http://127.0.0.1:1/user/simple\n[install]\nindex-url = http://127.0.0.1:1/install/simple\n")
    assert pip_index_url(base) == "http://127.0.0.1:1/install/simple"
    env_file = tmp_path / "env.conf"
    env_file.write_text("[global]\nindex-url = http://127.0.0.1:1/env/simple\n")
    assert pip_index_url({**base, "PIP_CONFIG_FILE": str(env_file)}) == "http://127.0.0.1:1/env/simple"
    assert pip_index_url({**base, "PIP_INDEX_URL": "http://127.0.0.1:1/var/simple"}) == "http://127.0.0.1:1/var/simple"


def test_placeholder_is_expanded_when_a_proxy_is_configured(stowage_factory, monkeypatch):
    monkeypatch.setenv("PIP_INDEX_URL", "http://127.0.0.1:9/mirror/simple")
    app = stowage_factory()
    repository = app.create_repository(name="pypi-proxy", format="pypi", type="proxy",
                                       proxy={"remoteUrl": PLACEHOLDER})
    assert repository.config.proxy.remote_url == "http://127.0.0.1:9/mirror/simple"
    stored = app.client.simulate_get("/service/rest/v1/repositories/pypi-proxy", headers=app.admin).json
    assert "@pip-index@" not in str(stored)


def test_demo_configuration_loads(monkeypatch, tmp_path):
    from stowage.app import load

    monkeypatch.setenv("PIP_INDEX_URL", "http://127.0.0.1:9/demo/simple")
    monkeypatch.setenv("STOWAGE_ADMIN_PASSWORD", "admin123")
    stowage = load(Path(__file__).parents[3] / "examples" / "cwiq.toml", overrides={"data_dir": str(tmp_path)})
    try:
        assert stowage.repository("pypi-proxy").config.proxy.remote_url == "http://127.0.0.1:9/demo/simple"
        assert [m for m in stowage.repository("pypi-group").config.group.member_names] == ["pypi-hosted", "pypi-proxy"]
    finally:
        stowage.close()
