"""The web UI on the main port: server-rendered HTML, a stylesheet and one small script.

- ``/``: the repositories the viewer may read (:mod:`stowage.ui.welcome`);
- ``/login``, ``/logout``: sign-in sessions (:mod:`stowage.ui.signin`, :mod:`stowage.http.session`);
- ``/service/rest/repository/browse/<repo>/<dir>/``: Nexus's browse pages, with delete buttons for those
  who may delete (:mod:`stowage.ui.browse`);
- ``/search``: the catalog search (:mod:`stowage.ui.search`);
- ``/upload``: the component upload page (:mod:`stowage.ui.upload`);
- ``/admin/...``: administration (:mod:`stowage.ui.admin`, :mod:`stowage.ui.admin_repositories`,
  :mod:`stowage.ui.admin_security`);
- ``/static/stowage-ui.{css,js}`` (:mod:`stowage.ui.static`).

Pages only read; every change a page makes goes through the REST API's own endpoints (the script sends
the forms there), so the UI and scripts validate alike.
A format's "how to use" snippet comes from ``Format.usage`` (:mod:`stowage.ui.usage`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import falcon

from stowage.ui.page import BROWSE

if TYPE_CHECKING:
    from stowage.stowage import Stowage


def register_ui_routes(app: falcon.App, stowage: "Stowage") -> None:
    from stowage.ui import static
    from stowage.ui.account import ACCOUNT, USER_TOKENS, AccountResource, UserTokensAdminResource
    from stowage.ui.admin import AdminIndexResource, AuditPageResource, BlobStoresPageResource, SystemResource
    from stowage.ui.admin_directory import LDAP, REALMS, LdapAdminResource, RealmsAdminResource
    from stowage.ui.admin_lifecycle import CLEANUP, TASKS, CleanupAdminResource, TasksAdminResource
    from stowage.ui.admin_repositories import PAGE as REPOSITORIES, RepositoriesAdminResource
    from stowage.ui.admin_security import (ROLES, SELECTORS, USERS, AnonymousAdminResource, RolesAdminResource,
                                           SelectorsAdminResource, UsersAdminResource)
    from stowage.ui.browse import BrowseResource
    from stowage.ui.search import SearchPageResource
    from stowage.ui.signin import LoginResource, LogoutResource
    from stowage.ui.upload import PAGE as UPLOAD, UploadResource
    from stowage.ui.welcome import WelcomeResource

    app.add_route("/", WelcomeResource(stowage))
    app.add_route("/login", LoginResource(stowage))
    app.add_route("/logout", LogoutResource(stowage))
    app.add_route(ACCOUNT, AccountResource(stowage))
    app.add_route("/search", SearchPageResource(stowage))
    app.add_route("/admin", AdminIndexResource(stowage))
    app.add_route("/admin/system", SystemResource(stowage))
    app.add_route("/admin/audit", AuditPageResource(stowage))
    app.add_route("/admin/blobstores", BlobStoresPageResource(stowage))
    app.add_sink(RepositoriesAdminResource(stowage), prefix=rf"^{REPOSITORIES}(/|$)")
    app.add_sink(UsersAdminResource(stowage), prefix=rf"^{USERS}(/|$)")
    app.add_sink(CleanupAdminResource(stowage), prefix=rf"^{CLEANUP}(/|$)")
    app.add_sink(TasksAdminResource(stowage), prefix=rf"^{TASKS}(/|$)")
    app.add_sink(RolesAdminResource(stowage), prefix=rf"^{ROLES}(/|$)")
    app.add_sink(SelectorsAdminResource(stowage), prefix=rf"^{SELECTORS}(/|$)")
    app.add_sink(RealmsAdminResource(stowage), prefix=rf"^{REALMS}(/|$)")
    app.add_sink(LdapAdminResource(stowage), prefix=rf"^{LDAP}(/|$)")
    app.add_sink(UserTokensAdminResource(stowage), prefix=rf"^{USER_TOKENS}(/|$)")
    app.add_sink(AnonymousAdminResource(stowage), prefix=r"^/admin/anonymous(/|$)")
    app.add_sink(UploadResource(stowage), prefix=rf"^{UPLOAD}(/|$)")
    app.add_route(static.CSS_PATH, static.StaticResource(static.CSS_PATH))
    app.add_route(static.JS_PATH, static.StaticResource(static.JS_PATH))
    app.add_sink(BrowseResource(stowage), prefix=rf"^{BROWSE}(/|$)")


__all__ = ["BROWSE", "register_ui_routes"]
