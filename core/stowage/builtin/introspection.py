"""``/-/plugins.json``: which plugins are loaded, what they provide, and which failed."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import falcon

from stowage.hookspecs import hookimpl
from stowage.plugin_deprecations import deprecated_names_in
from stowage.registration import Route

if TYPE_CHECKING:
    from stowage.stowage import Stowage


class PluginsResource:
    def __init__(self, stowage: "Stowage"):
        self.stowage = stowage

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.media = plugins_document(self.stowage)


def plugins_document(stowage: "Stowage") -> dict[str, Any]:
    """What ``/-/plugins.json`` answers (the web UI's system page shows the same)."""
    import importlib.metadata

    manager = stowage.plugins
    plugins = []
    for name in manager.plugin_names():
        plugin = manager.pm.get_plugin(name)
        distribution, version = manager.distributions.get(name, (None, None))
        plugins.append({
            "name": name,
            "distribution": distribution,
            "version": version,
            "formats": manager.provided_by.get(name, []),
            "hooks": sorted(h.name for h in manager.pm.get_hookcallers(plugin) or ()),
            # retired plugin API names it still uses: it breaks with the next API_VERSION
            "deprecatedNames": deprecated_names_in(plugin),
        })
    try:
        core_version = importlib.metadata.version("stowage")
    except importlib.metadata.PackageNotFoundError:
        core_version = None
    return {
        "stowage": core_version,
        "plugins": plugins,
        "formats": sorted(manager.formats),
        "failures": [{"name": f.name, "error": f.error} for f in manager.failures],
    }


@hookimpl(trylast=True)
def stowage_register_routes() -> list[Route]:
    return [Route(path="/-/plugins.json", resource=PluginsResource, name="plugins")]
