"""Access checks for the REST API."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import falcon

from stowage.errors import BadRequest, Forbidden, Unauthorized, UnsupportedMediaType
from stowage.http.auth import BASIC_CHALLENGE, authenticate
from stowage.security import Action, User

if TYPE_CHECKING:
    from stowage.repository import Repository
    from stowage.stowage import Stowage


def require_admin(req: falcon.Request, stowage: "Stowage") -> User:
    user = authenticate(req, stowage)
    if user is None:
        raise Unauthorized("authentication required", headers={"WWW-Authenticate": BASIC_CHALLENGE})
    if "nx-all" not in stowage.security.privileges(user.roles):
        raise Forbidden(f"user {user.user_id} is not an administrator")
    return user


def require_repository(req: falcon.Request, stowage: "Stowage", repository: "Repository", action: Action) -> User | None:
    user = authenticate(req, stowage)
    if stowage.plugins.hook.stowage_permission(user=user, repository=repository, action=action):
        return user
    if user is None:
        raise Unauthorized("authentication required", headers={"WWW-Authenticate": BASIC_CHALLENGE})
    raise Forbidden(f"user {user.user_id} may not {action.value} repository {repository.name}")


def can_read(req: falcon.Request, stowage: "Stowage", repository: "Repository") -> bool:
    user = authenticate(req, stowage)
    return bool(stowage.plugins.hook.stowage_permission(user=user, repository=repository, action=Action.READ))


def require_json(req: falcon.Request) -> None:
    """A JSON endpoint reads only a body declared as JSON: a form or ``text/plain`` body is what a page of
    another site can make a browser send without asking (CSRF), so it is refused, never parsed."""
    media_type = (req.content_type or "").split(";")[0].strip().lower()
    if media_type != "application/json":
        raise UnsupportedMediaType(f"the body must be JSON (Content-Type: application/json), "
                                   f"not {media_type or 'undeclared'}")


def json_object(req: falcon.Request) -> dict[str, Any]:
    """The request's JSON body, which must be an object; a clear 400 otherwise (415 when not JSON)."""
    require_json(req)
    try:
        body = req.get_media()
    except falcon.MediaNotFoundError:
        raise BadRequest("a JSON body is required") from None
    except falcon.MediaMalformedError as error:
        raise BadRequest(f"the body is not valid JSON: {error.description}") from None
    if not isinstance(body, dict):
        raise BadRequest("the body must be a JSON object")
    return body
