"""The distribution API (``/v2/``) for one request against one repository: core has matched the request to
one of :data:`~stowage_docker.endpoints.ENDPOINTS` and checked it; :class:`Registry` calls the
endpoint's responder (``<endpoint>_<method>``) with what the endpoint's pattern captured.

The responders live by subject: blobs and uploads (:mod:`~stowage_docker.blobs`), manifests and tags
(:mod:`~stowage_docker.manifest_endpoints`), listings (:mod:`~stowage_docker.listing`); challenges and
the token service in :mod:`~stowage_docker.access`, catalog paths and lookups in
:mod:`~stowage_docker.lookups`.
"""

from __future__ import annotations

from functools import cached_property

from stowage.plugin import RepoRequest
from stowage_docker import manifests
from stowage_docker.access import Target, request_challenge, serve_base, serve_token, target_of
from stowage_docker.errors import RegistryError
from stowage_docker.listing import ListingEndpoints
from stowage_docker.manifest_endpoints import ManifestEndpoints

API_VERSION_HEADER = ("Docker-Distribution-API-Version", "registry/2.0")


class Registry(ManifestEndpoints, ListingEndpoints):
    """Serves one checked request (``request.endpoint``, ``request.params``) against one repository."""

    def __init__(self, request: RepoRequest):
        self.request = request
        self.repository = request.repository
        self.stowage = request.stowage
        self.catalog = request.stowage.catalog
        self.req = request.req
        self.resp = request.resp

    @cached_property
    def target(self) -> Target:
        """How the client addressed the registry; only uploads, pushes and listings need it (worked out
        on first use: a hot pull never does)."""
        return target_of(self.req, self.stowage)

    def serve(self) -> None:
        params = dict(self.request.params)
        name = params.get("name")
        if name is not None and not manifests.NAME.match(name):
            raise RegistryError("NAME_INVALID", f"invalid repository name {name!r}", status=400)
        # core answered 404/405 for paths and methods no endpoint declares: the responder exists
        getattr(self, f"{self.request.endpoint}_{self.request.method.lower()}")(**params)

    def base_get(self) -> None:
        # the caller as it authenticated: an anonymous token counts (the client has done the token dance)
        serve_base(getattr(self.req.context, "user", None), self.resp, request_challenge(self.request))

    base_head = base_get

    def token_get(self) -> None:
        serve_token(self.req, self.resp, self.stowage)

    token_post = token_get
