"""The helm format: chart repositories (``index.yaml`` plus ``<name>-<version>.tgz`` files).

- hosted: ``PUT <name>-<version>.tgz`` (or ``PUT /``), ChartMuseum's ``POST api/charts`` (the chart as the
  body), Nexus's ``POST /service/rest/v1/components`` with ``helm.asset``; each chart is checked
  (a gzipped tar whose ``Chart.yaml`` names it) before it is stored; ``index.yaml`` is generated.
- proxy: core's engine; ``index.yaml`` is metadata (``metadataMaxAge``), charts are immutable content.
- group: ``index.yaml`` merged under core's dependency-confusion guard; core applies the same guard to
  chart downloads through :meth:`HelmHandler.package_name`.

Only ``stowage.plugin`` is imported from Stowage, as any third party would.
"""

from __future__ import annotations

import datetime
import re
import tarfile
from typing import IO, Any, Callable

import falcon
import yaml

from stowage.plugin import (Accepted, AssetKind, BadRequest, Component, Format, FormatHandler, InvalidContent,
                            MemberDocument, MetadataBuilder, PayloadTooLarge, RepoRequest, Repository,
                            RepositoryType, StagedBlob, User, guard_names, hookimpl)

INDEX = "index.yaml"
MAX_CHART_BYTES = 10 * 1024 * 1024  # Helm itself refuses bigger charts
_NAME = re.compile(r"[a-z0-9]([a-z0-9-]*[a-z0-9])?")
_VERSION = re.compile(r"v?\d+(\.\d+){0,2}([-+][0-9A-Za-z.+-]*)?")
_CHART_FILE = re.compile(r"(?P<name>[a-z0-9][a-z0-9-]*?)-(?P<version>v?\d+(\.\d+){0,2}([-+][0-9A-Za-z.+-]*)?)\.tgz")

Index = dict[str, dict[str, dict[str, Any]]]  # chart name -> version -> index entry


def read_chart(stream: IO[bytes]) -> dict[str, Any]:
    """``Chart.yaml`` of a packaged chart; :class:`InvalidContent` unless it is one."""
    try:
        with tarfile.open(fileobj=stream, mode="r:gz") as archive:
            member = next((m for m in archive if m.isfile() and m.name.count("/") == 1
                           and m.name.endswith("/Chart.yaml")), None)
            if member is None or member.size > 1024 * 1024:
                raise InvalidContent("not a Helm chart: no <chart>/Chart.yaml in the archive")
            chart = yaml.safe_load(archive.extractfile(member).read())  # type: ignore[union-attr]
    except (tarfile.TarError, OSError, EOFError, yaml.YAMLError) as error:
        raise InvalidContent(f"not a Helm chart (a gzipped tar with Chart.yaml): {error}") from None
    if not isinstance(chart, dict) or not _NAME.fullmatch(str(chart.get("name", ""))) \
            or not _VERSION.fullmatch(str(chart.get("version", ""))):
        raise InvalidContent("Chart.yaml needs a name (lower-case letters, digits, dashes) and a SemVer version")
    return {key: value for key, value in chart.items() if isinstance(key, str)}


def chart_check(repository: Repository, user: User | None, path: str = "") -> Callable[[StagedBlob], Accepted]:
    """The check of an uploaded chart, run before it is stored: it is stored as ``<name>-<version>.tgz``."""
    def check(staged: StagedBlob) -> Accepted:
        if staged.size > MAX_CHART_BYTES:
            raise PayloadTooLarge(f"a chart may be at most {MAX_CHART_BYTES} bytes")
        with staged.open() as stream:
            chart = read_chart(stream)
        canonical = f"{chart['name']}-{chart['version']}.tgz"
        if path and path != canonical:
            raise BadRequest(f"{path} holds chart {chart['name']} {chart['version']}: store it as {canonical}")
        return Accepted(path=canonical, content_type="application/gzip", artifact_name=chart["name"],
                        component=Component(repository=repository.name, format="helm", name=chart["name"],
                                            version=str(chart["version"])),
                        attributes={"helm": chart, "uploader": user.user_id if user else None})
    return check


# -- index.yaml: built (hosted), parsed (proxy), merged (group) ----------------------------------------------

def build_index(repository: Repository, match: re.Match[str]) -> Index:
    index: Index = {}
    for asset in repository.stowage.catalog.iter_assets(repository.name, kind=AssetKind.CONTENT):
        chart = asset.attributes.get("helm")
        if isinstance(chart, dict):
            entry = {**chart, "urls": [asset.path], "digest": asset.blob_sha256,
                     "created": datetime.datetime.fromtimestamp(asset.created, datetime.timezone.utc).isoformat()}
            index.setdefault(chart["name"], {})[str(chart["version"])] = entry
    return index


