"""``stowage import nexus``: the command's options and the order of the work."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from stowage.nexus_import.client import NexusRest, RestError
from stowage.nexus_import.content import ContentCopier
from stowage.nexus_import.report import Report
from stowage.nexus_import.settings import SettingsCopier


def add_parser(commands: argparse._SubParsersAction) -> None:
    importer = commands.add_parser("import", help="copy another repository manager into a running Stowage")
    sources = importer.add_subparsers(dest="source", required=True)
    nexus = sources.add_parser(
        "nexus", help="copy a Nexus Repository 3 (or another Stowage) through its REST API",
        description="Reads the source through its REST API only and writes into a running Stowage through "
                    "its REST API and each format's upload path. Safe to run again: what is already on the "
                    "target is skipped.")
    nexus.add_argument("--url", required=True, help="the source, e.g. https://nexus.example")
    nexus.add_argument("--user", default="admin")
    nexus.add_argument("--password-file", type=Path, help="file holding the source user's password")
    nexus.add_argument("--to", default="http://127.0.0.1:8081", help="the target Stowage (default %(default)s)")
    nexus.add_argument("--to-user", default="admin")
    nexus.add_argument("--to-password-file", type=Path, help="file holding the target user's password")
    nexus.add_argument("--repositories", help="comma-separated repository names (default: all)")
    nexus.add_argument("--content", action=argparse.BooleanOptionalAction, default=True,
                       help="copy hosted repositories' files (default: yes)")
    nexus.add_argument("--dry-run", action="store_true", help="read everything, change nothing, report the plan")
    nexus.add_argument("--workers", type=int, default=4, help="concurrent transfers (default %(default)s)")
    nexus.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                       help="show progress bars (default: when stderr is a terminal)")
    nexus.set_defaults(func=cmd_import_nexus)


def _password(path: Path | None) -> str | None:
    return path.read_text().strip() if path is not None else None


def cmd_import_nexus(args: argparse.Namespace) -> int:
    source = NexusRest(args.url, args.user, _password(args.password_file))
    target = NexusRest(args.to, args.to_user, _password(args.to_password_file))
    only = {name.strip() for name in args.repositories.split(",") if name.strip()} if args.repositories else None
    report = Report()
    progress = sys.stderr.isatty() if args.progress is None else args.progress
    try:
        settings = SettingsCopier(source, target, report, dry_run=args.dry_run, repositories=only)
        repositories = settings.copy_all()
        if args.content:
            ContentCopier(source, target, report, workers=args.workers, dry_run=args.dry_run,
                          progress=progress).copy(repositories)
    except KeyboardInterrupt:
        report.interrupted = True
    except RestError as error:
        report.fail("import", "*", str(error))
    print("\n".join(report.lines()))
    return 0 if report.ok else 1
