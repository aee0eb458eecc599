"""Subcommands of `rankops` contributed by rankops.operator.

- ``rankops operator run``: the kopf operator (``kopf.run`` with the handlers of
  :mod:`rankops.operator.handlers`); flags set the same environment variables the handlers
  read (``RANKOPS_APISERVER_URL``, ``RANKOPS_PROMETHEUS_URL``, ...).
- ``rankops prune-backups --at DEST ...``: backup retention (the MaintenanceWindow's Backup
  Job runs it after ``rankops backup``).
- ``rankops rollout promote|abort|retry NAME -n NS``: set the annotation token
  (``api.ROLLOUT_ANNOTATIONS``: ``rankops.dev/promote`` etc., value = a fresh timestamp) on a
  RankingModel through the Kubernetes API; the operator acts on each distinct token once.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys
import time
from typing import Any

from rankops.operator import api

ACTIONS = ("promote", "abort", "retry")


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    """Add this package's subcommands to the top-level parser."""
    register_prune(subparsers)
    op = subparsers.add_parser("operator", help="run the rankops Kubernetes operator")
    op_sub = op.add_subparsers(dest="operator_command", metavar="OPERATOR_COMMAND", required=True)
    run = op_sub.add_parser(
        "run",
        help="run the operator (kopf) until interrupted",
        description="Run the rankops operator: RankingModel rollouts judged on NDCG@3 from Prometheus.",
    )
    scope = run.add_mutually_exclusive_group()
    scope.add_argument(
        "-n",
        "--namespace",
        action="append",
        default=[],
        metavar="NS",
        help="watch this namespace (repeatable; globs allowed)",
    )
    scope.add_argument(
        "-A", "--all-namespaces", action="store_true", help="watch the whole cluster (default)"
    )
    run.add_argument(
        "--apiserver",
        metavar="URL",
        help="API server URL without credentials (emulator, kubectl proxy); "
        "default: in-cluster service account or kubeconfig",
    )
    run.add_argument("--prometheus", metavar="URL", help="Prometheus base URL (env RANKOPS_PROMETHEUS_URL)")
    run.add_argument(
        "--analysis-interval",
        metavar="SECONDS",
        type=float,
        help="override every RankingModel's analysis interval",
    )
    run.add_argument(
        "--resync-interval",
        metavar="SECONDS",
        type=float,
        help="reconcile every model at least this often (default 60)",
    )
    run.add_argument(
        "--watch-timeout",
        metavar="SECONDS",
        type=float,
        help="server-side timeout of watch requests (default 300)",
    )
    run.add_argument(
        "--liveness", metavar="URL", help="kopf liveness endpoint, e.g. http://0.0.0.0:8080/healthz"
    )
    run.add_argument(
        "--alerts-port", metavar="PORT", type=int, help="serve the Alertmanager receiver (POST /v1/alerts)"
    )
    run.add_argument(
        "--alerts-token-file", metavar="PATH", help="the receiver's bearer token (required with a port)"
    )
    run.add_argument(
        "--alerts-cert-dir", metavar="DIR", help="serve the receiver over TLS (tls.crt, tls.key)"
    )
    run.add_argument(
        "--webhook-port",
        metavar="PORT",
        type=int,
        help="serve validating admission for the three resources over HTTPS (env RANKOPS_WEBHOOK_PORT)",
    )
    run.add_argument(
        "--webhook-cert-dir",
        metavar="DIR",
        help="the webhook's tls.crt and tls.key (env RANKOPS_WEBHOOK_CERT_DIR)",
    )
    run.add_argument(
        "--peering",
        metavar="NAME",
        help="run as one of several replicas sharing this kopf peering object: only the leader "
        "acts (env RANKOPS_PEERING; RANKOPS_PEERING_PRIORITY, RANKOPS_PEERING_LIFETIME)",
    )
    run.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    run.set_defaults(func=run_operator)

    ro = subparsers.add_parser("rollout", help="promote, abort or retry a RankingModel's rollout")
    ro_sub = ro.add_subparsers(dest="rollout_command", metavar="ACTION", required=True)
    for action in ACTIONS:
        p = ro_sub.add_parser(
            action, help=f"{action} the rollout (sets the {api.ROLLOUT_ANNOTATIONS[action]} annotation)"
        )
        p.add_argument("name", help="RankingModel name")
        p.add_argument(
            "-n", "--namespace", default=None, help="namespace (default: the context's, else default)"
        )
        p.add_argument(
            "--apiserver", metavar="URL", help="API server URL (default: kubeconfig or in-cluster)"
        )
        p.set_defaults(func=rollout_action, action=action)


