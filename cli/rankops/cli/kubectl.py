"""`kubectl-rankops`: watch and steer RankingModel rollouts (also as `kubectl rankops ...`).

    kubectl rankops status [NAME] [--watch] [--timeout 10m]
    kubectl rankops promote NAME [--full] | abort NAME | retry NAME | pause NAME | resume NAME
    kubectl rankops history NAME | undo NAME [--to-revision N]

Exit status: 0 success (with ``--watch``: the rollout ended Healthy); 1 the rollout ended
RolledBack or Failed, an A/B experiment kept the stable version (Kept), or the operator did not
acknowledge or ignored an action; 2 bad input
(unknown name, wrong phase, API errors); 124 ``--timeout`` passed first.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import re
import sys
import time
from collections.abc import Sequence
from typing import Any

from rankops.cli import kubectl_actions as actions
from rankops.cli import kubectl_api as names
from rankops.cli.kubectl_client import Client, CliError
from rankops.cli.kubectl_view import render_history, render_list, render_status

EXIT_TIMEOUT = 124
_DURATION = re.compile(r"^(?:(\d+)h)?(?:(\d+)m)?(?:(\d+(?:\.\d+)?)s?)?$")


def duration(text: str) -> float:
    """``90``, ``90s``, ``5m``, ``1h30m`` -> seconds."""
    match = _DURATION.match(text.strip())
    if not text.strip() or match is None:
        raise argparse.ArgumentTypeError(f"not a duration: {text!r} (examples: 30s, 5m, 1h30m)")
    hours, minutes, seconds = match.groups()
    value = int(hours or 0) * 3600 + int(minutes or 0) * 60 + float(seconds or 0)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"duration must be positive: {text!r}")
    return value


def outcome(obj: dict[str, Any]) -> str | None:
    """How the rollout ended, or None while it goes on (or the operator has not seen the spec)."""
    meta, spec, status = obj.get("metadata") or {}, obj.get("spec") or {}, obj.get("status") or {}
    if int(status.get("observedGeneration") or 0) < int(meta.get("generation") or 0):
        return None
    phase = status.get("phase")
    if phase in names.ENDED_BADLY:
        return str(phase)
    version = (spec.get("model") or {}).get("version")
    experiment = status.get("experiment") or {}
    if experiment.get("action") == "Kept" and status.get("abortedVersion") == version:
        return "Kept"  # an A/B experiment kept the stable version: the spec's is not served
    settled = not status.get("canaryVersion") and not status.get("canaryDraining")
    if phase == "Healthy" and status.get("stableVersion") == version and settled:
        return "Healthy"
    return None


def watch_status(client: Client, name: str, timeout: float) -> int:
    deadline = time.monotonic() + timeout
    obj = client.get(name)
    last_view = ""
    while True:
        view = render_status(obj)
        if view != last_view:
            stamp = time.strftime("%H:%M:%S")
            print(f"--- {stamp}\n{view}", flush=True)
            last_view = view
        ended = outcome(obj)
        if ended is not None:
            print(f"rollout ended: {ended}", flush=True)
            return 0 if ended == "Healthy" else 1
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            print(
                f"timed out after {timeout:g}s; phase {(obj.get('status') or {}).get('phase')}",
                file=sys.stderr,
            )
            return EXIT_TIMEOUT
        version = str((obj.get("metadata") or {}).get("resourceVersion") or "")
        # The first change (or none before the watch times out: re-read and look again).
        with contextlib.closing(client.watch(name, version, min(remaining, 30.0))) as changes:
            changed = [*itertools.islice(changes, 1)]
        obj = changed[0] if changed else client.get(name)


def cmd_status(client: Client, args: argparse.Namespace) -> int:
    if args.name is None:
        if args.watch:
            raise CliError("--watch needs a NAME")
        print(render_list(client.list_models()))
        return 0
    if args.watch:
        return watch_status(client, args.name, args.timeout)
    print(render_status(client.get(args.name)))
    return 0


def _wait(args: argparse.Namespace) -> float | None:
    return None if args.no_wait else args.timeout


def cmd_action(client: Client, args: argparse.Namespace) -> int:
    wait = _wait(args)
    if args.command == "promote":
        obj = actions.promote(client, args.name, full=args.full, wait=wait)
    elif args.command == "undo":
        obj = actions.undo(client, args.name, revision=args.to_revision, wait=wait)
    else:
        obj = getattr(actions, args.command)(client, args.name, wait=wait)
    if wait is not None:
        print(render_status(obj))
    return 0


def cmd_history(client: Client, args: argparse.Namespace) -> int:
    print(render_history(client.get(args.name)))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kubectl rankops", description="Watch and steer rankops RankingModel rollouts."
    )
    parser.add_argument("-n", "--namespace", help="namespace (default: the context's)")
    parser.add_argument("--kubeconfig", help="kubeconfig file (default: $KUBECONFIG, ~/.kube/config)")
    parser.add_argument("--context", help="kubeconfig context")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def common(p: argparse.ArgumentParser) -> None:
        # Accepted after the subcommand too, as kubectl does.
        p.add_argument("-n", "--namespace", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
        p.add_argument("--kubeconfig", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
        p.add_argument("--context", default=argparse.SUPPRESS, help=argparse.SUPPRESS)

    status = sub.add_parser("status", help="phase, step, weights and the last analysis")
    status.add_argument("name", nargs="?", help="RankingModel (none: list them all)")
    status.add_argument("-w", "--watch", action="store_true", help="follow until the rollout ends")
    status.add_argument(
        "--timeout", type=duration, default=duration("10m"), help="with --watch (default 10m)"
    )
    status.set_defaults(func=cmd_status)
    common(status)

    helps = {
        "promote": "advance one step; --full: promote the canary to stable now",
        "abort": "roll the canary back (RolledBack until retry or a new version)",
        "retry": "restart a RolledBack, Failed or Paused rollout (or a kept experiment) from step 0",
        "pause": f"hold the rollout at its step ({names.PAUSED_ANNOTATION}=true)",
        "resume": f"resume a rollout held by pause (removes {names.PAUSED_ANNOTATION})",
        "undo": "set spec.model back to an earlier good revision from the history",
    }
    for command, text in helps.items():
        p = sub.add_parser(command, help=text)
        p.add_argument("name", help="RankingModel")
        if command == "promote":
            p.add_argument("--full", action="store_true", help="skip every remaining step")
        if command == "undo":
            p.add_argument("--to-revision", type=int, metavar="N", help="revision from `history`")
        p.add_argument(
            "--timeout", type=duration, default=duration("30s"), help="wait for the operator (30s)"
        )
        p.add_argument("--no-wait", action="store_true", help="set the annotation and return")
        p.set_defaults(func=cmd_action)
        common(p)

    history = sub.add_parser("history", help="revisions and their outcomes")
    history.add_argument("name", help="RankingModel")
    history.set_defaults(func=cmd_history)
    common(history)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        client = Client.connect(args.kubeconfig, args.context, args.namespace)
        result: int = args.func(client, args)
    except KeyboardInterrupt:
        return 130
    except CliError as exc:
        print(f"kubectl rankops {args.command}: error: {exc}", file=sys.stderr)
        return exc.code
    return result


if __name__ == "__main__":
    sys.exit(main())
