"""``/service/rest/v1/tasks``: list, read, run. Admin only. Runs are asynchronous (204), as in Nexus."""

from __future__ import annotations

from typing import TYPE_CHECKING

import falcon

from stowage.rest import V1
from stowage.rest.access import require_admin
from stowage.tasks import TaskRunner

if TYPE_CHECKING:
    from stowage.stowage import Stowage


class TasksResource:
    def __init__(self, stowage: "Stowage"):
        self.stowage = stowage

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        require_admin(req, self.stowage)
        runner = TaskRunner.of(self.stowage)
        wanted = req.get_param("type")
        resp.media = {"items": [runner.describe(t) for _, t in sorted(runner.tasks.items())
                                if wanted is None or t.type == wanted],
                      "continuationToken": None}


class TaskResource:
    def __init__(self, stowage: "Stowage"):
        self.stowage = stowage

    def on_get(self, req: falcon.Request, resp: falcon.Response, task_id: str) -> None:
        require_admin(req, self.stowage)
        runner = TaskRunner.of(self.stowage)
        resp.media = runner.describe(runner.get(task_id))

    def on_post_run(self, req: falcon.Request, resp: falcon.Response, task_id: str) -> None:
        require_admin(req, self.stowage)
        runner = TaskRunner.of(self.stowage)
        runner.start(runner.get(task_id))
        resp.status = falcon.HTTP_204


def register(app: falcon.App, stowage: "Stowage") -> None:
    task = TaskResource(stowage)
    app.add_route(f"{V1}/tasks", TasksResource(stowage))
    app.add_route(f"{V1}/tasks/{{task_id}}", task)
    app.add_route(f"{V1}/tasks/{{task_id}}/run", task, suffix="run")
