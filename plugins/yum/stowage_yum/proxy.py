"""Proxied RPMs checked against the checksum the cached upstream ``primary.xml`` lists for their location.

The engine asks :func:`expected_digests` before it caches a download. The repodata that indexes an RPM
is the nearest ``<root>repodata/repomd.xml`` above it that this proxy has cached; its ``primary`` file
(also cached: dnf reads it before any RPM) is parsed once per repomd body and kept as a map
``location -> (checksum type, checksum)``. No opinion (``{}``) when nothing is cached yet, when the package
is not listed, or when the checksum type is not sha256/sha512.
"""

from __future__ import annotations


import createrepo_c as cr

from stowage.plugin import Asset, LRUCache, Repository, RepositoryType

from stowage_yum.group import repomd_locations
from stowage_yum.rpmfile import local_blob

#: checksum types (hashlib names) that a proxied RPM is checked against.
CHECKED = ("sha256", "sha512")
#: parsed primary files kept per process (a big distribution's map is tens of MB).
MAX_PARSED = 4

Checksums = dict[str, tuple[str, str]]


class PrimaryChecksums:
    """Per-app cache of parsed primary files, keyed by the proxy and its repomd body."""

    def __init__(self) -> None:
        self._parsed = LRUCache(MAX_PARSED)

    def of(self, repository: Repository, root: str, repomd: Asset) -> Checksums:
        key = (repository.name, repomd.blob_sha256)
        found = self._parsed.get(key)
        if found is not None:
            return found
        checksums = _parse(repository, root, repomd)
        if checksums is None:
            return {}  # primary not cached yet: ask again next time
        self._parsed.put(key, checksums)
        return checksums


def expected_digests(repository: Repository, path: str) -> dict[str, str]:
    if repository.type is not RepositoryType.PROXY or not path.endswith(".rpm"):
        return {}
    catalog = repository.stowage.catalog
    directories = path.split("/")[:-1]
    for depth in range(len(directories), -1, -1):
        root = "".join(f"{part}/" for part in directories[:depth])
        repomd = catalog.get_asset(repository.name, f"{root}repodata/repomd.xml")
        if repomd is None:
            continue
        cache: PrimaryChecksums = repository.stowage.extension("yum-proxy-checksums", PrimaryChecksums)
        listed = cache.of(repository, root, repomd).get(path[len(root):])
        if listed is None or listed[0] not in CHECKED:
            return {}
        return {listed[0]: listed[1]}
    return {}


def _parse(repository: Repository, root: str, repomd: Asset) -> Checksums | None:
    with repository.open(repomd) as stream:
        locations = repomd_locations(stream.read())
    href = locations.get("primary")
    if href is None:
        return {}
    primary = repository.stowage.catalog.get_asset(repository.name, f"{root}{href}")
    if primary is None:
        return None
    checksums: Checksums = {}

    def add(package: "cr.Package") -> None:
        if package.location_href and package.pkgId:
            kind = (package.checksum_type or "").lower()
            checksums[package.location_href] = (kind, package.pkgId.lower())

    with local_blob(repository, primary.blob_sha256) as local:
        cr.xml_parse_primary(local, pkgcb=add, do_files=0)
    return checksums
