"""The per-request side of a format: one :class:`FormatHandler` serves every repository of its format.

Core routes ``/repository/<repo>/<path>`` to the handler's ``on_<method>`` with a
:class:`~stowage.http.request.RepoRequest`; HTTP mechanics (ETag, Range, HEAD, errors) are core's.
"""

from __future__ import annotations


import json
from typing import TYPE_CHECKING, Any, Mapping

from attrs import field, frozen

from stowage.errors import BadRequest, MethodNotAllowed, StowageError, ValidationFailed
from stowage.models import Asset, AssetKind, Component, RepositoryType

if TYPE_CHECKING:
    from stowage.http.request import RepoRequest
    from stowage.registration import Endpoint
    from stowage.repository import Repository
    from stowage.security import Action
    from stowage.plugin_app import App


@frozen
class UpstreamRequest:
    """The one answer a format gives the proxy engine per miss: where to fetch a path, with which extra
    headers, and which digests the body must have (see :meth:`FormatHandler.upstream_request`)."""

    url: str
    headers: Mapping[str, str] = field(factory=dict)
    expected_digests: Mapping[str, str] = field(factory=dict)


#: characters kept as they are when a repository path becomes an upstream URL (``%`` keeps escapes a
#: format's ``upstream_path`` made on purpose, such as npm's ``@scope%2fname``).
UPSTREAM_URL_SAFE = "/%@:+$,;=&~!*'()"


