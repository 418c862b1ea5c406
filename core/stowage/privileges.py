"""Privileges (Nexus's typed privileges) and content selectors, kept in the catalog; what a role's
privilege names grant.

A role lists privilege *names*. A name resolves, in this order, to a stored privilege
(``security.privileges``), to a built-in one (``nx-all``, the ``nx-<domain>-<action>`` application
privileges), or, for names of the ``nx-repository-view-<format>-<repository>-<action>`` shape, to the
repository view the name spells (with ``*`` wildcards), as Nexus creates them for every repository.

Every grant but the content-selector one is a Shiro-style permission: colon-separated parts, each a set of
comma-separated alternatives (``*`` for any), missing trailing parts meaning "any" — ``nexus:*``,
``nexus:repository-view:npm:npm-hosted:read``, ``nexus:users:read``. ``repository-content-selector``
privileges grant the BREAD actions on the content a :mod:`stowage.csel` expression matches.
"""

from __future__ import annotations

import fnmatch
import re
from typing import Any, Iterable, Mapping

from attrs import frozen

from stowage.csel import Selector

PRIVILEGES = "security.privileges"
SELECTORS = "security.selectors"

TYPES = ("application", "repository-admin", "repository-content-selector", "repository-view", "wildcard")
#: Nexus's action names (upper case in JSON); ``ALL`` covers every other.
ACTIONS = ("BROWSE", "READ", "EDIT", "ADD", "DELETE", "RUN", "START", "STOP", "ASSOCIATE", "DISASSOCIATE",
           "ALL")
NAME = re.compile(r"^[a-zA-Z0-9\-][a-zA-Z0-9_\-.]{0,199}$")

#: application domains Stowage's REST API checks (``nx-<domain>-<action>`` built-ins exist for each).
APPLICATION_DOMAINS = ("users", "roles", "privileges", "selectors", "repositories", "blobstores", "tasks",
                       "settings", "ldap", "audit")
_APPLICATION_ACTIONS = {"read": "READ", "create": "ADD", "update": "EDIT", "delete": "DELETE"}
#: verbs of the view actions of :class:`stowage.security.Action`, in Nexus's BREAD names.
VIEW_ACTIONS = ("browse", "read", "edit", "add", "delete")


def builtin_privileges(formats: Iterable[str] = (), repositories: Iterable[tuple[str, str]] = ()
                       ) -> list[dict[str, Any]]:
    """Nexus's built-in privileges as ``ApiPrivilegeRequest`` documents (read-only): ``nx-all``, the
    application ones, repository views for every format and every repository (``(format, name)`` pairs)."""
    found = [{"type": "wildcard", "name": "nx-all", "description": "All permissions", "readOnly": True,
              "pattern": "nexus:*"},
             {"type": "application", "name": "nx-metrics-all", "description": "All permissions for Metrics",
              "readOnly": True, "domain": "metrics", "actions": ["ALL"]}]
    for domain in APPLICATION_DOMAINS:
        for verb, action in _APPLICATION_ACTIONS.items():
            found.append({"type": "application", "name": f"nx-{domain}-{verb}", "readOnly": True,
                          "description": f"{verb.capitalize()} permission for {domain.capitalize()}",
                          "domain": domain, "actions": [action]})
    targets = [("*", "*")] + [(f, "*") for f in sorted(set(formats))] + sorted(set(repositories))
    for fmt, repository in targets:
        for action in ("*", *VIEW_ACTIONS):
            found.append({"type": "repository-view", "name": f"nx-repository-view-{fmt}-{repository}-{action}",
                          "readOnly": True, "format": fmt, "repository": repository,
                          "actions": ["ALL" if action == "*" else action.upper()],
                          "description": f"{'All' if action == '*' else action.capitalize()} permissions for "
                                         f"{'all' if repository == '*' else repository} "
                                         f"{'' if fmt == '*' else fmt + ' '}repository views"})
        found.append({"type": "repository-admin", "name": f"nx-repository-admin-{fmt}-{repository}-*",
                      "readOnly": True, "format": fmt, "repository": repository, "actions": ["ALL"],
                      "description": f"All privileges for {'all' if repository == '*' else repository} "
                                     f"{'' if fmt == '*' else fmt + ' '}repository administration"})
    return found


def _application_builtin(name: str) -> dict[str, Any] | None:
    if name == "nx-metrics-all":
        return {"type": "application", "name": name, "domain": "metrics", "actions": ["ALL"]}
    match = re.fullmatch(r"nx-([a-z]+)-(read|create|update|delete)", name)
    if match and match.group(1) in APPLICATION_DOMAINS:
        return {"type": "application", "name": name, "domain": match.group(1),
                "actions": [_APPLICATION_ACTIONS[match.group(2)]]}
    return None


