"""Listing endpoints: ``/v2/<image>/tags/list``, ``/v2/<image>/referrers/<digest>`` and ``/v2/_catalog``,
with the spec's ``n``/``last`` pagination and ``Link`` header."""

from __future__ import annotations

import json
from typing import Any, Iterable
from urllib.parse import quote

import falcon

from stowage.plugin import RepoRequest, Repository, RepositoryType, member_leaves
from stowage_docker import manifests
from stowage_docker.access import Target
from stowage_docker.lookups import check_digest, image_names, tags_in


class ListingEndpoints:
    """The listing responders of :class:`~stowage_docker.registry.Registry`."""

    request: RepoRequest
    target: Target
    repository: Repository
    req: falcon.Request
    resp: falcon.Response

    def tags_get(self, name: str) -> None:
        self.send_page({"name": self.target.name_prefix + name}, "tags", tags_in(self.repository, name),
                       self.target.path(name, "tags/list"))

    tags_head = tags_get

    def catalog_get(self) -> None:
        serve_catalog(self.request, self.target, [self.repository])

    def send_page(self, document: dict[str, Any], key: str, items: list[str], link_path: str) -> None:
        send_page(self.request, document, key, items, link_path)

    def referrers_get(self, name: str, digest: str) -> None:
        check_digest(digest)
        wanted = self.req.get_param("artifactType")
        entries: dict[str, dict[str, Any]] = {}
        for leaf in member_leaves(self.repository):
            if leaf.type is not RepositoryType.HOSTED:
                continue
            for asset in leaf.stowage.catalog.iter_assets(leaf.name, prefix=f"v2/{name}/manifests/sha"):
                attributes = asset.attributes
                if attributes.get("subject") != digest:
                    continue
                if wanted and attributes.get("artifactType") != wanted:
                    continue
                descriptor = {"mediaType": attributes.get("mediaType") or asset.content_type,
                              "digest": attributes.get("digest") or f"sha256:{asset.blob_sha256}",
                              "size": asset.size}
                if attributes.get("artifactType"):
                    descriptor["artifactType"] = attributes["artifactType"]
                if attributes.get("annotations"):
                    descriptor["annotations"] = attributes["annotations"]
                entries.setdefault(descriptor["digest"], descriptor)
        if wanted:
            self.resp.set_header("OCI-Filters-Applied", "artifactType")
        body = {"schemaVersion": 2, "mediaType": manifests.OCI_INDEX, "manifests": list(entries.values())}
        self.request.send_bytes(json.dumps(body).encode(), manifests.OCI_INDEX)


def send_page(request: RepoRequest, document: dict[str, Any], key: str, items: list[str], link_path: str) -> None:
    """``items`` under ``key`` in ``document``, after ``last`` and at most ``n`` of them, with the spec's
    ``Link`` to the next page."""
    req, resp = request.req, request.resp
    last = req.get_param("last")
    if last:
        items = [item for item in items if item > last]
    n = req.get_param_as_int("n", min_value=0)
    if n is not None and len(items) > n:
        items = items[:n]
        if items:
            resp.set_header("Link", f'<{link_path}?n={n}&last={quote(items[-1], safe="")}>; rel="next"')
    document[key] = items
    request.send_bytes(json.dumps(document).encode(), "application/json")


def serve_catalog(request: RepoRequest, target: Target, repositories: Iterable[Repository]) -> None:
    """``/v2/_catalog``: the images of ``repositories`` (with their repository's name in path routing)."""
    names: set[str] = set()
    for repository in repositories:
        prefix = f"{repository.name}/" if target.name_prefix else ""
        names.update(prefix + name for name in image_names(member_leaves(repository)))
    root_path = "/" + target.root.split("://", 1)[-1].partition("/")[2]
    send_page(request, {}, "repositories", sorted(names), f"{root_path}/_catalog")
