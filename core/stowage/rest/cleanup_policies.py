"""``/service/rest/v1/cleanup-policies``: list, create, read, update, delete, and a preview. Admin only.

The preview (beyond Nexus, whose UI alone has it) takes a policy body plus ``repository`` and answers what
a cleanup run would remove from that repository now, without removing anything.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import falcon

from stowage.cleanup import preview
from stowage.cleanup_policies import CleanupPolicies
from stowage.errors import BadRequest
from stowage.models import RepositoryType
from stowage.rest import V1
from stowage.rest.access import json_object, require_admin

if TYPE_CHECKING:
    from stowage.stowage import Stowage


class PoliciesResource:
    def __init__(self, stowage: "Stowage"):
        self.stowage = stowage

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        require_admin(req, self.stowage)
        resp.media = [p.to_json() for p in sorted(CleanupPolicies.of(self.stowage).all(), key=lambda p: p.name)]

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        require_admin(req, self.stowage)
        policies = CleanupPolicies.of(self.stowage)
        policy = policies.parse(json_object(req))
        policies.create(policy)
        resp.media = policy.to_json()
        resp.status = falcon.HTTP_201

    def on_post_preview(self, req: falcon.Request, resp: falcon.Response) -> None:
        require_admin(req, self.stowage)
        body = json_object(req)
        name = body.get("repository")
        if not isinstance(name, str) or not name:
            raise BadRequest("repository (the name of the repository to preview against) is required")
        repository = self.stowage.repository(name)
        if repository.type is RepositoryType.GROUP:
            raise BadRequest(f"repository {name} is a group; it has no content of its own to clean up")
        policy = CleanupPolicies.of(self.stowage).parse(dict(body, name=body.get("name") or "preview"),
                                                        extra=("repository",))
        if policy.format not in ("*", repository.format_name):
            raise BadRequest(f"the policy is for {policy.format} repositories; {name} is {repository.format_name}")
        selected = preview(repository, [policy])
        resp.media = {"items": [c.to_json() for c in selected], "totalBytes": sum(c.size for c in selected)}


class PolicyResource:
    def __init__(self, stowage: "Stowage"):
        self.stowage = stowage

    def on_get(self, req: falcon.Request, resp: falcon.Response, name: str) -> None:
        require_admin(req, self.stowage)
        resp.media = CleanupPolicies.of(self.stowage).get(name).to_json()

    def on_put(self, req: falcon.Request, resp: falcon.Response, name: str) -> None:
        require_admin(req, self.stowage)
        policies = CleanupPolicies.of(self.stowage)
        body = json_object(req)
        if body.get("name", name) != name:
            raise BadRequest(f"the body names policy {body.get('name')!r}, the URL {name!r}; a policy cannot be "
                             f"renamed")
        policies.update(policies.parse(dict(body, name=name)))
        resp.status = falcon.HTTP_204

    def on_delete(self, req: falcon.Request, resp: falcon.Response, name: str) -> None:
        require_admin(req, self.stowage)
        CleanupPolicies.of(self.stowage).delete(name)
        resp.status = falcon.HTTP_204


def register(app: falcon.App, stowage: "Stowage") -> None:
    policies = PoliciesResource(stowage)
    app.add_route(f"{V1}/cleanup-policies", policies)
    app.add_route(f"{V1}/cleanup-policies/preview", policies, suffix="preview")
    app.add_route(f"{V1}/cleanup-policies/{{name}}", PolicyResource(stowage))
