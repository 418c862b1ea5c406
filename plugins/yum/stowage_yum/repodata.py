"""Assembling repodata (primary, filelists, other, repomd.xml) from kept per-package XML chunks.

The package chunks come from createrepo_c (``xml_dump``) and so do the document wrappers and
``repomd.xml``; this module only concatenates and compresses.

Incremental by segments: packages are spread over a power-of-two number of buckets by a hash of their
path; each bucket is compressed as its own gzip member, and a ``.xml.gz`` file is the concatenation of a
header member, the bucket members and a footer member (a multi-member gzip file, which zlib, libsolv,
librepo and createrepo_c all read as one stream). Adding one package recompresses one bucket only.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import zlib
from concurrent.futures import ThreadPoolExecutor
from typing import Iterable, Sequence

import createrepo_c as cr
from attrs import field, frozen

from stowage_yum.rpmfile import PackageRecord

KINDS = ("primary", "filelists", "other")
_NUMBER_MARK = 123456789
#: packages per bucket the segmenting aims at (a bucket is the unit of recompression).
BUCKET_TARGET = 64
MAX_BUCKETS = 4096


def _wrappers() -> dict[str, tuple[str, str]]:
    """Each document's (header with ``{count}`` placeholder, footer), written by createrepo_c itself."""
    found = {}
    with tempfile.TemporaryDirectory(prefix="stowage-yum-") as directory:
        for kind, cls in (("primary", cr.PrimaryXmlFile), ("filelists", cr.FilelistsXmlFile),
                          ("other", cr.OtherXmlFile)):
            path = os.path.join(directory, kind)
            handle = cls(path, cr.NO_COMPRESSION)
            handle.set_num_of_pkgs(_NUMBER_MARK)
            handle.close()
            with open(path, encoding="utf-8") as stream:
                text = stream.read()
            head, _, rest = text.partition(f'packages="{_NUMBER_MARK}">\n')
            found[kind] = (head + 'packages="{count}">\n', rest + "\n")
    return found


WRAPPERS = _wrappers()


def gzip_member(data: bytes, level: int = 6) -> bytes:
    """One deterministic gzip member (mtime 0), so equal input gives equal, checksum-named files."""
    compressor = zlib.compressobj(level, zlib.DEFLATED, 31)
    return compressor.compress(data) + compressor.flush()


def bucket_count(packages: int) -> int:
    count = 1
    while count * BUCKET_TARGET < packages and count < MAX_BUCKETS:
        count *= 2
    return count


def bucket_of(path: str, buckets: int) -> int:
    return int.from_bytes(hashlib.blake2b(path.encode(), digest_size=4).digest(), "big") % buckets


@frozen
class Segment:
    """One bucket's packages, compressed per document kind; ``key`` identifies its package set."""

    key: str
    count: int
    gz: dict[str, bytes]
    open_size: dict[str, int]


def segment_key(entries: Iterable[tuple[str, str]]) -> str:
    """Identity of a bucket's content: its (path, sha256, href) entries, sorted."""
    digest = hashlib.sha256()
    for entry in sorted(entries):
        digest.update("\0".join(entry).encode())
        digest.update(b"\n")
    return digest.hexdigest()


def build_segment(key: str, chunks: Sequence[tuple[str, str, str]]) -> Segment:
    """One bucket from its packages' (primary, filelists, other) XML chunks, in order."""
    gz, sizes = {}, {}
    for index, kind in enumerate(KINDS):
        data = "".join(chunk[index] for chunk in chunks).encode("utf-8")
        sizes[kind] = len(data)
        gz[kind] = gzip_member(data) if data else b""
    return Segment(key=key, count=len(chunks), gz=gz, open_size=sizes)


@frozen
class RepodataFile:
    kind: str
    filename: str
    data: bytes
    open_checksum: str
    open_size: int
    #: each segment's [start, end) in ``data`` (its gzip member), in segment order.
    spans: list[tuple[int, int]] = field(factory=list)

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.data).hexdigest()


def assemble(segments: Sequence[Segment]) -> list[RepodataFile]:
    """The three ``.xml.gz`` files (checksum-named) from the ordered segments."""
    total = sum(segment.count for segment in segments)
    members: dict[str, list[bytes]] = {}
    for kind in KINDS:
        head, foot = WRAPPERS[kind]
        members[kind] = [gzip_member(head.format(count=total).encode()),
                         *(segment.gz[kind] for segment in segments if segment.gz[kind]),
                         gzip_member(foot.encode())]
    # The open checksum needs every member inflated; zlib and hashlib release the GIL, so members are
    # inflated on two threads while the digests are fed in order.
    with ThreadPoolExecutor(2, thread_name_prefix="stowage-yum-inflate") as pool:
        files = []
        for kind in KINDS:
            data = b"".join(members[kind])
            spans, offset = [], len(members[kind][0])
            for segment in segments:
                spans.append((offset, offset + len(segment.gz[kind])))
                offset += len(segment.gz[kind])
            opened = hashlib.sha256()
            size = 0
            for chunk in pool.map(_inflate, members[kind]):
                opened.update(chunk)
                size += len(chunk)
            checksum = hashlib.sha256(data).hexdigest()
            files.append(RepodataFile(kind=kind, filename=f"{checksum}-{kind}.xml.gz", data=data,
                                      open_checksum=opened.hexdigest(), open_size=size, spans=spans))
    return files


def _inflate(member: bytes) -> bytes:
    return zlib.decompress(member, 31)


def open_digest(data: bytes) -> tuple[str, int]:
    """sha256 and size of a (multi-member) gzip file's uncompressed content."""
    digest = hashlib.sha256()
    size = 0
    while data:
        inflater = zlib.decompressobj(31)
        chunk = inflater.decompress(data)
        digest.update(chunk)
        size += len(chunk)
        data = inflater.unused_data
    return digest.hexdigest(), size


def repomd_xml(files: Sequence[RepodataFile], revision: int, *, timestamp: int | None = None) -> bytes:
    """``repomd.xml`` for ``files`` (written by createrepo_c's Repomd)."""
    repomd = cr.Repomd()
    repomd.set_revision(str(revision))
    for item in files:
        record = cr.RepomdRecord(item.kind, None)
        record.location_href = f"repodata/{item.filename}"
        record.checksum = item.checksum
        record.checksum_type = "sha256"
        record.checksum_open = item.open_checksum
        record.checksum_open_type = "sha256"
        record.size = len(item.data)
        record.size_open = item.open_size
        record.timestamp = timestamp if timestamp is not None else revision
        repomd.set_record(record)
    return repomd.xml_dump().encode("utf-8")


def build_repodata(records: Sequence[PackageRecord], revision: int) -> tuple[list[RepodataFile], bytes]:
    """Everything in one piece (one segment): for groups and small one-off builds."""
    ordered = sorted(records, key=lambda r: (r.name, r.arch, r.epoch, r.version, r.release, r.href))
    files = assemble([build_segment("", [(r.primary, r.filelists, r.other) for r in ordered])])
    return files, repomd_xml(files, revision)
