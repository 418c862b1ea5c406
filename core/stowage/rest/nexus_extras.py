"""Smaller Nexus endpoints: ``/v1/formats/upload-specs``, ``/v1/status/check`` and ``/v1/script``.

Scripting: Stowage runs no Groovy, so ``/v1/script`` answers as a Nexus with script creation disabled
(its default since 3.21): the list is empty, no script exists, and creating or updating one is a 410
with Nexus's message (``nexus3-cli`` turns it into its "enable scripting" advice).
"""

from __future__ import annotations

import os
import resource
import time
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Callable

import falcon

from stowage.errors import NotFound, StowageError
from stowage.registration import Format, UploadField
from stowage.rest import V1
from stowage.rest.access import require_admin
from stowage.rest.read_only import read_only_state
from stowage.rest.status import MIN_FREE_BYTES

if TYPE_CHECKING:
    from stowage.stowage import Stowage

SCRIPTING_DISABLED = "Creating and updating scripts is disabled"
#: Nexus's recommended minimum for the open-file limit.
MIN_FILE_DESCRIPTORS = 65536


class ScriptingDisabled(StowageError):
    code, status = "SCRIPTING_DISABLED", 410


def _field_json(field: UploadField, group: str) -> dict[str, Any]:
    return {"name": field.name, "type": field.type, "description": field.description,
            "optional": field.optional, "group": group}


def upload_spec_json(fmt: Format) -> dict[str, Any]:
    spec = fmt.upload_spec
    assert spec is not None
    return {"format": fmt.name, "multipleUpload": spec.multiple_upload,
            "componentFields": [_field_json(f, "Component attributes") for f in spec.component_fields],
            "assetFields": [_field_json(f, "Asset attributes") for f in spec.asset_fields]}


class UploadSpecsResource:
    def __init__(self, stowage: "Stowage"):
        self.stowage = stowage

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.media = [upload_spec_json(fmt) for name, fmt in sorted(self.stowage.plugins.formats.items())
                      if fmt.upload_spec is not None]

    def on_get_one(self, req: falcon.Request, resp: falcon.Response, format_name: str) -> None:
        fmt = self.stowage.plugins.formats.get(format_name)
        if fmt is None or fmt.upload_spec is None:
            raise NotFound(f"No upload specification found for format {format_name}")
        resp.media = upload_spec_json(fmt)


def _check(run: Callable[[], tuple[bool, str, dict[str, Any]]]) -> dict[str, Any]:
    """Nexus's ``Result`` of one system check."""
    started = time.time()
    try:
        healthy, message, details = run()
        error = None
    except Exception as failure:  # a check that cannot run is an unhealthy check, not a 500
        healthy, message, details, error = False, str(failure), {}, {"message": str(failure)}
    finished = time.time()
    result: dict[str, Any] = {
        "healthy": healthy, "message": message, "details": details, "time": int(finished * 1000),
        "duration": int((finished - started) * 1000),
        "timestamp": datetime.fromtimestamp(finished, timezone.utc).isoformat(timespec="milliseconds")}
    if error is not None:
        result["error"] = error
    return result


class StatusCheckResource:
    """``GET /v1/status/check``: blob stores, database, disk space, file descriptors, read-only mode."""

    def __init__(self, stowage: "Stowage"):
        self.stowage = stowage

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        require_admin(req, self.stowage)
        resp.media = {"Blob Stores": _check(self._blob_stores), "Database": _check(self._database),
                      "Available Disk Space": _check(self._disk_space),
                      "File Descriptors": _check(self._file_descriptors),
                      "Read-Only Detector": _check(self._read_only)}

    def _blob_stores(self) -> tuple[bool, str, dict[str, Any]]:
        broken, details = [], {}
        for name, store in self.stowage.blob_stores().items():
            root = getattr(store, "root", None)
            writable = root is None or os.access(root, os.W_OK)
            details[name] = {"type": store.config.type, "writable": writable}
            if not writable:
                broken.append(name)
        if broken:
            return False, f"blob store(s) not writable: {', '.join(broken)}", details
        return True, "All blob stores are available", details

    def _database(self) -> tuple[bool, str, dict[str, Any]]:
        count = len(self.stowage.catalog.list_repositories())
        return True, "The catalog answers", {"catalog": {"repositories": count}}

    def _disk_space(self) -> tuple[bool, str, dict[str, Any]]:
        details, low = {}, []
        for name, store in self.stowage.blob_stores().items():
            free = store.usage().get("availableSpaceInBytes")
            details[name] = {"availableSpaceInBytes": free}
            if free is not None and free < MIN_FREE_BYTES:
                low.append(name)
        if low:
            return False, f"less than {MIN_FREE_BYTES} bytes free for blob store(s) {', '.join(low)}", details
        return True, "Enough disk space is available", details

    def _file_descriptors(self) -> tuple[bool, str, dict[str, Any]]:
        soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
        limited = soft != resource.RLIM_INFINITY and soft < MIN_FILE_DESCRIPTORS
        details = {"fileDescriptors": {"limit": None if soft == resource.RLIM_INFINITY else soft}}
        if limited:
            return False, (f"The open file descriptor limit is {soft}; the recommended minimum is "
                           f"{MIN_FILE_DESCRIPTORS}"), details
        return True, "The open file descriptor limit is sufficient", details

    def _read_only(self) -> tuple[bool, str, dict[str, Any]]:
        state = read_only_state(self.stowage)
        if state is not None:
            return False, f"Read-only mode: {state['summaryReason']}", {}
        return True, "The system is writable", {}


class ScriptsResource:
    def __init__(self, stowage: "Stowage"):
        self.stowage = stowage

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        require_admin(req, self.stowage)
        resp.media = []

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        require_admin(req, self.stowage)
        raise ScriptingDisabled(SCRIPTING_DISABLED)


class ScriptResource:
    def __init__(self, stowage: "Stowage"):
        self.stowage = stowage

    def on_get(self, req: falcon.Request, resp: falcon.Response, name: str) -> None:
        require_admin(req, self.stowage)
        raise NotFound(f"Script not found: {name}")

    on_head = on_get
    on_delete = on_get

    def on_put(self, req: falcon.Request, resp: falcon.Response, name: str) -> None:
        require_admin(req, self.stowage)
        raise ScriptingDisabled(SCRIPTING_DISABLED)

    def on_post_run(self, req: falcon.Request, resp: falcon.Response, name: str) -> None:
        require_admin(req, self.stowage)
        raise NotFound(f"Script not found: {name}")


def register(app: falcon.App, stowage: "Stowage") -> None:
    specs = UploadSpecsResource(stowage)
    app.add_route(f"{V1}/formats/upload-specs", specs)
    app.add_route(f"{V1}/formats/{{format_name}}/upload-specs", specs, suffix="one")
    app.add_route(f"{V1}/status/check", StatusCheckResource(stowage))
    app.add_route(f"{V1}/script", ScriptsResource(stowage))
    script = ScriptResource(stowage)
    app.add_route(f"{V1}/script/{{name}}", script)
    app.add_route(f"{V1}/script/{{name}}/run", script, suffix="run")
