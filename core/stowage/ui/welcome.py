"""``/``: the repositories the viewer may read."""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import falcon

from stowage.http.auth import authenticate
from stowage.models import RepositoryType
from stowage.rest.access import can_read
from stowage.rest.repositories import remote_status
from stowage.ui.page import Site, copy_button, esc, render, send_html, start

if TYPE_CHECKING:
    from stowage.repository import Repository
    from stowage.stowage import Stowage

_REMOTE_BADGES = {"available": ("ok", "remote available"), "blocked": ("bad", "remote blocked"),
                  "autoBlocked": ("warn", "remote auto-blocked")}


def status_cell(site: Site, repository: "Repository") -> str:
    """Online state; for a proxy its remote's state (one catalog lookup); for a group its members."""
    if repository.format is None:
        return f'<span class="badge bad">format plugin {esc(repository.format_name)} missing</span>'
    if not repository.config.online:
        return '<span class="badge bad">offline</span>'
    if repository.type is RepositoryType.PROXY:
        status = remote_status(site.stowage, repository)
        kind, label = _REMOTE_BADGES.get(status.get("remoteStatus", ""), ("warn", str(status.get("remoteStatus"))))
        reason = status.get("reason") or ""
        remote = repository.config.proxy.remote_url if repository.config.proxy else ""
        return (f'<span class="badge {kind}" title="{esc(reason)}">{esc(label)}</span> '
                f'<span class="muted">{esc(remote)}</span>')
    if repository.type is RepositoryType.GROUP and repository.config.group is not None:
        members = ", ".join(f'<a href="{esc(site.browse(name))}">{esc(name)}</a>'
                            for name in repository.config.group.member_names)
        return f'<span class="badge ok">online</span> <span class="muted">members:</span> {members}'
    return '<span class="badge ok">online</span>'


def client_address(site: Site, repository: "Repository") -> str:
    """What a client configures: ``host:PORT`` for a repository that owns a listener (``docker.httpPort``),
    else the repository's URL."""
    fmt = repository.format
    port = fmt.port_of(repository.config) if fmt is not None and fmt.port_of is not None else None
    if port:
        host = urlsplit(site.base_url).hostname or "localhost"
        return f"{host}:{port}"
    return site.repository_url(repository.name)


class WelcomeResource:
    def __init__(self, stowage: "Stowage"):
        self.stowage = stowage

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        site = start(req, resp, self.stowage)
        visible = [r for r in self.stowage.repositories() if can_read(req, self.stowage, r)]
        rows = []
        for repository in visible:
            url = client_address(site, repository)
            rows.append(
                f'<tr><td><a href="{esc(site.browse(repository.name))}">{esc(repository.name)}</a></td>'
                f"<td>{esc(repository.format_name)}</td><td>{esc(repository.type.value)}</td>"
                f"<td>{status_cell(site, repository)}</td>"
                f"<td><code>{esc(url)}</code>{copy_button(url)}</td></tr>")
        if rows:
            body = ('<table class="repositories"><thead><tr><th>Repository</th><th>Format</th><th>Type</th>'
                    f'<th>Status</th><th>URL</th></tr></thead><tbody>{"".join(rows)}</tbody></table>'
                    '<p class="muted">Open a repository for its files and a "how to use" snippet.</p>')
        else:
            body = '<p class="muted">There are no repositories you can read.</p>'
            if authenticate(req, self.stowage) is None:
                body += f'<p><a href="{esc(site.link("/login", next="/"))}">Sign in</a> to see more.</p>'
        send_html(resp, render(site, "Repositories", body))

    on_head = on_get
