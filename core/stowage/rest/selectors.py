"""``/service/rest/v1/security/content-selectors``: CSEL content selectors, in Nexus's shapes.

Reading needs ``nx-selectors-read``, changing them ``nx-selectors-create``/``-update``/``-delete`` (or
nx-all). An expression that does not parse is a 400 that says what is wrong and where.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import falcon

from stowage.csel import CselError, parse
from stowage.errors import BadRequest, NotFound
from stowage.privileges import NAME
from stowage.rest import V1
from stowage.rest.access import json_object, require_permission

if TYPE_CHECKING:
    from stowage.stowage import Stowage


def selector_json(document: dict[str, Any]) -> dict[str, Any]:
    """Nexus's ``ContentSelectorApiResponse``."""
    return {"name": document["name"], "type": "csel", "description": document.get("description", ""),
            "expression": document["expression"]}


def _string(body: dict[str, Any], key: str, default: str | None = None) -> str | None:
    value = body.get(key, default)
    if value is not None and not isinstance(value, str):
        raise BadRequest(f"{key} must be a string")
    return value


def _checked_expression(expression: str | None) -> str:
    if not expression:
        raise BadRequest("expression is required, e.g. format == \"npm\" and path =^ \"/@scope/\"")
    try:
        parse(expression)
    except CselError as error:
        raise BadRequest(f"invalid expression: {error.message}") from None
    return expression


class SelectorsResource:
    def __init__(self, stowage: "Stowage"):
        self.stowage = stowage

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        require_permission(req, self.stowage, "selectors", "read")
        resp.media = [selector_json(s) for s in self.stowage.security.list_selectors()]

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        require_permission(req, self.stowage, "selectors", "create")
        body = json_object(req)
        name = _string(body, "name") or ""
        if not NAME.match(name):
            raise BadRequest("name is required: letters, digits, '-', then also '_' and '.'")
        document = {"name": name, "description": _string(body, "description", "") or "",
                    "expression": _checked_expression(_string(body, "expression"))}
        security = self.stowage.security
        with self.stowage.catalog.transaction():
            if security.get_selector(name) is not None:
                raise BadRequest(f"content selector {name} already exists")
            security.save_selector(document)
            self.stowage.audit.record_change(req, "security", "selector.create", name, status=204)
        resp.status = falcon.HTTP_204


class SelectorResource:
    def __init__(self, stowage: "Stowage"):
        self.stowage = stowage

    def _get(self, name: str) -> dict[str, Any]:
        document = self.stowage.security.get_selector(name)
        if document is None:
            raise NotFound(f"content selector {name} not found")
        return document

    def on_get(self, req: falcon.Request, resp: falcon.Response, name: str) -> None:
        require_permission(req, self.stowage, "selectors", "read")
        resp.media = selector_json(self._get(name))

    def on_put(self, req: falcon.Request, resp: falcon.Response, name: str) -> None:
        require_permission(req, self.stowage, "selectors", "update")
        body = json_object(req)
        if _string(body, "name", name) != name:
            raise BadRequest("a content selector's name cannot be changed")
        with self.stowage.catalog.transaction():
            current = self._get(name)
            document = {"name": name,
                        "description": _string(body, "description", current.get("description", "")) or "",
                        "expression": _checked_expression(_string(body, "expression", current["expression"]))}
            self.stowage.security.save_selector(document)
            self.stowage.audit.record_change(req, "security", "selector.update", name, status=204)
        resp.status = falcon.HTTP_204

    def on_delete(self, req: falcon.Request, resp: falcon.Response, name: str) -> None:
        require_permission(req, self.stowage, "selectors", "delete")
        security = self.stowage.security
        with self.stowage.catalog.transaction():
            self._get(name)
            users = [p["name"] for p in security.list_privileges() if p.get("contentSelector") == name]
            if users:
                raise BadRequest(f"content selector {name} is used by privilege(s) {', '.join(users)}; "
                                 f"delete them first")
            security.delete_selector(name)
            self.stowage.audit.record_change(req, "security", "selector.delete", name, status=204)
        resp.status = falcon.HTTP_204


def register(app: falcon.App, stowage: "Stowage") -> None:
    app.add_route(f"{V1}/security/content-selectors", SelectorsResource(stowage))
    app.add_route(f"{V1}/security/content-selectors/{{name}}", SelectorResource(stowage))
