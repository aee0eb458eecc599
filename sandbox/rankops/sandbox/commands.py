"""Subcommands of `rankops` contributed by rankops.sandbox.

- ``rankops demo``: the scripted story (:mod:`rankops.sandbox.story`), one JSON line at the end.
- ``rankops sandbox up`` / ``down`` / ``status``: the whole sandbox kept running for
  exploration with kubectl (``up --foreground`` runs it in this terminal until Ctrl-C).
- ``rankops sandbox apiserver``: the API server emulator alone.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import pathlib
import signal
import subprocess
import sys
import threading
import time
from typing import Any

DEFAULT_DATA = "examples/data/datasets"
DEFAULT_SANDBOX_DIR = "artifacts/sandbox"


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    """Add this package's subcommands to the top-level parser."""
    register_demo(subparsers)
    sandbox = subparsers.add_parser("sandbox", help="the whole system on this machine (no cluster needed)")
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

    up = sandbox_sub.add_parser(
        "up",
        help="start the sandbox (API server, pods as processes, Prometheus, operator) in the background",
        description="Start the sandbox and print its kubeconfig, Prometheus URL and entry point. The "
        "serving image's example model (/models/search-ranker/1.0.0) is trained once into the work "
        "directory, so the manifests under examples/ run as they are.",
    )
    up.add_argument("--workdir", default=DEFAULT_SANDBOX_DIR, help="state and logs (default: %(default)s)")
    up.add_argument(
        "--data", default=DEFAULT_DATA, help="dataset for the example model (default: %(default)s)"
    )
    up.add_argument("--foreground", action="store_true", help="run in this terminal until Ctrl-C or SIGTERM")
    up.add_argument(
        "--no-example-model", action="store_true", help="do not train the serving image's example model"
    )
    up.add_argument("--timeout", type=float, default=600, help="seconds to wait for start-up (default: 600)")
    up.set_defaults(func=sandbox_up)
    down = sandbox_sub.add_parser("down", help="stop the sandbox started by `rankops sandbox up`")
    down.add_argument("--workdir", default=DEFAULT_SANDBOX_DIR, help="(default: %(default)s)")
    down.set_defaults(func=sandbox_down)
    status = sandbox_sub.add_parser("status", help="print the running sandbox's endpoints (JSON)")
    status.add_argument("--workdir", default=DEFAULT_SANDBOX_DIR, help="(default: %(default)s)")
    status.set_defaults(func=sandbox_status)


def register_demo(subparsers: argparse._SubParsersAction[Any]) -> None:
    demo = subparsers.add_parser(
        "demo",
        help="the whole product end to end on this machine: a canary promoted, a bad model rolled back",
        description="Train (once, cached) four model versions, start the sandbox, and play the story: "
        "v1 stable, v2 canaried and promoted, maintenance windows (Backup, RestoreTest, DriftCheck), "
        "v3 (shuffled labels) caught and rolled back during its canary, v4 (weak on one query domain) "
        "promoted and then rolled back on an Alertmanager alert once that domain's queries become "
        "frequent. Prints one JSON summary line on stdout and writes a PNG.",
    )
    demo.add_argument(
        "--workdir", default="artifacts/demo/run", help="sandbox state and logs (default: %(default)s)"
    )
    demo.add_argument("--models", default="artifacts/demo/models", help="model cache (default: %(default)s)")
    demo.add_argument("--data", default=DEFAULT_DATA, help="BEIR dataset (default: %(default)s)")
    demo.add_argument(
        "--png", default="artifacts/demo/demo.png", help="picture to write (default: %(default)s)"
    )
    demo.add_argument("--rate", type=float, default=20.0, help="requests per second (default: %(default)s)")
    demo.add_argument(
        "--acts",
        default="v1,v2,maint,v3,v4",
        help="comma-separated acts to play, in story order (default: %(default)s)",
    )
    demo.add_argument("--no-live", action="store_true", help="plain lines, no live footer")
    demo.set_defaults(func=run_demo)


# ---------------------------------------------------------------------------------------- demo


def run_demo(args: argparse.Namespace) -> int:
    from rankops.sandbox.story import ACTS, StoryOptions, run_story

    acts = [a.strip() for a in args.acts.split(",") if a.strip()]
    unknown = sorted(set(acts) - set(ACTS))
    if unknown or "v1" not in acts or ("v4" in acts and "v2" not in acts):
        raise ValueError(f"--acts: choose from {','.join(ACTS)} (v1 always; v4 needs v2), got {args.acts!r}")
    if args.rate <= 0:
        raise ValueError(f"--rate must be positive, got {args.rate}")
    data = pathlib.Path(args.data)
    if not (data / "corpus.jsonl").is_file():
        raise FileNotFoundError(f"no BEIR dataset at {data} (corpus.jsonl missing)")
    options = StoryOptions(
        workdir=pathlib.Path(args.workdir),
        data=data,
        models=pathlib.Path(args.models),
        png=pathlib.Path(args.png),
        rate=args.rate,
        acts=acts,
        live=not args.no_live,
    )
    with _terminate_as_interrupt():
        summary = run_story(options)
    print(json.dumps(summary, separators=(",", ":")), flush=True)
    return 0 if summary["ok"] else 1


