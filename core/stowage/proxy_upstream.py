"""Talking to a proxy repository's remote: one pooled HTTP client, credentials, timeouts, auto-block.

urllib3 is the client: thread-safe connection pools shared by every request of the app (one
``PoolManager`` per :class:`~stowage.stowage.Stowage`), streamed bodies that never sit in memory,
redirects, retries with a budget, and per-request timeouts.

The remote's health (consecutive failures, auto-block deadline) lives in the catalog's ``remote_status``
so that every worker process and node sees the same state.
"""

from __future__ import annotations

import base64
import time
from typing import TYPE_CHECKING, Mapping

import urllib3
from urllib3.util.retry import Retry

from stowage.catalog.base import RemoteStatus
from stowage.errors import UpstreamBlocked, UpstreamError, UpstreamTimeout
from stowage.models import AssetKind, AuthenticationSettings, HttpClientSettings

if TYPE_CHECKING:
    from stowage.formats import UpstreamRequest
    from stowage.repository import Repository

#: the first auto-block period; each further consecutive failure doubles it, up to the maximum.
AUTO_BLOCK_FIRST_SECONDS = 40.0
AUTO_BLOCK_MAX_SECONDS = 3600.0
#: how many redirects one upstream request may follow.
MAX_REDIRECTS = 10
#: upstream statuses that count as a failing remote (serve stale, auto-block); 404/410 are answers.
FAILURE_STATUSES = frozenset({401, 403, 407, 429}) | frozenset(range(500, 600))
def upstream_pool(repository: "Repository") -> urllib3.PoolManager:
    """The app's pooled HTTP client for remotes (created on first use, closed with the app)."""
    return repository.stowage.extension(
        "upstream-pool", lambda: urllib3.PoolManager(num_pools=64, maxsize=32, block=False))


def http_client_settings(repository: "Repository") -> HttpClientSettings:
    return repository.config.http_client or HttpClientSettings()


def auth_header(authentication: AuthenticationSettings | None) -> dict[str, str]:
    """The ``Authorization`` header for the remote's credentials (basic, or a bearer token)."""
    if authentication is None:
        return {}
    if authentication.type in ("bearerToken", "bearer") and authentication.bearer_token:
        return {"Authorization": f"Bearer {authentication.bearer_token}"}
    if authentication.username is not None:
        token = base64.b64encode(f"{authentication.username}:{authentication.password or ''}".encode()).decode()
        return {"Authorization": f"Basic {token}"}
    return {}


def request_upstream(repository: "Repository", path: str, *, headers: Mapping[str, str] | None = None,
                     method: str = "GET", kind: AssetKind = AssetKind.CONTENT,
                     upstream: "UpstreamRequest | None" = None) -> urllib3.BaseHTTPResponse:
    """Send ``method`` for ``path`` to the remote and return the response with its body unread.

    Headers, in increasing precedence: core's (identity encoding, ``httpClient.authentication``), the
    format's ``FormatHandler.upstream_headers``, then ``headers`` (conditional ones). A 401 is retried
    once with the headers the format's ``FormatHandler.upstream_authorization`` gives for the challenge
    (a registry's bearer token).

    Connection and read time out after ``httpClient.connection.timeout`` seconds; ``retries`` more
    attempts are made on connection errors and on 429/502/503/504 before the body starts. Redirects
    are followed (credentials are dropped when a redirect leaves the host). Raises
    :class:`~stowage.errors.UpstreamTimeout` or :class:`~stowage.errors.UpstreamError`.
    """
    client = http_client_settings(repository)
    timeout_seconds = max(1, client.connection.timeout)
    retry = upstream_retry(repository)
    handler = repository.handler
    send = {"Accept-Encoding": "identity", "User-Agent": "Stowage"}
    send.update(auth_header(client.authentication))
    upstream = upstream or handler.upstream_request(repository, path, kind)
    send.update(upstream.headers)
    send.update(headers or {})
    url = upstream.url
    pool = upstream_pool(repository)
    timeout = urllib3.Timeout(connect=timeout_seconds, read=timeout_seconds)
    try:
        response = pool.request(method, url, headers=send, preload_content=False, decode_content=False,
                                redirect=True, retries=retry, timeout=timeout)
        if response.status == 401:
            extra = handler.upstream_authorization(repository, url, response.headers.get("WWW-Authenticate", ""))
            if extra:
                response.drain_conn()
                response.release_conn()
                response = pool.request(method, url, headers={**send, **extra}, preload_content=False,
                                        decode_content=False, redirect=True, retries=retry, timeout=timeout)
        return response
    except urllib3.exceptions.HTTPError as error:
        raise _upstream_error(repository, url, error, timeout_seconds) from error


def upstream_retry(repository: "Repository") -> Retry:
    """The retry budget of ``httpClient.connection.retries`` (default 0: one attempt) for one request."""
    retries = max(0, http_client_settings(repository).connection.retries)
    return Retry(total=None, connect=retries, read=retries, status=retries, other=0, redirect=MAX_REDIRECTS,
                 status_forcelist=(429, 502, 503, 504), backoff_factor=0.2, raise_on_status=False,
                 raise_on_redirect=True, respect_retry_after_header=False)


