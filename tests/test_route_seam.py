"""The route seam: a format declares its endpoints (``FormatHandler.endpoints``) and a route how to locate a
repository (``Route.locate``); core checks permission, write policy and name policy once, before the
format's code runs, on ``/repository/<repo>/...`` and on the located route alike.

A small format written for the test records every call that reaches it, so each refusal is shown to
happen before the plugin's code (and to store nothing)."""

from __future__ import annotations

import base64
import dataclasses
from typing import Any

import falcon
import pytest

from stowage.plugin import (Action, Endpoint, Format, FormatHandler, Located, RepoRequest, Route, StowageError,
                            hookimpl)

CHALLENGE = 'Seam realm="seam"'
READ = {"GET": Action.READ, "HEAD": Action.READ}


class SeamHandler(FormatHandler):
    methods = ("GET", "HEAD", "PUT", "POST", "DELETE")
    endpoints = (
        Endpoint("login", r"-/login", {"POST": None}),
        Endpoint("file", r"files/(?P<package>[^/]+)/(?P<file>[^/]+)",
                 {**READ, "PUT": Action.WRITE, "DELETE": Action.DELETE}, artifact="package"),
        Endpoint("blob", r"blobs/(?P<digest>[0-9a-f]{8})", {**READ, "PUT": Action.WRITE}, once=False),
    )

    def __init__(self, stowage: Any):
        super().__init__(stowage)
        self.calls: list[tuple[str, str | None, dict[str, str], Action | None, str | None]] = []

    def serve(self, request: RepoRequest) -> None:
        self.calls.append((request.method, request.endpoint, dict(request.params), request.action,
                           request.user.user_id if request.user else None))
        if request.endpoint == "login":
            request.resp.media = {"ok": True}
        elif request.method == "PUT":
            body, length = request.require_body()
            existing = self.stowage.catalog.get_asset(request.repository.name, request.path)
            if request.endpoint == "blob" and existing is not None:
                request.resp.status = falcon.HTTP_200  # content-addressed: a second push is no update
                return
            request.repository.store(request.path, body, length=length, artifact_name=request.params.get("package"))
            request.resp.status = falcon.HTTP_201
        elif request.method == "DELETE":
            request.repository.delete(request.path)
            request.resp.status = falcon.HTTP_204
        else:
            super().on_get(request)

    on_get = on_head = on_put = on_post = on_delete = serve

    def challenge(self, request: RepoRequest) -> str:
        return CHALLENGE

    def challenge_before_lookup(self, req: falcon.Request, path: str) -> str:
        return CHALLENGE

    def translate_error(self, error: StowageError) -> StowageError:
        if error.code == "WRITE_POLICY":
            translated = StowageError(f"seam: {error.message}")
            translated.code, translated.status = "SEAM_READ_ONLY", 409  # type: ignore[misc]
            return translated
        return error


class SeamResource:
    """``/seam/<repo>/<path>``: served only for located (checked) requests; ``/seam/`` itself unchecked."""

    def __init__(self, stowage: Any):
        self.stowage = stowage
        self.unlocated = 0

    def on_get(self, req: falcon.Request, resp: falcon.Response, rest: str = "") -> None:
        request = getattr(req.context, "repo_request", None)
        if request is None:
            self.unlocated += 1
            resp.media = {"seam": "root"}
            return
        getattr(request.repository.handler, f"on_{req.method.lower()}")(request)

    on_head = on_put = on_post = on_delete = on_get


def locate(req: falcon.Request, params: dict[str, str]) -> Located | None:
    repository, _, below = params.get("rest", "").partition("/")
    return Located(repository, below) if repository else None


class SeamPlugin:
    @hookimpl
    def stowage_register_formats(self) -> list[Format]:
        return [Format(name="seam", handler=SeamHandler)]

    @hookimpl
    def stowage_register_routes(self) -> list[Route]:
        return [Route(path="/seam/{rest:path}", resource=SeamResource, format="seam", locate=locate)]


@pytest.fixture
def seam(stowage_factory) -> Any:
    ts = stowage_factory(plugins=[SeamPlugin()], repositories=[
        dict(name="once", format="seam", type="hosted", storage={"writePolicy": "ALLOW_ONCE"},
             namePolicy={"deny": ["evil-*"]}),
        dict(name="frozen", format="seam", type="hosted", storage={"writePolicy": "DENY"}),
        dict(name="group", format="seam", type="group", group={"memberNames": ["once"]}),
        dict(name="plain", format="raw", type="hosted")])
    return Seam(ts.stowage, ts.client, ts.admin, ts.stowage.handlers["seam"].calls)


@dataclasses.dataclass
class Seam:
    stowage: Any
    client: Any
    admin: dict[str, str]
    calls: list[Any]


def basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


