"""Issue 13: repository create/update bodies and answers in the shapes of Nexus 3.91's OpenAPI document.

Bodies are generated from the document's own request schemas, with every optional field set, so a field
Nexus accepts and Stowage refuses, or a block an answer lacks, fails here.
"""

from __future__ import annotations

from typing import Any

import pytest

from nexus_schema import component, document, validate

V1 = "/service/rest/v1"
FORMATS = ("raw", "pypi", "npm", "docker", "yum")
TYPES = ("hosted", "proxy", "group")
#: values the generator cannot guess: Stowage acts on these and needs real ones.
OVERRIDES = {
    "remoteUrl": "http://127.0.0.1:9/", "memberNames": ["base"], "writableMember": "base", "httpPort": None,
    "httpsPort": None, "v1Enabled": False, "repodataDepth": 2, "type": "username", "timeout": 30,
    "retries": 1, "contentMaxAge": 60, "metadataMaxAge": 30, "timeToLive": 15, "foreignLayerUrlWhitelist":
    ["https://foreign.example/.*"], "indexUrl": "https://index.example/", "keypair": None, "passphrase": None,
    "routingRule": None, "bearerToken": None, "password": None, "blobStoreName": "default",
    "policyNames": ["old-builds"],
}


def _example(schema: dict[str, Any], key: str = "") -> Any:
    """A value for ``schema`` with every property set (OVERRIDES by property name)."""
    if "$ref" in schema:
        return _example(component(schema["$ref"].rsplit("/", 1)[1]), key)
    if key in OVERRIDES:
        return OVERRIDES[key]
    kind = schema.get("type")
    if "enum" in schema:
        return schema["enum"][-1]
    if kind == "object" or "properties" in schema:
        built = {name: _example(sub, name) for name, sub in schema.get("properties", {}).items()}
        return {name: value for name, value in built.items() if value is not None}
    if kind == "boolean":
        return True
    if kind == "integer":
        return 7
    if kind == "array":
        return [_example(schema.get("items", {"type": "string"}), key)]
    return f"{key}-value"


def _request_body(format_name: str, type_name: str, name: str) -> dict[str, Any]:
    operation = document()["paths"][f"/v1/repositories/{format_name}/{type_name}"]["post"]
    schema = operation["requestBody"]["content"]["application/json"]["schema"]
    body = _example(schema)
    body["name"] = name
    return body


def _subset(sent: Any, got: Any, where: str = "$") -> list[str]:
    """Where ``got`` lacks or changes what ``sent`` holds."""
    if isinstance(sent, dict):
        if not isinstance(got, dict):
            return [where]
        return [problem for key, value in sent.items()
                for problem in (_subset(value, got.get(key), f"{where}.{key}") if key in got else [f"{where}.{key}"])]
    return [] if sent == got else [f"{where}: sent {sent!r}, got {got!r}"]


@pytest.fixture
def app(stowage_app):
    policy = stowage_app.client.simulate_post(f"{V1}/cleanup-policies", headers=stowage_app.admin, json={
        "name": "old-builds", "format": "*", "criteriaLastBlobUpdated": 90})
    assert policy.status_code in (200, 201, 204), policy.text
    base = {"name": "base", "online": True, "storage": {"blobStoreName": "default",
            "strictContentTypeValidation": True, "writePolicy": "ALLOW"}}
    for format_name in FORMATS:
        extra = {"docker": {"v1Enabled": False, "forceBasicAuth": False}} if format_name == "docker" else {}
        extra |= {"yum": {"repodataDepth": 0}} if format_name == "yum" else {}
        created = stowage_app.client.simulate_post(f"{V1}/repositories/{format_name}/hosted",
                                                   json={**base, "name": f"base-{format_name}", **extra},
                                                   headers=stowage_app.admin)
        assert created.status_code == 201, created.text
    return stowage_app


