"""Regenerating one repodata root incrementally: only the buckets the changed RPMs fall in are rebuilt.

A regeneration looks only at the buckets the changed paths fall in: their packages' chunks come from the
bucket's gzip member in the published file (or the upload's record), every other bucket's member is cut
from the published files unchanged. No RPM is opened again and the catalog is not listed. ``repomd.xml``
is written last. The caller holds the root's lease (core's background work, see
:mod:`stowage_yum.regeneration`); the state kept between runs is described in :mod:`stowage_yum.state`.
"""

from __future__ import annotations

import io
import re
import time
import zlib
from typing import Any, Callable

from stowage.plugin import AssetKind, Repository

from stowage_yum import extract, signing
from stowage_yum.repodata import (KINDS, Segment, assemble, bucket_count, bucket_of, build_segment, repomd_xml,
                                  segment_key)
from stowage_yum.rpmfile import local_blob, read_rpm
from stowage_yum.settings import root_of, signing_settings, yum_settings
from stowage_yum.state import (generation_namespace, is_rpm, package_namespace, rpm_assets,
                               segment_namespace)


def drop_root(repository: Repository, root: str) -> None:
    """Remove a root's repodata and kept state (its directory is no longer at the repodata depth)."""
    catalog = repository.stowage.catalog
    published = catalog.get_document(generation_namespace(repository.name), root) or {}
    with catalog.transaction():
        for path in [*published.get("files", []), *published.get("retired", {}),
                     f"{root}repodata/repomd.xml", f"{root}repodata/repomd.xml.asc"]:
            catalog.delete_asset(repository.name, path)
        catalog.delete_document(generation_namespace(repository.name), root)
        for key, _ in catalog.list_documents(segment_namespace(repository.name), prefix=f"{root}|"):
            catalog.delete_document(segment_namespace(repository.name), key)


def _segment_document(segment: Segment, members: list[tuple[str, str]]) -> dict[str, Any]:
    return {"key": segment.key, "members": [list(m) for m in members], "open": segment.open_size}


def _previous_files(repository: Repository, published: dict[str, Any]) -> dict[str, bytes] | None:
    """The published primary/filelists/other (.xml.gz) bytes, whose bucket spans the generation doc keeps."""
    if "spans" not in published or len(published["files"]) != len(KINDS):
        return None
    catalog = repository.stowage.catalog
    found = {}
    for kind, path in zip(KINDS, published["files"]):
        asset = catalog.get_asset(repository.name, path)
        if asset is None:
            return None
        with repository.open(asset) as stream:
            found[kind] = stream.read()
    return found


def _bucket_gz(previous: dict[str, bytes], published: dict[str, Any], i: int) -> dict[str, bytes]:
    """Bucket ``i``'s gzip member of each document, cut from the published files."""
    return {kind: previous[kind][slice(*published["spans"][kind][i])] for kind in KINDS}


_CHUNK_START = re.compile(r"^<package ", re.M)


def _chunks_of(value: dict[str, Any], gz: dict[str, bytes]) -> dict[tuple[str, str], tuple[str, str, str]]:
    """A kept segment's per-package (primary, filelists, other) chunks, by (path, sha256).

    The segment is the concatenation of createrepo_c's package chunks in member order, each starting a
    line with ``<package `` (a ``<`` inside text is always escaped), so splitting there gives them back.
    """
    members = [tuple(m) for m in value["members"]]
    split = []
    for kind in KINDS:
        data = gz[kind]
        text = zlib.decompress(data, 31).decode("utf-8") if data else ""
        starts = [m.start() for m in _CHUNK_START.finditer(text)]
        if len(starts) != len(members):
            return {}
        split.append([text[a:b] for a, b in zip(starts, [*starts[1:], len(text)])])
    return {member: (split[0][i], split[1][i], split[2][i]) for i, member in enumerate(members)}


