"""Package metadata extraction in worker processes, for rebuilds of many packages at once.

createrepo_c holds the GIL while it reads a header, so threads do not help; a full rebuild of thousands
of packages spreads them over processes instead. This module imports only createrepo_c, so a spawned
worker starts quickly.
"""

from __future__ import annotations

import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor
from typing import Sequence

import createrepo_c as cr

#: changelog entries kept per package (createrepo_c's default); rpmfile uses the same.
CHANGELOG_LIMIT = 10
#: below this many packages the work is done in-process (starting workers costs more than it saves).
PARALLEL_THRESHOLD = 2000
BATCH = 250


def extract_batch(items: Sequence[tuple[str, str]]) -> list[tuple[str, str, str] | str]:
    """(local RPM path, href) -> its (primary, filelists, other) XML, or an error message."""
    found: list[tuple[str, str, str] | str] = []
    for local, href in items:
        try:
            package = cr.package_from_rpm(local, cr.SHA256, href, None, CHANGELOG_LIMIT)
            found.append(tuple(cr.xml_dump(package)))  # type: ignore[arg-type]
        except Exception as error:  # reported back; the caller decides
            found.append(f"{href}: {error}")
    return found


def extract_parallel(items: Sequence[tuple[str, str]], workers: int | None = None) -> list[tuple[str, str, str] | str]:
    """:func:`extract_batch` over worker processes (spawned: safe in a threaded server)."""
    workers = workers or max(1, min(os.cpu_count() or 1, 8))
    batches = [items[i:i + BATCH] for i in range(0, len(items), BATCH)]
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        results: list[tuple[str, str, str] | str] = []
        for batch in pool.map(extract_batch, batches):
            results.extend(batch)
    return results
