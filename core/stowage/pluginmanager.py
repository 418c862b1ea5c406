"""Finding, loading and validating plugins. There is no global plugin manager: build one per app.

A plugin that fails to import or to register is recorded as a :class:`PluginFailure`, logged, shown in
``/-/plugins.json`` and otherwise skipped; with ``strict=True`` (the test kit's default) it is fatal.
"""

from __future__ import annotations

import importlib.metadata
import logging
from typing import Any, Callable, Iterable

import pluggy
from attrs import define, field

from stowage import hookspecs
from stowage.errors import PluginError
from stowage.registration import API_VERSION, BackgroundJob, Format, MetadataBuilder, MetadataCheck, PluginFailure, Route, Task

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "stowage.plugins"

#: Core's own implementations, registered like third-party plugins so they can be overridden.
DEFAULT_PLUGINS = (
    "stowage.builtin.storage",
    "stowage.builtin.security",
    "stowage.builtin.introspection",
    "stowage.builtin.tasks",
)


@define
class PluginManager:
    """A pluggy manager plus what loading found: failures, and the validated registrations."""

    pm: pluggy.PluginManager
    strict: bool = False
    failures: list[PluginFailure] = field(factory=list)
    formats: dict[str, Format] = field(factory=dict)
    routes: list[Route] = field(factory=list)
    metadata_builders: list[MetadataBuilder] = field(factory=list)
    tasks: dict[str, Task] = field(factory=dict)
    metadata_checks: list[MetadataCheck] = field(factory=list)
    background_jobs: dict[str, BackgroundJob] = field(factory=dict)
    #: plugin name -> the formats it registered, for /-/plugins.json
    provided_by: dict[str, list[str]] = field(factory=dict)
    #: plugin name -> (distribution name, version) for plugins loaded from entry points
    distributions: dict[str, tuple[str, str]] = field(factory=dict)

    @property
    def hook(self) -> Any:
        return self.pm.hook

    def fail(self, name: str, error: BaseException | str) -> None:
        message = error if isinstance(error, str) else f"{type(error).__name__}: {error}"
        self.failures.append(PluginFailure(name=name, error=message))
        log.error("plugin %s failed: %s", name, message)
        if self.strict:
            raise PluginError(f"plugin {name} failed: {message}")

    def plugin_names(self) -> list[str]:
        return sorted(name for name, plugin in self.pm.list_name_plugin() if plugin is not None)

    def collect(self) -> None:
        """Call the registration hooks plugin by plugin and keep what validates."""
        for name, plugin in self.pm.list_name_plugin():
            if plugin is None:
                continue
            try:
                formats = self._registered(plugin, "stowage_register_formats")
                routes = self._registered(plugin, "stowage_register_routes")
                builders = self._registered(plugin, "stowage_register_metadata_builders")
                tasks = self._registered(plugin, "stowage_register_tasks")
                checks = self._registered(plugin, "stowage_register_metadata_checks")
                jobs = self._registered(plugin, "stowage_register_background_jobs")
                self._validate(name, formats, routes, builders)
                self._validate_tasks(tasks)
                _validate_checks(checks)
                self._validate_jobs(jobs)
            except Exception as error:  # a broken plugin must not take the others down
                self.pm.unregister(plugin)
                self.fail(name, error)
                continue
            for fmt in formats:
                self.formats[fmt.name] = fmt
            self.provided_by[name] = [fmt.name for fmt in formats]
            self.routes.extend(routes)
            self.metadata_builders.extend(builders)
            for task in tasks:
                self.tasks[task.type] = task
            self.metadata_checks.extend(checks)
            for job in jobs:
                self.background_jobs[job.name] = job

    def _registered(self, plugin: object, hook_name: str) -> list:
        """What ``plugin`` returns from registration hook ``hook_name``, asked through pluggy: an
        implementation registered under another function name (``specname``) counts, and wrappers of any
        plugin wrap the call, exactly as for a broadcast. Other plugins' plain implementations are left
        out, so that a broken plugin is reported on its own."""
        caller = getattr(self.pm.hook, hook_name)

        def wraps(impl: Any) -> bool:
            return bool(impl.hookwrapper or getattr(impl, "wrapper", False))

        impls = caller.get_hookimpls()
        if not any(impl.plugin is plugin and not wraps(impl) for impl in impls):
            return []
        others = {impl.plugin for impl in impls if impl.plugin is not plugin and not wraps(impl)}
        results = self.pm.subset_hook_caller(hook_name, remove_plugins=others)() if others else caller()
        return [item for result in results for item in (result or [])]

    def _validate(self, name: str, formats: list, routes: list, builders: list) -> None:
        for kind, items, cls in (("format", formats, Format), ("route", routes, Route),
                                 ("metadata builder", builders, MetadataBuilder)):
            for item in items:
                if not isinstance(item, cls):
                    raise PluginError(f"{kind} registration {item!r} is not a {cls.__name__}")
                if item.api_version != API_VERSION:
                    raise PluginError(f"{kind} {item!r} needs plugin API {item.api_version}, core has {API_VERSION}")
        for fmt in formats:
            if fmt.name in self.formats:
                raise PluginError(f"format {fmt.name!r} is already registered by another plugin")
        taken = {route.path for route in self.routes}
        # A format may add REST endpoints under its own name: /service/rest/v1/<format>/...
        own_rest = tuple(f"/service/rest/v1/{fmt.name}/" for fmt in formats)
        for route in routes:
            reserved = route.path.startswith(("/repository/", "/service/")) and not (
                own_rest and route.path.startswith(own_rest))
            if route.path in taken or reserved:
                raise PluginError(f"route {route.path!r} collides with an existing route")
            taken.add(route.path)

    def _validate_tasks(self, tasks: list) -> None:
        _validate_registrations(tasks, Task, "task type", key=lambda task: task.type, taken=self.tasks)

    def _validate_jobs(self, jobs: list) -> None:
        _validate_registrations(jobs, BackgroundJob, "background job", key=lambda job: job.name,
                                taken=self.background_jobs)