class _terminate_as_interrupt:
    """SIGTERM unwinds like Ctrl-C, so every ``with`` stops what it started."""

    def __enter__(self) -> None:
        self._old = signal.signal(signal.SIGTERM, self._raise)

    @staticmethod
    def _raise(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    def __exit__(self, *exc: object) -> None:
        signal.signal(signal.SIGTERM, self._old)


# ------------------------------------------------------------------------------------- sandbox


def _state_file(workdir: str) -> pathlib.Path:
    return pathlib.Path(workdir) / "sandbox.json"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def sandbox_up(args: argparse.Namespace) -> int:
    state = _state_file(args.workdir)
    if state.is_file():
        running = json.loads(state.read_text())
        if _alive(int(running.get("pid", 0))):
            raise ValueError(
                f"a sandbox is already running (pid {running['pid']}): `rankops sandbox down` first"
            )
        state.unlink()
    if args.foreground:
        return _up_foreground(args)
    workdir = pathlib.Path(args.workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    argv = [sys.executable, "-m", "rankops.cli", "sandbox", "up", "--foreground"]
    argv += ["--workdir", args.workdir, "--data", args.data]
    if args.no_example_model:
        argv.append("--no-example-model")
    with open(workdir / "sandbox.log", "ab") as log:
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + args.timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = (workdir / "sandbox.log").read_text(errors="replace")[-2000:]
            raise RuntimeError(f"the sandbox exited during start-up:\n{tail}")
        if state.is_file():
            _print_endpoints(json.loads(state.read_text()))
            return 0
        time.sleep(0.2)
    proc.terminate()
    raise TimeoutError(f"the sandbox did not start within {args.timeout}s (see {workdir / 'sandbox.log'})")


def _up_foreground(args: argparse.Namespace) -> int:
    from rankops.sandbox.stack import Sandbox
    from rankops.sandbox.versions import Recipe, ensure_versions

    workdir = pathlib.Path(args.workdir).resolve()
    image_root = workdir / "image"
    if not args.no_example_model:  # the serving image bakes it in at /models/search-ranker/1.0.0
        ensure_versions(
            pathlib.Path(args.data),
            image_root / "models" / "search-ranker",
            (Recipe("1.0.0", epochs=10, data="bundled", about="the serving image's example model"),),
            log=lambda m: print(m, flush=True),
        )
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    state = _state_file(str(workdir))
    with Sandbox(workdir / "run", image_root=image_root) as sb:
        assert sb.api is not None
        info = {
            "pid": os.getpid(),
            "kubeconfig": str(sb.kubeconfig),
            "apiserver": sb.api.url,
            "prometheus": sb.prometheus.url if sb.prometheus else None,
            "alertmanager": sb.alertmanager.url if sb.alertmanager else None,
            "entrypoint": f"{sb.entry.url}/<httproute or service>/",
            "operator_log": str(sb.workdir / "operator.log"),
        }
        tmp = state.with_suffix(".tmp")
        tmp.write_text(json.dumps(info, indent=1))
        os.replace(tmp, state)
        if args.foreground and sys.stdout.isatty():
            _print_endpoints(info)
        try:
            while not stop.wait(2.0):  # each QualitySLO applied gets its alert rules in Prometheus
                try:
                    sb.sync_slo_rules()
                except (RuntimeError, OSError) as exc:
                    print(f"alert rules: {exc}", file=sys.stderr, flush=True)
        finally:
            state.unlink(missing_ok=True)
    return 0


def _print_endpoints(info: dict[str, Any]) -> None:
    print(f"kubeconfig:  {info['kubeconfig']}")
    print(f"API server:  {info['apiserver']}")
    print(f"Prometheus:  {info['prometheus']}")
    print(f"Alertmanager: {info.get('alertmanager')}")
    print(f"entry point: {info['entrypoint']}")
    print(f"try:         kubectl --kubeconfig {info['kubeconfig']} apply -f examples/qualityslo.yaml")
    print(
        f"             kubectl --kubeconfig {info['kubeconfig']} apply -f examples/rankingmodel-minimal.yaml"
    )
    print(f"             kubectl --kubeconfig {info['kubeconfig']} get rm,pods -w")
    print("stop:        rankops sandbox down")


def sandbox_down(args: argparse.Namespace) -> int:
    state = _state_file(args.workdir)
    if not state.is_file():
        print("no sandbox running", file=sys.stderr)
        return 0
    pid = int(json.loads(state.read_text())["pid"])
    if _alive(pid):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 60
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    if _alive(pid):
        os.kill(pid, signal.SIGKILL)  # its children die with it (PR_SET_PDEATHSIG)
    state.unlink(missing_ok=True)
    print(f"sandbox (pid {pid}) stopped")
    return 0


def sandbox_status(args: argparse.Namespace) -> int:
    state = _state_file(args.workdir)
    if not state.is_file() or not _alive(int(json.loads(state.read_text()).get("pid", 0))):
        print("no sandbox running", file=sys.stderr)
        return 1
    print(state.read_text().strip())
    return 0


# ----------------------------------------------------------------------------------- apiserver


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
