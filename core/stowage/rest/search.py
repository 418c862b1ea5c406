"""``/service/rest/v1/search``, ``/search/assets`` and ``/search/assets/download`` (Nexus shapes).

Only repositories the caller may read are searched. Naming a group searches its members (and their
members), as Nexus does; results carry the member's name. Pages hold 50 items, like Nexus.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import falcon

from stowage.errors import BadRequest, NotFound, Unauthorized
from stowage.http.auth import BASIC_CHALLENGE, authenticate
from stowage.models import RepositoryType
from stowage.rest import V1
from stowage.rest.access import repository_access, visible_items
from stowage.rest.components import asset_json, component_json
from stowage.security import Action

if TYPE_CHECKING:
    from stowage.repository import Repository
    from stowage.stowage import Stowage

PAGE_SIZE = 50
SORTS = ("group", "name", "version", "repository")


def _leaves(stowage: "Stowage", repository: "Repository", seen: set[str]) -> list["Repository"]:
    if repository.name in seen:
        return []
    seen.add(repository.name)
    if repository.type is not RepositoryType.GROUP or repository.config.group is None:
        return [repository]
    found: list["Repository"] = []
    for member in repository.config.group.member_names:
        try:
            found += _leaves(stowage, stowage.repository(member), seen)
        except NotFound:
            continue
    return found


def searchable(req: falcon.Request, stowage: "Stowage") -> dict[str, str]:
    """Name -> format of the repositories this request searches (readable by the caller)."""
    wanted_format = req.get_param("format")
    name = req.get_param("repository")
    if name:
        repository = stowage.repository(name)
        access = repository_access(req, stowage, repository, Action.READ)
        targets = _leaves(stowage, repository, set())
        if access is not None:  # a group's selectors limit what its members show through it
            req.context.content_limits.update({t.name: access for t in targets})
    else:
        user = authenticate(req, stowage)
        if user is None and not stowage.security.anonymous_access:
            raise Unauthorized("authentication required", headers={"WWW-Authenticate": BASIC_CHALLENGE})
        targets = []
        for candidate in stowage.repositories():
            if candidate.type is RepositoryType.GROUP:
                continue
            if stowage.plugins.hook.stowage_permission(user=user, repository=candidate, action=Action.READ):
                targets.append(candidate)
                continue
            access = stowage.security.content_access(user, candidate.format_name, candidate.name, Action.READ)
            if access is not None:
                targets.append(candidate)
                limits = getattr(req.context, "content_limits", None) or {}
                req.context.content_limits = {**limits, candidate.name: access}
    return {r.name: r.format_name for r in targets if not wanted_format or r.format_name == wanted_format}


def search_filters(req: falcon.Request) -> dict[str, Any]:
    sort = req.get_param("sort")
    if sort is not None and sort not in SORTS:
        raise BadRequest(f"sort must be one of {', '.join(SORTS)}")
    direction = (req.get_param("direction") or "asc").lower()
    if direction not in ("asc", "desc"):
        raise BadRequest("direction must be asc or desc")
    return {"sha256": req.get_param("sha256"), "name": req.get_param("name"),
            "version": req.get_param("version"), "group": req.get_param("group"),
            "keyword": req.get_param("q"), "sort": sort, "direction": direction,
            "continuation_token": req.get_param("continuationToken")}


class SearchResource:
    """Components, each with its assets."""

    def __init__(self, stowage: "Stowage"):
        self.stowage = stowage

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        repositories = searchable(req, self.stowage)
        filters = search_filters(req)
        if not repositories:
            resp.media = {"items": [], "continuationToken": None}
            return
        page = self.stowage.catalog.search_components(repositories=sorted(repositories), limit=PAGE_SIZE,
                                                      **filters)
        resp.media = {"items": visible_items(req, [component_json(req, self.stowage, c) for c in page.items]),
                      "continuationToken": page.continuation_token}


class SearchAssetsResource:
    def __init__(self, stowage: "Stowage"):
        self.stowage = stowage

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        repositories = searchable(req, self.stowage)
        filters = search_filters(req)
        if not repositories:
            resp.media = {"items": [], "continuationToken": None}
            return
        page = self.stowage.catalog.search_assets(repositories=sorted(repositories), limit=PAGE_SIZE, **filters)
        resp.media = {"items": visible_items(req, [asset_json(req, self.stowage, a, repositories[a.repository])
                                                   for a in page.items]),
                      "continuationToken": page.continuation_token}


class SearchDownloadResource:
    """302 to the one matching asset; 404 when none; 400 when several match and no ``sort`` picks one."""

    def __init__(self, stowage: "Stowage"):
        self.stowage = stowage

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        repositories = searchable(req, self.stowage)
        filters = search_filters(req)
        filters["continuation_token"] = None
        items: list = []
        if repositories:
            limit = 2 if not getattr(req.context, "content_limits", None) else PAGE_SIZE
            found = self.stowage.catalog.search_assets(repositories=sorted(repositories), limit=limit,
                                                       **filters).items
            items = visible_items(req, [asset_json(req, self.stowage, a, repositories[a.repository])
                                        for a in found])
        if not items:
            raise NotFound("no asset matches the search")
        if len(items) > 1 and filters["sort"] is None:
            raise BadRequest("Search returned multiple assets, please refine search criteria to find a single "
                             "asset or use the sort query parameter to retrieve the first result.")
        url = items[0]["downloadUrl"]
        resp.status = falcon.HTTP_302
        resp.location = url


def register(app: falcon.App, stowage: "Stowage") -> None:
    app.add_route(f"{V1}/search", SearchResource(stowage))
    app.add_route(f"{V1}/search/assets", SearchAssetsResource(stowage))
    app.add_route(f"{V1}/search/assets/download", SearchDownloadResource(stowage))
