"""Distribution files: filename parsing (PEP 427 wheels, PEP 625 and legacy sdists), where they are stored,
and validation of an upload against its own core metadata.

Validation reads the archive from the blob store (never from memory): the archive must open and check out
(CRC of every wheel member, every sdist member decompressed), and its core metadata (``METADATA`` /
``PKG-INFO``) must name the same project and version as the filename and the upload form.
"""

from __future__ import annotations

import gzip
import posixpath
import tarfile
import zipfile
import zlib
from typing import IO

from attrs import frozen
from packaging.metadata import parse_email
from packaging.utils import (InvalidSdistFilename, InvalidWheelFilename, NormalizedName, canonicalize_name,
                             parse_sdist_filename, parse_wheel_filename)
from packaging.version import InvalidVersion, Version

from stowage.plugin import InvalidContent

WHEEL = "bdist_wheel"
SDIST = "sdist"
METADATA_SUFFIX = ".metadata"
#: the largest core metadata file accepted (PyPI's own limit on descriptions is far smaller).
MAX_METADATA_BYTES = 16 * 1024 * 1024


@frozen
class DistFilename:
    """A parsed distribution filename."""

    filename: str
    project: NormalizedName
    version: Version
    filetype: str

    @property
    def path(self) -> str:
        return file_path(self.project, self.filename, self.version)


@frozen
class CoreMetadata:
    """What an upload's own metadata says."""

    name: str
    version: Version
    requires_python: str | None
    raw: bytes


def parse_filename(filename: str) -> DistFilename:
    """Parse a wheel or sdist filename; :class:`InvalidContent` says why one does not parse."""
    if not filename or "/" in filename or "\\" in filename or filename.startswith("."):
        raise InvalidContent(f"invalid distribution filename {filename!r}")
    try:
        if filename.endswith(".whl"):
            name, version, _, _ = parse_wheel_filename(filename)
            return DistFilename(filename, name, version, WHEEL)
        if filename.endswith((".tar.gz", ".zip")):
            name, version = parse_sdist_filename(filename)
            return DistFilename(filename, name, version, SDIST)
    except (InvalidWheelFilename, InvalidSdistFilename, InvalidVersion) as error:
        raise InvalidContent(f"invalid distribution filename {filename!r}: {error}") from None
    raise InvalidContent(f"invalid distribution filename {filename!r}: only wheels (.whl, PEP 427) and "
                         f"source distributions (.tar.gz, PEP 625; legacy .zip) are accepted")


def file_path(project: str, filename: str, version: Version | str | None = None) -> str:
    """The repository path of a distribution file: ``packages/<normalized name>/<version>/<filename>``.

    Hosted and proxy repositories use the same layout, so a group finds a file at one path in any member.
    """
    if version is None:
        try:
            version = parse_filename(filename).version
        except InvalidContent:
            version = "unknown"
    return f"packages/{canonicalize_name(project)}/{version}/{filename}"


def split_file_path(path: str) -> tuple[NormalizedName, str] | None:
    """(project, filename) of a ``packages/...`` path, or None when it is not one."""
    parts = path.split("/")
    if len(parts) != 4 or parts[0] != "packages" or not parts[3]:
        return None
    return canonicalize_name(parts[1]), parts[3]


def read_core_metadata(stream: IO[bytes], dist: DistFilename) -> CoreMetadata:
    """Open the archive, check it, and return its core metadata; :class:`InvalidContent` otherwise."""
    try:
        if dist.filename.endswith(".tar.gz"):
            raw = _sdist_tar_metadata(stream)
        elif dist.filetype == SDIST:
            raw = _zip_metadata(stream, dist, "PKG-INFO")
        else:
            raw = _zip_metadata(stream, dist, "METADATA")
    except InvalidContent:
        raise
    except (zipfile.BadZipFile, tarfile.TarError, gzip.BadGzipFile, EOFError, OSError, ValueError, zlib.error) as error:
        kind = "wheel" if dist.filetype == WHEEL else "source distribution"
        raise InvalidContent(f"{dist.filename} is not a valid {kind} (truncated or corrupt archive: "
                             f"{error})") from None
    return parse_core_metadata(raw, dist.filename)


