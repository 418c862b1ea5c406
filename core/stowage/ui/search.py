"""``/search?q=``: the catalog's asset search (as ``/service/rest/v1/search/assets``) as a page.

The same parameters and rules as the REST search: only readable repositories, a group means its members,
``continuationToken`` pages 50 results at a time.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import falcon

from stowage.models import Component
from stowage.rest.access import can_read
from stowage.rest.search import PAGE_SIZE, search_filters, searchable
from stowage.ui.browse import component_facts, component_label, sha_cell
from stowage.ui.page import Site, esc, human_size, render, send_html, start, timestamp

if TYPE_CHECKING:
    from stowage.stowage import Stowage

_CRITERIA = ("q", "name", "version", "group", "sha256")


class SearchPageResource:
    def __init__(self, stowage: "Stowage"):
        self.stowage = stowage

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        site = start(req, resp, self.stowage)
        body = self._form(site)
        if any(req.get_param(name) for name in _CRITERIA):
            body += self._results(site)
        else:
            body += '<p class="muted">Search by file path or component name, e.g. <code>.tar.gz</code>.</p>'
        send_html(resp, render(site, "Search", body, crumbs=[("Repositories", site.link("/")), ("Search", None)]))

    on_head = on_get

    def _form(self, site: Site) -> str:
        req = site.req
        readable = [r for r in self.stowage.repositories() if can_read(req, self.stowage, r)]
        chosen = req.get_param("repository") or ""
        options = ['<option value="">all repositories</option>'] + [
            f'<option value="{esc(r.name)}"{" selected" if r.name == chosen else ""}>{esc(r.name)}</option>'
            for r in readable]
        wanted_format = req.get_param("format") or ""
        formats = ['<option value="">all formats</option>'] + [
            f'<option value="{esc(f)}"{" selected" if f == wanted_format else ""}>{esc(f)}</option>'
            for f in sorted({r.format_name for r in readable})]
        return (f'<form class="search-page" action="{esc(site.link("/search"))}" method="get">'
                f'<input type="search" name="q" value="{esc(req.get_param("q") or "")}" aria-label="Search terms" '
                f'placeholder="path or name"> <select name="repository" aria-label="Repository">{"".join(options)}'
                f'</select> <select name="format" aria-label="Format">{"".join(formats)}</select> '
                '<button type="submit">Search</button></form>')

    def _components_only(self, name: str) -> bool:
        fmt = self.stowage.repository(name).format
        return fmt is not None and fmt.search_components_only

    def _images(self, site: Site, repositories: list[str], filters: dict) -> str:  # type: ignore[type-arg]
        """Components of the component-only formats: name, version (tag) and the format's facts."""
        wanted = {k: v for k, v in filters.items() if k not in ("sha256", "continuation_token", "sort")}
        page = self.stowage.catalog.search_components(repositories=repositories, limit=PAGE_SIZE, **wanted)
        rows = []
        for component in page.items:
            repository = self.stowage.repository(component.repository)
            assets = self.stowage.catalog.list_assets(repository.name, component_id=component.id).items
            rows.append(f'<tr><td data-label="Repository"><a href="{esc(site.browse(repository.name))}">'
                        f"{esc(repository.name)}</a></td>"
                        f'<td data-label="Name">{esc(component_label(repository, component))}</td>'
                        f'<td data-label="Version">{esc(component.version)}</td>'
                        f'<td data-label="Details">{component_facts(repository, component, assets)}</td></tr>')
        if not rows:
            return ""
        return ('<h2>Images</h2><table class="results images"><colgroup><col class="c-repo"><col class="c-path">'
                '<col class="c-comp"><col class="c-details"></colgroup><thead><tr><th>Repository</th><th>Name</th>'
                f'<th>Version</th><th>Details</th></tr></thead><tbody>{"".join(rows)}</tbody></table>'
               )

    def _results(self, site: Site) -> str:
        req = site.req
        repositories = searchable(req, self.stowage)
        filters = search_filters(req)
        if not repositories:
            return "<p>No results.</p>"
        # Formats whose files mean nothing to people (docker's blobs) are searched as components (images).
        by_component = sorted(name for name in repositories if self._components_only(name))
        files = sorted(set(repositories) - set(by_component))
        images = self._images(site, by_component, filters) if by_component and not filters["continuation_token"] \
            else ""
        if not files:
            return images or "<p>No results.</p>"
        page = self.stowage.catalog.search_assets(repositories=files, limit=PAGE_SIZE, **filters)
        if not page.items:
            return images or "<p>No results.</p>"
        components: dict[int, Component | None] = {}
        rows = []
        for asset in page.items:
            repository = self.stowage.repository(asset.repository)
            component = None
            if asset.component_id is not None:
                if asset.component_id not in components:
                    components[asset.component_id] = self.stowage.catalog.get_component(asset.component_id)
                component = components[asset.component_id]
            label = ""
            if component is not None:
                name = component_label(repository, component)
                label = f"{esc(name)} <span class=\"muted\">{esc(component.version)}</span>"
            directory = asset.path.rpartition("/")[0]
            folder = site.browse(asset.repository, f"{directory}/" if directory else "", view="files")
            rows.append(
                f'<tr><td data-label="Repository"><a href="{esc(folder)}">'
                f"{esc(asset.repository)}</a></td>"
                f'<td data-label="Path" class="path"><a href="{esc(site.download(asset.repository, asset.path))}" '
                f"download>{esc(asset.path)}</a></td>"
                f'<td data-label="Component">{label}</td>'
                f'<td data-label="Size" class="num" title="{asset.size} bytes">{esc(human_size(asset.size))}</td>'
                f'<td data-label="Last modified" class="when">{esc(timestamp(asset.last_updated))}</td>'
                f'<td data-label="SHA-256">{sha_cell(asset)}</td></tr>')
        more = ""
        if page.continuation_token:
            params = {k: req.get_param(k) for k in ("q", "repository", "format", "name", "version", "group",
                                                    "sha256", "sort", "direction")}
            more = (f'<div class="pager"><a rel="next" href="'
                    f'{esc(site.link("/search", continuationToken=page.continuation_token, **params))}">'
                    "Next page</a></div>")
        return (images + '<table class="results"><colgroup><col class="c-repo"><col class="c-path"><col class="c-comp">'
                '<col class="c-size"><col class="c-when"><col class="c-sha"></colgroup>'
                '<thead><tr><th>Repository</th><th>Path</th><th>Component</th><th>Size</th>'
                f'<th>Last modified</th><th>SHA-256</th></tr></thead><tbody>{"".join(rows)}</tbody></table>{more}')

