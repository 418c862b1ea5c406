"""The ``stowage`` command: ``serve``, ``plugins``, ``repositories``; ``backup``, ``restore``, ``verify``
(in :mod:`stowage.cli_maintenance`)."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from typing import Sequence

from stowage.data_permissions import restrict_umask
from stowage.errors import StowageError


def _overrides(args: argparse.Namespace) -> dict:
    return {"data_dir": args.data_dir or os.environ.get("STOWAGE_DATA_DIR"),
            "host": getattr(args, "host", None), "port": getattr(args, "port", None),
            "threads": getattr(args, "threads", None), "catalog": os.environ.get("STOWAGE_CATALOG") or None}


def _config_path(args: argparse.Namespace) -> str | None:
    return args.config or os.environ.get("STOWAGE_CONFIG")


def cmd_serve(args: argparse.Namespace) -> int:
    from stowage.app import create_app, load
    from stowage.server import Server

    if args.workers is None:
        from stowage.workers import default_workers

        args.workers = default_workers()
    if args.workers < 1:
        print("stowage: --workers must be at least 1", file=sys.stderr)
        return 2
    if args.workers > 1:
        from stowage.workers import serve_workers

        return serve_workers(args.workers, _config_path(args), _overrides(args))
    stowage = load(_config_path(args), overrides=_overrides(args))
    app = create_app(stowage)
    try:
        Server(app, stowage).serve()
    finally:
        stowage.close()
    return 0


def cmd_plugins(args: argparse.Namespace) -> int:
    from stowage.pluginmanager import make_plugin_manager

    manager = make_plugin_manager()
    report = {"plugins": manager.plugin_names(), "formats": sorted(manager.formats),
              "failures": [{"name": f.name, "error": f.error} for f in manager.failures]}
    print(json.dumps(report, indent=2))
    return 1 if manager.failures else 0


def cmd_repositories(args: argparse.Namespace) -> int:
    from stowage.app import load

    stowage = load(_config_path(args), overrides=_overrides(args))
    try:
        for repository in stowage.repositories():
            state = "" if repository.format else "  (format plugin missing)"
            print(f"{repository.name:30} {repository.format_name:8} {repository.type.value:7}{state}")
    finally:
        stowage.close()
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="stowage", description="A universal artifact repository.")
    parser.add_argument("--log-level", default=os.environ.get("STOWAGE_LOG_LEVEL", "INFO"))
    commands = parser.add_subparsers(dest="command", required=True)

    def common(sub: argparse.ArgumentParser) -> None:
        sub.add_argument("--config", help="TOML configuration file (env STOWAGE_CONFIG)")
        sub.add_argument("--data-dir", help="data directory (env STOWAGE_DATA_DIR; default ./stowage-data)")

    serve = commands.add_parser("serve", help="run the bundled waitress server")
    common(serve)
    serve.add_argument("--host")
    serve.add_argument("--port", type=int)
    serve.add_argument("--threads", type=int, help="threads per worker process (default 4)")
    workers = os.environ.get("STOWAGE_WORKERS")
    serve.add_argument("--workers", type=int, default=int(workers) if workers else None,
                       help="worker processes sharing the listening socket (env STOWAGE_WORKERS; default: one "
                            "per CPU, at most 4)")
    serve.set_defaults(func=cmd_serve)
    plugins = commands.add_parser("plugins", help="list installed plugins and load failures")
    plugins.set_defaults(func=cmd_plugins)
    repositories = commands.add_parser("repositories", help="list configured repositories")
    common(repositories)
    repositories.set_defaults(func=cmd_repositories)
    from stowage import cli_maintenance

    cli_maintenance.register(commands, common)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    restrict_umask()  # the catalog, secrets and blobs are created readable by this user alone
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # waitress warns "Task queue depth is N" for every request that waits for a free thread: one log line
    # per request exactly when the server is busiest. Queueing is normal backpressure here, not an error.
    logging.getLogger("waitress.queue").setLevel(max(logging.ERROR, logging.getLogger().level))
    try:
        return args.func(args)
    except StowageError as error:
        print(f"stowage: {error.message}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
