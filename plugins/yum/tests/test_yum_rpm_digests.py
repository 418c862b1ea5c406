"""Issue 10 item 8: an RPM whose payload does not match its digests (cut short, or altered) is refused with a 400
before it reaches primary.xml; rpm's own check (``rpmkeys --checksig --nosignature``) decides."""

from __future__ import annotations

import subprocess

from stowage.plugin import BackgroundWork
from stowage_yum.state import JOB
from test_yum_hosted import _multipart, flush, names, repodata


def curl_put(server, path: str, data: bytes) -> tuple[int, str]:
    out = subprocess.run(["curl", "-sS", "-w", "\n%{http_code}", "-u", f"admin:{server.test_stowage.admin_password}",
                          "-T", "-", f"{server.url}/repository/yum-hosted/{path}"],
                         input=data, capture_output=True, check=True, timeout=60)
    body, _, status = out.stdout.decode().rpartition("\n")
    return int(status), body


def broken(data: bytes) -> dict[str, bytes]:
    flipped = bytearray(data)
    flipped[-30] ^= 0xFF  # inside the compressed payload; the header still parses
    return {"cut": data[:-20], "cut-half": data[: len(data) // 2 + 2000], "flipped": bytes(flipped)}


def test_a_truncated_or_altered_rpm_is_refused_by_put(yum_app, rpms, live_server_factory):
    ts = yum_app()
    server = live_server_factory(ts)
    good = rpms["hello-1.0"].read_bytes()
    assert subprocess.run(["rpmkeys", "--checksig", "--nosignature", str(rpms["hello-1.0"])]).returncode == 0
    assert curl_put(server, "world-2.0-1.noarch.rpm", rpms["world-2.0"].read_bytes())[0] == 201
    flush(ts)
    before_state, before_repodata = ts.stored_state(), repodata(ts)
    for kind, data in broken(good).items():
        status, body = curl_put(server, "hello-1.0-1.noarch.rpm", data)
        assert status == 400, (kind, body)
        assert "fails rpm's digest check" in body or "not a valid RPM package" in body, (kind, body)
        assert "/tmp" not in body and str(ts.stowage.settings.data_path) not in body  # no file name leaked
    assert BackgroundWork.of(ts.stowage).pending(JOB) == []
    flush(ts)
    assert ts.stored_state() == before_state
    assert repodata(ts) == before_repodata
    assert curl_put(server, "hello-1.0-1.noarch.rpm", good)[0] == 201
    flush(ts)
    assert names(repodata(ts)["primary"]) == ["hello-1.0-1.noarch.rpm", "world-2.0-1.noarch.rpm"]


def test_the_payload_check_names_the_bad_digest(yum_app, rpms):
    ts = yum_app()
    response = ts.client.simulate_put("/repository/yum-hosted/hello-1.0-1.noarch.rpm",
                                      body=broken(rpms["hello-1.0"].read_bytes())["flipped"], headers=ts.admin)
    assert response.status_code == 400
    assert "Payload SHA256 digest: BAD" in response.text and "hello-1.0-1.noarch.rpm" in response.text


def test_a_truncated_rpm_is_refused_by_the_rest_upload(yum_app, rpms):
    ts = yum_app()
    before = ts.stored_state()  # the file part is checked while staged: not even a blob is left
    response = ts.client.simulate_post(
        "/service/rest/v1/components", params={"repository": "yum-hosted"}, headers=ts.admin,
        **_multipart({"yum.asset.filename": "hello-1.0-1.noarch.rpm"},
                     ("yum.asset", "hello-1.0-1.noarch.rpm", rpms["hello-1.0"].read_bytes()[:-20])))
    assert response.status_code == 400 and "fails rpm's digest check" in response.text
    assert ts.stored_state() == before
    tmp = ts.stowage.settings.data_path / "tmp"
    assert not tmp.exists() or list(tmp.iterdir()) == []
    assert BackgroundWork.of(ts.stowage).pending(JOB) == []


def test_without_rpmkeys_uploads_are_refused_as_a_server_problem(yum_app, rpms, monkeypatch):
    ts = yum_app()
    monkeypatch.setenv("PATH", "/nonexistent-bin-dir")
    response = ts.client.simulate_put("/repository/yum-hosted/hello-1.0-1.noarch.rpm",
                                      body=rpms["hello-1.0"].read_bytes(), headers=ts.admin)
    assert response.status_code == 503 and "rpmkeys" in response.text
