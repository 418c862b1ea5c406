"""``/admin/cleanup`` (cleanup policies with their preview) and ``/admin/tasks`` (tasks: list, create,
schedule, run now, stop, last result), over ``/service/rest/v1/cleanup-policies`` and ``/tasks``."""

from __future__ import annotations

import datetime
from typing import TYPE_CHECKING, Any

from stowage.cleanup_policies import CleanupPolicies, ReleaseType
from stowage.errors import NotFound
from stowage.models import RepositoryType
from stowage.schedules import SCHEDULES
from stowage.tasks import TaskRunner
from stowage.ui.admin import ADMIN, V1, AdminPages
from stowage.ui.forms import checkbox, field_id, rest_form, select, text_field
from stowage.ui.page import Site, esc

if TYPE_CHECKING:
    from stowage.registration import Task

CLEANUP = ADMIN + "/cleanup"
TASKS = ADMIN + "/tasks"


class CleanupAdminResource(AdminPages):
    page, section = CLEANUP, "/cleanup"

    def dispatch(self, site: Site, parts: list[str]) -> tuple[str, str]:
        policies = CleanupPolicies.of(self.stowage)
        if not parts:
            return "Cleanup policies", self._list(site, policies)
        if parts == ["new"]:
            return "Create cleanup policy", self._form(site, None)
        if len(parts) == 1:
            return f"Cleanup policy {parts[0]}", self._form(site, policies.get(parts[0]).to_json())
        raise NotFound("no such page")

    def _list(self, site: Site, policies: CleanupPolicies) -> str:
        used: dict[str, list[str]] = {}
        for repository in self.stowage.repositories():
            for name in (repository.config.cleanup.policy_names if repository.config.cleanup else ()):
                used.setdefault(name, []).append(repository.name)
        rows = []
        for policy in sorted(policies.all(), key=lambda p: p.name):
            doc = policy.to_json()
            criteria = [f"{label} {doc[key]}" for key, label in (
                ("criteriaLastBlobUpdated", "published more than (days):"),
                ("criteriaLastDownloaded", "not downloaded for (days):"),
                ("criteriaReleaseType", "release type:"), ("criteriaAssetRegex", "path matches:"),
                ("retain", "keep newest:")) if doc.get(key) not in (None, "")]
            rows.append(f'<tr><td><a href="{esc(site.link(CLEANUP + "/" + policy.name))}">{esc(policy.name)}</a></td>'
                        f"<td>{esc(doc['format'])}</td><td>{esc('; '.join(criteria))}</td>"
                        f"<td>{esc(', '.join(used.get(policy.name, [])) or '—')}</td></tr>")
        table = ('<div class="table-wrap"><table><thead><tr><th>Policy</th><th>Format</th><th>Criteria</th>'
                 f'<th>Repositories</th></tr></thead><tbody>{"".join(rows)}</tbody></table></div>' if rows else
                 '<p class="muted">No cleanup policies yet.</p>')
        return (f'<p><a class="button" href="{esc(site.link(CLEANUP + "/new"))}">Create cleanup policy</a></p>{table}'
                '<p class="muted">A repository uses a policy when its <code>cleanup.policyNames</code> names it '
                '(Administration → Repositories → Edit); the cleanup task applies them.</p>')

    def _form(self, site: Site, policy: dict[str, Any] | None) -> str:
        creating = policy is None
        doc = policy or {}
        formats = [("*", "all formats")] + [(f, f) for f in sorted(self.stowage.plugins.formats)]
        fields = (text_field("Name", "name", doc.get("name", ""), required=True, readonly=not creating)
                  + select("Format", "format", formats, doc.get("format", "*"))
                  + text_field("Notes", "notes", doc.get("notes") or "", optional=True)
                  + text_field("Published before (days)", "criteriaLastBlobUpdated",
                               doc.get("criteriaLastBlobUpdated"), kind="number", optional=True,
                               hint="Components last updated more than this many days ago.")
                  + text_field("Last downloaded before (days)", "criteriaLastDownloaded",
                               doc.get("criteriaLastDownloaded"), kind="number", optional=True,
                               hint="Components not downloaded for this many days (never downloaded counts "
                                    "from their upload).")
                  + select("Release type", "criteriaReleaseType",
                           [("", "any")] + [(t.value, t.value) for t in ReleaseType],
                           doc.get("criteriaReleaseType") or "", optional=True)
                  + text_field("Asset path matches (regex)", "criteriaAssetRegex",
                               doc.get("criteriaAssetRegex") or "", optional=True)
                  + text_field("Keep the newest", "retain", doc.get("retain"), kind="number", optional=True,
                               hint="Versions of each component name kept whatever the other criteria say."))
        candidates = [(r.name, r.name) for r in self.stowage.repositories() if r.type is not RepositoryType.GROUP]
        target = select("Preview against", "repository", candidates, candidates[0][0] if candidates else "",
                        hint="The repository the preview lists removals from (nothing is removed).")
        target = target.replace(f'id="{field_id("repository")}"',
                                f'id="{field_id("repository")}" data-only-with="preview-button"', 1)
        preview = ('<button type="submit" id="preview-button" class="secondary" '
                   f'data-url="{esc(site.link(V1 + "/cleanup-policies/preview"))}" data-method="POST" '
                   'data-result="preview-result">Preview</button>')
        if creating:
            form = rest_form(site, method="POST", url=f"{V1}/cleanup-policies", body=fields + target,
                             submit="Create policy", next_url=site.link(CLEANUP), extra_buttons=preview)
        else:
            form = rest_form(site, method="PUT", url=f"{V1}/cleanup-policies/{doc['name']}", body=fields + target,
                             submit="Save", next_url=site.link(CLEANUP), extra_buttons=preview)
        html = form + '<section aria-live="polite" id="preview-result" class="preview"></section>'
        if not creating:
            html += "<h2>Delete</h2>" + rest_form(
                site, method="DELETE", url=f"{V1}/cleanup-policies/{doc['name']}", body="", danger=True,
                submit=f"Delete policy {doc['name']}", next_url=site.link(CLEANUP),
                confirm=f"Delete cleanup policy {doc['name']}?")
        return html