class _Records:
    """Where a regeneration finds each package's chunks: a kept segment, the upload's record, or the RPM."""

    def __init__(self, repository: Repository, root: str, *, reextract: bool):
        self.repository = repository
        self.root = root
        self.reextract = reextract
        self.chunks: dict[tuple[str, str], tuple[str, str, str]] = {}
        self.kept: dict[str, Any] | None = None
        self.used_documents: list[str] = []

    def extract_all(self, members: list[tuple[str, str]]) -> None:
        """Read many RPMs at once, in worker processes (full rebuilds)."""
        store = self.repository.blob_store
        if len(members) < extract.PARALLEL_THRESHOLD:
            return
        # blobs that are not local files (an object store) are left to get(), which reads them one by one
        local = [(member, store.local_path(member[1])) for member in members]  # member: (path, sha256)
        members = [member for member, blob_file in local if blob_file is not None]
        items = [(blob_file, member[0][len(self.root):]) for member, blob_file in local if blob_file is not None]
        for member, result in zip(members, extract.extract_parallel(items)):
            if isinstance(result, tuple):
                self.chunks[member] = result
            # an error string: get() retries that one in-process and reports it properly

    def add_segment(self, value: dict[str, Any], gz: dict[str, bytes]) -> None:
        if not self.reextract:
            self.chunks.update(_chunks_of(value, gz))

    def prefetch_documents(self) -> None:
        catalog = self.repository.stowage.catalog
        self.kept = dict(catalog.list_documents(package_namespace(self.repository.name), prefix=self.root))

    def get(self, path: str, sha256: str) -> tuple[str, str, str]:
        found = self.chunks.get((path, sha256))
        if found is not None:
            return found
        href = path[len(self.root):]
        value = None
        if not self.reextract:
            if self.kept is not None:
                value = self.kept.get(path)
            else:
                value = self.repository.stowage.catalog.get_document(package_namespace(self.repository.name), path)
        if value is not None and value.get("pkgid") == sha256 and value.get("href") == href:
            self.used_documents.append(path)
            return value["primary"], value["filelists"], value["other"]
        with local_blob(self.repository, sha256) as local:
            record = read_rpm(local, href)
        return record.primary, record.filelists, record.other


def _incremental_members(repository: Repository, root: str, cached: dict[str, Any], buckets: int | None,
                         changed_paths: list[str] | None) -> tuple[list[list[tuple[str, str]]], set[int]] | None:
    """Each bucket's (path, sha256) members: the kept segments' with the changed paths re-read from the
    catalog, and which buckets that touched; None without kept state or when a full listing is asked for."""
    if changed_paths is None or buckets is None:
        return None
    members: list[list[tuple[str, str]]] = []
    for i in range(buckets):
        value = cached.get(f"{root}|{buckets}|{i}")
        if value is None:
            return None
        members.append([(path, sha) for path, sha in value["members"]])
    catalog = repository.stowage.catalog
    depth = yum_settings(repository).repodata_depth
    touched: set[int] = set()
    for path in changed_paths:
        i = bucket_of(path, buckets)
        bucket = [member for member in members[i] if member[0] != path]
        asset = catalog.get_asset(repository.name, path)
        if asset is not None and is_rpm(path) and root_of(path, depth) == root:
            bucket.append((path, asset.blob_sha256))
            bucket.sort()
        if bucket != members[i]:
            members[i] = bucket
            touched.add(i)
    return members, touched


