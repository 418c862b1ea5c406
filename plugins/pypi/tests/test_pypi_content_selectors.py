"""Content selectors with pip: a user limited to ``cwiq-*`` projects installs them, sees only them in the
root index, and cannot upload another project."""

from __future__ import annotations

import urllib3

from pypi_kit import BIN, limit_dev_to_cwiq, make_wheel, pip, run, twine_upload

from stowage.testing.harness import basic_auth


def test_selector_limits_pip_and_twine(stowage_factory, live_server_factory, client_env, dists, tmp_path):
    ts = stowage_factory(repositories=[{"name": "pypi-hosted", "format": "pypi", "type": "hosted"}])
    server = live_server_factory(ts)
    hosted = f"{server.url}/repository/pypi-hosted/"
    twine_upload(hosted, [make_wheel(dists, "cwiq-tool", "1.0"), make_wheel(dists, "other-tool", "1.0")],
                 client_env, ts.admin_password)
    limit_dev_to_cwiq(ts.stowage)
    index = f"http://dev:dev-pw@127.0.0.1:{server.port}/repository/pypi-hosted/simple/"

    target = tmp_path / "target"
    pip(client_env, "install", "--no-deps", "--target", str(target), "--index-url", index, "cwiq-tool")
    assert (target / "cwiq_tool").is_dir()
    refused = pip(client_env, "install", "--no-deps", "--target", str(target), "--index-url", index, "other-tool",
                  check=False)
    assert refused.returncode != 0 and not (target / "other_tool").exists()

    root = urllib3.request("GET", f"{server.url}/repository/pypi-hosted/simple/", headers=basic_auth("dev", "dev-pw"))
    assert root.status == 200 and "cwiq-tool" in root.data.decode() and "other-tool" not in root.data.decode()
    admin_root = urllib3.request("GET", f"{server.url}/repository/pypi-hosted/simple/", headers=ts.admin)
    assert "other-tool" in admin_root.data.decode()

    upload = [str(BIN / "twine"), "upload", "--non-interactive", "--disable-progress-bar", "--repository-url",
              hosted, "-u", "dev", "-p", "dev-pw"]
    refused = run(upload + [str(make_wheel(dists, "other-tool", "2.0"))], client_env, check=False)
    assert refused.returncode != 0 and "403" in refused.stdout + refused.stderr
    run(upload + [str(make_wheel(dists, "cwiq-tool", "2.0"))], client_env)
