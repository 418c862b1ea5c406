"""The typed objects plugins return from registration hooks. Core validates them once, at start-up."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any, Callable, Mapping, Sequence

from attrs import field, frozen

from stowage.models import Asset, Component, RepositoryConfig, WritePolicy

if TYPE_CHECKING:
    import falcon

    from stowage.formats import FormatHandler
    from stowage.repository import Repository
    from stowage.plugin_app import App

#: The plugin API generation this core implements; a registration naming another is refused.
API_VERSION = 1

_FORMAT_NAME = re.compile(r"^[a-z][a-z0-9]*$")


def _check_format_name(instance: Any, attribute: Any, value: str) -> None:
    if not _FORMAT_NAME.match(value):
        raise ValueError(f"format name {value!r} must be lower-case letters and digits")


@frozen
class UploadField:
    """One field of ``POST /v1/components`` for a format, as ``GET /v1/formats/upload-specs`` lists it.

    :param name: the field name without the format prefix (``directory`` is sent as ``raw.directory``).
    :param type: ``STRING``, ``BOOLEAN`` or ``FILE`` (Nexus's names).
    """

    name: str
    type: str = "STRING"
    description: str = ""
    optional: bool = False


@frozen
class UploadSpec:
    """What ``POST /v1/components`` takes for a format (Nexus's ``UploadDefinitionXO``).

    :param component_fields: fields sent once per upload (``raw.directory``).
    :param asset_fields: fields sent per file, numbered when ``multiple_upload`` (``raw.asset1.filename``).
    :param multiple_upload: several files in one upload (``raw.asset1``, ``raw.asset2``...).
    """

    component_fields: tuple[UploadField, ...] = ()
    asset_fields: tuple[UploadField, ...] = ()
    multiple_upload: bool = False


@frozen
class Format:
    """A repository format (``raw``, ``pypi``...).

    :param name: the Nexus format name, used in URLs and ``POST /repositories/{format}/{type}``.
    :param handler: called once with the app object (:class:`~stowage.plugin_app.App`); returns the
        :class:`~stowage.formats.FormatHandler` that serves every repository of this format.
    :param settings: format-specific configuration sections, e.g. ``{"raw": RawSettings}``; each class
        is an attrs class whose fields use snake_case (camelCase in JSON and TOML).
    :param default_write_policy: what a hosted repository gets when ``storage.writePolicy`` is unset.
    :param port_of: for formats that can own a listener (docker's ``docker.httpPort``): the port a
        repository asks for, or None.
    :param expand_remote_url: applied by core to ``proxy.remoteUrl`` whenever a proxy repository of this
        format is created or updated (configuration file or REST API); returns the URL to store. Lets a
        format resolve a placeholder such as pypi's ``@pip-index@`` (the index pip on this machine uses)
        so that no host is hard-coded in a shared configuration. Must return other values unchanged.
    :param usage: ``usage(repository, base_url)`` returns the "how to use" text the web UI shows for a
        repository (client configuration, upload and download commands); ``base_url`` is the server's
        URL as the browser reached it, without a trailing slash. None: the UI's generic snippet.
    :param component_name: ``component_name(component)`` returns the component's name as the format's
        clients write it, for the web UI's browse and search pages (npm: ``@scope/name``, its group being
        the scope without ``@`` as in Nexus). None: ``group/name``, or ``name`` without a group.
    :param component_details: ``component_details(repository, component, assets)`` returns facts the web
        UI shows next to a component, label to text (docker: ``Digest``, ``Size``, ``Platforms``). Must
        read only what is stored (never a proxy's remote).
    :param search_components_only: the web UI's search lists only this format's assets that belong to a
        component (docker: images by tag, not their blobs and digest-addressed manifests).
    """

    name: str = field(validator=_check_format_name)
    handler: Callable[["App"], "FormatHandler"]
    settings: Mapping[str, type] = field(factory=dict)
    default_write_policy: WritePolicy = WritePolicy.ALLOW_ONCE
    port_of: Callable[[RepositoryConfig], int | None] | None = None
    expand_remote_url: Callable[[str], str] | None = None
    description: str = ""
    #: dotted paths of format settings that are secrets (``"yumSigning.keypair"``): the REST API never
    #: returns them, and an update that omits them keeps the stored values.
    secret_settings: tuple[str, ...] = ()
    api_version: int = API_VERSION
    usage: Callable[["Repository", str], str] | None = None
    #: per repository type (``"hosted"``, ``"proxy"``, ``"group"``), the settings sections Nexus's REST
    #: answers always carry for this format: a repository without one is answered with its defaults.
    answer_sections: Mapping[str, tuple[str, ...]] = field(factory=dict)
    #: the fields ``POST /v1/components`` takes for this format (``GET /v1/formats/upload-specs``); None
    #: when the format has no component upload (docker: push with a registry client).
    upload_spec: UploadSpec | None = None
    #: per repository type, the settings sections Nexus's schema requires in an update (``PUT``): an
    #: update without one is refused (400 naming it) instead of silently resetting it to defaults.
    required_sections: Mapping[str, tuple[str, ...]] = field(factory=dict)
    component_name: Callable[[Component], str] | None = None
    component_details: Callable[["Repository", Component, Sequence[Asset]], Mapping[str, str]] | None = None
    search_components_only: bool = False

    def label(self, component: Component) -> str:
        """A component's name as the format's clients write it: ``component_name`` when the format has
        one, else ``group/name`` (the UI, audit events and reports all name components this way)."""
        if self.component_name is not None:
            return self.component_name(component)
        return f"{component.group}/{component.name}" if component.group else component.name


def _compile(pattern: "str | re.Pattern[str]") -> "re.Pattern[str]":
    return re.compile(pattern) if isinstance(pattern, str) else pattern


@frozen
class Endpoint:
    """One endpoint of a format's protocol, declared so that core checks a request before the format's
    code runs: the caller's permission for the endpoint's action, then for a write the write policy
    (hosted only, online, not ``DENY``, ``ALLOW_ONCE`` where ``once``) and the name policy.

    A format lists its endpoints in :attr:`FormatHandler.endpoints
    <stowage.formats.FormatHandler.endpoints>`; they serve ``/repository/<repo>/...`` and the format's
    :class:`Route` s that ``locate`` a repository. The format's responder then reads what matched from
    ``request.endpoint``, ``request.params`` and ``request.action``. A path no endpoint matches is a 404,
    a method the endpoint does not list a 405: neither reaches the format.

    :param name: what the format dispatches on, e.g. ``manifest``.
    :param pattern: a regular expression that must match the whole path below the repository
        (``v2/(?P<name>.+)/manifests/(?P<reference>[^/]+)``); its named groups become ``request.params``.
    :param actions: per HTTP method, the :class:`~stowage.security.Action` it performs, or None for an
        endpoint that checks its callers itself (a token service, a login); core checks nothing then.
    :param artifact: the named group holding the artifact (package, image) name the name policy judges;
        None: :meth:`FormatHandler.artifact_name <stowage.formats.FormatHandler.artifact_name>` of the path.
    :param once: under ``ALLOW_ONCE`` a write to a path that exists is refused before its body is read.
        False where the path is content-addressed or the format decides on the body (a docker tag that a
        client pushes again with the same manifest is no update); the catalog still refuses, in the
        write's transaction, a replacement the policy forbids (:meth:`Repository.record
        <stowage.repository.Repository.record>`).
    """

    name: str
    pattern: "re.Pattern[str]" = field(converter=_compile)
    actions: Mapping[str, Any]
    artifact: str | None = None
    once: bool = True

    def __attrs_post_init__(self) -> None:
        if not self.actions or any(not method.isupper() for method in self.actions):
            raise ValueError(f"endpoint {self.name}: actions maps upper-case HTTP methods, e.g. 'GET'")
        if self.artifact is not None and self.artifact not in self.pattern.groupindex:
            raise ValueError(f"endpoint {self.name}: artifact {self.artifact!r} is not a named group of its pattern")

    def match(self, path: str) -> "re.Match[str] | None":
        return self.pattern.fullmatch(path)


@frozen
class Located:
    """What :attr:`Route.locate` found in a request: the repository and the path below it.

    :param repository: the repository's name, as the client wrote it.
    :param path: the path below the repository, as the format's :class:`Endpoint` patterns see it.
    """

    repository: str
    path: str


@frozen
class Route:
    """An extra Falcon route on the main listener (and on repository listeners when ``on_ports``).

    A route that serves a format's repositories outside ``/repository/<repo>/`` (docker's ``/v2/...``)
    names the ``format`` and how to ``locate`` the repository in a request; core then does for it what it
    does under ``/repository/``: authenticate the caller, find the repository (one 401 for an anonymous
    caller whether it exists or not, when anonymous access is off), match the format's
    :class:`Endpoint` s and check permission, write policy and name policy, all before the resource's
    responder runs. The responder finds the checked :class:`~stowage.http.request.RepoRequest` in
    ``req.context.repo_request``; errors core raises are the format's
    (:meth:`FormatHandler.translate_error <stowage.formats.FormatHandler.translate_error>`,
    :meth:`FormatHandler.render_error <stowage.formats.FormatHandler.render_error>`).

    :param path: a Falcon URI template, e.g. ``/v2/{rest:path}``.
    :param resource: called once with the app object; returns a Falcon resource (``on_get``...).
    :param on_ports: also serve this route on listeners a repository owns (``Format.port_of``).
    :param format: the format whose repositories ``locate`` finds; a repository of another format is
        unknown here.
    :param locate: ``locate(req, params)`` with Falcon's URI parameters: the :class:`Located`
        repository and path, or None for a request that addresses no repository (a base URL, a token
        service), which the resource serves unchecked as a plain Falcon responder.
    """

    path: str
    resource: Callable[["App"], object]
    name: str = ""
    on_ports: bool = False
    api_version: int = API_VERSION
    format: str | None = None
    locate: "Callable[[falcon.Request, Mapping[str, str]], Located | None] | None" = None

    def __attrs_post_init__(self) -> None:
        if (self.locate is None) != (self.format is None):
            raise ValueError(f"route {self.path}: locate and format go together")


@frozen
class MetadataBuilder:
    """Produces a format's metadata document for a path, for each repository type.

    The engine picks the builder whose ``pattern`` matches the whole request path, then:

    - hosted: ``build(repository, match)`` makes the document from the catalog (None: not found);
    - proxy: the upstream's document (fetched as metadata, cached with ``metadataMaxAge``) is parsed by
      ``parse(repository, match, stream)`` into the same document model, with links rewritten;
    - group: each member's document is computed in member order and ``merge(repository, match,
      members)`` combines them; ``members`` is a list of :class:`~stowage.resolver.MemberDocument`.

    Documents are cached per repository revision, so ``build`` and ``merge`` run once per change.

    :param upstream_path: the path to fetch from the remote (default: the request path).
    """

    format: str
    name: str
    pattern: re.Pattern[str] = field(converter=lambda p: re.compile(p) if isinstance(p, str) else p)
    build: Callable[..., Any]
    merge: Callable[..., Any]
    parse: Callable[..., Any] | None = None
    upstream_path: Callable[[re.Match[str]], str] | None = None
    api_version: int = API_VERSION


@frozen
class MetadataProblem:
    """One way a format's generated metadata disagrees with its assets, found by a :class:`MetadataCheck`.

    :param path: the metadata file (or asset) that is wrong, e.g. ``repodata/repomd.xml``.
    :param message: what is wrong, one line, e.g. ``lists 2 packages, the repository has 3``.
    """

    path: str
    message: str


@frozen
class MetadataCheck:
    """Checks (and can repair) a format's generated metadata, for ``stowage verify`` and ``blobstore.verify``.

    ``check(repository)`` runs against a consistent catalog snapshot (``repository.stowage`` is the
    snapshot; its blob stores are the live ones) and returns the :class:`MetadataProblem` s it finds. A
    change that is merely not processed yet (a regeneration still pending) is not a problem.

    ``repair(repository, problems)`` runs against the live server with the problems found in that
    repository (a format may also get the broken-blob findings of its generated metadata files) and
    returns ``{path: what was done}`` for the ones it repaired, e.g. by regenerating the metadata.

    :param format: the format whose repositories this checks.
    :param name: a short name for reports, e.g. ``yum-repodata``.
    """

    format: str
    name: str
    check: Callable[["Repository"], Any]
    repair: Callable[["Repository", list[MetadataProblem]], Mapping[str, str]] | None = None
    api_version: int = API_VERSION


_TASK_TYPE = re.compile(r"^[a-z][a-z0-9]*(\.[a-z0-9-]+)+$")


def _check_task_type(instance: Any, attribute: Any, value: str) -> None:
    if not _TASK_TYPE.match(value):
        raise ValueError(f"task type {value!r} must be dotted lower-case words, e.g. 'yum.rebuild-metadata'")


#: the arguments a task's ``run`` may name (it is called with the ones it names, as pluggy calls hooks).
TASK_RUN_ARGUMENTS = ("stowage", "context")
#: what a task property holds (Nexus's form field types).
TASK_PROPERTY_TYPES = ("string", "integer", "boolean", "repository", "blobstore")


def _check_run(instance: Any, attribute: Any, value: Callable[..., Any]) -> None:
    import inspect

    try:
        parameters = inspect.signature(value).parameters
    except (TypeError, ValueError):
        return
    unknown = [name for name, p in parameters.items()
               if name not in TASK_RUN_ARGUMENTS and p.default is inspect.Parameter.empty
               and p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)]
    if unknown:
        raise ValueError(f"task run function takes {', '.join(unknown)}; it may name only "
                         f"{', '.join(TASK_RUN_ARGUMENTS)}")


@frozen
class TaskProperty:
    """One setting of a task type (Nexus's task ``properties``; values travel as strings).

    :param id: the key in ``properties``, e.g. ``repositoryName``.
    :param label: what a form shows.
    :param type: one of :data:`TASK_PROPERTY_TYPES`; ``integer`` and ``boolean`` values are checked,
        ``repository`` and ``blobstore`` must name an existing one.
    :param required: a task of this type cannot be created without it.
    :param default: the value a template offers (a string, as Nexus sends them).
    """

    id: str
    label: str = ""
    type: str = field(default="string", validator=lambda i, a, v: _check_property_type(v))
    required: bool = False
    default: str | None = None


def _check_property_type(value: str) -> None:
    if value not in TASK_PROPERTY_TYPES:
        raise ValueError(f"task property type {value!r} must be one of {', '.join(TASK_PROPERTY_TYPES)}")


@frozen
class Task:
    """A maintenance task *type*, offered by ``GET /service/rest/v1/tasks/templates``.

    Administrators create tasks of a type (``POST /service/rest/v1/tasks``), each with its own id, name,
    schedule and property values; several tasks of one type may exist. A type whose properties are all
    optional also gets one task at first start whose id is the type itself (so ``POST
    /tasks/blobstore.compact/run`` works out of the box), scheduled by ``default_schedule``.

    A run holds the catalog lease ``task:<id>``, so one task runs on one node or worker at a time; its
    state, progress and outcome are kept in the catalog.

    :param type: the Nexus task type id, e.g. ``blobstore.compact``; unique across plugins.
    :param name: what the task list shows.
    :param run: called in a background thread with the arguments it names: ``stowage`` (the app
        object) and ``context`` (a :class:`~stowage.tasks.TaskContext`: ``properties``,
        ``progress(message)``, ``check_stopped()``). Returns a one-line summary (the task's
        ``message``) or raises to mark the run FAILED.
    :param properties: the settings a task of this type takes.
    :param default_schedule: the schedule (``manual``, ``hourly``, ``daily``...) of the task created at
        first start; None: no task is created by default.
    :param interval: deprecated spelling of ``default_schedule``: ``hourly`` up to 3600 s, else ``daily``.
    """

    type: str = field(validator=_check_task_type)
    name: str
    run: Callable[..., str | None] = field(validator=_check_run)
    interval: float | None = None
    properties: tuple[TaskProperty, ...] = field(default=(), converter=tuple)
    default_schedule: str | None = "manual"
    api_version: int = API_VERSION

    @property
    def initial_schedule(self) -> str | None:
        """The schedule of the task created at first start (None: none is created)."""
        if any(p.required for p in self.properties):
            return None
        if self.interval:
            return "hourly" if self.interval <= 3600 else "daily"
        return self.default_schedule


def _check_job_name(instance: Any, attribute: Any, value: str) -> None:
    if not _TASK_TYPE.match(value):
        raise ValueError(f"background job name {value!r} must be dotted lower-case words, e.g. 'yum.repodata'")


def _check_positive(instance: Any, attribute: Any, value: float) -> None:
    if value <= 0:
        raise ValueError(f"{attribute.name} must be positive, not {value!r}")


def _check_not_negative(instance: Any, attribute: Any, value: float) -> None:
    if value < 0:
        raise ValueError(f"{attribute.name} must not be negative, not {value!r}")


@frozen
class BackgroundJob:
    """Work a format does in the background per repository (and key), e.g. regenerating an index.

    Requested with ``BackgroundWork.of(stowage).request(name, repository, key, item=...)`` in the
    transaction of the change; coalesced, run by one process at a time under a catalog lease, and
    resumed by another process when the one running it dies (see :mod:`stowage.background`).

    :param name: dotted lower-case words, e.g. ``yum.repodata``; unique across plugins.
    :param run: ``run(work)`` with a :class:`~stowage.background.Work` (``repository``, ``key``,
        ``items``, ``force``, ``again(after)``, ``lease_lost``); raises to have the run retried later.
        Must be idempotent.
    :param delay: seconds without a new request before a run starts (a burst becomes one run).
    :param max_delay: a key requested continuously still runs this long after its first request.
    :param lease_seconds: how long a crashed process's run blocks the key before another takes over
        (a live run renews its lease every third of it).
    :param max_items: past this many requested items a run is told "everything" (``items`` None).
    """

    name: str = field(validator=_check_job_name)
    run: Callable[..., None]
    delay: float = field(default=2.0, validator=_check_not_negative)
    max_delay: float = field(default=30.0, validator=_check_positive)
    lease_seconds: float = field(default=30.0, validator=_check_positive)
    max_items: int = field(default=1000, validator=_check_positive)
    api_version: int = API_VERSION


@frozen
class PluginFailure:
    """A plugin that could not be loaded or registered: reported, never silent."""

    name: str
    error: str
