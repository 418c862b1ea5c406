"""``/service/rest/v1/repositories``: list, read, create, update, delete, invalidate cache, rebuild index."""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Any

import falcon

from stowage.errors import BadRequest, ConfigurationError, NotFound
from stowage.http.request import external_base_url
from stowage.models import RepositoryType
from stowage.rest import V1
from stowage.rest.access import can_read, json_object, require_admin

if TYPE_CHECKING:
    from stowage.repository import Repository
    from stowage.stowage import Stowage

_SECRETS = ("password", "bearerToken")


def redact(document: dict[str, Any], secret_settings: tuple[str, ...] = ()) -> dict[str, Any]:
    """A repository document without upstream secrets (the REST API never returns them), nor the
    format's ``secret_settings``."""
    document = copy.deepcopy(document)
    auth = document.get("httpClient", {}).get("authentication")
    if auth:
        for key in _SECRETS:
            auth.pop(key, None)
    for dotted in secret_settings:
        section, _, key = dotted.rpartition(".")
        parent = document.get(section) if section else document
        if isinstance(parent, dict):
            parent.pop(key, None)
    return document


def _secret_settings(stowage: "Stowage", format_name: str) -> tuple[str, ...]:
    fmt = stowage.plugins.formats.get(format_name)
    return fmt.secret_settings if fmt is not None else ()


def summary(req: falcon.Request, stowage: "Stowage", repository: "Repository") -> dict[str, Any]:
    item: dict[str, Any] = {
        "name": repository.name,
        "format": repository.format_name,
        "type": repository.type.value,
        "url": f"{external_base_url(req, stowage)}/repository/{repository.name}",
        "online": repository.config.online,
        "attributes": {},
    }
    if repository.config.proxy:
        item["attributes"]["proxy"] = {"remoteUrl": repository.config.proxy.remote_url}
        item["status"] = remote_status(stowage, repository)
    if repository.format is None:
        item["status"] = {"online": False, "description": f"format plugin {repository.format_name!r} is missing"}
    return item


def remote_status(stowage: "Stowage", repository: "Repository") -> dict[str, Any]:
    from stowage.proxy_upstream import describe_status

    return describe_status(repository)


def full(stowage: "Stowage", req: falcon.Request, repository: "Repository") -> dict[str, Any]:
    document = redact(stowage.converter.unstructure(repository.config),
                      _secret_settings(stowage, repository.format_name))
    document["url"] = f"{external_base_url(req, stowage)}/repository/{repository.name}"
    return document



def _keep_secrets(new: dict[str, Any], old: dict[str, Any],
                  secret_settings: tuple[str, ...] = ()) -> dict[str, Any]:
    """An update that omits upstream secrets (or the format's secret settings) keeps the stored ones (the
    API never shows them)."""
    for dotted in secret_settings:
        section, _, key = dotted.rpartition(".")
        new_parent = new.get(section) if section else new
        old_parent = old.get(section) if section else old
        if isinstance(new_parent, dict) and isinstance(old_parent, dict) and key not in new_parent \
                and key in old_parent:
            new_parent[key] = old_parent[key]
    new_auth = new.get("httpClient", {}).get("authentication")
    old_auth = old.get("httpClient", {}).get("authentication")
    if new_auth and old_auth and new_auth.get("username", old_auth.get("username")) == old_auth.get("username"):
        for key in _SECRETS:
            if key not in new_auth and key in old_auth:
                new_auth[key] = old_auth[key]
    return new


class RepositoriesResource:
    def __init__(self, stowage: "Stowage"):
        self.stowage = stowage

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.media = [summary(req, self.stowage, r) for r in self.stowage.repositories()
                      if can_read(req, self.stowage, r)]


class RepositorySettingsResource:
    def __init__(self, stowage: "Stowage"):
        self.stowage = stowage

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        require_admin(req, self.stowage)
        resp.media = [full(self.stowage, req, r) for r in self.stowage.repositories()]


class RepositoryResource:
    def __init__(self, stowage: "Stowage"):
        self.stowage = stowage

    def on_get(self, req: falcon.Request, resp: falcon.Response, name: str) -> None:
        repository = self.stowage.repository(name)
        if not can_read(req, self.stowage, repository):
            require_admin(req, self.stowage)
        resp.media = summary(req, self.stowage, repository)

    def on_delete(self, req: falcon.Request, resp: falcon.Response, name: str) -> None:
        require_admin(req, self.stowage)
        self.stowage.delete_repository(name)
        resp.status = falcon.HTTP_204


