"""Who is calling: the ``Authorization`` header, resolved through the ``stowage_authenticate`` hook."""

from __future__ import annotations

import base64
import binascii
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
        stowage.audit.signin(req, claimed_user(scheme, credentials), user.user_id if user else None,
                             scheme.lower())
        if user is None:
            raise Unauthorized("invalid credentials", headers={"WWW-Authenticate": challenge})
    req.context.user = user
    if user is not None:
        req.env["stowage.user"] = user.user_id  # for the request log, which sees only the WSGI environ
    return user


def claimed_user(scheme: str, credentials: str) -> str:
    """The user name Basic credentials claim ("" for other schemes or undecodable ones), for the audit
    trail of failed sign-ins."""
    if scheme.lower() != "basic":
        return ""
    try:
        return base64.b64decode(credentials.strip(), validate=True).decode().partition(":")[0][:128]
    except (binascii.Error, UnicodeDecodeError):
        return ""
