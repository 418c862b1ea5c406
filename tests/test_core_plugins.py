"""Issue 2 acceptance: broken plugins are reported, not fatal (unless strict); a missing format keeps data."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from core_helpers import RAW_HOSTED, STOWAGE, curl
from stowage.errors import PluginError
from stowage.plugin import Format, hookimpl
from stowage.pluginmanager import make_plugin_manager

BROKEN_SOURCE = Path(__file__).parent / "broken_plugin"


@pytest.fixture(scope="module")
def broken_site(tmp_path_factory) -> Path:
    """tests/broken_plugin installed (for real, by pip) into a directory of its own."""
    root = tmp_path_factory.mktemp("broken")
    source = root / "src"
    shutil.copytree(BROKEN_SOURCE, source)
    target = root / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(target), str(source)],
                   check=True, capture_output=True)
    assert (target / "stowage_broken_example-0.1.0.dist-info").is_dir()
    return target


@pytest.mark.slow
def test_broken_plugin_is_reported_and_raw_still_served(serve_factory, broken_site, tmp_path):
    server = serve_factory(env={"PYTHONPATH": str(broken_site)})
    report = json.loads(curl(f"{server.url}/-/plugins.json").stdout)
    failures = {f["name"]: f["error"] for f in report["failures"]}
    assert "broken-example" in failures
    assert "ImportError" in failures["broken-example"] and "broken on purpose" in failures["broken-example"]
    assert "raw" in report["formats"]
    assert "plugin broken-example failed" in server.log()
    # the other formats keep working
    url = f"{server.url}/repository/raw-hosted-dev/still/works.txt"
    assert curl("-u", f"admin:{server.password}", "-X", "PUT", "--data-binary", "yes", "-o", "/dev/null",
                "-w", "%{http_code}", url).stdout == "201"
    assert curl(url).stdout == "yes"

    # `stowage plugins` shows the failure too, and says so in its exit status
    env = {"PYTHONPATH": str(broken_site), "PATH": "/usr/bin:/bin"}
    result = subprocess.run([STOWAGE, "plugins"], capture_output=True, text=True, env=env)
    assert result.returncode == 1
    listing = json.loads(result.stdout)
    assert "raw" in listing["formats"] and listing["failures"][0]["name"] == "broken-example"


@pytest.mark.slow
def test_strict_mode_refuses_to_start_with_a_broken_plugin(broken_site, tmp_path):
    config = tmp_path / "strict.toml"
    config.write_text("[server]\nstrictPlugins = true\n" + RAW_HOSTED)
    result = subprocess.run([STOWAGE, "serve", "--config", str(config), "--data-dir", str(tmp_path / "data"),
                             "--port", "0"], capture_output=True, text=True, timeout=60,
                            env={"PYTHONPATH": str(broken_site), "PATH": "/usr/bin:/bin",
                                 "STOWAGE_ADMIN_PASSWORD": "x"})
    assert result.returncode == 2
    assert "plugin broken-example failed" in result.stderr


class BadRegistration:
    """Imports fine, but registers something that is not a Format."""

    @hookimpl
    def stowage_register_formats(self):
        return [{"name": "dict-format"}]


class DuplicateRaw:
    @hookimpl
    def stowage_register_formats(self):
        from stowage_raw.plugin import RawHandler

        return [Format(name="raw", handler=RawHandler)]


def test_bad_registrations_are_reported_not_fatal(stowage_factory):
    app = stowage_factory(plugins=[BadRegistration(), DuplicateRaw()], strict=False)
    report = app.client.simulate_get("/-/plugins.json").json
    errors = {f["name"]: f["error"] for f in report["failures"]}
    assert "is not a Format" in errors["BadRegistration"]
    assert "already registered" in errors["DuplicateRaw"]
    assert "raw" in report["formats"] and "dict-format" not in report["formats"]
    raw = {p["name"]: p for p in report["plugins"]}["raw"]
    assert raw["formats"] == ["raw"] and raw["distribution"] == "stowage-raw" and raw["version"]
    assert "stowage_register_formats" in raw["hooks"]
    app.create_repository(name="r", format="raw", type="hosted")
    assert app.client.simulate_put("/repository/r/a.txt", body=b"ok", headers=app.admin).status_code == 201


def test_strict_plugin_manager_raises():
    with pytest.raises(PluginError, match="is not a Format"):
        make_plugin_manager(load_entrypoints=False, plugins=[BadRegistration()], strict=True)


def test_missing_format_answers_503_and_keeps_the_data(stowage_factory, tmp_path):
    import stowage_raw.plugin

    data_dir = tmp_path / "shared"
    with_raw = stowage_factory(data_dir=data_dir, load_entrypoints=False, plugins=[stowage_raw.plugin])
    with_raw.create_repository(name="files", format="raw", type="hosted", raw={"contentDisposition": "INLINE"})
    assert with_raw.client.simulate_put("/repository/files/keep.txt", body=b"precious",
                                        headers=with_raw.admin).status_code == 201
    with_raw.stowage.close()

    without = stowage_factory(data_dir=data_dir, load_entrypoints=False)
    response = without.client.simulate_get("/repository/files/keep.txt", headers={"Accept": "application/json"})
    assert response.status_code == 503
    assert response.json["code"] == "FORMAT_UNAVAILABLE"
    assert "'raw' format plugin" in response.json["message"] and "kept" in response.json["message"]
    assert without.client.simulate_put("/repository/files/other.txt", body=b"x",
                                       headers=without.admin).status_code == 503
    listed = without.client.simulate_get("/service/rest/v1/repositories").json
    assert listed[0]["name"] == "files" and "missing" in listed[0]["status"]["description"]
    assert without.client.simulate_get("/-/plugins.json").json["formats"] == []
    # the status endpoint still says reads work
    assert without.client.simulate_get("/service/rest/v1/status").status_code == 200
    without.stowage.close()

    back = stowage_factory(data_dir=data_dir, load_entrypoints=False, plugins=[stowage_raw.plugin])
    response = back.client.simulate_get("/repository/files/keep.txt")
    assert response.status_code == 200 and response.content == b"precious"
    # its format settings survived the time without the plugin
    assert response.headers["content-disposition"].startswith("inline")


class SpecnamePlugin:
    """Registers its format through a function whose name is not the hook's (pluggy's ``specname``)."""

    @hookimpl(specname="stowage_register_formats")
    def formats_of_this_plugin(self):
        from stowage.formats import FormatHandler

        return [Format(name="specnamed", handler=FormatHandler)]


class WrappingPlugin:
    """A new-style wrapper around every plugin's format registration: it sees and may amend the result."""

    def __init__(self):
        self.seen: list[list[str]] = []

    @hookimpl(wrapper=True)
    def stowage_register_formats(self):
        result = yield
        self.seen.append(sorted(fmt.name for formats in result for fmt in formats))
        return result


