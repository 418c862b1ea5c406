"""pytest fixtures for Stowage and its plugins (loaded through the ``pytest11`` entry point).

- ``stowage_factory(**kwargs)``: build a :class:`~stowage.testing.TestStowage` in a fresh data dir;
  ``plugins=[...]``, ``load_entrypoints=False`` to test a plugin alone, ``repositories=[...]``.
- ``stowage_app``: one built with every installed plugin.
- ``stowage_server``: ``stowage_app`` served by waitress on a free loopback port (``.url``).
- ``live_server_factory(test_stowage)``: serve any built app.
- ``fault_upstream``: a started :class:`~stowage.testing.upstream.FaultUpstream` (a real HTTP upstream
  on loopback with an access log and switchable faults) for proxy tests; ``fault_upstream_factory()``
  for more than one.
- ``s3_server``: an S3 API server on loopback (moto in server mode; ``STOWAGE_TEST_S3_ENDPOINT`` etc. to
  use MinIO instead) as a :class:`~stowage.testing.s3.S3TestServer`; ``s3_bucket``: a fresh bucket there.
- ``postgres_server``: a :class:`~stowage.testing.postgres.PostgresServer` for the whole session
  (skipped where PostgreSQL is not installed, except under ``CI``, where that is an error).
- ``postgres_catalog_url``: the URL of a fresh database holding the migrated, empty catalog.
- ``slapd``: a started :class:`~stowage.testing.slapd.SlapdServer` (Debian's OpenLDAP ``slapd`` on a free
  loopback port, loaded with people and groups; ``.stop()``/``.start()`` simulate an outage);
  ``stowage.testing.slapd.use_directory(test_stowage, slapd)`` points an app at it.

With ``STOWAGE_TEST_CATALOG=postgresql`` in the environment, ``stowage_factory`` builds every app on the
PostgreSQL catalog (a fresh database per data directory) instead of SQLite.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator

import pytest

from stowage.settings import CatalogSettings
from stowage.testing.postgres import PostgresServer, postgres_bin_dir
from stowage.testing.harness import ADMIN_PASSWORD, LiveServer, TestStowage, build_stowage
from stowage.testing.slapd import SlapdServer
from stowage.testing.upstream import FaultUpstream

if TYPE_CHECKING:
    from stowage.testing.s3 import S3TestServer


@pytest.fixture
def stowage_factory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                    request: pytest.FixtureRequest) -> Iterator[Callable[..., TestStowage]]:
    monkeypatch.setenv("STOWAGE_ADMIN_PASSWORD", ADMIN_PASSWORD)
    built: list[TestStowage] = []
    counter = iter(range(1_000_000))
    # STOWAGE_TEST_CATALOG=postgresql runs the tests on the PostgreSQL catalog: one database per data
    # directory, so two apps built on one data directory share their catalog as they would on SQLite.
    databases: dict[Path, str] = {}

    def factory(**kwargs: Any) -> TestStowage:
        data_dir = kwargs.pop("data_dir", None) or tmp_path / f"stowage-{next(counter)}"
        if os.environ.get("STOWAGE_TEST_CATALOG") == "postgresql" and "catalog" not in kwargs:
            if Path(data_dir) not in databases:
                databases[Path(data_dir)] = request.getfixturevalue("postgres_server").new_database(
                    template=request.getfixturevalue("_postgres_catalog_template"))
            kwargs["catalog"] = CatalogSettings(type="postgresql", url=databases[Path(data_dir)], pool_size=8)
        test_stowage = build_stowage(Path(data_dir), **kwargs)
        built.append(test_stowage)
        return test_stowage

    yield factory
    for test_stowage in built:
        test_stowage.stowage.close()


@pytest.fixture
def stowage_app(stowage_factory: Callable[..., TestStowage]) -> TestStowage:
    return stowage_factory()


@pytest.fixture
def live_server_factory() -> Iterator[Callable[..., LiveServer]]:
    servers: list[LiveServer] = []

    def factory(test_stowage: TestStowage, **kwargs: Any) -> LiveServer:
        server = LiveServer(test_stowage, **kwargs).start()
        servers.append(server)
        return server

    yield factory
    for server in servers:
        server.stop()


@pytest.fixture
def stowage_server(stowage_app: TestStowage, live_server_factory: Callable[..., LiveServer]) -> LiveServer:
    return live_server_factory(stowage_app)


@pytest.fixture
def fault_upstream_factory() -> Iterator[Callable[..., FaultUpstream]]:
    upstreams: list[FaultUpstream] = []

    def factory(port: int = 0) -> FaultUpstream:
        upstream = FaultUpstream(port).start()
        upstreams.append(upstream)
        return upstream

    yield factory
    for upstream in upstreams:
        upstream.stop()


@pytest.fixture
def fault_upstream(fault_upstream_factory: Callable[..., FaultUpstream]) -> FaultUpstream:
    """A started fault-injecting upstream (``.url``, ``.put``, ``.fault``, ``.stop``, ``.count``)."""
    return fault_upstream_factory()


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    bin_dir = postgres_bin_dir()
    if bin_dir is None:
        if os.environ.get("CI"):
            pytest.fail("PostgreSQL (initdb, pg_ctl) is not installed; .ci/apt-packages.txt lists it")
        pytest.skip("PostgreSQL (initdb, pg_ctl) is not installed")
    server = PostgresServer(bin_dir).start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def _postgres_catalog_template(postgres_server: PostgresServer) -> str:
    from stowage.catalog.postgres import PostgresCatalog

    url = postgres_server.new_database()
    PostgresCatalog(url, pool_size=1).close()
    return url.rsplit("/", 1)[1]


@pytest.fixture
def postgres_catalog_url(postgres_server: PostgresServer, _postgres_catalog_template: str) -> str:
    return postgres_server.new_database(template=_postgres_catalog_template)


@pytest.fixture(scope="session")
def s3_server() -> Iterator["S3TestServer"]:
    """An S3 API server on loopback (moto), or the one ``STOWAGE_TEST_S3_ENDPOINT`` names (MinIO...)."""
    pytest.importorskip("boto3", reason="the S3 blob store needs the stowage[s3] extra")
    from stowage.testing.s3 import start_s3_server

    yield from start_s3_server()


@pytest.fixture
def s3_bucket(s3_server: "S3TestServer") -> Iterator[str]:
    """A new empty bucket on ``s3_server``, removed after the test."""
    name = s3_server.create_bucket()
    yield name
    s3_server.remove_bucket(name)


@pytest.fixture
def slapd(tmp_path: Path) -> Iterator[SlapdServer]:
    from stowage.testing.slapd import LDAPADD, SLAPD

    missing = [tool for tool in (SLAPD, LDAPADD) if not Path(tool).exists()]
    if missing:
        pytest.fail(f"missing {missing}: install slapd and ldap-utils (listed in .ci/apt-packages.txt)")
    server = SlapdServer(tmp_path / "slapd").start()
    yield server
    server.stop()
