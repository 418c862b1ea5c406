"""request_remote: the side requests of a proxy (token services, audit, search, HEAD revalidation) follow the
repository's httpClient rules, above all ``connection.retries`` (default 0: one attempt)."""

from __future__ import annotations

import pytest

from stowage.plugin import UpstreamError, request_remote


@pytest.mark.parametrize("retries, attempts", [(None, 1), (2, 3)])
def test_request_remote_makes_one_attempt_plus_the_configured_retries(stowage_app, fault_upstream, retries,
                                                                     attempts):
    extra = {} if retries is None else {"httpClient": {"connection": {"retries": retries}}}
    stowage_app.create_repository(name="raw-proxy", format="raw", type="proxy",
                                  proxy={"remoteUrl": fault_upstream.url}, **extra)
    repository = stowage_app.stowage.repository("raw-proxy")
    fault_upstream.put("side", b"x")
    fault_upstream.fault("status", "side", status=503)
    response = request_remote(repository, "GET", f"{fault_upstream.url}/side")
    assert response.status == 503
    assert fault_upstream.count("side") == attempts


def test_a_refused_connection_fails_at_once_by_default(stowage_app, fault_upstream, monkeypatch):
    from urllib3.util.retry import Retry

    backoffs = []  # urllib3 sleeps its back-off (0.2 s, 0.4 s, ...) in Retry.sleep before each retry
    monkeypatch.setattr(Retry, "sleep", lambda self, response=None: backoffs.append(response))
    stowage_app.create_repository(name="raw-proxy", format="raw", type="proxy",
                                  proxy={"remoteUrl": fault_upstream.url})
    repository = stowage_app.stowage.repository("raw-proxy")
    url = f"{fault_upstream.url}/side"
    fault_upstream.stop()
    with pytest.raises(UpstreamError, match="unreachable"):
        request_remote(repository, "GET", url)
    assert backoffs == []  # no retry, so no back-off (a wall-clock bound flaked under load)
