"""The proxy engine on the raw format, against a real fault-injecting upstream and a live Stowage server."""

from __future__ import annotations

import hashlib
import os
import time

import pytest

from engine_kit import age, curl, get, raw_stack
from stowage.catalog.base import RemoteStatus


@pytest.fixture
def stack(stowage_app, live_server_factory, fault_upstream):
    def build(**kwargs):
        raw_stack(stowage_app, fault_upstream, **kwargs)
        return live_server_factory(stowage_app)

    return build


def test_group_serves_and_caches_then_survives_the_upstream_stopping(stack, stowage_app, fault_upstream):
    server = stack(proxy={"contentMaxAge": 1}, http_client={"connection": {"timeout": 2}})
    fault_upstream.put("dist/tool-1.0.tar.gz", b"tool release 1.0\n" * 1000)
    url = f"{server.url}/repository/raw-group/dist/tool-1.0.tar.gz"

    first = curl("-D", "-", "-o", os.devnull, "-w", "%{http_code}", url)
    assert first.stdout.endswith("200"), first
    assert "x-stowage-cache: miss" in first.stdout.lower()
    assert stowage_app.stowage.catalog.get_asset("raw-proxy", "dist/tool-1.0.tar.gz") is not None

    again = get(url)
    assert again.status == 200 and again.headers["X-Stowage-Cache"] == "hit"
    assert fault_upstream.count("dist/tool-1.0.tar.gz") == 1

    fault_upstream.stop()
    fresh = get(url)
    assert fresh.status == 200 and fresh.data == b"tool release 1.0\n" * 1000
    assert "Warning" not in fresh.headers  # still within contentMaxAge: no reason to call it stale

    age(stowage_app, "raw-proxy", "dist/tool-1.0.tar.gz", 120)
    stale = curl("-D", "-", "-o", os.devnull, "-w", "%{http_code}", "--max-time", "20", url)
    assert stale.stdout.endswith("200"), stale
    headers = stale.stdout.lower()
    assert "x-stowage-cache: stale" in headers
    assert 'warning: 110 - "response is stale"' in headers

    started = time.monotonic()
    missing = get(f"{server.url}/repository/raw-group/dist/tool-2.0.tar.gz")
    assert missing.status in (502, 503, 504)
    assert time.monotonic() - started < 2 + 1.5
    assert b"raw-proxy" in missing.data


def test_uncached_path_on_a_hung_upstream_fails_within_the_timeout(stack, fault_upstream):
    server = stack(http_client={"connection": {"timeout": 1}, "autoBlock": False})
    fault_upstream.put("slow.bin", b"x")
    fault_upstream.fault("hang")
    started = time.monotonic()
    result = curl("-o", os.devnull, "-w", "%{http_code}", "--max-time", "30",
                  f"{server.url}/repository/raw-proxy/slow.bin")
    elapsed = time.monotonic() - started
    assert result.stdout == "504", result
    # The configured 1 s, not the 20 s default nor curl's 30 s: the upper bound leaves room for a loaded
    # machine's scheduling and still tells those apart.
    assert 0.9 < elapsed < 1 + 8.0
    fault_upstream.clear_faults()
    assert get(f"{server.url}/repository/raw-proxy/slow.bin").status == 200


def test_a_cut_body_is_not_cached_and_the_client_sees_the_failure(stack, stowage_app, fault_upstream, tmp_path):
    server = stack(http_client={"autoBlock": False})
    payload = os.urandom(3 * 1024 * 1024)
    fault_upstream.put("big.bin", payload)
    fault_upstream.fault("cut", "big.bin", at=1024 * 1024)
    fault_upstream.throttle(4 * 1024 * 1024)  # the client is being served when the cut comes
    url = f"{server.url}/repository/raw-proxy/big.bin"
    out = tmp_path / "out.bin"
    cut = curl("-o", str(out), "-w", "%{http_code}", url)
    assert cut.returncode != 0, "a cut body must fail the client's transfer, not look complete"
    assert out.stat().st_size < len(payload)
    assert stowage_app.stowage.catalog.get_asset("raw-proxy", "big.bin") is None

    fault_upstream.fault(None, "big.bin")
    fault_upstream.throttle(None)
    whole = curl("-o", str(out), "-w", "%{http_code}", url)
    assert whole.returncode == 0 and whole.stdout == "200"
    assert hashlib.sha256(out.read_bytes()).hexdigest() == hashlib.sha256(payload).hexdigest()
    assert fault_upstream.count("big.bin") == 2
    assert stowage_app.stowage.catalog.get_asset("raw-proxy", "big.bin").size == len(payload)


