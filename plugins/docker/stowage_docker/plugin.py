"""The docker format: settings, the format handler, the ``/v2`` routes and the token check.

Three ways in, one implementation (:class:`~stowage_docker.registry.Registry`):

1. a repository's own port (``docker.httpPort``): ``/v2/<image>/...``;
2. path routing on the main port: ``/v2/<repo>/<image>/...``;
3. ``/repository/<repo>/v2/<image>/...`` through core's repository sink.
"""

from __future__ import annotations

from typing import Mapping

import falcon

from stowage.plugin import (Action, App, Asset, AssetKind, Component, Format, FormatHandler, Located, RepoRequest,
                            Repository, RepositoryType, Route, StowageError, User, WritePolicy, authenticate,
                            hookimpl)
from stowage_docker import tokens, upstream
from stowage_docker.images import image_details
from stowage_docker.settings import DockerProxySettings, DockerSettings, IndexType, port_of  # noqa: F401
from stowage_docker.retention import stowage_register_tasks  # noqa: F401 - the plugin's hook implementations
from stowage_docker.errors import RegistryError, error_body, name_unknown, translate
from stowage_docker.access import (challenge, challenge_before_lookup, request_challenge, serve_base, serve_token,
                                   target_of)
from stowage_docker.endpoints import ENDPOINTS
from stowage_docker.listing import serve_catalog
from stowage_docker.registry import API_VERSION_HEADER, Registry
from stowage_docker.verify import metadata_checks


class DockerHandler(FormatHandler):
    """``/repository/<repo>/v2/...`` (Nexus's path), and the proxy engine's docker knowledge."""

    methods = ("GET", "HEAD", "PUT", "POST", "PATCH", "DELETE")

    # -- retention: a component is a tag; removing it deletes the tag, repository.docker.gc the rest -------
    def version_key(self, component: Component) -> object:
        """Tags by push time (a re-pushed tag counts from its last push)."""
        assets = self.stowage.catalog.list_assets(component.repository, component_id=component.id).items
        return max([a.last_updated for a in assets] + [component.created])

    def cleanup_asset(self, repository: Repository, asset: Asset) -> bool:
        """A hosted repository's manifests and layers go through tags and ``repository.docker.gc``; a
        proxy's cached files may go on their own (fetched again when asked for)."""
        return repository.type is RepositoryType.PROXY

    #: the registry's endpoints: core checks permission, write policy and name policy against them
    endpoints = ENDPOINTS

    def _serve(self, request: RepoRequest) -> None:
        request.resp.set_header(*API_VERSION_HEADER)
        Registry(request).serve()

    on_get = on_head = on_put = on_post = on_patch = on_delete = _serve

    def challenge(self, request: RepoRequest) -> str:
        return request_challenge(request)

    def challenge_before_lookup(self, req: falcon.Request, path: str) -> str:
        return challenge_before_lookup(req, self.stowage, path)

    def translate_error(self, error: StowageError) -> StowageError:
        """The spec's code and status, and the API version header every registry answer carries."""
        translated = translate(error)
        translated.headers.setdefault(*API_VERSION_HEADER)
        return translated

    def render_error(self, request: RepoRequest | None, error: StowageError) -> tuple[str, bytes]:
        return error_body(error)

    def artifact_name(self, path: str) -> str:
        parts = path.split("/")
        for marker in ("manifests", "blobs", "tags"):
            if marker in parts[1:]:
                return "/".join(parts[1:parts.index(marker, 1)])
        return path

    def package_name(self, path: str) -> str | None:
        """The image name of a ``v2/<name>/manifests/<reference>`` path (core's group guard; blobs are
        addressed by digest and belong to no one name)."""
        parts = path.split("/")
        if len(parts) >= 4 and parts[0] == "v2" and parts[-2] == "manifests":
            return "/".join(parts[1:-2])
        return None

    def holds_package(self, repository: Repository, name: str) -> bool:
        """A hosted repository holds an image name once it has a manifest under it."""
        return bool(self.stowage.catalog.list_assets(repository.name, prefix=f"v2/{name}/manifests/",
                                                     limit=1).items)

    # -- proxy engine --------------------------------------------------------------------------------------
    def classify(self, path: str) -> AssetKind:
        return upstream.classify(path)

    def upstream_headers(self, repository: Repository, path: str, kind: AssetKind) -> dict[str, str]:
        return upstream.request_headers(repository, path, kind)

    def expected_digests(self, repository: Repository, path: str) -> dict[str, str]:
        return upstream.expected_digests(path)

    def upstream_authorization(self, repository: Repository, url: str, challenge: str) -> dict[str, str] | None:
        return upstream.auth_of(repository).authorize(repository, challenge)

    def revalidate(self, repository: Repository, asset: Asset, kind: AssetKind) -> bool | None:
        return upstream.revalidate(repository, asset)


