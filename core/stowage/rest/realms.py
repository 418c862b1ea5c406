"""``/service/rest/v1/security/realms``: the available realms and the active ones, in the order they are
tried (Nexus's ids). As in Nexus, reading needs ``nx-settings-read``, changing ``nx-settings-update`` (or
``nx-all``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import falcon

from stowage.errors import BadRequest
from stowage.ldap.realm import LDAP_SOURCE
from stowage.realms import AVAILABLE, LDAP_REALM, LOCAL_REALM, UnknownRealm
from stowage.rest import V1
from stowage.rest.access import require_permission
from stowage.rest.ldap import json_string_list

if TYPE_CHECKING:
    from stowage.stowage import Stowage

#: user source -> the realm that signs such users in
_REALM_OF_SOURCE = {"default": LOCAL_REALM, LDAP_SOURCE: LDAP_REALM}


class AvailableRealmsResource:
    def __init__(self, stowage: "Stowage"):
        self.stowage = stowage

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        require_permission(req, self.stowage, "settings", "read")
        resp.media = [{"id": realm_id, "name": name} for realm_id, name in AVAILABLE.items()]


class ActiveRealmsResource:
    def __init__(self, stowage: "Stowage"):
        self.stowage = stowage

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        require_permission(req, self.stowage, "settings", "read")
        resp.media = list(self.stowage.security.realms.active())

    def on_put(self, req: falcon.Request, resp: falcon.Response) -> None:
        caller = require_permission(req, self.stowage, "settings", "update")
        realm_ids = json_string_list(req)
        own = _REALM_OF_SOURCE.get(caller.source)
        if own is not None and own not in realm_ids:
            # Nexus lets an administrator lock everyone out this way; we refuse the one certain case.
            raise BadRequest(f"{own} signs you in; it must stay active (deactivate it as another administrator)")
        try:
            self.stowage.security.realms.set_active(realm_ids)
        except UnknownRealm as error:
            raise BadRequest(str(error)) from None
        resp.status = falcon.HTTP_204


def register(app: falcon.App, stowage: "Stowage") -> None:
    base = f"{V1}/security/realms"
    app.add_route(f"{base}/available", AvailableRealmsResource(stowage))
    app.add_route(f"{base}/active", ActiveRealmsResource(stowage))
