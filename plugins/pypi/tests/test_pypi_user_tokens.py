"""Issue 11 acceptance for user tokens with pip and twine: a name-code/pass-code pair uploads and
installs; with ``protectContent`` on, pip with the real password is refused and with the token works."""

from __future__ import annotations

import json
from pathlib import Path

import urllib3

from pypi_kit import make_wheel, pip, run, BIN

HTTP = urllib3.PoolManager()


def test_twine_and_pip_with_a_user_token_and_protect_content(stowage_factory, live_server_factory, client_env,
                                                            dists, tmp_path: Path) -> None:
    app = stowage_factory()
    app.create_repository(name="pypi-hosted", format="pypi", type="hosted")
    app.stowage.security.set_anonymous_settings(False)
    server = live_server_factory(app)
    admin = {**urllib3.make_headers(basic_auth=f"admin:{app.admin_password}"), "Content-Type": "application/json"}
    api = f"{server.url}/service/rest/v1/security"
    settings = {"enabled": True, "protectContent": False, "expirationEnabled": True, "expirationDays": 30}
    assert HTTP.request("PUT", f"{api}/user-tokens", headers=admin, body=json.dumps(settings)).status == 200
    created = HTTP.request("POST", f"{api}/users/admin/NexusAuthenticatingRealm/user-token", headers=admin)
    assert created.status == 201
    pair = json.loads(created.data)
    name, code = pair["nameCode"], pair["passCode"]
    host = server.url.split("://", 1)[1]

    wheel = make_wheel(dists, "token-tool", "1.0")
    run([str(BIN / "twine"), "upload", "--non-interactive", "--disable-progress-bar", "--repository-url",
         f"{server.url}/repository/pypi-hosted/", "-u", name, "-p", code, str(wheel)], client_env)

    def install(user: str, password: str, target: str):
        return pip(client_env, "install", "--no-deps", "--target", str(tmp_path / target), "--index-url",
                   f"http://{user}:{password}@{host}/repository/pypi-hosted/simple/", "token-tool", check=False)

    assert install(name, code, "with-token").returncode == 0
    assert install("admin", app.admin_password, "with-password").returncode == 0

    settings["protectContent"] = True
    assert HTTP.request("PUT", f"{api}/user-tokens", headers=admin, body=json.dumps(settings)).status == 200
    refused = install("admin", app.admin_password, "refused")
    assert refused.returncode != 0 and "401" in refused.stdout + refused.stderr
    assert not (tmp_path / "refused" / "token_tool").exists()
    assert install(name, code, "protected").returncode == 0
    assert (tmp_path / "protected" / "token_tool").is_dir()
