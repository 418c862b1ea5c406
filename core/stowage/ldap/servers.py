"""LDAP server connections as Nexus describes them (``CreateLdapServerXo`` / ``ReadLdapServerXo``), kept in
the catalog so every worker and node tries the same servers in the same order.

Requests are checked field by field here (a wrong type, a bad DN, filter or attribute name is a 400 naming
the field) rather than through the lenient cattrs converter, which would accept ``"port": true``.

The bind password is sealed in the catalog document (see :mod:`stowage.sealed`): a catalog copy does not
reveal it. It is opened only to bind (:class:`~stowage.ldap.realm.LdapRealm`) and never returned by the
REST API.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
from typing import Any, Mapping

import attrs
from attrs import asdict, evolve, field, frozen
from ldap3.core.exceptions import LDAPException
from ldap3.operation.search import parse_filter
from ldap3.utils.dn import parse_dn

from stowage.catalog import Catalog
from stowage.errors import BadRequest, Conflict, NotFound
from stowage.sealed import Sealer, transform_paths
from stowage.serialization import camel

SERVERS = "security.ldap"
#: fields of a stored server document that are sealed.
SECRETS = ("authPassword",)
PROTOCOLS = ("ldap", "ldaps")
AUTH_SCHEMES = ("NONE", "SIMPLE", "DIGEST_MD5", "CRAM_MD5")
GROUP_TYPES = ("static", "dynamic")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._ -]{0,127}$")
_HOST = re.compile(r"^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9]([A-Za-z0-9.-]{0,252}[A-Za-z0-9])?)$")
#: an attribute description: a name (RFC 4512 ``descr``) or a numeric OID.
_ATTRIBUTE = re.compile(r"^([A-Za-z][A-Za-z0-9-]{0,127}|[0-9]+(\.[0-9]+)+)$")
_MEMBER_PLACEHOLDERS = ("${username}", "${dn}")


@frozen
class LdapServer:
    """One directory connection; field names are Nexus's (camelCase in JSON)."""

    name: str
    protocol: str
    host: str
    port: int
    search_base: str
    auth_scheme: str
    connection_timeout_seconds: int
    connection_retry_delay_seconds: int
    max_incidents_count: int
    auth_realm: str = ""
    auth_username: str = ""
    auth_password: str = field(default="", repr=False)
    use_trust_store: bool = False
    user_base_dn: str = ""
    user_subtree: bool = False
    user_object_class: str = "inetOrgPerson"
    user_ldap_filter: str = ""
    user_id_attribute: str = "uid"
    user_real_name_attribute: str = "cn"
    user_email_address_attribute: str = "mail"
    user_password_attribute: str = ""
    ldap_groups_as_roles: bool = False
    group_type: str = ""
    group_base_dn: str = ""
    group_subtree: bool = False
    group_object_class: str = ""
    group_id_attribute: str = ""
    group_member_attribute: str = ""
    group_member_format: str = ""
    user_member_of_attribute: str = ""
    id: str = ""
    order: int = 0

    def document(self) -> dict[str, Any]:
        """The stored form (camelCase keys, the password included)."""
        return {camel(key): value for key, value in asdict(self).items()}

    def public(self) -> dict[str, Any]:
        """Nexus's ``ReadLdapServerXo``: everything but the bind password."""
        document = self.document()
        del document["authPassword"]
        return document

    @property
    def fingerprint(self) -> str:
        """Changes whenever any setting does: what is cached for a server is valid only for these settings."""
        text = json.dumps(self.document(), sort_keys=True)
        return f"{self.id}:{hashlib.sha256(text.encode()).hexdigest()[:16]}"

    def search_dn(self, relative: str) -> str:
        """A relative DN (``ou=people``) below the search base, as Nexus appends them."""
        return f"{relative},{self.search_base}" if relative else self.search_base


#: JSON key -> attrs attribute
_FIELDS = {camel(a.name): a for a in attrs.fields(LdapServer)}
_REQUIRED = ("name", "protocol", "host", "port", "searchBase", "authScheme", "connectionTimeoutSeconds",
             "connectionRetryDelaySeconds", "maxIncidentsCount")