def test_404_is_negatively_cached_for_its_ttl(stack, stowage_app, fault_upstream):
    server = stack(negative_cache={"enabled": True, "timeToLive": 5})
    url = f"{server.url}/repository/raw-proxy/later.txt"
    assert get(url).status == 404
    fault_upstream.put("later.txt", b"now it exists")
    assert get(url).status == 404  # remembered: the upstream is not asked again
    assert fault_upstream.count("later.txt") == 1
    catalog = stowage_app.stowage.catalog
    assert catalog.known_missing("raw-proxy", "later.txt", time.time() + 4 * 60)
    assert not catalog.known_missing("raw-proxy", "later.txt", time.time() + 6 * 60)
    catalog.remember_missing("raw-proxy", "later.txt", time.time() - 1)  # the TTL has passed
    answer = get(url)
    assert answer.status == 200 and answer.data == b"now it exists"
    assert fault_upstream.count("later.txt") == 2


def test_negative_cache_disabled_asks_every_time(stack, fault_upstream):
    server = stack(negative_cache={"enabled": False, "timeToLive": 5})
    url = f"{server.url}/repository/raw-proxy/nothing.txt"
    assert get(url).status == 404
    assert get(url).status == 404
    assert fault_upstream.count("nothing.txt") == 2


@pytest.mark.parametrize("status", [500, 503, 429])
def test_failures_are_never_negatively_cached(stack, fault_upstream, status):
    server = stack(http_client={"autoBlock": False})
    fault_upstream.put("flaky.txt", b"ok")
    fault_upstream.fault("status", "flaky.txt", status=status)
    url = f"{server.url}/repository/raw-proxy/flaky.txt"
    failed = get(url)
    assert failed.status == 502
    assert str(status).encode() in failed.data
    fault_upstream.fault(None, "flaky.txt")
    assert get(url).status == 200
    assert fault_upstream.count("flaky.txt") == 2


@pytest.mark.parametrize("status", [500, 429, 401, 403])
def test_stale_copy_served_when_the_upstream_fails(stack, stowage_app, fault_upstream, status):
    server = stack(proxy={"contentMaxAge": 1}, http_client={"autoBlock": False})
    fault_upstream.put("lib.jar", b"jar bytes")
    url = f"{server.url}/repository/raw-proxy/lib.jar"
    assert get(url).status == 200
    age(stowage_app, "raw-proxy", "lib.jar", 3600)
    fault_upstream.fault("status", status=status)
    answer = get(url)
    assert answer.status == 200 and answer.data == b"jar bytes"
    assert answer.headers["X-Stowage-Cache"] == "stale"
    assert answer.headers["Warning"] == '110 - "Response is Stale"'


def test_max_ages_content_is_not_refetched_early_and_stale_content_is_revalidated(stack, stowage_app,
                                                                                  fault_upstream):
    server = stack(proxy={"contentMaxAge": 60})
    fault_upstream.put("pkg.tgz", b"v1")
    url = f"{server.url}/repository/raw-proxy/pkg.tgz"
    assert get(url).data == b"v1"
    age(stowage_app, "raw-proxy", "pkg.tgz", 59 * 60)
    assert get(url).headers["X-Stowage-Cache"] == "hit"
    assert fault_upstream.count("pkg.tgz") == 1

    age(stowage_app, "raw-proxy", "pkg.tgz", 61 * 60)
    revalidated = get(url)
    assert revalidated.status == 200 and revalidated.headers["X-Stowage-Cache"] == "revalidated"
    conditional = fault_upstream.requests("pkg.tgz")[-1]
    assert conditional.status == 304 and conditional.header("If-None-Match")
    assert get(url).headers["X-Stowage-Cache"] == "hit"  # 304 refreshed the age
    assert fault_upstream.count("pkg.tgz") == 2

    fault_upstream.put("pkg.tgz", b"v2")
    age(stowage_app, "raw-proxy", "pkg.tgz", 61 * 60)
    changed = get(url)
    assert changed.data == b"v2" and changed.headers["X-Stowage-Cache"] == "miss"
    assert fault_upstream.requests("pkg.tgz")[-1].status == 200


def test_content_max_age_minus_one_never_rechecks(stack, stowage_app, fault_upstream):
    server = stack(proxy={"contentMaxAge": -1})
    fault_upstream.put("release.zip", b"forever")
    url = f"{server.url}/repository/raw-proxy/release.zip"
    assert get(url).status == 200
    age(stowage_app, "raw-proxy", "release.zip", 400 * 86400)
    assert get(url).headers["X-Stowage-Cache"] == "hit"
    assert fault_upstream.count("release.zip") == 1


