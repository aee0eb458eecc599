#!/usr/bin/env python3
"""The operations runbook's training-mapping compliance check, over HTTP.

    python benchmarks/runbook_compliance.py --url http://127.0.0.1:8080
    python benchmarks/runbook_compliance.py --model PATH   # serves PATH on a free loopback port

For each of the runbook's four queries it POSTs ``/api/v2/search`` and checks that one of the
expected publishers (``recommendations[].source``, a slug) is in the top 3 and that the mean
``quality_metrics.relevance_score`` of the top 3 is at least the runbook's threshold minus
0.1. It prints one line per query and ``N/4 passed``; the exit status is 0 only for 4/4.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]

# (query, acceptable sources in the top 3, runbook's minimum mean relevance_score)
CHECKS: list[tuple[str, tuple[str, ...], float]] = [
    ("psychology research data", ("kaggle", "zenodo"), 0.85),
    ("singapore housing prices", ("data_gov_sg", "singstat"), 0.90),
    ("climate change indicators", ("world_bank", "zenodo"), 0.88),
    ("machine learning datasets", ("kaggle",), 0.92),
]
TOLERANCE = 0.1


@dataclass(frozen=True)
class Outcome:
    query: str
    passed: bool
    top3_sources: list[str]
    mean_relevance: float
    threshold: float

    def line(self) -> str:
        mark = "PASS" if self.passed else "FAIL"
        return (
            f"{mark}  {self.query!r:30} top-3 sources {','.join(self.top3_sources):<34} "
            f"mean relevance_score {self.mean_relevance:.3f} (>= {self.threshold:.2f})"
        )


def search(url: str, query: str) -> dict[str, Any]:
    req = urllib.request.Request(
        f"{url}/api/v2/search",
        data=json.dumps({"query": query, "limit": 10}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=30) as r:
        body: dict[str, Any] = json.loads(r.read())
    return body


def run_checks(url: str) -> list[Outcome]:
    out = []
    for query, sources, minimum in CHECKS:
        recs = search(url, query)["recommendations"][:3]
        top_sources = [str(r["source"]) for r in recs]
        scores = [float(r["quality_metrics"]["relevance_score"]) for r in recs]
        mean = sum(scores) / len(scores) if scores else 0.0
        threshold = minimum - TOLERANCE
        passed = any(s in sources for s in top_sources) and mean >= threshold
        out.append(Outcome(query, passed, top_sources, mean, threshold))
    return out


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _serve(model: str) -> tuple[subprocess.Popen[bytes], str]:
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("RANKOPS_")}
    env["PYTHONPATH"] = os.pathsep.join(
        [str(ROOT / d) for d in ("operator", "serving", "sandbox", "cli")] + [env.get("PYTHONPATH", "")]
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "rankops.cli", "serve", "--model", model, "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"rankops serve exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(f"{url}/readyz", timeout=2) as r:
                if r.status == 200:
                    return proc, url
        except (OSError, urllib.error.HTTPError):
            pass
        time.sleep(0.2)
    proc.kill()
    raise RuntimeError("rankops serve did not become ready in 120 s")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--url", help="a running service")
    group.add_argument("--model", help="an artifact to serve for the check")
    args = parser.parse_args(argv)
    proc = None
    url = args.url
    if args.model:
        proc, url = _serve(args.model)
    try:
        outcomes = run_checks(url.rstrip("/"))
    finally:
        if proc is not None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
    for o in outcomes:
        print(o.line())
    passed = sum(o.passed for o in outcomes)
    print(f"{passed}/{len(outcomes)} passed")
    return 0 if passed == len(outcomes) else 1


if __name__ == "__main__":
    raise SystemExit(main())
