"""Subcommands of `rankops` contributed by rankops.sandbox."""

from __future__ import annotations

import argparse
import asyncio
import pathlib
import signal
import sys
from typing import Any


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    """Add this package's subcommands to the top-level parser."""
    sandbox = subparsers.add_parser("sandbox", help="local stand-ins for a Kubernetes cluster")
    sandbox_sub = sandbox.add_subparsers(dest="sandbox_command", metavar="SANDBOX_COMMAND", required=True)
    api = sandbox_sub.add_parser(
        "apiserver",
        help="run the Kubernetes API server emulator and print its URL",
        description="Run the Kubernetes API server emulator (rankops.sandbox.apiserver) until interrupted."
        " It prints its URL on the first line of stdout.",
    )
    api.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    api.add_argument("--port", type=int, default=0, help="port to listen on (default: 0, a free one)")
    api.add_argument(
        "--crds",
        action="append",
        default=[],
        metavar="PATH",
        help="a CRD file or a directory of them to install at start (repeatable)",
    )
    api.add_argument("--kubeconfig", metavar="PATH", help="write a kubeconfig pointing at the server here")
    api.add_argument("--namespace", default="default", help="the kubeconfig's namespace (default: default)")
    api.add_argument(
        "--simulate-workloads",
        action="store_true",
        help="mark Deployments ready soon after each change (no pods run)",
    )
    api.add_argument("--simulate-jobs", action="store_true", help="mark Jobs complete soon after creation")
    api.set_defaults(func=run_apiserver)


def run_apiserver(args: argparse.Namespace) -> int:
    for path in args.crds:
        if not pathlib.Path(path).exists():
            raise FileNotFoundError(f"no such CRD file or directory: {path}")
    return asyncio.run(_serve(args))


async def _serve(args: argparse.Namespace) -> int:
    from rankops.sandbox.apiserver import SandboxAPIServer

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with SandboxAPIServer(
        crds=list(args.crds),
        host=args.host,
        port=args.port or None,
        simulate_workloads=args.simulate_workloads,
        simulate_jobs=args.simulate_jobs,
    ) as api:
        print(api.url, flush=True)
        if args.kubeconfig:
            path = api.write_kubeconfig(args.kubeconfig, namespace=args.namespace)
            print(f"kubeconfig written to {path}", file=sys.stderr, flush=True)
        await stop.wait()
    return 0
