"""A small REST client for a Nexus-shaped server (the import's source and its target)."""

from __future__ import annotations

import base64
import hashlib
import json
from typing import IO, Any, Iterator, Mapping
from urllib.parse import quote, urlencode

import urllib3

CHUNK = 1024 * 1024
V1 = "/service/rest/v1"


class RestError(Exception):
    """A non-2xx answer: its status and the server's message."""

    def __init__(self, method: str, url: str, status: int, body: bytes):
        self.status = status
        self.message = _message(body)
        super().__init__(f"{method} {url}: {status} {self.message}")


def _message(body: bytes) -> str:
    try:
        data = json.loads(body)
    except ValueError:
        return body.decode("utf-8", "replace").strip()[:500]
    if isinstance(data, dict) and "message" in data:
        return str(data["message"])
    if isinstance(data, list):
        return "; ".join(str(item.get("message", item)) if isinstance(item, dict) else str(item) for item in data)
    return json.dumps(data)[:500]


class NexusRest:
    """Basic-authenticated JSON and file transfers against ``base_url`` (thread-safe: one pool)."""

    def __init__(self, base_url: str, user: str | None = None, password: str | None = None, *,
                 timeout: float = 300.0, pool: urllib3.PoolManager | None = None):
        self.base_url = base_url.rstrip("/")
        self.headers: dict[str, str] = {"User-Agent": "stowage-import"}
        if user is not None:
            token = base64.b64encode(f"{user}:{password or ''}".encode()).decode()
            self.headers["Authorization"] = f"Basic {token}"
        self.pool = pool or urllib3.PoolManager(maxsize=16, retries=urllib3.Retry(total=3, backoff_factor=0.5,
                                                                                  allowed_methods=["GET", "HEAD"]))
        self.timeout = urllib3.Timeout(connect=30.0, read=timeout)

    def url(self, path: str, params: Mapping[str, Any] | None = None) -> str:
        url = path if "://" in path else f"{self.base_url}{path}"
        clean = {key: value for key, value in (params or {}).items() if value is not None}
        return f"{url}?{urlencode(clean)}" if clean else url

    def request(self, method: str, path: str, *, params: Mapping[str, Any] | None = None, body: Any = None,
                headers: Mapping[str, str] | None = None, ok: tuple[int, ...] = (200, 201, 204),
                stream: bool = False) -> urllib3.BaseHTTPResponse:
        url = self.url(path, params)
        response = self.pool.request(method, url, body=body, headers={**self.headers, **(headers or {})},
                                     timeout=self.timeout, preload_content=not stream, redirect=False)
        if response.status not in ok:
            data = response.data if not stream else response.read(65536)
            response.release_conn()
            raise RestError(method, url, response.status, data)
        return response

    def get_json(self, path: str, **params: Any) -> Any:
        return json.loads(self.request("GET", path, params=params).data or b"null")

    def send_json(self, method: str, path: str, document: Any) -> Any:
        response = self.request(method, path, body=json.dumps(document).encode(),
                                headers={"Content-Type": "application/json"})
        return json.loads(response.data) if response.data else None

    def paged(self, path: str, **params: Any) -> Iterator[dict[str, Any]]:
        """Every item of a Nexus listing (``items`` + ``continuationToken``)."""
        token = None
        while True:
            page = self.get_json(path, **params, continuationToken=token)
            yield from page.get("items", [])
            token = page.get("continuationToken")
            if not token:
                return

    def download(self, url: str, out: IO[bytes], algorithms: tuple[str, ...] = ("sha1", "sha256"),
                 headers: Mapping[str, str] | None = None) -> tuple[int, dict[str, str]]:
        """Stream ``url`` into ``out``; returns (bytes, {algorithm: hex}) computed on the way."""
        response = self.request("GET", url, stream=True, headers=headers)
        hashers = {name: hashlib.new(name) for name in algorithms}
        size = 0
        try:
            for chunk in response.stream(CHUNK):
                out.write(chunk)
                size += len(chunk)
                for hasher in hashers.values():
                    hasher.update(chunk)
        finally:
            response.release_conn()
        return size, {name: hasher.hexdigest() for name, hasher in hashers.items()}


def repository_path(repository: str, path: str) -> str:
    return f"/repository/{quote(repository)}/{quote(path.lstrip('/'), safe='/@:+$,;=&~!*()')}"
