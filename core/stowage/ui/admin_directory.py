"""``/admin/realms`` (which realms sign users in, in order) and ``/admin/ldap`` (LDAP servers: list,
order, create, edit, delete), over ``/service/rest/v1/security/realms`` and ``/security/ldap``.

The LDAP form is built from :class:`~stowage.ldap.servers.LdapServer`'s fields, named as in Nexus's JSON;
the bind password is write-only (empty on an edit keeps the stored one, as the REST API does).
"""

from __future__ import annotations

import typing
from typing import Any

import attrs

from stowage.errors import NotFound
from stowage.ldap.servers import AUTH_SCHEMES, GROUP_TYPES, PROTOCOLS, LdapServer, LdapServers
from stowage.realms import AVAILABLE
from stowage.serialization import camel
from stowage.ui.admin import ADMIN, V1, AdminPages
from stowage.ui.forms import checkbox, fieldset, list_field, rest_form, select, text_field
from stowage.ui.page import Site, esc

REALMS = ADMIN + "/realms"
LDAP = ADMIN + "/ldap"
_CHOICES = {"protocol": PROTOCOLS, "auth_scheme": AUTH_SCHEMES, "group_type": ("",) + GROUP_TYPES}
_GROUPS = (("Connection", ("name", "protocol", "host", "port", "use_trust_store", "search_base",
                           "connection_timeout_seconds", "connection_retry_delay_seconds", "max_incidents_count")),
           ("Authentication", ("auth_scheme", "auth_realm", "auth_username", "auth_password")),
           ("Users", ("user_base_dn", "user_subtree", "user_object_class", "user_ldap_filter", "user_id_attribute",
                      "user_real_name_attribute", "user_email_address_attribute", "user_password_attribute")),
           ("Groups", ("ldap_groups_as_roles", "group_type", "group_base_dn", "group_subtree", "group_object_class",
                       "group_id_attribute", "group_member_attribute", "group_member_format",
                       "user_member_of_attribute")))


class RealmsAdminResource(AdminPages):
    page, section = REALMS, "/realms"

    def dispatch(self, site: Site, parts: list[str]) -> tuple[str, str]:
        if parts:
            raise NotFound("no such page")
        active = list(self.security.realms.active())
        rows = "".join(f"<tr><td><code>{esc(realm_id)}</code></td><td>{esc(name)}</td>"
                       f"<td>{'active' if realm_id in active else ''}</td></tr>" for realm_id, name in AVAILABLE.items())
        form = rest_form(site, method="PUT", url=f"{V1}/security/realms/active", encoding="jsonlist",
                         text_field_name="realms", submit="Save", next_url=site.link(REALMS),
                         body=list_field("Active realms, in order", "realms", active, required=True,
                                         hint="One realm id a line, tried from top to bottom."))
        return "Realms", ("<table><thead><tr><th>Id</th><th>Realm</th><th>State</th></tr></thead>"
                          f"<tbody>{rows}</tbody></table><h2>Active realms</h2>{form}")


def _server_field(attribute: attrs.Attribute, hint_type: Any, value: Any, creating: bool) -> str:
    name, label = camel(attribute.name), camel(attribute.name)
    if attribute.name == "auth_password":
        return text_field(label, name, "", kind="password", optional=not creating, autocomplete="new-password",
                          hint="" if creating else "Never shown; leave empty to keep the stored one.")
    if attribute.name in _CHOICES:
        return select(label, name, [(c, c or "(none)") for c in _CHOICES[attribute.name]], value or "",
                      optional=attribute.name == "group_type")
    if hint_type is bool:
        return checkbox(label, name, bool(value))
    if hint_type is int:
        return text_field(label, name, value, kind="number", required=True)
    required = attribute.default is attrs.NOTHING
    return text_field(label, name, value or "", required=required, optional=not required,
                      readonly=attribute.name == "name" and not creating)


class LdapAdminResource(AdminPages):
    page, section = LDAP, "/ldap"

    def dispatch(self, site: Site, parts: list[str]) -> tuple[str, str]:
        servers = LdapServers(self.stowage.catalog, self.stowage.sealer)
        if not parts:
            return "LDAP servers", self._list(site, servers)
        if parts == ["new"]:
            return "Create LDAP server", self._form(site, None)
        if len(parts) == 1:
            return f"LDAP server {parts[0]}", self._form(site, servers.get(parts[0]).public())
        raise NotFound("no such page")

    def _list(self, site: Site, servers: LdapServers) -> str:
        found = servers.list()
        rows = "".join(f'<tr><td><a href="{esc(site.link(LDAP + "/" + s.name))}">{esc(s.name)}</a></td>'
                       f"<td>{esc(s.protocol)}://{esc(s.host)}:{s.port}</td><td>{esc(s.search_base)}</td>"
                       f"<td>{esc(s.auth_scheme)}</td></tr>" for s in found)
        html = (f'<p><a class="button" href="{esc(site.link(LDAP + "/new"))}">Create LDAP server</a></p>'
                + ('<div class="table-wrap"><table><thead><tr><th>Name</th><th>URL</th><th>Search base</th>'
                   f"<th>Authentication</th></tr></thead><tbody>{rows}</tbody></table></div>" if rows else
                   '<p class="muted">No LDAP servers. Sign-in through LDAP also needs the LDAP realm active '
                   f'(<a href="{esc(site.link(REALMS))}">Realms</a>).</p>'))
        if len(found) > 1:
            html += "<h2>Order</h2>" + rest_form(
                site, method="POST", url=f"{V1}/security/ldap/change-order", encoding="jsonlist",
                text_field_name="order", submit="Save order", next_url=site.link(LDAP),
                body=list_field("Servers, in the order they are asked", "order", [s.name for s in found]))
        return html

    def _form(self, site: Site, server: dict[str, Any] | None) -> str:
        creating = server is None
        doc = server or {}
        hints = typing.get_type_hints(LdapServer)
        fields = {a.name: a for a in attrs.fields(LdapServer)}
        body = ""
        for legend, names in _GROUPS:
            inner = ""
            for attr_name in names:
                attribute = fields[attr_name]
                default = None if attribute.default is attrs.NOTHING else attribute.default
                value = doc.get(camel(attr_name), default)
                if creating and value is None:
                    value = {"port": 389, "connection_timeout_seconds": 30, "connection_retry_delay_seconds": 300,
                             "max_incidents_count": 3, "protocol": "ldap", "auth_scheme": "SIMPLE"}.get(attr_name)
                inner += _server_field(attribute, hints[attr_name], value, creating)
            body += fieldset(legend, inner)
        if creating:
            return rest_form(site, method="POST", url=f"{V1}/security/ldap", body=body, submit="Create server",
                             next_url=site.link(LDAP))
        name = doc["name"]
        return (rest_form(site, method="PUT", url=f"{V1}/security/ldap/{name}", body=body, submit="Save",
                          next_url=site.link(LDAP))
                + "<h2>Delete</h2>" + rest_form(
                    site, method="DELETE", url=f"{V1}/security/ldap/{name}", body="", danger=True,
                    submit=f"Delete {name}", next_url=site.link(LDAP), confirm=f"Delete LDAP server {name}? "
                    "Its users can no longer sign in."))
