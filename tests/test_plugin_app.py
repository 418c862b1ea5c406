"""The curated plugin API: the app object's protocols match core's real objects, the plugins in this tree
use nothing of the app beyond them, and retired names still import with a warning that says what to use."""

from __future__ import annotations

import ast
import inspect
import re
import warnings
from pathlib import Path

import pytest

import stowage.plugin
from stowage.plugin_deprecations import DEPRECATED
from stowage import plugin_app
from stowage.audit import AuditLog
from stowage.catalog import SqliteCatalog
from stowage.catalog.postgres import PostgresCatalog
from stowage.realms import ActiveRealms
from stowage.security import SecurityRealm
from stowage.stowage import Stowage
from stowage.tokens import TokenStore

ROOT = Path(__file__).resolve().parents[1]
PLUGIN_SOURCES = sorted([*ROOT.glob("plugins/*/stowage_*/**/*.py"), *ROOT.glob("examples/*/stowage_*/**/*.py")])

PROTOCOLS = {
    plugin_app.App: [Stowage],
    plugin_app.CatalogAccess: [SqliteCatalog, PostgresCatalog],
    plugin_app.SecurityAccess: [SecurityRealm],
    plugin_app.RealmStatus: [ActiveRealms],
    plugin_app.TokenAccess: [TokenStore],
    plugin_app.AuditAccess: [AuditLog],
}


def members(protocol: type) -> set[str]:
    """What a protocol declares: its methods, properties and annotated attributes."""
    names = {name for name in vars(protocol) if not name.startswith("_")}
    return names | set(getattr(protocol, "__annotations__", {}))


def methods(protocol: type) -> dict[str, inspect.Signature]:
    return {name: inspect.signature(value) for name, value in vars(protocol).items()
            if not name.startswith("_") and inspect.isfunction(value)}


@pytest.mark.parametrize("protocol, implementation",
                         [(p, impl) for p, impls in PROTOCOLS.items() for impl in impls],
                         ids=lambda value: value.__name__)
def test_core_implements_each_protocol_method_with_the_same_parameters(protocol, implementation):
    for name, declared in methods(protocol).items():
        real = getattr(implementation, name, None)
        assert real is not None, f"{implementation.__name__} has no {name}, which {protocol.__name__} promises"
        actual = inspect.signature(real)
        promised = [(p.name, p.kind, p.default) for p in declared.parameters.values()]
        offered = [(p.name, p.kind, p.default) for p in actual.parameters.values()]
        assert promised == offered, (
            f"{implementation.__name__}.{name}{actual} differs from {protocol.__name__}.{name}{declared}")
    for name in members(protocol) - set(methods(protocol)):
        if isinstance(vars(protocol).get(name), property):
            assert isinstance(getattr(implementation, name, None), property), f"{implementation.__name__}.{name}"


def test_the_running_app_is_an_app(stowage_app):
    app = stowage_app.stowage
    assert isinstance(app, plugin_app.App)
    assert isinstance(app.catalog, plugin_app.CatalogAccess)
    assert isinstance(app.security, plugin_app.SecurityAccess)
    assert isinstance(app.tokens, plugin_app.TokenAccess)
    assert isinstance(app.audit, plugin_app.AuditAccess)
    assert app.security.realms.is_active("NexusAuthenticatingRealm") in (True, False)
    # what the protocol leaves out is really left out (a member added here by mistake would hide a leak)
    assert not isinstance(object(), plugin_app.App)
    assert "save_repository" not in members(plugin_app.App)


def _chain(node: ast.AST) -> list[str]:
    """``self.stowage.catalog.get_asset`` -> ["self", "stowage", "catalog", "get_asset"] (calls cut)."""
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
    return parts[::-1]


def used_members(source: str) -> set[tuple[str, str]]:
    """(protocol name, member) for every use of the app object and its parts that ``source`` makes."""
    found: set[tuple[str, str]] = set()
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Attribute):
            continue
        chain = _chain(node)
        for i, part in enumerate(chain[:-1]):
            after = chain[i + 1]
            if part == "stowage" and (i > 0 or chain[0] == "stowage") and not (i == 0 and after == "plugin"):
                found.add(("App", after))
            elif part == "catalog" and (i == 0 or chain[i - 1] == "stowage"):
                found.add(("CatalogAccess", after))
            elif part in ("security", "tokens", "audit") and i > 0 and chain[i - 1] == "stowage":
                found.add(({"security": "SecurityAccess", "tokens": "TokenAccess",
                            "audit": "AuditAccess"}[part], after))
            elif part == "realms" and i > 0 and chain[i - 1] == "security":
                found.add(("RealmStatus", after))
            elif part == "repository":
                found.add(("Repository", after))
            elif part == "request" and i == 0:
                found.add(("RepoRequest", after))
    return found


def test_the_scanner_sees_what_plugins_do():
    used = used_members("x = request.stowage.catalog.get_asset(a, b)\ncatalog.put_document(1)\n"
                        "self.stowage.security.realms.is_active('x')\nstowage.tokens.issue()\n"
                        "stowage.audit.record()\nrepository.stowage.extension('k', dict)\nself.tokens.get()\n")
    assert used == {("App", "catalog"), ("CatalogAccess", "get_asset"), ("CatalogAccess", "put_document"),
                    ("App", "security"), ("SecurityAccess", "realms"), ("RealmStatus", "is_active"),
                    ("App", "tokens"), ("TokenAccess", "issue"), ("App", "audit"), ("AuditAccess", "record"),
                    ("App", "extension"), ("Repository", "stowage"), ("RepoRequest", "stowage")}
    assert used_members("self.repository.blob_store.writer()\nrepository.stowage.catalog\nrequest.resp.status\n") == {
        ("Repository", "blob_store"), ("Repository", "stowage"), ("App", "catalog"), ("RepoRequest", "resp")}


