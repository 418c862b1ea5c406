"""Issue 10 item 9: "never a 5xx for client input", fuzzed with hypothesis over every route the app serves and every
format's upload path.

Routes are enumerated from the running app (``falcon.inspect``), so a route added later is fuzzed too. Path
parameters, query parameters, headers and bodies are drawn from pools that mix real values (repository
names, formats, ids, the admin's credentials) with hostile ones (``e30``, huge numbers, non-ASCII, long
strings, deep JSON, wrong content types); bodies for the format upload paths are structure-aware (OCI
manifests, npm publish documents, PyPI upload forms, RPM-named junk). The app is called in process through
falcon's WSGI test client: fast enough for a few hundred requests per test on CI's two cores.

Hypothesis rather than schemathesis: the Nexus OpenAPI document describes endpoints we do not serve and
none of the format protocols, while the app itself knows exactly what it serves; hypothesis is already a
test dependency, and ``derandomize=True`` keeps the examples the same on every run (stable CI).
"""

from __future__ import annotations

import base64
import json
import os
import re
from typing import Any
from urllib.parse import quote, urlencode

import attrs
import falcon.inspect
import pytest
import urllib3
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stowage.testing import build_stowage

FORMATS = ("raw", "pypi", "npm", "yum", "docker")
HOSTED = [f"{fmt}-h" for fmt in FORMATS]
METHODS = ("GET", "HEAD", "POST", "PUT", "DELETE", "PATCH")
#: fixed examples (derandomize) so CI is stable; FUZZ_RANDOM=1 FUZZ_EXAMPLES=2000 explores further by hand.
FUZZ = settings(derandomize=not os.environ.get("FUZZ_RANDOM"), database=None, deadline=None,
                max_examples=int(os.environ.get("FUZZ_EXAMPLES", "300")),
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

# -- value pools ------------------------------------------------------------------------------------------
HOSTILE = ["e30", "-1", "0", "1e5", "99999999999999999999999999", "NaN", "..", "%2e%2e", "a/../b", "%ff", "\x00",
           "\u202e", "é", "💥", "a" * 3000, " ", "", "null", "[]", "{}", "true", "__proto__", "sha256:", "x" * 129]
hostile_text = st.sampled_from(HOSTILE) | st.text(max_size=30)


def b64(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode("utf-8", "surrogatepass")).decode().rstrip("=")


tokens = st.sampled_from(["e30", b64("9" * 40), b64("[1]"), b64('["a", 1e999]'), b64("-5"), "!!"]) | \
    st.text(max_size=20).map(b64) | hostile_text
json_scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | hostile_text
json_values = st.recursive(json_scalars, lambda inner: st.lists(inner, max_size=4)
                           | st.dictionaries(st.text(max_size=10), inner, max_size=4), max_leaves=12)
NEXUS_KEYS = ["name", "online", "storage", "blobStoreName", "writePolicy", "strictContentTypeValidation", "group",
              "memberNames", "proxy", "remoteUrl", "contentMaxAge", "metadataMaxAge", "negativeCache", "httpClient",
              "cleanup", "raw", "contentDisposition", "docker", "httpPort", "v1Enabled", "forceBasicAuth", "yum",
              "repodataDepth", "deployPolicy", "npm", "pypi", "userId", "firstName", "lastName", "emailAddress",
              "password", "status", "roles", "id", "description", "privileges", "enabled", "realmName", "path",
              "softQuota", "type", "limit", "format", "attributes", "source", "readOnly"]
nexus_objects = st.recursive(
    st.dictionaries(st.sampled_from(NEXUS_KEYS), json_scalars | st.lists(hostile_text, max_size=3), max_size=8),
    lambda inner: st.dictionaries(st.sampled_from(NEXUS_KEYS), inner | json_scalars, max_size=6), max_leaves=10)
DEEP = "[" * 5000 + "]" * 5000
CONTENT_TYPES = ["application/json", "application/json; charset=utf-8", "text/plain",
                 "application/x-www-form-urlencoded", "multipart/form-data; boundary=XB", "multipart/form-data",
                 "application/octet-stream", "application/vnd.oci.image.manifest.v1+json", "text/html", "garbage"]


@st.composite
def bodies(draw: Any) -> tuple[bytes, str | None]:
    kind = draw(st.sampled_from(["none", "json", "nexus", "bytes", "deep", "text"]))
    content_type = draw(st.sampled_from(CONTENT_TYPES) | st.none())
    if kind == "none":
        return b"", content_type
    if kind == "json":
        return json.dumps(draw(json_values)).encode(), content_type
    if kind == "nexus":
        return json.dumps(draw(nexus_objects)).encode(), draw(st.sampled_from(["application/json", None]))
    if kind == "deep":
        return DEEP.encode(), "application/json"
    if kind == "text":
        return draw(hostile_text).encode("utf-8", "surrogatepass"), content_type
    return draw(st.binary(max_size=200)), content_type


@st.composite
def headers(draw: Any, admin: dict[str, str]) -> dict[str, str]:
    auth = draw(st.sampled_from(["admin", "none", "garbage-basic", "garbage-bearer", "bad-password"]))
    found: dict[str, str] = {}
    if auth == "admin":
        found.update(admin)
    elif auth == "garbage-basic":
        found["Authorization"] = "Basic " + draw(st.sampled_from(["!!!", base64.b64encode(b"\xff:\xfe").decode(),
                                                                  base64.b64encode(b"nocolon").decode(), "",
                                                                  "\xff\xfe", "é"]))
    elif auth == "garbage-bearer":
        found["Authorization"] = "Bearer " + draw(st.sampled_from(["e30.e30.e30", "dkr1.e30.x", "x" * 5000, "",
                                                                   "\xff", "dkr1.\xff.\xff"]))
    elif auth == "bad-password":
        found["Authorization"] = "Basic " + base64.b64encode(b"admin:wrong").decode()
    if draw(st.booleans()):
        found["Accept"] = draw(st.sampled_from(["application/json", "text/html", "*/*", "application/vnd.pypi.simple.v1+json",
                                                "application/vnd.oci.image.index.v1+json", "garbage/;;"]))
    if draw(st.booleans()):
        found["Range"] = draw(st.sampled_from(["bytes=0-1", "bytes=5-1", "bytes=-0", "bytes=99999999999999999999-",
                                               "items=1-2", "bytes=0-0,1-1,2-2"]))
    if draw(st.booleans()):
        found["If-None-Match"] = draw(st.sampled_from(['"x"', "*", "W/\"\"", "\u00ff"]))
    return found


# -- the app -----------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def fuzz_app(tmp_path_factory: pytest.TempPathFactory):
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("STOWAGE_ADMIN_PASSWORD", "admin123")
        ts = build_stowage(tmp_path_factory.mktemp("fuzz") / "data",
                           repositories=[dict(name=f"{fmt}-h", format=fmt, type="hosted") for fmt in FORMATS]
                           + [dict(name="raw-g", format="raw", type="group", group={"memberNames": ["raw-h"]})])
    ts.client.simulate_put("/repository/raw-h/dir/file.txt", body=b"hello", headers=ts.admin)
    components = ts.client.simulate_get("/service/rest/v1/components", params={"repository": "raw-h"},
                                        headers=ts.admin).json["items"]
    ids = [c["id"] for c in components] + [a["id"] for c in components for a in c["assets"]]
    ids += [b64(f"raw-h:{kind}:{number}") for kind in ("component", "asset") for number in ("9" * 30, "-1", "x")]
    # falcon.inspect reads every responder's source: once per module, not per example
    paths = sorted(route.path for route in falcon.inspect.inspect_routes(ts.app))
    bearer = {"Authorization": "Bearer " + ts.client.simulate_get("/v2/token", headers=ts.admin).json["token"]}
    yield FuzzApp(ts, ids, paths, bearer)
    ts.stowage.close()


@attrs.define
class FuzzApp:
    ts: Any
    ids: list[str]
    routes: list[str]
    #: a Docker bearer token for the admin, taken before the fuzzing starts
    bearer: dict[str, str]


#: where requests with wrong credentials come from: sign-in throttling (per address) must not lock the admin's
#: requests (from 127.0.0.1) out of the rest of the run. Only a WSGI environ value: no traffic is sent.
HOSTILE_ADDRESS = "127.0.0.2"


def check(fuzz_app: "FuzzApp", method: str, path: str, body: bytes, request_headers: dict[str, str]) -> None:
    ts = fuzz_app.ts
    authorization = request_headers.get("Authorization")
    hostile = authorization not in (None, ts.admin["Authorization"], fuzz_app.bearer["Authorization"])
    response = ts.client.simulate_request(method, path, body=body or None, headers=request_headers,
                                          remote_addr=HOSTILE_ADDRESS if hostile else "127.0.0.1")
    assert response.status_code < 500, (f"{method} {path[:300]} body={body[:300]!r} headers={request_headers}\n"
                                        f"-> {response.status} {response.text[:500]}")


def fill(template: str, draw: Any, pools: dict[str, list[str]], method: str) -> str:
    """Put a value in each ``{param}``: a real one (not for DELETE: the fuzzer must not empty the app) or a hostile one."""
    def value(match: re.Match[str]) -> str:
        name = match.group(1).split(":")[0]
        real = pools.get(name, [])
        guarded = method == "DELETE" or template.endswith("change-password")
        if name == "rest":
            return draw(docker_paths)
        chosen = draw(hostile_text if guarded or not real else st.sampled_from(real) | hostile_text)
        return quote(chosen, safe="") or "x"
    return re.sub(r"\{([^}]+)\}", value, template)


docker_paths = st.builds(
    lambda image, kind, ref: {"manifest": f"{image}/manifests/{ref}", "blob": f"{image}/blobs/{ref}",
                              "uploads": f"{image}/blobs/uploads/", "upload": f"{image}/blobs/uploads/{ref}",
                              "tags": f"{image}/tags/list", "referrers": f"{image}/referrers/{ref}",
                              "catalog": "_catalog", "token": "token"}[kind],
    st.sampled_from(["docker-h/app", "app", "docker-h/a/b/c", "UPPER", "a" * 300]) | hostile_text.map(quote),
    st.sampled_from(["manifest", "blob", "uploads", "upload", "tags", "referrers", "catalog", "token"]),
    st.sampled_from(["v1", "sha256:" + "0" * 64, "sha512:" + "0" * 128, "0" * 32]) | hostile_text.map(
        lambda t: quote(t, safe="")))
QUERY_KEYS = ["continuationToken", "repository", "sort", "direction", "q", "page", "format", "name", "version",
              "group", "sha256", "type", "source", "userId", "view", "digest", "mount", "from", "n", "last",
              "artifactType", "next"]


@given(data=st.data())
@FUZZ
def test_no_rest_or_ui_route_answers_5xx(fuzz_app, data):
    ts = fuzz_app.ts
    pools = {"name": HOSTED + ["default", "nx-all", "nx-repository-view-*-*-*"],
             "kind": ["application", "repository-view", "repository-content-selector", "script"],
             "type_id": ["repository.cleanup", "blobstore.compact", "security.audit-purge"], "second": ["raw", "pypi", "hosted", "invalidate-cache", "rebuild-index"],
             "target": ["hosted", "group", "proxy", "raw-h"], "repository": HOSTED, "component_id": fuzz_app.ids,
             "asset_id": fuzz_app.ids, "user_id": ["admin", "anonymous"], "role_id": ["nx-admin", "nx-anonymous"],
             "task_id": ["x"], "project": ["pkg"], "version": ["1.0"], "filename": ["pkg-1.0.tar.gz"]}
    template = data.draw(st.sampled_from(fuzz_app.routes + ["/service/rest/repository/browse/{repository}/",
                                                        "/service/rest/repository/browse/raw-h/dir/"]))
    method = data.draw(st.sampled_from(METHODS))
    path = fill(template, data.draw, pools, method)
    query = data.draw(st.dictionaries(st.sampled_from(QUERY_KEYS), tokens | hostile_text, max_size=4))
    body, content_type = data.draw(bodies())
    request_headers = data.draw(headers(ts.admin))
    if content_type:
        request_headers["Content-Type"] = content_type
    check(fuzz_app, method, path + ("?" + urlencode(query) if query else ""), body, request_headers)


# -- format upload paths ----------------------------------------------------------------------------------
descriptors = st.fixed_dictionaries({}, optional={
    "mediaType": st.sampled_from(["application/vnd.oci.image.layer.v1.tar", "x"]) | hostile_text,
    "digest": st.sampled_from(["sha256:" + "a" * 64, "sha256:XYZ", "md5:00"]) | hostile_text,
    "size": st.integers(min_value=-2, max_value=2 ** 70) | st.floats() | st.booleans() | hostile_text,
    "urls": st.lists(hostile_text, max_size=2) | json_scalars, "platform": json_values,
    "annotations": json_values})
manifests = st.fixed_dictionaries({}, optional={
    "schemaVersion": st.sampled_from([2, 1, "2", True, None]),
    "mediaType": st.sampled_from(["application/vnd.oci.image.manifest.v1+json",
                                  "application/vnd.oci.image.index.v1+json",
                                  "application/vnd.docker.distribution.manifest.v2+json",
                                  "application/vnd.docker.distribution.manifest.list.v2+json"]) | hostile_text,
    "config": descriptors | json_values, "layers": st.lists(descriptors, max_size=3) | json_values,
    "manifests": st.lists(descriptors, max_size=3) | json_values, "subject": descriptors | json_values,
    "artifactType": hostile_text | json_values, "annotations": json_values})
npm_documents = st.fixed_dictionaries({}, optional={
    "_id": hostile_text, "name": st.sampled_from(["pkg", "@s/pkg"]) | hostile_text,
    "dist-tags": st.dictionaries(hostile_text, hostile_text | json_values, max_size=2) | json_values,
    "versions": st.dictionaries(st.sampled_from(["1.0.0"]) | hostile_text, st.fixed_dictionaries({}, optional={
        "name": hostile_text, "version": hostile_text, "dist": st.fixed_dictionaries({}, optional={
            "shasum": hostile_text, "integrity": hostile_text, "tarball": hostile_text}) | json_values}) | json_values,
        max_size=2) | json_values,
    "_attachments": st.dictionaries(hostile_text, st.fixed_dictionaries({}, optional={
        "data": st.binary(max_size=100).map(lambda b: base64.b64encode(b).decode()) | hostile_text,
        "length": st.integers() | hostile_text, "content_type": hostile_text}) | json_values, max_size=2) | json_values,
    "_rev": hostile_text, "users": json_values, "time": json_values})
pypi_fields = st.dictionaries(st.sampled_from([":action", "name", "version", "filetype", "sha256_digest", "md5_digest",
                                               "blake2_256_digest", "metadata_version", "protocol_version",
                                               "requires_python", "pyversion"]),
                              st.sampled_from(["file_upload", "sdist", "bdist_wheel", "pkg", "1.0"]) | hostile_text,
                              max_size=6)
FILENAMES = ["pkg-1.0.tar.gz", "pkg-1.0-py3-none-any.whl", "pkg-1.0.zip", "x.rpm", "hello-1.0-1.noarch.rpm",
             "pkg.tgz", "../x", ""]


@st.composite
def format_requests(draw: Any) -> tuple[str, str, bytes, str | None]:
    kind = draw(st.sampled_from(["docker-manifest", "docker-blob", "npm-publish", "npm-other", "pypi-upload",
                                 "rest-upload", "yum-put", "raw-put", "repository-path"]))
    if kind == "docker-manifest":
        reference = draw(st.sampled_from(["v1", "sha256:" + "0" * 64]) | hostile_text.map(lambda t: quote(t, safe="")))
        body = json.dumps(draw(manifests)).encode()
        return "PUT", f"/v2/docker-h/app/manifests/{reference}", body, draw(
            st.sampled_from(["application/vnd.oci.image.manifest.v1+json", "application/json", "text/html"]) | st.none())
    if kind == "docker-blob":
        digest = draw(st.sampled_from(["sha256:" + "0" * 64, "sha512:x", ""]) | hostile_text)
        method = draw(st.sampled_from(["POST", "PUT", "PATCH"]))
        target = "uploads/" if method == "POST" else "uploads/" + draw(st.sampled_from(["0" * 32]) | hostile_text)
        return method, f"/v2/docker-h/app/blobs/{target}?{urlencode({'digest': digest})}", draw(
            st.binary(max_size=100)), "application/octet-stream"
    if kind == "npm-publish":
        name = draw(st.sampled_from(["pkg", "@s%2fpkg"]) | hostile_text.map(lambda t: quote(t, safe="@")))
        return "PUT", f"/repository/npm-h/{name}", json.dumps(draw(npm_documents)).encode(), "application/json"
    if kind == "npm-other":
        path = draw(st.sampled_from(["-/user/org.couchdb.user:x", "pkg/-rev/1", "-/package/pkg/dist-tags/latest",
                                     "-/v1/search", "-/npm/v1/security/advisories/bulk", "pkg/-/pkg-1.0.0.tgz"]))
        return draw(st.sampled_from(["PUT", "POST", "DELETE", "GET"])), f"/repository/npm-h/{path}", json.dumps(
            draw(json_values)).encode(), "application/json"
    if kind in ("pypi-upload", "rest-upload"):
        fields = draw(pypi_fields) if kind == "pypi-upload" else draw(st.dictionaries(st.sampled_from(
            ["raw.directory", "raw.asset1.filename", "yum.directory", "yum.asset.filename", "pypi.asset",
             "npm.asset"]), hostile_text, max_size=3))
        file_field = "content" if kind == "pypi-upload" else draw(st.sampled_from(
            ["raw.asset1", "pypi.asset", "npm.asset", "yum.asset", "other"]))
        filename = draw(st.sampled_from(FILENAMES) | hostile_text)
        body, content_type = urllib3.encode_multipart_formdata(
            {**fields, file_field: (filename, draw(st.binary(max_size=200)), "application/octet-stream")})
        url = "/repository/pypi-h/" if kind == "pypi-upload" else \
            f"/service/rest/v1/components?repository={draw(st.sampled_from(HOSTED))}"
        return "POST", url, body, content_type
    if kind == "yum-put":
        name = draw(st.sampled_from(FILENAMES) | hostile_text.map(lambda t: quote(t) + ".rpm"))
        return "PUT", f"/repository/yum-h/{name}", draw(st.binary(max_size=300)), None
    if kind == "raw-put":
        return "PUT", f"/repository/raw-h/{quote(draw(hostile_text)) or 'x'}", draw(st.binary(max_size=50)), None
    repository = draw(st.sampled_from(HOSTED + ["raw-g", "nope"]) | hostile_text.map(lambda t: quote(t, safe="")))
    return (draw(st.sampled_from(METHODS)), f"/repository/{repository}/{quote(draw(hostile_text))}",
            draw(st.binary(max_size=50)), None)


@given(request=format_requests(), authenticated=st.booleans())
@FUZZ
def test_no_format_upload_path_answers_5xx(fuzz_app, request, authenticated):
    ts = fuzz_app.ts
    method, path, body, content_type = request
    request_headers = dict(ts.admin) if authenticated else {}
    if path.startswith("/v2/") and authenticated:
        request_headers = dict(fuzz_app.bearer)
    if content_type:
        request_headers["Content-Type"] = content_type
    check(fuzz_app, method, path, body, request_headers)
