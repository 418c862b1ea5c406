"""Resolvers find content and metadata for a repository, one strategy per repository type.

- :class:`HostedResolver`: the catalog is the truth; metadata is built from it.
- :class:`GroupResolver`: members in order; content from the first that has it; metadata merged.
- :class:`~stowage.proxy.ProxyResolver`: the remote, cached (see ``stowage.proxy``).
"""

from __future__ import annotations

import abc
import logging
import re
from typing import TYPE_CHECKING, Any, Callable, Iterable, Iterator, Sequence

from attrs import frozen

from stowage.errors import FormatUnavailable, NotFound, StowageError, UpstreamError
from stowage.models import Asset, AssetKind, RepositoryType
from stowage.registration import MetadataBuilder

if TYPE_CHECKING:
    from stowage.repository import Repository

log = logging.getLogger(__name__)


@frozen
class MemberDocument:
    """One group member's metadata document, as handed to :attr:`MetadataBuilder.merge`.

    :param origin: ``hosted`` when the document holds only hosted content (a hosted member, or a group
        of hosted members), ``proxy`` otherwise; the dependency-confusion guard keys on it.
    """

    repository: "Repository"
    document: Any
    origin: str


@frozen
class NameGuard:
    """The dependency-confusion guard for one merge: which names each member may contribute.

    A name that a hosted member of the group holds is never extended by a proxy member, unless it
    matches one of the group's ``group.allowProxyNames`` patterns (globs, or regexes prefixed ``re:``).
    Build it with :func:`guard_names`.
    """

    hosted_names: frozenset[str] | Callable[[str], bool]
    allow_proxy_names: tuple[str, ...]
    normalize: Callable[[str], str]

    def allows(self, member: MemberDocument, name: str) -> bool:
        """Whether ``member`` may contribute (versions of) ``name`` to the merged document."""
        return member.origin == "hosted" or self.allows_proxy(name)

    def allows_proxy(self, name: str) -> bool:
        """Whether a proxy member may serve ``name``: no hosted member holds it, or
        ``allowProxyNames`` frees it."""
        key = self.normalize(name)
        held = self.hosted_names(key) if callable(self.hosted_names) else key in self.hosted_names
        return not held or proxy_name_allowed(self.allow_proxy_names, name, key)

    def filter(self, member: MemberDocument, names: Iterable[str]) -> list[str]:
        """The names of ``names`` that ``member`` may contribute, in their order."""
        return [name for name in names if self.allows(member, name)]


def proxy_name_allowed(patterns: Iterable[str], *names: str) -> bool:
    """Whether one of ``patterns`` (``allowProxyNames``: globs, or regexes prefixed ``re:``) matches one
    of ``names`` (a format passes the name as written and its normalised form)."""
    from stowage.repository import _name_matches

    return any(_name_matches(pattern, name) for pattern in patterns for name in names)


def guard_names(members: Sequence[MemberDocument], names_of: Callable[[Any], Iterable[str]],
                allow_proxy_names: Iterable[str] = (), *,
                normalize: Callable[[str], str] | None = None) -> NameGuard:
    """The dependency-confusion guard for a group merge; call it from ``MetadataBuilder.merge``.

    :param members: the members' documents, as ``merge`` receives them.
    :param names_of: the artifact names a member's document holds (a packument: its one name; an index:
        every project it lists).
    :param allow_proxy_names: the group's ``config.group.allow_proxy_names``.
    :param normalize: how the format compares names (PEP 503 normalisation, lower-casing...).
    """
    normalize = normalize or (lambda name: name)
    hosted = frozenset(normalize(name) for member in members if member.origin == "hosted"
                       for name in names_of(member.document))
    return NameGuard(hosted, tuple(allow_proxy_names), normalize)