def test_registrations_are_collected_through_pluggy_so_specname_and_wrappers_work():
    wrapper = WrappingPlugin()
    manager = make_plugin_manager(load_entrypoints=False, plugins=[SpecnamePlugin(), wrapper], strict=True)
    assert "specnamed" in manager.formats  # dropped silently while core read plugins with getattr
    assert manager.provided_by["SpecnamePlugin"] == ["specnamed"]
    assert ["specnamed"] in wrapper.seen  # the wrapper wrapped the plugin's registration


def test_optional_handler_methods_not_overridden_answer_400(stowage_factory):
    """upload_component and rebuild_index are declared on FormatHandler; a format that does not override
    them is told so with a 400 (before any multipart body is read), not found by getattr."""
    app = stowage_factory(plugins=[SpecnamePlugin()])
    app.create_repository(name="plain", format="specnamed", type="hosted")
    body = b"--b\r\nContent-Disposition: form-data; name=\"x.asset\"; filename=\"a\"\r\n\r\nhi\r\n--b--\r\n"
    response = app.client.simulate_post("/service/rest/v1/components", params={"repository": "plain"}, body=body,
                                        headers={**app.admin, "Content-Type": "multipart/form-data; boundary=b"})
    assert response.status_code == 400 and "does not support component uploads" in response.text
    response = app.client.simulate_post("/service/rest/v1/repositories/plain/rebuild-index", headers=app.admin)
    assert response.status_code == 400 and "no index to rebuild" in response.text
    assert app.stowage.catalog.list_assets("plain").items == []