#: (plugin directory, use) still to be moved onto the declared surface (a new one fails the test; one
#: fixed on another branch just stops matching). docker's proxy asks its resolver for a manifest with
#: the upstream it already fetched (``repository.resolver.resolve(..., remote=...)``), which no
#: declared member offers yet.
KNOWN_UNDECLARED = {("plugins/docker", "Repository.resolver")}


def declared(protocol: str) -> set[str]:
    """The members a plugin may use: a protocol's, or for the exported ``Repository`` and ``RepoRequest``
    classes the ones their entries in docs/plugin-api.md name."""
    if protocol not in ("Repository", "RepoRequest"):
        return members(getattr(plugin_app, protocol))
    text = (ROOT / "docs" / "plugin-api.md").read_text()
    entry = re.search(rf"^- `{protocol}` — (.*?)(?=^- )", text, flags=re.MULTILINE | re.DOTALL).group(1)
    return set(re.findall(r"`([a-z_]+)", entry))


def test_plugins_use_only_what_the_app_protocols_declare():
    assert len(PLUGIN_SOURCES) > 20
    undeclared = []
    for path in PLUGIN_SOURCES:
        where = str(path.relative_to(ROOT).parents[-3])
        for protocol, member in sorted(used_members(path.read_text())):
            if member in declared(protocol):
                continue
            if (where, f"{protocol}.{member}") not in KNOWN_UNDECLARED:
                undeclared.append(f"{path.relative_to(ROOT)}: {protocol}.{member}")
    assert not undeclared, ("plugins use members the plugin API does not declare (add them to "
                            "stowage/plugin_app.py and docs/plugin-api.md, or use a declared one):\n"
                            + "\n".join(undeclared))


@pytest.mark.parametrize("name", sorted(DEPRECATED))
def test_a_retired_name_still_imports_with_a_warning_naming_its_replacement(name):
    where, instead = DEPRECATED[name]
    module, _, attribute = where.partition(":")
    assert name not in stowage.plugin.__all__
    with pytest.warns(DeprecationWarning, match=f"stowage.plugin.{name} is deprecated.*use ") as caught:
        value = getattr(stowage.plugin, name)
    assert instead in str(caught[0].message)
    assert value is getattr(__import__(module, fromlist=["_"]), attribute or name)


def test_the_warning_points_at_the_importing_line():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        exec(compile("from stowage.plugin import Stowage", "some_plugin.py", "exec"), {})
    assert [w.filename for w in caught] == ["some_plugin.py"]


def test_an_unknown_name_is_an_attribute_error():
    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        stowage.plugin.Nope  # noqa: B018
    with pytest.raises(ImportError):
        exec("from stowage.plugin import Nope", {})


def test_the_exported_names_are_each_exported_once_and_exist():
    assert len(set(stowage.plugin.__all__)) == len(stowage.plugin.__all__)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for name in stowage.plugin.__all__:
            getattr(stowage.plugin, name)
        exec("from stowage.plugin import *", {})


#: (plugin directory, deprecated name) still imported and to be moved. Empty: keep it so.
KNOWN_DEPRECATED_IMPORTS: set[tuple[str, str]] = set()


def test_plugins_in_this_tree_import_no_deprecated_name():
    found = set()
    sources = [*PLUGIN_SOURCES, *ROOT.glob("tests/example_plugin/**/*.py")]
    for path in sources:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module == "stowage.plugin":
                found |= {(str(path.relative_to(ROOT).parents[-3]), alias.name) for alias in node.names
                          if alias.name in DEPRECATED}
    assert found - KNOWN_DEPRECATED_IMPORTS == set(), "plugins import deprecated names"


def test_plugins_json_names_the_retired_names_each_plugin_still_uses(stowage_factory, tmp_path, monkeypatch):
    """An operator sees which installed plugin breaks with the next API_VERSION, on every app built (the
    import-time warning fires once per process)."""
    package = tmp_path / "stowage_oldstyle"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "plugin.py").write_text("from stowage.plugin import Catalog, Stowage, hookimpl\n\n"
                                       "@hookimpl\ndef stowage_app_started(stowage: Stowage) -> None:\n"
                                       "    pass\n")
    (package / "modern.py").write_text("from stowage.plugin import App, hookimpl\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.warns(DeprecationWarning):
        import stowage_oldstyle.plugin
    import stowage_oldstyle.modern

    for _ in range(2):
        app = stowage_factory(plugins=[stowage_oldstyle.plugin, stowage_oldstyle.modern])
        report = {p["name"]: p for p in app.client.simulate_get("/-/plugins.json").json["plugins"]}
        assert report["stowage_oldstyle.plugin"]["deprecatedNames"] == [
            f"Catalog: use {DEPRECATED['Catalog'][1]}", f"Stowage: use {DEPRECATED['Stowage'][1]}"]
        assert report["raw"]["deprecatedNames"] == []
        assert report["stowage.builtin.introspection"]["deprecatedNames"] == []
    system = app.client.simulate_get("/admin/system", headers=app.admin)
    assert system.status_code == 200 and "Uses retired API names" in system.text
    assert "Catalog: use CatalogAccess; a catalog implementation" in system.text
