"""The audit trail over a live server: sign-ins, REST changes, content writes; GET /service/rest/v1/audit."""

from __future__ import annotations

import json
import subprocess

from stowage.security import User

V1 = "/service/rest/v1"


def curl(url, *args, user=None, data=None, method=None, headers=()):
    command = ["curl", "-s", "-o", "-", "-w", "\n%{http_code}", url, *args]
    if user:
        command += ["-u", user]
    if method:
        command += ["-X", method]
    for header in headers:
        command += ["-H", header]
    if data is not None:
        command += ["-H", "Content-Type: application/json", "--data-binary", json.dumps(data)]
    out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    body, _, status = out.rpartition("\n")
    return int(status), body


def audit(live, admin, **params):
    query = "&".join(f"{k}={v}" for k, v in params.items())
    status, body = curl(f"{live.url}{V1}/audit?{query}", user=admin)
    assert status == 200, body
    return json.loads(body)


def test_changes_sign_ins_and_writes_are_audited_with_user_and_address(stowage_factory, live_server_factory):
    ts = stowage_factory(repositories=[{"name": "raw-hosted", "format": "raw", "type": "hosted"}])
    live = live_server_factory(ts)
    admin = f"admin:{ts.admin_password}"
    ts.stowage.security.save_user(User(user_id="dev", roles=("nx-anonymous",)), "dev-pw")

    assert curl(f"{live.url}/repository/raw-hosted/a.txt", "-T", "-", user="admin:wrong")[0] == 401
    assert curl(f"{live.url}/repository/raw-hosted/a.txt", "--data-binary", "x", user="dev:dev-pw",
                method="PUT")[0] == 403
    assert curl(f"{live.url}/repository/raw-hosted/a.txt", "--data-binary", "x", user=admin, method="PUT")[0] == 201
    assert curl(f"{live.url}/repository/raw-hosted/a.txt", user=admin, method="DELETE")[0] == 204
    assert curl(f"{live.url}{V1}/security/roles", user=admin, data={"id": "r1", "name": "r1"})[0] == 200
    assert curl(f"{live.url}{V1}/security/content-selectors", user=admin,
                data={"name": "s1", "expression": "nonsense"})[0] == 400
    assert curl(f"{live.url}{V1}/repositories/raw-hosted", user=admin, method="DELETE")[0] == 204

    events = audit(live, admin)["items"]
    seen = [(e["user"], e["domain"], e["action"], e["target"], e["repository"], e["result"]) for e in events]
    assert ("admin", "repository", "repository.delete", "raw-hosted", "raw-hosted", "success") in seen
    assert ("admin", "security", "selector.create", "s1", None, "failure") in seen
    assert ("admin", "security", "role.create", "r1", None, "success") in seen
    assert ("admin", "content", "content.delete", "/a.txt", "raw-hosted", "success") in seen
    assert ("admin", "content", "content.upload", "/a.txt", "raw-hosted", "success") in seen
    assert ("dev", "content", "content.upload", "/a.txt", "raw-hosted", "denied") in seen
    assert (None, "security", "signin", "admin", None, "failure") in seen
    assert ("dev", "security", "signin", "dev", None, "success") in seen
    assert all(e["address"] == "127.0.0.1" and e["timestamp"].endswith("Z") for e in events)
    # successful sign-ins of one user from one address are recorded once, not per request
    assert [e["target"] for e in events if e["action"] == "signin" and e["result"] == "success"].count("admin") == 1

    assert [e["action"] for e in audit(live, admin, user="dev")["items"]] == ["content.upload", "signin"]
    assert {e["action"] for e in audit(live, admin, action="content.*")["items"]} == {"content.upload",
                                                                                      "content.delete"}
    assert {e["repository"] for e in audit(live, admin, repository="raw-hosted")["items"]} == {"raw-hosted"}
    newest = events[0]["timestamp"]
    assert audit(live, admin, since=newest.replace(":", "%3A"))["items"][-1]["timestamp"] == newest
    assert audit(live, admin, until="1970-01-02T00:00:00Z")["items"] == []
    assert curl(f"{live.url}{V1}/audit?since=yesterday", user=admin)[0] == 400
    assert curl(f"{live.url}{V1}/audit?continuationToken=%%%", user=admin)[0] == 400


