"""Building and running Stowage for tests, without pytest (the fixtures wrap these)."""

from __future__ import annotations

import base64
import contextlib
import socket
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping

import falcon.testing
from attrs import define

from stowage.app import StowageApp, create_app, create_stowage
from stowage.blobstore import BlobStoreConfig
from stowage.cluster import NAMESPACE as WORKERS_NAMESPACE
from stowage.pluginmanager import make_plugin_manager
from stowage.settings import ConfigFile, ServerSettings
from stowage.stowage import Stowage

ADMIN_PASSWORD = "admin123"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def python_process(script: str) -> Iterator[subprocess.Popen]:
    """``python -c script`` in a new process (another worker or node of the app under test), killed with
    SIGKILL when the block ends if it still runs: what ``kill -9`` or a lost node leaves behind."""
    process = subprocess.Popen([sys.executable, "-c", script])
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()
        process.wait()


def basic_auth(user: str = "admin", password: str = ADMIN_PASSWORD) -> dict[str, str]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


@define
class TestStowage:
    """An app built for a test: the application object, the WSGI app and an in-process client."""

    __test__ = False  # not a test class, whatever pytest thinks of the name

    stowage: Stowage
    app: StowageApp
    client: falcon.testing.TestClient
    admin_password: str = ADMIN_PASSWORD

    @property
    def admin(self) -> dict[str, str]:
        """Headers that authenticate as the admin user."""
        return basic_auth("admin", self.admin_password)

    def create_repository(self, **config: Any) -> Any:
        """Create a repository from Nexus-shaped keyword arguments (``name``, ``format``, ``type``...)."""
        return self.stowage.save_repository(self.stowage.parse_repository(config), create=True)

    def stored_state(self) -> dict[str, Any]:
        """Everything a write can leave behind: catalog rows (blobs, components, assets, documents) and the
        digests each blob store holds. Compare it before and after a refused write: it must not change."""
        import sqlite3

        state: dict[str, Any] = {}
        with contextlib.closing(sqlite3.connect(f"file:{self.stowage.catalog.path}?mode=ro", uri=True)) as db:
            for table in ("blobs", "components", "assets"):
                state[table] = sorted(map(repr, db.execute(f"SELECT * FROM {table}")))
            # a serving process's heartbeat (stowage.cluster) changes on its own clock, not by any write
            state["documents"] = sorted(map(repr, db.execute(
                "SELECT * FROM documents WHERE namespace != ?", (WORKERS_NAMESPACE,))))
        for name, store in self.stowage.blob_stores().items():
            state[f"blob store {name}"] = sorted(store.digests())
        return state


def build_stowage(data_dir: Path, *, plugins: Iterable[object] = (), load_entrypoints: bool = True,
                  repositories: Iterable[Mapping[str, Any]] = (), strict: bool = True,
                  cleanup_policies: Iterable[Mapping[str, Any]] = (), blob_stores: Iterable[BlobStoreConfig] = (),
                  monkeypatch_env: Any = None, **settings: Any) -> TestStowage:
    """An app over ``data_dir`` with the given plugins (entry points too unless told otherwise).

    The admin password is ``$STOWAGE_ADMIN_PASSWORD`` (the fixtures set it to :data:`ADMIN_PASSWORD`),
    otherwise the generated one in ``<data_dir>/admin.password``.
    """
    import os

    server = ServerSettings(data_dir=str(data_dir), strict_plugins=strict, **settings)
    manager = make_plugin_manager(load_entrypoints=load_entrypoints, plugins=plugins, strict=strict)
    stowage = create_stowage(server, manager, config=ConfigFile(
        server=server, blob_stores=tuple(blob_stores), repositories=tuple(repositories),
        cleanup_policies=tuple(cleanup_policies)))
    app = create_app(stowage)
    return TestStowage(stowage=stowage, app=app, client=falcon.testing.TestClient(app),
                       admin_password=os.environ.get("STOWAGE_ADMIN_PASSWORD")
                       or (Path(data_dir) / "admin.password").read_text())


class LiveServer:
    """A real waitress server for a :class:`TestStowage` on a free loopback port, in a thread."""

    def __init__(self, test_stowage: TestStowage, *, port: int | None = None):
        from stowage.server import Server

        self.test_stowage = test_stowage
        self.server = Server(test_stowage.app, test_stowage.stowage, host="127.0.0.1",
                             port=port if port is not None else 0, threads=8)
        self.thread = threading.Thread(target=self._serve, name="stowage-live-server", daemon=True)
        self.crashed: BaseException | None = None
        self._stopped = False

    def _serve(self) -> None:
        try:
            self.server.serve(install_signal_handlers=False)
        except BaseException as error:  # reported by stop(): a dead loop must fail the test, not hang it
            self.crashed = error

    @property
    def port(self) -> int:
        return self.server.port

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def stowage(self) -> Stowage:
        return self.test_stowage.stowage

    def start(self) -> "LiveServer":
        self.thread.start()
        return self

    def stop(self) -> None:
        """Stop serving (idempotent); raises if the serving loop had ended on its own (waitress closes a
        listener whose handler raised, and with nothing left to watch the loop returns)."""
        ended_by_itself = self.thread.ident is not None and not self.thread.is_alive() and not self._stopped
        self._stopped = True
        self.server.stop_loop()
        self.thread.join(timeout=10)
        crashed, self.crashed = self.crashed, None
        if crashed is not None:
            raise RuntimeError(f"the live server's loop died: {crashed!r}") from crashed
        if ended_by_itself:
            raise RuntimeError("the live server's loop died: it stopped serving before it was asked to "
                               "(see the waitress errors logged)")