@pytest.mark.parametrize("prefix", ["/repository/", "/seam/"])
def test_core_checks_each_request_before_the_format_runs(seam, prefix) -> None:
    c, admin = seam.client, seam.admin

    def put(repo: str, path: str, body: bytes = b"data", headers: dict[str, str] | None = None) -> Any:
        return c.simulate_put(f"{prefix}{repo}/{path}", body=body,
                              headers={**(admin if headers is None else headers), "Accept": "application/json"})

    # a write the caller may make reaches the format with what core matched and checked
    assert put("once", "files/app/a.txt").status_code == 201
    assert seam.calls == [("PUT", "file", {"package": "app", "file": "a.txt"}, Action.WRITE, "admin")]
    stored = seam.stowage.catalog.get_asset("once", "files/app/a.txt")
    assert stored.attributes["uploader"] == "admin"

    refusals = [
        (put("once", "files/app/b.txt", headers={}), 401),                          # anonymous write
        (put("once", "files/app/b.txt", headers=basic("admin", "wrong")), 401),     # wrong password
        (put("once", "files/app/a.txt", b"other"), 409),                           # ALLOW_ONCE, translated
        (put("once", "files/evil-app/a.txt"), 403),                                 # name policy
        (put("frozen", "files/app/a.txt"), 409),                                    # DENY, translated
        (put("group", "files/app/a.txt"), 405),                                     # groups take no writes
        (put("once", "elsewhere/a.txt"), 404),                                      # no such endpoint
        (c.simulate_post(f"{prefix}once/files/app/a.txt", headers=admin), 405),     # method not declared
        (c.simulate_delete(f"{prefix}frozen/files/app/a.txt", headers=admin), 409),  # DENY refuses deletes
        (c.simulate_delete(f"{prefix}group/files/app/a.txt", headers=admin), 405),
    ]
    assert [status for response, status in refusals] == [response.status_code for response, _ in refusals]
    assert refusals[0][0].headers["www-authenticate"] == CHALLENGE
    assert refusals[2][0].json["code"] == "SEAM_READ_ONLY"
    assert refusals[3][0].json["code"] == "NAME_POLICY"
    assert "PUT" in refusals[7][0].headers["allow"]
    assert len(seam.calls) == 1  # none of them reached the format
    assert seam.stowage.catalog.get_asset("once", "files/evil-app/a.txt") is None
    with seam.stowage.blob_store("default").open(stored.blob_sha256) as stream:
        assert stream.read() == b"data"  # the ALLOW_ONCE refusal changed nothing


@pytest.mark.parametrize("prefix", ["/repository/", "/seam/"])
def test_endpoint_without_an_action_and_content_addressed_paths_reach_the_format(seam, prefix) -> None:
    c = seam.client
    # an endpoint that checks its callers itself: core checks nothing, not even anonymity
    assert c.simulate_post(f"{prefix}once/-/login").json == {"ok": True}
    assert seam.calls[-1] == ("POST", "login", {}, None, None)
    # once=False: under ALLOW_ONCE a second push of a content-addressed path is the format's to judge
    for expected in (201, 200):
        assert c.simulate_put(f"{prefix}once/blobs/0123abcd", body=b"x", headers=seam.admin).status_code == expected
    assert [call[1] for call in seam.calls[-2:]] == ["blob", "blob"]
    # reads: permission READ (anonymous access is on), then the format's own answer
    assert c.simulate_get(f"{prefix}once/blobs/0123abcd").text == "x"
    assert seam.calls[-1] == ("GET", "blob", {"digest": "0123abcd"}, Action.READ, None)


def test_located_route_hides_which_repositories_exist(seam) -> None:
    c = seam.client
    resource_calls = len(seam.calls)
    seam.stowage.security.set_anonymous_settings(False)
    missing = c.simulate_get("/seam/nowhere/files/app/a.txt")
    existing = c.simulate_get("/seam/once/files/app/a.txt")
    assert missing.status_code == existing.status_code == 401
    assert missing.headers["www-authenticate"] == existing.headers["www-authenticate"] == CHALLENGE
    # signed in: a missing repository and one of another format are both unknown on the format's route
    assert c.simulate_get("/seam/nowhere/files/app/a.txt", headers=seam.admin).status_code == 404
    assert c.simulate_get("/seam/plain/files/app/a.txt", headers=seam.admin).status_code == 404
    assert len(seam.calls) == resource_calls
    # a request locate() places in no repository is the resource's own, unchecked
    assert c.simulate_get("/seam/").json == {"seam": "root"}


def test_registrations_are_checked_when_made() -> None:
    with pytest.raises(ValueError, match="locate and format go together"):
        Route(path="/x/{rest:path}", resource=SeamResource, locate=locate)
    with pytest.raises(ValueError, match="upper-case HTTP methods"):
        Endpoint("file", r"files/(?P<package>[^/]+)", {"get": Action.READ})
    with pytest.raises(ValueError, match="not a named group"):
        Endpoint("file", r"files/(?P<package>[^/]+)", {"PUT": Action.WRITE}, artifact="name")
