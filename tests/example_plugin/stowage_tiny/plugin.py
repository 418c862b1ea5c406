"""The tiny format: files at any path, plus a generated JSON index of them at ``-/index.json``."""

from __future__ import annotations

import json
import re

import falcon
from attrs import frozen

from stowage.plugin import (App, AssetKind, BadRequest, Format, FormatHandler, MemberDocument, MetadataBuilder,
                            RepoRequest, Repository, Route, WritePolicy, hookimpl)

INDEX = "-/index.json"


@frozen
class TinySettings:
    """The ``tiny`` section of a repository: ``tiny = { indexTitle = "Tools" }`` in TOML."""

    index_title: str = "files"


def build_index(repository: Repository, match: re.Match[str]) -> dict[str, str]:
    """Hosted: path -> sha256 of every file, read from the catalog."""
    return {asset.path: asset.blob_sha256
            for asset in repository.stowage.catalog.iter_assets(repository.name, kind=AssetKind.CONTENT)}


def merge_indexes(repository: Repository, match: re.Match[str], members: list[MemberDocument]) -> dict[str, str]:
    """Group: members in order; the first member with a path wins, exactly as downloads resolve."""
    merged: dict[str, str] = {}
    for member in members:
        for path, sha256 in member.document.items():
            merged.setdefault(path, sha256)
    return merged


class TinyHandler(FormatHandler):
    methods = ("GET", "HEAD", "PUT", "DELETE")

    def on_get(self, request: RepoRequest) -> None:
        if request.path == INDEX:
            settings = request.repository.config.section("tiny") or TinySettings()
            files = request.repository.metadata(INDEX)
            body = json.dumps({"title": settings.index_title, "files": files}, sort_keys=True).encode()
            request.send_bytes(body, "application/json")
            return
        request.send_asset(request.repository.resolve(request.path, self.classify(request.path)))

    def on_put(self, request: RepoRequest) -> None:
        if not request.path or request.path.endswith("/") or request.path.startswith("-/"):
            raise BadRequest("PUT needs a file path (paths under -/ are the server's)")
        body, length = request.require_body()
        request.repository.store(request.path, body, length=length,
                                 content_type=request.header("Content-Type") or "application/octet-stream")
        request.resp.status = falcon.HTTP_201

    def on_delete(self, request: RepoRequest) -> None:
        request.repository.delete(request.path)
        request.resp.status = falcon.HTTP_204

    def classify(self, path: str) -> AssetKind:
        return AssetKind.METADATA if path == INDEX else AssetKind.CONTENT


class TinyRepositoriesResource:
    """``GET /-/tiny``: the names of the tiny repositories (an extra route, outside /repository/)."""

    def __init__(self, stowage: App):
        self.stowage = stowage

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.media = sorted(r.name for r in self.stowage.repositories() if r.format_name == "tiny")


@hookimpl
def stowage_register_formats() -> list[Format]:
    return [Format(name="tiny", handler=TinyHandler, settings={"tiny": TinySettings},
                   default_write_policy=WritePolicy.ALLOW, description="Files plus a JSON index.")]


@hookimpl
def stowage_register_metadata_builders() -> list[MetadataBuilder]:
    return [MetadataBuilder(format="tiny", name="index", pattern=re.escape(INDEX), build=build_index,
                            merge=merge_indexes)]


@hookimpl
def stowage_register_routes() -> list[Route]:
    return [Route(path="/-/tiny", resource=TinyRepositoriesResource, name="tiny-repositories")]
