"""Who is calling: the ``Authorization`` header, resolved through the ``stowage_authenticate`` hook, or a
web UI session cookie (:mod:`stowage.http.session`)."""

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


def check_credentials(req: falcon.Request, stowage: "Stowage", scheme: str, credentials: str) -> User | None:
    """The one path every credential takes (an ``Authorization`` header, the UI's sign-in form): the
    ``stowage_authenticate`` hook, and the audit trail's sign-in record. None when they are not valid."""
    user = stowage.plugins.hook.stowage_authenticate(stowage=stowage, scheme=scheme.lower(),
                                                     credentials=credentials.strip())
    stowage.audit.signin(req, claimed_user(scheme, credentials), user.user_id if user else None, scheme.lower())
    return user


def authenticate(req: falcon.Request, stowage: "Stowage", *, challenge: str = BASIC_CHALLENGE) -> User | None:
    """The user the request authenticates as; None when it sends no credentials.

    Credentials that are sent but wrong are a 401, never a silent fall-back to anonymous. Without an
    ``Authorization`` header, a live UI session cookie names the user (a dead one means anonymous: the
    page then offers to sign in again). A session never authorises a state-changing request on its own:
    the CSRF middleware has already refused those that do not repeat the session's token.
    """
    cached = getattr(req.context, "user", False)
    if cached is not False:
        return cached
    header = req.get_header("Authorization")
    user = None
    if header:
        scheme, _, credentials = header.partition(" ")
        user = check_credentials(req, stowage, scheme, credentials)
        if user is None:
            raise Unauthorized("invalid credentials", headers={"WWW-Authenticate": challenge})
    else:
        from stowage.http.session import current_session, sessions

        session = current_session(req, stowage)
        if session is not None:
            user = sessions(stowage).user(session)
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
