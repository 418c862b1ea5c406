"""Default authentication (HTTP basic, bearer tokens) and permissions (Nexus-style privileges)."""

from __future__ import annotations

import base64
from typing import TYPE_CHECKING

from stowage.hookspecs import hookimpl
from stowage.security import Action, User

if TYPE_CHECKING:
    from stowage.repository import Repository
    from stowage.stowage import Stowage


@hookimpl(trylast=True)
def stowage_authenticate(stowage: "Stowage", scheme: str, credentials: str) -> User | None:
    if scheme == "basic":
        try:
            user_id, _, password = base64.b64decode(credentials, validate=True).decode().partition(":")
        except ValueError:  # not base64 (binascii.Error), not ASCII, not UTF-8 (UnicodeDecodeError)
            return None
        return stowage.security.check_password(user_id, password)
    if scheme == "bearer":
        return stowage.security.user_for_token(credentials)
    return None


@hookimpl(trylast=True)
def stowage_permission(user: User | None, repository: "Repository", action: Action) -> bool | None:
    return repository.stowage.security.allows(user, repository.format_name, repository.name, action)
