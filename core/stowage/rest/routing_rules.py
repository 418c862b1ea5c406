"""``/service/rest/v1/routing-rules``: list, create, read, update, delete (Nexus's ``RoutingRuleXO``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import falcon

from stowage.errors import ConfigurationError, NotFound
from stowage.rest import V1
from stowage.rest.access import json_object, require_admin
from stowage.routing import NAMESPACE, parse_rule

if TYPE_CHECKING:
    from stowage.stowage import Stowage


def _users_of(stowage: "Stowage", name: str) -> list[str]:
    return sorted(r.name for r in stowage.repositories() if r.config.routing_rule == name)


class RoutingRulesResource:
    def __init__(self, stowage: "Stowage"):
        self.stowage = stowage

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        require_admin(req, self.stowage)
        resp.media = [parse_rule(value).as_json() for _, value in self.stowage.catalog.list_documents(NAMESPACE)]

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        require_admin(req, self.stowage)
        rule = parse_rule(json_object(req))
        catalog = self.stowage.catalog
        with catalog.transaction():
            if catalog.get_document(NAMESPACE, rule.name) is not None:
                raise ConfigurationError(f"A routing rule with the same name already exists: {rule.name}")
            catalog.put_document(NAMESPACE, rule.name, rule.as_json())
        resp.status = falcon.HTTP_204


class RoutingRuleResource:
    def __init__(self, stowage: "Stowage"):
        self.stowage = stowage

    def _stored(self, name: str) -> dict:
        stored = self.stowage.catalog.get_document(NAMESPACE, name)
        if stored is None:
            raise NotFound(f"Did not find a routing rule with the name '{name}'")
        return stored

    def on_get(self, req: falcon.Request, resp: falcon.Response, name: str) -> None:
        require_admin(req, self.stowage)
        resp.media = parse_rule(self._stored(name)).as_json()

    def on_put(self, req: falcon.Request, resp: falcon.Response, name: str) -> None:
        require_admin(req, self.stowage)
        rule = parse_rule(json_object(req), name)
        with self.stowage.catalog.transaction():
            self._stored(name)
            self.stowage.catalog.put_document(NAMESPACE, name, rule.as_json())
        self.stowage.metadata_cache.clear()
        resp.status = falcon.HTTP_204

    def on_delete(self, req: falcon.Request, resp: falcon.Response, name: str) -> None:
        require_admin(req, self.stowage)
        with self.stowage.catalog.transaction():
            self._stored(name)
            users = _users_of(self.stowage, name)
            if users:
                raise ConfigurationError(f"routing rule {name} is used by repositories {', '.join(users)}; "
                                         f"remove it from them first")
            self.stowage.catalog.delete_document(NAMESPACE, name)
        resp.status = falcon.HTTP_204


def register(app: falcon.App, stowage: "Stowage") -> None:
    app.add_route(f"{V1}/routing-rules", RoutingRulesResource(stowage))
    app.add_route(f"{V1}/routing-rules/{{name}}", RoutingRuleResource(stowage))
