"""Resolvers find content and metadata for a repository, one strategy per repository type.

- :class:`HostedResolver`: the catalog is the truth; metadata is built from it.
- :class:`GroupResolver`: members in order; content from the first that has it; metadata merged.
- :class:`~stowage.proxy.ProxyResolver`: the remote, cached (see ``stowage.proxy``).
"""

from __future__ import annotations

import abc
import re
from typing import TYPE_CHECKING, Any, Iterator

from attrs import frozen

from stowage.errors import FormatUnavailable, NotFound, StowageError
from stowage.models import Asset, AssetKind, RepositoryType
from stowage.registration import MetadataBuilder

if TYPE_CHECKING:
    from stowage.repository import Repository


@frozen
class MemberDocument:
    """One group member's metadata document, as handed to :attr:`MetadataBuilder.merge`.

    :param origin: ``hosted`` when the document holds only hosted content (a hosted member, or a group
        of hosted members), ``proxy`` otherwise; the dependency-confusion guard keys on it.
    """

    repository: "Repository"
    document: Any
    origin: str


class Resolver(abc.ABC):
    #: whether documents may be cached on :meth:`revision_key` (False where a remote decides freshness).
    cacheable_documents = True

    def __init__(self, repository: "Repository"):
        self.repository = repository

    @abc.abstractmethod
    def resolve(self, path: str, kind: AssetKind = AssetKind.CONTENT, *, remote: bool = True) -> Asset | None:
        """The asset at ``path``, fetching or asking members as the strategy requires; None if absent.

        :param remote: False to answer from what is stored here without contacting any remote.
        """

    @abc.abstractmethod
    def document(self, builder: MetadataBuilder, match: re.Match[str]) -> Any | None:
        """The builder's document for this repository, or None when there is none."""

    def revision_key(self) -> Any:
        """Changes whenever anything this repository serves may have changed (caches key on it)."""
        return self.repository.stowage.catalog.revision(self.repository.name)

    def origin(self) -> str:
        return "hosted"


class HostedResolver(Resolver):
    def resolve(self, path: str, kind: AssetKind = AssetKind.CONTENT, *, remote: bool = True) -> Asset | None:
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

    def resolve(self, path: str, kind: AssetKind = AssetKind.CONTENT, *, remote: bool = True) -> Asset | None:
        members = list(self.members())
        # Every member's stored copy is asked before any remote is contacted: a local hit never waits on
        # an upstream. Metadata is excluded from that shortcut; it must be fresh, so order decides.
        if kind is AssetKind.CONTENT:
            for member in members:
                asset = member.resolver.resolve(path, kind, remote=False)
                if asset is not None:
                    return asset
            if not remote:
                return None
        failures: list[StowageError] = []
        for member in members:
            try:
                asset = member.resolver.resolve(path, kind, remote=remote)
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
        documents = []
        for member in self.members():
            try:
                document = member.metadata_for(builder, match)
            except NotFound:
                continue
            if document is not None:
                documents.append(MemberDocument(member, document, member.resolver.origin()))
        if not documents:
            return None
        return builder.merge(self.repository, match, documents)

    def revision_key(self) -> Any:
        return tuple((m.name, m.resolver.revision_key()) for m in self.members())

    @property
    def cacheable_documents(self) -> bool:  # type: ignore[override]
        return all(m.resolver.cacheable_documents for m in self.members())

    def origin(self) -> str:
        return "hosted" if all(m.resolver.origin() == "hosted" for m in self.members()) else "proxy"


def resolver_for(repository: "Repository") -> Resolver:
    if repository.type is RepositoryType.HOSTED:
        return HostedResolver(repository)
    if repository.type is RepositoryType.GROUP:
        return GroupResolver(repository)
    from stowage.proxy import ProxyResolver

    return ProxyResolver(repository)