def test_auto_block_grows_shows_in_rest_and_unblocks_itself(stack, stowage_app, fault_upstream):
    server = stack(http_client={"autoBlock": True, "connection": {"timeout": 2}})
    fault_upstream.put("cached.txt", b"cached")
    fault_upstream.put("other.txt", b"other")
    assert get(f"{server.url}/repository/raw-proxy/cached.txt").status == 200
    status_url = f"{server.url}/service/rest/v1/repositories/raw-proxy"
    assert get(status_url).json()["status"]["remoteStatus"] == "available"

    fault_upstream.fault("status", status=503)
    assert get(f"{server.url}/repository/raw-proxy/first.txt").status == 502
    status = get(status_url).json()["status"]
    assert status["remoteStatus"] == "autoBlocked" and status["failures"] == 1
    assert 35 <= status["blockedForSeconds"] <= 40
    assert "503" in status["reason"]

    before = fault_upstream.count(method=None)
    blocked = get(f"{server.url}/repository/raw-proxy/other.txt")
    assert blocked.status == 503 and b"auto-blocked" in blocked.data
    assert fault_upstream.count(method=None) == before, "a blocked remote is not contacted"
    assert get(f"{server.url}/repository/raw-proxy/cached.txt").status == 200  # cached content still served

    catalog = stowage_app.stowage.catalog
    catalog.save_remote_status("raw-proxy", RemoteStatus(1, time.time() - 1, "old"))  # the 40 s are over
    assert get(f"{server.url}/repository/raw-proxy/second.txt").status == 502  # still failing
    status = get(status_url).json()["status"]
    assert status["failures"] == 2 and 75 <= status["blockedForSeconds"] <= 80  # the period grows

    fault_upstream.clear_faults()
    catalog.save_remote_status("raw-proxy", RemoteStatus(2, time.time() - 1, "old"))
    assert get(f"{server.url}/repository/raw-proxy/other.txt").status == 200
    status = get(status_url).json()["status"]
    assert status["remoteStatus"] == "available" and status["failures"] == 0


def test_manually_blocked_remote_serves_cache_and_fails_fast(stowage_app, live_server_factory, fault_upstream):
    raw_stack(stowage_app, fault_upstream)
    server = live_server_factory(stowage_app)
    fault_upstream.put("a.txt", b"a")
    fault_upstream.put("b.txt", b"b")
    assert get(f"{server.url}/repository/raw-proxy/a.txt").status == 200
    config = get(f"{server.url}/service/rest/v1/repositories/raw/proxy/raw-proxy",
                 headers=stowage_app.admin).json()
    config.setdefault("httpClient", {})["blocked"] = True
    answer = get(f"{server.url}/service/rest/v1/repositories/raw/proxy/raw-proxy", method="PUT", json=config,
                 headers=stowage_app.admin)
    assert answer.status == 204, answer.data
    assert get(f"{server.url}/service/rest/v1/repositories/raw-proxy").json()["status"]["remoteStatus"] == "blocked"
    assert get(f"{server.url}/repository/raw-proxy/a.txt").status == 200
    blocked = get(f"{server.url}/repository/raw-proxy/b.txt")
    assert blocked.status == 503 and b"httpClient.blocked" in blocked.data
    assert fault_upstream.count("b.txt") == 0


@pytest.mark.parametrize("kind", ["basic", "bearer"])
def test_upstream_credentials_are_sent_and_never_returned(stowage_app, live_server_factory, fault_upstream, kind):
    if kind == "basic":
        fault_upstream.require_auth(basic=("deployer", "s3cret"))
        auth = {"type": "username", "username": "deployer", "password": "s3cret"}
    else:
        fault_upstream.require_auth(bearer="tok-123")
        auth = {"type": "bearerToken", "bearerToken": "tok-123"}
    fault_upstream.put("private.bin", b"private")
    raw_stack(stowage_app, fault_upstream, http_client={"authentication": auth, "autoBlock": False})
    server = live_server_factory(stowage_app)
    assert get(f"{server.url}/repository/raw-proxy/private.bin").data == b"private"
    settings = get(f"{server.url}/service/rest/v1/repositories/raw/proxy/raw-proxy", headers=stowage_app.admin)
    assert b"s3cret" not in settings.data and b"tok-123" not in settings.data
    everything = get(f"{server.url}/service/rest/v1/repositorySettings", headers=stowage_app.admin)
    assert b"s3cret" not in everything.data and b"tok-123" not in everything.data


def test_redirects_are_followed(stack, fault_upstream):
    server = stack()
    fault_upstream.put("real/location.bin", b"moved here")
    fault_upstream.redirect("old/location.bin", "real/location.bin")
    answer = get(f"{server.url}/repository/raw-proxy/old/location.bin")
    assert answer.status == 200 and answer.data == b"moved here"


