"""Docs that drift fail here: every hook documented with its exact signature and tested; example code real."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest

from stowage import hookspecs

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
HOOKS = sorted(name for name in dir(hookspecs) if name.startswith("stowage_"))


def _annotation(value: object) -> str:
    return str(value).replace('"', "").replace("'", "")


def signature_of(name: str) -> str:
    """``name(arg: Type, ...) -> Return``, as the hookspec declares it (string annotations unquoted)."""
    sig = inspect.signature(getattr(hookspecs, name))
    params = ", ".join(f"{p.name}: {_annotation(p.annotation)}" for p in sig.parameters.values())
    return f"{name}({params}) -> {_annotation(sig.return_annotation)}"


def hook_sections() -> dict[str, str]:
    text = (DOCS / "hooks.md").read_text()
    parts = re.split(r"^### (\S+)\s*$", text, flags=re.MULTILINE)
    return {parts[i]: parts[i + 1] for i in range(1, len(parts), 2)}


def test_hookspecs_exist():
    assert len(HOOKS) >= 11


@pytest.mark.parametrize("name", HOOKS)
def test_every_hook_has_a_section_with_its_exact_signature(name):
    sections = hook_sections()
    assert name in sections, f"docs/hooks.md has no '### {name}' section"
    assert f"```python\n{signature_of(name)}\n```" in sections[name], (
        f"docs/hooks.md's section {name} must show the exact signature:\n{signature_of(name)}")
    assert "@hookimpl" in sections[name], f"docs/hooks.md's section {name} has no example implementation"


def test_no_section_for_a_hook_that_does_not_exist():
    assert set(hook_sections()) <= set(HOOKS)


def _test_sources() -> str:
    files = list((ROOT / "tests").rglob("*.py")) + list((ROOT / "plugins").glob("*/tests/**/*.py"))
    return "\n".join(path.read_text() for path in files)


@pytest.mark.parametrize("name", HOOKS)
def test_every_hook_has_a_test(name):
    assert re.search(rf"^def test_hook_{name}\(", _test_sources(), flags=re.MULTILINE), (
        f"no test named test_hook_{name} under tests/ or plugins/*/tests/")


def test_writing_a_plugin_shows_the_tested_example_verbatim():
    text = (DOCS / "writing-a-plugin.md").read_text()
    blocks = re.findall(r"<!-- file: (\S+) -->\n```\w*\n(.*?)```", text, flags=re.DOTALL)
    assert {path for path, _ in blocks} == {"tests/example_plugin/pyproject.toml",
                                             "tests/example_plugin/stowage_tiny/plugin.py"}
    for path, code in blocks:
        assert code == (ROOT / path).read_text(), f"docs/writing-a-plugin.md's copy of {path} drifted"
    test_block = re.search(r"## 4\. Test it.*?```python\n(.*?)```", text, flags=re.DOTALL).group(1)
    assert test_block in (ROOT / "tests" / "test_example_plugin.py").read_text()


def test_every_doc_page_is_linked_from_the_index():
    index = (DOCS / "index.md").read_text()
    for page in DOCS.rglob("*.md"):
        if page.name != "index.md":
            assert str(page.relative_to(DOCS)) in index, f"docs/index.md does not link {page.name}"


def test_configuration_documents_every_server_setting():
    import attrs

    from stowage.serialization import camel
    from stowage.settings import ServerSettings

    text = (DOCS / "configuration.md").read_text()
    for field in attrs.fields(ServerSettings):
        assert f"`{camel(field.name)}`" in text, f"docs/configuration.md does not document server.{camel(field.name)}"


def _plugin_api_parts() -> tuple[str, str, str]:
    """docs/plugin-api.md split into the stowage.plugin part, the stowage.backends part and the table
    of deprecated names."""
    text = (DOCS / "plugin-api.md").read_text()
    plugin_part, _, rest = text.partition("\n## Storage plugins: `stowage.backends`\n")
    backends_part, _, deprecated_part = rest.partition("\n## Deprecated names\n")
    assert backends_part and deprecated_part, "docs/plugin-api.md lost its backends or deprecated section"
    return plugin_part, backends_part, deprecated_part


def _check_listed(text: str, module: object, where: str) -> None:
    listed = set(re.findall(r"`([A-Za-z_][A-Za-z0-9_]*)`", text))
    exported = set(module.__all__)
    undocumented = sorted(exported - listed)
    assert not undocumented, f"{where} does not document {', '.join(undocumented)}"
    for name in exported:
        assert getattr(module, name, None) is not None, f"{module.__name__}.__all__ names missing {name}"
    # a bullet's first `name` is an exported name (catches a doc entry for a name that was removed)
    bullets = re.findall(r"^- `([A-Za-z_][A-Za-z0-9_]*)`", text, flags=re.MULTILINE)
    stale = sorted(set(bullets) - exported)
    assert not stale, f"{where} lists {', '.join(stale)}, which {module.__name__} does not export"
    assert len(module.__all__) == len(exported), f"{module.__name__}.__all__ lists a name twice"


def test_every_name_of_the_plugin_api_is_documented():
    """docs/plugin-api.md lists every name stowage.plugin and stowage.backends export, nothing they do not
    export, and every deprecated name with its replacement."""
    import stowage.backends
    import stowage.plugin
    from stowage.plugin_deprecations import DEPRECATED

    plugin_part, backends_part, deprecated_part = _plugin_api_parts()
    _check_listed(plugin_part, stowage.plugin, "docs/plugin-api.md")
    _check_listed(backends_part, stowage.backends, "docs/plugin-api.md's stowage.backends section")
    rows = dict(re.findall(r"^\| `([A-Za-z_][A-Za-z0-9_]*)` \| (.+?) \|$", deprecated_part, flags=re.MULTILINE))
    expected = {name: instead for name, (_, instead) in DEPRECATED.items()}
    assert rows == expected, "docs/plugin-api.md's deprecated table differs from DEPRECATED"
    assert not set(rows) & set(stowage.plugin.__all__), "a deprecated name is still in stowage.plugin.__all__"


def test_doc_examples_import_only_the_plugin_api():
    """Examples import stowage.plugin (a storage plugin also stowage.backends; a test stowage.testing):
    a reader copies what a page shows."""
    allowed = ("stowage.plugin", "stowage.backends", "stowage.testing")
    wrong = []
    for page in sorted(DOCS.rglob("*.md")):
        for block in re.findall(r"```python\n(.*?)```", page.read_text(), flags=re.DOTALL):
            for module in re.findall(r"^\s*(?:from|import)\s+(stowage(?:\.[\w.]+)?)\b", block, flags=re.MULTILINE):
                if not module.startswith(allowed):
                    wrong.append(f"{page.name}: {module}")
    assert not wrong, f"doc examples import internals: {wrong}"
