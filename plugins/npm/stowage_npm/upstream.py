"""Passing requests a proxy cannot cache to its remote: audit endpoints and search.

Also the ``@npm-registry@`` placeholder for ``proxy.remoteUrl``: the registry ``npm config get registry``
reports on this machine.
"""

from __future__ import annotations

import base64
import logging
import shutil
import subprocess
from typing import Iterator

from stowage.plugin import Repository, RepositoryType, UpstreamError, request_remote

log = logging.getLogger(__name__)

REGISTRY_PLACEHOLDER = "@npm-registry@"
DEFAULT_REGISTRY = "https://registry.npmjs.org/"


def expand_remote_url(url: str) -> str:
    """``@npm-registry@`` -> the registry npm on this machine uses (``npm config get registry``)."""
    if url.strip() != REGISTRY_PLACEHOLDER:
        return url
    npm = shutil.which("npm")
    if npm:
        try:
            found = subprocess.run([npm, "config", "get", "registry"], capture_output=True, text=True,
                                   timeout=30, check=True).stdout.strip()
        except (OSError, subprocess.SubprocessError) as error:
            log.warning("npm config get registry failed (%s); using %s", error, DEFAULT_REGISTRY)
        else:
            if found.startswith(("http://", "https://")):
                return found if found.endswith("/") else found + "/"
            log.warning("npm config get registry answered %r; using %s", found, DEFAULT_REGISTRY)
    else:
        log.warning("npm is not installed; %s resolves to %s", REGISTRY_PLACEHOLDER, DEFAULT_REGISTRY)
    return DEFAULT_REGISTRY


def auth_headers(repository: Repository) -> dict[str, str]:
    client = repository.config.http_client
    auth = client.authentication if client else None
    if auth is None:
        return {}
    if auth.type == "bearerToken" and auth.bearer_token:
        return {"Authorization": f"Bearer {auth.bearer_token}"}
    if auth.username:
        token = base64.b64encode(f"{auth.username}:{auth.password or ''}".encode()).decode()
        return {"Authorization": f"Basic {token}"}
    return {}


def proxy_leaves(repository: Repository, seen: set[str] | None = None) -> Iterator[Repository]:
    """The online proxy repositories a repository reaches (itself, or a group's, in member order)."""
    seen = set() if seen is None else seen
    if repository.name in seen or not repository.config.online:
        return
    seen.add(repository.name)
    if repository.type is RepositoryType.PROXY:
        if not (repository.config.http_client and repository.config.http_client.blocked):
            yield repository
    elif repository.type is RepositoryType.GROUP:
        for name in repository.config.group.member_names:  # type: ignore[union-attr]
            try:
                member = repository.stowage.repository(name)
            except Exception:
                continue
            yield from proxy_leaves(member, seen)


def forward(repository: Repository, method: str, path: str, *, query: str = "", body: bytes | None = None,
            headers: dict[str, str] | None = None, timeout: float = 60) -> tuple[int, str, bytes]:
    """Send one request to a proxy repository's remote; (status, content type, body)."""
    remote = repository.config.proxy.remote_url.rstrip("/")  # type: ignore[union-attr]
    url = f"{remote}/{path}" + (f"?{query}" if query else "")
    # core's client: the repository's httpClient timeout and connection.retries (default 0, so a refused
    # remote fails at once and serve-stale / audit answers are not held up by retries)
    try:
        response = request_remote(repository, method, url, body=body, timeout=timeout,
                                  headers={**(headers or {}), **auth_headers(repository)})
    except UpstreamError as error:
        raise UpstreamError(f"{repository.name}: {method} {url} failed: {error.message}") from error
    return response.status, response.headers.get("Content-Type", "application/json"), response.data
