"""Running one function over many items in a few threads, stopping early when one call raises."""

from __future__ import annotations

import concurrent.futures
from typing import Callable, Iterable, TypeVar

T = TypeVar("T")


def for_each(function: Callable[[T], object], items: Iterable[T], *, threads: int) -> None:
    """Call ``function(item)`` for every item, ``threads`` at a time; the first exception is re-raised
    after the calls already running finish, and the ones not started yet are cancelled (a task asked to
    stop, a full disk: nothing is gained by trying the remaining thousands)."""
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=max(1, threads))
    try:
        for future in [pool.submit(function, item) for item in items]:
            future.result()
    except BaseException:
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    pool.shutdown(wait=True)
