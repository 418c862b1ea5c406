"""Drive a server with ``sonatype-nxrm-sdk`` (generated from Nexus 3.42's document), as a user would.

Run in the clients' virtualenv: ``python sdk_driver.py BASE_URL USER PASSWORD WORKDIR``. Prints a JSON
summary; any exception (a typed model refusing an answer, an API error) ends it with a traceback.
"""

import inspect
import json
import re
import sys
from pathlib import Path

import nxrm_sdk
from nxrm_sdk.rest import ApiException

FORMATS = ("raw", "pypi", "npm", "docker", "yum")
TYPES = ("hosted", "proxy", "group")


def operations(api):
    """(verb, format, type) -> (method, body model name) from the generated methods' own paths."""
    found = {}
    for name, method in inspect.getmembers(api, inspect.ismethod):
        verb = next((v for v in ("create", "get", "update") if name.startswith(f"{v}_repository")), None)
        if verb is None or name.endswith("with_http_info"):
            continue
        source = inspect.getsource(getattr(api, f"{name}_with_http_info"))
        path = re.search(r"""['"]/v1/repositories/([a-z0-9]+)/(hosted|proxy|group)(/\{repositoryName\})?['"]""",
                         source)
        if path is None:
            continue
        model = re.search(r":param (\w+) body:", method.__doc__ or "")
        found[(verb, path.group(1), path.group(2))] = (method, model.group(1) if model else None)
    return found


def body_for(fmt, kind, name):
    body = {"name": name, "online": True,
            "storage": {"blobStoreName": "default", "strictContentTypeValidation": True}}
    if kind == "hosted":
        body["storage"]["writePolicy"] = "allow_once"  # the 3.42 document's spelling
        body["cleanup"] = {"policyNames": []}
        body["component"] = {"proprietaryComponents": False}
    if kind == "proxy":
        body["proxy"] = {"remoteUrl": "http://127.0.0.1:9/", "contentMaxAge": 1440, "metadataMaxAge": 1440}
        body["negativeCache"] = {"enabled": True, "timeToLive": 1440}
        body["httpClient"] = {"blocked": False, "autoBlock": True,
                              "connection": {"retries": 0, "userAgentSuffix": "sdk", "timeout": 60,
                                             "enableCircularRedirects": False, "enableCookies": False,
                                             "useTrustStore": False}}
    if kind == "group":
        body["group"] = {"memberNames": [f"{fmt}-hosted"]}
    if fmt == "docker":
        body["docker"] = {"v1Enabled": False, "forceBasicAuth": True}
        if kind == "proxy":
            body["dockerProxy"] = {"indexType": "REGISTRY"}
    if fmt == "yum" and kind == "hosted":
        body["yum"] = {"repodataDepth": 1, "deployPolicy": "STRICT"}
    if fmt == "raw":
        body["raw"] = {"contentDisposition": "ATTACHMENT"}
    if fmt == "pypi" and kind == "proxy":
        body["pypi"] = {"removeQuarantined": False}
    if fmt == "npm" and kind == "proxy":
        body["npm"] = {"removeQuarantined": False, "removeNonCataloged": False}
    return body


def main(base, user, password, workdir):
    config = nxrm_sdk.Configuration()
    config.host = base.rstrip("/") + "/service/rest"
    config.username, config.password = user, password
    client = nxrm_sdk.ApiClient(config)
    # the generated operations declare no security scheme, so the SDK never sends config's credentials itself
    client.set_default_header("Authorization", config.get_basic_auth_token())
    repos = nxrm_sdk.RepositoryManagementApi(client)
    ops = operations(repos)
    summary = {"created": [], "read": {}}
    for fmt in FORMATS:
        for kind in TYPES:
            name = f"{fmt}-{kind}"
            method, model = ops[("create", fmt, kind)]
            typed = client._ApiClient__deserialize(body_for(fmt, kind, name), model)
            method(body=typed)
            summary["created"].append(name)
    for fmt in FORMATS:
        for kind in TYPES:
            getter, _ = ops[("get", fmt, kind)]
            read = getter(f"{fmt}-{kind}")
            assert read.name == f"{fmt}-{kind}" and read.online is True, read
            summary["read"][f"{fmt}-{kind}"] = read.to_dict()
    listed = repos.get_repositories()
    summary["listed"] = sorted(r.name for r in listed)

    upload = Path(workdir) / "notes.txt"
    upload.write_text("uploaded through the SDK\n")
    components = nxrm_sdk.ComponentsApi(client)
    components.upload_component("raw-hosted", raw_directory="/sdk/drop", raw_asset1=str(upload),
                                raw_asset1_filename="notes.txt")
    page = components.get_components("raw-hosted")
    summary["components"] = [(c.group, c.name, c.version) for c in page.items]
    component = components.get_component_by_id(page.items[0].id)
    assets = nxrm_sdk.AssetsApi(client).get_assets("raw-hosted")
    summary["assets"] = [a.to_dict() for a in assets.items]
    assert assets.items[0].checksum["sha1"] and component.assets[0].path == "sdk/drop/notes.txt"
    search = nxrm_sdk.SearchApi(client)
    summary["search"] = [c.name for c in search.search(repository="raw-hosted", group="/sdk/drop").items]
    sha1 = assets.items[0].checksum["sha1"]
    summary["search_assets"] = [a.path for a in search.search_assets(sha1=sha1).items]
    status = nxrm_sdk.StatusApi(client)
    status.is_available()
    status.is_writable()
    summary["checks"] = sorted(status.get_system_status_checks())
    try:
        nxrm_sdk.ScriptApi(client).add(body=nxrm_sdk.ScriptXO(name="s", content="1", type="groovy"))
        summary["script"] = "created"
    except ApiException as error:
        summary["script"] = [error.status, json.loads(error.body)["message"]]
    print(json.dumps(summary, default=str))


if __name__ == "__main__":
    main(*sys.argv[1:5])
