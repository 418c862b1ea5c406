"""Users, roles, privileges and passwords, kept in the catalog so every node agrees (tokens:
:mod:`stowage.tokens`; throttling: :mod:`stowage.signin`).

Privileges follow Nexus's names: ``nx-all``; ``nx-repository-view-<format>-<repository>-<action>`` with
actions ``browse``, ``read``, ``add``, ``edit``, ``delete`` and ``*`` wildcards. Passwords are hashed
with scrypt (standard library); verified credentials are remembered briefly per process, keyed on the
stored hash, so a password change takes effect at once.
"""

from __future__ import annotations

import base64
import enum
import hashlib
import hmac
import os
import secrets
import threading
import time
from pathlib import Path
from typing import Any, Iterable

from attrs import evolve, field, frozen

from stowage.catalog import Catalog
from stowage.csel import CselError, Selector, parse as parse_selector
from stowage.privileges import PRIVILEGES, SELECTORS, ContentAccess, Grants, compile_grants
from stowage.realms import LDAP_REALM, LOCAL_REALM, ActiveRealms, PasswordRealm

USERS = "security.users"
ROLES = "security.roles"
#: (namespace, key) of the anonymous-access switch; absent until the REST API sets it.
ANONYMOUS_SETTINGS = ("security.settings", "anonymous")
#: changes whenever roles, privileges or content selectors change: processes drop cached decisions then.
SECURITY_GENERATION = ("security.settings", "generation")
ANONYMOUS_USER = "anonymous"
ANONYMOUS_REALM = "NexusAuthorizingRealm"

#: realms that check a user's real password (``protectContent`` refuses them on content endpoints).
PASSWORD_REALMS = frozenset({LOCAL_REALM, LDAP_REALM})

#: the audience of the REST API (``/service/rest``), the UI and the metrics endpoints; repository content
#: is addressed by format name (``npm``, ``pypi``, ``docker``...).
REST_AUDIENCE = "rest"

ANONYMOUS_ROLE = "nx-anonymous"
ADMIN_ROLE = "nx-admin"

BUILTIN_ROLES: dict[str, dict[str, Any]] = {
    ADMIN_ROLE: {"id": ADMIN_ROLE, "name": ADMIN_ROLE, "description": "Administrator Role",
                 "privileges": ["nx-all"], "roles": [], "source": "default"},
    ANONYMOUS_ROLE: {"id": ANONYMOUS_ROLE, "name": ANONYMOUS_ROLE, "description": "Anonymous Role",
                     "privileges": ["nx-repository-view-*-*-browse", "nx-repository-view-*-*-read"],
                     "roles": [], "source": "default"},
    "nx-deployer": {"id": "nx-deployer", "name": "nx-deployer", "description": "Read and publish everywhere",
                    "privileges": ["nx-repository-view-*-*-*"], "roles": [], "source": "default"},
}


class Action(enum.Enum):
    """What a request does to a repository; maps onto Nexus privilege actions."""

    READ = "read"
    WRITE = "write"
    DELETE = "delete"

    @property
    def privilege_actions(self) -> tuple[str, ...]:
        return {"read": ("read", "browse"), "write": ("add", "edit"), "delete": ("delete",)}[self.value]

    @classmethod
    def of_method(cls, method: str) -> "Action":
        """What an HTTP method does by default: GET/HEAD/OPTIONS read, DELETE deletes, anything else
        writes (formats with endpoints that differ decide per endpoint in ``action_for``)."""
        return _METHOD_ACTIONS.get(method, cls.WRITE)


#: built once: ``Action.of_method`` runs on every repository request.
_METHOD_ACTIONS = {"GET": Action.READ, "HEAD": Action.READ, "OPTIONS": Action.READ, "DELETE": Action.DELETE}


