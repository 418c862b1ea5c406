""""How to use" snippets: the client configuration and commands for one repository.

A format plugin contributes its own through ``Format.usage(repository, base_url)``; without one, the
snippet here for the format's name is used (the formats of the outside contract), and for any other
format a generic curl one. ``base_url`` is the server as the browser reached it (no trailing slash).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Callable
from urllib.parse import urlsplit

from stowage.models import RepositoryType

if TYPE_CHECKING:
    from stowage.repository import Repository

log = logging.getLogger(__name__)


def _url(repository: "Repository", base_url: str) -> str:
    return f"{base_url}/repository/{repository.name}/"


def _writable(repository: "Repository") -> bool:
    return repository.type is RepositoryType.HOSTED


def generic_usage(repository: "Repository", base_url: str) -> str:
    url = _url(repository, base_url)
    lines = ["# download a file", f"curl -fLO {url}<path>"]
    if _writable(repository):
        lines += ["", "# upload a file (HTTP basic credentials)", f"curl -fu <user> --upload-file <file> {url}<path>"]
    return "\n".join(lines)


def pypi_usage(repository: "Repository", base_url: str) -> str:
    url = _url(repository, base_url)
    host = urlsplit(base_url).hostname or "localhost"
    lines = ["# pip: ~/.config/pip/pip.conf (or /etc/pip.conf)", "[global]", f"index-url = {url}simple/"]
    if not base_url.startswith("https:"):
        lines.append(f"trusted-host = {host}")
    lines += ["", "# uv / pip on the command line", f"pip install --index-url {url}simple/ <project>"]
    if _writable(repository):
        lines += ["", "# twine upload: ~/.pypirc", "[distutils]", f"index-servers = {repository.name}", "",
                  f"[{repository.name}]", f"repository = {url}", "username = <user>", "",
                  f"twine upload --repository {repository.name} dist/*"]
    return "\n".join(lines)


def npm_usage(repository: "Repository", base_url: str) -> str:
    url = _url(repository, base_url)
    lines = ["# ~/.npmrc (or the project's .npmrc)", f"registry={url}"]
    if _writable(repository):
        lines += ["", "# publish", f"npm login --registry={url}", f"npm publish --registry={url}"]
    return "\n".join(lines)


def yum_usage(repository: "Repository", base_url: str) -> str:
    url = _url(repository, base_url)
    lines = [f"# /etc/yum.repos.d/{repository.name}.repo", f"[{repository.name}]", f"name={repository.name}",
             f"baseurl={url}", "enabled=1", "gpgcheck=0"]
    if _writable(repository):
        lines += ["", "# upload an RPM (metadata is rebuilt by the server)",
                  f"curl -fu <user> --upload-file <package>.rpm {url}<directory>/<package>.rpm"]
    return "\n".join(lines)


def docker_usage(repository: "Repository", base_url: str) -> str:
    parts = urlsplit(base_url)
    host = parts.hostname or "localhost"
    port = None
    if repository.format is not None and repository.format.port_of is not None:
        try:
            port = repository.format.port_of(repository.config)
        except Exception:  # a plugin's port_of must not break the page
            log.exception("port_of failed for %s", repository.name)
    if port:
        registry = f"{host}:{port}"
    else:
        registry = f"{parts.netloc}/{repository.name}"
    lines = [f"docker login {registry.split('/')[0]}", f"docker pull {registry}/<image>:<tag>"]
    if _writable(repository):
        lines += [f"docker tag <image>:<tag> {registry}/<image>:<tag>", f"docker push {registry}/<image>:<tag>"]
    if not base_url.startswith("https:"):
        lines += ["", "# plain HTTP: list the registry in /etc/docker/daemon.json",
                  f'{{"insecure-registries": ["{registry.split("/")[0]}"]}}']
    return "\n".join(lines)


BUILTIN: dict[str, Callable[["Repository", str], str]] = {
    "pypi": pypi_usage, "npm": npm_usage, "yum": yum_usage, "docker": docker_usage,
}


def usage_for(repository: "Repository", base_url: str) -> str:
    """The snippet for ``repository``: its format's ``usage``, else the built-in one, else generic."""
    contributed = repository.format.usage if repository.format is not None else None
    if contributed is not None:
        try:
            return contributed(repository, base_url)
        except Exception:  # a broken plugin loses its snippet, not the page
            log.exception("Format.usage of %s failed for %s", repository.format_name, repository.name)
    return BUILTIN.get(repository.format_name, generic_usage)(repository, base_url)
