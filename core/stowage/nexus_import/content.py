"""Copy hosted repositories' content: listed through ``/v1/assets`` (docker: ``/v1/components``),
downloaded with checksums verified against the listing, uploaded through each format's own path so the
target regenerates its metadata (pypi pages, npm packuments, yum repodata, docker tags).

Resumable: a file whose sha1 the target repository already holds (a docker tag whose manifest digest it
already serves) is skipped. Each upload is one request the target commits atomically, so an interrupted
run leaves nothing half-imported; files not started are simply copied by the next run.
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import json
import posixpath
import tempfile
import threading
from typing import IO, Any, Callable, Iterable

from urllib3 import encode_multipart_formdata

from stowage.nexus_import.client import V1, NexusRest, RestError, repository_path
from stowage.nexus_import.report import Report

#: files the target regenerates itself, never copied (per format).
_DISTRIBUTIONS = (".whl", ".tar.gz", ".zip", ".tar.bz2", ".tgz", ".egg")
MANIFEST_TYPES = ("application/vnd.oci.image.index.v1+json", "application/vnd.oci.image.manifest.v1+json",
                  "application/vnd.docker.distribution.manifest.list.v2+json",
                  "application/vnd.docker.distribution.manifest.v2+json")


def _wanted(fmt: str, path: str) -> bool:
    if fmt == "raw":
        return True
    if fmt == "pypi":
        return path.startswith("packages/") and path.endswith(_DISTRIBUTIONS)
    if fmt == "npm":
        return "/-/" in path and path.endswith(".tgz")
    if fmt == "yum":
        return path.endswith(".rpm") and "/repodata/" not in f"/{path}"
    return False


class Progress:
    """Per repository: files done / total, bytes, rate and ETA, drawn by a well-kept library (rich) on
    stderr; nothing when ``enabled`` is False."""

    def __init__(self, enabled: bool):
        self._progress = None
        if enabled:
            from rich.console import Console
            from rich.progress import (BarColumn, DownloadColumn, Progress as Bar, TextColumn,
                                       TimeRemainingColumn, TransferSpeedColumn)

            # stderr: stdout carries the report, which scripts may read
            self._progress = Bar(TextColumn("{task.description}"), BarColumn(),
                                 TextColumn("{task.fields[files]}/{task.fields[of]} files"), DownloadColumn(),
                                 TransferSpeedColumn(), TimeRemainingColumn(), console=Console(stderr=True))
        self._lock = threading.Lock()
        self._files: dict[Any, int] = {}

    def __enter__(self) -> "Progress":
        if self._progress is not None:
            self._progress.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._progress is not None:
            self._progress.__exit__(*exc)

    def add(self, name: str, files: int, size: int) -> Any:
        if self._progress is None:
            return name
        return self._progress.add_task(name, total=size or None, files=0, of=files)

    def done(self, task: Any, size: int) -> None:
        if self._progress is None:
            return
        with self._lock:
            self._files[task] = self._files.get(task, 0) + 1
            self._progress.update(task, advance=size, files=self._files[task])


class ContentCopier:
    def __init__(self, source: NexusRest, target: NexusRest, report: Report, *, workers: int = 4,
                 dry_run: bool = False, progress: bool = True):
        self.source, self.target, self.report = source, target, report
        self.workers = max(1, workers)
        self.dry_run = dry_run
        self.progress = Progress(progress)

    def copy(self, repositories: Iterable[dict[str, Any]]) -> None:
        hosted = [r for r in repositories if r.get("type") == "hosted"]
        for document in repositories:
            if document.get("type") != "hosted":
                self.report.skip("repository content", document["name"],
                                 f"{document.get('type')} repositories refill themselves")
        jobs: list[tuple[Any, Callable[[], int]]] = []
        with self.progress:
            for document in hosted:
                planned = (self._plan_docker(document) if document.get("format") == "docker"
                           else self._plan_files(document))
                if not planned:
                    continue
                task = self.progress.add(document["name"], len(planned), sum(size for size, _ in planned))
                jobs += [(task, job) for _, job in planned]
            self._run(jobs)

    def _run(self, jobs: list[tuple[Any, Callable[[], int]]]) -> None:
        pool = concurrent.futures.ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="import")
        futures = {pool.submit(job): task for task, job in jobs}
        try:
            for future in concurrent.futures.as_completed(futures):
                self.progress.done(futures[future], future.result())
        except KeyboardInterrupt:
            # Nothing half-done: uploads not started are dropped, those in flight finish (each commits
            # atomically on the target) before the report is printed.
            self.report.interrupted = True
            pool.shutdown(wait=True, cancel_futures=True)
            raise
        finally:
            pool.shutdown(wait=True)

    # -- files (raw, pypi, npm, yum) -------------------------------------------------------------------
    def _plan_files(self, document: dict[str, Any]) -> list[tuple[int, Callable[[], int]]]:
        name, fmt = document["name"], document.get("format", "")
        try:
            present = {a.get("checksum", {}).get("sha1") for a in self.target.paged(f"{V1}/assets", repository=name)}
        except RestError as error:
            if not (self.dry_run and error.status == 404):  # a dry run did not create the repository
                self.report.fail("repository content", name, f"cannot list the target: {error.message}")
                return []
            present = set()
        planned = []
        for asset in self.source.paged(f"{V1}/assets", repository=name):
            path = asset["path"].lstrip("/")
            label = f"{name}/{path}"
            if not _wanted(fmt, path):
                self.report.skip("file", label, "metadata the target regenerates")
                continue
            if asset.get("checksum", {}).get("sha1") in present:
                self.report.skip("file", label, "already on the target")
                continue
            if self.dry_run:
                self.report.copy("file", label)
                continue
            planned.append((int(asset.get("fileSize") or 0),
                            lambda asset=asset, label=label: self._copy_file(name, fmt, asset, label)))
        return planned

    def _copy_file(self, repository: str, fmt: str, asset: dict[str, Any], label: str) -> int:
        path = asset["path"].lstrip("/")
        expected = {k: v.lower() for k, v in (asset.get("checksum") or {}).items() if k in ("sha1", "sha256")}
        try:
            with tempfile.TemporaryFile() as spool:
                size, digests = self.source.download(asset.get("downloadUrl") or repository_path(repository, path),
                                                     spool)
                wrong = [k for k, v in expected.items() if digests[k] != v]
                if wrong:
                    self.report.fail("file", label, f"{', '.join(wrong)} of the download does not match the listing")
                    return size
                spool.seek(0)
                self._upload(repository, fmt, path, asset.get("contentType"), spool, size)
        except RestError as error:
            self.report.fail("file", label, f"{error.status} {error.message}")
            return 0
        except OSError as error:
            self.report.fail("file", label, str(error))
            return 0
        self.report.copy("file", label)
        return size

    def _upload(self, repository: str, fmt: str, path: str, content_type: str | None, body: IO[bytes],
                size: int) -> None:
        if fmt in ("raw", "yum"):
            self.target.request("PUT", repository_path(repository, path), body=body,
                                headers={"Content-Type": content_type or "application/octet-stream",
                                         "Content-Length": str(size)})
            return
        # pypi and npm: the components API, which validates the file and regenerates the format's metadata
        field = f"{fmt}.asset"
        data, multipart_type = encode_multipart_formdata(
            {field: (posixpath.basename(path), body.read(), "application/octet-stream")})
        self.target.request("POST", f"{V1}/components", params={"repository": repository}, body=data,
                            headers={"Content-Type": multipart_type})

    # -- docker ----------------------------------------------------------------------------------------
    def _plan_docker(self, document: dict[str, Any]) -> list[tuple[int, Callable[[], int]]]:
        name = document["name"]
        planned = []
        for component in self.source.paged(f"{V1}/components", repository=name):
            image, tag = component["name"], component.get("version")
            if not tag:
                continue
            label = f"{name}/{image}:{tag}"
            if self.dry_run:
                self.report.copy("docker tag", label)
                continue
            size = sum(int(a.get("fileSize") or 0) for a in component.get("assets", []))
            planned.append((size, lambda image=image, tag=tag, label=label: self._copy_tag(name, image, tag, label)))
        return planned

    def _v2(self, repository: str, image: str, rest: str) -> str:
        return f"/repository/{repository}/v2/{image}/{rest}"

    def _copy_tag(self, repository: str, image: str, tag: str, label: str) -> int:
        try:
            body, media_type, digest = self._manifest(repository, image, tag)
            try:
                head = self.target.request("HEAD", self._v2(repository, image, f"manifests/{tag}"),
                                           headers={"Accept": ", ".join(MANIFEST_TYPES)})
                if head.headers.get("Docker-Content-Digest") == digest:
                    self.report.skip("docker tag", label, "already on the target")
                    return 0
            except RestError as error:
                if error.status != 404:
                    raise
            size = self._copy_manifest_content(repository, image, body)
            self.target.request("PUT", self._v2(repository, image, f"manifests/{tag}"), body=body,
                                headers={"Content-Type": media_type})
        except (RestError, ValueError) as error:
            self.report.fail("docker tag", label, str(error))
            return 0
        self.report.copy("docker tag", label)
        return size

    def _manifest(self, repository: str, image: str, reference: str) -> tuple[bytes, str, str]:
        response = self.source.request("GET", self._v2(repository, image, f"manifests/{reference}"),
                                       headers={"Accept": ", ".join(MANIFEST_TYPES)})
        body = response.data
        digest = "sha256:" + hashlib.sha256(body).hexdigest()
        if reference.startswith("sha256:") and reference != digest:
            raise ValueError(f"manifest {reference} does not match its digest")
        media_type = response.headers.get("Content-Type") or json.loads(body).get("mediaType", "")
        return body, media_type, digest

    def _copy_manifest_content(self, repository: str, image: str, body: bytes) -> int:
        manifest = json.loads(body)
        size = 0
        for child in manifest.get("manifests", []):  # an index: its manifests first, by digest
            child_body, child_type, _ = self._manifest(repository, image, child["digest"])
            size += self._copy_manifest_content(repository, image, child_body)
            self.target.request("PUT", self._v2(repository, image, f"manifests/{child['digest']}"),
                                body=child_body, headers={"Content-Type": child_type})
        for blob in [manifest.get("config"), *manifest.get("layers", [])]:
            if blob and blob.get("digest"):
                size += self._copy_blob(repository, image, blob["digest"])
        return size

    def _copy_blob(self, repository: str, image: str, digest: str) -> int:
        try:
            self.target.request("HEAD", self._v2(repository, image, f"blobs/{digest}"))
            return 0
        except RestError as error:
            if error.status != 404:
                raise
        algorithm, _, expected = digest.partition(":")
        with tempfile.TemporaryFile() as spool:
            size, digests = self.source.download(self._v2(repository, image, f"blobs/{digest}"), spool,
                                                 (algorithm,))
            if digests[algorithm] != expected:
                raise ValueError(f"blob {digest} does not match its digest")
            spool.seek(0)
            started = self.target.request("POST", self._v2(repository, image, "blobs/uploads/"), ok=(202,))
            location = started.headers["Location"]
            separator = "&" if "?" in location else "?"
            self.target.request("PUT", f"{location}{separator}digest={digest}", body=spool,
                                headers={"Content-Type": "application/octet-stream", "Content-Length": str(size)},
                                ok=(201, 204))
        return size
