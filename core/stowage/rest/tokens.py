"""Tokens in the REST API: a user's tokens (``/security/users/{userId}/tokens``, list and revoke) and
Nexus's user tokens (``/security/user-tokens``, ``/security/users/{userId}/{realm}/user-token``).

A user manages their own tokens, an administrator anyone's. Secrets are shown once, when created; every
other answer carries metadata only.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import falcon

from stowage.errors import BadRequest, Conflict, NotFound, StowageError, Unauthorized, ValidationFailed
from stowage.http.auth import BASIC_CHALLENGE, authenticate
from stowage.rest import V1
from stowage.rest.access import json_object, require_admin
from stowage.realms import LDAP_REALM, LOCAL_REALM
from stowage.security import User
from stowage.serialization import iso_time as iso
from stowage.tokens import USER_TOKEN, Token

if TYPE_CHECKING:
    from stowage.stowage import Stowage

#: the realm a user's ``source`` belongs to (``{realm}`` of the user-token endpoints).
SOURCE_REALMS = {"default": LOCAL_REALM, "LDAP": LDAP_REALM}


class UnprocessableRealm(StowageError):
    code, status = "INVALID_REALM", 422


def token_json(token: Token) -> dict[str, Any]:
    """A token's metadata: never its secret."""
    return {"id": token.id, "kind": token.kind, "created": iso(token.created), "expires": iso(token.expires),
            "lastUsed": iso(token.last_used), "audiences": list(token.audiences) if token.audiences else None}


def user_token_json(token: Token, *, pass_code: str | None = None) -> dict[str, Any]:
    """Nexus's ``UserTokenXO``; ``passCode`` only in the answer that creates the token."""
    body = {"nameCode": token.name_code, "created": iso(token.created), "expires": iso(token.expires),
            "isExpired": token.expired(time.time()), "realm": token.user_realm, "userId": token.user_id,
            "createdByUserId": token.created_by, "createdByRealm": token.user_realm}
    if pass_code is not None:
        body["passCode"] = pass_code
    return body


def _self_or_admin(req: falcon.Request, stowage: "Stowage", user_id: str) -> User:
    caller = authenticate(req, stowage)
    if caller is None:
        raise Unauthorized("authentication required", headers={"WWW-Authenticate": BASIC_CHALLENGE})
    if caller.user_id != user_id:
        require_admin(req, stowage)
    return caller


class UserTokensListResource:
    """``/security/users/{userId}/tokens`` and ``.../tokens/{tokenId}``."""

    def __init__(self, stowage: "Stowage"):
        self.stowage = stowage

    def on_get(self, req: falcon.Request, resp: falcon.Response, user_id: str) -> None:
        _self_or_admin(req, self.stowage, user_id)
        if self.stowage.security.find_user(user_id) is None:
            raise NotFound(f"user {user_id} not found")
        resp.media = [token_json(t) for t in self.stowage.tokens.tokens_of(user_id)]

    def on_delete_one(self, req: falcon.Request, resp: falcon.Response, user_id: str, token_id: str) -> None:
        _self_or_admin(req, self.stowage, user_id)
        if not self.stowage.tokens.revoke(user_id, token_id):
            raise NotFound(f"user {user_id} has no token {token_id}")
        resp.status = falcon.HTTP_204


class UserTokenSettingsResource:
    """``/security/user-tokens``: the capability's settings (GET/PUT), and reset-all (DELETE). Admin only."""

    def __init__(self, stowage: "Stowage"):
        self.stowage = stowage

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        require_admin(req, self.stowage)
        resp.media = self.stowage.tokens.user_tokens.get()

    def on_put(self, req: falcon.Request, resp: falcon.Response) -> None:
        require_admin(req, self.stowage)
        body = json_object(req)
        current = self.stowage.tokens.user_tokens.get()
        errors = []
        # enabled and protectContent are the model's original fields: required. The expiration fields came
        # later (older scripts do not send them): absent, they keep their current values.
        flags = ("enabled", "protectContent") + (("expirationEnabled",) if "expirationEnabled" in body else ())
        for key in flags:
            if not isinstance(body.get(key), bool):
                errors.append({"id": f"PARAMETER {key}", "message": "must be true or false"})
        days = body.get("expirationDays", current["expirationDays"])
        if isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= 999:
            errors.append({"id": "PARAMETER expirationDays", "message": "must be a whole number from 1 to 999"})
        if errors:
            raise ValidationFailed(errors)
        resp.media = self.stowage.tokens.user_tokens.put({
            "enabled": body["enabled"], "protectContent": body["protectContent"],
            "expirationEnabled": body.get("expirationEnabled", current["expirationEnabled"]),
            "expirationDays": days})

    def on_delete(self, req: falcon.Request, resp: falcon.Response) -> None:
        require_admin(req, self.stowage)
        self.stowage.tokens.revoke_all(kind=USER_TOKEN)
        resp.status = falcon.HTTP_204


