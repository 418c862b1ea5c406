"""Issue 2 acceptance: authentication, write policies and name policies, through curl on a live server."""

from __future__ import annotations

import pytest

from core_helpers import curl


@pytest.fixture
def server(stowage_app, live_server_factory):
    stowage_app.create_repository(name="once", format="raw", type="hosted",
                                  storage={"writePolicy": "ALLOW_ONCE"})
    stowage_app.create_repository(name="allow", format="raw", type="hosted", storage={"writePolicy": "ALLOW"})
    stowage_app.create_repository(name="readonly", format="raw", type="hosted", storage={"writePolicy": "DENY"})
    stowage_app.create_repository(name="policed", format="raw", type="hosted",
                                  namePolicy={"allow": ["orchestrator-*"], "deny": ["orchestrator-evil*"]})
    return live_server_factory(stowage_app)


def put(server, path: str, body: str = "data", *, user: str | None = "admin", password: str | None = None,
        extra: tuple[str, ...] = ()) -> tuple[int, str]:
    args = ["-X", "PUT", "--data-binary", body, "-D", "/dev/stderr", "-o", "/dev/stdout"]
    if user:
        args += ["-u", f"{user}:{password or server.test_stowage.admin_password}"]
    result = curl(*args, *extra, "-w", "\n%{http_code}", f"{server.url}/repository/{path}")
    body_text, _, status = result.stdout.rpartition("\n")
    return int(status), body_text + "\n" + result.stderr


def test_anonymous_put_is_401_with_challenge(server):
    status, out = put(server, "allow/x.txt", user=None)
    assert status == 401
    assert 'WWW-Authenticate: Basic realm="Stowage"'.lower() in out.lower()
    assert curl("-o", "/dev/null", "-w", "%{http_code}", f"{server.url}/repository/allow/x.txt").stdout == "404"


def test_wrong_password_is_401_even_for_reads(server):
    status, out = put(server, "allow/x.txt", password="wrong")
    assert status == 401 and "invalid credentials" in out
    assert "www-authenticate" in out.lower()
    # Wrong credentials are never silently downgraded to anonymous.
    read = curl("-u", "admin:wrong", "-o", "/dev/null", "-w", "%{http_code}", f"{server.url}/repository/allow/x.txt")
    assert read.stdout == "401"
    status, _ = put(server, "allow/x.txt", user="nobody", password="x")
    assert status == 401


def test_allow_once_refuses_a_second_put(server):
    assert put(server, "once/a/b.txt", "first")[0] == 201
    status, out = put(server, "once/a/b.txt", "second")
    assert status == 400
    assert "does not allow updating" in out
    assert curl(f"{server.url}/repository/once/a/b.txt").stdout == "first"


def test_allow_replaces(server):
    assert put(server, "allow/a.txt", "first")[0] == 201
    assert put(server, "allow/a.txt", "second")[0] == 201
    assert curl(f"{server.url}/repository/allow/a.txt").stdout == "second"


def test_deny_refuses_every_write(server):
    status, out = put(server, "readonly/a.txt")
    assert status == 400 and "read only" in out
    delete = curl("-u", f"admin:{server.test_stowage.admin_password}", "-X", "DELETE", "-o", "/dev/null",
                  "-w", "%{http_code}", f"{server.url}/repository/readonly/a.txt")
    assert delete.stdout == "400"


def test_name_policy_names_itself(server):
    assert put(server, "policed/orchestrator-api.tgz")[0] == 201
    status, out = put(server, "policed/cwiq-core.tgz")
    assert status == 403
    assert "name policy of repository policed" in out and "orchestrator-*" in out
    status, out = put(server, "policed/orchestrator-evil.tgz")
    assert status == 403
    assert "denied pattern 'orchestrator-evil*'" in out
    # the refused uploads left nothing behind
    assert curl("-o", "/dev/null", "-w", "%{http_code}",
                f"{server.url}/repository/policed/cwiq-core.tgz").stdout == "404"


def test_anonymous_read_can_be_switched_off(stowage_factory, live_server_factory):
    app = stowage_factory(anonymous_access=False)
    app.create_repository(name="private", format="raw", type="hosted")
    server = live_server_factory(app)
    assert put(server, "private/a.txt", "secret")[0] == 201
    anonymous = curl("-D", "-", "-o", "/dev/null", f"{server.url}/repository/private/a.txt").stdout
    assert anonymous.startswith("HTTP/1.1 401") and "www-authenticate" in anonymous.lower()
    assert curl("-u", f"admin:{app.admin_password}", f"{server.url}/repository/private/a.txt").stdout == "secret"


def test_admin_password_is_generated_and_hashed(tmp_path, monkeypatch):
    from stowage.testing import build_stowage

    monkeypatch.delenv("STOWAGE_ADMIN_PASSWORD", raising=False)
    built = build_stowage(tmp_path / "data")
    try:
        password_file = tmp_path / "data" / "admin.password"
        password = password_file.read_text()
        assert len(password) >= 16 and oct(password_file.stat().st_mode)[-3:] == "600"
        user = built.stowage.security.get_user("admin")
        assert password not in user.password_hash and user.password_hash.startswith("scrypt$")
        assert built.stowage.security.check_password("admin", password) is not None
        assert built.stowage.security.check_password("admin", password + "x") is None
    finally:
        built.stowage.close()