@frozen
class User:
    """A user as stored, and (for a request) how it signed in.

    ``identity`` is random per created user: a user deleted and created again under the same id is a new
    identity, and tokens of the old one stay dead. ``generation`` counts credential changes (password
    change, disable): every token records both, and verifies only while they match.
    """

    user_id: str
    roles: tuple[str, ...] = ()
    first_name: str = ""
    last_name: str = ""
    email_address: str = ""
    status: str = "active"
    source: str = "default"
    password_hash: str = field(default="", repr=False)
    identity: str = ""
    generation: int = 0
    #: the realm that authenticated this request's credentials ("" for a user read from the catalog).
    realm: str = ""
    #: the audiences the credentials are good for (None: every audience, as a password is).
    audiences: tuple[str, ...] | None = None
    #: credentials that stand for no one (a registry's anonymous bearer token): a repository request that
    #: carries them is served as an anonymous caller's.
    anonymous: bool = False

    def accepted_by(self, audience: str) -> bool:
        return self.audiences is None or audience in self.audiences


# -- passwords ------------------------------------------------------------------------------------------

_SCRYPT = {"n": 2**14, "r": 8, "p": 1}


def hash_password(password: str) -> str:
    salt = os.urandom(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, dklen=32, **_SCRYPT)
    return "scrypt${n}${r}${p}${salt}${hash}".format(
        **_SCRYPT, salt=base64.b64encode(salt).decode(), hash=base64.b64encode(digest).decode())


def verify_password(password: str, stored: str) -> bool:
    try:
        scheme, n, r, p, salt, expected = stored.split("$")
    except ValueError:
        return False
    if scheme != "scrypt":
        return False
    digest = hashlib.scrypt(password.encode(), salt=base64.b64decode(salt), n=int(n), r=int(r), p=int(p),
                            dklen=32)
    return hmac.compare_digest(digest, base64.b64decode(expected))


