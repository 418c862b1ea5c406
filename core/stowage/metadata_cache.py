"""A per-process cache of built and merged metadata documents.

It is only a cache: each entry is keyed on the resolver's ``document_key`` (the catalog revision for a
hosted repository, the digest of the upstream copy for a proxy, after revalidating it when stale, and
the members' keys for a group), read from the shared catalog on every lookup, so a change made by any
process or node, and an upstream document that changed, are seen on the next request.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from stowage.lru import LRUCache
from stowage.registration import MetadataBuilder

if TYPE_CHECKING:
    from stowage.repository import Repository


_UNKNOWN = object()


class MetadataCache:
    def __init__(self, max_entries: int = 2048):
        self.max_entries = max_entries
        self._entries = LRUCache(max_entries)  # key -> (document_key, document)

    def get_or_build(self, repository: "Repository", builder: MetadataBuilder, match: re.Match[str], *,
                     document_key: Any = _UNKNOWN) -> Any:
        """The document, built (or merged) only when its ``document_key`` changed.

        :param document_key: the key when the caller already computed it (a group for its members): a
            proxy member then revalidates its upstream copy once per request, not twice.
        """
        key = (repository.name, builder.format, builder.name, match.group(0))
        revision = repository.resolver.document_key(builder, match) if document_key is _UNKNOWN else document_key
        entry = self._entries.get(key)
        if entry is not None and entry[0] == revision:
            return entry[1]
        document = repository.resolver.keyed_document(builder, match, revision)
        if repository.resolver.cacheable_documents:
            self._entries.put(key, (revision, document))
        return document

    def clear(self) -> None:
        self._entries.clear()
