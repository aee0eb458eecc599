"""Subcommands of `rankops` contributed by rankops.operator.

- ``rankops operator run``: the kopf operator (``kopf.run`` with the handlers of
  :mod:`rankops.operator.handlers`); flags set the same environment variables the handlers
  read (``RANKOPS_APISERVER_URL``, ``RANKOPS_PROMETHEUS_URL``, ...).
- ``rankops rollout promote|abort|retry NAME -n NS``: set the annotation token
  (``api.ROLLOUT_ANNOTATIONS``: ``rankops.dev/promote`` etc., value = a fresh timestamp) on a
  RankingModel through the Kubernetes API; the operator acts on each distinct token once.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import time
from typing import Any

from rankops.operator import api

ACTIONS = ("promote", "abort", "retry")


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    """Add this package's subcommands to the top-level parser."""
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
    from rankops.operator.controllers.quality_runtime import ReceiverConfig
    from rankops.operator.settings import OperatorConfig

    OperatorConfig.from_env()  # fail fast on bad settings, before connecting anywhere
    ReceiverConfig.from_env()
    kopf.configure(verbose=args.verbose, log_prefix=True)
    from rankops.operator.handlers import registry

    namespaces = list(args.namespace)
    kopf.run(
        registry=registry,
        standalone=True,
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
