"""``stowage verify`` on hosted pypi: the index's PEP 658 metadata hash and the project listing."""

from __future__ import annotations

import hashlib
import io

import urllib3

from pypi_kit import make_wheel
from stowage.verify import run_verify


def test_verify_notices_a_metadata_file_that_is_not_what_the_index_advertises(stowage_factory, tmp_path):
    ts = stowage_factory()
    ts.create_repository(name="pypi-hosted", format="pypi", type="hosted")
    wheel = make_wheel(tmp_path, "checked", "1.0")
    body, content_type = urllib3.encode_multipart_formdata({
        ":action": "file_upload", "protocol_version": "1", "filetype": "bdist_wheel",
        "sha256_digest": hashlib.sha256(wheel.read_bytes()).hexdigest(),
        "content": (wheel.name, wheel.read_bytes(), "application/octet-stream")})
    assert ts.client.simulate_post("/repository/pypi-hosted/", body=body,
                                   headers={**ts.admin, "Content-Type": content_type}).status_code == 200
    assert run_verify(ts.stowage, deep=True).ok

    path = f"packages/checked/1.0/{wheel.name}"
    metadata = ts.stowage.catalog.get_asset("pypi-hosted", path + ".metadata")
    repository = ts.stowage.repository("pypi-hosted")
    other = repository.blob_store.store(io.BytesIO(b"Name: other\n"))
    repository.record(path + ".metadata", other, server_managed=True)
    report = run_verify(ts.stowage)
    assert report.lines() == [
        f"pypi-hosted {path}: the project page advertises core metadata sha256 {metadata.blob_sha256}, "
        f"the .metadata file has {hashlib.sha256(b'Name: other' + bytes([10])).hexdigest()}"]
    assert not report.ok
