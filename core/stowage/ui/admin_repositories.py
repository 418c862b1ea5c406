"""``/admin/repositories``: list, create (every format and type), edit, delete, invalidate a proxy's cache.

The forms post to ``/service/rest/v1/repositories/...``; their fields carry the Nexus JSON names. A
format's own sections (``docker``, ``raw``, ``yum``...) are built from the attrs classes it declared in
``Format.settings``: booleans, numbers, strings, enums and string lists get a field; anything else is kept
as JSON in a hidden field so that an edit never drops it. Sections whose name ends in ``Proxy``
(``dockerProxy``) apply to proxies only.
"""

from __future__ import annotations

import enum
import json
import typing
from typing import TYPE_CHECKING, Any

import attrs

from stowage.errors import NotFound
from stowage.models import RepositoryType, WritePolicy
from stowage.rest.repositories import full
from stowage.serialization import camel
from stowage.ui.admin import ADMIN, V1, AdminPages
from stowage.ui.forms import check_list, checkbox, fieldset, list_field, rest_form, select, text_field
from stowage.ui.page import Site, esc
from stowage.ui.welcome import client_address, status_cell

if TYPE_CHECKING:
    from stowage.registration import Format
    from stowage.stowage import Stowage

PAGE = ADMIN + "/repositories"


def _field_for(section: str, attribute: attrs.Attribute, hint_type: Any, value: Any, secret: bool) -> str:
    name = f"{section}.{camel(attribute.name)}"
    label = camel(attribute.name)
    args = typing.get_args(hint_type)
    optional = type(None) in args
    base = next((a for a in args if a is not type(None)), hint_type) if optional else hint_type
    if secret:
        return text_field(label, name, "", kind="password", optional=True,
                          hint="Secret: never shown; leave empty to keep the stored value.", autocomplete="off")
    if base is bool:
        return checkbox(label, name, bool(value))
    if base is int:
        return text_field(label, name, value, kind="number", optional=optional)
    if base is str:
        return text_field(label, name, value, optional=optional)
    if isinstance(base, type) and issubclass(base, enum.Enum):
        options = ([("", "(not set)")] if optional else []) + [(m.value, m.value) for m in base]
        return select(label, name, options, value.value if isinstance(value, enum.Enum) else value,
                      optional=optional)
    if typing.get_origin(base) is tuple and typing.get_args(base)[:1] == (str,):
        return list_field(label, name, list(value or ()))
    # Not editable here: sent back unchanged.
    return (f'<input type="hidden" name="{esc(name)}" data-type="json" '
            f'value="{esc(json.dumps(value))}">')


def format_sections(fmt: "Format", type_: RepositoryType, document: dict[str, Any]) -> str:
    html = []
    for section, cls in fmt.settings.items():
        if section.endswith("Proxy") and type_ is not RepositoryType.PROXY:
            continue
        hints = typing.get_type_hints(cls)
        stored = document.get(section) or {}
        defaults = {}
        try:
            defaults = attrs.asdict(cls(), recurse=False)
        except TypeError:
            pass  # a section with required fields has no defaults
        fields = []
        for attribute in attrs.fields(cls):
            key = camel(attribute.name)
            value = stored.get(key, defaults.get(attribute.name))
            secret = f"{section}.{key}" in fmt.secret_settings
            fields.append(_field_for(section, attribute, hints[attribute.name], value, secret))
        html.append(fieldset(f"{section} settings", "".join(fields)))
    return "".join(html)


