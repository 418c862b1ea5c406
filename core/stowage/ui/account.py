"""``/account``: what every signed-in user manages for themself (password, their user token), and
``/admin/user-tokens``: the user-token settings and every user's token, for administrators.

Both post to the REST API (``/security/users/<me>/change-password``, ``/security/users/<me>/<realm>/user-token``,
``/security/user-tokens``). A new token's pass code is shown once, in the page, from the answer that
created it; it is never stored in a form or sent anywhere else.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING
from urllib.parse import quote

import falcon

from stowage.errors import NotFound
from stowage.rest.tokens import SOURCE_REALMS
from stowage.tokens import USER_TOKEN
from stowage.ui.admin import ADMIN, V1, AdminPages
from stowage.ui.forms import checkbox, rest_form, text_field
from stowage.ui.page import Site, esc, render, send_html, signed_in_page, timestamp

if TYPE_CHECKING:
    from stowage.stowage import Stowage

ACCOUNT = "/account"
USER_TOKENS = ADMIN + "/user-tokens"


def _token_url(user_id: str, realm: str) -> str:
    return f"{V1}/security/users/{quote(user_id, safe='')}/{quote(realm, safe='')}/user-token"


class AccountResource:
    def __init__(self, stowage: "Stowage"):
        self.stowage = stowage

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        site = signed_in_page(req, resp, self.stowage)
        if site is None:
            return
        user = site.user
        body = (f"<p>{esc(user.user_id)} · {esc(' '.join(filter(None, (user.first_name, user.last_name))))} "
                f"{esc(user.email_address)} · roles: {esc(', '.join(user.roles) or 'none')}</p>")
        if user.source == "default":
            body += "<h2>Change password</h2>" + rest_form(
                site, method="PUT", url=f"{V1}/security/users/{quote(user.user_id, safe='')}/change-password",
                encoding="text", text_field_name="password", submit="Change password", done="Password changed.",
                body=text_field("New password", "password", "", kind="password", required=True,
                                autocomplete="new-password"))
        body += self._user_token(site, user)
        send_html(resp, render(site, "Account", body))

    def _user_token(self, site: Site, user) -> str:  # type: ignore[no-untyped-def]
        tokens = self.stowage.tokens
        if not tokens.user_tokens.enabled:
            return "<h2>User token</h2><p class=\"muted\">User tokens are not enabled on this server.</p>"
        realm = SOURCE_REALMS.get(user.source)
        if realm is None:
            return ""
        url = _token_url(user.user_id, realm)
        token = tokens.user_token_of(user.user_id, realm)
        html = ("<h2>User token</h2><p>A user token is a name code and a pass code that work as user name "
                "and password for every client (pip, npm, docker, curl) instead of your password.</p>")
        if token is not None:
            expired = token.expired(time.time())
            html += (f"<p>Name code <code>{esc(token.name_code)}</code>, created {esc(timestamp(token.created))}"
                     + (f", expires {esc(timestamp(token.expires))}" if token.expires else "")
                     + (' <span class="badge bad">expired</span>' if expired else "") + "</p>")
            html += rest_form(site, method="DELETE", url=url, body="", danger=True, submit="Delete user token",
                              next_url=site.link(ACCOUNT), confirm="Delete your user token? Clients using it stop "
                              "working.")
            return html
        return (html + rest_form(site, method="POST", url=url, body="", submit="Create user token",
                                 result="token-result")
                + '<section aria-live="polite" id="token-result" class="preview"></section>')


class UserTokensAdminResource(AdminPages):
    page, section = USER_TOKENS, "/user-tokens"

    def dispatch(self, site: Site, parts: list[str]) -> tuple[str, str]:
        if parts:
            raise NotFound("no such page")
        settings = self.stowage.tokens.user_tokens.get()
        form = rest_form(
            site, method="PUT", url=f"{V1}/security/user-tokens", submit="Save", next_url=site.link(USER_TOKENS),
            body=(checkbox("Enabled", "enabled", settings["enabled"])
                  + checkbox("Protect content", "protectContent", settings["protectContent"],
                             hint="Repository content accepts user tokens only, not passwords.")
                  + checkbox("Tokens expire", "expirationEnabled", settings["expirationEnabled"])
                  + text_field("Expire after (days)", "expirationDays", settings["expirationDays"], kind="number")))
        now = time.time()
        rows = "".join(
            f"<tr><td>{esc(t.user_id)}</td><td>{esc(t.user_realm)}</td><td><code>{esc(t.name_code)}</code></td>"
            f"<td class='when'>{esc(timestamp(t.created))}</td><td class='when'>{esc(timestamp(t.expires))}</td>"
            f"<td>{'expired' if t.expired(now) else ''}</td><td>"
            + rest_form(site, method="DELETE", url=_token_url(t.user_id, t.user_realm), body="", danger=True,
                        submit="Revoke", css="inline", next_url=site.link(USER_TOKENS),
                        confirm=f"Revoke the user token of {t.user_id}?")
            + "</td></tr>" for t in self.stowage.tokens.all_tokens(USER_TOKEN))
        table = ('<div class="table-wrap"><table><thead><tr><th>User</th><th>Realm</th><th>Name code</th>'
                 '<th>Created</th><th>Expires</th><th></th><th>Actions</th></tr></thead>'
                 f"<tbody>{rows}</tbody></table></div>" if rows else '<p class="muted">No user tokens.</p>')
        return "User tokens", f"{form}<h2>Tokens</h2>{table}"