def _when(value: str | None) -> str:
    return value.replace("T", " ").replace("Z", " UTC").split(".")[0] if value else ""


class TasksAdminResource(AdminPages):
    page, section = TASKS, "/tasks"

    def dispatch(self, site: Site, parts: list[str]) -> tuple[str, str]:
        runner = TaskRunner.of(self.stowage)
        if not parts:
            return "Tasks", self._list(site, runner)
        if parts == ["new"]:
            items = "".join(f'<li><a href="{esc(site.link(TASKS + "/new/" + type_id))}">{esc(t.name)}'
                            f' <span class="muted">({esc(type_id)})</span></a></li>'
                            for type_id, t in sorted(runner.types.items()))
            return "Create task", f'<ul class="choices">{items}</ul>'
        if len(parts) == 2 and parts[0] == "new":
            task_type = runner.task_type(parts[1])
            return f"Create task: {task_type.name}", self._form(site, task_type, None)
        if len(parts) == 1:
            task = runner.describe(runner.get(parts[0]), full=True)
            return f"Task {task['name']}", self._detail(site, runner, task)
        raise NotFound("no such page")

    def _list(self, site: Site, runner: TaskRunner) -> str:
        rows = []
        for stored in sorted(runner.tasks(), key=lambda t: (t["type"], t["name"], t["id"])):
            task = runner.describe(stored, full=True)
            running = task["currentState"] == "RUNNING"
            action = rest_form(site, method="POST", url=f"{V1}/tasks/{task['id']}/{'stop' if running else 'run'}",
                               body="", submit="Stop" if running else "Run now", css="inline",
                               next_url=site.link(TASKS))
            result = task.get("lastRunResult") or ""
            badge = {"OK": "ok", "FAILED": "bad"}.get(result, "warn")
            result_cell = f'<span class="badge {badge}">{esc(result)}</span>' if result else ""
            rows.append(f'<tr><td><a href="{esc(site.link(TASKS + "/" + task["id"]))}">{esc(task["name"])}</a></td>'
                        f"<td>{esc(task['type'])}</td><td>{esc(task['frequency'].get('schedule', 'manual'))}</td>"
                        f"<td>{esc(task['currentState'])}</td><td class='when'>{esc(_when(task['lastRun']))}</td>"
                        f"<td>{result_cell}</td>"
                        f"<td class='when'>{esc(_when(task['nextRun']))}</td><td>{esc(task.get('message') or '')}</td>"
                        f"<td>{action}</td></tr>")
        return (f'<p><a class="button" href="{esc(site.link(TASKS + "/new"))}">Create task</a></p>'
                '<div class="table-wrap"><table><thead><tr><th>Name</th><th>Type</th><th>Schedule</th><th>State</th>'
                '<th>Last run</th><th>Result</th><th>Next run</th><th>Message</th><th>Actions</th></tr></thead>'
                f'<tbody>{"".join(rows)}</tbody></table></div>')

    def _detail(self, site: Site, runner: TaskRunner, task: dict[str, Any]) -> str:
        running = task["currentState"] == "RUNNING"
        state = (f"<p>State <b>{esc(task['currentState'])}</b> · last run {esc(_when(task['lastRun']) or 'never')}"
                 f" {esc(task.get('lastRunResult') or '')} · next run {esc(_when(task['nextRun']) or '—')}</p>"
                 f"<p class='muted'>{esc(task.get('message') or '')}</p>")
        run = rest_form(site, method="POST", url=f"{V1}/tasks/{task['id']}/{'stop' if running else 'run'}", body="",
                        submit="Stop" if running else "Run now", css="inline",
                        next_url=site.link(TASKS + "/" + task["id"]))
        form = self._form(site, runner.task_type(task["type"]), task)
        delete = "<h2>Delete</h2>" + rest_form(
            site, method="DELETE", url=f"{V1}/tasks/{task['id']}", body="", danger=True,
            submit=f"Delete task {task['name']}", next_url=site.link(TASKS), confirm=f"Delete task {task['name']}?")
        return state + run + "<h2>Settings</h2>" + form + delete

    def _form(self, site: Site, task_type: "Task", task: dict[str, Any] | None) -> str:
        creating = task is None
        doc = task or {"name": task_type.name, "enabled": True, "frequency": {"schedule": "manual"},
                       "properties": {p.id: p.default or "" for p in task_type.properties}}
        frequency = doc.get("frequency") or {}
        start = frequency.get("startDate")
        start_text = (datetime.datetime.fromtimestamp(float(start), tz=datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M")
                      if start else "")
        props = []
        for prop in task_type.properties:
            name, value = f"properties.{prop.id}", (doc.get("properties") or {}).get(prop.id, prop.default or "")
            label = prop.label or prop.id
            if prop.type == "repository":
                options = [("", "(choose)")] + [(r.name, r.name) for r in self.stowage.repositories()]
                props.append(select(label, name, options, value, optional=not prop.required))
            elif prop.type == "blobstore":
                options = [("", "(choose)")] + [(b, b) for b in sorted(self.stowage.blob_stores())]
                props.append(select(label, name, options, value, optional=not prop.required))
            elif prop.type == "boolean":
                props.append(select(label, name, [("true", "yes"), ("false", "no")], value or "false"))
            else:
                props.append(text_field(label, name, value, required=prop.required, optional=not prop.required))
        fields = (f'<input type="hidden" name="type" value="{esc(task_type.type)}">'
                  + text_field("Name", "name", doc.get("name", ""), required=True)
                  + checkbox("Enabled", "enabled", bool(doc.get("enabled", True)),
                             hint="A disabled task runs only when started by hand.")
                  + select("Schedule", "frequency.schedule", [(s, s) for s in SCHEDULES],
                           frequency.get("schedule", "manual"))
                  + text_field("Start (UTC)", "frequency.startDate", start_text, kind="datetime-local", optional=True,
                               hint="First run, and the time of day of daily/weekly/monthly runs.")
                  + text_field("Days", "frequency.recurringDays",
                               " ".join(str(d) for d in frequency.get("recurringDays") or ()), optional=True,
                               hint="Weekly: 1 (Sunday) to 7 (Saturday); monthly: days of the month.")
                  .replace('name="frequency.recurringDays"', 'name="frequency.recurringDays" data-type="intlist"')
                  + text_field("Cron expression", "frequency.cronExpression", frequency.get("cronExpression") or "",
                               optional=True, hint="Quartz: sec min hour day-of-month month day-of-week.")
                  + "".join(props))
        if creating:
            return rest_form(site, method="POST", url=f"{V1}/tasks", body=fields, submit="Create task",
                             next_url=site.link(TASKS))
        return rest_form(site, method="PUT", url=f"{V1}/tasks/{task['id']}",  # type: ignore[index]
                         body=fields, submit="Save", next_url=site.link(TASKS))
