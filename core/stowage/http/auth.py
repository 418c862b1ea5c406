"""Who is calling: the ``Authorization`` header, resolved through the ``stowage_authenticate`` hook, or a
web UI session cookie (:mod:`stowage.http.session`, started by :func:`sign_in` on the sign-in page).

Every credential check goes through here: sign-in throttling and the sign-in log (:mod:`stowage.signin`),
then the audience check: a token is accepted only where it was issued for (an npm token by npm
repositories, a Docker token by the registry), and with user tokens' ``protectContent`` on, repository
content refuses real passwords.
"""

from __future__ import annotations

import base64
from typing import TYPE_CHECKING

import falcon

from stowage.errors import TooManyRequests, Unauthorized
from stowage.security import PASSWORD_REALMS, REST_AUDIENCE, User
from stowage.signin import NO_FAILURES, SignInGuard, Verdict

if TYPE_CHECKING:
    from stowage.stowage import Stowage

BASIC_CHALLENGE = 'Basic realm="Stowage"'


def authenticate(req: falcon.Request, stowage: "Stowage", *, challenge: str = BASIC_CHALLENGE,
                 audience: str | None = REST_AUDIENCE) -> User | None:
    """The user the request authenticates as; None when it sends no credentials.

    :param audience: what the request addresses: ``rest`` (REST API, UI) or a format name for
        repository content (``npm``, ``docker``...); None only when the caller does not know it yet and
        calls :func:`admit` once it does.

    Credentials that are sent but wrong, or not good for ``audience``, are a 401, never a silent
    fall-back to anonymous; an address or (user, address) pair that failed too often is a 429.
    """
    user = getattr(req.context, "user", False)
    if user is False:
        header = req.get_header("Authorization")
        user = None
        if header:
            scheme, _, credentials = header.partition(" ")
            user = _identify(req, stowage, scheme.lower(), credentials.strip(), challenge)
        else:
            # A live UI session names the user (a dead one means anonymous: the page offers to sign in).
            # It never authorises a state-changing request on its own: the CSRF middleware has already
            # refused those that do not repeat the session's token.
            from stowage.http.session import current_session, sessions

            session = current_session(req, stowage)
            if session is not None:
                user = sessions(stowage).user(session)
        req.context.user = user
        if user is not None:
            req.env["stowage.user"] = user.user_id  # for the request log, which sees only the WSGI environ
    if user is not None and audience is not None:
        admit(stowage, user, audience, challenge)
    return user


def sign_in(req: falcon.Request, stowage: "Stowage", user_id: str, password: str, *, audience: str,
            challenge: str = BASIC_CHALLENGE) -> User:
    """Check a user name and password sent in a request body (``npm login``, a Docker password grant)
    exactly as Basic credentials are checked: throttled, logged, user tokens accepted."""
    credentials = base64.b64encode(f"{user_id}:{password}".encode()).decode()
    user = _identify(req, stowage, "basic", credentials, challenge)
    admit(stowage, user, audience, challenge)
    return user


def admit(stowage: "Stowage", user: User, audience: str, challenge: str = BASIC_CHALLENGE) -> None:
    """Refuse credentials that are not good for ``audience`` (401)."""
    if not user.accepted_by(audience):
        raise Unauthorized(f"a token of realm {user.realm} is not accepted here",
                           headers={"WWW-Authenticate": challenge})
    if audience != REST_AUDIENCE and user.realm in PASSWORD_REALMS and stowage.tokens.user_tokens.protect_content:
        raise Unauthorized("repository content requires a user token (protectContent is on)",
                           headers={"WWW-Authenticate": challenge})


def client_address(req: falcon.Request) -> str:
    """The caller's address (the reverse proxy's ``X-Forwarded-For`` when it is trusted: waitress has
    already applied it)."""
    return req.remote_addr or "-"


def _identify(req: falcon.Request, stowage: "Stowage", scheme: str, credentials: str, challenge: str) -> User:
    user_id = claimed_user(scheme, credentials)
    address = client_address(req)
    guard = stowage.signins
    # Throttling stops guessing. A password is checked only once the address may try again; a bearer
    # token (a random or signed secret no one guesses) is checked first and reads the failure counters
    # only when it fails, so the hot path of a token client (every docker pull) reads none of them, while
    # a throttled address still gets 429 for every token that does not verify.
    verdict = None if scheme == "bearer" else _admitted(guard, user_id, address)
    user = stowage.plugins.hook.stowage_authenticate(stowage=stowage, scheme=scheme, credentials=credentials)
    if user is None and verdict is None:
        verdict = _admitted(guard, user_id, address)
    stowage.audit.signin(req, user_id, user.user_id if user else None, scheme)
    if user is None:
        guard.failed(user_id, address, realm=scheme)
        raise Unauthorized("invalid credentials", headers={"WWW-Authenticate": challenge})
    guard.succeeded(user_id, address, user_id=user.user_id, realm=user.realm or scheme, credentials=credentials,
                    verdict=verdict or NO_FAILURES)
    return user


def _admitted(guard: SignInGuard, user_id: str, address: str) -> Verdict:
    """The throttle's verdict on an attempt; 429 while the pair or address must wait."""
    verdict = guard.verdict(user_id, address)
    if verdict.retry_after > 0:
        guard.refused(user_id, address, verdict.retry_after)
        wait = str(int(verdict.retry_after) + 1)
        raise TooManyRequests(f"too many failed sign-ins; retry in {wait} s", headers={"Retry-After": wait})
    return verdict


def claimed_user(scheme: str, credentials: str) -> str:
    """The user name Basic credentials claim ("" for other schemes or undecodable ones), for the audit
    trail of failed sign-ins."""
    if scheme.lower() != "basic":
        return ""
    try:
        return base64.b64decode(credentials.strip(), validate=True).decode().partition(":")[0][:128]
    except ValueError:  # not base64 (binascii.Error), not ASCII, not UTF-8 (UnicodeDecodeError)
        return ""
