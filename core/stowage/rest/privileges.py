"""``/service/rest/v1/security/privileges``: Nexus's typed privileges; the built-in ones are listed and
read-only. Reading needs ``nx-privileges-read``, changing ``nx-privileges-create``/``-update``/``-delete``
(or nx-all). Roles reference privileges by name (``/security/roles``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import falcon

from stowage.errors import BadRequest, NotFound
from stowage.privileges import ACTIONS, NAME, TYPES, builtin_privileges
from stowage.rest import V1
from stowage.rest.access import json_object, require_permission

if TYPE_CHECKING:
    from stowage.stowage import Stowage

#: the fields each type takes besides name and description (Nexus's ``ApiPrivilege*Request``).
FIELDS = {"application": ("domain", "actions"), "repository-admin": ("format", "repository", "actions"),
          "repository-view": ("format", "repository", "actions"),
          "repository-content-selector": ("format", "repository", "contentSelector", "actions"),
          "wildcard": ("pattern",)}


def privilege_json(document: dict[str, Any]) -> dict[str, Any]:
    """Nexus's ``ApiPrivilegeRequest`` (as ``GET /privileges`` answers it)."""
    answer = {"type": document["type"], "name": document["name"], "description": document.get("description", ""),
              "readOnly": bool(document.get("readOnly", False))}
    for key in FIELDS.get(document["type"], ()):
        if key in document:
            answer[key] = list(document[key]) if key == "actions" else document[key]
    return answer


class PrivilegeCatalog:
    """Built-in and stored privileges together (built-ins depend on the formats and repositories)."""

    def __init__(self, stowage: "Stowage"):
        self.stowage = stowage

    def builtins(self) -> dict[str, dict[str, Any]]:
        repositories = [(r.format_name, r.name) for r in self.stowage.repositories()]
        return {p["name"]: p for p in builtin_privileges(self.stowage.plugins.formats, repositories)}

    def all(self) -> list[dict[str, Any]]:
        stored = [p for p in self.stowage.security.list_privileges()]
        builtins = self.builtins()
        return list(builtins.values()) + [p for p in stored if p["name"] not in builtins]

    def find(self, name: str) -> dict[str, Any]:
        found = self.builtins().get(name) or self.stowage.security.get_privilege(name)
        if found is None:
            raise NotFound(f"privilege {name} not found")
        return found


class PrivilegesResource(PrivilegeCatalog):
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        require_permission(req, self.stowage, "privileges", "read")
        resp.media = [privilege_json(p) for p in self.all()]


class PrivilegeResource(PrivilegeCatalog):
    def on_get(self, req: falcon.Request, resp: falcon.Response, name: str) -> None:
        require_permission(req, self.stowage, "privileges", "read")
        resp.media = privilege_json(self.find(name))

    def on_delete(self, req: falcon.Request, resp: falcon.Response, name: str) -> None:
        require_permission(req, self.stowage, "privileges", "delete")
        security = self.stowage.security
        with self.stowage.catalog.transaction():
            if self.find(name).get("readOnly"):
                raise BadRequest(f"privilege {name} is built in (read-only) and cannot be deleted")
            roles = [r["id"] for r in security.list_roles() if name in r.get("privileges", ())]
            if roles:
                raise BadRequest(f"privilege {name} is used by role(s) {', '.join(roles)}; remove it there first")
            security.delete_privilege(name)
            self.stowage.audit.record_change(req, "security", "privilege.delete", name, status=204)
        resp.status = falcon.HTTP_204


