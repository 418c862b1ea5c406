"""The web UI on the main port: server-rendered HTML, a stylesheet and a few lines of script.

- ``/``: the repositories the viewer may read (:mod:`stowage.ui.welcome`), ``/login`` to sign in;
- ``/service/rest/repository/browse/<repo>/<dir>/``: Nexus's browse pages (:mod:`stowage.ui.browse`);
- ``/search``: the catalog search (:mod:`stowage.ui.search`);
- ``/static/stowage-ui.{css,js}`` (:mod:`stowage.ui.static`).

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
    from stowage.ui.browse import BrowseResource
    from stowage.ui.search import SearchPageResource
    from stowage.ui.welcome import LoginResource, WelcomeResource

    app.add_route("/", WelcomeResource(stowage))
    app.add_route("/login", LoginResource(stowage))
    app.add_route("/search", SearchPageResource(stowage))
    app.add_route(static.CSS_PATH, static.StaticResource(static.CSS_PATH))
    app.add_route(static.JS_PATH, static.StaticResource(static.JS_PATH))
    app.add_sink(BrowseResource(stowage), prefix=rf"^{BROWSE}(/|$)")


__all__ = ["BROWSE", "register_ui_routes"]
