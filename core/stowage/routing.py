"""Routing rules (Nexus's ``/v1/routing-rules``): which request paths a proxy or group repository serves.

A rule has a ``mode`` (``BLOCK``: paths matching any matcher are refused; ``ALLOW``: only paths matching
one are served) and regular expressions matched against the whole request path below the repository,
with its leading ``/`` (``^/com/example/.*``), as Nexus does. Rules are catalog documents, so every
worker and node applies the same ones; a refused path is a 404, as in Nexus.
"""

from __future__ import annotations

import functools
import re
from typing import TYPE_CHECKING, Any

from attrs import frozen

from stowage.errors import ValidationFailed

if TYPE_CHECKING:
    from stowage.repository import Repository

NAMESPACE = "routing-rules"
_NAME = re.compile(r"^[a-zA-Z0-9\-][a-zA-Z0-9_\-.]*$")
MODES = ("BLOCK", "ALLOW")


@frozen
class RoutingRule:
    name: str
    mode: str
    matchers: tuple[str, ...]
    description: str = ""

    def as_json(self) -> dict[str, Any]:
        return {"name": self.name, "description": self.description, "mode": self.mode,
                "matchers": list(self.matchers)}

    def allows(self, path: str) -> bool:
        matched = any(pattern.fullmatch(path) for pattern in _compiled(self.matchers))
        return not matched if self.mode == "BLOCK" else matched


@functools.lru_cache(maxsize=256)
def _compiled(matchers: tuple[str, ...]) -> tuple[re.Pattern[str], ...]:
    return tuple(re.compile(matcher) for matcher in matchers)


def parse_rule(body: Any, name: str | None = None) -> RoutingRule:
    """A rule from Nexus's ``RoutingRuleXO``; a 400 naming every bad field."""
    if not isinstance(body, dict):
        raise ValidationFailed([{"id": "*", "message": "a routing rule must be a JSON object"}])
    errors: list[tuple[str, str]] = []
    unknown = set(body) - {"name", "description", "mode", "matchers"}
    if unknown:
        errors.append(("*", f"unknown fields: {', '.join(sorted(unknown))}"))
    rule_name = body.get("name", name)
    if not isinstance(rule_name, str) or not _NAME.match(rule_name):
        errors.append(("name", "must be letters, digits, '-', '_' and '.', not starting with '_' or '.'"))
    elif name is not None and rule_name != name:
        errors.append(("name", f"{rule_name!r} does not match {name!r} in the URL"))
    mode = body.get("mode")
    if not isinstance(mode, str) or mode.upper() not in MODES:
        errors.append(("mode", "must be BLOCK or ALLOW"))
    matchers = body.get("matchers")
    if not isinstance(matchers, list) or not matchers or not all(isinstance(m, str) and m for m in matchers):
        errors.append(("matchers", "must be a non-empty list of regular expressions"))
    else:
        for index, matcher in enumerate(matchers):
            try:
                re.compile(matcher)
            except re.error as error:
                errors.append((f"matchers[{index}]", f"invalid regular expression {matcher!r}: {error}"))
    description = body.get("description") or ""
    if not isinstance(description, str):
        errors.append(("description", "must be a string"))
    if errors:
        raise ValidationFailed([{"id": "*" if field == "*" else f"PARAMETER {field}", "message": message}
                                for field, message in errors])
    return RoutingRule(name=rule_name, mode=mode.upper(), matchers=tuple(matchers), description=description)


def rule_for(repository: "Repository") -> RoutingRule | None:
    """The routing rule a proxy or group repository names (None: none, or a hosted repository)."""
    from stowage.models import RepositoryType

    name = repository.config.routing_rule
    if not name or repository.type is RepositoryType.HOSTED:
        return None
    stored = repository.stowage.catalog.get_document(NAMESPACE, name)
    return parse_rule(stored) if stored is not None else None


def routing_allows(repository: "Repository", path: str) -> bool:
    """Whether the repository's routing rule lets a request for ``path`` (below the repository) through."""
    rule = rule_for(repository)
    return rule is None or rule.allows("/" + path.lstrip("/"))
