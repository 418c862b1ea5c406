"""Access checks for the REST API."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import falcon

from stowage.errors import BadRequest, Forbidden, Unauthorized, UnsupportedMediaType
from stowage.http.auth import BASIC_CHALLENGE, authenticate
from stowage.security import Action, User

if TYPE_CHECKING:
    from stowage.privileges import ContentAccess
    from stowage.repository import Repository
    from stowage.stowage import Stowage


def require_admin(req: falcon.Request, stowage: "Stowage") -> User:
    user = authenticate(req, stowage)
    if user is None:
        raise Unauthorized("authentication required", headers={"WWW-Authenticate": BASIC_CHALLENGE})
    if not stowage.security.permits(user, "nexus", "*"):  # nx-all, or a wildcard privilege nexus:*
        raise Forbidden(f"user {user.user_id} is not an administrator")
    return user


def require_repository(req: falcon.Request, stowage: "Stowage", repository: "Repository", action: Action) -> User | None:
    user = authenticate(req, stowage)
    if stowage.permits(user, repository, action):
        return user
    if user is None:
        raise Unauthorized("authentication required", headers={"WWW-Authenticate": BASIC_CHALLENGE})
    raise Forbidden(f"user {user.user_id} may not {action.value} repository {repository.name}")


def repository_access(req: falcon.Request, stowage: "Stowage", repository: "Repository",
                      action: Action) -> "ContentAccess | None":
    """As :func:`require_repository`, but a caller whose grant here is a content-selector privilege
    passes too: the answer is then the :class:`~stowage.privileges.ContentAccess` that limits what they
    see (None: everything). It is remembered on the request for :func:`visible_items`."""
    user = authenticate(req, stowage)
    limits = _limits(req)
    if stowage.permits(user, repository, action):
        limits.pop(repository.name, None)
        return None
    access = stowage.security.content_access(user, repository.format_name, repository.name, action)
    if access is not None:
        limits[repository.name] = access
        return access
    if user is None:
        raise Unauthorized("authentication required", headers={"WWW-Authenticate": BASIC_CHALLENGE})
    raise Forbidden(f"user {user.user_id} may not {action.value} repository {repository.name}")


def _limits(req: falcon.Request) -> dict[str, "ContentAccess"]:
    limits = getattr(req.context, "content_limits", None)
    if limits is None:
        limits = req.context.content_limits = {}
    return limits


def visible_items(req: falcon.Request, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Component or asset JSON items (``repository``, ``path`` or ``assets``) without what content selectors
    hide from the caller: an asset is shown when its path is permitted, a component when one of its
    assets is. Repositories not limited by :func:`repository_access` are shown whole."""
    limits = getattr(req.context, "content_limits", None)
    if not limits:
        return items
    shown = []
    for item in items:
        access = limits.get(item.get("repository"))
        if access is None:
            shown.append(item)
        elif "assets" in item:
            assets = [a for a in item["assets"] if access.permits(a["path"])]
            if assets:
                shown.append({**item, "assets": assets})
        elif access.permits(item["path"]):
            shown.append(item)
    return shown


def can_read(req: falcon.Request, stowage: "Stowage", repository: "Repository") -> bool:
    user = authenticate(req, stowage)
    return stowage.permits(user, repository, Action.READ)


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


def require_permission(req: falcon.Request, stowage: "Stowage", domain: str, verb: str) -> User:
    """An authenticated caller holding ``nexus:<domain>:<verb>`` (an application privilege such as
    ``nx-selectors-read``, or nx-all): 401 without credentials, 403 without the privilege."""
    user = authenticate(req, stowage)
    if user is None:
        raise Unauthorized("authentication required", headers={"WWW-Authenticate": BASIC_CHALLENGE})
    if not stowage.security.permits(user, "nexus", domain, verb):
        raise Forbidden(f"user {user.user_id} lacks the privilege nx-{domain}-{verb}")
    return user
