"""``/service/rest/repository/browse/<repo>/<dir>/``: Nexus's browse pages, one page of a directory at a time.

Files come from :meth:`~stowage.catalog.base.Catalog.list_directory` (a sub-directory costs one index
seek, never a scan of its contents); ``?page=`` carries the catalog's continuation token. Formats other
than raw also have a components view (``?view=components``), paged the same way.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING
from urllib.parse import urlencode

import attrs
import falcon

from stowage.errors import NotFound
from stowage.http.paths import clean_path
from stowage.http.repository_resource import raw_path
from stowage.models import Asset, AssetKind, Component, RepositoryType
from stowage.rest.access import repository_access
from stowage.rest.components import encode_id
from stowage.security import Action
from stowage.ui.forms import rest_form
from stowage.ui.page import BROWSE, Site, copy_button, esc, human_size, render, send_html, start, timestamp
from stowage.ui.usage import usage_for

if TYPE_CHECKING:
    from stowage.privileges import ContentAccess
    from stowage.repository import Repository
    from stowage.stowage import Stowage

log = logging.getLogger("stowage.ui")


def sha_cell(asset: Asset) -> str:
    return (f'<span class="sha" title="{esc(asset.blob_sha256)}">{esc(asset.blob_sha256[:12])}…</span>'
            f"{copy_button(asset.blob_sha256)}")


def component_label(repository: "Repository", component: Component) -> str:
    """A component's name as its clients write it (``@scope/name`` for npm): the format's
    ``Format.component_name``, else ``group/name``."""
    fmt = repository.format
    if fmt is not None:
        return fmt.label(component)
    return f"{component.group}/{component.name}" if component.group else component.name


def component_facts(repository: "Repository", component: Component, assets: "list[Asset]") -> str:
    """The format's ``Format.component_details`` as a small definition list ("" when it has none)."""
    fmt = repository.format
    if fmt is None or fmt.component_details is None:
        return ""
    try:
        details = fmt.component_details(repository, component, assets)
    except Exception:  # a broken plugin costs its details, never the page
        log.exception("component_details of %s failed", repository.format_name)
        return ""
    items = "".join(f"<div><dt>{esc(label)}</dt><dd>{esc(text)}</dd></div>" for label, text in details.items())
    return f'<dl class="facts">{items}</dl>' if items else ""


def may_delete(site: Site, repository: "Repository") -> bool:
    user = site.user
    return user is not None and site.stowage.permits(user, repository, Action.DELETE)


def delete_form(site: Site, url: str, what: str, consequence: str) -> str:
    return rest_form(site, method="DELETE", url=url, body="", submit="Delete", danger=True, css="inline delete",
                     next_url=site.req.relative_uri, confirm=f"Delete {what}? {consequence}")


def pager(first: str, token: str | None, here: str | None, **params: str | None) -> str:
    """"First page" and "Next page" links; ``first`` is the page's own link (already URL-encoded)."""
    def link(**extra: str | None) -> str:
        query = urlencode({k: v for k, v in {**params, **extra}.items() if v})
        return first + (f"?{query}" if query else "")

    links = []
    if here:
        links.append(f'<a href="{esc(link())}">First page</a>')
    if token:
        links.append(f'<a rel="next" href="{esc(link(page=token))}">Next page</a>')
    return f'<div class="pager">{"".join(links)}</div>' if links else ""


