"""Talking to one LDAP server through ``ldap3``: find a user, verify a password, read the user's groups.

A password is verified by binding as the user's DN with it (or, when ``userPasswordAttribute`` is set, by
an LDAP compare on that attribute, which the directory evaluates, hashed values included). It is never
stored. Every network or protocol failure becomes :class:`DirectoryUnavailable`, so the caller can answer
401 with a logged reason and try the next server, never a 500.
"""

from __future__ import annotations

import ssl
from typing import Any

import ldap3
from attrs import frozen
from ldap3.core.exceptions import LDAPException, LDAPInvalidDnError
from ldap3.utils.conv import escape_filter_chars
from ldap3.utils.dn import escape_rdn, parse_dn

from stowage.ldap.servers import LdapServer


class DirectoryUnavailable(Exception):
    """The server could not be reached or answered with an error (not "wrong password")."""


@frozen
class DirectoryUser:
    user_id: str
    dn: str
    real_name: str = ""
    email_address: str = ""
    #: group names (external roles), sorted.
    groups: tuple[str, ...] = ()


def _first(entry: dict[str, Any], attribute: str) -> str:
    if not attribute:
        return ""
    value = entry.get(attribute)
    if isinstance(value, list):
        value = value[0] if value else ""
    return str(value) if value is not None else ""


