"""``/admin``: the administration pages' frame, and the system and blob store pages.

Every administration page starts with :func:`admin_page`: an anonymous visitor is sent to sign in, a
signed-in user without ``nx-all`` gets 403. What the pages change, they change through the REST API's
endpoints (:func:`stowage.ui.forms.rest_form`), which check the same again.
"""

from __future__ import annotations

import abc

from typing import TYPE_CHECKING

import falcon

from stowage.builtin.introspection import plugins_document
from stowage.cluster import WorkerRegistry
from stowage.errors import Forbidden
from stowage.http.paths import clean_path
from stowage.rest.blobstores import blob_store_json, quota_status
from stowage.ui.forms import checkbox, rest_form, select, text_field
from stowage.ui.page import Site, esc, human_size, render, send_html, signed_in_page, timestamp

if TYPE_CHECKING:
    from stowage.stowage import Stowage

ADMIN = "/admin"
V1 = "/service/rest/v1"

#: (path below /admin, title) of the administration pages, in menu order.
SECTIONS = (("/repositories", "Repositories"), ("/blobstores", "Blob stores"), ("/cleanup", "Cleanup policies"),
            ("/tasks", "Tasks"), ("/users", "Users"),
            ("/roles", "Roles"), ("/selectors", "Content selectors"), ("/realms", "Realms"),
            ("/ldap", "LDAP"), ("/user-tokens", "User tokens"), ("/anonymous", "Anonymous access"), ("/audit", "Audit log"), ("/system", "System"))


def admin_page(req: falcon.Request, resp: falcon.Response, stowage: "Stowage") -> Site | None:
    """The page's :class:`Site` for an administrator; None after redirecting an anonymous visitor to sign in
    (the caller returns at once); 403 for anyone else."""
    site = signed_in_page(req, resp, stowage)
    if site is not None and not site.is_admin:
        raise Forbidden(f"user {site.user.user_id} is not an administrator")
    return site


def admin_render(site: Site, title: str, body: str, *, section: str = "") -> bytes:
    current = ' class="current" aria-current="page"'
    links = "".join(f'<a href="{esc(site.link(ADMIN + path))}"{current if path == section else ""}>{esc(text)}</a>'
                    for path, text in SECTIONS)
    crumbs = [("Administration", site.link(ADMIN))]
    return render(site, title, f'<nav class="admin-nav" aria-label="administration">{links}</nav>{body}',
                  crumbs=crumbs)


class AdminPages(abc.ABC):
    """A sink for an administration section: ``page`` is its path; :meth:`dispatch` gets the path's
    segments below it (validated) and returns the title and body. Only GET and HEAD: pages never change
    anything themselves."""

    page = ""
    section = ""

    def __init__(self, stowage: "Stowage"):
        self.stowage = stowage
        self.security = stowage.security

    def __call__(self, req: falcon.Request, resp: falcon.Response, **_: str) -> None:
        if req.method not in ("GET", "HEAD"):
            raise falcon.HTTPMethodNotAllowed(["GET", "HEAD"])
        site = admin_page(req, resp, self.stowage)
        if site is None:
            return
        rest = req.path[len(self.page):].strip("/")
        parts = [clean_path(p, allow_trailing_slash=False) for p in rest.split("/")] if rest else []
        title, body = self.dispatch(site, parts)
        send_html(resp, admin_render(site, title, body, section=self.section))

    @abc.abstractmethod
    def dispatch(self, site: Site, parts: list[str]) -> tuple[str, str]:
        """The page's title and body for the path ``parts`` below the section (NotFound for none)."""


class AdminIndexResource:
    def __init__(self, stowage: "Stowage"):
        self.stowage = stowage

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        site = admin_page(req, resp, self.stowage)
        if site is None:
            return
        items = "".join(f'<li><a href="{esc(site.link(ADMIN + path))}">{esc(text)}</a></li>'
                        for path, text in SECTIONS)
        send_html(resp, admin_render(site, "Administration", f'<ul class="choices">{items}</ul>'))


