"""Issue 16: a publish whose attachment is large is decoded into the blob store while the body arrives.

Every refusal of that path (bad base64, broken or cut JSON, too deep, a second attachment) is the same 4xx
as for a small publish, and stores nothing.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import tarfile

import pytest

from stowage_npm.publish_body import STREAM_STRING_BYTES
from test_npm_hosted import admin_headers, http, publish_document

NAME, VERSION = "big-stream", "1.0.0"


def big_tarball(name: str = NAME, version: str = VERSION) -> bytes:
    """A tarball well above the streaming threshold (random bytes: gzip cannot shrink it)."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as archive:
        for member, data in [("package/package.json", json.dumps({"name": name, "version": version}).encode()),
                             ("package/blob.bin", os.urandom(3 * STREAM_STRING_BYTES))]:
            info = tarfile.TarInfo(member)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return out.getvalue()


def put(server, body: bytes):
    return http("PUT", f"{server.url}/repository/npm-hosted/{NAME}", body=body, headers=admin_headers(server))


def test_a_large_attachment_is_stored_byte_for_byte_even_with_escaped_slashes(npm_server):
    tarball = big_tarball()
    # "\/" is JSON for "/", and base64 is full of slashes: the streamed decoder must unescape.
    body = publish_document(NAME, VERSION, tarball).replace(b"/", b"\\/")
    status, _, answer = put(npm_server, body)
    assert status in (200, 201), answer
    status, _, stored = http("GET", f"{npm_server.url}/repository/npm-hosted/{NAME}/-/{NAME}-{VERSION}.tgz")
    assert status == 200 and stored == tarball
    status, _, packument = http("GET", f"{npm_server.url}/repository/npm-hosted/{NAME}")
    assert json.loads(packument)["versions"][VERSION]["dist"]["shasum"] == hashlib.sha1(tarball).hexdigest()


def _with_data(document: bytes, data: bytes) -> bytes:
    parsed = json.loads(document)
    (filename,) = parsed["_attachments"]
    parsed["_attachments"][filename]["data"] = "@@DATA@@"
    return json.dumps(parsed).encode().replace(b"@@DATA@@", data)


@pytest.mark.parametrize("mangle, words", [
    (lambda doc, b64: _with_data(doc, b64[:-8] + b"!!!!!!!!"), "not valid base64"),
    (lambda doc, b64: _with_data(doc, b64 + b"A"), "not valid base64"),
    (lambda doc, b64: _with_data(doc, b64[:len(b64) // 2] + b"\\u00" + b64[len(b64) // 2:]), "not valid"),
    (lambda doc, b64: doc[:len(doc) * 3 // 4], "not valid JSON"),  # cut mid-attachment
    (lambda doc, b64: doc + b"}", "not valid JSON"),  # trailing garbage after the streamed attachment
    (lambda doc, b64: b'{"a":' * 300 + doc + b"}" * 300, "nested too deeply"),
    (lambda doc, b64: doc[:-2] + b', "second.tgz": {"data": "' + b64 + b'"}}}', "exactly one"),
    (lambda doc, b64: doc[:-2] + b', "' + f"{NAME}-{VERSION}.tgz".encode() + b'": {"data": "AAAA"}}}',
     "exactly one"),  # the same attachment again, small: not silently ignored
])
def test_a_bad_large_publish_is_refused_and_stores_nothing(npm_server, mangle, words):
    tarball = big_tarball()
    before = npm_server.test_stowage.stored_state()
    body = mangle(publish_document(NAME, VERSION, tarball), base64.b64encode(tarball))
    status, headers, answer = put(npm_server, body)
    assert status == 400, answer
    assert headers["Content-Type"].startswith("application/json")
    assert words in json.loads(answer)["error"], answer
    assert npm_server.test_stowage.stored_state() == before
    assert http("GET", f"{npm_server.url}/repository/npm-hosted/{NAME}")[0] == 404
    store = npm_server.test_stowage.stowage.blob_store("default")
    assert list(store.tmp_dir.iterdir()) == []  # the staged blob was aborted


def test_a_large_string_elsewhere_is_kept_as_text(npm_server):
    """Only ``_attachments.<file>.data`` is streamed: a long readme stays part of the document."""
    tarball = big_tarball()
    document = json.loads(publish_document(NAME, VERSION, tarball))
    readme = "# big\n" + "x" * (2 * STREAM_STRING_BYTES)
    document["versions"][VERSION]["readme"] = readme
    status, _, answer = put(npm_server, json.dumps(document).encode())
    assert status in (200, 201), answer
    status, _, packument = http("GET", f"{npm_server.url}/repository/npm-hosted/{NAME}")
    assert json.loads(packument)["readme"] == readme
