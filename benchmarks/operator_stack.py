"""What the operator benchmarks share: this checkout's sources on ``sys.path`` (importing this
module puts them there), and the operator (``rankops operator run``) as a subprocess against a
sandbox API server and a Prometheus, its output in a log file, stopped on exit.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SOURCES = [str(ROOT / d) for d in ("operator", "serving", "sandbox", "cli")]
sys.path[:0] = [str(ROOT), *SOURCES]

from tests.integration.harness import stop_process  # noqa: E402


def operator_log(prefix: str) -> Path:
    """A log file that outlives the run (the benchmark removes it once every run succeeded)."""
    with tempfile.NamedTemporaryFile(prefix=prefix, suffix=".log", delete=False) as log:
        return Path(log.name)


@contextlib.contextmanager
def operator_process(
    api_url: str, prometheus_url: str, log: Path, namespace: str, env: dict[str, str] | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    """The operator watching ``namespace``, short Prometheus/watch timeouts so a benchmark's
    stalls show; ``env`` adds to (and overrides) its environment. SIGTERM on exit."""
    with open(log, "wb") as out:
        operator = subprocess.Popen(
            [sys.executable, "-m", "rankops.cli", "operator", "run", "-n", namespace],
            env={
                **os.environ,
                "RANKOPS_APISERVER_URL": api_url,
                "RANKOPS_PROMETHEUS_URL": prometheus_url,
                "RANKOPS_PROMETHEUS_TIMEOUT": "2",
                "RANKOPS_WATCH_TIMEOUT": "30",
                "RANKOPS_RESYNC_INTERVAL": "10",
                **(env or {}),
                "PYTHONPATH": os.pathsep.join(SOURCES),
            },
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
        )
        try:
            yield operator
        finally:
            stop_process(operator, 15)