_INTEGERS = {"port": (1, 65535), "connectionTimeoutSeconds": (1, 3600), "connectionRetryDelaySeconds": (0, 86400),
             "maxIncidentsCount": (0, 1000)}
_BOOLEANS = ("useTrustStore", "userSubtree", "ldapGroupsAsRoles", "groupSubtree")
_ATTRIBUTES = ("userObjectClass", "userIdAttribute", "userRealNameAttribute", "userEmailAddressAttribute",
               "userPasswordAttribute", "groupObjectClass", "groupIdAttribute", "groupMemberAttribute",
               "userMemberOfAttribute")
_DNS = ("searchBase", "userBaseDn", "groupBaseDn")


def server_from_body(body: Mapping[str, Any], current: LdapServer | None = None) -> LdapServer:
    """Check a create (``current`` None) or update body; an update that omits ``authPassword`` keeps the
    stored one (the API never shows it). ``id`` and ``order`` in the body are ignored (server-assigned)."""
    values: dict[str, Any] = {}
    unknown = sorted(set(body) - set(_FIELDS))
    if unknown:
        raise BadRequest(f"unknown field(s): {', '.join(unknown)}")
    missing = [key for key in _REQUIRED if body.get(key) is None]
    if missing:
        raise BadRequest(f"missing required field(s): {', '.join(missing)}")
    for key, value in body.items():
        if key in ("id", "order") or value is None:
            continue
        if key in _INTEGERS:
            low, high = _INTEGERS[key]
            if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
                raise BadRequest(f"{key} must be an integer from {low} to {high}")
        elif key in _BOOLEANS:
            if not isinstance(value, bool):
                raise BadRequest(f"{key} must be true or false")
        elif not isinstance(value, str):
            raise BadRequest(f"{key} must be a string")
        elif len(value) > 1024:
            raise BadRequest(f"{key} is too long (at most 1024 characters)")
        values[_FIELDS[key].name] = value.strip() if isinstance(value, str) and key != "authPassword" else value
    _check_values(values)
    if values["auth_scheme"] != "NONE" and not values.get("auth_password"):
        if current is None or not current.auth_password:
            raise BadRequest(f"authPassword is required with authScheme {values['auth_scheme']}")
        values["auth_password"] = current.auth_password
    if values["auth_scheme"] != "NONE" and not values.get("auth_username"):
        raise BadRequest(f"authUsername is required with authScheme {values['auth_scheme']}")
    if values["auth_scheme"] == "NONE":
        values["auth_username"] = values["auth_password"] = ""
    if current is not None:
        values["id"], values["order"] = current.id, current.order
    return LdapServer(**values)


