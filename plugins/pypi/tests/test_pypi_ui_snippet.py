"""The web UI's "how to use" text for a pypi repository works as written: twine uploads with its
``.pypirc``, pip downloads with its ``pip.conf``, and the components view then lists the release."""

from __future__ import annotations

import html
import re
import sys

import urllib3

from pypi_kit import BIN, make_wheel, run


def test_pypirc_and_pip_conf_from_the_browse_page_work(stowage_factory, live_server_factory, client_env, tmp_path):
    app = stowage_factory()
    app.create_repository(name="pypi-hosted", format="pypi", type="hosted")
    server = live_server_factory(app)
    browse = f"{server.url}/service/rest/repository/browse/pypi-hosted/"
    page = urllib3.request("GET", browse).data.decode()
    snippet = html.unescape(re.search(r'<summary>How to use</summary><pre>(.*?)</pre>', page, re.DOTALL).group(1))
    pip_conf = re.search(r"^\[global\]\n.*?(?=\n\n)", snippet, re.DOTALL | re.MULTILINE).group(0)
    pypirc = re.search(r"^\[distutils\]\n.*?(?=\n\ntwine upload)", snippet, re.DOTALL | re.MULTILINE).group(0)
    upload = re.search(r"^twine upload .*$", snippet, re.MULTILINE).group(0)
    assert f"index-url = {server.url}/repository/pypi-hosted/simple/" in pip_conf

    home = client_env["HOME"]
    with open(f"{home}/.pypirc", "w") as handle:
        handle.write(pypirc.replace("<user>", "admin") + f"\npassword = {app.admin_password}\n")
    (tmp_path / "dist").mkdir()
    wheel = make_wheel(tmp_path / "dist", "ui-snippet-demo", "1.2.3")
    run(["bash", "-ec", f"cd {tmp_path} && {BIN}/{upload} --non-interactive --disable-progress-bar"],
        client_env)

    (tmp_path / "pip.conf").write_text(pip_conf + "\n")
    env = dict(client_env, PIP_CONFIG_FILE=str(tmp_path / "pip.conf"))
    run([sys.executable, "-m", "pip", "download", "--no-deps", "-d", str(tmp_path / "got"), "ui-snippet-demo"], env)
    assert (tmp_path / "got" / wheel.name).read_bytes() == wheel.read_bytes()

    components = urllib3.request("GET", browse).data.decode()
    assert re.search(r"<td>ui[-_]snippet[-_]demo</td><td>1\.2\.3</td>", components, re.IGNORECASE), components
    assert '/repository/pypi-hosted/packages/' in components and wheel.name in components
