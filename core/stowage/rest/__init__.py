"""The Nexus-shaped REST API under ``/service/rest``."""

from __future__ import annotations

from typing import TYPE_CHECKING

import falcon

if TYPE_CHECKING:
    from stowage.stowage import Stowage

V1 = "/service/rest/v1"


def register_rest_routes(app: falcon.App, stowage: "Stowage") -> None:
    from stowage.rest import components, nexus_extras, read_only, repositories, routing_rules, status

    repositories.register(app, stowage)
    read_only.register(app, stowage)
    nexus_extras.register(app, stowage)
    routing_rules.register(app, stowage)
    components.register(app, stowage)
    status.register(app, stowage)
    try:
        from stowage.rest import extra
    except ImportError:
        return
    extra.register(app, stowage)
