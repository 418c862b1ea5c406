"""/service/metrics/{ping,prometheus} on a live server."""

import re

import urllib3

from stowage.security import User
from stowage.testing.harness import basic_auth


def sample(text, name, **labels):
    for line in text.splitlines():
        if line.startswith(name + "{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return None


def test_ping_and_permissions(stowage_app, live_server_factory):
    live = live_server_factory(stowage_app)
    stowage_app.stowage.security.save_user(User(user_id="dev", roles=("nx-deployer",)), "dev-pw")
    stowage_app.stowage.security.save_role({"id": "monitoring", "name": "monitoring", "description": "",
                                            "privileges": ["nx-metrics-all"], "roles": []})
    stowage_app.stowage.security.save_user(User(user_id="prom", roles=("monitoring",)), "prom-pw")
    assert urllib3.request("GET", f"{live.url}/service/metrics/ping").status == 401
    assert urllib3.request("GET", f"{live.url}/service/metrics/prometheus",
                           headers=basic_auth("dev", "dev-pw")).status == 403
    pong = urllib3.request("GET", f"{live.url}/service/metrics/ping", headers=basic_auth("prom", "prom-pw"))
    assert pong.status == 200 and pong.data == b"pong\n"


def test_prometheus_counts_requests_bytes_and_storage(stowage_app, live_server_factory):
    stowage_app.create_repository(name="raw", format="raw", type="hosted")
    stowage_app.create_repository(name="raw-group", format="raw", type="group", group={"memberNames": ["raw"]})
    live = live_server_factory(stowage_app)
    admin = stowage_app.admin
    assert urllib3.request("PUT", f"{live.url}/repository/raw/f", body=b"z" * 5000, headers=admin).status == 201
    for _ in range(3):
        assert urllib3.request("GET", f"{live.url}/repository/raw/f").status == 200
    assert urllib3.request("GET", f"{live.url}/repository/raw/missing").status == 404
    assert urllib3.request("HEAD", f"{live.url}/repository/raw/f").status == 200
    response = urllib3.request("GET", f"{live.url}/service/metrics/prometheus", headers=admin)
    assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    text = response.data.decode()
    assert sample(text, "stowage_http_requests_total", method="GET", status="2xx") == 3
    assert sample(text, "stowage_http_requests_total", method="GET", status="4xx") == 1
    assert sample(text, "stowage_http_requests_total", method="PUT", status="2xx") == 1
    assert sample(text, "stowage_http_response_bytes_total", method="GET") >= 3 * 5000
    assert sample(text, "stowage_http_request_duration_seconds_count", method="GET", status="2xx") == 3
    assert sample(text, "stowage_http_request_duration_seconds_bucket", method="GET", status="2xx", le="+Inf") == 3
    assert sample(text, "stowage_blob_store_blobs", store="default") == 1
    assert sample(text, "stowage_blob_store_size_bytes", store="default") == 5000
    assert sample(text, "stowage_blob_store_available_bytes", store="default") > 0
    assert sample(text, "stowage_repositories", format="raw", type="hosted") == 1
    assert sample(text, "stowage_repositories", format="raw", type="group") == 1
    # every sample line is well formed exposition text
    for line in text.splitlines():
        assert line.startswith("#") or re.fullmatch(r'[a-z_]+\{[^}]*\} [0-9.e+-]+', line), line


def test_two_apps_in_one_process_keep_separate_counts(stowage_factory, live_server_factory):
    first, second = stowage_factory(), stowage_factory()
    one, two = live_server_factory(first), live_server_factory(second)
    for _ in range(4):
        urllib3.request("GET", f"{one.url}/service/rest/v1/status")
    text = urllib3.request("GET", f"{two.url}/service/metrics/prometheus", headers=second.admin).data.decode()
    assert sample(text, "stowage_http_requests_total", method="GET", status="2xx") is None