class BrowseResource:
    """A directory listing (all formats) or a components listing (formats other than raw)."""

    #: entries per page; a bigger directory pages with continuation tokens.
    PAGE_SIZE = 500
    COMPONENTS_PAGE_SIZE = 50

    def __init__(self, stowage: "Stowage"):
        self.stowage = stowage

    def __call__(self, req: falcon.Request, resp: falcon.Response, **_: str) -> None:
        site = start(req, resp, self.stowage)
        if req.method not in ("GET", "HEAD"):
            raise falcon.HTTPMethodNotAllowed(["GET", "HEAD"])
        rest = raw_path(req)[len(BROWSE) + 1:]
        name, slash, below = rest.partition("/")
        repository = self.stowage.repository(clean_path(name, allow_trailing_slash=False))
        access = repository_access(req, self.stowage, repository, Action.READ)
        prefix = clean_path(below) if below else ""
        if not slash or (prefix and not prefix.endswith("/")):
            raise falcon.HTTPMovedPermanently(site.browse(repository.name, prefix + "/" if prefix else ""))
        prefix = "" if prefix == "/" else prefix
        view = req.get_param("view") or ("components" if self._has_components_view(repository) and not prefix
                                          else "files")
        crumbs: list[tuple[str, str | None]] = [("Repositories", site.link("/")),
                                                (repository.name, site.browse(repository.name))]
        parts = prefix.rstrip("/").split("/") if prefix else []
        for i, part in enumerate(parts):
            crumbs.append((part, site.browse(repository.name, "/".join(parts[: i + 1]) + "/")))
        body = self._header(site, repository, prefix, view)
        if repository.type is RepositoryType.GROUP:
            body += self._members(site, repository)
        elif view == "components" and self._has_components_view(repository):
            body += self._components(site, repository, access)
        else:
            body += self._files(site, repository, prefix, access)
        title = f"{repository.name}/{prefix}" if prefix else repository.name
        send_html(resp, render(site, title, body, crumbs=crumbs[:-1] + [(crumbs[-1][0], None)]))

    @staticmethod
    def _has_components_view(repository: "Repository") -> bool:
        return repository.format_name != "raw" and repository.type is not RepositoryType.GROUP

    def _header(self, site: Site, repository: "Repository", prefix: str, view: str) -> str:
        url = site.repository_url(repository.name)
        notes = {RepositoryType.PROXY: " Only what has been fetched through it (its cache) is listed.",
                 RepositoryType.GROUP: " A group serves its members' content; browse them below."}
        html = (f'<p>{esc(repository.format_name)} {esc(repository.type.value)} repository · '
                f"<code>{esc(url)}</code>{copy_button(url)}"
                f'<span class="muted">{esc(notes.get(repository.type, ""))}</span></p>'
                f'<details id="usage"{"" if prefix else " open"}><summary>How to use</summary>'
                f"<pre>{esc(usage_for(repository, site.base_url))}</pre></details>")
        if self._has_components_view(repository) and not prefix:
            tabs = []
            for name, label in (("components", "Components"), ("files", "Files")):
                cls = ' class="current" aria-current="page"' if name == view else ""
                tabs.append(f'<a{cls} href="{esc(site.browse(repository.name, view=name))}">{label}</a>')
            html += f'<nav class="tabs">{"".join(tabs)}</nav>'
        return html

    def _members(self, site: Site, repository: "Repository") -> str:
        names = repository.config.group.member_names if repository.config.group else ()
        items = "".join(f'<li><a href="{esc(site.browse(name))}">{esc(name)}</a></li>' for name in names)
        return f"<h2>Members, in order</h2><ol>{items}</ol>"

    def _files(self, site: Site, repository: "Repository", prefix: str, access: "ContentAccess | None") -> str:
        token = site.req.get_param("page")
        page = self.stowage.catalog.list_directory(repository.name, prefix, continuation_token=token,
                                                   limit=self.PAGE_SIZE)
        if access is not None:
            # Content selectors limit what is listed: files they match, and folders whose own path
            # (``/a/b/``) they match; a folder above them is reached by its URL.
            page = attrs.evolve(page, items=[e for e in page.items if access.permits(
                f"/{prefix}{e.name}/" if e.asset is None else e.asset.path)])
        if prefix and not page.items and not token:
            raise NotFound(f"{prefix} does not exist in {repository.name}")
        rows = []
        deleting = may_delete(site, repository) and repository.type is not RepositoryType.GROUP
        blank = "<td></td>" * (4 if deleting else 3)
        if prefix:
            parts = prefix.rstrip("/").split("/")
            parent = "/".join(parts[:-1]) + "/" if len(parts) > 1 else ""
            rows.append(f'<tr class="parent"><td><a href="{esc(site.browse(repository.name, parent))}">../</a></td>'
                        f"{blank}</tr>")
        for entry in page.items:
            if entry.asset is None:
                href = site.browse(repository.name, f"{prefix}{entry.name}/")
                rows.append(f'<tr class="dir"><td><a href="{esc(href)}">{esc(entry.name)}/</a></td>{blank}</tr>')
                continue
            asset = entry.asset
            kind = ' <span class="badge">metadata</span>' if asset.kind is AssetKind.METADATA else ""
            rows.append(f'<tr class="file"><td><a href="{esc(site.download(repository.name, asset.path))}" download>'
                        f"{esc(entry.name)}</a>{kind}</td>"
                        f'<td class="num" title="{asset.size} bytes">{esc(human_size(asset.size))}</td>'
                        f'<td class="when">{esc(timestamp(asset.last_updated))}</td><td>{sha_cell(asset)}</td>'
                        + (f"<td>{self._asset_delete(site, asset)}</td>" if deleting else "") + "</tr>")
        if not page.items and not prefix:
            return '<p class="muted">This repository holds no files yet.</p>'
        actions = "<th>Actions</th>" if deleting else ""
        return ('<table class="listing"><thead><tr><th>Name</th><th>Size</th><th>Last modified</th><th>SHA-256</th>'
                f'{actions}</tr></thead><tbody>{"".join(rows)}</tbody></table>'
                + pager(site.browse(repository.name, prefix), page.continuation_token, token,
                        view=site.req.get_param("view")))

    def _components(self, site: Site, repository: "Repository", access: "ContentAccess | None") -> str:
        token = site.req.get_param("page")
        page = self.stowage.catalog.list_components(repository.name, continuation_token=token,
                                                    limit=self.COMPONENTS_PAGE_SIZE)
        if access is not None:
            page = attrs.evolve(page, items=[c for c in page.items if any(
                access.permits(a.path) for a in self.stowage.catalog.list_assets(repository.name,
                                                                                component_id=c.id).items)])
        if not page.items and not token:
            return ('<p class="muted">No components yet. The <a href="'
                    f'{esc(site.browse(repository.name, view="files"))}">files view</a> lists every stored path.</p>')
        deleting = may_delete(site, repository)
        rows = [self._component_row(site, repository, c, deleting) for c in page.items]
        actions = "<th>Actions</th>" if deleting else ""
        return ('<table class="components"><thead><tr><th>Name</th><th>Version</th><th>Assets</th>'
                f'{actions}</tr></thead>'
                f'<tbody>{"".join(rows)}</tbody></table>'
                + pager(site.browse(repository.name), page.continuation_token, token, view="components"))

    def _component_row(self, site: Site, repository: "Repository", component: Component, deleting: bool) -> str:
        assets = self.stowage.catalog.list_assets(repository.name, component_id=component.id).items
        links = "".join(f'<li><a href="{esc(site.download(repository.name, a.path))}" download>{esc(a.path)}</a> '
                        f'<span class="muted">{esc(human_size(a.size))}</span> {sha_cell(a)}</li>' for a in assets)
        name = component_label(repository, component)
        facts = component_facts(repository, component, assets)
        action = ""
        if deleting:
            files = ", ".join(a.path for a in assets)
            action = "<td>" + delete_form(
                site, f"/service/rest/v1/components/{encode_id(repository.name, 'component', component.id or 0)}",
                f"{name} {component.version}", f"Its {len(assets)} file(s) are removed: {files}") + "</td>"
        return (f"<tr><td>{esc(name)}{facts}</td><td>{esc(component.version)}</td>"
                f'<td><ul class="assets">{links}</ul></td>{action}</tr>')

    @staticmethod
    def _asset_delete(site: Site, asset: Asset) -> str:
        return delete_form(site, f"/service/rest/v1/assets/{encode_id(asset.repository, 'asset', asset.id or 0)}",
                           asset.path, "The file is removed from the repository.")
