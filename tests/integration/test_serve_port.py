"""`rankops serve` binds ``$RANKOPS_PORT`` (what the operator's pods set) unless ``--port`` is given."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests import service_support
from tests.integration.harness import free_port, stop_process, wait_for

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.timeout(180)


def healthy(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as response:
            return bool(response.status == 200)
    except OSError:
        return False


Serve = Callable[..., subprocess.Popen[bytes]]


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Serve]:
    """Start ``rankops serve`` with ``RANKOPS_PORT=env_port`` and ``flags``; stopped at teardown."""
    model = str(service_support.artifact())
    procs: list[subprocess.Popen[bytes]] = []
    with contextlib.ExitStack() as logs:

        def start(env_port: int, *flags: str) -> subprocess.Popen[bytes]:
            env = {k: v for k, v in os.environ.items() if not k.startswith("RANKOPS_")}
            env["RANKOPS_PORT"] = str(env_port)
            log = logs.enter_context((tmp_path / f"serve-{len(procs)}.log").open("wb"))
            cmd = [sys.executable, "-m", "rankops.cli", "serve", "--model", model, *flags]
            proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
            procs.append(proc)
            return proc

        try:
            yield start
        finally:
            for proc in procs:
                stop_process(proc, 15)


def test_serve_listens_on_rankops_port(serve: Serve) -> None:
    port = free_port()
    proc = serve(port)
    wait_for(lambda: proc.poll() is not None or healthy(port), 90, 0.1, f"serve on $RANKOPS_PORT {port}")
    assert proc.poll() is None and healthy(port)


def test_port_flag_wins_over_rankops_port(serve: Serve) -> None:
    env_port, flag_port = free_port(), free_port()
    proc = serve(env_port, "--port", str(flag_port))
    wait_for(lambda: proc.poll() is not None or healthy(flag_port), 90, 0.1, f"serve on --port {flag_port}")
    assert proc.poll() is None and healthy(flag_port)
    assert not healthy(env_port)