class SecurityRealm:
    """Users, roles and tokens over the catalog, with a short per-process cache of verified passwords."""

    #: seconds a verified (user, password) pair is trusted without running scrypt again.
    VERIFIED_TTL = 300
    #: seconds between checks of the security generation (see :meth:`allows`): how soon a change made
    #: by another process or node applies here.
    DECISION_TTL = 1.0
    #: users :meth:`current_user` keeps per generation (those holding live tokens: a bound, not a guess).
    MAX_CACHED_USERS = 10_000

    def __init__(self, catalog: Catalog, *, anonymous_access: bool = True):
        self.catalog = catalog
        #: the configuration file's ``anonymousAccess``: applies until the REST API stores a setting.
        self.default_anonymous_access = anonymous_access
        self._verified: dict[str, tuple[str, float]] = {}
        self._decisions: dict[tuple, Any] = {}
        self._grants: dict[tuple[str, ...], Grants] = {}
        self._selectors: dict[str, Selector | None] = {}
        self._users: dict[str, User | None] = {}
        self._generation: Any = None
        self._generation_checked = float("-inf")
        self._anonymous: tuple[bool, float] | None = None
        self._lock = threading.Lock()
        #: which realms authenticate, in order (``/service/rest/v1/security/realms/active``).
        self.realms = ActiveRealms(catalog)
        #: realms other than the local one that check passwords (``LdapRealm``), by realm id.
        self.password_realms: dict[str, PasswordRealm] = {}

    # -- anonymous access (in the catalog, so every node and worker agrees at once) --------------------
    def anonymous_settings(self) -> dict[str, Any]:
        """Nexus's ``AnonymousAccessSettingsXO``: ``enabled``, ``userId``, ``realmName``."""
        stored = self.catalog.get_document(*ANONYMOUS_SETTINGS) or {}
        return {"enabled": bool(stored.get("enabled", self.default_anonymous_access)),
                "userId": stored.get("userId", ANONYMOUS_USER),
                "realmName": stored.get("realmName", ANONYMOUS_REALM)}

    def set_anonymous_settings(self, enabled: bool, user_id: str = ANONYMOUS_USER,
                               realm_name: str = ANONYMOUS_REALM) -> dict[str, Any]:
        self.catalog.put_document(*ANONYMOUS_SETTINGS, {"enabled": bool(enabled), "userId": user_id,
                                                        "realmName": realm_name})
        self._anonymous = None
        return self.anonymous_settings()

    @property
    def anonymous_access(self) -> bool:
        """Read on every anonymous request: reused for :attr:`DECISION_TTL` seconds, like permission
        decisions (a change made on another node applies within that second; in this process, at once)."""
        now = time.monotonic()
        cached = self._anonymous
        if cached is not None and cached[1] > now:
            return cached[0]
        enabled = self.anonymous_settings()["enabled"]
        self._anonymous = (enabled, now + self.DECISION_TTL)
        return enabled

    # -- users ------------------------------------------------------------------------------------------
    def get_user(self, user_id: str) -> User | None:
        data = self.catalog.get_document(USERS, user_id)
        if data is None:
            return None
        return User(user_id=user_id, roles=tuple(data.get("roles", ())), first_name=data.get("firstName", ""),
                    last_name=data.get("lastName", ""), email_address=data.get("emailAddress", ""),
                    status=data.get("status", "active"), source=data.get("source", "default"),
                    password_hash=data.get("passwordHash", ""), identity=data.get("identity", ""),
                    generation=int(data.get("generation", 0)))

    def save_user(self, user: User, password: str | None = None) -> User:
        """Create or update ``user``; a new password, or leaving the ``active`` status, starts a new
        credential generation (every token of the user stops working)."""
        new_hash = hash_password(password) if password is not None else None  # scrypt: not under the lock
        with self.catalog.transaction():
            stored = self.get_user(user.user_id)
            identity = stored.identity if stored and stored.identity else secrets.token_hex(16)
            generation = stored.generation if stored else 0
            if stored and (password is not None or (stored.status == "active" and user.status != "active")):
                generation += 1
            password_hash = new_hash or (stored.password_hash if stored else user.password_hash)
            self.catalog.put_document(USERS, user.user_id, {
                "roles": list(user.roles), "firstName": user.first_name, "lastName": user.last_name,
                "emailAddress": user.email_address, "status": user.status, "source": user.source,
                "passwordHash": password_hash, "identity": identity, "generation": generation})
            self._user_changed()
        return self.get_user(user.user_id)  # type: ignore[return-value]

    def delete_user(self, user_id: str) -> bool:
        """Delete the user; its tokens die with its identity (a user created again gets a new one)."""
        with self.catalog.transaction():
            deleted = self.catalog.delete_document(USERS, user_id)
            self._user_changed()
        return deleted

    def current_user(self, user_id: str) -> User | None:
        """:meth:`get_user` for a credential check on every request (a token's user): reused until the
        security generation moves, which every change of a user moves (see :meth:`changed`). A password
        change, disable or delete therefore ends the user's tokens at once in this process and within
        :attr:`DECISION_TTL` in the others, the bound role and privilege changes have."""
        self._check_generation()
        users = self._users  # this generation's: a read that races a change lands in a dropped one
        if user_id in users:
            return users[user_id]
        user = self.get_user(user_id)
        if len(users) < self.MAX_CACHED_USERS:
            users[user_id] = user
        return user

    def _user_changed(self) -> None:
        """Inside the change's transaction: every process drops its cached users and decisions. This one
        drops them again once the change commits, so a request that read the user before the commit
        cannot leave the old credentials cached."""
        self.changed()
        self.catalog.after_commit(self._forget)

    def holds_current_credentials(self, user: User | None, identity: str, generation: int) -> User | None:
        """``user`` when it is active and still the identity and credential generation a token was issued
        to; None otherwise."""
        if user is None or user.status != "active" or not identity:
            return None
        if not hmac.compare_digest(user.identity, identity) or user.generation != generation:
            return None
        return user

    def is_admin(self, user: User) -> bool:
        return "nx-all" in self.privileges(user.roles)

    def list_users(self) -> list[User]:
        return [u for u in (self.get_user(key) for key, _ in self.catalog.list_documents(USERS)) if u]

    def check_password(self, user_id: str, password: str) -> User | None:
        """The user whom the first active realm that knows ``user_id`` with this password signs in."""
        for realm_id in self.realms.active():
            realm = self.password_realms.get(realm_id)
            if realm_id == LOCAL_REALM:
                user = self.check_local_password(user_id, password)
            elif realm is not None:
                user = realm.authenticate(user_id, password)
            else:
                continue
            if user is not None:
                return user if user.realm else evolve(user, realm=realm_id)
        return None

    def find_user(self, user_id: str, source: str | None = None) -> User | None:
        """A local user, or one an active password realm knows (for credentials issued earlier: tokens)."""
        if source in (None, "default"):
            user = self.get_user(user_id)
            if user is not None or source == "default":
                return user
        for realm_id in self.realms.active():
            realm = self.password_realms.get(realm_id)
            user = realm.find_user(user_id) if realm is not None else None
            if user is not None and source in (None, user.source):
                return user
        return None

    def check_local_password(self, user_id: str, password: str) -> User | None:
        user = self.get_user(user_id)
        if user is None or user.status != "active" or not user.password_hash:
            return None
        key = hashlib.sha256(f"{user_id}\0{password}".encode()).hexdigest()
        now = time.monotonic()
        with self._lock:
            cached = self._verified.get(key)
        if cached and cached[0] == user.password_hash and cached[1] > now:
            return evolve(user, realm=LOCAL_REALM)
        if not verify_password(password, user.password_hash):
            return None
        with self._lock:
            if len(self._verified) > 10_000:
                self._verified.clear()
            self._verified[key] = (user.password_hash, now + self.VERIFIED_TTL)
        return evolve(user, realm=LOCAL_REALM)

    # -- roles ------------------------------------------------------------------------------------------
    def get_role(self, role_id: str) -> dict[str, Any] | None:
        return self.catalog.get_document(ROLES, role_id) or BUILTIN_ROLES.get(role_id)

    def list_roles(self) -> list[dict[str, Any]]:
        stored = dict(self.catalog.list_documents(ROLES))
        return [stored.get(k) or v for k, v in BUILTIN_ROLES.items()] + \
            [v for k, v in stored.items() if k not in BUILTIN_ROLES]

    def save_role(self, role: dict[str, Any]) -> None:
        self.catalog.put_document(ROLES, role["id"], role)
        self.changed()

    def delete_role(self, role_id: str) -> bool:
        deleted = self.catalog.delete_document(ROLES, role_id)
        self.changed()
        return deleted

    # -- privileges and content selectors (see stowage.privileges) -------------------------------------
    def get_privilege(self, name: str) -> dict[str, Any] | None:
        """A privilege created through the REST API (built-in ones are not stored)."""
        return self.catalog.get_document(PRIVILEGES, name)

    def list_privileges(self) -> list[dict[str, Any]]:
        return [value for _, value in self.catalog.list_documents(PRIVILEGES)]

    def save_privilege(self, privilege: dict[str, Any]) -> None:
        self.catalog.put_document(PRIVILEGES, privilege["name"], privilege)
        self.changed()

    def delete_privilege(self, name: str) -> bool:
        deleted = self.catalog.delete_document(PRIVILEGES, name)
        self.changed()
        return deleted

    def get_selector(self, name: str) -> dict[str, Any] | None:
        return self.catalog.get_document(SELECTORS, name)

    def list_selectors(self) -> list[dict[str, Any]]:
        return [value for _, value in self.catalog.list_documents(SELECTORS)]

    def save_selector(self, selector: dict[str, Any]) -> None:
        parse_selector(selector["expression"])  # never store what cannot be evaluated
        self.catalog.put_document(SELECTORS, selector["name"], selector)
        self.changed()

    def delete_selector(self, name: str) -> bool:
        deleted = self.catalog.delete_document(SELECTORS, name)
        self.changed()
        return deleted

    # -- cached decisions ------------------------------------------------------------------------------
    def changed(self) -> None:
        """Roles, privileges or selectors changed: every process drops its cached decisions (this one at
        once, the others within :attr:`DECISION_TTL`). Call it inside the change's transaction."""
        self.catalog.put_document(*SECURITY_GENERATION, secrets.token_hex(8))
        self._forget()

    def _forget(self) -> None:
        self._decisions = {}
        self._grants = {}
        self._selectors = {}
        self._users: dict[str, User | None] = {}
        self._generation_checked = float("-inf")

    def _check_generation(self) -> None:
        """Decisions are cached until the catalog's security generation moves; it is read at most once per
        :attr:`DECISION_TTL`, so the per-request cost is a clock read and a dictionary lookup."""
        now = time.monotonic()
        if now - self._generation_checked < self.DECISION_TTL:
            return
        generation = self.catalog.get_document(*SECURITY_GENERATION)
        if generation != self._generation:
            self._forget()
            self._generation = generation
        self._generation_checked = now

    def grants(self, roles: Iterable[str]) -> Grants:
        """What the privileges of ``roles`` (and the roles they contain) grant, compiled and cached."""
        self._check_generation()
        key = tuple(roles)
        found = self._grants.get(key)
        if found is None:
            stored = dict(self.catalog.list_documents(PRIVILEGES))
            found = compile_grants(sorted(self.privileges(key)), stored)
            self._grants[key] = found
        return found

    def _selector(self, name: str) -> Selector | None:
        if name not in self._selectors:
            document = self.get_selector(name)
            try:
                self._selectors[name] = parse_selector(document["expression"]) if document else None
            except CselError:
                self._selectors[name] = None  # stored before a grammar change: grants nothing
        return self._selectors[name]

    def permits(self, user: User | None, *permission: str) -> bool:
        """Whether ``user`` holds the permission (``"nexus", "users", "read"``); nx-all holds every one."""
        roles = (ANONYMOUS_ROLE,) if user is None else tuple(user.roles)
        return self.grants(roles).permits(*permission)

    def privileges(self, roles: Iterable[str]) -> set[str]:
        found: set[str] = set()
        pending, seen = list(roles), set()
        while pending:
            role_id = pending.pop()
            if role_id in seen:
                continue
            seen.add(role_id)
            role = self.get_role(role_id)
            if role:
                found.update(role.get("privileges", ()))
                pending.extend(role.get("roles", ()))
        return found

    def allows(self, user: User | None, format_name: str, repository: str, action: Action) -> bool:
        """Whether the roles of ``user`` (None: anonymous) grant ``action`` on the repository.

        Decisions are cached per (roles, repository, action) until the security generation moves (see
        :meth:`_check_generation`): this is on every request's path, and resolving roles reads the catalog.
        A user's roles are part of the key, so changing them applies at once; a change to roles,
        privileges or selectors made by another process or node applies within :attr:`DECISION_TTL`.
        Content-selector privileges never make this True: see :meth:`content_access`.
        """
        roles = self._roles_of(user)
        if roles is None:
            return False
        self._check_generation()
        key = (roles, format_name, repository, action)
        cached = self._decisions.get(key)
        if cached is None:
            cached = self.grants(roles).views(format_name, repository, action.privilege_actions)
            self._remember(key, cached)
        return cached

    def content_access(self, user: User | None, format_name: str, repository: str,
                       action: Action) -> ContentAccess | None:
        """The content of the repository that ``repository-content-selector`` privileges let ``user``
        ``action``, or None when they grant nothing there. Cached like :meth:`allows`."""
        roles = self._roles_of(user)
        if roles is None:
            return None
        self._check_generation()
        key = ("content", roles, format_name, repository, action)
        cached = self._decisions.get(key, False)
        if cached is False:
            names = self.grants(roles).selector_names(format_name, repository, action.privilege_actions)
            selectors = tuple(s for s in (self._selector(n) for n in dict.fromkeys(names)) if s is not None)
            cached = ContentAccess(format_name, selectors) if selectors else None
            self._remember(key, cached)
        return cached

    def _roles_of(self, user: User | None) -> tuple[str, ...] | None:
        if user is None:
            return (ANONYMOUS_ROLE,) if self.anonymous_access else None
        return tuple(user.roles)

    def _remember(self, key: tuple, value: Any) -> None:
        if len(self._decisions) > 10_000:
            self._decisions = {}
        self._decisions[key] = value

    # -- bootstrap --------------------------------------------------------------------------------------
    def bootstrap_admin(self, data_dir: Path) -> str | None:
        """Create ``admin`` on first start; returns the generated password when one was written to disk."""
        if self.get_user("admin") is not None:
            return None
        password = os.environ.get("STOWAGE_ADMIN_PASSWORD")
        generated = None
        if not password:
            password = generated = secrets.token_urlsafe(18)
            path = data_dir / "admin.password"
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as handle:
                handle.write(password)
        self.save_user(User(user_id="admin", roles=(ADMIN_ROLE,), first_name="Administrator", last_name="User",
                            email_address="admin@example.org"), password)
        return generated
