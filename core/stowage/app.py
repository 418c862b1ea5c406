"""Wiring: settings + plugins -> the :class:`~stowage.stowage.Stowage` object -> a Falcon WSGI app.

Only the CLI starts a server; tests and embedders call :func:`create_app` and use the app directly.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Iterable, Mapping

import falcon

from stowage.background import BackgroundWork
from stowage.errors import ConfigurationError
from stowage.http.anonymous import AnonymousGate
from stowage.http.csrf import CsrfMiddleware
from stowage.http.early_auth import EarlyAuth
from stowage.http.errors import install_error_handlers
from stowage.http.media import StowageRequest, install_media_handlers
from stowage.http.repository_resource import RepositorySink
from stowage.pluginmanager import PluginManager, make_plugin_manager
from stowage.settings import ConfigFile, ServerSettings, load_config_file
from stowage.stowage import Stowage

log = logging.getLogger(__name__)


def create_stowage(settings: ServerSettings | None = None, plugins: PluginManager | None = None, *,
                   config: ConfigFile | None = None) -> Stowage:
    """Build the application object and apply the configuration's repositories (create or update)."""
    config = config or ConfigFile(server=settings or ServerSettings())
    settings = settings or config.server
    plugins = plugins or make_plugin_manager(strict=settings.strict_plugins)
    stowage = Stowage(settings, plugins, blob_stores=config.blob_stores)
    with stowage.catalog.transaction():
        generated = stowage.security.bootstrap_admin(settings.data_path)
    if generated:
        log.warning("created user admin; its password is in %s", settings.data_path / "admin.password")
    apply_cleanup_policies(stowage, config.cleanup_policies)
    apply_repositories(stowage, config.repositories)
    plugins.hook.stowage_app_started(stowage=stowage)
    BackgroundWork.of(stowage).start()  # registered background jobs: markers left by a crash run now
    return stowage


def apply_cleanup_policies(stowage: Stowage, entries: Iterable[Mapping[str, Any]]) -> None:
    """Create or update each ``[[cleanupPolicies]]`` entry (before the repositories that name them)."""
    from stowage.cleanup_policies import CleanupPolicies
    from stowage.errors import BadRequest

    policies = CleanupPolicies.of(stowage)
    for i, entry in enumerate(entries):
        if entry.get("format") != "*" and entry.get("format") not in stowage.plugins.formats:
            log.warning("cleanupPolicies[%s] %s: format %r is not installed; skipped", i, entry.get("name"),
                        entry.get("format"))
            continue
        try:
            policies.save(policies.parse(dict(entry)))
        except BadRequest as error:
            raise ConfigurationError(f"cleanupPolicies[{i}]: {error.message}") from None


def apply_repositories(stowage: Stowage, entries: Iterable[Mapping[str, Any]]) -> None:
    """Create or update each configured repository; groups after their members."""
    parsed = []
    for i, entry in enumerate(entries):
        if entry.get("format") not in stowage.plugins.formats:
            # Reported, not fatal: the same file serves installs that carry only some format plugins.
            log.warning("repositories[%s] %s: format %r is not installed; skipped", i, entry.get("name"),
                        entry.get("format"))
            continue
        parsed.append(stowage.parse_repository(dict(entry), f"repositories[{i}]"))
    names = {config.name for config in parsed}
    pending = list(parsed)
    while pending:
        progressed = False
        for config in list(pending):
            members = set(config.group.member_names) if config.group else set()
            waiting = members & {c.name for c in pending if c is not config}
            if waiting:
                continue
            stowage.save_repository(config)
            pending.remove(config)
            progressed = True
        if not progressed:
            raise ConfigurationError("repositories: groups form a cycle: "
                                     + ", ".join(c.name for c in pending if c.name in names))


def create_app(stowage: Stowage) -> "StowageApp":
    from stowage.rest import register_rest_routes
    from stowage.ui import register_ui_routes

    from stowage.http.audit_trail import AuditTrailMiddleware
    from stowage.http.endpoints import located_route
    from stowage.http.requester import RequesterMiddleware
    from stowage.rest.read_only import ReadOnlyMiddleware

    # The audit trail comes before the gates, so the requests they refuse are recorded too.
    app = StowageApp(request_type=StowageRequest, middleware=[RequesterMiddleware(), PortRepositoryMiddleware(stowage),
                                 AuditTrailMiddleware(stowage), CsrfMiddleware(stowage), AnonymousGate(stowage),
                                 ReadOnlyMiddleware(stowage)])
    app.req_options.auto_parse_form_urlencoded = False
    app.req_options.strip_url_path_trailing_slash = False
    app.resp_options.secure_cookies_by_default = False
    install_error_handlers(app, stowage)
    install_media_handlers(app)
    sink = RepositorySink(stowage)
    app.early_auth = EarlyAuth(stowage, sink)
    register_rest_routes(app, stowage)
    register_ui_routes(app, stowage)
    for route in stowage.plugins.routes:
        resource = route.resource(stowage)
        if route.locate is not None:
            resource = located_route(stowage, route, resource)
        app.add_route(route.path, resource)
    # Added last, so falcon tries it first: it takes most requests, and no other sink's prefix overlaps it
    # (falcon matches sinks newest first; this saved a dozen regex matches per repository request).
    app.add_sink(sink, prefix=r"^/repository/")
    app.stowage = stowage
    return app


class StowageApp(falcon.App):
    """A Falcon app that carries its :class:`~stowage.stowage.Stowage` object (for servers and tests)."""

    stowage: Stowage
    #: what the server asks before it reads a body the client holds back for ``100 Continue``.
    early_auth: EarlyAuth


class PortRepositoryMiddleware:
    """On a listener a repository owns (``Format.port_of``), tell routes which repository that is."""

    def __init__(self, stowage: Stowage):
        self.stowage = stowage
        # The server fills this shared dict as listeners open and close; fetch it once, not per request.
        self.port_map: Mapping[int, str] = stowage.extension("port-map", dict)

    def process_request(self, req: falcon.Request, resp: falcon.Response) -> None:
        port = req.env.get("stowage.listener_port")
        req.context.port_repository = self.port_map.get(port) if port else None


def load(config_path: Path | str | None = None, *, overrides: Mapping[str, Any] | None = None,
         plugins: PluginManager | None = None) -> Stowage:
    """Read a configuration file and build the application object from it."""
    from stowage.serialization import make_converter

    config = load_config_file(config_path, make_converter(), overrides=overrides)
    return create_stowage(config.server, plugins, config=config)


def open_for_maintenance(config_path: Path | str | None = None, *, overrides: Mapping[str, Any] | None = None,
                         plugins: PluginManager | None = None) -> Stowage:
    """The application object over an existing data directory, for ``backup`` and ``verify``.

    Unlike :func:`load` it changes nothing: no admin bootstrap, no configured repositories applied, no
    ``stowage_app_started`` (no background workers), so it is safe next to a running server.
    """
    from stowage.serialization import make_converter

    config = load_config_file(config_path, make_converter(), overrides=overrides)
    settings = config.server
    if settings.catalog.type == "sqlite" and not settings.catalog.path:
        catalog_file = settings.data_path / "db" / "catalog.sqlite"
        if not catalog_file.is_file():
            raise ConfigurationError(f"{settings.data_path} is not a Stowage data directory (no {catalog_file})")
    return Stowage(settings, plugins or make_plugin_manager(strict=settings.strict_plugins),
                   blob_stores=config.blob_stores)
