"""A thread-safe LRU cache bounded by total weight: the one per-process cache formats and core use for
work they would otherwise redo per request (parsed upstream documents, merged group documents, rendered
bodies).

Entries are only a way not to redo work: key them on what the value was derived from (a blob's sha256,
a catalog revision), so that an entry is never stale and every process may hold its own.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any, Callable, Hashable


class LRUCache:
    """Least recently used entries go first once the total weight passes ``max_weight``.

    :param max_weight: the bound; give each entry weight 1 to bound the number of entries, or its size
        in bytes to bound memory. A value heavier than the bound is not kept.
    """

    def __init__(self, max_weight: int):
        self.max_weight = max_weight
        self._entries: OrderedDict[Hashable, tuple[Any, int]] = OrderedDict()
        self._weight = 0
        self._lock = threading.Lock()

    def get(self, key: Hashable) -> Any | None:
        """The value stored under ``key`` (now the most recently used), or None."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            self._entries.move_to_end(key)
            return entry[0]

    def put(self, key: Hashable, value: Any, *, weight: int = 1) -> None:
        if weight > self.max_weight:
            return
        with self._lock:
            old = self._entries.pop(key, None)
            if old is not None:
                self._weight -= old[1]
            self._entries[key] = (value, weight)
            self._weight += weight
            while self._weight > self.max_weight and self._entries:
                _, (_, dropped) = self._entries.popitem(last=False)
                self._weight -= dropped

    def get_or_make(self, key: Hashable, make: Callable[[], tuple[Any, int]]) -> Any:
        """The value under ``key``, or ``make()``'s ``(value, weight)`` stored and returned. ``make`` runs
        outside the lock: two threads may both make a missing value; the later one is kept."""
        hit = self.get(key)
        if hit is not None:
            return hit
        value, weight = make()
        self.put(key, value, weight=weight)
        return value

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._weight = 0

    def __len__(self) -> int:
        return len(self._entries)
