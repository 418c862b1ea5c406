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


def test_every_name_of_the_plugin_api_is_documented():
    """docs/plugin-api.md lists every name stowage.plugin exports, and nothing it does not export."""
    import stowage.plugin

    text = (DOCS / "plugin-api.md").read_text()
    listed = set(re.findall(r"`([A-Za-z_][A-Za-z0-9_]*)`", text))
    exported = set(stowage.plugin.__all__)
    undocumented = sorted(exported - listed)
    assert not undocumented, f"docs/plugin-api.md does not document {', '.join(undocumented)}"
    for name in exported:
        assert getattr(stowage.plugin, name, None) is not None, f"stowage.plugin.__all__ names missing {name}"
    # a bullet's first `name` is an exported name (catches a doc entry for a name that was removed)
    bullets = re.findall(r"^- `([A-Za-z_][A-Za-z0-9_]*)`", text, flags=re.MULTILINE)
    stale = sorted(set(bullets) - exported)
    assert not stale, f"docs/plugin-api.md lists {', '.join(stale)}, which stowage.plugin does not export"
    assert len(stowage.plugin.__all__) == len(exported), "stowage.plugin.__all__ lists a name twice"
