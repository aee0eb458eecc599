"""Maintenance chores as `rankops` subcommands (the MaintenanceWindow's Jobs run these).

Each prints progress on stderr and one JSON result line on stdout, and exits 0 on success,
1 when a check failed (a corrupted backup, a restore that does not match, drift found), and 2
on bad input (a missing version, an unwritable destination, unreachable pods).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from typing import Any

from rankops.serving.cli_args import non_negative, probability

# Exit 2 is argparse's and ValueError's (bad input); 3 keeps "too few samples to judge" apart
# from a check that ran and failed, so an operator never reports drift it did not see.
EXIT_OK, EXIT_CHECK_FAILED, EXIT_NO_VERDICT = 0, 1, 3
GOLDEN_TOLERANCE = 1e-6


def progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def emit(result: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(result, sort_keys=True) + "\n")
    sys.stdout.flush()


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    p = subparsers.add_parser(
        "backup",
        help="copy a model version to a backup destination, verified and atomically published",
        description="Copy every file of the artifact at --model to DEST/<version>, check each sha256 "
        "against manifest.json, then publish. A version already backed up and intact is not copied.",
    )
    p.add_argument("--model", required=True, help="artifact URI (any fsspec URI)")
    p.add_argument("--to", required=True, dest="dest", help="backup destination of this model (fsspec URI)")
    p.add_argument("--keep", action="store_true", help="mark the backup to be kept forever by retention")
    p.set_defaults(func=_backup)

    p = subparsers.add_parser(
        "verify-backups",
        help="re-hash every backup at a destination: intact, corrupted or incomplete",
    )
    p.add_argument("--at", required=True, dest="dest", help="backup destination (fsspec URI)")
    p.set_defaults(func=_verify)

    p = subparsers.add_parser(
        "restore",
        help="restore a backed-up version, check it bit for bit and its golden NDCG@3",
        description="Copy DEST/<version> to --to, check every byte against the backup, load the "
        "restored artifact and check its golden-set NDCG@3 against the manifest.",
    )
    p.add_argument("--version", required=True, help="model version to restore")
    p.add_argument("--from", required=True, dest="source", help="backup destination (fsspec URI)")
    p.add_argument("--to", required=True, dest="target", help="where to restore (an empty location)")
    p.set_defaults(func=_restore)

    p = subparsers.add_parser(
        "drift",
        help="test the serving pods' live query window against the artifact's reference statistics",
        description="KS on numeric features, chi-square on categorical ones (Holm-corrected at "
        "--p-value), PSI on all; exit 1 when any feature drifted, 3 when the pooled window is "
        "smaller than --min-samples (no verdict).",
    )
    p.add_argument("--model", required=True, help="artifact URI the pods serve")
    p.add_argument("--endpoint", action="append", default=[], help="a serving pod's base URL (repeat)")
    p.add_argument("--p-value", type=probability, default=0.05, help="family-wise alpha (default: 0.05)")
    p.add_argument("--psi-threshold", type=non_negative, default=0.25, help="(default: %(default)s)")
    p.add_argument("--min-samples", type=int, default=200, help="fewest pooled queries (default: 200)")
    p.set_defaults(func=_drift)


def _backup(args: argparse.Namespace) -> int:
    from rankops.serving.backups import BackupCheckError, backup

    try:
        result = backup(args.model, args.dest, keep=args.keep, progress=progress)
    except BackupCheckError as exc:
        progress(f"rankops backup: failed: {exc}")
        emit({"ok": False, "model": args.model, "to": args.dest, "error": str(exc)})
        return EXIT_CHECK_FAILED
    emit({"ok": True, **result})
    return EXIT_OK


def _verify(args: argparse.Namespace) -> int:
    from rankops.serving.backups import INTACT, verify_backups

    statuses = verify_backups(args.dest, progress=progress)
    counts = {s: sum(1 for b in statuses if b.status == s) for s in ("intact", "corrupted", "incomplete")}
    ok = all(b.status == INTACT for b in statuses)
    emit({"ok": ok, "at": args.dest, **counts, "backups": [b.to_json() for b in statuses]})
    return EXIT_OK if ok else EXIT_CHECK_FAILED


def golden_check(target: str) -> dict[str, Any]:
    """Load the artifact at ``target`` and compare its golden NDCG@3 with its manifest's."""
    import asyncio

    from rankops.serving.artifact import load_artifact
    from rankops.serving.service import golden_ndcg

    artifact = load_artifact(target)
    split = artifact.manifest.get("training_data", {}).get("golden_split", "test")
    expected = artifact.manifest.get("metrics", {}).get(split, {}).get("model", {}).get("ndcg@3")
    measured = asyncio.run(golden_ndcg(artifact))
    ok = (
        expected is not None
        and math.isfinite(measured)
        and abs(measured - float(expected)) <= GOLDEN_TOLERANCE
    )
    return {"goldenNdcgAt3": measured, "manifestNdcgAt3": expected, "goldenSplit": split, "goldenOk": ok}


def _restore(args: argparse.Namespace) -> int:
    from rankops.serving.artifact import ArtifactIntegrityError
    from rankops.serving.backups import BackupCheckError, restore

    try:
        result = restore(args.version, args.source, args.target, progress=progress)
        progress(f"loading {args.target} and scoring its golden set")
        result.update(golden_check(args.target))
    except (BackupCheckError, ArtifactIntegrityError) as exc:
        progress(f"rankops restore: failed: {exc}")
        emit({"ok": False, "version": args.version, "from": args.source, "error": str(exc)})
        return EXIT_CHECK_FAILED
    ok = bool(result["goldenOk"])
    if not ok:
        progress(
            f"rankops restore: golden NDCG@3 {result['goldenNdcgAt3']} does not match the manifest's "
            f"{result['manifestNdcgAt3']}"
        )
    emit({"ok": ok, **result})
    return EXIT_OK if ok else EXIT_CHECK_FAILED


def _drift(args: argparse.Namespace) -> int:
    from rankops.serving.artifact import ArtifactIntegrityError, load_artifact
    from rankops.serving.drift_check import DRIFT, INSUFFICIENT, NO_DRIFT, drift_check

    if args.min_samples < 1:
        raise ValueError("--min-samples must be >= 1")
    try:
        artifact = load_artifact(args.model)
    except ArtifactIntegrityError as exc:
        progress(f"rankops drift: failed: {exc}")
        emit({"ok": False, "model": args.model, "error": str(exc)})
        return EXIT_CHECK_FAILED
    result = drift_check(
        artifact.reference,
        artifact.sha256,
        args.endpoint,
        alpha=args.p_value,
        psi_threshold=args.psi_threshold,
        min_samples=args.min_samples,
        progress=progress,
    )
    verdict = result["verdict"]
    if verdict == DRIFT:
        progress(f"drift in {', '.join(result['drifted'])} over {result['n']} live queries")
    elif verdict != NO_DRIFT:
        progress(f"no verdict: {result['n']} live queries, fewer than --min-samples {args.min_samples}")
    emit({"ok": verdict == NO_DRIFT, "model": args.model, "version": artifact.version, **result})
    if verdict == INSUFFICIENT:
        return EXIT_NO_VERDICT
    return EXIT_OK if verdict == NO_DRIFT else EXIT_CHECK_FAILED
