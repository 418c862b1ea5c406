"""Hosted yum repositories: RPM uploads and deletes, and incremental repodata regeneration.

State kept in the catalog (shared by every process and node), per repository ``R``:

- ``yum-pkg:R`` / ``<rpm path>``: the uploaded package's :class:`~stowage_yum.rpmfile.PackageRecord` (its
  createrepo_c XML chunks), written in the same transaction as the RPM's asset; extracted once, never
  re-read. Folded into the repodata (and deleted) by the next regeneration.
- ``yum-dirty`` / ``R/<root>``: a change marker (first and last change time, sequence number, the changed
  paths), written in that transaction too. Any process's regenerator picks it up once the burst is over.
- ``yum-seg:R`` / ``<root>|<buckets>|<i>``: each bucket's members (path, sha256) and their identity.
- ``yum-gen:R`` / ``<root>``: the published generation (revision, files, each bucket's byte span in each
  file) and the previous generations' files with the time they were retired (deleted after a grace period).

A regeneration looks only at the buckets the changed paths fall in: their packages' chunks come from the
bucket's gzip member in the published file (or the upload's record), every other bucket's member is cut
from the published files unchanged. No RPM is opened again and the catalog is not listed.

Regeneration of one root holds the catalog lease ``yum-regen/R/<root>``; ``repomd.xml`` is written last.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import tempfile
import threading
import time
import zlib
from typing import IO, Any, Iterator

from stowage.plugin import (Asset, AssetKind, BadRequest, Catalog, Component, InvalidContent, NotFound,
                            Repository, RepositoryType, Stowage, User)

from stowage_yum import extract, signing
from stowage_yum.repodata import (KINDS, Segment, assemble, bucket_count, bucket_of, build_segment, repomd_xml,
                                  segment_key)
from stowage_yum.rpmfile import PackageRecord, check_filename, read_rpm, verify_digests
from stowage_yum.settings import (DeployPolicy, is_repodata_path, root_of, rpm_root, signing_settings,
                                  yum_settings)

log = logging.getLogger(__name__)

DIRTY = "yum-dirty"
RPM_CONTENT_TYPE = "application/x-rpm"


def package_namespace(repository: str) -> str:
    return f"yum-pkg:{repository}"


def segment_namespace(repository: str) -> str:
    return f"yum-seg:{repository}"


def generation_namespace(repository: str) -> str:
    return f"yum-gen:{repository}"


def is_rpm(path: str) -> bool:
    return path.endswith(".rpm") and not is_repodata_path(path)


# -- change markers -------------------------------------------------------------------------------------
#: a marker lists at most this many changed paths; past that the next regeneration lists the catalog.
MAX_MARKED_PATHS = 1000


def mark_dirty(catalog: Catalog, repository: str, root: str, path: str | None = None) -> None:
    """Record that ``root`` of ``repository`` needs new repodata (call inside the change's transaction).

    :param path: the RPM that changed; None (or too many paths) makes the next run reconcile with a full
        listing of the catalog instead of applying the listed paths.
    """
    key = f"{repository}/{root}"
    now = time.time()
    with catalog.transaction():
        current = catalog.get_document(DIRTY, key) or {"first": now, "seq": 0, "paths": []}
        paths = current.get("paths")
        if paths is not None:
            if path is None or len(paths) >= MAX_MARKED_PATHS:
                paths = None
            elif path not in paths:
                paths = [*paths, path]
        catalog.put_document(DIRTY, key, {"first": current["first"], "last": now, "seq": current["seq"] + 1,
                                          "paths": paths})


def split_dirty_key(key: str) -> tuple[str, str]:
    repository, _, root = key.partition("/")
    return repository, root


# -- uploads and deletes --------------------------------------------------------------------------------
@contextlib.contextmanager
def spooled(stowage: Stowage, stream: IO[bytes], length: int | None) -> Iterator[tuple[str, int]]:
    """The request body in a temp file (validated before anything is stored): (path, size)."""
    directory = stowage.settings.data_path / "tmp"
    directory.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=directory, prefix="yum-upload-", suffix=".rpm") as handle:
        size = 0
        while length is None or size < length:
            chunk = stream.read(1024 * 1024 if length is None else min(1024 * 1024, length - size))
            if not chunk:
                break
            handle.write(chunk)
            size += len(chunk)
        handle.flush()
        if length is not None and size != length:
            raise InvalidContent(f"expected {length} bytes, received {size}")
        yield handle.name, size


@contextlib.contextmanager
def local_blob(repository: Repository, sha256: str) -> Iterator[str]:
    """A local file path holding the blob (the blob file itself where the store keeps one)."""
    store = repository.blob_store
    path = store.local_path(sha256)
    if path is not None:
        yield path
        return
    directory = repository.stowage.settings.data_path / "tmp"
    directory.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=directory, prefix="yum-blob-", suffix=".rpm") as handle, \
            store.open(sha256) as source:
        while chunk := source.read(1024 * 1024):
            handle.write(chunk)
        handle.flush()
        yield handle.name


def check_upload_path(repository: Repository, path: str) -> str | None:
    """Refuse what the deploy policy does not allow; the RPM's repodata root (None: not an RPM)."""
    if repository.type is not RepositoryType.HOSTED:
        raise BadRequest(f"repository {repository.name} is a {repository.type.value} repository; upload to a "
                         f"hosted yum repository")
    if not path or path.endswith("/"):
        raise BadRequest("an upload needs a file path, not a directory")
    if is_repodata_path(path):
        raise BadRequest(f"{path}: repodata is generated by the server; upload RPMs only")
    if path.endswith(".rpm"):
        return rpm_root(repository, path)
    if yum_settings(repository).deploy_policy is DeployPolicy.STRICT:
        raise BadRequest(f"{path}: repository {repository.name} has yum.deployPolicy STRICT and accepts only "
                         f"RPM packages (*.rpm)")
    return None


def store_upload(repository: Repository, path: str, stream: IO[bytes], length: int | None,
                 user: User | None) -> Asset:
    """Validate and store one uploaded file; an RPM's metadata is extracted and kept, its root marked."""
    root = check_upload_path(repository, path)
    uploader = {"uploader": user.user_id if user else None}
    if root is None:
        return repository.store(path, stream, length=length, attributes=uploader)
    repository.check_writable(path)
    with spooled(repository.stowage, stream, length) as (local, size):
        record = read_rpm(local, path[len(root):])
        check_filename(record, path)
        verify_digests(local, path)
        with open(local, "rb") as handle:
            blob = repository.blob_store.store(handle, length=size)
    return record_rpm(repository, path, root, blob, record, uploader)


def store_uploaded_blob(repository: Repository, path: str, blob: Any, user: User | None) -> Asset:
    """Like :func:`store_upload` for a file part the components API already committed as a blob."""
    root = check_upload_path(repository, path)
    uploader = {"uploader": user.user_id if user else None}
    if root is None:
        repository.check_writable(path)
        return repository.record(path, blob, attributes=uploader)
    repository.check_writable(path)
    with local_blob(repository, blob.sha256) as local:
        record = read_rpm(local, path[len(root):])
        check_filename(record, path)
        verify_digests(local, path)
    return record_rpm(repository, path, root, blob, record, uploader)


def record_rpm(repository: Repository, path: str, root: str, blob: Any, record: PackageRecord,
               attributes: dict[str, Any]) -> Asset:
    catalog = repository.stowage.catalog
    component = Component(repository=repository.name, format="yum", name=record.name,
                          version=f"{record.version}-{record.release}", group=path.rpartition("/")[0],
                          attributes={"epoch": record.epoch})
    attributes = {**attributes, "yum": {"name": record.name, "epoch": record.epoch, "version": record.version,
                                        "release": record.release, "arch": record.arch}}
    with catalog.transaction():
        asset = repository.record(path, blob, content_type=RPM_CONTENT_TYPE, component=component,
                                  attributes=attributes)
        catalog.put_document(package_namespace(repository.name), path, record.to_document())
        mark_dirty(catalog, repository.name, root, path)
    regenerator(repository.stowage).nudge()
    return asset


def delete_path(repository: Repository, path: str) -> Asset:
    """Delete one file; deleting an RPM marks its repodata for regeneration in the same transaction."""
    if is_repodata_path(path):
        raise BadRequest(f"{path}: repodata is generated by the server and cannot be deleted")
    catalog = repository.stowage.catalog
    root = root_of(path, yum_settings(repository).repodata_depth) if is_rpm(path) else None
    with catalog.transaction():
        asset = repository.delete(path)
        if root is not None:
            catalog.delete_document(package_namespace(repository.name), path)
            mark_dirty(catalog, repository.name, root, path)
    if root is not None:
        regenerator(repository.stowage).nudge()
    return asset


# -- generation -----------------------------------------------------------------------------------------
def rpm_assets(repository: Repository, root: str) -> list[Asset]:
    catalog = repository.stowage.catalog
    depth = yum_settings(repository).repodata_depth
    return [asset for asset in catalog.iter_assets(repository.name, prefix=root, kind=AssetKind.CONTENT)
            if is_rpm(asset.path) and root_of(asset.path, depth) == root]


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
             grace_seconds: float = 600.0, force: bool = False) -> int:
    """Bring ``root``'s repodata up to date with the catalog; returns the published revision.

    :param changed_paths: the RPM paths changed since the last generation (from the dirty marker); None
        lists the catalog instead. Call with the root's lease held (see :meth:`Regenerator.regenerate`).
    :param force: re-extract every package from its RPM (``rebuild-index``).
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
        _clean_retired(repository, root, published, grace_seconds)
        return published["revision"]
    files = assemble(segments)
    paths = [f"{root}repodata/{item.filename}" for item in files]
    revision = max(int(published["revision"]) + 1, int(time.time()))
    for item, path in zip(files, paths):
        existing = catalog.get_asset(repository.name, path)
        if existing is None or existing.blob_sha256 != item.checksum:
            repository.store(path, _bytes_stream(item.data), length=len(item.data), content_type="application/gzip",
                             kind=AssetKind.METADATA, server_managed=True)
    with catalog.transaction():
        for key in cached:
            if not key.startswith(prefix):
                catalog.delete_document(seg_ns, key)
        for i in changed:
            catalog.put_document(seg_ns, f"{prefix}{i}", _segment_document(segments[i], members[i]))
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
    _clean_retired(repository, root, published, grace_seconds)
    return revision


def publish_repomd(repository: Repository, root: str, repomd: bytes) -> None:
    """Write ``repomd.xml`` (and its detached signature, in the same transaction) — always last."""
    store = repository.blob_store
    blob = store.store(_bytes_stream(repomd), length=len(repomd))
    settings = signing_settings(repository)
    signature_blob = None
    if settings is not None:
        signature = signing.sign(repository.stowage, settings, repomd)
        signature_blob = store.store(_bytes_stream(signature), length=len(signature))
    with repository.stowage.catalog.transaction():
        if signature_blob is not None:
            repository.record(f"{root}repodata/repomd.xml.asc", signature_blob, content_type="text/plain",
                              kind=AssetKind.METADATA, server_managed=True)
        repository.record(f"{root}repodata/repomd.xml", blob, content_type="text/xml", kind=AssetKind.METADATA,
                          server_managed=True)


def _clean_retired(repository: Repository, root: str, published: dict[str, Any], grace_seconds: float) -> None:
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


def _bytes_stream(data: bytes) -> IO[bytes]:
    import io

    return io.BytesIO(data)


def roots(repository: Repository) -> set[str]:
    """Every repodata root that has RPMs or published repodata."""
    depth = yum_settings(repository).repodata_depth
    found = {root for root, _ in repository.stowage.catalog.list_documents(generation_namespace(repository.name))}
    for asset in rpm_assets(repository, ""):
        root = root_of(asset.path, depth)
        if root is not None:
            found.add(root)
    return found


# -- the regenerator: one per process, coordinated through the catalog -------------------------------
class Regenerator:
    """Regenerates marked roots once their burst of changes is over.

    Every process runs one; the catalog's dirty markers say what to do and the per-root lease makes sure
    one process does it. A marker is removed only if no change arrived during the regeneration.
    """

    def __init__(self, stowage: Stowage):
        self.stowage = stowage
        #: seconds without a new change before a root is regenerated (a burst coalesces into one run).
        self.delay = 2.0
        #: a root changing continuously is still regenerated at least this often.
        self.max_delay = 30.0
        #: seconds a previous generation's files stay fetchable.
        self.grace_seconds = 600.0
        self.poll_seconds = 0.5
        #: how often expired files of previous generations are looked for when nothing changes.
        self.sweep_seconds = 60.0
        self.lease_seconds = 300.0
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    # -- lifecycle --
    def start(self) -> None:
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="stowage-yum-regenerator", daemon=True)
                self._thread.start()

    def close(self) -> None:
        self._stop.set()
        self._wake.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=30)

    def nudge(self) -> None:
        self._wake.set()

    def _run(self) -> None:
        swept_at = time.monotonic()
        while not self._stop.is_set():
            try:
                self.process(due_only=True)
                if time.monotonic() - swept_at > self.sweep_seconds:
                    swept_at = time.monotonic()
                    self.sweep_retired()
            except Exception:  # the loop must survive a failed round; the marker stays for the next one
                log.exception("yum repodata regeneration round failed")
            self._wake.wait(self.poll_seconds)
            self._wake.clear()

    # -- work --
    def pending(self) -> list[tuple[str, dict[str, Any]]]:
        return self.stowage.catalog.list_documents(DIRTY)

    def process(self, *, due_only: bool, repository: str | None = None) -> int:
        """Regenerate marked roots (only those whose burst is over when ``due_only``); returns how many."""
        done = 0
        now = time.time()
        for key, marker in self.pending():
            name, root = split_dirty_key(key)
            if repository is not None and name != repository:
                continue
            if due_only and now - marker["last"] < self.delay and now - marker["first"] < self.max_delay:
                continue
            try:
                repo = self.stowage.repository(name)
            except NotFound:
                self.stowage.catalog.delete_document(DIRTY, key)
                continue
            if self.regenerate(repo, root, marker=marker):
                done += 1
        return done

    def regenerate(self, repository: Repository, root: str, *, marker: dict[str, Any] | None = None,
                   force: bool = False, wait: float = 0.0) -> bool:
        """Regenerate ``root`` under its lease; False if another process holds the lease."""
        catalog = self.stowage.catalog
        lease = f"yum-regen/{repository.name}/{root}"
        deadline = time.monotonic() + wait
        while not catalog.acquire_lease(lease, self.stowage.node_id, self.lease_seconds):
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.05)
        try:
            key = f"{repository.name}/{root}"
            if marker is None:
                marker = catalog.get_document(DIRTY, key)
            changed_paths = marker.get("paths") if marker is not None else []
            generate(repository, root, changed_paths=changed_paths, grace_seconds=self.grace_seconds, force=force)
            with catalog.transaction():
                current = catalog.get_document(DIRTY, key)
                if current is not None and marker is not None and current["seq"] == marker["seq"]:
                    catalog.delete_document(DIRTY, key)
        finally:
            catalog.release_lease(lease, self.stowage.node_id)
        return True

    def ensure(self, repository: Repository, root: str) -> None:
        """Publish repodata for ``root`` now if it has none (a new or empty repository)."""
        if root.count("/") != yum_settings(repository).repodata_depth:
            return
        if self.stowage.catalog.get_asset(repository.name, f"{root}repodata/repomd.xml") is None:
            self.regenerate(repository, root, wait=30.0)

    def rebuild(self, repository: Repository) -> None:
        """Re-extract every package's metadata and regenerate every root (``rebuild-index``)."""
        catalog = self.stowage.catalog
        namespace = package_namespace(repository.name)
        with catalog.transaction():
            for key, _ in catalog.list_documents(namespace):
                catalog.delete_document(namespace, key)
        depth = yum_settings(repository).repodata_depth
        targets = roots(repository)
        if depth == 0:
            targets.add("")
        for root in sorted(targets):
            if root.count("/") == depth:
                self.regenerate(repository, root, force=True, wait=60.0)
            else:  # yum.repodataDepth changed since this root was generated
                drop_root(repository, root)

    def sweep_retired(self) -> int:
        """Delete previous generations' files whose grace period is over (also without new changes)."""
        swept = 0
        for repository in self.stowage.repositories():
            if repository.format_name != "yum" or repository.type is not RepositoryType.HOSTED:
                continue
            cutoff = time.time() - self.grace_seconds
            for root, published in self.stowage.catalog.list_documents(generation_namespace(repository.name)):
                if not any(at <= cutoff for at in published.get("retired", {}).values()):
                    continue
                lease = f"yum-regen/{repository.name}/{root}"
                if not self.stowage.catalog.acquire_lease(lease, self.stowage.node_id, self.lease_seconds):
                    continue
                try:
                    current = self.stowage.catalog.get_document(generation_namespace(repository.name), root)
                    if current is not None:
                        _clean_retired(repository, root, current, self.grace_seconds)
                        swept += 1
                finally:
                    self.stowage.catalog.release_lease(lease, self.stowage.node_id)
        return swept


def regenerator(stowage: Stowage) -> Regenerator:
    return stowage.extension("yum-regenerator", lambda: Regenerator(stowage))