def request_remote(repository: "Repository", method: str, url: str, *, headers: Mapping[str, str] | None = None,
                   body: bytes | None = None, fields: Mapping[str, str] | None = None,
                   timeout: float | None = None, preload_content: bool = True) -> urllib3.BaseHTTPResponse:
    """One request to an absolute ``url`` on behalf of proxy ``repository``: a token service, an audit or
    search endpoint, a ``HEAD`` that revalidates.

    Unlike :func:`request_upstream` it adds no headers (no credentials, no format headers) and does not
    follow a 401 challenge, but it is held to the same client rules: the app's pooled client,
    ``httpClient.connection.timeout`` (capped at ``timeout`` when given) and ``httpClient.connection.retries``
    (default 0: a refused connection fails at once). Raises :class:`~stowage.errors.UpstreamTimeout` or
    :class:`~stowage.errors.UpstreamError`.
    """
    timeout_seconds = float(max(1, http_client_settings(repository).connection.timeout))
    if timeout is not None:
        timeout_seconds = min(timeout_seconds, timeout)
    try:
        return upstream_pool(repository).request(
            method, url, headers=dict(headers or {}), body=body, fields=fields, preload_content=preload_content,
            redirect=True, retries=upstream_retry(repository),
            timeout=urllib3.Timeout(connect=timeout_seconds, read=timeout_seconds))
    except urllib3.exceptions.HTTPError as error:
        raise _upstream_error(repository, url, error, timeout_seconds) from error


def _upstream_error(repository: "Repository", url: str, error: urllib3.exceptions.HTTPError,
                    timeout_seconds: float) -> UpstreamError:
    reason = error.reason if isinstance(error, urllib3.exceptions.MaxRetryError) else error
    # NewConnectionError (refused, unreachable) subclasses ConnectTimeoutError: test it first.
    if isinstance(reason, urllib3.exceptions.TimeoutError) and not isinstance(
            reason, urllib3.exceptions.NewConnectionError):
        return UpstreamTimeout(f"the remote of {repository.name} did not answer within {timeout_seconds:g} s "
                               f"({url})")
    if isinstance(error, urllib3.exceptions.MaxRetryError):
        return UpstreamError(f"the remote of {repository.name} is unreachable ({url}): {reason}")
    return UpstreamError(f"the remote of {repository.name} failed ({url}): {error}")


# -- remote health: auto-block ------------------------------------------------------------------------

def check_not_blocked(repository: "Repository", now: float | None = None) -> None:
    """Raise :class:`~stowage.errors.UpstreamBlocked` when the remote must not be contacted now."""
    client = http_client_settings(repository)
    if client.blocked:
        raise UpstreamBlocked(f"the remote of proxy repository {repository.name} is blocked by its settings "
                              f"(httpClient.blocked); only cached content is served")
    status = repository.stowage.catalog.remote_status(repository.name)
    now = time.time() if now is None else now
    if client.auto_block and status.blocked_until > now:
        raise UpstreamBlocked(
            f"the remote of proxy repository {repository.name} is auto-blocked for another "
            f"{status.blocked_until - now:.0f} s after {status.failures} consecutive failure(s) "
            f"(last: {status.last_error}); only cached content is served",
            headers={"Retry-After": str(max(1, int(status.blocked_until - now + 0.999)))})


def record_failure(repository: "Repository", reason: str) -> RemoteStatus:
    """Count a failure of the remote; with ``httpClient.autoBlock``, block it for a growing period."""
    client = http_client_settings(repository)
    catalog = repository.stowage.catalog
    with catalog.transaction():
        current = catalog.remote_status(repository.name)
        now = time.time()
        if current.blocked_until > now:
            # Requests already in flight when the block started do not lengthen it.
            status = RemoteStatus(current.failures, current.blocked_until, reason[:500])
        else:
            failures = current.failures + 1
            blocked_until = 0.0
            if client.auto_block:
                blocked_until = now + min(AUTO_BLOCK_FIRST_SECONDS * 2 ** (failures - 1), AUTO_BLOCK_MAX_SECONDS)
            status = RemoteStatus(failures, blocked_until, reason[:500])
        catalog.save_remote_status(repository.name, status)
    return status


def record_success(repository: "Repository") -> None:
    """The remote answered (any status that is not a failure): clear its failure count."""
    catalog = repository.stowage.catalog
    if catalog.remote_status(repository.name).failures:
        catalog.save_remote_status(repository.name, RemoteStatus())


def describe_status(repository: "Repository", now: float | None = None) -> dict:
    """The remote's status as ``GET /service/rest/v1/repositories/{name}`` shows it."""
    client = http_client_settings(repository)
    status = repository.stowage.catalog.remote_status(repository.name)
    now = time.time() if now is None else now
    auto_blocked = client.auto_block and status.blocked_until > now
    if client.blocked:
        state, description = "blocked", "Remote Manually Blocked"
    elif auto_blocked:
        state, description = "autoBlocked", "Remote Auto Blocked and Unavailable"
    elif status.failures:
        state, description = "unavailable", "Remote Unavailable (will be retried)"
    else:
        state, description = "available", "Remote Available"
    return {
        "online": repository.config.online,
        "remoteStatus": state,
        "description": description,
        "blockedUntil": (time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(status.blocked_until))
                         if auto_blocked else None),
        "blockedForSeconds": round(status.blocked_until - now, 1) if auto_blocked else 0,
        "failures": status.failures,
        "reason": status.last_error or None,
    }