def parse_index(repository: Repository, match: re.Match[str], stream: IO[bytes]) -> Index:
    """An upstream ``index.yaml``; chart URLs below the remote become paths served through the proxy."""
    try:
        document = yaml.safe_load(stream.read())
    except yaml.YAMLError as error:
        raise InvalidContent(f"the remote's index.yaml is not YAML: {error}") from None
    remote = repository.config.proxy.remote_url.rstrip("/") + "/"  # type: ignore[union-attr]
    index: Index = {}
    for name, entries in ((document or {}).get("entries") or {}).items():
        for entry in entries or []:
            if not isinstance(entry, dict) or "version" not in entry:
                continue
            urls = [url[len(remote):] if str(url).startswith(remote) else str(url) for url in entry.get("urls") or []]
            index.setdefault(str(name), {})[str(entry["version"])] = {**entry, "urls": urls}
    return index


def merge_indexes(repository: Repository, match: re.Match[str], members: list[MemberDocument]) -> Index:
    """Members in order, first member wins per version; a chart a hosted member holds is not extended by a
    proxy member unless ``group.allowProxyNames`` frees it (core's guard; downloads follow it too)."""
    guard = guard_names(members, lambda index: index.keys(), repository.config.group.allow_proxy_names)  # type: ignore[union-attr]
    merged: Index = {}
    for member in members:
        for name in guard.filter(member, member.document):
            for version, entry in member.document[name].items():
                merged.setdefault(name, {}).setdefault(version, entry)
    return merged


def _version_key(version: str) -> tuple:
    core, _, pre = version.lstrip("v").partition("-")
    numbers = tuple(int(part) if part.isdigit() else 0 for part in core.split("+")[0].split("."))
    return numbers, pre == "", pre


def render_index(index: Index) -> bytes:
    entries = {name: [versions[v] for v in sorted(versions, key=_version_key, reverse=True)]
               for name, versions in sorted(index.items())}
    generated = datetime.datetime.now(datetime.timezone.utc).isoformat()
    return yaml.safe_dump({"apiVersion": "v1", "entries": entries, "generated": generated},
                          sort_keys=False).encode()


# -- HTTP ------------------------------------------------------------------------------------------------------

class HelmHandler(FormatHandler):
    methods = ("GET", "HEAD", "PUT", "POST", "DELETE")

    def on_get(self, request: RepoRequest) -> None:
        if request.path == INDEX:
            request.send_bytes(render_index(request.repository.metadata(INDEX)), "application/x-yaml")
            return
        request.send_asset(request.repository.resolve(request.path, self.classify(request.path), stream=True),
                           content_type="application/gzip")

    def on_put(self, request: RepoRequest) -> None:
        if request.path and not request.path.endswith(".tgz"):
            raise BadRequest("PUT a chart as <name>-<version>.tgz (or to the repository root)")
        self._store(request, request.path)
        request.resp.status = falcon.HTTP_201

    def on_post(self, request: RepoRequest) -> None:
        """ChartMuseum's upload API: ``POST api/charts`` with the packaged chart as the body."""
        if request.path != "api/charts":
            self._not_allowed(request)
        self._store(request, "")
        request.resp.status = falcon.HTTP_201
        request.resp.media = {"saved": True}

    def _store(self, request: RepoRequest, path: str) -> None:
        if request.repository.type is not RepositoryType.HOSTED:
            request.repository.check_writable(path or INDEX)  # refuses with the core's message
        body, length = request.require_body()
        request.repository.write(body, chart_check(request.repository, request.user, path), length=length,
                                 max_bytes=MAX_CHART_BYTES)

    def on_delete(self, request: RepoRequest) -> None:
        request.repository.delete(request.path)
        request.resp.status = falcon.HTTP_204

    def upload_component(self, repository: Repository, fields: dict[str, str], files: list[StagedBlob],
                         user: User | None) -> list:
        """``POST /service/rest/v1/components?repository=<hosted>`` with one file part ``helm.asset``."""
        if len(files) != 1 or files[0].field != "helm.asset":
            raise BadRequest("send exactly one file part named helm.asset")
        return [repository.commit(files[0], chart_check(repository, user)(files[0]))]

    def classify(self, path: str) -> AssetKind:
        return AssetKind.METADATA if path == INDEX else AssetKind.CONTENT

    def artifact_name(self, path: str) -> str:
        return self.package_name(path) or path

    def package_name(self, path: str) -> str | None:
        """The chart name of a ``<name>-<version>.tgz`` path: core's group guard keys on it."""
        match = _CHART_FILE.fullmatch(path.rpartition("/")[2])
        return match.group("name") if match else None


@hookimpl
def stowage_register_formats() -> list[Format]:
    return [Format(name="helm", handler=HelmHandler, description="Helm chart repositories.")]


@hookimpl
def stowage_register_metadata_builders() -> list[MetadataBuilder]:
    return [MetadataBuilder(format="helm", name="index", pattern=re.escape(INDEX), build=build_index,
                            parse=parse_index, merge=merge_indexes)]
