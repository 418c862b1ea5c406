"""What a format handler gets for each request to ``/repository/<repo>/<path>``."""

from __future__ import annotations

from typing import IO, TYPE_CHECKING, Any, Callable

import falcon
from attrs import define, field

from stowage.errors import BadRequest, Forbidden, NotFound, Unauthorized
from stowage.http.content import send_asset, send_content
from stowage.models import Asset
from stowage.privileges import ContentAccess
from stowage.security import Action, User
from stowage.small_blobs import MAX_BLOB_BYTES, SmallBlobCache
from stowage.streamed_body import BODY_UNTIL_EOF

if TYPE_CHECKING:
    from stowage.repository import Repository
    from stowage.stowage import Stowage


@define
class RepoRequest:
    req: falcon.Request
    resp: falcon.Response
    stowage: "Stowage"
    repository: "Repository"
    #: the validated path below the repository, without a leading ``/`` ("" for the root).
    path: str
    user: User | None = None
    #: set by :meth:`require` when the caller's access is limited to what content selectors match.
    content_access: ContentAccess | None = None
    #: for a format that declares :attr:`~stowage.formats.FormatHandler.endpoints`: the name of the one
    #: the path matched, its pattern's named groups and the action core checked (None: the endpoint
    #: checks its callers itself). Set by core before the format's responder runs.
    endpoint: str | None = None
    params: dict[str, str] = field(factory=dict)
    action: Action | None = None

    @property
    def method(self) -> str:
        return self.req.method

    @property
    def accept(self) -> str:
        return self.req.get_header("Accept") or ""

    def header(self, name: str) -> str | None:
        return self.req.get_header(name)

    # -- URLs -----------------------------------------------------------------------------------------
    @property
    def base_url(self) -> str:
        """The server's URL as the client reached it (``X-Forwarded-*`` and ``Host`` honoured)."""
        return external_base_url(self.req, self.stowage)

    @property
    def repository_url(self) -> str:
        return f"{self.base_url}/repository/{self.repository.name}"

    # -- security -------------------------------------------------------------------------------------
    def require(self, action: Action) -> User | None:
        """Check that the caller may ``action`` this repository: 401 for anonymous, 403 otherwise.

        A caller whose only grant here is a content-selector privilege passes when the content the
        request addresses (:meth:`FormatHandler.content_path`) is what a selector matches; for an index
        (``content_path`` None) it passes too, and the format filters the index with :meth:`permits` (or,
        for an upload whose path is in its body, checks that path with :meth:`require_content`).
        Outside the selectors a read is a 404 (nothing is revealed) and a write or delete a 403.
        """
        allowed = self.stowage.plugins.hook.stowage_permission(
            user=self.user, repository=self.repository, action=action)
        if allowed:
            return self.user
        access = self.stowage.security.content_access(self.user, self.repository.format_name,
                                                      self.repository.name, action)
        if access is not None:
            self.content_access = access
            path = self.repository.handler.content_path(self)
            if path is None or access.permits(path):
                return self.user
            if action is Action.READ:
                raise NotFound(f"{path} not found in {self.repository.name}")
            who = self.user.user_id if self.user else "anonymous"
            raise Forbidden(f"user {who} may not {action.value} {path} in repository {self.repository.name}")
        if self.user is None:
            raise Unauthorized("authentication required",
                               headers={"WWW-Authenticate": self.repository.handler.challenge(self)})
        raise Forbidden(f"user {self.user.user_id} may not {action.value} repository {self.repository.name}")

    def require_content(self, path: str) -> None:
        """For a write whose path only the body names (twine's ``POST /``, for which ``content_path``
        returned None): refuse it (403) when the caller's content selectors do not cover ``path``
        (Nexus's form, with a leading ``/``). Free for callers without such a limit."""
        if self.content_access is not None and not self.content_access.permits(path):
            who = self.user.user_id if self.user else "anonymous"
            raise Forbidden(f"user {who} may not write {path} in repository {self.repository.name}")

    def permits(self, path: str) -> bool:
        """Whether the caller may see ``path`` (Nexus's form, ``/@scope/name``) in what this request
        answers: the filter point for indexes and search results. True unless the caller's access was
        limited by content selectors, so it is free for everyone else."""
        return self.content_access is None or self.content_access.permits(path)

    # -- bodies ---------------------------------------------------------------------------------------
    @property
    def content_length(self) -> int | None:
        return self.req.content_length

    @property
    def body(self) -> IO[bytes]:
        """The request body as a stream that ends at Content-Length."""
        return self.req.bounded_stream

    def require_body(self) -> tuple[IO[bytes], int | None]:
        length = self.req.content_length
        if (length is None and BODY_UNTIL_EOF not in self.req.env
                and (self.req.get_header("Transfer-Encoding") or "").lower() != "chunked"):
            raise BadRequest("a request body is required (send Content-Length)")
        return self.req.bounded_stream, length

    # -- responses ------------------------------------------------------------------------------------
    def send_asset(self, asset: Asset, *, content_type: str | None = None) -> None:
        opener: Callable[[], IO[bytes]] = lambda: self.repository.open(asset)  # noqa: E731
        if isinstance(asset, Asset) and asset.blob_sha256 and asset.size <= MAX_BLOB_BYTES:
            # a small stored blob comes from memory after its first read (safe: named by its digest)
            opener = SmallBlobCache.of(self.stowage).opener(asset.blob_sha256, asset.size, opener)
        send_asset(self.req, self.resp, asset, opener, content_type=content_type,
                   redirect=lambda served: self.repository.download_url(asset, content_type=served))
        if self.req.method == "GET" and self.resp.status in _DOWNLOADED:
            from stowage.downloads import DownloadTracker

            DownloadTracker.of(self.stowage).downloaded(asset)

    def send_bytes(self, body: bytes, content_type: str, *, etag: str | None = None,
                   last_modified: float | None = None) -> None:
        """Send a generated document with the same conditional and range handling as stored content."""
        import hashlib
        import io

        tag = etag or hashlib.sha256(body).hexdigest()
        send_content(self.req, self.resp, etag=tag, size=len(body), content_type=content_type,
                     opener=lambda: io.BytesIO(body), last_modified=last_modified)


#: answers that count as a download for ``lastDownloaded`` (a 304 is a client re-using its copy; a 307 sends
#: it to the blob store's presigned URL).
_DOWNLOADED = {falcon.HTTP_200, falcon.HTTP_206, falcon.HTTP_304, falcon.HTTP_307, 200, 206, 304, 307}


def external_base_url(req: falcon.Request, stowage: "Stowage") -> str:
    if stowage.settings.base_url:
        return stowage.settings.base_url.rstrip("/")
    proto = (req.get_header("X-Forwarded-Proto") or req.scheme).split(",")[0].strip()
    host = (req.get_header("X-Forwarded-Host") or req.get_header("Host") or req.netloc).split(",")[0].strip()
    prefix = (req.get_header("X-Forwarded-Prefix") or "").rstrip("/")
    return f"{proto}://{host}{prefix}"


def context_value(req: falcon.Request, key: str, default: Any = None) -> Any:
    return getattr(req.context, key, default)
