"""rpm's version comparison (``rpmvercmp`` and EVR order), as rpm 4.x implements it in ``rpmvercmp.c``.

Used for cleanup's ``retain`` (keep the newest N versions of a package). It follows rpm's C code step by
step, including ``~`` (sorts before anything, even the end: ``1.0~rc1 < 1.0``) and ``^`` (sorts after the
end but before anything else: ``1.0 < 1.0^git1 < 1.0.1``); the tests compare it with rpm's own bindings.
"""

from __future__ import annotations

import functools


def _isalnum(char: str) -> bool:
    return char.isascii() and char.isalnum()


def rpmvercmp(a: str, b: str) -> int:
    """-1, 0 or 1 as ``a`` is older than, the same as or newer than ``b`` (one of version or release)."""
    if a == b:
        return 0
    i = j = 0
    while i < len(a) or j < len(b):
        while i < len(a) and not _isalnum(a[i]) and a[i] not in "~^":
            i += 1
        while j < len(b) and not _isalnum(b[j]) and b[j] not in "~^":
            j += 1
        # tilde: sorts before everything else
        if (i < len(a) and a[i] == "~") or (j < len(b) and b[j] == "~"):
            if i >= len(a) or a[i] != "~":
                return 1
            if j >= len(b) or b[j] != "~":
                return -1
            i += 1
            j += 1
            continue
        # caret: like the end of the version, but newer than it
        if (i < len(a) and a[i] == "^") or (j < len(b) and b[j] == "^"):
            if i >= len(a):
                return -1
            if j >= len(b):
                return 1
            if a[i] != "^":
                return 1
            if b[j] != "^":
                return -1
            i += 1
            j += 1
            continue
        if not (i < len(a) and j < len(b)):
            break
        start_a, start_b = i, j
        numeric = a[i].isdigit()
        if numeric:
            while i < len(a) and a[i].isascii() and a[i].isdigit():
                i += 1
            while j < len(b) and b[j].isascii() and b[j].isdigit():
                j += 1
        else:
            while i < len(a) and a[i].isascii() and a[i].isalpha():
                i += 1
            while j < len(b) and b[j].isascii() and b[j].isalpha():
                j += 1
        one, two = a[start_a:i], b[start_b:j]
        if not two:  # segments of different types: numeric is newer
            return 1 if numeric else -1
        if numeric:
            one, two = one.lstrip("0"), two.lstrip("0")
            if len(one) != len(two):
                return 1 if len(one) > len(two) else -1
        if one != two:
            return 1 if one > two else -1
    if i >= len(a) and j >= len(b):
        return 0
    return -1 if i >= len(a) else 1


def compare_evr(a: tuple[str, str, str], b: tuple[str, str, str]) -> int:
    """rpm's ``labelCompare`` of (epoch, version, release); an empty epoch is 0."""
    epoch_a, epoch_b = int(a[0] or 0), int(b[0] or 0)
    if epoch_a != epoch_b:
        return 1 if epoch_a > epoch_b else -1
    return rpmvercmp(a[1], b[1]) or rpmvercmp(a[2], b[2])


evr_key = functools.cmp_to_key(compare_evr)
