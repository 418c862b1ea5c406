"""``/upload``: Nexus's "Upload" page, one form per hosted repository, sent to ``POST
/service/rest/v1/components?repository=<name>`` (the same code path as any script), with the server's
validation error shown in the form.

The fields are the component upload's own names: ``raw.directory`` + ``raw.asset1`` (+
``raw.asset1.filename``), ``pypi.asset`` (a wheel or sdist), ``npm.asset`` (a package tarball),
``yum.directory`` + ``yum.asset`` (an RPM). A format with another ``upload_component`` gets one
``<format>.asset`` file field.
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import quote

import falcon

from stowage.errors import BadRequest, Forbidden
from stowage.http.paths import clean_path
from stowage.models import RepositoryType
from stowage.security import Action
from stowage.ui.forms import field_id, rest_form, text_field
from stowage.ui.page import esc, render, send_html, signed_in_page

if TYPE_CHECKING:
    from stowage.repository import Repository
    from stowage.stowage import Stowage

PAGE = "/upload"


def file_field(label: str, name: str, accept: str = "", hint: str = "") -> str:
    described = f' aria-describedby="{field_id(name)}-hint"' if hint else ""
    help_text = f'<p class="hint" id="{field_id(name)}-hint">{esc(hint)}</p>' if hint else ""
    accepts = f' accept="{esc(accept)}"' if accept else ""
    return (f'<label for="{field_id(name)}">{esc(label)}</label>'
            f'<input id="{field_id(name)}" name="{esc(name)}" type="file" required{accepts}{described}>{help_text}')


def upload_fields(format_name: str) -> str:
    if format_name == "raw":
        return (text_field("Directory", "raw.directory", "", optional=True, hint="Where the file goes, e.g. builds/1.0")
                + file_field("File", "raw.asset1")
                + text_field("File name", "raw.asset1.filename", "", optional=True,
                             hint="Default: the name of the chosen file."))
    if format_name == "pypi":
        return file_field("Wheel or sdist", "pypi.asset", ".whl,.tar.gz,.zip",
                          hint="Name and version come from the file's metadata.")
    if format_name == "npm":
        return file_field("Package tarball", "npm.asset", ".tgz", hint="As made by npm pack.")
    if format_name == "yum":
        return (text_field("Directory", "yum.directory", "", optional=True, hint="e.g. el9/x86_64")
                + file_field("RPM", "yum.asset", ".rpm"))
    return file_field("File", f"{format_name}.asset")


def uploadable(repository: "Repository") -> bool:
    return (repository.type is RepositoryType.HOSTED and repository.format is not None
            and repository.handler.supports("upload_component"))


class UploadResource:
    """``/upload`` lists the repositories the user may upload to; ``/upload/<repository>`` is the form."""

    def __init__(self, stowage: "Stowage"):
        self.stowage = stowage

    def __call__(self, req: falcon.Request, resp: falcon.Response, **_: str) -> None:
        if req.method not in ("GET", "HEAD"):
            raise falcon.HTTPMethodNotAllowed(["GET", "HEAD"])
        site = signed_in_page(req, resp, self.stowage)
        if site is None:
            return
        user = site.user
        name = req.path[len(PAGE):].strip("/")
        allowed = [r for r in self.stowage.repositories() if uploadable(r)
                   and self.stowage.permits(user, r, Action.WRITE)]
        if not name:
            items = "".join(f'<li><a href="{esc(site.link(PAGE + "/" + quote(r.name, safe="")))}">{esc(r.name)} '
                            f'<span class="muted">({esc(r.format_name)})</span></a></li>' for r in allowed)
            body = (f'<ul class="choices">{items}</ul>' if items else
                    '<p class="muted">There is no hosted repository you may upload to.</p>')
            send_html(resp, render(site, "Upload", body))
            return
        repository = self.stowage.repository(clean_path(name, allow_trailing_slash=False))
        if repository.name not in {r.name for r in allowed}:
            if not uploadable(repository):
                raise BadRequest(f"repository {repository.name} does not take uploads from this page")
            raise Forbidden(f"user {user.user_id} may not upload to {repository.name}")
        form = rest_form(site, method="POST", encoding="multipart", submit="Upload",
                         url=f"/service/rest/v1/components?repository={quote(repository.name, safe='')}",
                         next_url=site.browse(repository.name), body=upload_fields(repository.format_name))
        send_html(resp, render(site, f"Upload to {repository.name}", form,
                               crumbs=[("Upload", site.link(PAGE)), (repository.name, None)]))
