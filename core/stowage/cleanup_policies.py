"""Cleanup policies: Nexus's ``CleanupPolicyResourceXO``, kept in the catalog, named by repositories.

A policy is a set of criteria that must all hold (AND) for a component to be removed; what each
criterion means per format is in ``docs/cleanup.md``, and :mod:`stowage.cleanup` applies them. Policies
come from the REST API (``/service/rest/v1/cleanup-policies``) or the configuration file
(``[[cleanupPolicies]]``, the same field names); repositories name them in ``cleanup.policyNames``.
"""

from __future__ import annotations

import enum
import re
from typing import TYPE_CHECKING, Any, Mapping

from attrs import frozen

from stowage.errors import BadRequest, ConfigurationError, Conflict, NotFound
from stowage.models import RepositoryConfig, RepositoryType

if TYPE_CHECKING:
    from stowage.stowage import Stowage

POLICIES = "cleanup.policies"
ALL_FORMATS = "*"
POLICY_NAME = re.compile(r"^[a-zA-Z0-9-][a-zA-Z0-9_.-]{0,254}$")
#: the largest number of days a criterion takes (a century; Nexus's UI suggests 1-999).
MAX_DAYS = 36500
MAX_RETAIN = 1_000_000
FIELDS = ("name", "notes", "format", "criteriaLastBlobUpdated", "criteriaLastDownloaded", "criteriaReleaseType",
          "criteriaAssetRegex", "retain")


class ReleaseType(enum.Enum):
    RELEASES = "RELEASES"
    PRERELEASES = "PRERELEASES"
    RELEASES_AND_PRERELEASES = "RELEASES_AND_PRERELEASES"


@frozen
class CleanupPolicy:
    name: str
    format: str
    notes: str = ""
    #: days since a component was published or last updated.
    criteria_last_blob_updated: int | None = None
    #: days since a component was last downloaded (never downloaded: since it was published).
    criteria_last_downloaded: int | None = None
    criteria_release_type: ReleaseType | None = None
    criteria_asset_regex: str | None = None
    #: keep the newest this many versions of each component among those the other criteria select.
    retain: int | None = None

    @property
    def pattern(self) -> re.Pattern[str] | None:
        return re.compile(self.criteria_asset_regex) if self.criteria_asset_regex else None

    @property
    def has_criteria(self) -> bool:
        return any(value is not None for value in (self.criteria_last_blob_updated, self.criteria_last_downloaded,
                                                   self.criteria_release_type, self.criteria_asset_regex,
                                                   self.retain))

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "notes": self.notes, "format": self.format,
                "criteriaLastBlobUpdated": self.criteria_last_blob_updated,
                "criteriaLastDownloaded": self.criteria_last_downloaded,
                "criteriaReleaseType": self.criteria_release_type.value if self.criteria_release_type else None,
                "criteriaAssetRegex": self.criteria_asset_regex, "retain": self.retain}


def parse_policy(data: Any, formats: Mapping[str, Any], *, extra: tuple[str, ...] = ()) -> CleanupPolicy:
    """A policy from a ``CleanupPolicyResourceXO`` body; :class:`BadRequest` naming the bad field."""
    if not isinstance(data, Mapping):
        raise BadRequest("a cleanup policy must be a JSON object")
    unknown = set(data) - set(FIELDS) - set(extra)
    if unknown:
        raise BadRequest(f"unknown field(s) {', '.join(sorted(unknown))}; a cleanup policy has {', '.join(FIELDS)}")
    name = data.get("name")
    if not isinstance(name, str) or not POLICY_NAME.match(name):
        raise BadRequest(f"name {name!r} must be 1-255 letters, digits, '-', '_' or '.', not starting with '_' "
                         f"or '.'")
    fmt = data.get("format")
    if fmt != ALL_FORMATS and fmt not in formats:
        raise BadRequest(f"format {fmt!r} is not an installed format (use one of "
                         f"{', '.join(sorted(formats)) or 'none'}, or * for all)")
    notes = data.get("notes") or ""
    if not isinstance(notes, str):
        raise BadRequest("notes must be a string")
    regex = data.get("criteriaAssetRegex") or None
    if regex is not None:
        if not isinstance(regex, str) or len(regex) > 1000:
            raise BadRequest("criteriaAssetRegex must be a regular expression of at most 1000 characters")
        try:
            re.compile(regex)
        except re.error as error:
            raise BadRequest(f"criteriaAssetRegex {regex!r} is not a valid regular expression: {error}") from None
    release = data.get("criteriaReleaseType") or None
    if release is not None and release not in ReleaseType.__members__:
        raise BadRequest(f"criteriaReleaseType must be one of {', '.join(ReleaseType.__members__)}")
    return CleanupPolicy(
        name=name, format=fmt, notes=notes,
        criteria_last_blob_updated=_number(data, "criteriaLastBlobUpdated", MAX_DAYS),
        criteria_last_downloaded=_number(data, "criteriaLastDownloaded", MAX_DAYS),
        criteria_release_type=ReleaseType(release) if release else None, criteria_asset_regex=regex,
        retain=_number(data, "retain", MAX_RETAIN))