def _validate_checks(checks: list) -> None:
    _validate_registrations(checks, MetadataCheck, "metadata check", label=lambda check: check.name)


def _validate_registrations(items: list, cls: type, kind: str, *, key: Callable[[Any], str] | None = None,
                            label: Callable[[Any], str] | None = None, taken: Iterable[str] = ()) -> None:
    """Each item is a ``cls`` built for this core's API version and, with ``key``, its key is not taken
    (by ``taken`` or an earlier item)."""
    seen = set(taken)
    name_of = key or label or repr
    for item in items:
        if not isinstance(item, cls):
            raise PluginError(f"{kind} registration {item!r} is not a {cls.__name__}")
        if item.api_version != API_VERSION:
            raise PluginError(f"{kind} {name_of(item)!r} needs plugin API {item.api_version}, core has {API_VERSION}")
        if key is not None:
            if key(item) in seen:
                raise PluginError(f"{kind} {key(item)!r} is already registered by another plugin")
            seen.add(key(item))


def make_plugin_manager(*, load_entrypoints: bool = True, plugins: Iterable[object] = (),
                        strict: bool = False, defaults: bool = True) -> PluginManager:
    """Build a plugin manager.

    :param load_entrypoints: load every installed ``stowage.plugins`` entry point.
    :param plugins: extra plugin objects (modules or instances) to register, e.g. in tests.
    :param strict: make any plugin failure raise :class:`~stowage.errors.PluginError`.
    :param defaults: register core's default plugins (file blob store, SQLite catalog, basic auth...).
    """
    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    manager = PluginManager(pm=pm, strict=strict)
    if defaults:
        import importlib

        for module_name in DEFAULT_PLUGINS:
            pm.register(importlib.import_module(module_name), name=module_name)
    if load_entrypoints:
        for entry_point in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
            if pm.has_plugin(entry_point.name):
                continue
            try:
                plugin = entry_point.load()
                pm.register(plugin, name=entry_point.name)
                if entry_point.dist is not None:
                    manager.distributions[entry_point.name] = (entry_point.dist.name, entry_point.dist.version)
            except Exception as error:
                manager.fail(entry_point.name, error)
    for plugin in plugins:
        try:
            name = getattr(plugin, "__name__", None) or type(plugin).__name__
            if pm.has_plugin(name):
                continue
            pm.register(plugin, name=name)
        except Exception as error:
            manager.fail(repr(plugin), error)
    try:
        pm.check_pending()
    except pluggy.PluginValidationError as error:
        manager.fail(getattr(error, "plugin", "unknown"), error)
    manager.collect()
    return manager
