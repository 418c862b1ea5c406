"""``/service/rest/v1/search``, ``/search/assets`` and ``/search/assets/download`` (Nexus shapes).

Only repositories the caller may read are searched. Naming a group searches its members (and their
members), as Nexus does; results carry the member's name. Pages hold 50 items, like Nexus.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import falcon

from stowage.catalog.base import Page
from stowage.errors import BadRequest, NotFound, StowageError, Unauthorized
from stowage.http.auth import BASIC_CHALLENGE, authenticate
from stowage.models import Asset, Component, RepositoryType
from stowage.rest import V1
from stowage.rest.access import repository_access, visible_items
from stowage.rest.components import assets_json, component_json
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
            if stowage.permits(user, candidate, Action.READ):
                targets.append(candidate)
                continue
            access = stowage.security.content_access(user, candidate.format_name, candidate.name, Action.READ)
            if access is not None:
                targets.append(candidate)
                limits = getattr(req.context, "content_limits", None) or {}
                req.context.content_limits = {**limits, candidate.name: access}
    return {r.name: r.format_name for r in targets if not wanted_format or r.format_name == wanted_format}


#: Nexus's per-format search parameters -> (the component field or asset attribute they filter, format).
_FORMAT_PARAMS = {"docker.imageName": ("name", "docker"), "docker.imageTag": ("version", "docker"),
                  "npm.scope": ("group", "npm"), "yum.name": ("name", "yum"),
                  "yum.architecture": ("attribute:yum.arch", "yum"), "pypi.version": ("version", "pypi")}
_CHECKSUM_PARAMS = ("sha1", "md5", "sha512")
#: the most matches a search ordered by format version order (or filtered by ``prerelease``) considers.
MAX_VERSION_SORTED = 5000
_OFFSET_PREFIX = "offset:"


def search_filters(req: falcon.Request) -> dict[str, Any]:
    """The catalog filters of a search request (Nexus's query parameters)."""
    sort = req.get_param("sort") or None
    if sort is not None and sort not in SORTS:
        raise BadRequest(f"sort must be one of {', '.join(SORTS)}")
    # Nexus: ascending by default, except version (newest first).
    direction = (req.get_param("direction") or ("desc" if sort == "version" else "asc")).lower()
    if direction not in ("asc", "desc"):
        raise BadRequest("direction must be asc or desc")
    filters: dict[str, Any] = {
        "sha256": req.get_param("sha256"), "name": req.get_param("name"), "version": req.get_param("version"),
        "group": req.get_param("group"), "keyword": req.get_param("q"), "sort": sort, "direction": direction,
        "continuation_token": req.get_param("continuationToken"),
        "checksums": {name: req.get_param(name) for name in _CHECKSUM_PARAMS if req.get_param(name)},
        "attributes": {}}
    for param, (target, _) in _FORMAT_PARAMS.items():
        value = req.get_param(param)
        if value is None:
            continue
        if target.startswith("attribute:"):
            filters["attributes"][target.partition(":")[2]] = value
        elif filters[target] is None:
            filters[target] = value
    return filters


def _contradictory(req: falcon.Request) -> bool:
    """``name=a&docker.imageName=b``: a field asked for with two different values matches nothing."""
    for param, (target, _) in _FORMAT_PARAMS.items():
        value = req.get_param(param)
        if value is None or target.startswith("attribute:"):
            continue
        same = [req.get_param(other) for other, (field, _) in _FORMAT_PARAMS.items() if field == target]
        if req.get_param(target) not in (None, value) or any(v not in (None, value) for v in same):
            return True
    return False


def _implied_formats(req: falcon.Request) -> set[str]:
    return {fmt for param, (_, fmt) in _FORMAT_PARAMS.items() if req.get_param(param) is not None}


def _prerelease(req: falcon.Request) -> bool | None:
    value = req.get_param("prerelease")
    if value is None or value == "":
        return None
    if value.lower() not in ("true", "false"):
        raise BadRequest("prerelease must be true or false")
    return value.lower() == "true"


def search(req: falcon.Request, stowage: "Stowage", *, assets: bool, limit: int | None = PAGE_SIZE
           ) -> tuple[dict[str, str], Page]:
    """Run ``/search`` (components) or ``/search/assets``: repositories searched (name -> format) and a page.

    Plain orders are the catalog's; ``sort=version`` orders by each format's version order and
    ``prerelease`` asks each format, so both page over at most :data:`MAX_VERSION_SORTED` matches.
    ``limit=None`` (search/assets/download): two, enough to tell one match from several, or a page when
    content selectors will filter the answer afterwards.
    """
    repositories = searchable(req, stowage)
    if limit is None:
        limit = 2 if not getattr(req.context, "content_limits", None) else PAGE_SIZE
    implied = _implied_formats(req)
    if implied:
        repositories = {name: fmt for name, fmt in repositories.items() if fmt in implied}
    filters = search_filters(req)
    prerelease = _prerelease(req)
    if not repositories or _contradictory(req):
        return repositories, Page([], None)
    run = stowage.catalog.search_assets if assets else stowage.catalog.search_components
    if filters["sort"] != "version" and prerelease is None:
        return repositories, run(repositories=sorted(repositories), limit=limit, **filters)
    token = filters.pop("continuation_token")
    offset = 0
    if token:
        if not token.startswith(_OFFSET_PREFIX) or not token[len(_OFFSET_PREFIX):].isdigit():
            raise BadRequest(f"invalid continuationToken {token!r}")
        offset = int(token[len(_OFFSET_PREFIX):])
    descending = filters.pop("direction") == "desc"
    filters["sort"] = None
    candidates = run(repositories=sorted(repositories), limit=MAX_VERSION_SORTED, **filters).items
    versions = _VersionLookup(stowage, repositories)
    if prerelease is not None:
        candidates = [item for item in candidates if versions.is_prerelease(item) is prerelease]
    candidates.sort(key=versions.sort_key, reverse=descending)
    items = candidates[offset:offset + limit]
    more = offset + limit < len(candidates)
    return repositories, Page(items, f"{_OFFSET_PREFIX}{offset + limit}" if more else None)


class _VersionLookup:
    """Versions of search results in their format's order (components of assets read once each)."""

    def __init__(self, stowage: "Stowage", repositories: dict[str, str]):
        self.stowage = stowage
        self.repositories = repositories
        self._components: dict[int, Component | None] = {}

    def _component(self, item: Asset | Component) -> Component | None:
        if isinstance(item, Component):
            return item
        if item.component_id is None:
            return None
        if item.component_id not in self._components:
            self._components[item.component_id] = self.stowage.catalog.get_component(item.component_id)
        return self._components[item.component_id]

    def _handler(self, item: Asset | Component) -> Any:
        try:
            return self.stowage.repository(item.repository).handler
        except StowageError:  # deleted meanwhile, or its format plugin is missing: no version order
            return None

    def sort_key(self, item: Asset | Component) -> tuple:
        component = self._component(item)
        version = component.version if component is not None else ""
        handler = self._handler(item)
        key = handler.version_key(component) if handler is not None and component is not None and version else ()
        # formats first (their keys need not compare with each other), then versions, then ids for ties
        return (self.repositories.get(item.repository, ""), bool(version), key, item.id or 0)

    def is_prerelease(self, item: Asset | Component) -> bool:
        component = self._component(item)
        handler = self._handler(item)
        return bool(component and component.version and handler is not None
                    and handler.is_prerelease(component))


class SearchResource:
    """Components, each with its assets."""

    def __init__(self, stowage: "Stowage"):
        self.stowage = stowage

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        _, page = search(req, self.stowage, assets=False)
        resp.media = {"items": visible_items(req, [component_json(req, self.stowage, c) for c in page.items]),
                      "continuationToken": page.continuation_token}


class SearchAssetsResource:
    def __init__(self, stowage: "Stowage"):
        self.stowage = stowage

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        repositories, page = search(req, self.stowage, assets=True)
        resp.media = {"items": visible_items(req, assets_json(req, self.stowage, page.items, repositories)),
                      "continuationToken": page.continuation_token}


class SearchDownloadResource:
    """302 to the one matching asset; 404 when none; 400 when several match and no ``sort`` picks one."""

    def __init__(self, stowage: "Stowage"):
        self.stowage = stowage

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        if req.get_param("continuationToken"):
            raise BadRequest("search/assets/download takes no continuationToken")
        repositories, page = search(req, self.stowage, assets=True, limit=None)
        items = visible_items(req, assets_json(req, self.stowage, page.items, repositories)) if page.items else []
        if not items:
            raise NotFound("no asset matches the search")
        if len(items) > 1 and not req.get_param("sort"):
            raise BadRequest("Search returned multiple assets, please refine search criteria to find a single "
                             "asset or use the sort query parameter to retrieve the first result.")
        resp.status = falcon.HTTP_302
        resp.location = items[0]["downloadUrl"]


def register(app: falcon.App, stowage: "Stowage") -> None:
    app.add_route(f"{V1}/search", SearchResource(stowage))
    app.add_route(f"{V1}/search/assets", SearchAssetsResource(stowage))
    app.add_route(f"{V1}/search/assets/download", SearchDownloadResource(stowage))
