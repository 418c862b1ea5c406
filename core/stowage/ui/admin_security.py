"""``/admin/users``, ``/admin/roles``, ``/admin/anonymous``: security through ``/service/rest/v1/security``.

A user's status ``disabled`` is how an administrator disables them (their sessions stop working at their
next request); "reset password" sends the new password to ``change-password`` as the REST API takes it.
"""

from __future__ import annotations

from stowage.errors import NotFound
from stowage.rest.privileges import PrivilegeCatalog
from stowage.rest.security import USER_STATUSES
from stowage.security import ADMIN_ROLE, BUILTIN_ROLES
from stowage.ui.admin import ADMIN, V1, AdminPages
from stowage.ui.forms import check_list, list_field, rest_form, select, text_field
from stowage.ui.page import Site, esc

USERS = ADMIN + "/users"
ROLES = ADMIN + "/roles"
SECURITY = V1 + "/security"


class _AdminPages(AdminPages):
    def role_options(self, exclude: str = "") -> list[tuple[str, str]]:
        return [(r["id"], r["id"]) for r in self.security.list_roles() if r["id"] != exclude]


class UsersAdminResource(_AdminPages):
    page, section = USERS, "/users"

    def dispatch(self, site: Site, parts: list[str]) -> tuple[str, str]:
        if not parts:
            return "Users", self._list(site)
        if parts == ["new"]:
            return "Create user", self._form(site, None)
        if len(parts) == 1:
            user = self.security.get_user(parts[0])
            if user is None:
                raise NotFound(f"user {parts[0]} not found")
            return f"User {user.user_id}", self._form(site, user)
        raise NotFound("no such page")

    def _list(self, site: Site) -> str:
        rows = "".join(
            f'<tr><td><a href="{esc(site.link(f"{USERS}/{u.user_id}"))}">{esc(u.user_id)}</a></td>'
            f"<td>{esc(' '.join(filter(None, (u.first_name, u.last_name))))}</td><td>{esc(u.email_address)}</td>"
            f'<td><span class="badge {"ok" if u.status == "active" else "bad"}">{esc(u.status)}</span></td>'
            f"<td>{esc(', '.join(u.roles))}</td><td>{esc(u.source)}</td></tr>"
            for u in self.security.list_users())
        return (f'<p><a class="button" href="{esc(site.link(USERS + "/new"))}">Create user</a></p>'
                '<div class="table-wrap"><table><thead><tr><th>User</th><th>Name</th><th>Email</th><th>Status</th>'
                f"<th>Roles</th><th>Source</th></tr></thead><tbody>{rows}</tbody></table></div>")

    def _form(self, site: Site, user) -> str:  # type: ignore[no-untyped-def]
        creating = user is None
        fields = (text_field("User ID", "userId", "" if creating else user.user_id, required=True,
                             readonly=not creating, autocomplete="off")
                  + text_field("First name", "firstName", "" if creating else user.first_name)
                  + text_field("Last name", "lastName", "" if creating else user.last_name)
                  + text_field("Email", "emailAddress", "" if creating else user.email_address, kind="email")
                  + select("Status", "status", [(s, s) for s in USER_STATUSES], "active" if creating else user.status,
                           hint="disabled: the user can no longer sign in or use their credentials or tokens.")
                  + check_list("Roles", "roles", self.role_options(), () if creating else user.roles))
        if creating:
            fields += text_field("Password", "password", "", kind="password", required=True,
                                 autocomplete="new-password")
            return rest_form(site, method="POST", url=f"{SECURITY}/users", body=fields, submit="Create user",
                             next_url=site.link(USERS))
        html = rest_form(site, method="PUT", url=f"{SECURITY}/users/{user.user_id}", body=fields, submit="Save",
                         next_url=site.link(USERS))
        html += "<h2>Reset password</h2>" + rest_form(
            site, method="PUT", url=f"{SECURITY}/users/{user.user_id}/change-password", encoding="text",
            text_field_name="password", submit="Set password", done="Password changed.",
            body=text_field("New password", "password", "", kind="password", required=True,
                            autocomplete="new-password"))
        if site.user is not None and site.user.user_id != user.user_id:
            html += "<h2>Delete</h2>" + rest_form(
                site, method="DELETE", url=f"{SECURITY}/users/{user.user_id}", body="", danger=True,
                submit=f"Delete user {user.user_id}", next_url=site.link(USERS),
                confirm=f"Delete user {user.user_id}? Their tokens and sessions stop working.")
        return html


