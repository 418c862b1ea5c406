"""``npm login`` / ``npm adduser`` (CouchDB user documents) and ``npm logout``: bearer tokens bound to a
Stowage user, kept hashed in the catalog by core's token store (so every process and node accepts them).

A token is good for npm repositories only, lives ``[server] npmTokenDays``, and dies with its user's
password, status or identity (see ``stowage.tokens``).
"""

from __future__ import annotations

from typing import Any

from stowage.plugin import BadRequest, Forbidden, NotFound, RepoRequest, Unauthorized, sign_in

from stowage_npm.hosted import read_json

#: the kind of stored token, and the audience it is good for (the format name).
TOKEN_KIND = AUDIENCE = "npm"


def login(request: RepoRequest, user_name: str) -> dict[str, Any]:
    """``PUT -/user/org.couchdb.user:<name>`` with ``{"name", "password"}``: a token for that user.

    Users are managed by Stowage (UI/REST); npm cannot create them, so ``adduser`` of an unknown name
    is refused like a wrong password. A user token's name code and pass code sign in as its user.
    """
    body = read_json(request, limit=64 * 1024)
    if not isinstance(body, dict):
        raise BadRequest("the login document must be a JSON object")
    name = body.get("name", user_name)
    password = body.get("password")
    if name != user_name or not isinstance(password, str):
        raise BadRequest("the login document needs the user's name (matching the URL) and password")
    challenge = request.repository.handler.challenge(request)
    try:
        user = sign_in(request.req, request.stowage, name, password, audience=AUDIENCE, challenge=challenge)
    except Unauthorized as error:
        raise Unauthorized(f"{error.message} for {name} (users are created in Stowage, not by npm)",
                           headers=error.headers) from None
    days = request.stowage.settings.npm_token_days
    token, _ = request.stowage.tokens.issue(user, TOKEN_KIND, audiences=(AUDIENCE,),
                                            lifetime=days * 86400 if days > 0 else None, prefix="npm_")
    return {"ok": True, "id": f"org.couchdb.user:{user.user_id}", "rev": "_we_dont_use_revs_any_more",
            "token": token}


def logout(request: RepoRequest, token: str) -> dict[str, Any]:
    """``DELETE -/user/token/<token>``: revoke a token of the caller (admins may revoke any)."""
    if request.user is None:
        raise Unauthorized("log in to revoke a token",
                           headers={"WWW-Authenticate": request.repository.handler.challenge(request)})
    stowage = request.stowage
    owner = stowage.tokens.owner_of(token)
    if owner is None or owner.kind != TOKEN_KIND:
        raise NotFound("no such token")
    if owner.user_id != request.user.user_id and not stowage.security.is_admin(request.user):
        raise Forbidden("a token can only be revoked by its user or an administrator")
    stowage.tokens.revoke_secret(token)
    return {"ok": True}
