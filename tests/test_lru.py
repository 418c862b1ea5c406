"""The one LRU cache core and formats share (stowage.plugin.LRUCache)."""

from __future__ import annotations

import threading

from hypothesis import given, strategies as st

from stowage.plugin import LRUCache


def test_least_recently_used_goes_first_by_weight():
    cache = LRUCache(10)
    cache.put("a", 1, weight=4)
    cache.put("b", 2, weight=4)
    assert cache.get("a") == 1  # a is now the most recently used
    cache.put("c", 3, weight=4)  # 12 > 10: b, the least recently used, goes
    assert (cache.get("a"), cache.get("b"), cache.get("c")) == (1, None, 3)
    cache.put("huge", 4, weight=11)  # heavier than the bound: not kept, nothing evicted for it
    assert cache.get("huge") is None and len(cache) == 2
    cache.put("a", 5, weight=1)  # replacing an entry replaces its weight
    cache.put("d", 6, weight=5)
    assert (cache.get("a"), cache.get("c"), cache.get("d")) == (5, 3, 6)
    assert cache.get_or_make("e", lambda: ("made", 1)) == "made" and cache.get_or_make("e", lambda: 1 / 0) == "made"
    cache.clear()
    assert len(cache) == 0 and cache.get("a") is None


@given(st.lists(st.tuples(st.integers(0, 20), st.integers(1, 6)), max_size=60))
def test_total_weight_never_exceeds_the_bound(puts):
    cache = LRUCache(12)
    for key, weight in puts:
        cache.put(key, key, weight=weight)
        assert cache._weight <= 12 and cache._weight == sum(w for _, w in cache._entries.values())


def test_threads_share_one_cache_safely():
    cache = LRUCache(50)

    def work(offset: int) -> None:
        for i in range(2000):
            cache.put((offset, i % 80), i)
            cache.get((offset, (i * 7) % 80))

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(cache) == 50 and cache._weight == 50
