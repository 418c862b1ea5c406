"""Default authentication (HTTP basic, stored bearer tokens, user tokens) and permissions (Nexus-style
privileges)."""

from __future__ import annotations

import base64
from typing import TYPE_CHECKING

from stowage.hookspecs import hookimpl
from stowage.security import Action, User
from stowage.tokens import NPM, USER_TOKEN

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
        user = stowage.security.check_password(user_id, password)
        if user is None and stowage.tokens.user_tokens.enabled:
            # A user token: the name code and pass code as user name and password.
            user = stowage.tokens.authenticate(f"{user_id}:{password}", kinds=(USER_TOKEN,))
        return user
    if scheme == "bearer":
        return stowage.tokens.authenticate(credentials, kinds=(NPM,))
    return None


@hookimpl(trylast=True)
def stowage_permission(user: User | None, repository: "Repository", action: Action) -> bool | None:
    return repository.stowage.security.allows(user, repository.format_name, repository.name, action)
