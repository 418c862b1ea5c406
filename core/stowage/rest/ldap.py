"""``/service/rest/v1/security/ldap``: the directories users sign in through, in Nexus's shapes. As in Nexus,
reading needs ``nx-ldap-read`` and changing ``nx-ldap-create``/``-update``/``-delete`` (or ``nx-all``).

The bind password (``authPassword``) is write-only: answers are built from
:meth:`~stowage.ldap.servers.LdapServer.public`, never from the stored document.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import falcon

from stowage.errors import BadRequest
from stowage.ldap.realm import LDAP_REALM
from stowage.ldap.servers import LdapServers, server_from_body
from stowage.rest import V1
from stowage.rest.access import json_object, require_json, require_permission

if TYPE_CHECKING:
    from stowage.stowage import Stowage


def json_string_list(req: falcon.Request) -> list[str]:
    """The request's JSON body, which must be an array of strings; a clear 400 otherwise (415 when not JSON)."""
    require_json(req)
    try:
        body: Any = req.get_media()
    except falcon.MediaNotFoundError:
        raise BadRequest("a JSON body is required") from None
    except falcon.MediaMalformedError as error:
        raise BadRequest(f"the body is not valid JSON: {error.description}") from None
    if not isinstance(body, list) or not all(isinstance(item, str) for item in body):
        raise BadRequest("the body must be a JSON array of strings")
    return body


class _LdapResource:
    def __init__(self, stowage: "Stowage"):
        self.stowage = stowage
        self.servers = LdapServers(stowage.catalog, stowage.sealer)

    def _changed(self) -> None:
        """Sign-ins cached in this process were made with the old settings: ask the directory again."""
        realm = self.stowage.security.password_realms.get(LDAP_REALM)
        if realm is not None:
            realm.forget()  # type: ignore[attr-defined]


class LdapServersResource(_LdapResource):
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        require_permission(req, self.stowage, "ldap", "read")
        resp.media = [server.public() for server in self.servers.list()]

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        require_permission(req, self.stowage, "ldap", "create")
        self.servers.create(server_from_body(json_object(req)))
        self._changed()
        resp.status = falcon.HTTP_201


class LdapServerResource(_LdapResource):
    def on_get(self, req: falcon.Request, resp: falcon.Response, name: str) -> None:
        require_permission(req, self.stowage, "ldap", "read")
        resp.media = self.servers.get(name).public()

    def on_put(self, req: falcon.Request, resp: falcon.Response, name: str) -> None:
        require_permission(req, self.stowage, "ldap", "update")
        body = json_object(req)
        self.servers.update(name, server_from_body(body, self.servers.get(name)))
        self._changed()
        resp.status = falcon.HTTP_204

    def on_delete(self, req: falcon.Request, resp: falcon.Response, name: str) -> None:
        require_permission(req, self.stowage, "ldap", "delete")
        self.servers.delete(name)
        self._changed()
        resp.status = falcon.HTTP_204


class LdapOrderResource(_LdapResource):
    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        require_permission(req, self.stowage, "ldap", "update")
        self.servers.change_order(json_string_list(req))
        resp.status = falcon.HTTP_204


def register(app: falcon.App, stowage: "Stowage") -> None:
    base = f"{V1}/security/ldap"
    app.add_route(base, LdapServersResource(stowage))
    app.add_route(f"{base}/change-order", LdapOrderResource(stowage))
    app.add_route(f"{base}/{{name}}", LdapServerResource(stowage))
