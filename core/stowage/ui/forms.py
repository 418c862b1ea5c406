"""Form building blocks: labelled fields named after the Nexus JSON fields they fill, and the REST form.

A :func:`rest_form` is sent by the UI's script to the REST endpoint it names (the same code path as
any script or SDK, so both validate alike); the server's error message appears in the form's alert line.
Every field has a ``<label>``; hints are tied to their field with ``aria-describedby``.
"""

from __future__ import annotations

import re
from typing import Iterable, Sequence

from stowage.ui.page import Site, esc


def field_id(name: str) -> str:
    return "f-" + re.sub(r"[^A-Za-z0-9_-]", "-", name)


def _hint(name: str, hint: str) -> tuple[str, str]:
    if not hint:
        return "", ""
    hid = field_id(name) + "-hint"
    return f' aria-describedby="{hid}"', f'<p class="hint" id="{hid}">{esc(hint)}</p>'


def text_field(label: str, name: str, value: object = "", *, hint: str = "", required: bool = False,
               kind: str = "text", optional: bool = False, readonly: bool = False, autocomplete: str = "") -> str:
    """A text-like input; ``kind`` is the input type (``text``, ``url``, ``password``, ``number``)."""
    described, help_text = _hint(name, hint)
    extra = " required" if required else ""
    extra += " data-optional" if optional else ""
    extra += " readonly" if readonly else ""
    extra += ' data-type="int"' if kind == "number" else ""
    extra += f' autocomplete="{esc(autocomplete)}"' if autocomplete else ""
    shown = "" if value is None else value
    return (f'<label for="{field_id(name)}">{esc(label)}</label>'
            f'<input id="{field_id(name)}" name="{esc(name)}" type="{esc(kind)}" value="{esc(shown)}"'
            f'{described}{extra}>{help_text}')


def checkbox(label: str, name: str, checked: bool, *, hint: str = "") -> str:
    described, help_text = _hint(name, hint)
    return (f'<label for="{field_id(name)}">{esc(label)}</label>'
            f'<input id="{field_id(name)}" name="{esc(name)}" type="checkbox"{" checked" if checked else ""}'
            f'{described}>{help_text}')


def select(label: str, name: str, options: Iterable[tuple[str, str]], selected: str | None, *,
           hint: str = "", optional: bool = False) -> str:
    described, help_text = _hint(name, hint)
    choices = "".join(f'<option value="{esc(value)}"{" selected" if value == selected else ""}>{esc(text)}</option>'
                      for value, text in options)
    return (f'<label for="{field_id(name)}">{esc(label)}</label>'
            f'<select id="{field_id(name)}" name="{esc(name)}"{described}{" data-optional" if optional else ""}>'
            f"{choices}</select>{help_text}")


def list_field(label: str, name: str, values: Sequence[str], *, hint: str = "", required: bool = False) -> str:
    """A list of strings, one a line (order kept: group members are tried in this order)."""
    described, help_text = _hint(name, hint)
    return (f'<label for="{field_id(name)}">{esc(label)}</label>'
            f'<textarea id="{field_id(name)}" name="{esc(name)}" data-type="list" rows="{max(3, len(values) + 1)}"'
            f'{described}{" required" if required else ""}>{esc(chr(10).join(values))}</textarea>{help_text}')


def check_list(label: str, name: str, options: Iterable[tuple[str, str]], chosen: Iterable[str]) -> str:
    """Several checkboxes filling one JSON list (roles of a user, privileges of a role)."""
    chosen = set(chosen)
    boxes = "".join(
        f'<label><input type="checkbox" name="{esc(name)}" value="{esc(value)}" data-type="list"'
        f'{" checked" if value in chosen else ""}> {esc(text)}</label>' for value, text in options)
    return (f'<span id="{field_id(name)}-label" class="group-label">{esc(label)}</span>'
            f'<div class="checks" role="group" aria-labelledby="{field_id(name)}-label">{boxes}</div>')


def fieldset(legend: str, body: str) -> str:
    return f"<fieldset><legend>{esc(legend)}</legend>{body}</fieldset>"


def rest_form(site: Site, *, method: str, url: str, body: str, submit: str, next_url: str | None = None,
              encoding: str = "json", danger: bool = False, confirm: str = "", css: str = "stacked",
              text_field_name: str = "", done: str = "", extra_buttons: str = "", result: str = "") -> str:
    """A form the UI's script sends to ``url`` (a REST endpoint path under the server's root)."""
    attrs = (f' data-method="{esc(method)}" data-url="{esc(site.link(url))}" data-encoding="{esc(encoding)}"')
    if next_url is not None:
        attrs += f' data-next="{esc(next_url)}"'
    if confirm:
        attrs += f' data-confirm="{esc(confirm)}"'
    if text_field_name:
        attrs += f' data-field="{esc(text_field_name)}"'
    if done:
        attrs += f' data-done="{esc(done)}"'
    if result:  # the id of the element the answer is shown in (a preview, a new token)
        attrs += f' data-result="{esc(result)}"'
    button = "danger" if danger else "primary"
    return (f'<form class="rest {css}"{attrs}>{site.csrf_field()}{body}'
            f'<p class="form-error" role="alert" tabindex="-1"></p>'
            f'<div class="actions"><button type="submit" class="{button}">{esc(submit)}</button>{extra_buttons}'
            "</div></form>")