def _set_env(name: str, value: Any) -> None:
    if value is not None:
        os.environ[name] = str(value)


def run_operator(args: argparse.Namespace) -> int:
    import kopf

    _set_env("RANKOPS_APISERVER_URL", args.apiserver)
    _set_env("RANKOPS_PROMETHEUS_URL", args.prometheus)
    _set_env("RANKOPS_ANALYSIS_INTERVAL", args.analysis_interval)
    _set_env("RANKOPS_RESYNC_INTERVAL", args.resync_interval)
    _set_env("RANKOPS_WATCH_TIMEOUT", args.watch_timeout)
    _set_env("RANKOPS_ALERTS_PORT", args.alerts_port)
    _set_env("RANKOPS_ALERTS_TOKEN_FILE", args.alerts_token_file)
    _set_env("RANKOPS_ALERTS_CERT_DIR", args.alerts_cert_dir)
    _set_env("RANKOPS_PEERING", args.peering)
    _set_env("RANKOPS_WEBHOOK_PORT", args.webhook_port)
    _set_env("RANKOPS_WEBHOOK_CERT_DIR", args.webhook_cert_dir)
    from rankops.operator.controllers.admission import WebhookConfig
    from rankops.operator.controllers.quality_runtime import ReceiverConfig
    from rankops.operator.peering import PeeringConfig
    from rankops.operator.settings import OperatorConfig

    OperatorConfig.from_env()  # fail fast on bad settings, before connecting anywhere
    ReceiverConfig.from_env()
    webhook = WebhookConfig.from_env()
    peering = PeeringConfig.from_env()
    if peering is not None:  # the startup handler reads the same priority again
        os.environ["RANKOPS_PEERING_PRIORITY"] = str(peering.priority)
    kopf.configure(verbose=args.verbose, log_prefix=True)
    from rankops.operator.handlers import register_admission, registry

    if webhook is not None:
        register_admission(registry)

    namespaces = list(args.namespace)
    kopf.run(
        registry=registry,
        standalone=peering is None,
        peering_name=peering.name if peering else None,
        priority=peering.priority if peering else None,
        clusterwide=not namespaces,
        namespaces=namespaces,
        liveness_endpoint=args.liveness,
    )
    return 0


def rollout_action(args: argparse.Namespace) -> int:
    return asyncio.run(_annotate(args.action, args.name, args.namespace, args.apiserver))


async def _annotate(action: str, name: str, namespace: str | None, apiserver: str | None) -> int:
    import kopf

    from rankops.operator.adapters.kube import ApiError, KubeClient, connection_info, resource_path

    if apiserver:
        os.environ["RANKOPS_APISERVER_URL"] = apiserver
    info = connection_info(settings=kopf.OperatorSettings(), logger=logging.getLogger("rankops"))
    if info is None:
        raise ValueError("no Kubernetes credentials: pass --apiserver, or set up a kubeconfig")
    namespace = namespace or info.default_namespace or "default"
    client = KubeClient(lambda: info)
    token = f"{time.time():.6f}"
    try:
        await client.merge_patch(
            resource_path(api.RANKING_MODEL, namespace, name),
            {"metadata": {"annotations": {api.ROLLOUT_ANNOTATIONS[action]: token}}},
        )
    except ApiError as exc:
        if exc.status == 404:
            raise ValueError(f"RankingModel {namespace}/{name} not found") from exc
        raise ValueError(str(exc)) from exc
    finally:
        await client.close()
    print(
        f"{api.RANKING_MODEL.lower()}.{api.GROUP}/{name} annotated: {api.ROLLOUT_ANNOTATIONS[action]}={token}"
    )
    return 0


# ---------------------------------------------------------------- prune-backups


def register_prune(subparsers: argparse._SubParsersAction[Any]) -> None:
    """`rankops prune-backups`: backup retention, the operator-side chore (no torch needed).

    Progress on stderr, one JSON result line on stdout; exit 0 on success, 1 when a deletion
    failed, 2 on bad input. ``--protect VERSION`` names versions that are served or in a
    RankingModel's history (the controller passes them): their last verified copy stays.
    """
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
