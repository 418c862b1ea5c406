"""``/service/rest/v1/security``: users, roles and anonymous access, in Nexus's shapes. Admin only.

Password hashes never leave the server: user documents are built field by field from
:class:`~stowage.security.User`, never by dumping what the catalog holds.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

import falcon
from attrs import evolve

from stowage.errors import BadRequest, Conflict, NotFound, ValidationFailed
from stowage.rest import V1
from stowage.rest.access import json_object, require_admin
from stowage.security import ADMIN_ROLE, BUILTIN_ROLES, User

if TYPE_CHECKING:
    from stowage.stowage import Stowage

USER_STATUSES = ("active", "disabled", "locked", "changepassword")
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,127}$")


def user_json(user: User) -> dict[str, Any]:
    """Nexus's ``ApiUser``."""
    return {"userId": user.user_id, "firstName": user.first_name, "lastName": user.last_name,
            "emailAddress": user.email_address, "source": user.source, "status": user.status,
            "readOnly": False, "roles": list(user.roles), "externalRoles": []}


def role_json(role: dict[str, Any]) -> dict[str, Any]:
    """Nexus's ``RoleXOResponse``."""
    return {"id": role["id"], "source": role.get("source", "default"), "name": role.get("name", role["id"]),
            "description": role.get("description", ""), "privileges": list(role.get("privileges", ())),
            "roles": list(role.get("roles", ()))}



def _text(body: dict[str, Any], key: str, default: str = "") -> str:
    value = body.get(key, default)
    if value is None:
        return default
    if not isinstance(value, str):
        raise BadRequest(f"{key} must be a string")
    return value


def require_fields(body: dict[str, Any], fields: dict[str, type]) -> None:
    """A PUT takes the whole object, as Nexus's does: every field in ``fields`` must be present (not null)
    and of its type; otherwise a 400 with Nexus's ``ValidationErrorXO`` list naming each one. Without this,
    a partial body silently reset what it left out (roles, privileges)."""
    errors = []
    for key, kind in fields.items():
        value = body.get(key)
        if value is None:
            errors.append({"id": f"PARAMETER {key}", "message": "may not be null (PUT takes the whole object)"})
        elif kind is list and not (isinstance(value, list) and all(isinstance(v, str) for v in value)):
            errors.append({"id": f"PARAMETER {key}", "message": "must be a list of strings"})
        elif kind is str and not isinstance(value, str):
            errors.append({"id": f"PARAMETER {key}", "message": "must be a string"})
    if errors:
        raise ValidationFailed(errors)


#: the fields of Nexus's ``ApiUser`` a PUT must carry (``source``, ``readOnly``, ``externalRoles`` are
#: read-only).
USER_FIELDS: dict[str, type] = {"userId": str, "firstName": str, "lastName": str, "emailAddress": str,
                                "status": str, "roles": list}
#: the fields of Nexus's ``RoleXORequest``.
ROLE_FIELDS: dict[str, type] = {"id": str, "name": str, "description": str, "privileges": list, "roles": list}


def _string_list(body: dict[str, Any], key: str) -> list[str]:
    value = body.get(key) or []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise BadRequest(f"{key} must be a list of strings")
    return value


class SecurityResource:
    def __init__(self, stowage: "Stowage"):
        self.stowage = stowage
        self.security = stowage.security

    def _check_roles(self, roles: list[str]) -> None:
        unknown = [r for r in roles if self.security.get_role(r) is None]
        if unknown:
            raise BadRequest(f"unknown role(s): {', '.join(unknown)}")

    def _user_from_body(self, body: dict[str, Any], user_id: str, current: User | None) -> User:
        status = _text(body, "status", current.status if current else "active")
        if status not in USER_STATUSES:
            raise BadRequest(f"status must be one of {', '.join(USER_STATUSES)}")
        roles = _string_list(body, "roles")
        self._check_roles(roles)
        base = current or User(user_id=user_id)
        return evolve(base, first_name=_text(body, "firstName"), last_name=_text(body, "lastName"),
                      email_address=_text(body, "emailAddress"), status=status, roles=tuple(roles))