def generate(repository: Repository, root: str, *, changed_paths: list[str] | None = None,
             grace_seconds: float = 600.0, force: bool = False,
             before_publish: Callable[[], None] | None = None) -> int:
    """Bring ``root``'s repodata up to date with the catalog; returns the published revision.

    :param changed_paths: the RPM paths changed since the last generation (from the dirty marker); None
        lists the catalog instead. Call with the root's lease held (see :mod:`stowage_yum.regeneration`).
    :param force: re-extract every package from its RPM (``rebuild-index``).
    :param before_publish: called before ``repomd.xml`` is written; raises to publish nothing (the run
        lost its lease).
    """
    catalog = repository.stowage.catalog
    gen_ns = generation_namespace(repository.name)
    seg_ns = segment_namespace(repository.name)
    published = catalog.get_document(gen_ns, root) or {"revision": 0, "files": [], "retired": {}}
    cached = dict(catalog.list_documents(seg_ns, prefix=f"{root}|"))
    previous = None if force else _previous_files(repository, published)
    old_buckets = published.get("buckets") if previous is not None else None
    incremental = None if force else _incremental_members(repository, root, cached, old_buckets, changed_paths)
    if incremental is not None and bucket_count(sum(len(b) for b in incremental[0])) == old_buckets:
        # The usual case: only the buckets the changed paths fall in are looked at.
        buckets = old_buckets
        members, touched = incremental
        prefix = f"{root}|{buckets}|"
        keys = {i: segment_key(members[i]) for i in touched}
        changed = sorted(i for i in touched if cached[f"{prefix}{i}"]["key"] != keys[i])
    else:
        if incremental is not None:
            entries = {path: sha for bucket in incremental[0] for path, sha in bucket}
        else:
            entries = {asset.path: asset.blob_sha256 for asset in rpm_assets(repository, root)}
        buckets = bucket_count(len(entries))
        members = [[] for _ in range(buckets)]
        for path in sorted(entries):
            members[bucket_of(path, buckets)].append((path, entries[path]))
        prefix = f"{root}|{buckets}|"
        keys = {i: segment_key(bucket) for i, bucket in enumerate(members)}
        changed = [i for i in range(buckets)
                   if force or previous is None or cached.get(f"{prefix}{i}", {}).get("key") != keys[i]]
    records = _Records(repository, root, reextract=force)
    if changed and not force:
        if previous is not None and old_buckets == buckets:
            for i in changed:
                records.add_segment(cached[f"{prefix}{i}"], _bucket_gz(previous, published, i))
        elif previous is not None:  # the bucket count changed: every package moves; reuse all kept chunks
            old_prefix = f"{root}|{old_buckets}|"
            for i in range(old_buckets):
                if f"{old_prefix}{i}" in cached:
                    records.add_segment(cached[f"{old_prefix}{i}"], _bucket_gz(previous, published, i))
        if sum(len(members[i]) for i in changed) > 256:
            records.prefetch_documents()
    if force:
        records.extract_all([member for i in changed for member in members[i]])
    segments: list[Segment] = []
    changed_set = set(changed)
    for i, bucket in enumerate(members):
        if i in changed_set:
            segments.append(build_segment(keys[i], [records.get(path, sha) for path, sha in bucket]))
        else:
            segments.append(Segment(key=cached[f"{prefix}{i}"]["key"], count=len(members[i]),
                                    open_size=cached[f"{prefix}{i}"]["open"], gz=_bucket_gz(previous, published, i)))
    repomd_path = f"{root}repodata/repomd.xml"
    if not changed and old_buckets == buckets and catalog.get_asset(repository.name, repomd_path) is not None:
        clean_retired(repository, root, published, grace_seconds)
        return published["revision"]
    files = assemble(segments)
    paths = [f"{root}repodata/{item.filename}" for item in files]
    revision = max(int(published["revision"]) + 1, int(time.time()))
    for item, path in zip(files, paths):
        existing = catalog.get_asset(repository.name, path)
        if existing is None or existing.blob_sha256 != item.checksum:
            repository.store(path, io.BytesIO(item.data), length=len(item.data), content_type="application/gzip",
                             kind=AssetKind.METADATA, server_managed=True)
    with catalog.transaction():
        for key in cached:
            if not key.startswith(prefix):
                catalog.delete_document(seg_ns, key)
        for i in changed:
            catalog.put_document(seg_ns, f"{prefix}{i}", _segment_document(segments[i], members[i]))
    if before_publish is not None:
        before_publish()
    publish_repomd(repository, root, repomd_xml(files, revision))
    now = time.time()
    retired = dict(published.get("retired", {}))
    for path in published["files"]:
        if path not in paths:
            retired.setdefault(path, now)
    for path in paths:
        retired.pop(path, None)
    published = {"revision": revision, "files": paths, "retired": retired, "buckets": buckets,
                 "spans": {item.kind: item.spans for item in files}}
    with catalog.transaction():
        catalog.put_document(gen_ns, root, published)
        # The upload-time records are in the kept segments now.
        for path in records.used_documents:
            catalog.delete_document(package_namespace(repository.name), path)
    clean_retired(repository, root, published, grace_seconds)
    return revision


def publish_repomd(repository: Repository, root: str, repomd: bytes) -> None:
    """Write ``repomd.xml`` (and its detached signature, in the same transaction) — always last."""
    store = repository.blob_store
    blob = store.store(io.BytesIO(repomd), length=len(repomd))
    settings = signing_settings(repository)
    signature_blob = None
    if settings is not None:
        signature = signing.sign(repository.stowage, settings, repomd)
        signature_blob = store.store(io.BytesIO(signature), length=len(signature))
    with repository.stowage.catalog.transaction():
        if signature_blob is not None:
            repository.record(f"{root}repodata/repomd.xml.asc", signature_blob, content_type="text/plain",
                              kind=AssetKind.METADATA, server_managed=True)
        repository.record(f"{root}repodata/repomd.xml", blob, content_type="text/xml", kind=AssetKind.METADATA,
                          server_managed=True)


def clean_retired(repository: Repository, root: str, published: dict[str, Any], grace_seconds: float) -> None:
    catalog = repository.stowage.catalog
    cutoff = time.time() - grace_seconds
    expired = [path for path, at in published.get("retired", {}).items() if at <= cutoff]
    if not expired:
        return
    with catalog.transaction():
        for path in expired:
            if path not in published["files"]:
                catalog.delete_asset(repository.name, path)
            published["retired"].pop(path, None)
        catalog.put_document(generation_namespace(repository.name), root, published)