def _number(data: Mapping[str, Any], key: str, maximum: int) -> int | None:
    value = data.get(key)
    if value is None:
        return None
    if isinstance(value, str) and value.strip().isdigit():  # Nexus's UI posts numbers as strings
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= maximum:
        raise BadRequest(f"{key} must be a whole number from 1 to {maximum}, not {value!r}")
    return value


class CleanupPolicies:
    """The policies in the catalog, and the rules that tie them to repositories."""

    def __init__(self, stowage: "Stowage"):
        self.stowage = stowage

    @classmethod
    def of(cls, stowage: "Stowage") -> "CleanupPolicies":
        return stowage.extension("cleanup-policies", lambda: cls(stowage))

    def parse(self, data: Any, **options: Any) -> CleanupPolicy:
        return parse_policy(data, self.stowage.plugins.formats, **options)

    def all(self) -> list[CleanupPolicy]:
        return [self._load(value) for _, value in self.stowage.catalog.list_documents(POLICIES)]

    def get(self, name: str) -> CleanupPolicy:
        value = self.stowage.catalog.get_document(POLICIES, name)
        if value is None:
            raise NotFound(f"cleanup policy {name} not found")
        return self._load(value)

    def _load(self, value: Mapping[str, Any]) -> CleanupPolicy:
        # stored policies were checked when saved; a format whose plugin went away stays readable
        return parse_policy(value, {value.get("format"): None})

    def create(self, policy: CleanupPolicy) -> None:
        catalog = self.stowage.catalog
        with catalog.transaction():
            if catalog.get_document(POLICIES, policy.name) is not None:
                raise Conflict(f"cleanup policy {policy.name} already exists")
            catalog.put_document(POLICIES, policy.name, policy.to_json())

    def update(self, policy: CleanupPolicy) -> None:
        catalog = self.stowage.catalog
        with catalog.transaction():
            self.get(policy.name)
            for repository in self.users(policy.name):
                if policy.format not in (ALL_FORMATS, repository["format"]):
                    raise BadRequest(f"cleanup policy {policy.name} is used by {repository['format']} repository "
                                     f"{repository['name']}; its format cannot become {policy.format}")
            catalog.put_document(POLICIES, policy.name, policy.to_json())

    def save(self, policy: CleanupPolicy) -> None:
        """Create or update (the configuration file's way)."""
        with self.stowage.catalog.transaction():
            if self.stowage.catalog.get_document(POLICIES, policy.name) is None:
                self.create(policy)
            else:
                self.update(policy)

    def delete(self, name: str) -> None:
        catalog = self.stowage.catalog
        with catalog.transaction():
            self.get(name)
            users = [r["name"] for r in self.users(name)]
            if users:
                raise Conflict(f"cleanup policy {name} is used by repository(ies) {', '.join(sorted(users))}; "
                               f"remove it from their cleanup.policyNames first")
            catalog.delete_document(POLICIES, name)

    def users(self, name: str) -> list[Mapping[str, Any]]:
        """The stored repository configurations whose ``cleanup.policyNames`` include ``name``."""
        return [r for r in self.stowage.catalog.list_repositories()
                if name in ((r.get("cleanup") or {}).get("policyNames") or ())]

    def for_repository(self, config: RepositoryConfig) -> list[CleanupPolicy]:
        names = config.cleanup.policy_names if config.cleanup else ()
        found = []
        for name in names:
            try:
                found.append(self.get(name))
            except NotFound:  # removed behind our back (another node's race); nothing to apply
                continue
        return found

    def check_repository(self, config: RepositoryConfig) -> None:
        """A repository's ``cleanup.policyNames``: existing policies of its format; none for a group."""
        names = config.cleanup.policy_names if config.cleanup else ()
        if not names:
            return
        if config.type is RepositoryType.GROUP:
            raise ConfigurationError(f"repository {config.name}: a group has no content of its own; name cleanup "
                                     f"policies on its members")
        for name in names:
            value = self.stowage.catalog.get_document(POLICIES, name)
            if value is None:
                raise ConfigurationError(f"repository {config.name}: cleanup policy {name!r} does not exist")
            if value.get("format") not in (ALL_FORMATS, config.format):
                raise ConfigurationError(f"repository {config.name}: cleanup policy {name!r} is for "
                                         f"{value.get('format')} repositories, not {config.format}")