class UsersResource(SecurityResource):
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        require_admin(req, self.stowage)
        term = (req.get_param("userId") or "").lower()
        source = req.get_param("source")
        users = [u for u in self.security.list_users()
                 if u.user_id.lower().startswith(term) and (source is None or u.source == source)]
        resp.media = [user_json(u) for u in users]

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        require_admin(req, self.stowage)
        body = json_object(req)
        user_id = _text(body, "userId")
        if not _ID.match(user_id):
            raise BadRequest("userId is required: letters, digits, '.', '_', '-', '@' (at most 128)")
        password = _text(body, "password")
        if not password:
            raise BadRequest("password is required")
        with self.stowage.catalog.transaction():
            if self.security.get_user(user_id) is not None:
                raise BadRequest(f"user {user_id} already exists")
            user = self.security.save_user(self._user_from_body(body, user_id, None), password)
        resp.media = user_json(user)


class UserResource(SecurityResource):
    def on_put(self, req: falcon.Request, resp: falcon.Response, user_id: str) -> None:
        require_admin(req, self.stowage)
        body = json_object(req)
        require_fields(body, USER_FIELDS)
        if _text(body, "userId", user_id) != user_id:
            raise BadRequest(f"the body's userId does not match {user_id}")
        with self.stowage.catalog.transaction():
            current = self.security.get_user(user_id)
            if current is None:
                raise NotFound(f"user {user_id} not found")
            self.security.save_user(self._user_from_body(body, user_id, current))
        resp.status = falcon.HTTP_204

    def on_delete(self, req: falcon.Request, resp: falcon.Response, user_id: str) -> None:
        caller = require_admin(req, self.stowage)
        if caller.user_id == user_id:
            raise BadRequest("you cannot delete the user you are signed in as")
        with self.stowage.catalog.transaction():
            if not self.security.delete_user(user_id):
                raise NotFound(f"user {user_id} not found")
            self.stowage.tokens.revoke_all(user_id=user_id)
        resp.status = falcon.HTTP_204


class ChangePasswordResource(SecurityResource):
    """``text/plain`` body: the new password. The admin, or the user themself."""

    def on_put(self, req: falcon.Request, resp: falcon.Response, user_id: str) -> None:
        from stowage.errors import Unauthorized
        from stowage.http.auth import BASIC_CHALLENGE, authenticate

        caller = authenticate(req, self.stowage)
        if caller is None:
            raise Unauthorized("authentication required", headers={"WWW-Authenticate": BASIC_CHALLENGE})
        if caller.user_id != user_id or caller.source != "default":
            # A directory user whose id is also a local user's is not that user (nor may it change a
            # directory password here): only an administrator may then.
            require_admin(req, self.stowage)
        password = req.bounded_stream.read(64 * 1024).decode("utf-8", "replace").strip("\r\n")
        if not password:
            raise BadRequest("the body must be the new password (text/plain)")
        with self.stowage.catalog.transaction():
            user = self.security.get_user(user_id)
            if user is None:
                raise NotFound(f"user {user_id} not found")
            status = "active" if user.status == "changepassword" else user.status
            self.security.save_user(evolve(user, status=status), password)
        # Whoever held the old password may hold a browser session: it ends (the caller's own stays).
        from stowage.http.session import current_session, sessions

        own = current_session(req, self.stowage)
        sessions(self.stowage).end_all_for(user_id, keep=own.key if own is not None else None)
        resp.status = falcon.HTTP_204