def parse_core_metadata(raw: bytes, filename: str) -> CoreMetadata:
    fields, _ = parse_email(raw)
    name, version = fields.get("name"), fields.get("version")
    if not name or not version:
        raise InvalidContent(f"{filename}: its core metadata has no Name or no Version")
    try:
        parsed_version = Version(version)
    except InvalidVersion:
        raise InvalidContent(f"{filename}: its core metadata Version {version!r} is not a valid PEP 440 "
                             f"version") from None
    return CoreMetadata(name=name, version=parsed_version, requires_python=fields.get("requires_python"), raw=raw)


def _zip_metadata(stream: IO[bytes], dist: DistFilename, member: str) -> bytes:
    with zipfile.ZipFile(stream) as archive:
        names = archive.namelist()
        if dist.filetype == WHEEL:
            candidates = [n for n in names if n.count("/") == 1 and n.endswith(".dist-info/METADATA")]
            candidates = [n for n in candidates if _dist_info_matches(n.split("/")[0], dist)] or candidates
            if not candidates:
                raise InvalidContent(f"{dist.filename} is not a valid wheel: it has no .dist-info/METADATA")
            if len(candidates) > 1:
                raise InvalidContent(f"{dist.filename} is not a valid wheel: it has several .dist-info "
                                     f"directories")
            dist_info = candidates[0].split("/")[0]
            for required in ("WHEEL", "RECORD"):
                if f"{dist_info}/{required}" not in names:
                    raise InvalidContent(f"{dist.filename} is not a valid wheel: {dist_info}/{required} is missing")
            path = candidates[0]
        else:
            candidates = [n for n in names if n.count("/") == 1 and n.endswith("/PKG-INFO")]
            if not candidates:
                raise InvalidContent(f"{dist.filename} is not a valid source distribution: it has no "
                                     f"<name>-<version>/PKG-INFO")
            path = sorted(candidates)[0]
        bad = archive.testzip()  # reads every member and checks its CRC: catches corrupt content
        if bad is not None:
            raise InvalidContent(f"{dist.filename} is corrupt: member {bad} fails its CRC check")
        info = archive.getinfo(path)
        if info.file_size > MAX_METADATA_BYTES:
            raise InvalidContent(f"{dist.filename}: {path} is larger than {MAX_METADATA_BYTES} bytes")
        return archive.read(path)


def _dist_info_matches(directory: str, dist: DistFilename) -> bool:
    stem = directory.removesuffix(".dist-info")
    name, _, version = stem.rpartition("-")
    try:
        return canonicalize_name(name) == dist.project and Version(version) == dist.version
    except InvalidVersion:
        return False


def _sdist_tar_metadata(stream: IO[bytes]) -> bytes:
    found: bytes | None = None
    # Streaming mode: members are read in order; afterwards the gzip stream is drained to its end, so its
    # CRC and length are checked and a truncated or corrupt archive fails here rather than being accepted.
    compressed = gzip.GzipFile(fileobj=stream, mode="rb")
    with tarfile.open(fileobj=compressed, mode="r|") as archive:
        for member in archive:
            if member.isfile() and posixpath.normpath(member.name).count("/") == 1 and member.name.endswith("/PKG-INFO"):
                if member.size > MAX_METADATA_BYTES:
                    raise InvalidContent(f"{member.name} is larger than {MAX_METADATA_BYTES} bytes")
                extracted = archive.extractfile(member)
                data = extracted.read() if extracted else b""
                if found is None:
                    found = data
            elif member.isfile():
                extracted = archive.extractfile(member)
                while extracted and extracted.read(1024 * 1024):
                    pass
    while compressed.read(1024 * 1024):
        pass
    if found is None:
        raise InvalidContent("not a valid source distribution: it has no <name>-<version>/PKG-INFO")
    return found
