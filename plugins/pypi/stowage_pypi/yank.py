"""PEP 592 yanking through the REST API (hosted repositories).

- ``GET|PUT|DELETE /service/rest/v1/pypi/{repository}/projects/{project}/versions/{version}/yank``:
  the yank state of every file of a release; ``PUT`` yanks (JSON body ``{"reason": "..."}``, optional),
  ``DELETE`` un-yanks.
- ``GET|PUT|DELETE /service/rest/v1/pypi/{repository}/files/{filename}/yank``: the same for one file.

``PUT``/``DELETE`` need write permission on the repository; ``GET`` needs read. Each answers the
resulting state: ``{"repository", "project", "files": [{"filename", "version", "yanked"}]}``. The index
changes at once (the catalog revision is bumped in the same transaction).
"""

from __future__ import annotations

import abc
import json
from typing import TYPE_CHECKING, Any

import attrs
import falcon
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from stowage.plugin import (Action, Asset, BadRequest, NotFound, Repository, RepositoryType, Route,
                            require_repository)

from stowage_pypi.distributions import METADATA_SUFFIX, parse_filename

if TYPE_CHECKING:
    from stowage.plugin import App

PREFIX = "/service/rest/v1/pypi/{repository}"


def _matching_files(repository: Repository, project: str, version: Version | None,
                    filename: str | None) -> list[Asset]:
    catalog = repository.stowage.catalog
    found = []
    for asset in catalog.iter_assets(repository.name, prefix=f"packages/{project}/"):
        if asset.path.endswith(METADATA_SUFFIX):
            continue
        name = asset.path.rsplit("/", 1)[-1]
        if filename is not None and name != filename:
            continue
        if version is not None:
            try:
                if Version((asset.attributes.get("pypi") or {}).get("version", "")) != version:
                    continue
            except InvalidVersion:
                continue
        found.append(asset)
    return found


def _state(repository: Repository, project: str, assets: list[Asset]) -> dict[str, Any]:
    return {"repository": repository.name, "project": project,
            "files": [{"filename": a.path.rsplit("/", 1)[-1], "version": (a.attributes.get("pypi") or {}).get("version"),
                       "yanked": (a.attributes.get("pypi") or {}).get("yanked", False)} for a in assets]}


def _reason(req: falcon.Request) -> str:
    if not req.content_length:
        return ""
    try:
        body = json.loads(req.bounded_stream.read(64 * 1024) or b"{}")
    except (ValueError, RecursionError):  # RecursionError: JSON nested too deeply
        raise BadRequest('the body must be JSON: {"reason": "..."}') from None
    if not isinstance(body, dict) or not isinstance(body.get("reason", ""), str):
        raise BadRequest('the body must be JSON: {"reason": "..."}')
    return body.get("reason", "")


class _YankResource(abc.ABC):
    def __init__(self, stowage: "App"):
        self.stowage = stowage

    def _select(self, req: falcon.Request, repository_name: str, params: dict[str, str],
                action: Action) -> tuple[Repository, str, list[Asset]]:
        repository = self.stowage.repository(repository_name)
        require_repository(req, self.stowage, repository, action)
        if repository.format_name != "pypi" or repository.type is not RepositoryType.HOSTED:
            raise BadRequest(f"repository {repository.name} is not a pypi hosted repository; yank in the hosted "
                             f"repository that holds the files")
        project, version, filename = self.target(params)
        assets = _matching_files(repository, project, version, filename)
        if not assets:
            raise NotFound(f"no files of {project}" + (f" {version}" if version else "")
                           + (f" named {filename}" if filename else "") + f" in {repository.name}")
        return repository, project, assets

    @abc.abstractmethod
    def target(self, params: dict[str, str]) -> tuple[str, Version | None, str | None]:
        """(project, version or None, filename or None) named by the route's parameters."""

    def _answer(self, resp: falcon.Response, repository: Repository, project: str, assets: list[Asset]) -> None:
        resp.media = _state(repository, project, assets)

    def on_get(self, req: falcon.Request, resp: falcon.Response, repository: str, **params: str) -> None:
        found, project, assets = self._select(req, repository, params, Action.READ)
        self._answer(resp, found, project, assets)

    def on_put(self, req: falcon.Request, resp: falcon.Response, repository: str, **params: str) -> None:
        self._set(req, resp, repository, params, _reason(req) or True)

    def on_delete(self, req: falcon.Request, resp: falcon.Response, repository: str, **params: str) -> None:
        self._set(req, resp, repository, params, False)

    def _set(self, req: falcon.Request, resp: falcon.Response, repository_name: str, params: dict[str, str],
             yanked: bool | str) -> None:
        repository, project, assets = self._select(req, repository_name, params, Action.WRITE)
        catalog = self.stowage.catalog
        updated = []
        with catalog.transaction():
            for asset in assets:
                current = catalog.get_asset(asset.repository, asset.path)
                if current is None:
                    continue
                pypi = dict(current.attributes.get("pypi") or {}, yanked=yanked)
                updated.append(catalog.update_asset(attrs.evolve(current, attributes={**current.attributes,
                                                                                        "pypi": pypi})))
            catalog.bump_revision(repository.name)
        self._answer(resp, repository, project, updated)


class ReleaseYankResource(_YankResource):
    def target(self, params: dict[str, str]) -> tuple[str, Version | None, str | None]:
        try:
            version = Version(params["version"])
        except InvalidVersion:
            raise BadRequest(f"{params['version']!r} is not a valid PEP 440 version") from None
        return canonicalize_name(params["project"]), version, None


class FileYankResource(_YankResource):
    def target(self, params: dict[str, str]) -> tuple[str, Version | None, str | None]:
        dist = parse_filename(params["filename"])
        return dist.project, None, dist.filename


def routes() -> list[Route]:
    return [
        Route(f"{PREFIX}/projects/{{project}}/versions/{{version}}/yank", ReleaseYankResource, name="pypi-yank-release"),
        Route(f"{PREFIX}/files/{{filename}}/yank", FileYankResource, name="pypi-yank-file"),
    ]
