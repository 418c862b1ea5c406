"""The yum format's repository settings (Nexus field names: ``yum.*`` and ``yumSigning.*``)."""

from __future__ import annotations

import enum
from typing import Any

import attrs
from attrs import field, frozen

from stowage.plugin import BadRequest, Repository

MAX_DEPTH = 5


class DeployPolicy(enum.Enum):
    #: only RPM files (validated) may be uploaded.
    STRICT = "STRICT"
    #: any file may be stored; RPMs are still validated and indexed.
    PERMISSIVE = "PERMISSIVE"


def _check_depth(instance: Any, attribute: attrs.Attribute, value: int) -> None:
    if not 0 <= value <= MAX_DEPTH:
        raise ValueError(f"yum.repodataDepth must be between 0 and {MAX_DEPTH}, not {value}")


@frozen
class YumSettings:
    #: repodata is generated in each directory this many levels below the root, for the RPMs beneath it.
    repodata_depth: int = field(default=0, validator=_check_depth)
    deploy_policy: DeployPolicy = DeployPolicy.STRICT


@frozen
class YumSigningSettings:
    """An ASCII-armoured secret key that signs ``repomd.xml`` (``repomd.xml.asc``) and its passphrase."""

    keypair: str = field(default="", repr=False)
    passphrase: str = field(default="", repr=False)


def yum_settings(repository: Repository) -> YumSettings:
    return repository.config.section("yum") or YumSettings()


def signing_settings(repository: Repository) -> YumSigningSettings | None:
    section = repository.config.section("yumSigning")
    return section if section is not None and section.keypair else None


def root_of(path: str, depth: int) -> str | None:
    """The repodata directory (``""`` or ``"a/b/"``) that indexes ``path``, or None if it is too shallow."""
    directories = path.split("/")[:-1]
    if len(directories) < depth:
        return None
    return "".join(f"{part}/" for part in directories[:depth])


def is_repodata_path(path: str) -> bool:
    return path.startswith("repodata/") or "/repodata/" in path


def rpm_root(repository: Repository, path: str) -> str:
    """The repodata root an RPM upload to ``path`` belongs to; refuses paths shallower than the depth."""
    depth = yum_settings(repository).repodata_depth
    root = root_of(path, depth)
    if root is None:
        raise BadRequest(f"{path}: repository {repository.name} has yum.repodataDepth {depth}; RPMs go at least "
                         f"{depth} director{'y' if depth == 1 else 'ies'} deep (e.g. "
                         f"{'/'.join(['dir'] * depth)}/{path.rsplit('/', 1)[-1]})")
    return root
