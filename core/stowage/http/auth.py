"""Who is calling: the ``Authorization`` header, resolved through the ``stowage_authenticate`` hook."""

from __future__ import annotations

from typing import TYPE_CHECKING

import falcon

from stowage.errors import Unauthorized
from stowage.security import User

if TYPE_CHECKING:
    from stowage.stowage import Stowage

BASIC_CHALLENGE = 'Basic realm="Stowage"'


def authenticate(req: falcon.Request, stowage: "Stowage", *, challenge: str = BASIC_CHALLENGE) -> User | None:
    """The user the request authenticates as; None when it sends no credentials.

    Credentials that are sent but wrong are a 401, never a silent fall-back to anonymous.
    """
    cached = getattr(req.context, "user", False)
    if cached is not False:
        return cached
    header = req.get_header("Authorization")
    user = None
    if header:
        scheme, _, credentials = header.partition(" ")
        user = stowage.plugins.hook.stowage_authenticate(stowage=stowage, scheme=scheme.lower(),
                                                         credentials=credentials.strip())
        if user is None:
            raise Unauthorized("invalid credentials", headers={"WWW-Authenticate": challenge})
    req.context.user = user
    return user