@pytest.mark.parametrize("type_name", TYPES)
@pytest.mark.parametrize("format_name", FORMATS)
def test_every_nexus_field_is_accepted_stored_and_returned(app, format_name, type_name):
    name = f"{format_name}-{type_name}"
    body = _request_body(format_name, type_name, name)
    if "group" in body:
        body["group"]["memberNames"] = [f"base-{format_name}"]
        if "writableMember" in body["group"]:
            body["group"]["writableMember"] = f"base-{format_name}"
    created = app.client.simulate_post(f"{V1}/repositories/{format_name}/{type_name}", json=body, headers=app.admin)
    assert created.status_code == 201, created.text

    got = app.client.simulate_get(f"{V1}/repositories/{format_name}/{type_name}/{name}", headers=app.admin)
    assert got.status_code == 200
    validate(f"/v1/repositories/{format_name}/{type_name}/{name}", got.json)
    assert _subset(body, got.json) == []

    # the answer is a valid update body: a client that round-trips Nexus JSON changes nothing
    again = app.client.simulate_put(f"{V1}/repositories/{format_name}/{type_name}/{name}", json=got.json,
                                    headers=app.admin)
    assert again.status_code == 204, again.text
    assert app.client.simulate_get(f"{V1}/repositories/{format_name}/{type_name}/{name}",
                                   headers=app.admin).json == got.json


@pytest.mark.parametrize("type_name", TYPES)
@pytest.mark.parametrize("format_name", FORMATS)
def test_minimal_repositories_answer_every_block_of_the_schema(app, format_name, type_name):
    """A repository created with the least Stowage needs (e.g. from a TOML file) is answered complete."""
    config = {"name": "minimal", "format": format_name, "type": type_name}
    if type_name == "proxy":
        config["proxy"] = {"remoteUrl": "http://127.0.0.1:9/"}
    if type_name == "group":
        config["group"] = {"memberNames": [f"base-{format_name}"]}
    app.stowage.save_repository(app.stowage.parse_repository(config))
    got = app.client.simulate_get(f"{V1}/repositories/{format_name}/{type_name}/minimal", headers=app.admin).json
    validate(f"/v1/repositories/{format_name}/{type_name}/minimal", got)
    if type_name == "hosted":
        assert got["storage"]["writePolicy"] == ("ALLOW" if format_name == "docker" else "ALLOW_ONCE")
        assert got["cleanup"] == {"policyNames": []} and got["component"] == {"proprietaryComponents": False}
    if type_name == "proxy":
        assert got["negativeCache"] == {"enabled": True, "timeToLive": 1440}
        assert got["httpClient"]["connection"]["timeout"] == 60
    settings = app.client.simulate_get(f"{V1}/repositorySettings", headers=app.admin).json
    assert [s for s in settings if s["name"] == "minimal"] == [got]


@pytest.mark.parametrize("spelling", ["allow_once", "Allow_Once", "ALLOW_ONCE"])
def test_enums_in_either_case_are_answered_as_sent(app, spelling):
    body = {"name": "spelled", "online": True, "storage": {"blobStoreName": "default",
            "strictContentTypeValidation": True, "writePolicy": spelling}, "raw": {"contentDisposition": "inline"}}
    assert app.client.simulate_post(f"{V1}/repositories/raw/hosted", json=body, headers=app.admin).status_code == 201
    got = app.client.simulate_get(f"{V1}/repositories/raw/hosted/spelled", headers=app.admin).json
    assert got["storage"]["writePolicy"] == spelling and got["raw"]["contentDisposition"] == "inline"
    # and it means what it says: ALLOW_ONCE refuses a redeploy
    repository = app.stowage.repository("spelled")
    assert repository.write_policy.value == "ALLOW_ONCE"
    assert app.client.simulate_put("/repository/spelled/a.txt", body=b"1", headers=app.admin).status_code == 201
    assert app.client.simulate_put("/repository/spelled/a.txt", body=b"2", headers=app.admin).status_code == 400
    # a value that is no spelling of the enum is refused, naming the field
    body["storage"]["writePolicy"] = "sometimes"
    refused = app.client.simulate_put(f"{V1}/repositories/raw/hosted/spelled", json=body, headers=app.admin)
    assert refused.status_code == 400 and "storage.writePolicy" in refused.text


