"""Reading one RPM: its header (through createrepo_c), its digests (through rpm's own ``rpmkeys``) and its
primary/filelists/other XML chunks.

A package's metadata is extracted once, when it is uploaded, into a :class:`PackageRecord`; repodata is
then assembled from the kept chunks without opening the RPM again.

Digests are checked by ``rpmkeys --checksig --nosignature``, the check ``rpm -K`` and dnf make: the header
digests and the payload digest (or the legacy MD5 over header and payload), so a truncated or altered
payload never reaches primary.xml. rpm's Python bindings would do the same in process, but they are not on
PyPI (the ``rpm`` package there only finds the system's, which a virtualenv does not see); the command is
part of the ``rpm`` package the yum tests and dnf already need, and its verdict is rpm's own.
"""

from __future__ import annotations

import contextlib
import os
import posixpath
import re
import shutil
import subprocess
import tempfile
from typing import Any, Iterator, Mapping

import createrepo_c as cr
from attrs import asdict, frozen

from stowage.plugin import FormatUnavailable, InvalidContent, Repository

#: how many changelog entries other.xml keeps per package (createrepo_c's default).
CHANGELOG_LIMIT = 10
_ARCH = re.compile(r"^[A-Za-z0-9_]+$")
#: a digest ``rpmkeys -Kv`` reports that covers the payload (the header digests alone do not).
_PAYLOAD_DIGEST_OK = re.compile(r"^\s*(Payload SHA\d+( ALT)? digest|MD5 digest): OK$", re.MULTILINE)
#: seconds rpmkeys may take (it reads the whole package once: a few seconds per GB).
RPMKEYS_TIMEOUT = 900


@frozen
class PackageRecord:
    """What repodata needs of one package: its identity and its three XML chunks (``location_href`` set)."""

    pkgid: str
    name: str
    epoch: str
    version: str
    release: str
    arch: str
    href: str
    primary: str
    filelists: str
    other: str

    @property
    def nevra(self) -> tuple[str, str, str, str, str]:
        return (self.name, self.epoch or "0", self.version, self.release, self.arch)

    def to_document(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_document(cls, value: Mapping[str, Any]) -> "PackageRecord":
        return cls(**value)


def record_from_package(package: "cr.Package") -> PackageRecord:
    primary, filelists, other = cr.xml_dump(package)
    return PackageRecord(pkgid=package.pkgId, name=package.name, epoch=package.epoch or "0",
                         version=package.version, release=package.release, arch=package.arch,
                         href=package.location_href, primary=primary, filelists=filelists, other=other)


def read_rpm(local_path: str, href: str) -> PackageRecord:
    """Parse the RPM at ``local_path`` (listed at ``href``); a file that is not an RPM is InvalidContent."""
    try:
        package = cr.package_from_rpm(local_path, cr.SHA256, href, None, CHANGELOG_LIMIT)
    except (cr.CreaterepoCError, OSError, TypeError, ValueError) as error:
        reason = str(error).replace(local_path, posixpath.basename(href))
        raise InvalidContent(f"{posixpath.basename(href)} is not a valid RPM package: {reason}") from None
    if not package.name or not package.arch:
        raise InvalidContent(f"{posixpath.basename(href)} is not a valid RPM package: its header has no name or arch")
    return record_from_package(package)


def verify_digests(local_path: str, href: str) -> None:
    """rpm's own integrity check of the package at ``local_path``; :class:`InvalidContent` when it fails."""
    rpmkeys = shutil.which("rpmkeys")
    if rpmkeys is None:
        raise FormatUnavailable("cannot verify RPM digests: rpmkeys (Debian/RPM package rpm) is not installed "
                                "on the server")
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C", "HOME": "/nonexistent"}
    result = subprocess.run([rpmkeys, "--checksig", "--nosignature", "-v", "--", local_path], env=env,
                            stdin=subprocess.DEVNULL, capture_output=True, text=True, errors="replace",
                            timeout=RPMKEYS_TIMEOUT)
    filename = posixpath.basename(href)
    report = (result.stdout + result.stderr).replace(local_path, filename)
    if result.returncode != 0:
        bad = [line.strip() for line in report.splitlines() if "BAD" in line or "error" in line.lower()]
        raise InvalidContent(f"{filename} fails rpm's digest check (rpm -K): "
                             f"{'; '.join(bad) or report.strip() or 'digests not OK'}")
    if not _PAYLOAD_DIGEST_OK.search(report):
        raise InvalidContent(f"{filename} has no payload digest rpm could verify (rpm -K): {report.strip()}")


def check_filename(record: PackageRecord, path: str) -> None:
    """The file name must agree with the header: ``<name>-...<.arch>.rpm`` (source packages: ``.src.rpm``)."""
    filename = posixpath.basename(path)
    arch = record.arch
    if not filename.startswith(f"{record.name}-") or not filename.endswith(f".{arch}.rpm"):
        expected = f"{record.name}-{record.version}-{record.release}.{arch}.rpm"
        raise InvalidContent(f"{filename} does not match its RPM header ({record.name} {record.epoch}:"
                             f"{record.version}-{record.release} {arch}); expected a name like {expected}")
    if not _ARCH.match(arch):
        raise InvalidContent(f"{filename}: invalid architecture {arch!r} in its RPM header")


@contextlib.contextmanager
def local_blob(repository: Repository, sha256: str) -> Iterator[str]:
    """A local file path holding the blob, for createrepo_c and ``rpmkeys`` (which read files): the blob
    file itself where the store keeps one, else a temporary copy (an object store)."""
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