class TypedPrivilegesResource(PrivilegeCatalog):
    """``POST /privileges/{type}`` creates; ``PUT /privileges/{type}/{name}`` updates."""

    def __init__(self, stowage: "Stowage", kind: str):
        super().__init__(stowage)
        self.kind = kind

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        require_permission(req, self.stowage, "privileges", "create")
        document = self._document(json_object(req), None)
        with self.stowage.catalog.transaction():
            if document["name"] in self.builtins() or self.stowage.security.get_privilege(document["name"]):
                raise BadRequest(f"privilege {document['name']} already exists")
            self.stowage.security.save_privilege(document)
            self.stowage.audit.record_change(req, "security", "privilege.create", document["name"], status=201)
        resp.status = falcon.HTTP_201
        resp.media = privilege_json(document)

    def on_put_name(self, req: falcon.Request, resp: falcon.Response, name: str) -> None:
        require_permission(req, self.stowage, "privileges", "update")
        body = json_object(req)
        with self.stowage.catalog.transaction():
            current = self.find(name)
            if current.get("readOnly"):
                raise BadRequest(f"privilege {name} is built in (read-only) and cannot be changed")
            if current["type"] != self.kind:
                raise BadRequest(f"privilege {name} is a {current['type']} privilege, not {self.kind}")
            if body.get("name", name) != name:
                raise BadRequest("a privilege's name cannot be changed")
            self.stowage.security.save_privilege(self._document({**body, "name": name}, current))
            self.stowage.audit.record_change(req, "security", "privilege.update", name, status=204)
        resp.status = falcon.HTTP_204

    def _document(self, body: dict[str, Any], current: dict[str, Any] | None) -> dict[str, Any]:
        name = body.get("name")
        if not isinstance(name, str) or not NAME.match(name):
            raise BadRequest("name is required: letters, digits and '-', then also '_' and '.'")
        description = body.get("description", (current or {}).get("description", ""))
        if not isinstance(description, str):
            raise BadRequest("description must be a string")
        document: dict[str, Any] = {"type": self.kind, "name": name, "description": description, "readOnly": False}
        missing = [key for key in FIELDS[self.kind] if body.get(key) in (None, "", [])]
        if missing:
            raise BadRequest(f"missing required field(s) for a {self.kind} privilege: {', '.join(missing)}")
        for key in FIELDS[self.kind]:
            value = body[key]
            if key == "actions":
                if not isinstance(value, list) or not all(isinstance(a, str) and a.upper() in ACTIONS for a in value):
                    raise BadRequest(f"actions must be a list of {', '.join(ACTIONS)}")
                value = sorted({a.upper() for a in value})
            elif not isinstance(value, str):
                raise BadRequest(f"{key} must be a string")
            document[key] = value
        self._check_references(document)
        return document

    def _check_references(self, document: dict[str, Any]) -> None:
        fmt, repository = document.get("format"), document.get("repository")
        if fmt is not None and fmt != "*" and fmt not in self.stowage.plugins.formats:
            raise BadRequest(f"format {fmt!r} is not installed (use * for every format)")
        if repository is not None and repository != "*":
            found = self.stowage.repository(repository)  # 404 names it when it does not exist
            if fmt not in ("*", found.format_name):
                raise BadRequest(f"repository {repository} is a {found.format_name} repository, not {fmt}")
        selector = document.get("contentSelector")
        if selector is not None and self.stowage.security.get_selector(selector) is None:
            raise BadRequest(f"content selector {selector} does not exist")
        if self.kind == "wildcard" and not document["pattern"].strip(": "):
            raise BadRequest("pattern must be a colon-separated permission, e.g. nexus:repository-view:npm:*:read")
        if self.kind == "application" and not document["domain"].strip():
            raise BadRequest("domain is required, e.g. users or * for every domain")


def register(app: falcon.App, stowage: "Stowage") -> None:
    base = f"{V1}/security/privileges"
    app.add_route(base, PrivilegesResource(stowage))
    for kind in TYPES:
        resource = TypedPrivilegesResource(stowage, kind)
        app.add_route(f"{base}/{kind}", resource)
        app.add_route(f"{base}/{kind}/{{name}}", resource, suffix="name")
    app.add_route(f"{base}/{{name}}", PrivilegeResource(stowage))