def repository_fields(stowage: "Stowage", fmt: "Format", type_: RepositoryType, document: dict[str, Any],
                      *, editing: bool) -> str:
    storage = document.get("storage") or {}
    stores = [(name, name) for name in sorted(stowage.blob_stores())]
    html = [text_field("Name", "name", document.get("name", ""), required=True, readonly=editing,
                       hint="Letters, digits, '.', '-' and '_'; part of every URL of the repository."),
            checkbox("Online", "online", document.get("online", True),
                     hint="An offline repository answers 503 to every request.")]
    storage_fields = (select("Blob store", "storage.blobStoreName", stores, storage.get("blobStoreName", "default"))
                      + checkbox("Strict content type validation", "storage.strictContentTypeValidation",
                                 storage.get("strictContentTypeValidation", True)))
    if type_ is RepositoryType.HOSTED:
        policy = storage.get("writePolicy") or fmt.default_write_policy.value
        storage_fields += select("Deployment (write) policy", "storage.writePolicy",
                                 [(p.value, p.value) for p in WritePolicy], policy,
                                 hint="ALLOW_ONCE refuses to overwrite a stored file; DENY makes it read-only.")
    html.append(fieldset("Storage", storage_fields))
    if type_ is RepositoryType.PROXY:
        proxy = document.get("proxy") or {}
        negative = document.get("negativeCache") or {}
        client = document.get("httpClient") or {}
        auth = client.get("authentication") or {}
        connection = client.get("connection") or {}
        html.append(fieldset("Proxy", (
            text_field("Remote storage URL", "proxy.remoteUrl", proxy.get("remoteUrl", ""), kind="url", required=True)
            + text_field("Maximum component age (minutes)", "proxy.contentMaxAge", proxy.get("contentMaxAge", 1440),
                         kind="number", hint="-1: cached files never expire.")
            + text_field("Maximum metadata age (minutes)", "proxy.metadataMaxAge", proxy.get("metadataMaxAge", 1440),
                         kind="number")
            + checkbox("Negative cache", "negativeCache.enabled", negative.get("enabled", True),
                       hint="Remember that the remote does not have a path.")
            + text_field("Negative cache TTL (minutes)", "negativeCache.timeToLive",
                         negative.get("timeToLive", 1440), kind="number"))))
        html.append(fieldset("HTTP client", (
            checkbox("Blocked", "httpClient.blocked", client.get("blocked", False),
                     hint="A blocked proxy serves only what it has cached.")
            + checkbox("Auto-block", "httpClient.autoBlock", client.get("autoBlock", True),
                       hint="Stop asking a remote that keeps failing, for a while.")
            + text_field("Timeout (seconds)", "httpClient.connection.timeout", connection.get("timeout", 60),
                         kind="number")
            + text_field("Retries", "httpClient.connection.retries", connection.get("retries", 0), kind="number")
            + text_field("Remote user name", "httpClient.authentication.username", auth.get("username") or "",
                         optional=True, autocomplete="off")
            + text_field("Remote password", "httpClient.authentication.password", "", kind="password",
                         optional=True, autocomplete="new-password",
                         hint="Never shown; leave empty to keep the stored one."))))
    if type_ is RepositoryType.GROUP:
        group = document.get("group") or {}
        candidates = [r.name for r in stowage.repositories()
                      if r.format_name == fmt.name and r.name != document.get("name")]
        html.append(fieldset("Group", (
            list_field("Members, in order", "group.memberNames", group.get("memberNames", []), required=True,
                       hint="One repository a line, tried from top to bottom; reorder the lines to reorder them. "
                            f"Available: {', '.join(candidates) or 'none yet'}.")
            + list_field("Proxy names allowed next to hosted ones", "group.allowProxyNames",
                         group.get("allowProxyNames", []),
                         hint="Globs of names that proxy members may also serve although a hosted member has "
                              "them (dependency-confusion guard)."))))
    if type_ is RepositoryType.HOSTED:
        policy_doc = document.get("namePolicy") or {}
        html.append(fieldset("Name policy", (
            list_field("Allowed names", "namePolicy.allow", policy_doc.get("allow", []),
                       hint="Globs, or regular expressions prefixed re:; empty: any name.")
            + list_field("Denied names", "namePolicy.deny", policy_doc.get("deny", [])))))
    html.append(cleanup_fields(stowage, fmt, document))
    html.append(format_sections(fmt, type_, document))
    return "".join(html)


def cleanup_fields(stowage: "Stowage", fmt: "Format", document: dict[str, Any]) -> str:
    """The cleanup policies of the repository's format (or of every format) as checkboxes."""
    from stowage.cleanup_policies import CleanupPolicies

    chosen = list((document.get("cleanup") or {}).get("policyNames", []))
    names = sorted(p.name for p in CleanupPolicies.of(stowage).all() if p.format in ("*", fmt.name))
    if not names and not chosen:
        return fieldset("Cleanup", '<p class="muted">No cleanup policies for this format yet '
                                   "(Administration → Cleanup policies).</p>")
    options = [(name, name) for name in names] + [(name, f"{name} (missing)") for name in chosen if name not in names]
    return fieldset("Cleanup", check_list("Cleanup policies", "cleanup.policyNames", options, chosen))


def _format(stowage: "Stowage", name: str) -> "Format":
    fmt = stowage.plugins.formats.get(name)
    if fmt is None:
        raise NotFound(f"format {name!r} is not installed")
    return fmt


def _type(value: str) -> RepositoryType:
    try:
        return RepositoryType(value)
    except ValueError:
        raise NotFound(f"unknown repository type {value!r}") from None


