"""npm login, publish and install as a directory user (a real slapd) whose group maps to a role."""

from __future__ import annotations

from npm_kit import NpmClient, installed_version, make_package
from stowage.testing.slapd import map_group, use_directory

REALMS = "/service/rest/v1/security/realms/active"


def test_npm_login_publish_and_install_as_a_directory_user(stowage_factory, live_server_factory, slapd, tmp_path):
    app = stowage_factory(anonymous_access=False, repositories=[{"name": "npm-hosted", "format": "npm",
                                                                  "type": "hosted"}])
    map_group(app, "developers", ["nx-repository-view-npm-npm-hosted-*"])
    use_directory(app, slapd)
    server = live_server_factory(app)
    hosted = f"{server.url}/repository/npm-hosted/"
    client = NpmClient(tmp_path / "home", hosted)

    code, output = client.run_tty("login", answers=["alice", "wrong-password"])
    assert code != 0 and "401" in output
    code, output = client.run_tty("login", answers=["alice", "alice-ldap-pw"])
    assert code == 0, output
    assert "_authToken=npm_" in client.npmrc.read_text()
    assert client.run("whoami").stdout.strip() == "alice"
    client.run("publish", cwd=make_package(tmp_path / "src", "ldap-lib", "1.0.0"))
    project = tmp_path / "project"
    project.mkdir()
    (project / "package.json").write_text('{"name": "consumer", "version": "1.0.0"}')
    client.run("install", "ldap-lib@1.0.0", cwd=project)
    assert installed_version(project, "ldap-lib") == "1.0.0"

    # The token stays bound to the directory user: switching the LDAP realm off refuses it at once.
    assert app.client.simulate_put(REALMS, json=["NexusAuthenticatingRealm", "NpmToken"],
                                   headers=app.admin).status_code == 204
    refused = client.run("whoami", check=False)
    assert refused.returncode != 0 and "401" in refused.stderr
    refused = client.run("publish", cwd=make_package(tmp_path / "src", "ldap-lib", "1.0.1"), check=False)
    assert refused.returncode != 0
    app.client.simulate_put(REALMS, json=["NexusAuthenticatingRealm", "LdapRealm"], headers=app.admin)
    refused = client.run("whoami", check=False)  # and so does switching off the npm token realm
    assert refused.returncode != 0 and "401" in refused.stderr
