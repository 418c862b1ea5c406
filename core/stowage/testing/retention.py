"""Test-kit checks of a format's retention rules (``FormatHandler.version_key`` / ``is_prerelease``).

A format plugin's tests call :func:`assert_version_order` with versions listed oldest to newest in the
format's own order; it shuffles them, sorts them the way cleanup's ``retain`` does and compares.
"""

from __future__ import annotations

import random
from typing import Iterable, Sequence

from stowage.models import Component
from stowage.stowage import Stowage


def components(format_name: str, versions: Iterable[str], *, name: str = "demo") -> list[Component]:
    """Components of one name, published in the order given (``created`` 1, 2, 3...)."""
    return [Component(repository="kit", format=format_name, name=name, version=version, id=number,
                      created=float(number)) for number, version in enumerate(versions, start=1)]


def assert_version_order(stowage: Stowage, format_name: str, oldest_to_newest: Sequence[str], *,
                         prereleases: Iterable[str] = (), seed: int = 0, by_publication: bool = False) -> None:
    """``oldest_to_newest`` is the format's order and exactly ``prereleases`` are prereleases.

    The components are published in a shuffled order, so a handler that orders by publication time
    instead of by version fails; ``by_publication`` (formats whose order *is* publication, like Docker
    tags) publishes them in the order given instead.
    """
    handler = stowage.handlers[format_name]
    shuffled = list(oldest_to_newest)
    if not by_publication:
        random.Random(seed).shuffle(shuffled)
    published = components(format_name, shuffled)
    ordered = [c.version for c in sorted(published, key=handler.version_key)]
    assert ordered == list(oldest_to_newest), f"{format_name} orders versions {ordered}"
    flagged = {c.version for c in published if handler.is_prerelease(c)}
    assert flagged == set(prereleases), f"{format_name} calls {sorted(flagged)} prereleases"