def test_a_field_that_is_neither_nexus_nor_stowage_is_refused_by_name(app):
    body = _request_body("npm", "proxy", "typo")
    body["httpClient"]["connection"]["enableCookeis"] = True
    body["replicaton"] = {}
    refused = app.client.simulate_post(f"{V1}/repositories/npm/proxy", json=body, headers=app.admin)
    assert refused.status_code == 400
    assert refused.headers["content-type"] == "application/json"
    ids = {entry["id"] for entry in refused.json}
    assert ids == {"PARAMETER httpClient.connection", "*"}, refused.json
    assert "enableCookeis" in refused.text and "replicaton" in refused.text
    assert app.stowage.catalog.get_repository("typo") is None


@pytest.mark.parametrize("format_name,type_name,drop,named", [
    ("raw", "hosted", ("online",), ["online"]),
    ("raw", "hosted", ("storage", "writePolicy"), ["storage.writePolicy"]),
    ("pypi", "proxy", ("negativeCache",), ["negativeCache"]),
    ("npm", "proxy", ("httpClient",), ["httpClient"]),
    ("docker", "hosted", ("docker",), ["docker"]),
    ("docker", "proxy", ("dockerProxy",), ["dockerProxy"]),
    ("yum", "hosted", ("yum",), ["yum"]),
    ("raw", "group", ("group",), ["group"]),
])
def test_an_update_without_required_fields_is_refused_naming_them(app, format_name, type_name, drop, named):
    name = f"{format_name}-{type_name}-upd"
    body = _request_body(format_name, type_name, name)
    if "group" in body:
        body["group"] = {"memberNames": [f"base-{format_name}"]}
    assert app.client.simulate_post(f"{V1}/repositories/{format_name}/{type_name}", json=body,
                                    headers=app.admin).status_code == 201
    before = app.stowage.catalog.get_repository(name)
    parent = body
    for key in drop[:-1]:
        parent = parent[key]
    del parent[drop[-1]]
    refused = app.client.simulate_put(f"{V1}/repositories/{format_name}/{type_name}/{name}", json=body,
                                      headers=app.admin)
    assert refused.status_code == 400
    assert [entry["id"] for entry in refused.json] == [f"PARAMETER {field}" for field in named]
    assert app.stowage.catalog.get_repository(name) == before


def test_errors_under_service_rest_are_json_with_a_message(app):
    for method, path in (("GET", f"{V1}/no-such-endpoint"), ("GET", "/service/rest/nothing/here"),
                         ("DELETE", f"{V1}/repositories/nope"), ("GET", f"{V1}/repositories/raw/hosted/nope")):
        answer = app.client.simulate_request(method, path, headers=app.admin)
        assert answer.status_code == 404, path
        assert answer.headers["content-type"] == "application/json" and answer.json["message"], path
    unauthorised = app.client.simulate_get(f"{V1}/repositorySettings")
    assert unauthorised.status_code == 401 and unauthorised.json["message"]
    not_allowed = app.client.simulate_request("PATCH", f"{V1}/repositories")
    assert not_allowed.status_code == 405 and not_allowed.json["message"]


def test_any_case_of_an_enum_round_trips_in_its_spelling(stowage_app):
    """Property: whatever case a client sends an enum in, the stored configuration answers it back so,
    and it means the same member."""
    from hypothesis import given, settings, strategies as st

    stowage = stowage_app.stowage

    @settings(max_examples=60, deadline=None)
    @given(policy=st.sampled_from(["ALLOW", "ALLOW_ONCE", "DENY"]), disposition=st.sampled_from(["INLINE", "ATTACHMENT"]),
           flips=st.lists(st.booleans(), min_size=12, max_size=12))
    def check(policy, disposition, flips):
        def spell(word):
            return "".join(c.lower() if flip else c for c, flip in zip(word, flips + [False] * len(word)))

        sent = {"name": "r", "format": "raw", "type": "hosted",
                "storage": {"writePolicy": spell(policy)}, "raw": {"contentDisposition": spell(disposition)}}
        config = stowage.parse_repository(dict(sent))
        assert config.storage.write_policy.value == policy
        again = stowage.parse_repository(stowage.converter.unstructure(config))
        document = stowage.converter.unstructure(again)
        assert document["storage"]["writePolicy"] == spell(policy)
        assert document["raw"]["contentDisposition"] == spell(disposition)

    check()