class SystemResource:
    """Status checks (the same as ``/service/rest/v1/status/...``), version, plugins loaded and failed."""

    def __init__(self, stowage: "Stowage"):
        self.stowage = stowage

    def _checks(self) -> list[tuple[str, bool, str]]:
        checks = []
        try:
            count = len(self.stowage.catalog.list_repositories())
            checks.append(("Catalog readable", True, f"{count} repositories"))
        except Exception as error:  # any failure to read is what the check reports
            checks.append(("Catalog readable", False, str(error)))
        for name in sorted(self.stowage.blob_stores()):
            info = blob_store_json(self.stowage, name)
            quota = quota_status(self.stowage, name)
            ok = not info["unavailable"] and not quota["isViolation"]
            checks.append((f"Blob store {name}", ok, quota["message"] if info["softQuota"] else
                           f"{human_size(info['availableSpaceInBytes'])} available"))
        return checks

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        site = admin_page(req, resp, self.stowage)
        if site is None:
            return
        document = plugins_document(self.stowage)
        checks = "".join(
            f'<tr><td>{esc(name)}</td><td><span class="badge {"ok" if ok else "bad"}">{"healthy" if ok else "failing"}'
            f"</span></td><td>{esc(detail)}</td></tr>" for name, ok, detail in self._checks())
        plugins = "".join(
            f"<tr><td>{esc(p['name'])}</td><td>{esc(p['distribution'] or 'built in')}</td>"
            f"<td>{esc(p['version'] or '')}</td><td>{esc(', '.join(p['formats']))}</td>"
            f"<td>{esc('; '.join(p['deprecatedNames']))}</td></tr>"
            for p in document["plugins"])
        failures = "".join(f"<tr><td>{esc(f['name'])}</td><td>{esc(f['error'])}</td></tr>"
                           for f in document["failures"])
        workers = WorkerRegistry.of(self.stowage).workers()
        nodes = "".join(
            f"<tr><td>{esc(w['node'])}{' (this page)' if w['self'] else ''}</td><td>{w['pid']}</td>"
            f"<td>{esc(', '.join(w['addresses']))}</td><td>{esc(w['version'] or '(development)')}</td>"
            f"<td>{timestamp(w['started'])}</td><td>{timestamp(w['lastSeen'])}</td>"
            f'<td><span class="badge {"ok" if w["state"] == "alive" else "bad"}">{esc(w["state"])}</span></td></tr>'
            for w in workers)
        body = (f"<p>Stowage {esc(document['stowage'] or '(development)')} · node <code>{esc(self.stowage.node_id)}"
                f"</code> · formats: {esc(', '.join(document['formats']))}</p>"
                "<h2>Status checks</h2><table><thead><tr><th>Check</th><th>Result</th><th>Detail</th></tr></thead>"
                f"<tbody>{checks}</tbody></table>"
                "<h2>Nodes and workers</h2>"
                + ('<table id="nodes"><thead><tr><th>Node</th><th>PID</th><th>Address</th><th>Version</th>'
                   f"<th>Started</th><th>Last seen</th><th>State</th></tr></thead><tbody>{nodes}</tbody></table>"
                   if nodes else '<p class="muted">No serving process has reported yet.</p>')
                + f'<p><a href="{esc(site.link("/service/rest/v1/status/nodes"))}">status/nodes</a></p>'
                
                "<h2>Plugins loaded</h2><table><thead><tr><th>Plugin</th><th>Distribution</th><th>Version</th>"
                f"<th>Formats</th><th>Uses retired API names</th></tr></thead><tbody>{plugins}</tbody></table>"
                "<h2>Plugins that failed to load</h2>"
                + (f"<table><thead><tr><th>Plugin</th><th>Error</th></tr></thead><tbody>{failures}</tbody></table>"
                   if failures else '<p class="muted">None.</p>')
                + f'<p><a href="{esc(site.link("/-/plugins.json"))}">plugins.json</a></p>')
        send_html(resp, admin_render(site, "System", body, section="/system"))