class Directory:
    """One configured server; connections are opened per operation (binds change the connection's
    identity, and a pooled connection would outlive a directory restart)."""

    def __init__(self, server: LdapServer):
        self.config = server
        tls = ldap3.Tls(validate=ssl.CERT_REQUIRED) if server.protocol == "ldaps" else None
        self._server = ldap3.Server(server.host, port=server.port, use_ssl=server.protocol == "ldaps", tls=tls,
                                    get_info=ldap3.NONE, connect_timeout=server.connection_timeout_seconds)

    def _connection(self, user: str | None = None, password: str | None = None) -> ldap3.Connection:
        config = self.config
        options: dict[str, Any] = {"receive_timeout": config.connection_timeout_seconds, "raise_exceptions": False,
                                   "auto_referrals": False, "read_only": True}
        if user is not None:
            options.update(user=user, password=password, authentication=ldap3.SIMPLE)
        elif config.auth_scheme == "SIMPLE":
            options.update(user=config.auth_username, password=config.auth_password, authentication=ldap3.SIMPLE)
        elif config.auth_scheme == "DIGEST_MD5":
            options.update(authentication=ldap3.SASL, sasl_mechanism=ldap3.DIGEST_MD5,
                           sasl_credentials=(config.auth_realm or None, config.auth_username,
                                             config.auth_password, None))
        else:
            options.update(authentication=ldap3.ANONYMOUS)
        return ldap3.Connection(self._server, **options)

    def _service(self) -> ldap3.Connection:
        """A connection bound with the configured credentials (or anonymous)."""
        connection = self._connection()
        try:
            bound = connection.bind()
        except LDAPException as error:
            raise DirectoryUnavailable(f"{self.describe()}: {error}") from None
        if not bound:
            raise DirectoryUnavailable(f"{self.describe()}: service bind as {self.config.auth_username or 'anonymous'}"
                                       f" failed: {connection.result.get('description')}")
        return connection

    def describe(self) -> str:
        return f"LDAP server {self.config.name} ({self.config.protocol}://{self.config.host}:{self.config.port})"

    def find_user(self, user_id: str) -> DirectoryUser | None:
        """The user whose ``userIdAttribute`` is ``user_id``; None when there is none (or several)."""
        connection = self._service()
        try:
            return self._lookup(connection, user_id)
        finally:
            connection.unbind()

    def authenticate(self, user_id: str, password: str) -> DirectoryUser | None:
        """The user when ``password`` is theirs; None when it is not, or no such user exists."""
        if not password:  # an empty password would be an unauthenticated bind, which servers accept
            return None
        connection = self._service()
        try:
            user = self._lookup(connection, user_id)
            if user is None:
                return None
            if self.config.user_password_attribute:
                try:
                    matches = connection.compare(user.dn, self.config.user_password_attribute, password)
                except LDAPException as error:
                    raise DirectoryUnavailable(f"{self.describe()}: compare failed: {error}") from None
                self._check_result(connection, ok=(5, 6), what="password compare")
                return user if matches else None
        finally:
            connection.unbind()
        as_user = self._connection(user.dn, password)
        try:
            if as_user.bind():
                return user
        except LDAPException as error:
            raise DirectoryUnavailable(f"{self.describe()}: bind as {user.dn} failed: {error}") from None
        finally:
            as_user.unbind()
        # 49 invalidCredentials (or 48/50/53: inappropriate authentication, no rights, unwilling) is a
        # refusal; anything else is the server failing.
        self._check_result(as_user, ok=(48, 49, 50, 53), what=f"bind as {user.dn}")
        return None

    def _check_result(self, connection: ldap3.Connection, ok: tuple[int, ...], what: str) -> None:
        result = connection.result or {}
        if result.get("result") not in ok:
            raise DirectoryUnavailable(f"{self.describe()}: {what}: {result.get('description')} "
                                       f"{result.get('message') or ''}".rstrip())

    def _search(self, connection: ldap3.Connection, base: str, subtree: bool, search_filter: str,
                attributes: list[str]) -> list[dict[str, Any]]:
        try:
            connection.search(base, search_filter, search_scope=ldap3.SUBTREE if subtree else ldap3.LEVEL,
                              attributes=attributes, size_limit=50,
                              time_limit=self.config.connection_timeout_seconds)
        except LDAPException as error:
            raise DirectoryUnavailable(f"{self.describe()}: search under {base} failed: {error}") from None
        result = connection.result or {}
        if result.get("result") not in (0, 4, 32):  # success, size limit exceeded, no such object
            raise DirectoryUnavailable(f"{self.describe()}: search under {base}: {result.get('description')}")
        return [{"dn": entry["dn"], **entry.get("attributes", {})}
                for entry in connection.response or () if entry.get("type") == "searchResEntry"]

    def _lookup(self, connection: ldap3.Connection, user_id: str) -> DirectoryUser | None:
        config = self.config
        clauses = [f"(objectClass={config.user_object_class or '*'})",
                   f"({config.user_id_attribute}={escape_filter_chars(user_id)})"]
        if config.user_ldap_filter:
            clauses.append(config.user_ldap_filter)
        attributes = [a for a in (config.user_id_attribute, config.user_real_name_attribute,
                                  config.user_email_address_attribute, config.user_member_of_attribute) if a]
        entries = self._search(connection, config.search_dn(config.user_base_dn), config.user_subtree,
                               f"(&{''.join(clauses)})", attributes)
        if len(entries) != 1:  # none, or an ambiguous id: nobody
            return None
        entry = entries[0]
        found_id = _first(entry, config.user_id_attribute)
        if found_id.lower() != user_id.lower():
            return None
        return DirectoryUser(user_id=found_id, dn=entry["dn"],
                             real_name=_first(entry, config.user_real_name_attribute),
                             email_address=_first(entry, config.user_email_address_attribute),
                             groups=self._groups(connection, found_id, entry))

    def _groups(self, connection: ldap3.Connection, user_id: str, entry: dict[str, Any]) -> tuple[str, ...]:
        config = self.config
        if not config.ldap_groups_as_roles:
            return ()
        if config.group_type == "dynamic":
            values = entry.get(config.user_member_of_attribute) or []
            names = set()
            for value in values if isinstance(values, list) else [values]:
                try:  # the group's DN; its name is the first RDN's value (cn=developers,ou=groups,... -> developers)
                    names.add(parse_dn(str(value))[0][1])
                except (LDAPInvalidDnError, IndexError):
                    names.add(str(value))
            return tuple(sorted(names))
        member = config.group_member_format.replace("${username}", escape_rdn(user_id)).replace("${dn}", entry["dn"])
        search_filter = (f"(&(objectClass={config.group_object_class})"
                         f"({config.group_member_attribute}={escape_filter_chars(member)}))")
        groups = self._search(connection, config.search_dn(config.group_base_dn), config.group_subtree,
                              search_filter, [config.group_id_attribute])
        return tuple(sorted({_first(g, config.group_id_attribute) for g in groups} - {""}))