class UserTokenListResource:
    """``GET /security/user-tokens/tokens``: every user token's metadata (Nexus's ``UserTokenListXO``),
    filtered by ``realm`` and ``userId``, expired ones only with ``includeExpired=true``; ``skip`` and
    ``limit`` (default 25, at most 100) page it. Admin only."""

    def __init__(self, stowage: "Stowage"):
        self.stowage = stowage

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        require_admin(req, self.stowage)
        skip, limit = _count(req, "skip", 0, None), _count(req, "limit", 25, 100)
        realm, user_id = req.get_param("realm"), req.get_param("userId")
        include_expired = (req.get_param("includeExpired") or "false").lower() == "true"
        now = time.time()
        tokens = [t for t in self.stowage.tokens.all_tokens(USER_TOKEN)
                  if (realm is None or t.user_realm == realm) and (user_id is None or t.user_id == user_id)
                  and (include_expired or not t.expired(now))]
        page = tokens[skip:skip + limit]
        resp.media = {"items": [user_token_json(t) for t in page], "continuationToken": None}


def _count(req: falcon.Request, name: str, default: int, maximum: int | None) -> int:
    raw = req.get_param(name)
    if raw is None:
        return default
    if not raw.isdigit() or (maximum is not None and not 1 <= int(raw) <= maximum):
        bounds = f"from 1 to {maximum}" if maximum else "0 or more"
        raise ValidationFailed([{"id": f"PARAMETER {name}", "message": f"must be a whole number {bounds}"}])
    return int(raw)


class UserTokenResource:
    """``/security/users/{userId}/{realm}/user-token``: create (POST), metadata (GET), revoke (DELETE)."""

    def __init__(self, stowage: "Stowage"):
        self.stowage = stowage

    def _user(self, req: falcon.Request, user_id: str, realm: str) -> tuple[User, User]:
        caller = _self_or_admin(req, self.stowage, user_id)
        if not self.stowage.tokens.user_tokens.enabled:
            raise BadRequest("User tokens are not enabled")
        if realm not in SOURCE_REALMS.values():
            raise UnprocessableRealm(f"{realm} is not a realm users sign in with "
                                     f"({', '.join(sorted(SOURCE_REALMS.values()))})")
        source = next(s for s, r in SOURCE_REALMS.items() if r == realm)
        user = self.stowage.security.find_user(user_id, source)
        if user is None:
            raise NotFound(f"user {user_id} not found in realm {realm}")
        return caller, user

    def on_post(self, req: falcon.Request, resp: falcon.Response, user_id: str, realm: str) -> None:
        caller, user = self._user(req, user_id, realm)
        tokens = self.stowage.tokens
        with self.stowage.catalog.transaction():
            if tokens.user_token_of(user_id, realm) is not None:
                raise Conflict(f"user {user_id} already has a user token in realm {realm}; delete it first")
            _, pass_code, token = tokens.create_user_token(user, realm, created_by=caller.user_id)
        resp.status = falcon.HTTP_201
        resp.media = user_token_json(token, pass_code=pass_code)

    def on_get(self, req: falcon.Request, resp: falcon.Response, user_id: str, realm: str) -> None:
        self._user(req, user_id, realm)
        token = self.stowage.tokens.user_token_of(user_id, realm)
        if token is None:
            raise NotFound(f"user {user_id} has no user token")
        resp.media = user_token_json(token)

    def on_delete(self, req: falcon.Request, resp: falcon.Response, user_id: str, realm: str) -> None:
        self._user(req, user_id, realm)
        token = self.stowage.tokens.user_token_of(user_id, realm)
        if token is None or not self.stowage.tokens.revoke(user_id, token.id):
            raise NotFound(f"user {user_id} has no user token")
        resp.status = falcon.HTTP_204


def register(app: falcon.App, stowage: "Stowage") -> None:
    base = f"{V1}/security"
    listing = UserTokensListResource(stowage)
    app.add_route(f"{base}/users/{{user_id}}/tokens", listing)
    app.add_route(f"{base}/users/{{user_id}}/tokens/{{token_id}}", listing, suffix="one")
    app.add_route(f"{base}/user-tokens", UserTokenSettingsResource(stowage))
    app.add_route(f"{base}/user-tokens/tokens", UserTokenListResource(stowage))
    app.add_route(f"{base}/users/{{user_id}}/{{realm}}/user-token", UserTokenResource(stowage))