class RolesAdminResource(_AdminPages):
    page, section = ROLES, "/roles"

    def dispatch(self, site: Site, parts: list[str]) -> tuple[str, str]:
        if not parts:
            return "Roles", self._list(site)
        if parts == ["new"]:
            return "Create role", self._form(site, None)
        if len(parts) == 1:
            role = self.security.get_role(parts[0])
            if role is None:
                raise NotFound(f"role {parts[0]} not found")
            return f"Role {role['id']}", self._form(site, role)
        raise NotFound("no such page")

    def _list(self, site: Site) -> str:
        rows = "".join(
            f'<tr><td><a href="{esc(site.link(ROLES + "/" + r["id"]))}">{esc(r["id"])}</a></td>'
            f"<td>{esc(r.get('description', ''))}</td><td>{esc(', '.join(r.get('privileges', ())))}</td>"
            f"<td>{esc(', '.join(r.get('roles', ())))}</td></tr>" for r in self.security.list_roles())
        return (f'<p><a class="button" href="{esc(site.link(ROLES + "/new"))}">Create role</a></p>'
                '<div class="table-wrap"><table><thead><tr><th>Role</th><th>Description</th><th>Privileges</th>'
                f"<th>Contains roles</th></tr></thead><tbody>{rows}</tbody></table></div>")

    def _form(self, site: Site, role: dict | None) -> str:  # type: ignore[type-arg]
        creating = role is None
        role = role or {}
        role_id = role.get("id", "")
        if role_id == ADMIN_ROLE:
            return f'<p class="muted">{esc(ADMIN_ROLE)} is built in (privilege nx-all) and cannot be changed.</p>'
        fields = (text_field("Role ID", "id", role_id, required=True, readonly=not creating)
                  + text_field("Name", "name", role.get("name", ""))
                  + text_field("Description", "description", role.get("description", ""))
                  + self._privilege_fields(list(role.get("privileges", ())))
                  + check_list("Contains roles", "roles", self.role_options(exclude=role_id), role.get("roles", ())))
        if creating:
            return rest_form(site, method="POST", url=f"{SECURITY}/roles", body=fields, submit="Create role",
                             next_url=site.link(ROLES))
        html = rest_form(site, method="PUT", url=f"{SECURITY}/roles/{role_id}", body=fields, submit="Save",
                         next_url=site.link(ROLES))
        if role_id not in BUILTIN_ROLES:
            html += "<h2>Delete</h2>" + rest_form(
                site, method="DELETE", url=f"{SECURITY}/roles/{role_id}", body="", danger=True,
                submit=f"Delete role {role_id}", next_url=site.link(ROLES), confirm=f"Delete role {role_id}?")
        return html


    def _privilege_fields(self, chosen: list[str]) -> str:
        """Every defined privilege as a checkbox (built-in and stored, as ``GET /security/privileges``
        lists them), and names that are not defined (wildcards) one a line; both fill ``privileges``."""
        defined = sorted(p["name"] for p in PrivilegeCatalog(self.stowage).all())
        known = set(defined)
        others = [name for name in chosen if name not in known]
        return (check_list("Privileges", "privileges", [(name, name) for name in defined], chosen)
                + list_field("Other privileges", "privileges", others,
                             hint="One a line, for names not listed above, e.g. wildcards such as "
                                  "nx-repository-view-raw-*-read."))


class AnonymousAdminResource(_AdminPages):
    page, section = ADMIN + "/anonymous", "/anonymous"

    def dispatch(self, site: Site, parts: list[str]) -> tuple[str, str]:
        if parts:
            raise NotFound("no such page")
        settings = self.security.anonymous_settings()
        state = "on" if settings["enabled"] else "off"
        form = rest_form(
            site, method="PUT", url=f"{SECURITY}/anonymous", submit="Save", next_url=site.link(ADMIN + "/anonymous"),
            body=select("Anonymous access", "enabled", [("true", "on: visitors without credentials may read"),
                                                         ("false", "off: everyone must sign in")],
                        "true" if settings["enabled"] else "false",
                        hint="What anonymous visitors may read is the nx-anonymous role's privileges.")
            .replace('name="enabled"', 'name="enabled" data-type="bool"'))
        return "Anonymous access", f"<p>Anonymous access is <b>{state}</b>.</p>{form}"


SELECTORS = ADMIN + "/selectors"


class SelectorsAdminResource(_AdminPages):
    """Content selectors (CSEL expressions) over ``/service/rest/v1/security/content-selectors``; a
    privilege of type ``repository-content-selector`` then grants access to what one matches."""

    page, section = SELECTORS, "/selectors"

    def dispatch(self, site: Site, parts: list[str]) -> tuple[str, str]:
        if not parts:
            rows = "".join(
                f'<tr><td><a href="{esc(site.link(SELECTORS + "/" + s["name"]))}">{esc(s["name"])}</a></td>'
                f"<td>{esc(s.get('description', ''))}</td><td><code>{esc(s['expression'])}</code></td></tr>"
                for s in sorted(self.security.list_selectors(), key=lambda s: s["name"]))
            table = ('<div class="table-wrap"><table><thead><tr><th>Selector</th><th>Description</th>'
                     f"<th>Expression</th></tr></thead><tbody>{rows}</tbody></table></div>" if rows else
                     '<p class="muted">No content selectors yet.</p>')
            return "Content selectors", (f'<p><a class="button" href="{esc(site.link(SELECTORS + "/new"))}">'
                                         f"Create content selector</a></p>{table}")
        if parts == ["new"]:
            return "Create content selector", self._form(site, None)
        if len(parts) == 1:
            selector = self.security.get_selector(parts[0])
            if selector is None:
                raise NotFound(f"content selector {parts[0]} not found")
            return f"Content selector {selector['name']}", self._form(site, selector)
        raise NotFound("no such page")

    def _form(self, site: Site, selector: dict | None) -> str:  # type: ignore[type-arg]
        creating = selector is None
        doc = selector or {}
        fields = (text_field("Name", "name", doc.get("name", ""), required=True, readonly=not creating)
                  + text_field("Description", "description", doc.get("description", ""))
                  + list_field("Expression", "expression", [doc.get("expression", "")] if doc else [],
                               required=True, hint='CSEL, e.g. format == "npm" and path =^ "/@cwiq/"')
                  .replace('data-type="list"', ""))
        if creating:
            return rest_form(site, method="POST", url=f"{SECURITY}/content-selectors", body=fields,
                             submit="Create content selector", next_url=site.link(SELECTORS))
        return (rest_form(site, method="PUT", url=f"{SECURITY}/content-selectors/{doc['name']}", body=fields,
                          submit="Save", next_url=site.link(SELECTORS))
                + "<h2>Delete</h2>" + rest_form(
                    site, method="DELETE", url=f"{SECURITY}/content-selectors/{doc['name']}", body="", danger=True,
                    submit=f"Delete {doc['name']}", next_url=site.link(SELECTORS),
                    confirm=f"Delete content selector {doc['name']}?"))
