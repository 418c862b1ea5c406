"""The rest of the Nexus-shaped API: search, blob stores, security, tasks; plus ``/service/metrics``.

One module per responsibility; this one only wires them into the app.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import falcon

if TYPE_CHECKING:
    from stowage.stowage import Stowage


def register(app: falcon.App, stowage: "Stowage") -> None:
    from stowage import metrics
    from stowage.rest import (audit, blobstores, cleanup_policies, ldap, privileges, realms, search, security,
                              selectors, tasks, tokens)

    search.register(app, stowage)
    security.register(app, stowage)
    tokens.register(app, stowage)
    privileges.register(app, stowage)
    selectors.register(app, stowage)
    audit.register(app, stowage)
    ldap.register(app, stowage)
    realms.register(app, stowage)
    blobstores.register(app, stowage)
    tasks.register(app, stowage)
    cleanup_policies.register(app, stowage)
    metrics.register(app, stowage)