class Resolver(abc.ABC):
    #: whether documents may be cached on :meth:`revision_key` (False where a remote decides freshness).
    cacheable_documents = True

    def __init__(self, repository: "Repository"):
        self.repository = repository

    @abc.abstractmethod
    def resolve(self, path: str, kind: AssetKind = AssetKind.CONTENT, *, remote: bool = True,
                stream: bool = False) -> Asset | None:
        """The asset at ``path``, fetching or asking members as the strategy requires; None if absent.

        :param remote: False to answer from what is stored here without contacting any remote.
        :param stream: the caller only sends the body to a client (``RepoRequest.send_asset``): a proxy
            miss may then return an :class:`~stowage.proxy_flight.InFlightAsset` that streams while it
            downloads, instead of waiting for the commit.
        """

    @abc.abstractmethod
    def document(self, builder: MetadataBuilder, match: re.Match[str]) -> Any | None:
        """The builder's document for this repository, or None when there is none."""

    def keyed_document(self, builder: MetadataBuilder, match: re.Match[str], key: Any) -> Any | None:
        """:meth:`document`, given the :meth:`document_key` just computed for it (groups pass their
        members' keys on instead of computing them again)."""
        return self.document(builder, match)

    def cached(self, path: str, kind: AssetKind = AssetKind.CONTENT) -> Asset | None:
        """What is stored here for ``path`` and may be served now without asking any remote (a proxy's
        copy only while it is within its max age)."""
        return self.resolve(path, kind, remote=False)

    def revision_key(self) -> Any:
        """Changes whenever anything this repository serves may have changed (caches key on it)."""
        return self.repository.stowage.catalog.revision(self.repository.name)

    def document_key(self, builder: MetadataBuilder, match: re.Match[str]) -> Any:
        """Changes whenever :meth:`document` for ``builder``/``match`` may change (the metadata cache
        keys on it). Hosted: the catalog revision; proxy: the upstream copy (revalidated when stale);
        group: the members' keys in order."""
        return self.revision_key()

    def origin(self) -> str:
        return "hosted"


class HostedResolver(Resolver):
    def resolve(self, path: str, kind: AssetKind = AssetKind.CONTENT, *, remote: bool = True,
                stream: bool = False) -> Asset | None:
        return self.repository.stowage.catalog.get_asset(self.repository.name, path)

    def document(self, builder: MetadataBuilder, match: re.Match[str]) -> Any | None:
        return builder.build(self.repository, match)


