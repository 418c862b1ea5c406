"""The HTML pages: the welcome page at ``/`` and Nexus's browse pages
(``/service/rest/repository/browse/<repo>/<path>/``)."""

from __future__ import annotations

import html
from typing import TYPE_CHECKING
from urllib.parse import quote

import falcon

from stowage.http.paths import clean_path
from stowage.http.repository_resource import raw_path
from stowage.models import AssetKind
from stowage.rest.access import can_read, require_repository
from stowage.security import Action

if TYPE_CHECKING:
    from stowage.stowage import Stowage

BROWSE = "/service/rest/repository/browse"
_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>body{{font-family:system-ui,sans-serif;margin:2rem;color:#222}}table{{border-collapse:collapse}}
td,th{{padding:.2rem 1rem;text-align:left;border-bottom:1px solid #ddd}}h1{{font-size:1.4rem}}</style>
</head><body><h1>{title}</h1>{body}</body></html>"""


def page(title: str, body: str) -> bytes:
    return _PAGE.format(title=html.escape(title), body=body).encode()


class WelcomeResource:
    def __init__(self, stowage: "Stowage"):
        self.stowage = stowage

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        rows = "".join(
            f"<tr><td><a href='{BROWSE}/{quote(r.name)}/'>{html.escape(r.name)}</a></td>"
            f"<td>{html.escape(r.format_name)}</td><td>{r.type.value}</td>"
            f"<td><code>/repository/{html.escape(r.name)}/</code></td></tr>"
            for r in self.stowage.repositories() if can_read(req, self.stowage, r))
        body = (f"<table><tr><th>Repository</th><th>Format</th><th>Type</th><th>URL</th></tr>{rows}</table>"
                f"<p><a href='/service/rest/v1/repositories'>REST API</a> · <a href='/-/plugins.json'>plugins</a></p>")
        resp.content_type = "text/html; charset=utf-8"
        resp.data = page("Stowage", body)


class BrowseResource:
    """Directory listings of a repository's stored paths, as Nexus's browse pages."""

    LIMIT = 5000

    def __init__(self, stowage: "Stowage"):
        self.stowage = stowage

    def on_get(self, req: falcon.Request, resp: falcon.Response, **_: str) -> None:
        rest = raw_path(req)[len(BROWSE) + 1:]
        name, _, below = rest.partition("/")
        repository = self.stowage.repository(clean_path(name, allow_trailing_slash=False))
        require_repository(req, self.stowage, repository, Action.READ)
        prefix = clean_path(below) if below else ""
        if prefix and not prefix.endswith("/"):
            raise falcon.HTTPMovedPermanently(f"{BROWSE}/{quote(repository.name)}/{quote(prefix)}/")
        prefix = "" if prefix == "/" else prefix
        directories: set[str] = set()
        files = []
        for asset in self.stowage.catalog.iter_assets(repository.name, prefix=prefix):
            child, slash, _ = asset.path[len(prefix):].partition("/")
            if slash:
                directories.add(child)
            elif asset.kind is AssetKind.CONTENT or repository.format_name == "raw":
                files.append(asset)
            if len(directories) + len(files) >= self.LIMIT:
                break
        if prefix and not directories and not files:
            raise falcon.HTTPNotFound(title="Not Found", description=f"{prefix} does not exist in {repository.name}")
        rows = ["<tr><td><a href='../'>Parent Directory</a></td><td></td><td></td></tr>"] if prefix else []
        rows += [f"<tr><td><a href='{quote(d)}/'>{html.escape(d)}</a></td><td></td><td></td></tr>"
                 for d in sorted(directories)]
        rows += [f"<tr><td><a href='/repository/{quote(repository.name)}/{quote(a.path)}'>"
                 f"{html.escape(a.path[len(prefix):])}</a></td><td>{a.size}</td>"
                 f"<td><code>{a.blob_sha256[:12]}</code></td></tr>" for a in files]
        title = f"Index of /{prefix}" if prefix else f"Index of /"
        body = (f"<p>Repository <b>{html.escape(repository.name)}</b> ({html.escape(repository.format_name)} "
                f"{repository.type.value})</p><table><tr><th>Name</th><th>Size</th><th>SHA-256</th></tr>"
                f"{''.join(rows)}</table>")
        resp.content_type = "text/html; charset=utf-8"
        resp.data = page(title, body)


def register_ui_routes(app: falcon.App, stowage: "Stowage") -> None:
    app.add_route("/", WelcomeResource(stowage))
    app.add_sink(BrowseResource(stowage).on_get, prefix=rf"^{BROWSE}/")