# -- permissions --------------------------------------------------------------------------------------------

Permission = tuple[frozenset[str], ...]


def parse_permission(pattern: str) -> Permission:
    """A Shiro wildcard pattern: ``:`` separates parts, ``,`` alternatives; lower-cased like Shiro."""
    return tuple(frozenset(p.strip().lower() for p in part.split(",")) for part in pattern.split(":"))


def implies(granted: Permission, wanted: Iterable[str]) -> bool:
    for index, value in enumerate(wanted):
        if index >= len(granted):
            return True  # Shiro: a shorter permission covers everything below it
        if not any(fnmatch.fnmatchcase(value, option) for option in granted[index]):
            return False
    return True


def _actions(document: Mapping[str, Any]) -> str:
    actions = [str(a).lower() for a in document.get("actions") or ()]
    return "*" if not actions or "all" in actions else ",".join(actions)


def permission_of(document: Mapping[str, Any]) -> Permission | None:
    """The permission a stored or built-in privilege grants (None for content-selector privileges, which
    grant through :class:`SelectorGrant`)."""
    kind = document.get("type")
    if kind == "wildcard":
        return parse_permission(str(document.get("pattern", "")))
    if kind == "application":
        return parse_permission(f"nexus:{document.get('domain', '')}:{_actions(document)}")
    if kind in ("repository-view", "repository-admin"):
        return parse_permission(f"nexus:{kind}:{document.get('format', '*')}:{document.get('repository', '*')}:"
                                f"{_actions(document)}")
    return None


@frozen
class SelectorGrant:
    """What a ``repository-content-selector`` privilege grants: ``actions`` on the content ``selector``
    matches in repositories matching ``format``/``repository`` (``*`` for any)."""

    selector: str
    format: str
    repository: str
    actions: frozenset[str]

    def applies(self, format_name: str, repository: str, verbs: Iterable[str]) -> bool:
        return (fnmatch.fnmatchcase(format_name, self.format) and fnmatch.fnmatchcase(repository, self.repository)
                and ("all" in self.actions or any(v in self.actions for v in verbs)))


@frozen
class Grants:
    """Everything a set of privilege names grants, compiled once per security generation."""

    permissions: tuple[Permission, ...] = ()
    #: legacy ``nx-repository-view-...`` names not stored as privileges: matched as name patterns.
    view_names: tuple[str, ...] = ()
    selectors: tuple[SelectorGrant, ...] = ()

    def permits(self, *parts: str) -> bool:
        return any(implies(p, parts) for p in self.permissions)

    def views(self, format_name: str, repository: str, verbs: Iterable[str]) -> bool:
        verbs = tuple(verbs)
        if any(self.permits("nexus", "repository-view", format_name, repository, v) for v in verbs):
            return True
        wanted = [f"nx-repository-view-{format_name}-{repository}-{v}" for v in verbs]
        return any(fnmatch.fnmatchcase(w, p) for p in self.view_names for w in wanted)

    def selector_names(self, format_name: str, repository: str, verbs: Iterable[str]) -> list[str]:
        verbs = tuple(verbs)
        return [g.selector for g in self.selectors if g.applies(format_name, repository, verbs)]


def compile_grants(names: Iterable[str], stored: Mapping[str, Mapping[str, Any]]) -> Grants:
    permissions: list[Permission] = []
    view_names: list[str] = []
    selectors: list[SelectorGrant] = []
    for name in names:
        document = stored.get(name) or _application_builtin(name)
        if document is None:
            if name == "nx-all":
                permissions.append(parse_permission("nexus:*"))
            elif name.startswith("nx-repository-view-"):
                view_names.append(name)
            continue
        if document.get("type") == "repository-content-selector":
            selectors.append(SelectorGrant(
                selector=str(document.get("contentSelector", "")), format=str(document.get("format", "*")),
                repository=str(document.get("repository", "*")),
                actions=frozenset(a.lower() for a in document.get("actions") or ("all",))))
            continue
        permission = permission_of(document)
        if permission is not None:
            permissions.append(permission)
    return Grants(tuple(permissions), tuple(view_names), tuple(selectors))


@frozen
class ContentAccess:
    """Access limited to the content some selectors match (the union of them), in one repository."""

    format: str
    selectors: tuple[Selector, ...]

    def permits(self, path: str) -> bool:
        """Whether ``path`` (Nexus's form: with a leading ``/``) is content these selectors grant."""
        if not path.startswith("/"):
            path = "/" + path
        return any(s.matches(path=path, format=self.format) for s in self.selectors)
