"""Metadata builders: the root index and project pages for hosted (from the catalog), proxy (parsed from
the remote's copy) and group (merged) repositories."""

from __future__ import annotations

import hashlib
import re
from typing import IO, Any, Callable

from packaging.utils import canonicalize_name

from stowage.plugin import LRUCache, MemberDocument, MetadataBuilder, Repository, guard_names

from stowage_pypi.distributions import METADATA_SUFFIX, file_path
from stowage_pypi.simple import DistFile, ProjectPage, RootIndex, parse_project, parse_root, sort_versions

ROOT_PATH = "simple/"
ROOT_PATTERN = re.compile(r"simple/")
PROJECT_PATTERN = re.compile(r"simple/(?P<project>[^/]+)/")


def project_path(project: str) -> str:
    return f"simple/{canonicalize_name(project)}/"


def document_cache(repository: Repository) -> LRUCache:
    """Parsed upstream pages and merged group pages, keyed on what they were derived from (an upstream
    copy's sha256, the member documents' identities): never stale, only work not redone per request."""
    return repository.stowage.extension("pypi-documents", lambda: LRUCache(512))


def _merged(repository: Repository, key: tuple, make: Callable[[], tuple[tuple, Any]]) -> Any:
    """``make()`` returns (what to keep alive: the documents whose ids ``key`` holds, the merged page)."""
    return document_cache(repository).get_or_make(key, lambda: (make(), 1))[1]


# -- hosted --------------------------------------------------------------------------------------------

def build_root(repository: Repository, match: re.Match[str]) -> RootIndex:
    catalog = repository.stowage.catalog
    names: dict[str, str] = {}
    token = None
    while True:
        page = catalog.list_components(repository.name, continuation_token=token, limit=5000)
        for component in page.items:
            if component.format == "pypi" and component.name not in names:
                names[component.name] = component.attributes.get("display_name") or component.name
        token = page.continuation_token
        if token is None:
            break
    return RootIndex(projects=tuple(names[key] for key in sorted(names)))


def build_project(repository: Repository, match: re.Match[str]) -> ProjectPage | None:
    project = canonicalize_name(match.group("project"))
    files: list[tuple[Any, DistFile]] = []
    display = None
    for asset in repository.stowage.catalog.iter_assets(repository.name, prefix=f"packages/{project}/"):
        if asset.path.endswith(METADATA_SUFFIX):
            continue
        info = asset.attributes.get("pypi") or {}
        display = display or info.get("project")
        filename = asset.path.rsplit("/", 1)[-1]
        files.append((info.get("version") or "", DistFile(
            filename=filename, path=asset.path, sha256=asset.blob_sha256, size=asset.size,
            upload_time=asset.created or None, requires_python=info.get("requires_python"),
            yanked=info.get("yanked", False), core_metadata=info.get("core_metadata_sha256") or False)))
    if not files:
        return None
    versions = sort_versions(version for version, _ in files)
    order = {version: i for i, version in enumerate(versions)}
    files.sort(key=lambda item: (order[item[0]], item[1].filename))
    return ProjectPage(name=display or project, files=tuple(f for _, f in files), versions=versions)


# -- proxy ---------------------------------------------------------------------------------------------

def _parsed(repository: Repository, match: re.Match[str], stream: IO[bytes], parse: Callable[[bytes], Any]) -> Any:
    """Parse the remote's copy once per content: keyed on the sha256 the catalog holds for it; on a miss
    the entry is stored under the sha256 of the bytes actually read, so a concurrent refresh can never
    file one copy's parse under another copy's digest."""
    cache = document_cache(repository)
    asset = repository.stowage.catalog.get_asset(repository.name, match.group(0))
    key = ("parsed", repository.name, match.group(0), asset.blob_sha256 if asset else None)
    found = cache.get(key)
    if found is not None:
        return found
    data = stream.read()
    document = parse(data)
    cache.put(("parsed", repository.name, match.group(0), hashlib.sha256(data).hexdigest()), document)
    return document


def parse_root_page(repository: Repository, match: re.Match[str], stream: IO[bytes]) -> RootIndex:
    return _parsed(repository, match, stream, parse_root)


def parse_project_page(repository: Repository, match: re.Match[str], stream: IO[bytes]) -> ProjectPage:
    project = canonicalize_name(match.group("project"))
    from stowage_pypi.plugin import index_root

    page_url = index_root(repository) + f"{project}/"
    return _parsed(repository, match, stream,
                   lambda data: parse_project(data, page_url, project, lambda name: file_path(project, name)))


# -- group ---------------------------------------------------------------------------------------------

def merge_root(repository: Repository, match: re.Match[str], members: list[MemberDocument]) -> RootIndex:
    def make() -> tuple:
        names: dict[str, str] = {}
        for member in members:
            for name in member.document.projects:
                names.setdefault(canonicalize_name(name), name)
        return tuple(m.document for m in members), RootIndex(projects=tuple(names[k] for k in sorted(names)))

    key = ("merged", repository.name, match.group(0), tuple(id(m.document) for m in members))
    return _merged(repository, key, make)


def merge_project(repository: Repository, match: re.Match[str], members: list[MemberDocument]) -> ProjectPage:
    project = canonicalize_name(match.group("project"))

    def make() -> tuple:
        # core's dependency-confusion guard; downloads through the group apply the same rule
        guard = guard_names(members, lambda page: (page.name,), repository.config.group.allow_proxy_names,
                            normalize=canonicalize_name)
        chosen = [member for member in members if guard.allows(member, project)]
        files: dict[str, DistFile] = {}
        versions: list[str] = []
        for member in chosen:
            versions.extend(member.document.versions)
            for f in member.document.files:
                files.setdefault(f.filename, f)
        name = chosen[0].document.name
        return tuple(m.document for m in members), ProjectPage(name=name, files=tuple(files.values()),
                                                               versions=sort_versions(versions))

    key = ("merged", repository.name, match.group(0), tuple((id(m.document), m.origin) for m in members))
    return _merged(repository, key, make)


def metadata_builders() -> list[MetadataBuilder]:
    return [
        MetadataBuilder(format="pypi", name="simple-root", pattern=ROOT_PATTERN, build=build_root,
                        parse=parse_root_page, merge=merge_root),
        MetadataBuilder(format="pypi", name="simple-project", pattern=PROJECT_PATTERN, build=build_project,
                        parse=parse_project_page, merge=merge_project),
    ]
