"""``npm search`` (``GET -/v1/search?text=&size=&from=``): hosted packages from the catalog, proxies'
from their remotes, groups' from their members in order (first occurrence of a name wins)."""

from __future__ import annotations

import json
from typing import Any, Iterator
from urllib.parse import urlencode

from stowage.plugin import RepoRequest, Repository, RepositoryType, StowageError

from stowage_npm.packument import namespace
from stowage_npm.upstream import forward


def search(request: RepoRequest) -> dict[str, Any]:
    text = request.req.get_param("text") or ""
    size = min(max(_int(request.req.get_param("size"), 20), 1), 250)
    start = max(_int(request.req.get_param("from"), 0), 0)
    seen: set[str] = set()
    objects = []
    for found in _objects(request.repository, text, start + size, set()):
        name = found.get("package", {}).get("name")
        if name in seen or not isinstance(name, str) or not request.permits("/" + name):
            continue
        seen.add(name)
        objects.append(found)
    return {"objects": objects[start:start + size], "total": len(objects), "time": ""}


def _int(value: str | None, default: int) -> int:
    try:
        return int(value) if value is not None else default
    except ValueError:
        return default


def _objects(repository: Repository, text: str, limit: int, visited: set[str]) -> Iterator[dict[str, Any]]:
    if repository.name in visited or not repository.config.online:
        return
    visited.add(repository.name)
    if repository.type is RepositoryType.HOSTED:
        yield from _hosted(repository, text)
    elif repository.type is RepositoryType.PROXY:
        try:
            status, _, data = forward(repository, "GET", "-/v1/search",
                                      query=urlencode({"text": text, "size": limit}), timeout=30)
            if status == 200:
                yield from json.loads(data).get("objects", [])
        except (StowageError, ValueError, AttributeError):
            return  # a failing remote must not hide the other members' results
    else:
        for member_name in repository.config.group.member_names:  # type: ignore[union-attr]
            try:
                member = repository.stowage.repository(member_name)
            except StowageError:
                continue
            yield from _objects(member, text, limit, visited)


def _hosted(repository: Repository, text: str) -> Iterator[dict[str, Any]]:
    terms = [t.lower() for t in text.split() if t]
    for name, stored in repository.stowage.catalog.list_documents(namespace(repository.name)):
        latest = stored["dist-tags"].get("latest")
        manifest = stored["versions"].get(latest) or {}
        extra = stored.get("extra") or {}
        keywords = manifest.get("keywords") or extra.get("keywords") or []
        haystack = " ".join([name, str(extra.get("description") or ""), " ".join(map(str, keywords))]).lower()
        if not all(term in haystack for term in terms):
            continue
        score = 1.0 if name.lower() in terms else 0.5
        yield {"package": {"name": name, "scope": name[1:].partition("/")[0] if name.startswith("@") else "unscoped",
                           "version": latest, "description": extra.get("description", ""),
                           "keywords": keywords, "date": stored["time"].get(latest, ""),
                           "links": {}, "publisher": _person(manifest.get("_npmUser")),
                           "maintainers": [_person(m) for m in extra.get("maintainers") or []
                                           if isinstance(m, dict)]},
               "score": {"final": score, "detail": {"quality": score, "popularity": score, "maintenance": score}},
               "searchScore": score}


def _person(person: Any) -> dict[str, str]:
    """A publisher or maintainer as the registry's search API spells it: ``username`` (npm 11's
    ``npm search`` reads it and crashes without it), ``email``. Packuments say ``name`` instead."""
    person = person if isinstance(person, dict) else {}
    username = person.get("username") or person.get("name") or ""
    found = {"username": str(username)}
    if person.get("email"):
        found["email"] = str(person["email"])
    return found
