"""``/service/rest/v1/tasks``: templates, create, list, read, update, delete, run, stop. Admin only.

Runs are asynchronous (204), as in Nexus; ``GET /tasks/{id}`` shows ``currentState``, the progress
``message`` while it runs and ``lastRunResult`` afterwards.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import falcon

from stowage.registration import Task
from stowage.rest import V1
from stowage.rest.access import json_object, require_admin
from stowage.tasks import TaskRunner

if TYPE_CHECKING:
    from stowage.stowage import Stowage


def template_json(task_type: Task) -> dict[str, Any]:
    """Nexus's ``TaskTemplateXO`` for a type, plus (beyond) what each property is."""
    return {"type": task_type.type, "name": task_type.name, "enabled": True, "alertEmail": None,
            "notificationCondition": "FAILURE", "frequency": {"schedule": "manual"},
            "properties": {p.id: p.default or "" for p in task_type.properties},
            "propertyDefinitions": [{"id": p.id, "label": p.label or p.id, "type": p.type, "required": p.required,
                                     "default": p.default} for p in task_type.properties]}


class TemplatesResource:
    def __init__(self, stowage: "Stowage"):
        self.stowage = stowage

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        require_admin(req, self.stowage)
        resp.media = [template_json(t) for _, t in sorted(TaskRunner.of(self.stowage).types.items())]

    def on_get_one(self, req: falcon.Request, resp: falcon.Response, type_id: str) -> None:
        require_admin(req, self.stowage)
        resp.media = template_json(TaskRunner.of(self.stowage).task_type(type_id))


class TasksResource:
    def __init__(self, stowage: "Stowage"):
        self.stowage = stowage

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        require_admin(req, self.stowage)
        runner = TaskRunner.of(self.stowage)
        wanted = req.get_param("type")
        tasks = sorted(runner.tasks(), key=lambda t: (t["type"], t["name"], t["id"]))
        resp.media = {"items": [runner.describe(t) for t in tasks if wanted is None or t["type"] == wanted],
                      "continuationToken": None}

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        require_admin(req, self.stowage)
        runner = TaskRunner.of(self.stowage)
        resp.media = runner.describe(runner.create(json_object(req)), full=True)
        resp.status = falcon.HTTP_201


class TaskResource:
    def __init__(self, stowage: "Stowage"):
        self.stowage = stowage

    def on_get(self, req: falcon.Request, resp: falcon.Response, task_id: str) -> None:
        require_admin(req, self.stowage)
        runner = TaskRunner.of(self.stowage)
        resp.media = runner.describe(runner.get(task_id), full=True)

    def on_put(self, req: falcon.Request, resp: falcon.Response, task_id: str) -> None:
        require_admin(req, self.stowage)
        runner = TaskRunner.of(self.stowage)
        resp.media = runner.describe(runner.update(task_id, json_object(req)), full=True)

    def on_delete(self, req: falcon.Request, resp: falcon.Response, task_id: str) -> None:
        require_admin(req, self.stowage)
        TaskRunner.of(self.stowage).delete(task_id)
        resp.status = falcon.HTTP_204

    def on_post_run(self, req: falcon.Request, resp: falcon.Response, task_id: str) -> None:
        require_admin(req, self.stowage)
        TaskRunner.of(self.stowage).start(task_id)
        resp.status = falcon.HTTP_204

    def on_post_stop(self, req: falcon.Request, resp: falcon.Response, task_id: str) -> None:
        require_admin(req, self.stowage)
        TaskRunner.of(self.stowage).stop(task_id)
        resp.status = falcon.HTTP_204


def register(app: falcon.App, stowage: "Stowage") -> None:
    task = TaskResource(stowage)
    templates = TemplatesResource(stowage)
    app.add_route(f"{V1}/tasks", TasksResource(stowage))
    app.add_route(f"{V1}/tasks/templates", templates)
    app.add_route(f"{V1}/tasks/templates/{{type_id}}", templates, suffix="one")
    app.add_route(f"{V1}/tasks/{{task_id}}", task)
    app.add_route(f"{V1}/tasks/{{task_id}}/run", task, suffix="run")
    app.add_route(f"{V1}/tasks/{{task_id}}/stop", task, suffix="stop")
