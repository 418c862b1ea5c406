"""What an import did: copied, skipped (with why) and failed (with the error), per kind of thing."""

from __future__ import annotations

import threading
from collections import defaultdict

from attrs import define, field


@define
class Report:
    copied: dict[str, list[str]] = field(factory=lambda: defaultdict(list))
    skipped: dict[str, list[tuple[str, str]]] = field(factory=lambda: defaultdict(list))
    failed: dict[str, list[tuple[str, str]]] = field(factory=lambda: defaultdict(list))
    #: users created without their password (Nexus never returns one): they must set a new one.
    password_resets: list[str] = field(factory=list)
    warnings: list[str] = field(factory=list)
    interrupted: bool = False
    _lock: threading.Lock = field(factory=threading.Lock)

    def copy(self, kind: str, name: str) -> None:
        with self._lock:
            self.copied[kind].append(name)

    def skip(self, kind: str, name: str, why: str) -> None:
        with self._lock:
            self.skipped[kind].append((name, why))

    def fail(self, kind: str, name: str, why: str) -> None:
        with self._lock:
            self.failed[kind].append((name, why))

    def warn(self, message: str) -> None:
        with self._lock:
            self.warnings.append(message)

    @property
    def ok(self) -> bool:
        return not self.interrupted and not any(self.failed.values())

    def lines(self, *, detail_limit: int = 50) -> list[str]:
        kinds = sorted(set(self.copied) | set(self.skipped) | set(self.failed))
        out = [f"{'':24} {'copied':>8} {'skipped':>8} {'failed':>8}"]
        for kind in kinds:
            out.append(f"{kind:24} {len(self.copied[kind]):>8} {len(self.skipped[kind]):>8} "
                       f"{len(self.failed[kind]):>8}")
        for kind in kinds:
            for name, why in self.failed[kind][:detail_limit]:
                out.append(f"FAILED  {kind} {name}: {why}")
        for kind in kinds:
            reasons: dict[str, int] = defaultdict(int)
            for _, why in self.skipped[kind]:
                reasons[why] += 1
            for why, count in sorted(reasons.items()):
                out.append(f"skipped {kind} x{count}: {why}")
        out += [f"warning: {message}" for message in self.warnings]
        if self.password_resets:
            out.append("users created without a password (status changepassword; set one with "
                       "PUT /service/rest/v1/security/users/<id>/change-password): " + ", ".join(self.password_resets))
        if self.interrupted:
            out.append("interrupted: run the same command again to copy what is missing")
        return out
