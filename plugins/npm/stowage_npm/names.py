"""npm package names and the repository paths derived from them.

Core percent-decodes request paths, so a scoped packument requested as ``@scope%2fname`` arrives here as
``@scope/name``; tarballs live at ``<name>/-/<unscoped>-<version>.tgz`` as on registry.npmjs.org.
"""

from __future__ import annotations

import re
from urllib.parse import quote

from stowage.plugin import BadRequest

#: a package name as it appears in a path (read side: lenient about legacy upper-case names).
NAME = r"(?:@[A-Za-z0-9~$][A-Za-z0-9._~$!()*'-]*/)?[A-Za-z0-9~$][A-Za-z0-9._~$!()*'-]*"
PACKUMENT_PATH = re.compile(rf"(?P<name>{NAME})")
VERSION_PATH = re.compile(rf"(?P<name>{NAME})/(?P<spec>[A-Za-z0-9~][^/]*)")
TARBALL_PATH = re.compile(rf"(?P<name>{NAME})/-/(?P<file>[^/]+\.tgz)")
REV_PATH = re.compile(rf"(?P<name>{NAME})/-rev/(?P<rev>[^/]+)")
TARBALL_REV_PATH = re.compile(rf"(?P<tarball>(?P<name>{NAME})/-/[^/]+\.tgz)/-rev/(?P<rev>[^/]+)")
DIST_TAGS_PATH = re.compile(rf"-/package/(?P<name>{NAME})/dist-tags(?:/(?P<tag>[^/]+))?")
#: the metadata path of an abbreviated ("corgi") packument: its own cache entry on proxies.
CORGI_PREFIX = "-/corgi/"
CORGI_PATH = re.compile(rf"-/corgi/(?P<name>{NAME})")

# What a newly published name must look like (validate-npm-package-name's rules for new packages).
_NEW_NAME = re.compile(r"^(?:@[a-z0-9][a-z0-9._~-]*/)?[a-z0-9][a-z0-9._~-]*$")
_SEMVER = re.compile(r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
                     r"(?:-[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*)?(?:\+[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*)?$")
_TAG = re.compile(r"^[A-Za-z][A-Za-z0-9._-]*$")


def check_new_name(name: str) -> None:
    """Refuse a name npm itself would not publish (400 with the rule broken)."""
    if len(name) > 214:
        raise BadRequest(f"package name {name!r} is longer than 214 characters")
    if not _NEW_NAME.match(name):
        raise BadRequest(f"invalid package name {name!r}: use lower-case letters, digits, '-', '.', '_' and '~', "
                         f"optionally scoped as @scope/name")


def check_version(version: str) -> None:
    if not isinstance(version, str) or not _SEMVER.match(version):
        raise BadRequest(f"invalid version {version!r}: npm versions are semver (e.g. 1.2.3)")


def check_tag(tag: str) -> None:
    if not _TAG.match(tag) or _SEMVER.match(tag):
        raise BadRequest(f"invalid dist-tag {tag!r}: a tag starts with a letter and is not a version")


def unscoped(name: str) -> str:
    return name.rpartition("/")[2]


def scope_of(name: str) -> str:
    """``@scope`` of a scoped name, "" otherwise."""
    return name.partition("/")[0] if name.startswith("@") else ""


def tarball_path(name: str, version: str) -> str:
    return f"{name}/-/{unscoped(name)}-{version}.tgz"


def escaped(name: str) -> str:
    """The name as a registry URL path segment (``@scope%2fname``)."""
    return quote(name, safe="@")