class RepositoryCreateResource:
    """``POST /repositories/{format}/{type}`` and ``GET|PUT /repositories/{format}/{type}/{name}``."""

    def __init__(self, stowage: "Stowage"):
        self.stowage = stowage
        self.actions = {"invalidate-cache": InvalidateCacheResource(stowage),
                        "rebuild-index": RebuildIndexResource(stowage)}

    def _parse(self, req: falcon.Request, format_name: str, type_name: str, name: str | None) -> Any:
        body = json_object(req)
        try:
            RepositoryType(type_name)
        except ValueError:
            raise NotFound(f"unknown repository type {type_name!r}; use hosted, proxy or group") from None
        if format_name not in self.stowage.plugins.formats:
            raise NotFound(f"format {format_name!r} is not installed")
        for key, expected in (("format", format_name), ("type", type_name), ("name", name)):
            if expected is None:
                continue
            if body.setdefault(key, expected) != expected:
                raise BadRequest(f"{key} {body[key]!r} in the body does not match {expected!r} in the URL")
        body.pop("url", None)
        return body

    def on_post(self, req: falcon.Request, resp: falcon.Response, name: str, second: str) -> None:
        # One URI shape serves both POST /repositories/{format}/{type} and /repositories/{name}/{action}.
        if second in self.actions:
            self.actions[second].on_post(req, resp, name)
            return
        self.create(req, resp, name, second)

    def create(self, req: falcon.Request, resp: falcon.Response, format_name: str, type_name: str) -> None:
        require_admin(req, self.stowage)
        body = self._parse(req, format_name, type_name, None)
        config = self.stowage.parse_repository(body)
        self.stowage.save_repository(config, create=True)
        resp.status = falcon.HTTP_201

    def on_get_one(self, req: falcon.Request, resp: falcon.Response, name: str, second: str,
                   target: str) -> None:
        format_name, type_name, name = name, second, target
        require_admin(req, self.stowage)
        repository = self.stowage.repository(name)
        if repository.format_name != format_name or repository.type.value != type_name:
            raise NotFound(f"repository {name} is not a {format_name} {type_name} repository")
        resp.media = full(self.stowage, req, repository)

    def on_put_one(self, req: falcon.Request, resp: falcon.Response, name: str, second: str,
                   target: str) -> None:
        format_name, type_name, name = name, second, target
        require_admin(req, self.stowage)
        body = self._parse(req, format_name, type_name, name)
        stored = self.stowage.catalog.get_repository(name)
        if stored is None:
            raise NotFound(f"repository {name} does not exist")
        config = self.stowage.parse_repository(
            _keep_secrets(body, stored, _secret_settings(self.stowage, format_name)))
        self.stowage.save_repository(config, create=False)
        resp.status = falcon.HTTP_204


class InvalidateCacheResource:
    def __init__(self, stowage: "Stowage"):
        self.stowage = stowage

    def on_post(self, req: falcon.Request, resp: falcon.Response, name: str) -> None:
        require_admin(req, self.stowage)
        repository = self.stowage.repository(name)
        if repository.type is RepositoryType.HOSTED:
            raise ConfigurationError(f"repository {name} is hosted; only proxy and group caches can be invalidated")
        targets = [repository] if repository.type is RepositoryType.PROXY else _proxy_members(repository)
        for target in targets:
            self.stowage.catalog.invalidate_assets(target.name)
            self.stowage.catalog.forget_missing(target.name)
            self.stowage.catalog.bump_revision(target.name)
        self.stowage.metadata_cache.clear()
        resp.status = falcon.HTTP_204


def _proxy_members(group: "Repository", seen: set[str] | None = None) -> list["Repository"]:
    """Every proxy reachable from ``group`` through its members and nested groups."""
    seen = set() if seen is None else seen
    found = []
    for member in group.resolver.members():  # type: ignore[attr-defined]
        if member.name in seen:
            continue
        seen.add(member.name)
        if member.type is RepositoryType.PROXY:
            found.append(member)
        elif member.type is RepositoryType.GROUP:
            found += _proxy_members(member, seen)
    return found


class RebuildIndexResource:
    def __init__(self, stowage: "Stowage"):
        self.stowage = stowage

    def on_post(self, req: falcon.Request, resp: falcon.Response, name: str) -> None:
        require_admin(req, self.stowage)
        repository = self.stowage.repository(name)
        if not repository.handler.supports("rebuild_index"):
            raise BadRequest(f"the {repository.format_name} format has no index to rebuild")
        repository.handler.rebuild_index(repository)
        self.stowage.metadata_cache.clear()
        resp.status = falcon.HTTP_204


def register(app: falcon.App, stowage: "Stowage") -> None:
    create = RepositoryCreateResource(stowage)
    app.add_route(f"{V1}/repositories", RepositoriesResource(stowage))
    app.add_route(f"{V1}/repositorySettings", RepositorySettingsResource(stowage))
    app.add_route(f"{V1}/repositories/{{name}}", RepositoryResource(stowage))
    app.add_route(f"{V1}/repositories/{{name}}/{{second}}", create)
    app.add_route(f"{V1}/repositories/{{name}}/{{second}}/{{target}}", create, suffix="one")
