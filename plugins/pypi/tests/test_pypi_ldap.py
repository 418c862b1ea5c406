"""twine and pip sign in as a directory user (a real slapd) whose group maps to a role."""

from __future__ import annotations

from pathlib import Path

from pypi_kit import BIN, make_wheel, pip, run
from stowage.testing.slapd import map_group, use_directory


def twine(url: str, wheel: Path, env: dict[str, str], user: str, password: str, *, check: bool = True):
    return run([str(BIN / "twine"), "upload", "--non-interactive", "--disable-progress-bar", "--repository-url", url,
                "-u", user, "-p", password, str(wheel)], env, check=check)


def install(env: dict[str, str], server_url: str, user: str, password: str, target: Path, *, check: bool = True):
    index = f"{server_url.replace('http://', f'http://{user}:{password}@')}/repository/pypi-hosted/simple/"
    return pip(env, "install", "--no-deps", "--no-cache-dir", "--target", str(target), "--index-url", index,
               "ldap-pkg==1.0", check=check)


def test_twine_and_pip_as_a_directory_user_with_the_directory_up_and_down(
        stowage_factory, live_server_factory, slapd, client_env, dists, tmp_path):
    app = stowage_factory(anonymous_access=False)
    app.create_repository(name="pypi-hosted", format="pypi", type="hosted")
    map_group(app, "developers", ["nx-repository-view-pypi-pypi-hosted-*"])
    map_group(app, "readers", ["nx-repository-view-pypi-pypi-hosted-read", "nx-repository-view-pypi-pypi-hosted-browse"])
    use_directory(app, slapd)
    server = live_server_factory(app)
    hosted = f"{server.url}/repository/pypi-hosted/"
    wheel = make_wheel(dists, "ldap-pkg", "1.0")

    refused = twine(hosted, wheel, client_env, "alice", "not-her-password", check=False)
    assert refused.returncode != 0 and "401" in refused.stdout + refused.stderr
    twine(hosted, wheel, client_env, "alice", "alice-ldap-pw")
    install(client_env, server.url, "alice", "alice-ldap-pw", tmp_path / "up")
    assert (tmp_path / "up" / "ldap_pkg-1.0.dist-info").is_dir()

    slapd.stop()
    # alice's sign-in is cached; bob (who may read) was never seen, so he is refused; admin is local.
    install(client_env, server.url, "alice", "alice-ldap-pw", tmp_path / "cached")
    assert (tmp_path / "cached" / "ldap_pkg-1.0.dist-info").is_dir()
    denied = install(client_env, server.url, "bob", "bob-ldap-pw", tmp_path / "bob", check=False)
    assert denied.returncode != 0 and "401" in denied.stdout + denied.stderr
    install(client_env, server.url, "admin", app.admin_password, tmp_path / "admin")
    slapd.start()
    install(client_env, server.url, "bob", "bob-ldap-pw", tmp_path / "bob")
    refused = twine(hosted, wheel, client_env, "bob", "bob-ldap-pw", check=False)  # readers may not upload
    assert refused.returncode != 0 and "403" in refused.stdout + refused.stderr

    assert app.client.simulate_put("/service/rest/v1/security/realms/active", json=["NexusAuthenticatingRealm"],
                                   headers=app.admin).status_code == 204
    denied = install(client_env, server.url, "alice", "alice-ldap-pw", tmp_path / "off", check=False)
    assert denied.returncode != 0 and "401" in denied.stdout + denied.stderr
