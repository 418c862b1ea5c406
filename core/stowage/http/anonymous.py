"""With anonymous access off, the REST API answers a caller without credentials one way: 401.

Answering 404 for a missing repository, component or asset and 401 for an existing one would tell anyone
what exists (Nexus answers every unauthenticated REST call 401 when anonymous access is off). Only the
health checks stay open, as load balancers call them without credentials.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import falcon

from stowage.errors import Unauthorized
from stowage.http.auth import BASIC_CHALLENGE
from stowage.http.early_auth import EARLY_REFUSED
from stowage.http.session import current_session

if TYPE_CHECKING:
    from stowage.stowage import Stowage

GATED_PREFIX = "/service/rest/"
#: answered to anyone: load balancers and monitoring probe them without credentials.
OPEN_PATHS = frozenset({"/service/rest/v1/status", "/service/rest/v1/status/writable",
                        "/service/rest/v1/status/check"})


def gate_refuses(stowage: "Stowage", path: str, *, authorized: bool) -> bool:
    """Whether the gate answers a request for ``path`` 401 (``authorized``: it sends credentials)."""
    if not path.startswith(GATED_PREFIX) or path.rstrip("/") in OPEN_PATHS:
        return False
    return not authorized and not stowage.security.anonymous_access


class AnonymousGate:
    def __init__(self, stowage: "Stowage"):
        self.stowage = stowage

    def process_request(self, req: falcon.Request, resp: falcon.Response) -> None:
        path = req.path
        if not path.startswith(GATED_PREFIX):
            return
        # EARLY_REFUSED: the server already refused this body unread (stowage.http.early_auth).
        # A live UI session counts as credentials (the UI's browse pages live under /service/rest too).
        authorized = bool(req.get_header("Authorization")) or current_session(req, self.stowage) is not None
        if gate_refuses(self.stowage, path, authorized=authorized) or (
                req.env.get(EARLY_REFUSED) and path.rstrip("/") not in OPEN_PATHS):
            raise Unauthorized("authentication required", headers={"WWW-Authenticate": BASIC_CHALLENGE})
