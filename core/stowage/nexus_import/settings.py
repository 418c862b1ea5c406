"""Copy configuration from the source to the target, each kind through its REST endpoints.

Order matters: blob stores and routing rules before the repositories that name them, members before
their groups. Whatever already exists on the target is left alone (skipped), so a second run is safe.
"""

from __future__ import annotations

import secrets
from typing import Any, Callable, Iterable

from stowage.nexus_import.client import V1, NexusRest, RestError
from stowage.nexus_import.report import Report
from stowage.serialization import without_nulls

#: repository types in creation order (groups name hosted and proxy repositories, and other groups).
_TYPE_ORDER = {"hosted": 0, "proxy": 1, "group": 2}
#: what Nexus answers that is not part of a create body.
_ANSWER_ONLY = ("url", "format", "type")


class SettingsCopier:
    def __init__(self, source: NexusRest, target: NexusRest, report: Report, *, dry_run: bool = False,
                 repositories: set[str] | None = None):
        self.source, self.target, self.report = source, target, report
        self.dry_run = dry_run
        self.only = repositories

    # -- helpers ---------------------------------------------------------------------------------------
    def _source_list(self, kind: str, path: str, **params: Any) -> list[Any] | None:
        try:
            found = self.source.get_json(path, **params)
        except RestError as error:
            if error.status in (404, 405, 501):
                self.report.skip(kind, "*", f"the source has no {path} endpoint")
                return None
            raise
        return found.get("items", found) if isinstance(found, dict) else found

    def _create(self, kind: str, name: str, exists: bool, create: Callable[[], Any]) -> bool:
        if exists:
            self.report.skip(kind, name, "already on the target")
            return False
        if self.dry_run:
            self.report.copy(kind, name)
            return True
        try:
            create()
        except RestError as error:
            if error.status in (404, 405, 501):
                self.report.skip(kind, name, f"the target does not support it ({error.status} {error.message})")
            else:
                self.report.fail(kind, name, f"{error.status} {error.message}")
            return False
        self.report.copy(kind, name)
        return True

    def _target_names(self, path: str, key: str, **params: Any) -> set[str] | None:
        try:
            found = self.target.get_json(path, **params)
        except RestError as error:
            if error.status in (404, 405, 501):
                return None
            raise
        items = found.get("items", found) if isinstance(found, dict) else found
        return {item[key] for item in items}

    # -- each kind -------------------------------------------------------------------------------------
    def copy_all(self, formats: set[str] | None = None) -> list[dict[str, Any]]:
        """Copy everything; returns the source repositories copied (or existing) on the target."""
        self.blob_stores()
        self.routing_rules()
        self.cleanup_policies()
        self.roles()
        self.users()
        self.anonymous()
        self.ldap()
        self.realms()
        return self.repositories(formats)

    def blob_stores(self) -> None:
        stores = self._source_list("blob store", f"{V1}/blobstores") or []
        existing = self._target_names(f"{V1}/blobstores", "name") or set()
        for store in stores:
            name = store["name"]
            body: dict[str, Any] = {"name": name, "path": name}
            if store.get("type", "File") == "File":
                try:
                    detail = self.source.get_json(f"{V1}/blobstores/file/{name}")
                    if detail.get("softQuota"):
                        body["softQuota"] = detail["softQuota"]
                except RestError:
                    pass
            else:
                self.report.warn(f"blob store {name} is {store.get('type')} on the source; created as a File "
                                 f"store under the target's data directory")
            self._create("blob store", name, name in existing,
                         lambda body=body: self.target.send_json("POST", f"{V1}/blobstores/file", body))

    def routing_rules(self) -> None:
        rules = self._source_list("routing rule", f"{V1}/routing-rules") or []
        existing = self._target_names(f"{V1}/routing-rules", "name") or set()
        for rule in rules:
            self._create("routing rule", rule["name"], rule["name"] in existing,
                         lambda rule=rule: self.target.send_json("POST", f"{V1}/routing-rules", without_nulls(rule)))

    def cleanup_policies(self) -> None:
        policies = self._source_list("cleanup policy", f"{V1}/cleanup-policies")
        if not policies:
            return
        existing = self._target_names(f"{V1}/cleanup-policies", "name") or set()
        for policy in policies:
            body = without_nulls(policy)
            if body.get("format") == "ALL_FORMATS":  # Nexus's UI spelling of "every format"; Stowage says *
                body["format"] = "*"
            self._create("cleanup policy", policy["name"], policy["name"] in existing,
                         lambda body=body: self.target.send_json("POST", f"{V1}/cleanup-policies", body))

    def roles(self) -> None:
        roles = self._source_list("role", f"{V1}/security/roles", source="default") or []
        existing = self._target_names(f"{V1}/security/roles", "id") or set()
        for role in roles:
            body = {key: role.get(key) for key in ("id", "name", "description", "privileges", "roles")}
            self._create("role", role["id"], role["id"] in existing,
                         lambda body=body: self.target.send_json("POST", f"{V1}/security/roles", without_nulls(body)))

    def users(self) -> None:
        users = self._source_list("user", f"{V1}/security/users", source="default") or []
        existing = self._target_names(f"{V1}/security/users", "userId") or set()
        for user in users:
            user_id = user["userId"]
            if user_id == "anonymous":
                self.report.skip("user", user_id, "the target has its own anonymous user")
                continue
            body = {"userId": user_id, "firstName": user.get("firstName") or user_id,
                    "lastName": user.get("lastName") or user_id, "emailAddress": user.get("emailAddress") or "",
                    "status": "changepassword" if user.get("status") == "active" else user.get("status", "active"),
                    # Nexus never returns passwords: an unguessable one that nobody knows until it is reset.
                    "password": secrets.token_urlsafe(24), "roles": user.get("roles", [])}
            if self._create("user", user_id, user_id in existing,
                            lambda body=body: self.target.send_json("POST", f"{V1}/security/users", body)):
                self.report.password_resets.append(user_id)

    def anonymous(self) -> None:
        try:
            settings = self.source.get_json(f"{V1}/security/anonymous")
        except RestError as error:
            self.report.skip("anonymous access", "*", f"{error.status} {error.message}")
            return
        body = {key: settings[key] for key in ("enabled", "userId", "realmName") if key in settings}
        if self.dry_run:
            self.report.copy("anonymous access", str(body.get("enabled")))
            return
        try:
            self.target.send_json("PUT", f"{V1}/security/anonymous", body)
            self.report.copy("anonymous access", str(body.get("enabled")))
        except RestError as error:
            self.report.fail("anonymous access", "*", f"{error.status} {error.message}")

    def ldap(self) -> None:
        servers = self._source_list("ldap server", f"{V1}/security/ldap")
        if not servers:
            return
        existing = self._target_names(f"{V1}/security/ldap", "name")
        if existing is None:
            for server in servers:
                self.report.skip("ldap server", server["name"], "the target has no LDAP API")
            return
        for server in servers:
            body = without_nulls({key: value for key, value in server.items() if key not in ("id", "order")})
            if "authPassword" not in body and body.get("authScheme", "NONE") != "NONE" \
                    and server["name"] not in existing:
                # Nexus never returns the bind password, and a server that binds needs one.
                self.report.skip("ldap server", server["name"],
                                 "its bind password is not readable through REST: create it on the target "
                                 "(POST /service/rest/v1/security/ldap) with the password")
                continue
            self._create("ldap server", server["name"], server["name"] in existing,
                         lambda body=body: self.target.send_json("POST", f"{V1}/security/ldap", body))

    def realms(self) -> None:
        """The active realms, in order, of those the target has (LDAP after its servers exist)."""
        try:
            active = self.source.get_json(f"{V1}/security/realms/active")
            available = {r["id"] for r in self.target.get_json(f"{V1}/security/realms/available")}
        except RestError as error:
            self.report.skip("realms", "*", f"{error.status} {error.message}")
            return
        chosen = [realm for realm in active if realm in available]
        for realm in active:
            if realm not in available:
                self.report.skip("realms", realm, "the target has no such realm")
        if not chosen:
            return
        if self.dry_run:
            self.report.copy("realms", ", ".join(chosen))
            return
        try:
            self.target.send_json("PUT", f"{V1}/security/realms/active", chosen)
            self.report.copy("realms", ", ".join(chosen))
        except RestError as error:
            self.report.fail("realms", ", ".join(chosen), f"{error.status} {error.message}")

    def repositories(self, formats: set[str] | None) -> list[dict[str, Any]]:
        documents = self.source.get_json(f"{V1}/repositorySettings")
        existing = {r["name"]: r for r in self.target.get_json(f"{V1}/repositories")}
        chosen = [d for d in documents if self.only is None or d["name"] in self.only]
        chosen.sort(key=lambda d: (_TYPE_ORDER.get(d.get("type"), 3), _group_depth(d, documents)))
        copied = []
        for document in chosen:
            name, fmt, kind = document["name"], document.get("format"), document.get("type")
            if formats is not None and fmt not in formats:
                self.report.skip("repository", name, f"format {fmt} is not installed on the target")
                continue
            if name in existing:
                if existing[name].get("format") != fmt or existing[name].get("type") != kind:
                    self.report.fail("repository", name, f"the target has a {existing[name].get('format')} "
                                                         f"{existing[name].get('type')} repository of that name")
                    continue
                self.report.skip("repository", name, "already on the target")
                copied.append(document)
                continue
            body = _create_body(document)
            auth = (body.get("httpClient") or {}).get("authentication") or {}
            if auth and not (auth.get("password") or auth.get("bearerToken")):
                self.report.warn(f"proxy {name}: the remote's credentials are not readable through REST; "
                                 f"set httpClient.authentication on the target")
            if self._create("repository", name, False,
                            lambda b=body: self.target.send_json("POST", f"{V1}/repositories/{fmt}/{kind}", b)):
                copied.append(document)
        return copied


def _group_depth(document: dict[str, Any], documents: Iterable[dict[str, Any]], seen: frozenset = frozenset()) -> int:
    """Groups of groups after their members."""
    members = (document.get("group") or {}).get("memberNames") or []
    by_name = {d["name"]: d for d in documents}
    depth = 0
    for member in members:
        if member in by_name and member not in seen and by_name[member].get("type") == "group":
            depth = max(depth, 1 + _group_depth(by_name[member], documents, seen | {document["name"]}))
    return depth


def _create_body(document: dict[str, Any]) -> dict[str, Any]:
    body = without_nulls({key: value for key, value in document.items() if key not in _ANSWER_ONLY})
    if "routingRuleName" in body:
        body["routingRule"] = body.pop("routingRuleName")
    return body