def locate(req: falcon.Request, params: Mapping[str, str]) -> Located | None:
    """The repository a ``/v2/...`` request addresses: the one owning the port it came in on, else the
    first segment (path routing, ``/v2/<repo>/<image>/...``). The token service, and ``/v2/`` and
    ``/v2/_catalog`` on the main port, address the registry as a whole."""
    rest = params.get("rest", "")
    if rest.strip("/") == "token":
        return None
    port_repository = getattr(req.context, "port_repository", None)
    if port_repository:
        return Located(port_repository, f"v2/{rest}")
    if rest.strip("/") in ("", "_catalog"):
        return None
    repo_name, _, v2path = rest.partition("/")
    return Located(repo_name, f"v2/{v2path}")


class V2Resource:
    """``/v2/...`` on the main port (path routing) and on repositories' own ports. Core has checked a
    request :func:`locate` placed in a repository before this runs (``req.context.repo_request``)."""

    def __init__(self, stowage: App):
        self.stowage = stowage

    def __call__(self, req: falcon.Request, resp: falcon.Response, rest: str = "") -> None:
        resp.set_header(*API_VERSION_HEADER)
        request = getattr(req.context, "repo_request", None)
        if request is not None:
            return Registry(request).serve()
        handler = self.stowage.handlers["docker"]
        req.context.error_renderer = handler.render_error
        req.context.error_translator = handler.translate_error
        self.serve_registry(req, resp, rest.strip("/"))

    on_get = on_head = on_put = on_post = on_patch = on_delete = __call__

    def serve_registry(self, req: falcon.Request, resp: falcon.Response, rest: str) -> None:
        """The token service, ``/v2/`` and ``/v2/_catalog`` of the registry as a whole."""
        if rest == "token":
            return serve_token(req, resp, self.stowage)
        target = target_of(req, self.stowage)
        user = authenticate(req, self.stowage, challenge=challenge(None, target), audience=tokens.AUDIENCE)
        if rest == "":
            return serve_base(user, resp, challenge(None, target))
        if req.method not in ("GET", "HEAD"):
            raise RegistryError("UNSUPPORTED", f"{req.method} is not supported on the catalog", status=405)
        anonymous = tokens.is_anonymous(user)
        if anonymous and not self.stowage.security.anonymous_access:
            raise RegistryError("UNAUTHORIZED", "authentication required", status=401,
                                headers={"WWW-Authenticate": challenge(None, target)})
        # Only the images of repositories the caller may read (browse) are listed.
        readable = [r for r in self.stowage.repositories() if r.format_name == "docker"
                    and self.stowage.permits(None if anonymous else user, r, Action.READ)]
        request = RepoRequest(req=req, resp=resp, stowage=self.stowage, repository=_any_docker(self.stowage),
                              path="v2/_catalog", user=None if anonymous else user)
        serve_catalog(request, target, readable)


def _any_docker(stowage: App) -> Repository:
    """A docker repository to anchor the registry-wide catalog's request on (its answer is no one's)."""
    for repository in stowage.repositories():
        if repository.format_name == "docker":
            return repository
    raise name_unknown("_catalog")


@hookimpl
def stowage_register_formats() -> list[Format]:
    return [Format(name="docker", handler=DockerHandler,
                   settings={"docker": DockerSettings, "dockerProxy": DockerProxySettings},
                   default_write_policy=WritePolicy.ALLOW, port_of=port_of,
                   answer_sections={"hosted": ("docker",), "proxy": ("docker", "dockerProxy"),
                                    "group": ("docker",)},
                   required_sections={"hosted": ("docker",), "proxy": ("docker", "dockerProxy"),
                                      "group": ("docker",)},
                   component_details=image_details, search_components_only=True,
                   description="Docker / OCI registry (distribution-spec 1.1); hosted, proxy and group.")]


@hookimpl
def stowage_register_routes() -> list[Route]:
    return [Route(path="/v2", resource=V2Resource, name="docker-v2-base", on_ports=True, format="docker",
                  locate=locate),
            Route(path="/v2/{rest:path}", resource=V2Resource, name="docker-v2", on_ports=True, format="docker",
                  locate=locate)]


@hookimpl
def stowage_authenticate(stowage: App, scheme: str, credentials: str) -> User | None:
    """Bearer tokens this plugin issued (others fall through to core's token check)."""
    if scheme == "bearer" and tokens.is_token(credentials):
        return tokens.verify(stowage, credentials)
    return None


@hookimpl
def stowage_register_metadata_checks() -> list:
    return metadata_checks()
