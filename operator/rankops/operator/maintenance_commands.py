"""`rankops prune-backups`: backup retention, the operator-side chore (no torch needed).

Prints progress on stderr and one JSON result line on stdout; exit 0 on success, 1 when a
deletion failed, 2 on bad input. ``--protect VERSION`` names versions that are served or in
a RankingModel's history (the controller passes them): their last verified copy stays.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    p = subparsers.add_parser(
        "prune-backups",
        help="delete backups retention no longer keeps (daily/weekly/monthly in a time zone)",
        description="Keep the newest backup of each of the newest --daily days, --weekly ISO weeks and "
        "--monthly months (in --time-zone), the newest verified backup, keep-marked ones, unverified "
        "ones, and the last verified copy of each --protect version; delete the rest.",
    )
    p.add_argument("--at", required=True, dest="dest", help="backup destination of one model (fsspec URI)")
    p.add_argument("--model-name", default="model", help="model the backups belong to (for the report)")
    p.add_argument("--time-zone", default="UTC", help="IANA zone days are counted in (default: UTC)")
    p.add_argument("--daily", type=_count, default=7)
    p.add_argument("--weekly", type=_count, default=4)
    p.add_argument("--monthly", type=_count, default=12)
    p.add_argument(
        "--protect", action="append", default=[], metavar="VERSION", help="never prune its last copy"
    )
    p.add_argument("--dry-run", action="store_true", help="report what would be deleted, delete nothing")
    p.set_defaults(func=_prune)


def _count(value: str) -> int:
    try:
        n = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {value!r}") from None
    if n < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {n}")
    return n


def _prune(args: argparse.Namespace) -> int:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    from rankops.operator.adapters.backup_store import delete_backup, list_backups
    from rankops.operator.core.maintenance.retention import Retention, kept_reasons

    try:
        ZoneInfo(args.time_zone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"--time-zone: unknown time zone {args.time_zone!r}") from None
    stored = list_backups(args.dest, args.model_name)
    retention = Retention(args.daily, args.weekly, args.monthly)
    protected = [(args.model_name, v) for v in args.protect]
    reasons = kept_reasons([s.backup for s in stored], retention, args.time_zone, protected)
    deleted, failed, kept = [], [], []
    for s in sorted(stored, key=lambda s: (s.backup.taken_at, s.backup.id)):
        if s.backup.id in reasons:
            kept.append({"version": s.backup.version, "why": reasons[s.backup.id]})
            continue
        if args.dry_run:
            print(f"would delete {s.uri}", file=sys.stderr)
            deleted.append(s.backup.version)
            continue
        try:
            delete_backup(args.dest, s.backup.id)
        except OSError as exc:
            print(f"deleting {s.uri} failed: {exc}", file=sys.stderr)
            failed.append({"version": s.backup.version, "error": str(exc)})
            continue
        print(f"deleted {s.uri}", file=sys.stderr)
        deleted.append(s.backup.version)
    unverified = [s.backup.version for s in stored if not s.backup.verified]
    for version in unverified:
        print(f"kept unverified backup {version}: run rankops verify-backups", file=sys.stderr)
    result = {
        "ok": not failed,
        "at": args.dest,
        "dryRun": args.dry_run,
        "deleted": deleted,
        "failed": failed,
        "kept": kept,
        "unverified": unverified,
    }
    sys.stdout.write(json.dumps(result, sort_keys=True) + "\n")
    return 0 if not failed else 1