class FormatHandler:
    """Base class for format handlers. Override the methods your format supports."""

    #: methods answered; others get 405 with an Allow header.
    methods: tuple[str, ...] = ("GET", "HEAD")

    def __init__(self, stowage: "App"):
        self.stowage = stowage

    # -- requests ------------------------------------------------------------------------------------
    def on_get(self, request: "RepoRequest") -> None:
        """Serve ``request.path``: by default the asset the repository resolves there."""
        request.send_asset(request.repository.resolve(request.path, self.classify(request.path), stream=True))

    def on_head(self, request: "RepoRequest") -> None:
        self.on_get(request)

    def on_put(self, request: "RepoRequest") -> None:
        self._not_allowed(request)

    def on_post(self, request: "RepoRequest") -> None:
        self._not_allowed(request)

    def on_delete(self, request: "RepoRequest") -> None:
        self._not_allowed(request)

    def on_patch(self, request: "RepoRequest") -> None:
        self._not_allowed(request)

    def _not_allowed(self, request: "RepoRequest") -> None:
        raise MethodNotAllowed(f"{request.method} is not supported by {request.repository.format_name} "
                               f"{request.repository.type.value} repository {request.repository.name}",
                               allowed=list(self.methods))

    def action_for(self, request: "RepoRequest") -> "Action | None":
        """What the request does, for the permission check core makes before calling ``on_<method>``.

        None skips the check (for endpoints that authenticate by themselves, like ``npm login``).
        """
        from stowage.security import Action

        return Action.of_method(request.method)

    #: the format's protocol endpoints with their actions (:class:`~stowage.registration.Endpoint`). When
    #: declared, core matches every request to ``/repository/<repo>/...`` (and to the format's routes that
    #: locate a repository) against them and checks permission, write policy and name policy before
    #: ``on_<method>`` runs; :meth:`action_for` is then not asked.
    endpoints: "tuple[Endpoint, ...]" = ()

    def content_path(self, request: "RepoRequest") -> str | None:
        """The path content selectors (``path =^ "/..."``) see for this request, with a leading ``/``;
        None when the request answers an index or search whose entries the format filters itself with
        :meth:`RepoRequest.permits`, or is an upload whose path only its body names (check it with
        :meth:`RepoRequest.require_content` before storing). Default: the request path, so an unknown endpoint is never open to
        a caller whose selectors do not match it."""
        return "/" + request.path

    # -- proxy engine --------------------------------------------------------------------------------
    def classify(self, path: str) -> AssetKind:
        """Is ``path`` immutable content or mutable metadata? Proxies cache them with different ages."""
        return AssetKind.CONTENT

    def upstream_path(self, path: str) -> str:
        """The path to request from a proxy repository's remote for ``path`` (default: the same).

        Return it decoded; characters that need it are percent-encoded by the engine, and ``%`` escapes
        already present are kept (npm's ``@scope%2fname``).
        """
        return path

    def expected_digests(self, repository: "Repository", path: str) -> Mapping[str, str]:
        """Digests a proxied body for ``path`` must have, e.g. ``{"sha256": hex}`` for a docker blob.

        The engine computes them while the body streams in and refuses to cache (and cuts every
        client's connection) on a mismatch. Names are hashlib's (``sha256``, ``sha512``, ``sha1``).
        """
        return {}

    def upstream_url(self, repository: "Repository", path: str) -> str:
        """The absolute URL a proxy repository fetches for ``path``.

        Default: ``proxy.remoteUrl`` joined with :meth:`upstream_path`. Override when the remote's index
        points at files elsewhere (PyPI's simple pages link to another host): return a URL taken from
        the remote's own metadata, never one built from an unchecked request path.
        """
        from urllib.parse import quote

        target = quote(self.upstream_path(path).lstrip("/"), safe=UPSTREAM_URL_SAFE)
        return repository.config.proxy.remote_url.rstrip("/") + "/" + target  # type: ignore[union-attr]

    def upstream_headers(self, repository: "Repository", path: str, kind: AssetKind) -> dict[str, str]:
        """Extra request headers for fetching ``path`` from the remote (docker: ``Accept`` for manifests)."""
        return {}

    def upstream_request(self, repository: "Repository", path: str, kind: AssetKind) -> UpstreamRequest:
        """The one question the proxy engine asks per miss (and per revalidation): URL, extra headers
        and expected digests together, so a format that reads its metadata to answer (pypi's project
        page) reads it once. Default: :meth:`upstream_url`, :meth:`upstream_headers` and
        :meth:`expected_digests`; override this instead of those three. Raise
        :class:`~stowage.errors.NotFound` when the remote offers nothing for ``path``."""
        return UpstreamRequest(url=self.upstream_url(repository, path),
                               headers=dict(self.upstream_headers(repository, path, kind) or {}),
                               expected_digests=dict(self.expected_digests(repository, path) or {}))

    def upstream_authorization(self, repository: "Repository", url: str,
                               challenge: str) -> dict[str, str] | None:
        """The remote answered 401 with ``WWW-Authenticate: challenge``: headers to retry once with
        (docker: a bearer token from the remote's token service), or None to fail."""
        return None

    def revalidate(self, repository: "Repository", asset: Asset, kind: AssetKind) -> bool | None:
        """A cached ``asset`` is past its age: True if it is still current (the engine keeps it and
        resets its age), False to fetch it again, None for the engine's own check. Raise
        :class:`~stowage.errors.UpstreamError` when the remote cannot tell (the cached copy is served)."""
        return None

    # -- optional REST capabilities -------------------------------------------------------------------------
    def upload_component(self, repository: "Repository", fields: dict[str, str], files: list[Any],
                         user: Any) -> list[Asset]:
        """``POST /service/rest/v1/components?repository=<name>`` (multipart): ``fields`` are the text
        parts, ``files`` the file parts received but not committed
        (:class:`~stowage.staging.StagedBlob`: ``field``, ``filename``, ``content_type``, ``open()``...);
        check them, decide their paths, ``repository.commit(part, Accepted(path=...))`` each to keep and
        return the assets. Raise a 4xx :class:`~stowage.errors.StowageError` to refuse: parts not committed
        are discarded, nothing is stored. Not overridden: core answers 400 before it reads the body."""
        raise BadRequest(f"the {repository.format_name} format does not support component uploads")

    def rebuild_index(self, repository: "Repository") -> None:
        """``POST /service/rest/v1/repositories/{name}/rebuild-index``: regenerate the repository's
        generated metadata from its assets. Not overridden: core answers 400 (no index to rebuild)."""
        raise BadRequest(f"the {repository.format_name} format has no index to rebuild")

    def supports(self, method_name: str) -> bool:
        """Whether this format overrides the optional method ``method_name`` (``upload_component``,
        ``rebuild_index``)."""
        return getattr(type(self), method_name, None) is not getattr(FormatHandler, method_name)

    # -- deleting and retention (REST deletes, cleanup policies) ------------------------------------------
    def delete_asset(self, repository: "Repository", asset: Asset) -> None:
        """Delete one asset the way the format's own clients would, keeping its metadata consistent
        (``DELETE /service/rest/v1/assets/{id}``, cleanup). Default: remove the asset."""
        repository.delete(asset.path)

    def delete_component(self, repository: "Repository", component: Component) -> None:
        """Delete a component (a package version, an image tag) through the format's own delete path
        (``DELETE /service/rest/v1/components/{id}``, cleanup). Default: :meth:`delete_asset` on each of
        its assets (one that deleting another took along, such as a wheel's ``.metadata``, is skipped)."""
        from stowage.errors import NotFound

        for asset in list(self.stowage.catalog.iter_assets(repository.name, component_id=component.id)):
            try:
                self.delete_asset(repository, asset)
            except NotFound:
                continue

    def is_prerelease(self, component: Component) -> bool:
        """Whether ``component``'s version is a prerelease by the format's rules (PEP 440 pre/dev
        releases, SemVer prerelease tags); cleanup's ``criteriaReleaseType`` asks. Default: never."""
        return False

    def version_key(self, component: Component) -> Any:
        """A sort key ordering the versions of one component name from oldest to newest by the format's
        rules (PEP 440, SemVer, rpm ``vercmp``); cleanup's ``retain`` keeps the newest. Keys of one name
        must compare with each other. Default: publication time."""
        return (component.created, component.id or 0)

    def cleanup_asset(self, repository: "Repository", asset: Asset) -> bool:
        """Whether cleanup may remove ``asset``, which belongs to no component, on its own (raw files, a
        proxy's cached files and metadata: fetched again when asked for). Default: a hosted repository's
        content and everything a proxy cached; never generated metadata of a hosted repository."""
        return asset.kind is AssetKind.CONTENT or repository.type is RepositoryType.PROXY

    # -- names and errors ----------------------------------------------------------------------------
    def artifact_name(self, path: str) -> str:
        """The name a hosted repository's name policy checks for a write to ``path``."""
        return path

    def package_name(self, path: str) -> str | None:
        """The package name the content at ``path`` belongs to, normalised as the format compares names
        (PEP 503 for pypi, ``@scope/name`` for npm, the image name for docker), or None when ``path`` is
        no package's (raw files, index pages).

        Core's group rules key on it: through a group, content of a name that a hosted member holds is
        never served by a proxy member unless ``group.allowProxyNames`` frees the name (the
        dependency-confusion guard; the merged indexes apply the same rule through
        :func:`~stowage.resolver.guard_names`). Must not raise for any path a client may send.
        Default: None (first member wins, as raw does)."""
        return None

    def holds_package(self, repository: "Repository", name: str) -> bool:
        """Whether hosted ``repository`` holds package ``name`` (as :meth:`package_name` returns it), so
        that a group's proxy members may not serve it. Default: it has a component named ``name``."""
        return bool(self.stowage.catalog.find_components(repository.name, name=name))

    def challenge(self, request: "RepoRequest") -> str:
        """The ``WWW-Authenticate`` value sent with a 401 from this format's repositories."""
        return 'Basic realm="Stowage"'

    def challenge_before_lookup(self, req: Any, path: str) -> str:
        """The ``WWW-Authenticate`` value of a 401 core sends on the format's located routes
        (:attr:`Route.locate <stowage.registration.Route.locate>`) before the repository is known:
        credentials that are wrong, or an anonymous caller naming a repository that does not exist
        while anonymous access is off. It must not depend on the repository, so that a stranger cannot
        tell a missing repository from one that exists. ``path`` is the path below the repository."""
        return 'Basic realm="Stowage"'

    def translate_error(self, error: StowageError) -> StowageError:
        """``error`` as this format's clients expect it (code and status): applied to every error raised
        while core or the format serves one of its requests, before :meth:`render_error`. Default:
        unchanged."""
        return error

    def render_error(self, request: "RepoRequest | None", error: StowageError) -> tuple[str, bytes]:
        """The (content type, body) a client of this format expects for ``error``."""
        return default_error_body(error, request.accept if request else "")


def default_error_body(error: StowageError, accept: str = "") -> tuple[str, bytes]:
    if isinstance(error, ValidationFailed):
        # Nexus's list of ValidationErrorXO, whatever the client accepts (its REST clients parse it).
        return "application/json", json.dumps(error.detail).encode()
    if "json" in accept:
        return "application/json", json.dumps({"code": error.code, "message": error.message}).encode()
    return "text/plain; charset=utf-8", f"{error.message}\n".encode()
