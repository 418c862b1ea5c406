"""``stowage verify`` for hosted yum repositories: does each root's repodata describe exactly its RPMs?

For every repodata root: ``repomd.xml`` must exist where there are RPMs; every file it lists must be an
asset whose bytes have the checksum and size it states; and ``primary.xml.gz`` must list exactly the
root's RPMs (location and sha256 pkgid). A root with a pending change marker is being regenerated right
now and is skipped. Repair regenerates the root from its RPMs (``rebuild-index`` of that root).
"""

from __future__ import annotations

import xml.etree.ElementTree as ElementTree
import zlib
from typing import Any, Mapping

from stowage.plugin import MetadataCheck, MetadataProblem, NotFound, Repository, RepositoryType

from stowage_yum.regeneration import pending_roots, regenerate_now
from stowage_yum.settings import yum_settings
from stowage_yum.state import roots, rpm_assets

_REPO = "{http://linux.duke.edu/metadata/repo}"
_COMMON = "{http://linux.duke.edu/metadata/common}"


def _read(repository: Repository, path: str) -> bytes | None:
    asset = repository.stowage.catalog.get_asset(repository.name, path)
    if asset is None:
        return None
    try:
        with repository.open(asset) as stream:
            return stream.read()
    except (NotFound, FileNotFoundError):
        return None  # the blob check reports the missing blob itself


def _primary_packages(data: bytes, root: str) -> set[tuple[str, str]]:
    text = zlib.decompressobj(31)
    xml_bytes = b""
    rest = data
    while rest:  # a multi-member gzip file: one decompressor per member
        xml_bytes += text.decompress(rest)
        rest = text.unused_data
        text = zlib.decompressobj(31) if rest else text
    found = set()
    for package in ElementTree.fromstring(xml_bytes).iter(f"{_COMMON}package"):
        checksum = package.find(f"{_COMMON}checksum")
        location = package.find(f"{_COMMON}location")
        if checksum is not None and location is not None:
            found.add((root + location.get("href", ""), (checksum.text or "").strip()))
    return found


def check_root(repository: Repository, root: str) -> str | None:
    """What is wrong with ``root``'s repodata, or None."""
    rpms = {(asset.path, asset.blob_sha256) for asset in rpm_assets(repository, root)}
    repomd_path = f"{root}repodata/repomd.xml"
    if repository.stowage.catalog.get_asset(repository.name, repomd_path) is None:
        return f"no repomd.xml for {len(rpms)} RPM(s)" if rpms else None
    repomd = _read(repository, repomd_path)
    if repomd is None:
        return None
    try:
        document = ElementTree.fromstring(repomd)
    except ElementTree.ParseError as error:
        return f"repomd.xml is not valid XML ({error})"
    primary: bytes | None = None
    for data in document.iter(f"{_REPO}data"):
        kind = data.get("type")
        href = (data.find(f"{_REPO}location").get("href", "") if data.find(f"{_REPO}location") is not None else "")
        checksum = (data.findtext(f"{_REPO}checksum") or "").strip()
        size = (data.findtext(f"{_REPO}size") or "").strip()
        asset = repository.stowage.catalog.get_asset(repository.name, root + href)
        if asset is None:
            return f"repomd.xml lists {href}, which is not in the repository"
        if asset.blob_sha256 != checksum or (size and int(size) != asset.size):
            return (f"repomd.xml lists {href} with sha256 {checksum} ({size} bytes); the repository's file has "
                    f"{asset.blob_sha256} ({asset.size} bytes)")
        if kind == "primary":
            primary = _read(repository, root + href)
    if primary is None:
        return "repomd.xml lists no readable primary metadata"
    try:
        listed = _primary_packages(primary, root)
    except (zlib.error, ElementTree.ParseError) as error:
        return f"primary metadata is unreadable ({error})"
    if listed == rpms:
        return None
    extra = sorted(path for path, _ in listed - rpms)
    absent = sorted(path for path, _ in rpms - listed)
    parts = [f"repodata lists {len(listed)} package(s), the repository has {len(rpms)} RPM(s)"]
    if absent:
        parts.append(f"not listed: {', '.join(absent[:3])}{' ...' if len(absent) > 3 else ''}")
    if extra:
        parts.append(f"listed but absent or changed: {', '.join(extra[:3])}{' ...' if len(extra) > 3 else ''}")
    return "; ".join(parts)


def check(repository: Repository) -> list[MetadataProblem]:
    if repository.type is not RepositoryType.HOSTED:
        return []
    pending = pending_roots(repository)
    problems = []
    depth = yum_settings(repository).repodata_depth
    for root in sorted(roots(repository)):
        if root in pending or root.count("/") != depth:
            continue
        message = check_root(repository, root)
        if message is not None:
            problems.append(MetadataProblem(path=f"{root}repodata/repomd.xml", message=message))
    return problems


def _root_of_repodata(path: str) -> str | None:
    head, marker, _ = path.rpartition("repodata/")
    return head if marker else None


def repair(repository: Repository, problems: list[MetadataProblem]) -> Mapping[str, str]:
    """Regenerate every root a problem points into (its RPMs are re-read: nothing kept is trusted)."""
    if repository.type is not RepositoryType.HOSTED:
        return {}
    done: dict[str, str] = {}
    regenerated: dict[str, Any] = {}
    for problem in problems:
        root = _root_of_repodata(problem.path)
        if root is None:
            continue
        if root not in regenerated:
            regenerated[root] = regenerate_now(repository, root, force=True)
        if regenerated[root]:
            done[problem.path] = f"regenerated the repodata of {root or '/'}"
    return done


def metadata_checks() -> list[MetadataCheck]:
    return [MetadataCheck(format="yum", name="yum-repodata", check=check, repair=repair)]