class GroupResolver(Resolver):
    def members(self) -> Iterator["Repository"]:
        """Members in order; a member that is missing or whose format is gone is skipped, not fatal."""
        stowage = self.repository.stowage
        for name in self.repository.config.group.member_names:  # type: ignore[union-attr]
            try:
                member = stowage.repository(name)
            except (NotFound, FormatUnavailable):
                continue
            if member.config.online:
                yield member

    def download_guard(self) -> NameGuard:
        """The dependency-confusion guard for downloads through this group: the same rule as
        :func:`guard_names` applies to its merged indexes, with the hosted names asked of the format
        (:meth:`~stowage.formats.FormatHandler.holds_package`) instead of read from documents."""
        handler = self.repository.handler
        hosted = [m for m in self.members() if m.resolver.origin() == "hosted"]

        def held(name: str) -> bool:
            return any(handler.holds_package(leaf, name) for member in hosted for leaf in hosted_leaves(member))

        return NameGuard(held, tuple(self.repository.config.group.allow_proxy_names),  # type: ignore[union-attr]
                         lambda name: name)

    def serving_members(self, name: str | None) -> list["Repository"]:
        """The members that may serve content of package ``name`` (None: content of no package, e.g.
        raw files), in order: a proxy-origin member is left out when the guard hides ``name``."""
        members = list(self.members())
        if name is None or all(m.resolver.origin() == "hosted" for m in members):
            return members
        guard = self.download_guard()
        if guard.allows_proxy(name):
            return members
        return [m for m in members if m.resolver.origin() == "hosted"]

    def resolve(self, path: str, kind: AssetKind = AssetKind.CONTENT, *, remote: bool = True,
                stream: bool = False) -> Asset | None:
        name = self.repository.handler.package_name(path) if kind is AssetKind.CONTENT else None
        members = self.serving_members(name)
        # Every member's stored copy is asked before any remote is contacted: a local hit never waits on
        # an upstream. Metadata is excluded from that shortcut; it must be fresh, so order decides.
        if kind is AssetKind.CONTENT:
            for member in members:
                asset = member.resolver.cached(path, kind)
                if asset is not None:
                    return asset
            if not remote:
                return None
        failures: list[StowageError] = []
        for member in members:
            try:
                asset = member.resolver.resolve(path, kind, remote=remote, stream=stream)
            except NotFound:
                continue
            except StowageError as error:  # one failing remote must not hide the next member's copy
                failures.append(error)
                continue
            if asset is not None:
                return asset
        if failures:
            raise failures[0]
        return None

    def document(self, builder: MetadataBuilder, match: re.Match[str]) -> Any | None:
        return self.keyed_document(builder, match, None)

    def keyed_document(self, builder: MetadataBuilder, match: re.Match[str], key: Any) -> Any | None:
        member_keys = dict(key) if isinstance(key, tuple) else {}
        cache = self.repository.stowage.metadata_cache
        documents = []
        failures: list[StowageError] = []
        for member in self.members():
            try:
                if member.name in member_keys:
                    document = cache.get_or_build(member, builder, match, document_key=member_keys[member.name])
                else:
                    document = member.metadata_for(builder, match)
            except NotFound:
                continue
            except UpstreamError as error:
                # A remote that fails with nothing cached leaves its part out; the others still answer
                # (the merge is not cached then: the failing member's key never matches).
                log.warning("group %s: member %s left out of %s: %s", self.repository.name, member.name,
                            match.group(0), error.message)
                failures.append(error)
                continue
            if document is not None:
                documents.append(MemberDocument(member, document, member.resolver.origin()))
        if not documents:
            if failures:
                raise failures[0]
            return None
        return builder.merge(self.repository, match, documents)

    def revision_key(self) -> Any:
        return tuple((m.name, m.resolver.revision_key()) for m in self.members())

    def document_key(self, builder: MetadataBuilder, match: re.Match[str]) -> Any:
        return tuple((m.name, m.resolver.document_key(builder, match)) for m in self.members())

    @property
    def cacheable_documents(self) -> bool:  # type: ignore[override]
        return all(m.resolver.cacheable_documents for m in self.members())

    def origin(self) -> str:
        return "hosted" if all(m.resolver.origin() == "hosted" for m in self.members()) else "proxy"


def group_guard(group: "Repository") -> NameGuard:
    """The dependency-confusion guard of ``group`` as its downloads apply it (see
    :meth:`GroupResolver.download_guard`); a ``MetadataBuilder.merge`` whose document cannot name every
    hosted name itself (npm scopes) uses it so that the index and the downloads agree."""
    return GroupResolver(group).download_guard()


def member_leaves(repository: "Repository", name: str | None = None,
                  seen: set[str] | None = None) -> Iterator["Repository"]:
    """The hosted and proxy repositories behind ``repository``, in group order (itself when it is not a
    group; nested groups walked once). With ``name``: only those that may serve content of package
    ``name`` through each group on the way (the dependency-confusion guard,
    :meth:`GroupResolver.serving_members`)."""
    if repository.type is not RepositoryType.GROUP:
        yield repository
        return
    seen = set() if seen is None else seen
    for member in GroupResolver(repository).serving_members(name):
        if member.name not in seen:
            seen.add(member.name)
            yield from member_leaves(member, name, seen)


def hosted_leaves(repository: "Repository", seen: set[str] | None = None) -> Iterator["Repository"]:
    """The hosted repositories behind ``repository`` (itself when hosted; nested groups walked once)."""
    return (leaf for leaf in member_leaves(repository, None, seen) if leaf.type is RepositoryType.HOSTED)


def resolver_for(repository: "Repository") -> Resolver:
    if repository.type is RepositoryType.HOSTED:
        return HostedResolver(repository)
    if repository.type is RepositoryType.GROUP:
        return GroupResolver(repository)
    from stowage.proxy import ProxyResolver

    return ProxyResolver(repository)
