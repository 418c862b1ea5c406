"""The npm format: registration with core (format, metadata builders)."""

from __future__ import annotations

from attrs import frozen

from stowage.plugin import Component, Format, MetadataBuilder, UploadSpec, WritePolicy, hookimpl

from stowage_npm.handler import NpmHandler
from stowage_npm.names import CORGI_PATH, PACKUMENT_PATH
from stowage_npm.packument import build_hosted, merge_members, parse_upstream
from stowage_npm.upstream import expand_remote_url


@frozen
class NpmSettings:
    """The ``npm`` section of a repository (Nexus has none with behaviour; kept for forward compatibility)."""

    remove_non_cataloged: bool = False
    remove_quarantined: bool = False


def package_name(component: Component) -> str:
    """``@scope/name`` as npm writes it (the component's group is the scope without ``@``, as in Nexus)."""
    return f"@{component.group}/{component.name}" if component.group else component.name


@hookimpl
def stowage_register_formats() -> list[Format]:
    return [Format(name="npm", handler=NpmHandler, settings={"npm": NpmSettings},
                   answer_sections={"proxy": ("npm",)}, upload_spec=UploadSpec(),
                   default_write_policy=WritePolicy.ALLOW_ONCE, expand_remote_url=expand_remote_url,
                   component_name=package_name,
                   description="npm registries: publish, dist-tags, tokens; proxy and group with merged "
                               "packuments.")]


@hookimpl
def stowage_register_metadata_builders() -> list[MetadataBuilder]:
    return [MetadataBuilder(format="npm", name="packument", pattern=PACKUMENT_PATH, build=build_hosted,
                            merge=merge_members, parse=parse_upstream),
            MetadataBuilder(format="npm", name="packument-abbreviated", pattern=CORGI_PATH, build=build_hosted,
                            merge=merge_members, parse=parse_upstream)]


@hookimpl
def stowage_register_metadata_checks() -> list:
    from stowage_npm.verify import metadata_checks

    return metadata_checks()
