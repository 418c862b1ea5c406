"""The simple repository API: the document model, PEP 503 HTML and PEP 691 JSON rendering (with PEP 592,
658/714 and 700 fields), content negotiation, and parsing of an upstream index in either form.

Documents are immutable once built; each caches its own rendered bodies, so a page is rendered once per
repository revision (hosted) or per upstream copy (proxy), not once per request.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import html
import json
import re
from datetime import datetime, timezone
from html.parser import HTMLParser
from typing import Any, Iterable
from urllib.parse import quote, urldefrag, urljoin

from attrs import field, frozen
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

API_VERSION = "1.1"
JSON_V1 = "application/vnd.pypi.simple.v1+json"
HTML_V1 = "application/vnd.pypi.simple.v1+html"
TEXT_HTML = "text/html"
#: what Stowage asks an upstream for: JSON first, HTML otherwise (PEP 691's recommended header).
UPSTREAM_ACCEPT = f"{JSON_V1}, {HTML_V1};q=0.2, {TEXT_HTML};q=0.01"

_SUPPORTED = {
    JSON_V1: JSON_V1, "application/vnd.pypi.simple.latest+json": JSON_V1,
    HTML_V1: HTML_V1, "application/vnd.pypi.simple.latest+html": HTML_V1,
    TEXT_HTML: TEXT_HTML,
}
#: server preference when the client rates several types equally.
_PREFERENCE = (JSON_V1, HTML_V1, TEXT_HTML)


@frozen
class DistFile:
    """One file of a project page.

    :param path: the repository path of the file (``packages/...``), used for links and downloads.
    :param yanked: False, True (yanked without a reason) or the reason.
    :param core_metadata: False, True (available, hash unknown) or the sha256 of the ``.metadata`` file.
    :param upstream_url: for a proxy, where the file really is (never shown to clients).
    """

    filename: str
    path: str
    sha256: str | None = None
    size: int | None = None
    upload_time: float | None = None
    requires_python: str | None = None
    yanked: bool | str = False
    core_metadata: bool | str = False
    upstream_url: str | None = None


@frozen(eq=False)
class ProjectPage:
    name: str
    files: tuple[DistFile, ...]
    versions: tuple[str, ...] = ()
    _rendered: dict = field(factory=dict, repr=False)

    def file(self, filename: str) -> DistFile | None:
        index = self._rendered.get("by-name")
        if index is None:
            index = self._rendered["by-name"] = {f.filename: f for f in self.files}
        return index.get(filename)


@frozen(eq=False)
class RootIndex:
    projects: tuple[str, ...]
    _rendered: dict = field(factory=dict, repr=False)


def sort_versions(versions: Iterable[str]) -> tuple[str, ...]:
    def key(value: str) -> tuple:
        try:
            return (0, Version(value), value)
        except InvalidVersion:
            return (1, Version("0"), value)

    return tuple(sorted(set(versions), key=key))


def version_of(filename: str) -> str | None:
    from stowage_pypi.distributions import parse_filename

    try:
        return str(parse_filename(filename).version)
    except Exception:  # a file an upstream lists under a name we cannot parse (.egg, .exe...)
        return None


# -- content negotiation ------------------------------------------------------------------------------

@functools.lru_cache(maxsize=256)  # a pure function of the header, which each client sends the same every time
def negotiate(accept: str | None) -> str | None:
    """The content type to answer with for an ``Accept`` header; None when nothing acceptable is offered."""
    if not accept or not accept.strip():
        return TEXT_HTML
    best: tuple[float, int, str] | None = None
    for item in accept.split(","):
        media, *params = [part.strip() for part in item.split(";")]
        media = media.lower()
        quality = 1.0
        for param in params:
            key, _, value = param.partition("=")
            if key.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        if quality <= 0:
            continue
        if media in _SUPPORTED:
            chosen = _SUPPORTED[media]
        elif media in ("*/*", "text/*"):
            chosen = TEXT_HTML  # a browser or curl: the classic page
        elif media == "application/*":
            chosen = JSON_V1
        else:
            continue
        rank = (quality, -_PREFERENCE.index(chosen), chosen)
        if best is None or rank[:2] > best[:2]:
            best = rank
    return best[2] if best else None


# -- rendering ----------------------------------------------------------------------------------------

def rendered(document: ProjectPage | RootIndex, content_type: str, *, gzipped: bool = False) -> tuple[bytes, str]:
    """The body for ``content_type`` and its ETag, rendered once per document.

    :param gzipped: the body gzip'd (``Content-Encoding: gzip``), also made once per document; its ETag is
        its own, as a strong validator names one encoding of the page.
    """
    kind = "json" if content_type == JSON_V1 else "html"
    key = f"{kind}+gzip" if gzipped else kind
    cached = document._rendered.get(key)
    if cached is None:
        if gzipped:
            plain, etag = rendered(document, content_type)
            # level 6: nearly level 9's size at a third of its time (the first request after an upload pays)
            cached = (gzip.compress(plain, compresslevel=6, mtime=0), f"{etag}-gz")
        elif isinstance(document, ProjectPage):
            body = render_project_json(document) if kind == "json" else render_project_html(document)
            cached = (body, hashlib.sha256(body).hexdigest())
        else:
            body = render_root_json(document) if kind == "json" else render_root_html(document)
            cached = (body, hashlib.sha256(body).hexdigest())
        document._rendered[key] = cached
    return cached


def _link(path: str) -> str:
    # Links are relative to the page (``simple/<project>/``), so they hold behind any proxy or prefix.
    return "../../" + quote(path, safe="/@:+~!$,;=")


def _iso(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def render_project_html(page: ProjectPage) -> bytes:
    name = html.escape(page.name)
    out = ['<!DOCTYPE html>\n<html>\n  <head>\n',
           f'    <meta name="pypi:repository-version" content="{API_VERSION}">\n',
           f'    <title>Links for {name}</title>\n  </head>\n  <body>\n    <h1>Links for {name}</h1>\n']
    for f in page.files:
        href = _link(f.path) + (f"#sha256={f.sha256}" if f.sha256 else "")
        attributes = [f'href="{html.escape(href)}"']
        if f.requires_python:
            attributes.append(f'data-requires-python="{html.escape(f.requires_python)}"')
        if f.core_metadata:
            value = f"sha256={f.core_metadata}" if isinstance(f.core_metadata, str) else "true"
            attributes.append(f'data-core-metadata="{value}"')
            attributes.append(f'data-dist-info-metadata="{value}"')
        if f.yanked is not False:
            reason = f.yanked if isinstance(f.yanked, str) else ""
            attributes.append(f'data-yanked="{html.escape(reason)}"')
        out.append(f'    <a {" ".join(attributes)}>{html.escape(f.filename)}</a><br/>\n')
    out.append("  </body>\n</html>\n")
    return "".join(out).encode()


def render_project_json(page: ProjectPage) -> bytes:
    files = []
    for f in page.files:
        entry: dict[str, Any] = {"filename": f.filename, "url": _link(f.path),
                                 "hashes": {"sha256": f.sha256} if f.sha256 else {}}
        if f.requires_python:
            entry["requires-python"] = f.requires_python
        metadata: Any = {"sha256": f.core_metadata} if isinstance(f.core_metadata, str) else bool(f.core_metadata)
        entry["core-metadata"] = metadata
        entry["dist-info-metadata"] = metadata
        entry["yanked"] = f.yanked
        entry["size"] = f.size if f.size is not None else 0
        if f.upload_time:
            entry["upload-time"] = _iso(f.upload_time)
        files.append(entry)
    document = {"meta": {"api-version": API_VERSION}, "name": canonicalize_name(page.name),
                "versions": list(page.versions), "files": files}
    return json.dumps(document, separators=(",", ":")).encode()


def render_root_html(index: RootIndex) -> bytes:
    out = ['<!DOCTYPE html>\n<html>\n  <head>\n',
           f'    <meta name="pypi:repository-version" content="{API_VERSION}">\n',
           '    <title>Simple index</title>\n  </head>\n  <body>\n']
    out.extend(f'    <a href="{canonicalize_name(name)}/">{html.escape(name)}</a>\n' for name in index.projects)
    out.append("  </body>\n</html>\n")
    return "".join(out).encode()


def render_root_json(index: RootIndex) -> bytes:
    document = {"meta": {"api-version": API_VERSION}, "projects": [{"name": name} for name in index.projects]}
    return json.dumps(document, separators=(",", ":")).encode()


# -- parsing an upstream index ------------------------------------------------------------------------

def _looks_like_json(data: bytes) -> bool:
    return data.lstrip()[:1] == b"{"


def parse_root(data: bytes) -> RootIndex:
    if _looks_like_json(data):
        document = json.loads(data)
        names = [p["name"] for p in document.get("projects", []) if isinstance(p, dict) and p.get("name")]
    else:
        parser = _AnchorParser()
        parser.feed(data.decode("utf-8", "replace"))
        names = [text.strip() or attrs.get("href", "").strip("/").rsplit("/", 1)[-1]
                 for attrs, text in parser.anchors]
    return RootIndex(projects=_unique_names(names))


def _unique_names(names: Iterable[str]) -> tuple[str, ...]:
    seen: dict[str, str] = {}
    for name in names:
        if name:
            seen.setdefault(canonicalize_name(name), name)
    return tuple(seen[key] for key in sorted(seen))


def parse_project(data: bytes, page_url: str, project: str, path_for: Any) -> ProjectPage:
    """Parse an upstream project page (JSON or HTML) into a :class:`ProjectPage`.

    ``path_for(filename)`` gives the local path each file is served at; the upstream URL is kept so the
    proxy can fetch it.
    """
    files: list[DistFile] = []
    versions: list[str] = []
    name = project
    if _looks_like_json(data):
        document = json.loads(data)
        name = document.get("name") or project
        versions = [str(v) for v in document.get("versions", [])]
        for entry in document.get("files", []):
            filename = entry.get("filename")
            url = entry.get("url")
            if not filename or not url or "/" in filename:
                continue
            metadata = entry.get("core-metadata", entry.get("dist-info-metadata", False))
            upload_time = entry.get("upload-time")
            files.append(DistFile(
                filename=filename, path=path_for(filename), sha256=(entry.get("hashes") or {}).get("sha256"),
                size=entry.get("size"), upload_time=_parse_time(upload_time) if upload_time else None,
                requires_python=entry.get("requires-python") or None,
                yanked=entry.get("yanked", False) if isinstance(entry.get("yanked", False), (bool, str)) else True,
                core_metadata=_metadata_value(metadata), upstream_url=urljoin(page_url, url)))
    else:
        parser = _AnchorParser()
        parser.feed(data.decode("utf-8", "replace"))
        for attrs, text in parser.anchors:
            href = attrs.get("href")
            if not href:
                continue
            url, fragment = urldefrag(urljoin(page_url, href))
            filename = url.rstrip("/").rsplit("/", 1)[-1]
            from urllib.parse import unquote

            filename = unquote(filename)
            if not filename or "/" in filename:
                continue
            hash_name, _, hash_value = fragment.partition("=")
            metadata = attrs.get("data-core-metadata", attrs.get("data-dist-info-metadata"))
            yanked: bool | str = False
            if "data-yanked" in attrs:
                yanked = attrs["data-yanked"] or True
            files.append(DistFile(
                filename=filename, path=path_for(filename),
                sha256=hash_value if hash_name == "sha256" and hash_value else None,
                requires_python=attrs.get("data-requires-python") or None, yanked=yanked,
                core_metadata=_metadata_attribute(metadata), upstream_url=url))
    if not versions:
        versions = [v for v in (version_of(f.filename) for f in files) if v]
    return ProjectPage(name=name, files=tuple(files), versions=sort_versions(versions))


def _metadata_value(value: Any) -> bool | str:
    if isinstance(value, dict):
        return value.get("sha256") or True
    return bool(value)


def _metadata_attribute(value: str | None) -> bool | str:
    if value is None:
        return False
    if value.startswith("sha256="):
        return value[len("sha256="):]
    return value.lower() != "false"


_TIME = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(\.\d+)?(Z|[+-]\d\d:\d\d)?$")


def _parse_time(value: str) -> float | None:
    match = _TIME.match(value)
    if not match:
        return None
    zone = match.group(3) or "Z"
    text = match.group(1) + (match.group(2) or "") + ("+00:00" if zone == "Z" else zone)
    try:
        return datetime.fromisoformat(text).timestamp()
    except ValueError:
        return None


class _AnchorParser(HTMLParser):
    """Collects ``<a>`` elements: (attributes with HTML entities decoded, text)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.anchors: list[tuple[dict[str, str], str]] = []
        self._current: tuple[dict[str, str], list[str]] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            self._current = ({k: (v if v is not None else "") for k, v in attrs}, [])

    def handle_data(self, data: str) -> None:
        if self._current is not None:
            self._current[1].append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "a" and self._current is not None:
            self.anchors.append((self._current[0], "".join(self._current[1])))
            self._current = None
