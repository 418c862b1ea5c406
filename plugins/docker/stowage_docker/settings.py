"""The docker format's configuration sections (Nexus field names): ``docker`` and ``dockerProxy``."""

from __future__ import annotations

import enum
from typing import Any

from attrs import field, frozen

from stowage.plugin import Repository


def _v1_disabled(instance: Any, attribute: Any, value: bool) -> None:
    if value:
        raise ValueError("docker.v1Enabled: the V1 registry API is not supported; set it to false")


@frozen
class DockerSettings:
    """``docker`` section (Nexus field names). TLS is terminated by a reverse proxy; ``httpsPort`` and
    ``subdomain`` are kept for Nexus JSON compatibility and not used."""

    http_port: int | None = None
    https_port: int | None = None
    force_basic_auth: bool = False
    v1_enabled: bool = field(default=False, validator=_v1_disabled)
    subdomain: str | None = None
    #: Nexus's path-based routing switch; Stowage always also serves ``/v2/<repo>/...`` on the main port.
    path_enabled: bool | None = None


class IndexType(enum.Enum):
    REGISTRY = "REGISTRY"
    HUB = "HUB"
    CUSTOM = "CUSTOM"


@frozen
class DockerProxySettings:
    """``dockerProxy`` section: ``indexType=HUB`` adds Docker Hub's ``library/`` prefix to official images."""

    index_type: IndexType = IndexType.REGISTRY
    index_url: str | None = None
    cache_foreign_layers: bool = False
    foreign_layer_url_whitelist: tuple[str, ...] = ()


def port_of(config: Any) -> int | None:
    settings = config.section("docker")
    return settings.http_port if settings is not None else None


def settings_of(repository: Repository) -> DockerSettings:
    """The repository's ``docker`` section (its defaults when it has none)."""
    return repository.config.section("docker") or DockerSettings()
