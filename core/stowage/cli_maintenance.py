"""``stowage backup``, ``restore`` and ``verify``: the operator's commands for a data directory."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any, Callable


def _config_path(args: argparse.Namespace) -> str | None:
    return args.config or os.environ.get("STOWAGE_CONFIG")


def _open(args: argparse.Namespace) -> Any:
    from stowage.app import open_for_maintenance

    return open_for_maintenance(_config_path(args),
                                overrides={"data_dir": args.data_dir or os.environ.get("STOWAGE_DATA_DIR")})


def _progress(args: argparse.Namespace) -> Any:
    from stowage.progress import RunProgress

    return RunProgress(show=False if args.quiet else None)


def cmd_backup(args: argparse.Namespace) -> int:
    from stowage.backup.create import run_backup

    stowage = _open(args)
    try:
        with _progress(args) as progress:
            report = run_backup(stowage, Path(args.to), config_path=_config_path(args), keep=args.keep,
                                link=not args.no_link, threads=args.threads, progress=progress)
    finally:
        stowage.close()
    for problem in report.problems:
        print(problem)
    print(report.summary())
    return 0 if report.ok else 1


def cmd_restore(args: argparse.Namespace) -> int:
    from stowage.backup.restore import run_restore

    with _progress(args) as progress:
        report = run_restore(Path(args.source), Path(args.data_dir), generation=args.generation,
                             config_path=args.config, link=args.link, progress=progress)
    for warning in report.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    print(report.summary())
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    from stowage.verify import run_verify

    stowage = _open(args)
    try:
        with _progress(args) as progress:
            report = run_verify(stowage, repository=args.repository, deep=args.deep, repair=args.repair,
                                progress=progress)
    finally:
        stowage.close()
    for line in report.lines():
        print(line)
    print(report.summary())
    return 0 if report.ok else 1


def cmd_migrate_storage(args: argparse.Namespace) -> int:
    from stowage.migrate_storage import configured_elsewhere, run_migrate_storage

    stowage = _open(args)
    try:
        with _progress(args) as progress:
            report = run_migrate_storage(stowage, args.to_catalog, args.to_blobstore, progress=progress)
    finally:
        stowage.close()
    for problem in report.problems:
        print(problem)
    print(report.summary())
    stale = configured_elsewhere(_config_path(args), args.to_blobstore)
    if stale:
        print(f"warning: the configuration file puts {', '.join(stale)} on another blob store; set their "
              f"storage.blobStoreName to {args.to_blobstore!r} before starting nodes with it", file=sys.stderr)
    return 0 if report.ok else 1


def register(commands: Any, common: Callable[[argparse.ArgumentParser], None]) -> None:
    backup = commands.add_parser("backup", help="back up a data directory while the server runs (incremental)")
    common(backup)
    backup.add_argument("--to", required=True, help="backup directory (created; later runs add generations)")
    backup.add_argument("--keep", type=int, help="keep the newest N generations; free blobs only older ones used")
    backup.add_argument("--no-link", action="store_true", help="copy blobs even on the same file system")
    backup.add_argument("--threads", type=int, default=4, help="blobs copied at once (default 4)")
    backup.add_argument("--quiet", action="store_true", help="no progress bar, only the summary")
    backup.set_defaults(func=cmd_backup)

    restore = commands.add_parser("restore", help="build a new data directory from a backup")
    restore.add_argument("--from", dest="source", required=True, help="backup directory")
    restore.add_argument("--data-dir", required=True, help="the new data directory (must be empty or absent)")
    restore.add_argument("--generation", help="which generation (default: the newest)")
    restore.add_argument("--config", help="configuration for the restored server (default: the backed-up one)")
    restore.add_argument("--link", action="store_true",
                         help="hard-link blobs from the backup instead of copying (same file system only)")
    restore.add_argument("--quiet", action="store_true", help="no progress bar, only the summary")
    restore.set_defaults(func=cmd_restore)

    verify = commands.add_parser("verify", help="check that every asset's bytes and metadata are whole")
    common(verify)
    verify.add_argument("--repository", help="only this repository")
    verify.add_argument("--deep", action="store_true", help="re-hash every blob (reads every byte)")
    verify.add_argument("--repair", action="store_true",
                        help="regenerate inconsistent metadata, drop broken proxy cache entries")
    verify.add_argument("--quiet", action="store_true", help="no progress bar, only the report")
    verify.set_defaults(func=cmd_verify)

    migrate = commands.add_parser("migrate-storage", help="copy an SQLite installation into PostgreSQL and one "
                                  "blob store, for a cluster (resumable; stop the server first)")
    common(migrate)
    migrate.add_argument("--to-catalog", required=True, help="the new catalog: postgresql://user@host/db")
    migrate.add_argument("--to-blobstore", required=True,
                         help="a blob store defined in this installation (REST or TOML) that receives every blob")
    migrate.add_argument("--quiet", action="store_true", help="no progress bar, only the summary")
    migrate.set_defaults(func=cmd_migrate_storage)
