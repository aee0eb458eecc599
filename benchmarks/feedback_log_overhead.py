#!/usr/bin/env python3
"""What the durable feedback log costs a ranking request, against the same service without it.

    python benchmarks/feedback_log_overhead.py --model URI [--requests 3000 --rounds 5]

Builds two apps on the same artifact in this process, one with ``feedback_log`` set (a
temporary directory) and one without, and drives their whole ASGI stack directly (no
sockets, no client: only the server's own CPU per request) with cached ``POST /v1/rank``
and ``POST /api/v2/search`` bodies and a judged ``POST /v1/feedback`` after each ranking.
Rounds alternate between the two apps so load from other processes hits both alike; each
figure is the best round. Prints microseconds per request and the ratio with/without.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import FastAPI

from rankops.serving.app import create_app
from rankops.serving.service import ServiceSettings

ASGI = Callable[[dict[str, Any], Any, Any], Awaitable[None]]


async def call(stack: ASGI, app: FastAPI, path: str, body: bytes) -> tuple[int, bytes]:
    scope = {
        "type": "http",
        "method": "POST",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
        "http_version": "1.1",
        "scheme": "http",
        "server": ("bench", 80),
        "client": ("bench", 1),
        "root_path": "",
        "app": app,
    }
    delivered = False
    status = 0
    chunks: list[bytes] = []

    async def receive() -> dict[str, Any]:
        nonlocal delivered
        if not delivered:
            delivered = True
            return {"type": "http.request", "body": body, "more_body": False}
        await asyncio.sleep(3600)
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))

    await stack(scope, receive, send)
    return status, b"".join(chunks)


async def round_us(stack: ASGI, app: FastAPI, scenario: str, n: int) -> float:
    rank = b'{"query": "hdb resale prices", "k": 10}'
    search = b'{"query": "hdb resale prices", "max_results": 10}'
    statuses: list[int] = []
    started = time.perf_counter()
    for _ in range(n):
        if scenario == "rank":
            statuses.append((await call(stack, app, "/v1/rank", rank))[0])
        elif scenario == "search":
            statuses.append((await call(stack, app, "/api/v2/search", search))[0])
        else:  # rank, then judge its top result
            status, body = await call(stack, app, "/v1/rank", rank)
            ranked = json.loads(body)
            feedback = {"request_id": ranked["request_id"], "judgments": {ranked["results"][0]["id"]: 3}}
            statuses += [status, (await call(stack, app, "/v1/feedback", json.dumps(feedback).encode()))[0]]
        # A server's loop turns between requests (socket I/O); here too, so the log's writer
        # task gets its turns as it would in `rankops serve`.
        await asyncio.sleep(0)
    elapsed = time.perf_counter() - started
    failed = [s for s in statuses if s != 200]
    if failed:
        raise SystemExit(f"{scenario}: {len(failed)} requests failed (statuses {sorted(set(failed))})")
    return elapsed / n * 1e6


async def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", required=True, help="artifact URI")
    p.add_argument("--requests", type=int, default=3000, help="requests per round")
    p.add_argument("--rounds", type=int, default=5)
    args = p.parse_args()
    with tempfile.TemporaryDirectory(prefix="rankops-feedback-log-bench-") as log_dir:
        base = {"model_name": "bench", "golden_interval_s": 3600.0, "drift_interval_s": 3600.0}
        apps = {
            "without log": create_app(args.model, ServiceSettings(**base)),  # type: ignore[arg-type]
            "with log": create_app(args.model, ServiceSettings(**base, feedback_log=log_dir)),  # type: ignore[arg-type]
        }
        stacks = {}
        for name, app in apps.items():
            service = app.state.service
            await service.start()
            await service.wait_until_settled()
            stacks[name] = app.build_middleware_stack()
        print(f"model {args.model}; {args.rounds} alternating rounds of {args.requests} requests; best round")
        print(f"{'scenario':18s} {'without log':>12s} {'with log':>12s} {'ratio':>7s}")
        for scenario in ("rank", "search", "rank+feedback"):
            best = dict.fromkeys(apps, float("inf"))
            for _ in range(args.rounds):
                for name, app in apps.items():
                    best[name] = min(best[name], await round_us(stacks[name], app, scenario, args.requests))
            ratio = best["with log"] / best["without log"]
            print(f"{scenario:18s} {best['without log']:10.1f}us {best['with log']:10.1f}us {ratio:7.2f}")
        for app in apps.values():
            await app.state.service.stop()
        log = apps["with log"].state.service.feedback_log
        print(f"records written by the logging app: {log.written}")


if __name__ == "__main__":
    asyncio.run(main())