class RolesResource(SecurityResource):
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        require_admin(req, self.stowage)
        source = req.get_param("source")
        resp.media = [role_json(r) for r in self.security.list_roles()
                      if source is None or r.get("source", "default") == source]

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        require_admin(req, self.stowage)
        body = json_object(req)
        role_id = _text(body, "id")
        if not _ID.match(role_id):
            raise BadRequest("id is required: letters, digits, '.', '_', '-', '@' (at most 128)")
        with self.stowage.catalog.transaction():
            if self.security.get_role(role_id) is not None:
                raise BadRequest(f"role {role_id} already exists")
            role = self._role_from_body(body, role_id)
            self.security.save_role(role)
        resp.media = role_json(role)

    def _role_from_body(self, body: dict[str, Any], role_id: str) -> dict[str, Any]:
        roles = _string_list(body, "roles")
        if role_id in roles:
            raise BadRequest(f"role {role_id} cannot contain itself")
        self._check_roles(roles)
        return {"id": role_id, "name": _text(body, "name", role_id) or role_id,
                "description": _text(body, "description"), "privileges": _string_list(body, "privileges"),
                "roles": roles, "source": "default"}


class RoleResource(RolesResource):
    #: inherited from the collection with another signature: POST to one role is a 405, not a TypeError (500).
    on_post = None
    def on_get(self, req: falcon.Request, resp: falcon.Response, role_id: str) -> None:  # type: ignore[override]
        require_admin(req, self.stowage)
        role = self.security.get_role(role_id)
        if role is None:
            raise NotFound(f"role {role_id} not found")
        resp.media = role_json(role)

    def on_put(self, req: falcon.Request, resp: falcon.Response, role_id: str) -> None:
        require_admin(req, self.stowage)
        body = json_object(req)
        require_fields(body, ROLE_FIELDS)
        if _text(body, "id", role_id) != role_id:
            raise BadRequest(f"the body's id does not match {role_id}")
        if role_id == ADMIN_ROLE:
            raise BadRequest(f"role {ADMIN_ROLE} is built in and cannot be changed")
        with self.stowage.catalog.transaction():
            if self.security.get_role(role_id) is None:
                raise NotFound(f"role {role_id} not found")
            self.security.save_role(self._role_from_body(body, role_id))
        resp.status = falcon.HTTP_204

    def on_delete(self, req: falcon.Request, resp: falcon.Response, role_id: str) -> None:
        require_admin(req, self.stowage)
        if role_id in BUILTIN_ROLES:
            raise BadRequest(f"role {role_id} is built in and cannot be deleted")
        with self.stowage.catalog.transaction():
            if self.security.get_role(role_id) is None:
                raise NotFound(f"role {role_id} not found")
            holders = [u.user_id for u in self.security.list_users() if role_id in u.roles]
            parents = [r["id"] for r in self.security.list_roles() if role_id in r.get("roles", ())]
            if holders or parents:
                raise Conflict(f"role {role_id} is still used by " + ", ".join(
                    [f"user {u}" for u in holders] + [f"role {r}" for r in parents]))
            self.security.delete_role(role_id)
        resp.status = falcon.HTTP_204


class AnonymousResource(SecurityResource):
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        require_admin(req, self.stowage)
        resp.media = self.security.anonymous_settings()

    def on_put(self, req: falcon.Request, resp: falcon.Response) -> None:
        require_admin(req, self.stowage)
        body = json_object(req)
        enabled = body.get("enabled")
        if not isinstance(enabled, bool):
            raise ValidationFailed([{"id": "PARAMETER enabled", "message": "must be true or false"}])
        current = self.security.anonymous_settings()
        resp.media = self.security.set_anonymous_settings(
            enabled, _text(body, "userId", current["userId"]) or current["userId"],
            _text(body, "realmName", current["realmName"]) or current["realmName"])


def register(app: falcon.App, stowage: "Stowage") -> None:
    base = f"{V1}/security"
    app.add_route(f"{base}/users", UsersResource(stowage))
    app.add_route(f"{base}/users/{{user_id}}", UserResource(stowage))
    app.add_route(f"{base}/users/{{user_id}}/change-password", ChangePasswordResource(stowage))
    app.add_route(f"{base}/roles", RolesResource(stowage))
    app.add_route(f"{base}/roles/{{role_id}}", RoleResource(stowage))
    app.add_route(f"{base}/anonymous", AnonymousResource(stowage))
