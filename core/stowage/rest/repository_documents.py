"""Repository documents in the shapes of Nexus's OpenAPI schemas.

GET answers carry every block the schema of ``{format}/{type}`` lists, with defaults where the stored
configuration has none (typed clients generated from Nexus's document read them unconditionally); an
update must carry the fields the request schema requires, so a ``PUT`` never silently resets a block.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from stowage.errors import ValidationFailed
from stowage.models import (CleanupSettings, ComponentSettings, HttpClientSettings, NegativeCacheSettings,
                            ReplicationSettings, RepositoryType)
from stowage.serialization import without_nulls

if TYPE_CHECKING:
    from stowage.repository import Repository
    from stowage.stowage import Stowage

#: blocks every repository of a type answers with, and the class whose defaults fill them.
_TYPE_DEFAULTS: dict[RepositoryType, tuple[tuple[str, type], ...]] = {
    RepositoryType.HOSTED: (("cleanup", CleanupSettings), ("component", ComponentSettings)),
    RepositoryType.PROXY: (("cleanup", CleanupSettings), ("negativeCache", NegativeCacheSettings),
                           ("httpClient", HttpClientSettings), ("replication", ReplicationSettings)),
    RepositoryType.GROUP: (),
}

#: dotted fields Nexus's request schemas require in an update, per repository type (and for all types).
_REQUIRED: dict[RepositoryType | None, tuple[str, ...]] = {
    None: ("name", "online", "storage", "storage.blobStoreName", "storage.strictContentTypeValidation"),
    RepositoryType.HOSTED: ("storage.writePolicy",),
    RepositoryType.PROXY: ("proxy", "proxy.remoteUrl", "proxy.contentMaxAge", "proxy.metadataMaxAge",
                           "negativeCache", "negativeCache.enabled", "negativeCache.timeToLive", "httpClient"),
    RepositoryType.GROUP: ("group", "group.memberNames"),
}


def answer_document(stowage: "Stowage", repository: "Repository", document: dict[str, Any]) -> dict[str, Any]:
    """``document`` (the stored configuration, already redacted) completed to Nexus's answer schema."""
    document = dict(document)
    kind = repository.type
    converter = stowage.converter
    for key, cls in _TYPE_DEFAULTS[kind]:
        if key not in document:
            document[key] = without_nulls(converter.unstructure(cls()))
    if kind is RepositoryType.HOSTED:
        storage = document.setdefault("storage", {})
        if "writePolicy" not in storage:
            storage["writePolicy"] = repository.write_policy.value
    if "routingRule" in document:
        # Nexus's answer names it routingRuleName (its request bodies say routingRule).
        document["routingRuleName"] = document.pop("routingRule")
    fmt = repository.format
    if fmt is not None:
        for section in fmt.answer_sections.get(kind.value, ()):
            cls = fmt.settings.get(section)
            if section not in document and cls is not None:
                document[section] = without_nulls(converter.unstructure(cls()))
    return document


def require_update_fields(stowage: "Stowage", body: dict[str, Any], format_name: str, type_name: str) -> None:
    """Refuse (400, naming each one) an update body without the fields Nexus's schema requires."""
    kind = RepositoryType(type_name)
    required = [*_REQUIRED[None], *_REQUIRED[kind]]
    fmt = stowage.plugins.formats.get(format_name)
    if fmt is not None:
        required += fmt.required_sections.get(type_name, ())
    missing = [dotted for dotted in required if not _present(body, dotted)]
    # a missing block is named once, not with each of its fields
    missing = [dotted for dotted in missing if dotted.rpartition(".")[0] not in missing]
    if missing:
        raise ValidationFailed([{"id": f"PARAMETER {dotted}", "message": "may not be null"} for dotted in missing])


def _present(body: Any, dotted: str) -> bool:
    for part in dotted.split("."):
        if not isinstance(body, dict) or body.get(part) is None:
            return False
        body = body[part]
    return True
