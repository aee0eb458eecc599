"""A stand-in ranking service for the integration tests: one process per track.

It exports exactly the metrics contract (``rankops_ndcg_at_3`` summary, the squares counter
``rankops_ndcg_at_3_squares_sum`` (exposed with ``_total``), ``rankops_requests_total{code}``,
``rankops_request_duration_seconds``, ``rankops_golden_ndcg_at_3``), labelled with ``model``,
``version`` and ``track``, and emits a per-request NDCG@3 stream drawn from a normal
distribution (clipped to [0, 1]) whose mean, sd and rate the test changes at run time:

    GET  /metrics   Prometheus exposition
    GET  /control   the current distribution as JSON
    POST /control   {"mean": 0.3, "sd": 0.05, "rate": 50, "version": "1.1.0", "model": "m"}
                    (any subset; a new model or version starts new series);
                    answers with the applied settings and ``applied_at`` (unix time)
    POST /api/v2/cache/invalidate   the runbook's cache invalidation (the remediation
                    ladder's first step): counted, its last body kept (``invalidations``,
                    ``last_invalidation`` in ``/control``)

Usage: python ndcg_exporter.py --port 0 --model m --version 1.0.0 --track stable \
           --mean 0.8 --sd 0.05 --rate 50 --port-file /tmp/port
With ``--port 0`` the chosen port is written to ``--port-file`` once the server listens.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Summary
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

LABELS = ("model", "version", "track")


class Stream:
    def __init__(
        self,
        model: str,
        version: str,
        track: str,
        mean: float,
        sd: float,
        rate: float,
        golden: float,
        seed: int | None,
    ) -> None:
        self.registry = CollectorRegistry()
        self.ndcg = Summary("rankops_ndcg_at_3", "Per-request NDCG@3", LABELS, registry=self.registry)
        self.squares = Counter(
            "rankops_ndcg_at_3_squares_sum",
            "Sum of squared per-request NDCG@3",
            LABELS,
            registry=self.registry,
        )
        self.requests = Counter(
            "rankops_requests_total", "Ranking requests", (*LABELS, "code"), registry=self.registry
        )
        self.latency = Histogram(
            "rankops_request_duration_seconds", "Request latency", LABELS, registry=self.registry
        )
        self.golden = Gauge("rankops_golden_ndcg_at_3", "Golden-set NDCG@3", LABELS, registry=self.registry)
        self.lock = threading.Lock()
        self.model, self.track = model, track
        self.settings: dict[str, Any] = {
            "version": version,
            "mean": mean,
            "sd": sd,
            "rate": rate,
            "golden": golden,
        }
        self.random = random.Random(seed)
        self.emitted = 0
        self.invalidations = 0
        self.last_invalidation: Any = None
        self._set_golden()

    def _set_golden(self) -> None:
        s = self.settings
        self.golden.labels(self.model, s["version"], self.track).set(s["golden"])

    def update(self, changes: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            for key in ("mean", "sd", "rate", "golden"):
                if key in changes:
                    self.settings[key] = float(changes[key])
            if "version" in changes:
                self.settings["version"] = str(changes["version"])
            if "model" in changes:
                self.model = str(changes["model"])
            self._set_golden()
            return {
                **self.settings,
                "model": self.model,
                "track": self.track,
                "applied_at": time.time(),
                "emitted": self.emitted,
                "invalidations": self.invalidations,
                "last_invalidation": self.last_invalidation,
            }

    def run(self, stop: threading.Event, tick: float = 0.02) -> None:
        owed = 0.0
        last = time.monotonic()
        while not stop.wait(tick):
            now = time.monotonic()
            with self.lock:
                s = dict(self.settings)
                owed += s["rate"] * (now - last)
                last = now
                labels = (self.model, s["version"], self.track)
                while owed >= 1.0:
                    owed -= 1.0
                    value = min(max(self.random.gauss(s["mean"], s["sd"]), 0.0), 1.0)
                    self.ndcg.labels(*labels).observe(value)
                    self.squares.labels(*labels).inc(value * value)
                    self.requests.labels(*labels, "200").inc()
                    self.latency.labels(*labels).observe(0.005 + self.random.random() * 0.01)
                    self.emitted += 1


def make_handler(stream: Stream) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _send(self, status: int, body: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            if self.path.startswith("/metrics"):
                with stream.lock:
                    body = generate_latest(stream.registry)
                self._send(200, body, CONTENT_TYPE_LATEST)
            elif self.path.startswith("/control"):
                self._send(200, json.dumps(stream.update({})).encode(), "application/json")
            else:
                self._send(404, b"not found\n", "text/plain")

        def do_POST(self) -> None:
            if self.path.startswith("/api/v2/cache/invalidate"):
                length = int(self.headers.get("Content-Length") or 0)
                with stream.lock:
                    stream.invalidations += 1
                    stream.last_invalidation = json.loads(self.rfile.read(length) or b"{}")
                self._send(200, b'{"invalidated": 0, "remaining": 0}', "application/json")
                return
            if not self.path.startswith("/control"):
                self._send(404, b"not found\n", "text/plain")
                return
            length = int(self.headers.get("Content-Length") or 0)
            try:
                changes = json.loads(self.rfile.read(length) or b"{}")
                answer = stream.update(changes)
            except (ValueError, TypeError) as exc:
                self._send(400, json.dumps({"error": str(exc)}).encode(), "application/json")
                return
            self._send(200, json.dumps(answer).encode(), "application/json")

    return Handler


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--port-file")
    parser.add_argument("--model", required=True)
    parser.add_argument("--version", required=True)
    parser.add_argument("--track", choices=["stable", "canary"], required=True)
    parser.add_argument("--mean", type=float, default=0.8)
    parser.add_argument("--sd", type=float, default=0.05)
    parser.add_argument("--rate", type=float, default=50.0)
    parser.add_argument("--golden", type=float, default=0.8)
    parser.add_argument("--seed", type=int)
    parser.add_argument("--max-seconds", type=float, default=900.0, help="exit on its own after this long")
    args = parser.parse_args(argv)

    stream = Stream(
        args.model, args.version, args.track, args.mean, args.sd, args.rate, args.golden, args.seed
    )
    server = ThreadingHTTPServer((args.host, args.port), make_handler(stream))
    server.daemon_threads = True
    stop = threading.Event()
    threading.Thread(target=stream.run, args=(stop,), daemon=True).start()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    if args.port_file:
        tmp = f"{args.port_file}.tmp"
        with open(tmp, "w") as f:
            f.write(str(server.server_address[1]))
        os.replace(tmp, args.port_file)

    def on_signal(signum: int, frame: Any) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    stop.wait(args.max_seconds)  # bounded: never outlives a forgotten test run for long
    stop.set()
    server.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