def _check_values(values: dict[str, Any]) -> None:
    if not _NAME.match(values["name"]):
        raise BadRequest("name: letters, digits, space, '.', '_', '-' (at most 128)")
    if values["protocol"] not in PROTOCOLS:
        raise BadRequest(f"protocol must be one of {', '.join(PROTOCOLS)}")
    if values["auth_scheme"] not in AUTH_SCHEMES:
        raise BadRequest(f"authScheme must be one of {', '.join(AUTH_SCHEMES)}")
    if values["auth_scheme"] == "CRAM_MD5":
        raise BadRequest("authScheme CRAM_MD5 is not supported (the LDAP client library has no CRAM-MD5); "
                         "use SIMPLE over ldaps, or DIGEST_MD5")
    if values["auth_scheme"] == "DIGEST_MD5" and not values.get("auth_realm"):
        raise BadRequest("authRealm is required with authScheme DIGEST_MD5")
    if not _HOST.match(values["host"]):
        raise BadRequest("host must be a host name or an IP address")
    for key in _DNS:
        name = _FIELDS[key].name
        if values.get(name):
            try:
                parse_dn(values[name])
            except LDAPException as error:
                raise BadRequest(f"{key} is not a valid DN: {error}") from None
    if not values["search_base"]:
        raise BadRequest("searchBase must not be empty")
    for key in _ATTRIBUTES:
        name = _FIELDS[key].name
        if values.get(name) and not _ATTRIBUTE.match(values[name]):
            raise BadRequest(f"{key} is not an LDAP attribute or object class name")
    user_filter = values.get("user_ldap_filter")
    if user_filter:
        if not user_filter.startswith("("):
            user_filter = values["user_ldap_filter"] = f"({user_filter})"
        try:
            parse_filter(user_filter, None, auto_escape=False, auto_encode=True, validator=None,
                         check_names=False)
        except (LDAPException, ValueError, TypeError):
            raise BadRequest("userLdapFilter is not a valid LDAP filter") from None
    group_type = values.get("group_type", "")
    if group_type and group_type not in GROUP_TYPES:
        raise BadRequest(f"groupType must be one of {', '.join(GROUP_TYPES)}")
    if values.get("ldap_groups_as_roles"):
        if not group_type:
            raise BadRequest("groupType is required when ldapGroupsAsRoles is true")
        needed = (("groupObjectClass", "groupIdAttribute", "groupMemberAttribute", "groupMemberFormat")
                  if group_type == "static" else ("userMemberOfAttribute",))
        absent = [key for key in needed if not values.get(_FIELDS[key].name)]
        if absent:
            raise BadRequest(f"groupType {group_type} needs {', '.join(absent)}")
        member_format = values.get("group_member_format", "")
        if group_type == "static" and not any(p in member_format for p in _MEMBER_PLACEHOLDERS):
            raise BadRequest("groupMemberFormat must contain ${username} or ${dn}")


class LdapServers:
    """The configured servers, in the order they are tried (``order`` ascending)."""

    def __init__(self, catalog: Catalog, sealer: Sealer):
        self.catalog = catalog
        self.sealer = sealer

    def _stored(self, server: LdapServer) -> dict[str, Any]:
        """The catalog document: the bind password sealed (servers read back keep it sealed until the bind)."""
        document = server.document()
        transform_paths(document, SECRETS, self.sealer.seal)
        return document

    def list(self) -> list[LdapServer]:
        servers = []
        for _, document in self.catalog.list_documents(SERVERS):
            servers.append(LdapServer(**{_FIELDS[k].name: v for k, v in document.items() if k in _FIELDS}))
        return sorted(servers, key=lambda s: (s.order, s.name))

    def get(self, name: str) -> LdapServer:
        for server in self.list():
            if server.name == name:
                return server
        raise NotFound(f"LDAP server {name} not found")

    def create(self, server: LdapServer) -> LdapServer:
        with self.catalog.transaction():
            current = self.list()
            if any(s.name == server.name for s in current):
                raise Conflict(f"LDAP server {server.name} already exists")
            server = evolve(server, id=secrets.token_hex(8), order=max((s.order for s in current), default=-1) + 1)
            self.catalog.put_document(SERVERS, server.id, self._stored(server))
        return server

    def update(self, name: str, server: LdapServer) -> None:
        with self.catalog.transaction():
            current = self.get(name)
            if server.name != name and any(s.name == server.name for s in self.list()):
                raise Conflict(f"LDAP server {server.name} already exists")
            self.catalog.put_document(SERVERS, current.id,
                                     self._stored(evolve(server, id=current.id, order=current.order)))

    def delete(self, name: str) -> None:
        with self.catalog.transaction():
            self.catalog.delete_document(SERVERS, self.get(name).id)

    def change_order(self, names: list[str]) -> None:
        """``names`` first, in that order; servers it leaves out keep their relative order after them."""
        with self.catalog.transaction():
            current = self.list()
            known = {s.name: s for s in current}
            unknown = [n for n in names if n not in known]
            if unknown:
                raise BadRequest(f"unknown LDAP server(s): {', '.join(unknown)}")
            if len(set(names)) != len(names):
                raise BadRequest("an LDAP server is named twice")
            ordered = [known[n] for n in names] + [s for s in current if s.name not in names]
            for position, server in enumerate(ordered):
                if server.order != position:
                    self.catalog.put_document(SERVERS, server.id, self._stored(evolve(server, order=position)))
