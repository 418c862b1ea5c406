"""Group yum repositories: the members' repodata merged into one consistent set.

- Members in order; the first member that lists a package NEVRA wins; every version is kept (unlike
  ``mergerepo_c`` without ``--all``).
- Every ``location_href`` listed is downloadable through the group: a package whose path another,
  already listed package occupies is left out (the group would serve the other file for it).
- Dependency-confusion guard: a name a hosted member has is not extended by proxy members unless it
  matches ``group.allowProxyNames``.
- A generation is keyed on the members' ``repomd.xml`` contents (resolving them revalidates proxy
  members as their ``metadataMaxAge`` says), so it is rebuilt when a member changes and cached otherwise.
  Output is deterministic (revision = the newest member revision, gzip without timestamps), so every
  process and node serves the same files for the same members.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import tempfile
import threading
from typing import Sequence

import createrepo_c as cr
from attrs import frozen

from stowage.plugin import AssetKind, NameGuard, NotFound, Repository, RepositoryType, StowageError

from stowage_yum import signing
from stowage_yum.regeneration import ensure
from stowage_yum.repodata import KINDS, RepodataFile, build_repodata
from stowage_yum.rpmfile import PackageRecord, record_from_package
from stowage_yum.settings import YumSigningSettings, signing_settings

log = logging.getLogger(__name__)

#: generations per (group, root) kept in memory, so a client that read an older repomd.xml still gets
#: the files it names while it downloads them.
KEPT_GENERATIONS = 4
_REVISION = re.compile(r"<revision>\s*(\d+)\s*</revision>")


@frozen
class MemberRepodata:
    name: str
    origin: str
    key: str
    repomd: bytes
    files: dict[str, bytes]  # location_href -> bytes, for primary/filelists/other


@frozen
class Generation:
    key: tuple
    repomd: bytes
    files: dict[str, RepodataFile]
    revision: int

    def file(self, name: str) -> RepodataFile | None:
        return self.files.get(name)


class GroupGenerations:
    """Per-process cache of merged generations (a cache only: keyed on the members' current repodata)."""

    def __init__(self) -> None:
        self._generations: dict[tuple[str, str], list[Generation]] = {}
        self._locks: dict[tuple[str, str], threading.Lock] = {}
        self._lock = threading.Lock()
        self._signatures: dict[tuple[str, str], bytes] = {}

    def _key_lock(self, key: tuple[str, str]) -> threading.Lock:
        with self._lock:
            return self._locks.setdefault(key, threading.Lock())

    def current(self, group: Repository, root: str) -> Generation | None:
        """The generation for the members' present repodata (None: no member has repodata there)."""
        members = member_repodata(self, group, root)
        if not members:
            return None
        # The group's own settings (members, allowProxyNames) change the merge as much as the members do.
        key = (repr(group.config.group), *((m.name, m.key) for m in members))
        cache_key = (group.name, root)
        with self._key_lock(cache_key):
            for generation in self._generations.get(cache_key, []):
                if generation.key == key:
                    return generation
            generation = merge(group, key, members)
            kept = self._generations.setdefault(cache_key, [])
            kept.insert(0, generation)
            del kept[KEPT_GENERATIONS:]
            return generation

    def signature(self, group: Repository, generation: Generation, settings: YumSigningSettings) -> bytes:
        key = (group.name, hashlib.sha256(generation.repomd).hexdigest())
        with self._lock:
            found = self._signatures.get(key)
        if found is None:
            found = signing.sign(group.stowage, settings, generation.repomd)
            with self._lock:
                self._signatures[key] = found
                while len(self._signatures) > 64:
                    self._signatures.pop(next(iter(self._signatures)))
        return found

    def find_file(self, group: Repository, root: str, name: str) -> RepodataFile | None:
        for generation in self._generations.get((group.name, root), []):
            found = generation.file(name)
            if found is not None:
                return found
        return None


def group_generations(group: Repository) -> GroupGenerations:
    return group.stowage.extension("yum-group-generations", GroupGenerations)


def member_repodata(cache: GroupGenerations, group: Repository, root: str) -> list[MemberRepodata]:
    found = []
    for member in group.resolver.members():  # type: ignore[attr-defined]
        try:
            data = _one_member(cache, member, root)
        except StowageError as error:  # one broken member must not take the group down
            log.warning("yum group %s: member %s skipped: %s", group.name, member.name, error.message)
            continue
        if data is not None:
            found.append(data)
    return found


def _one_member(cache: GroupGenerations, member: Repository, root: str) -> MemberRepodata | None:
    if member.type is RepositoryType.GROUP:
        generation = cache.current(member, root)
        if generation is None:
            return None
        files = {f"repodata/{item.filename}": item.data for item in generation.files.values()}
        return MemberRepodata(name=member.name, origin=member.resolver.origin(), key=repr(generation.key),
                              repomd=generation.repomd, files=files)
    if member.type is RepositoryType.HOSTED:
        ensure(member, root)
    asset = member.resolver.resolve(f"{root}repodata/repomd.xml", AssetKind.METADATA)
    if asset is None:
        return None
    with member.open(asset) as stream:
        repomd = stream.read()
    files = {}
    for kind, href in repomd_locations(repomd).items():
        data_asset = member.resolver.resolve(f"{root}{href}", AssetKind.CONTENT)
        if data_asset is None:
            raise NotFound(f"{member.name}: {root}{href} named by repomd.xml is missing")
        with member.open(data_asset) as stream:
            files[href] = stream.read()
    return MemberRepodata(name=member.name, origin=member.resolver.origin(), key=asset.blob_sha256,
                          repomd=repomd, files=files)


def repomd_locations(repomd: bytes) -> dict[str, str]:
    with tempfile.NamedTemporaryFile(suffix="-repomd.xml") as handle:
        handle.write(repomd)
        handle.flush()
        parsed = cr.Repomd(handle.name)
    return {record.type: record.location_href for record in parsed.records if record.type in KINDS}


def _packages(member: MemberRepodata) -> list["cr.Package"]:
    with tempfile.TemporaryDirectory(prefix="stowage-yum-group-") as directory:
        os.makedirs(os.path.join(directory, "repodata"))
        with open(os.path.join(directory, "repodata", "repomd.xml"), "wb") as handle:
            handle.write(member.repomd)
        for href, data in member.files.items():
            target = os.path.normpath(os.path.join(directory, href))
            if not target.startswith(directory + os.sep):
                raise NotFound(f"{member.name}: repomd.xml names a file outside the repository: {href}")
            os.makedirs(os.path.dirname(target), exist_ok=True)
            with open(target, "wb") as handle:
                handle.write(data)
        metadata = cr.Metadata()
        metadata.locate_and_load_xml(directory)
        packages = [metadata.get(key) for key in metadata.keys()]
    return sorted(packages, key=lambda p: (p.name, p.arch, p.epoch or "0", p.version, p.release,
                                           p.location_href))


def merge(group: Repository, key: tuple, members: Sequence[MemberRepodata]) -> Generation:
    records: list[PackageRecord] = []
    seen: set[tuple[str, ...]] = set()
    hrefs: dict[str, str] = {}
    revision = 0
    packages = [_packages(member) for member in members]
    # core's dependency-confusion guard: a name any hosted member holds is not extended by a proxy
    # member (downloads through the group apply the same rule, see YumHandler.package_name)
    guard = NameGuard(frozenset(package.name for member, listed in zip(members, packages)
                                if member.origin == "hosted" for package in listed),
                      tuple(group.config.group.allow_proxy_names), str)
    for member, listed in zip(members, packages):
        match = _REVISION.search(member.repomd.decode("utf-8", "replace"))
        if match:
            revision = max(revision, int(match.group(1)))
        for package in listed:
            if member.origin != "hosted" and not guard.allows_proxy(package.name):
                continue
            nevra = (package.name, package.epoch or "0", package.version, package.release, package.arch)
            if nevra in seen:
                continue
            href = package.location_href
            if hrefs.get(href, package.pkgId) != package.pkgId:
                log.warning("yum group %s: %s of %s left out: %s already serves another package", group.name,
                            href, member.name, href)
                continue
            package.location_base = None
            seen.add(nevra)
            hrefs[href] = package.pkgId
            records.append(record_from_package(package))
    files, repomd = build_repodata(records, revision)
    return Generation(key=key, repomd=repomd, files={item.filename: item for item in files}, revision=revision)


def group_file(group: Repository, root: str, name: str) -> tuple[bytes, str] | None:
    """(bytes, content type) of the group's ``<root>repodata/<name>``, or None."""
    cache = group_generations(group)
    if name == "repomd.xml.asc":
        settings = signing_settings(group)
        generation = cache.current(group, root) if settings is not None else None
        if generation is None:
            return None
        return cache.signature(group, generation, settings), "text/plain"
    if name != "repomd.xml":
        found = cache.find_file(group, root, name)
        if found is not None:
            return found.data, "application/gzip"
    generation = cache.current(group, root)
    if generation is None:
        return None
    if name == "repomd.xml":
        return generation.repomd, "text/xml"
    found = generation.file(name)
    return (found.data, "application/gzip") if found is not None else None