def test_audit_pages_and_refuses_non_admins(stowage_factory, live_server_factory):
    ts = stowage_factory()
    live = live_server_factory(ts)
    admin = f"admin:{ts.admin_password}"
    ts.stowage.security.save_user(User(user_id="dev", roles=("nx-anonymous",)), "dev-pw")
    assert curl(f"{live.url}{V1}/audit")[0] == 401
    assert curl(f"{live.url}{V1}/audit", user="dev:dev-pw")[0] == 403
    with ts.stowage.catalog.transaction():
        for n in range(150):
            ts.stowage.audit.record("tasks", "cleanup.delete", f"/file-{n}", repository="r")
    first = audit(live, admin, action="cleanup.delete")
    assert len(first["items"]) == 100 and first["continuationToken"]
    second = audit(live, admin, action="cleanup.delete", continuationToken=first["continuationToken"])
    assert len(second["items"]) == 50 and second["continuationToken"] is None
    targets = [e["target"] for e in first["items"] + second["items"]]
    assert targets == [f"/file-{n}" for n in reversed(range(150))]


def test_routes_become_actions(stowage_factory):
    """Endpoints other features add are named from their routes without code of their own."""
    import falcon

    ts = stowage_factory()

    class Anything:
        def on_post(self, req, resp, **params):
            resp.status = falcon.HTTP_204

        on_put = on_delete = on_post

    for template in ("/service/rest/v1/security/ldap/change-order", "/service/rest/v1/security/realms/active",
                     "/service/rest/v1/security/users/{user_id}/{realm}/user-token",
                     "/service/rest/v1/security/ldap/{name}"):
        ts.app.add_route(template, Anything())
    calls = [("POST", "/service/rest/v1/security/ldap/change-order", "ldap.change-order"),
             ("PUT", "/service/rest/v1/security/realms/active", "realm.update"),
             ("POST", "/service/rest/v1/security/users/bob/LdapRealm/user-token", "token.create"),
             ("DELETE", "/service/rest/v1/security/ldap/corp", "ldap.delete"),
             ("POST", "/service/rest/v1/tasks/nope/run", "task.run")]
    for method, path, _ in calls:
        ts.client.simulate_request(method, path, headers=ts.admin)
    events = ts.stowage.audit.query(limit=20)
    actions = [e["action"] for e in events if e["action"] != "signin"]
    assert actions == [action for _, _, action in reversed(calls)]
    assert [e["target"] for e in events if e["action"] in ("token.create", "ldap.delete")] == ["corp", "bob"]


def test_hostile_inputs_are_bounded_or_refused(stowage_factory):
    ts = stowage_factory()
    long_name = "x" * 5000
    ts.client.simulate_post(f"{V1}/security/roles", json={"id": long_name, "name": long_name}, headers=ts.admin)
    event = [e for e in ts.stowage.audit.query() if e["action"] == "role.create"][0]
    assert event["result"] == "failure" and len(event["target"]) == 1024
    for bad in ("nan", "inf", "yesterday", "2026-13-40"):
        assert ts.client.simulate_get(f"{V1}/audit", params={"since": bad}, headers=ts.admin).status_code == 400


def test_the_purge_task_drops_events_past_the_retention(stowage_factory, live_server_factory):
    import time

    import urllib3

    ts = stowage_factory(audit_retention_days=30)
    live = live_server_factory(ts)
    catalog = ts.stowage.catalog
    for age_days, target in ((400, "ancient"), (31, "old"), (29, "recent")):
        catalog.append_audit({"timestamp": time.time() - age_days * 86400, "domain": "content",
                              "action": "content.upload", "target": target, "result": "success"})
    assert urllib3.request("POST", f"{live.url}{V1}/tasks/security.audit-purge/run",
                           headers=ts.admin).status == 204
    deadline = time.monotonic() + 30
    while True:
        task = urllib3.request("GET", f"{live.url}{V1}/tasks/security.audit-purge", headers=ts.admin).json()
        if task["currentState"] == "WAITING" and task["lastRunResult"]:
            break
        assert time.monotonic() < deadline
        time.sleep(0.05)
    targets = {e["target"] for e in ts.stowage.audit.query(action="content.upload")}
    assert targets == {"recent"}
    assert ts.stowage.audit.purge(0) == "audit retention is unlimited; nothing purged"


def test_changes_recorded_in_their_transaction_are_recorded_once(stowage_factory):
    ts = stowage_factory()
    selectors = f"{V1}/security/content-selectors"
    assert ts.client.simulate_post(selectors, json={"name": "s", "expression": 'path =^ "/a/"'},
                                   headers=ts.admin).status_code == 204
    assert ts.client.simulate_post(selectors, json={"name": "s", "expression": 'path =^ "/a/"'},
                                   headers=ts.admin).status_code == 400  # exists: rolled back
    events = [(e["action"], e["result"], e["attributes"]["status"]) for e in ts.stowage.audit.query()
              if e["action"] != "signin"]
    assert events == [("selector.create", "failure", 400), ("selector.create", "success", 204)]