def test_a_proxy_of_another_stowage_group_works(stowage_factory, live_server_factory, fault_upstream):
    fault_upstream.put("chain/file.bin", os.urandom(200_000))
    upstream_ts = stowage_factory()
    raw_stack(upstream_ts, fault_upstream)
    upstream_server = live_server_factory(upstream_ts)
    edge = stowage_factory()
    edge.create_repository(name="edge-proxy", format="raw", type="proxy",
                           proxy={"remoteUrl": f"{upstream_server.url}/repository/raw-group/"})
    edge_server = live_server_factory(edge)
    answer = get(f"{edge_server.url}/repository/edge-proxy/chain/file.bin")
    assert answer.status == 200
    assert hashlib.sha256(answer.data).hexdigest() == edge.stowage.catalog.get_asset(
        "edge-proxy", "chain/file.bin").blob_sha256
    assert upstream_ts.stowage.catalog.get_asset("raw-proxy", "chain/file.bin") is not None
    assert get(f"{edge_server.url}/repository/edge-proxy/chain/missing.bin").status == 404


def test_invalidate_cache_forgets_negative_entries_and_refuses_hosted(stack, stowage_app, fault_upstream):
    server = stack()
    url = f"{server.url}/repository/raw-group/none.bin"
    assert get(url).status == 404
    fault_upstream.put("none.bin", b"arrived")
    assert get(url).status == 404
    answer = get(f"{server.url}/service/rest/v1/repositories/raw-group/invalidate-cache", method="POST",
                 headers=stowage_app.admin)
    assert answer.status == 204
    assert get(url).data == b"arrived"
    refused = get(f"{server.url}/service/rest/v1/repositories/raw-hosted/invalidate-cache", method="POST",
                  headers=stowage_app.admin)
    assert refused.status == 400 and b"hosted" in refused.data


def test_connection_retries_absorb_transient_failures(stack, fault_upstream):
    server = stack(http_client={"connection": {"timeout": 2, "retries": 2}})
    fault_upstream.put("retry.bin", b"third time lucky")
    fault_upstream.fault("status", "retry.bin", status=503, times=2)
    answer = get(f"{server.url}/repository/raw-proxy/retry.bin")
    assert answer.status == 200 and answer.data == b"third time lucky"
    assert [entry.status for entry in fault_upstream.requests("retry.bin")] == [503, 503, 200]


def test_head_of_an_uncached_path_fetches_it_once(stack, fault_upstream):
    server = stack()
    fault_upstream.put("head.bin", b"12345")
    head = get(f"{server.url}/repository/raw-proxy/head.bin", method="HEAD")
    assert head.status == 200 and head.headers["Content-Length"] == "5"
    body = get(f"{server.url}/repository/raw-proxy/head.bin")
    assert body.data == b"12345"
    assert fault_upstream.count("head.bin") == 1


def _head_length(url: str) -> tuple[str, str | None]:
    """``curl -I``: (status line, Content-Length or None)."""
    answer = curl("-I", url)
    lines = answer.stdout.splitlines()
    length = next((line.split(":", 1)[1].strip() for line in lines if line.lower().startswith("content-length:")),
                  None)
    return (lines[0].strip() if lines else answer.stderr), length


def test_head_of_an_uncached_path_has_the_exact_length_when_the_remote_sends_none(stack, stowage_app,
                                                                                    fault_upstream):
    """A chunked remote announces no length: HEAD waits for the verified download instead of saying 0."""
    server = stack()
    body = os.urandom(1024 * 1024 + 17)
    fault_upstream.put("chunked.bin", body)
    fault_upstream.put("broken.bin", body)
    fault_upstream.chunked()
    fault_upstream.throttle(2 * 1024 * 1024)  # still downloading when HEAD asks
    status, length = _head_length(f"{server.url}/repository/raw-proxy/chunked.bin")
    assert status.endswith("200 OK") and length == str(len(body))
    cached = stowage_app.stowage.catalog.get_asset("raw-proxy", "chunked.bin")
    assert cached is not None and cached.size == len(body)
    assert get(f"{server.url}/repository/raw-proxy/chunked.bin").data == body
    assert fault_upstream.count("chunked.bin") == 1

    fault_upstream.fault("cut", "broken.bin", at=100 * 1024)  # the download fails: HEAD is no 200 either
    status, length = _head_length(f"{server.url}/repository/raw-proxy/broken.bin")
    assert " 200" not in status and status.split()[1].startswith("5"), status
    assert stowage_app.stowage.catalog.get_asset("raw-proxy", "broken.bin") is None