class BlobStoresPageResource:
    def __init__(self, stowage: "Stowage"):
        self.stowage = stowage

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        site = admin_page(req, resp, self.stowage)
        if site is None:
            return
        used_by: dict[str, list[str]] = {}
        for repository in self.stowage.repositories():
            used_by.setdefault(repository.config.storage.blob_store_name, []).append(repository.name)
        rows = []
        for name in sorted(self.stowage.blob_stores()):
            info = blob_store_json(self.stowage, name)
            quota = quota_status(self.stowage, name)
            badge = ('<span class="badge bad">over quota</span>' if quota["isViolation"] else
                     '<span class="badge ok">within quota</span>' if info["softQuota"] else
                     '<span class="muted">no quota</span>')
            users = used_by.get(name, [])
            if users or name == "default":
                action = f'<span class="muted">used by {esc(", ".join(users) or "default settings")}</span>'
            else:
                action = rest_form(site, method="DELETE", url=f"{V1}/blobstores/{name}", body="",
                                   submit="Delete", next_url=site.link(ADMIN + "/blobstores"), danger=True,
                                   css="inline", confirm=f"Delete blob store {name}? Its files are removed.")
            rows.append(f"<tr><td>{esc(name)}</td><td>{esc(info['type'])}</td>"
                        f'<td class="num">{info["blobCount"]}</td>'
                        f'<td class="num">{esc(human_size(info["totalSizeInBytes"]))}</td>'
                        f'<td class="num">{esc(human_size(info["availableSpaceInBytes"]))}</td>'
                        f'<td title="{esc(quota["message"])}">{badge}</td><td>{action}</td></tr>')
        form = rest_form(
            site, method="POST", url=f"{V1}/blobstores/file", submit="Create blob store",
            next_url=site.link(ADMIN + "/blobstores"),
            body=(text_field("Name", "name", required=True)
                  + text_field("Path", "path", optional=True, hint="Relative to the data directory; default: the name.")
                  + select("Soft quota", "softQuota.type", [("", "none"), ("spaceUsedQuota", "space used above"),
                                                             ("spaceRemainingQuota", "space remaining below")],
                           "", optional=True)
                  + text_field("Quota limit (bytes)", "softQuota.limit", kind="number", optional=True)))
        body = ("<table><thead><tr><th>Name</th><th>Type</th><th>Blobs</th><th>Size</th><th>Available</th>"
                f'<th>Quota</th><th>Actions</th></tr></thead><tbody>{"".join(rows)}</tbody></table>'
                f"<h2>Create a file blob store</h2>{form}"
                f"<h2>Create an S3 blob store</h2>{self._s3_form(site)}")
        send_html(resp, admin_render(site, "Blob stores", body, section="/blobstores"))


    @staticmethod
    def _s3_form(site: Site) -> str:
        """Nexus's ``S3BlobStoreApiModel``; the server checks the bucket is reachable before it creates."""
        bucket = "bucketConfiguration.bucket"
        return rest_form(
            site, method="POST", url=f"{V1}/blobstores/s3", submit="Create S3 blob store",
            next_url=site.link(ADMIN + "/blobstores"),
            body=(text_field("Name", "name", "", required=True)
                  + text_field("Bucket", f"{bucket}.name", "", required=True)
                  + text_field("Region", f"{bucket}.region", "us-east-1", required=True)
                  + text_field("Prefix", f"{bucket}.prefix", "", optional=True)
                  + text_field("Access key id", "bucketConfiguration.bucketSecurity.accessKeyId", "", optional=True,
                               autocomplete="off")
                  + text_field("Secret access key", "bucketConfiguration.bucketSecurity.secretAccessKey", "",
                               kind="password", optional=True, autocomplete="new-password",
                               hint="Empty: the server's own AWS credentials (environment, instance role).")
                  + text_field("Endpoint", "bucketConfiguration.advancedBucketConnection.endpoint", "", kind="url",
                               optional=True, hint="For S3-compatible services (MinIO, Ceph); empty: AWS.")
                  + checkbox("Path-style access", "bucketConfiguration.advancedBucketConnection.forcePathStyle",
                             False)))


class AuditPageResource:
    """The audit trail (``GET /service/rest/v1/audit`` as a page), newest first, filtered like the API."""

    PAGE_SIZE = 100

    def __init__(self, stowage: "Stowage"):
        self.stowage = stowage

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        site = admin_page(req, resp, self.stowage)
        if site is None:
            return
        filters = {key: (req.get_param(key) or None) for key in ("user", "action", "repository")}
        events = self.stowage.audit.query(limit=self.PAGE_SIZE, **filters)
        rows = "".join(
            f'<tr><td class="when">{esc(timestamp(e["timestamp"]))}</td><td>{esc(e["user"] or "")}</td>'
            f'<td>{esc(e["address"] or "")}</td><td>{esc(e["domain"])}</td><td>{esc(e["action"])}</td>'
            f'<td>{esc(e["target"] or "")}</td><td>{esc(e["repository"] or "")}</td>'
            f'<td><span class="badge {"ok" if e["result"] == "success" else "bad"}">{esc(e["result"])}</span></td></tr>'
            for e in events)
        inputs = "".join(f'<label for="audit-{key}">{esc(key.title())}</label>'
                         f'<input id="audit-{key}" name="{key}" value="{esc(filters[key] or "")}">'
                         for key in filters)
        body = (f'<form class="search-page filters" method="get" action="{esc(site.link(ADMIN + "/audit"))}">'
                f'{inputs}<button type="submit">Filter</button></form>'
                + ('<div class="table-wrap"><table><thead><tr><th>Time</th><th>User</th><th>Address</th>'
                   '<th>Domain</th><th>Action</th><th>Target</th><th>Repository</th><th>Result</th></tr></thead>'
                   f"<tbody>{rows}</tbody></table></div>" if rows else '<p class="muted">No events.</p>')
                + f'<p class="muted">The newest {self.PAGE_SIZE}; older ones through '
                  f'<a href="{esc(site.link(V1 + "/audit"))}">{esc(V1)}/audit</a>.</p>')
        send_html(resp, admin_render(site, "Audit log", body, section="/audit"))
