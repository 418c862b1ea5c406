"""The CSEL parser: rendered expression trees evaluate like a reference evaluator; bad text is a CselError."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings, strategies as st

from stowage.csel import CselError, parse

VALUES = st.text(alphabet="ab/@-.x\"\\'", max_size=6)
LEAF = st.tuples(st.sampled_from(["format", "path"]), st.sampled_from(["==", "=^", "=~"]), VALUES)
TREE = st.recursive(LEAF, lambda inner: st.tuples(st.sampled_from(["and", "or"]), st.lists(inner, min_size=2,
                                                                                           max_size=3)),
                    max_leaves=8)


def quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def render(tree) -> str:
    if tree[0] in ("and", "or"):
        return "(" + f" {tree[0]} ".join(render(part) for part in tree[1]) + ")"
    variable, operator, value = tree
    if operator == "=~":
        value = re.escape(value)
    return f"{variable} {operator} {quote(value)}"


def evaluate(tree, values) -> bool:
    if tree[0] == "and":
        return all(evaluate(part, values) for part in tree[1])
    if tree[0] == "or":
        return any(evaluate(part, values) for part in tree[1])
    variable, operator, value = tree
    actual = values[variable]
    return {"==": actual == value, "=^": actual.startswith(value), "=~": actual == value}[operator]


@settings(max_examples=300, deadline=None)
@given(TREE, VALUES, VALUES)
def test_rendered_trees_evaluate_like_the_reference(tree, path, fmt):
    selector = parse(render(tree))
    assert selector.matches(path=path, format=fmt) == evaluate(tree, {"path": path, "format": fmt})


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet='()"\'=~^ andorpathformat\\x', max_size=40))
def test_any_text_parses_or_is_a_clear_error(text):
    try:
        selector = parse(text)
    except CselError as error:
        assert error.message
    else:
        selector.matches(path="/x", format="npm")


def test_precedence_and_binds_tighter_than_or():
    selector = parse('format == "pypi" or format == "npm" and path =^ "/@cwiq/"')
    assert selector.matches(path="/anything", format="pypi")
    assert not selector.matches(path="/other", format="npm")
    assert selector.matches(path="/@cwiq/lib", format="npm")
    grouped = parse('(format == "pypi" or format == "npm") and path =^ "/@cwiq/"')
    assert not grouped.matches(path="/anything", format="pypi")


def test_regex_matches_the_whole_path_and_single_quotes_work():
    selector = parse("path =~ '/@cwiq/.*\\.tgz'")
    assert selector.matches(path="/@cwiq/lib/-/lib-1.0.0.tgz", format="npm")
    assert not selector.matches(path="/@cwiq/lib", format="npm")


@pytest.mark.parametrize("text, fragment", [
    ("", "empty"),
    ('format = "npm"', "unexpected character"),
    ('colour == "red"', "unknown variable 'colour'"),
    ('path =~ "(unclosed"', "invalid regular expression"),
    ('path == "x" format == "npm"', "join conditions"),
    ('(path == "x"', "expected ')'"),
    ('path == "x', "unterminated string"),
    ('path == "x" and', "expression ended"),
    ("path == npm", "quoted string"),
])
def test_invalid_expressions_name_the_problem(text, fragment):
    with pytest.raises(CselError, match=re.escape(fragment)):
        parse(text)