class RepositoriesAdminResource(AdminPages):
    """``/admin/repositories[/{action}[/{a}[/{b}]]]``: the list, ``new``, ``new/{format}/{type}``,
    ``edit/{name}``, ``delete/{name}``."""

    page, section = PAGE, "/repositories"

    def dispatch(self, site: Site, parts: list[str]) -> tuple[str, str]:
        if not parts:
            return "Repositories", self._list(site)
        if parts == ["new"]:
            return "Create repository", self._choices(site)
        if parts[0] == "new" and len(parts) == 3:
            return self._create(site, parts[1], parts[2])
        if parts[0] == "edit" and len(parts) == 2:
            return self._edit(site, parts[1])
        if parts[0] == "delete" and len(parts) == 2:
            return self._delete(site, parts[1])
        raise NotFound(f"no such page {site.req.path}")

    def _list(self, site: Site) -> str:
        rows = []
        for repository in self.stowage.repositories():
            actions = [f'<a href="{esc(site.link(f"{PAGE}/edit/{repository.name}"))}">Edit</a>',
                       f'<a href="{esc(site.link(f"{PAGE}/delete/{repository.name}"))}">Delete…</a>']
            if repository.type is not RepositoryType.HOSTED:
                actions.append(rest_form(
                    site, method="POST", url=f"{V1}/repositories/{repository.name}/invalidate-cache", body="",
                    submit="Invalidate cache", css="inline", done="Cache invalidated."))
            rows.append(f'<tr><td><a href="{esc(site.browse(repository.name))}">{esc(repository.name)}</a></td>'
                        f"<td>{esc(repository.format_name)}</td><td>{esc(repository.type.value)}</td>"
                        f"<td>{status_cell(site, repository)}</td><td><code>{esc(client_address(site, repository))}"
                        f'</code></td><td class="actions">{" · ".join(actions)}</td></tr>')
        return (f'<p><a class="button" href="{esc(site.link(PAGE + "/new"))}">Create repository</a></p>'
                '<div class="table-wrap"><table class="repositories"><thead><tr><th>Name</th><th>Format</th>'
                f'<th>Type</th><th>Status</th><th>Address</th><th>Actions</th></tr></thead><tbody>{"".join(rows)}'
                "</tbody></table></div>")

    def _choices(self, site: Site) -> str:
        items = []
        for name in sorted(self.stowage.plugins.formats):
            for type_ in RepositoryType:
                href = site.link(f"{PAGE}/new/{name}/{type_.value}")
                items.append(f'<li><a href="{esc(href)}">{esc(name)} ({esc(type_.value)})</a></li>')
        return f'<ul class="choices">{"".join(items)}</ul>'

    def _create(self, site: Site, format_name: str, type_name: str) -> tuple[str, str]:
        fmt, type_ = _format(self.stowage, format_name), _type(type_name)
        form = rest_form(site, method="POST", url=f"{V1}/repositories/{fmt.name}/{type_.value}",
                         submit="Create repository", next_url=site.link(PAGE),
                         body=repository_fields(self.stowage, fmt, type_, {}, editing=False))
        return f"Create {fmt.name} ({type_.value}) repository", form

    def _edit(self, site: Site, name: str) -> tuple[str, str]:
        repository = self.stowage.repository(name)
        fmt = _format(self.stowage, repository.format_name)
        document = full(self.stowage, site.req, repository)
        form = rest_form(site, method="PUT",
                         url=f"{V1}/repositories/{fmt.name}/{repository.type.value}/{repository.name}",
                         submit="Save", next_url=site.link(PAGE),
                         body=repository_fields(self.stowage, fmt, repository.type, document, editing=True))
        return f"Edit {repository.name}", f"<p>{status_cell(site, repository)}</p>{form}"

    def _delete(self, site: Site, name: str) -> tuple[str, str]:
        repository = self.stowage.repository(name)
        limit = 1000
        files = self.stowage.catalog.list_assets(repository.name, limit=limit)
        count = f"more than {limit}" if files.continuation_token else str(len(files.items))
        groups = [r.name for r in self.stowage.repositories()
                  if r.config.group is not None and repository.name in r.config.group.member_names]
        lost = [f"its configuration and its URL {site.repository_url(repository.name)}"]
        if repository.type is RepositoryType.HOSTED:
            lost.append(f"{count} stored files (components and assets) — they cannot be recovered")
        elif repository.type is RepositoryType.PROXY:
            lost.append(f"{count} cached files")
        if groups:
            lost.append(f"its place in the groups {', '.join(groups)}")
        items = "".join(f"<li>{esc(item)}</li>" for item in lost)
        form = rest_form(site, method="DELETE", url=f"{V1}/repositories/{repository.name}", body="",
                         submit=f"Delete {repository.name}", next_url=site.link(PAGE), danger=True)
        return (f"Delete {repository.name}?",
                f'<div class="warning"><p>Deleting the {esc(repository.format_name)} {esc(repository.type.value)} '
                f"repository <b>{esc(repository.name)}</b> removes:</p><ul>{items}</ul></div>{form}"
                f'<p><a href="{esc(site.link(PAGE))}">Cancel</a></p>')
