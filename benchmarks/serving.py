#!/usr/bin/env python3
"""Load-test the real ranking service over loopback and compare it with bare scoring.

    python benchmarks/serving.py [--encoders none,fp32,int8@1,int8,static | --model URI
                                 | --models LABEL=URI,...] [--driver auto|wrk|aiohttp]
                                 [--concurrency 16] [--requests N] [--duration S]
                                 [--no-cache | --phases mixed,cold]

What it does, bounded and self-stopping:

1. Without ``--model``/``--models`` it trains one artifact per ``--encoders`` entry
   (``rankops train --query-encoder X`` on the bundled dataset into a temporary directory,
   removed afterwards): ``none`` is the baseline (BM25 candidates and the learned re-ranker
   on lexical and metadata signals only, no sentence encoder), ``fp32``/``int8`` use
   all-MiniLM-L6-v2 for each query, ``static`` the encoder distilled from it
   (``rankops.serving.static_encoder``). ``X@N`` serves X's artifact with at most N queries
   per encoder pass (``$RANKOPS_QUERY_BATCH``; ``int8@1``: every query its own pass, as
   before the query batcher), so batched and unbatched are measured in the same run. Every
   model runs the same phases in the same run,
   and the closing table gives each one's p50/p95 as ratios to the baseline's (the first
   model) in the same phase.
2. For each phase it starts ``rankops serve`` as a subprocess on a free loopback port,
   waits for ``/readyz``, drives ``POST /v1/rank`` with ``--concurrency`` clients, then
   stops the server. Two load generators (``--driver``; default ``wrk`` when installed):

   * ``wrk`` (the C load generator, Debian package ``wrk``): ``--concurrency`` keep-alive
     connections on ``--wrk-threads`` threads (default 1, so the server keeps the other
     core of a 2-core machine) for ``--duration`` seconds; a Lua script rotates the request
     bodies and reports the percentiles as JSON. Each connection sends its next request as
     soon as the previous answer arrives, as the aiohttp clients do.
   * ``aiohttp``: ``--concurrency`` closed-loop async clients in Python, until ``--requests``
     are done or ``--duration`` seconds have passed. It spends about as much CPU as the
     server, so on 2 cores it measures the client as much as the service.

   Phase ``mixed`` (cache on): queries from the bundled dataset, ``--unique-fraction`` of
   them made unique (cache misses), the rest repeated (hits once seen). Phase ``cold``: a
   server started with the cache off (``--no-cache``) and every query made unique, so no
   memo anywhere (the result cache, the MiniLM encoder's per-text memo, the query parser's)
   spares any request the model. Each phase first runs one client alone (``mixed-c1``,
   ``cold-c1``: ``--serial-requests``, or a third of ``--duration`` under wrk) to measure
   the overhead without queueing.
3. In this process it loads the same artifact and times ``artifact.rank`` in a loop (the
   bare scoring cost) and the service's whole scoring step (region, domain, candidates,
   local-first) without HTTP.

It prints client-side p50/p95/p99 latency, requests/s, errors, the cache hit rate, the
server-side p50/p95 (from the service's own latency histogram), the bare p50 and two ratios
of end-to-end p50 to bare p50: with one client (``cold-c1``: the serving stack's overhead
over scoring, nothing queued) and with ``--concurrency`` clients (which adds queueing: with N
clients each waiting for its answer, mean latency = N / throughput, Little's law).
``--json PATH`` also writes the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import math
import os
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import aiohttp

WRK_SCRIPT = r"""
local bodies = {}
for line in io.lines(os.getenv("RANKOPS_BENCH_BODIES")) do bodies[#bodies + 1] = line end
local n = 0
local counter = 0

setup = function(thread)
  thread:set("offset", counter * 7919)
  counter = counter + 1
end

init = function(args)
  n = tonumber(offset) or 0
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
end

request = function()
  n = n + 1
  return wrk.format(nil, "/v1/rank", nil, bodies[(n % #bodies) + 1])
end

done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'RANKOPS_WRK {"requests":%d,"duration_us":%d,"p50_us":%d,"p95_us":%d,"p99_us":%d,' ..
    '"max_us":%d,"mean_us":%.1f,"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(95),
    latency:percentile(99), latency.max, latency.mean, e.connect, e.read, e.write, e.status, e.timeout))
end
"""

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT / "examples" / "data" / "datasets"


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", help="one artifact URI (no baseline); default: train --encoders")
    p.add_argument(
        "--models",
        default="",
        help="LABEL=URI,... artifacts to compare (the first is the baseline); default: train --encoders",
    )
    p.add_argument(
        "--encoders",
        default="none,fp32,int8,static",
        help="query encoders to train a model with and compare, the first being the baseline "
        "(default: %(default)s)",
    )
    p.add_argument(
        "--data",
        type=Path,
        default=DEFAULT_DATA,
        help="BEIR dataset folder (default: the bundled one, generated into a temporary folder if absent)",
    )
    p.add_argument(
        "--driver",
        choices=("auto", "wrk", "aiohttp"),
        default="auto",
        help="load generator (auto: wrk when installed, else aiohttp)",
    )
    p.add_argument(
        "--wrk-threads", type=int, default=1, help="wrk threads (default 1: the server keeps a core)"
    )
    p.add_argument("--concurrency", type=int, default=16, help="clients (wrk: connections)")
    p.add_argument("--requests", type=int, default=4000, help="aiohttp: timed requests per phase")
    p.add_argument(
        "--duration", type=float, default=15.0, help="seconds per phase (aiohttp: at most, wrk: exactly)"
    )
    p.add_argument("--warmup", type=int, default=200, help="untimed requests before each phase")
    p.add_argument("--k", type=int, default=10)
    p.add_argument("--unique-fraction", type=float, default=0.1, help="share of never-repeated queries")
    p.add_argument("--phases", default="mixed,cold", help="comma list of: mixed (cache on), cold (cache off)")
    p.add_argument("--no-cache", action="store_true", help="only the cold phase (same as --phases cold)")
    p.add_argument("--bare-iterations", type=int, default=1000)
    p.add_argument(
        "--serial-requests",
        type=int,
        default=300,
        help="cold phase: requests from one client first (0: skip)",
    )
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--json", type=Path, help="also write the figures here")
    args = p.parse_args(argv)
    if args.no_cache:
        args.phases = "cold"
    args.phases = [x.strip() for x in args.phases.split(",") if x.strip()]
    args.encoders = [x.strip() for x in args.encoders.split(",") if x.strip()]
    if {e.partition("@")[0] for e in args.encoders} - {"none", "fp32", "int8", "static"}:
        p.error("--encoders: a comma list of none, fp32, int8, static (each optionally @N)")
    if any(e.partition("@")[1] and not e.partition("@")[2].isdigit() for e in args.encoders):
        p.error("--encoders: @N is the most queries per encoder pass, a whole number (1: unbatched)")
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    if any("=" not in m for m in models):
        p.error("--models: a comma list of LABEL=URI")
    args.models = [tuple(m.split("=", 1)) for m in models]
    unknown = set(args.phases) - {"mixed", "cold"}
    if unknown:
        p.error(f"unknown phase(s): {', '.join(sorted(unknown))}")
    if args.concurrency < 1 or args.requests < 1 or args.duration <= 0 or args.wrk_threads < 1:
        p.error("--concurrency, --requests and --wrk-threads must be >= 1 and --duration > 0")
    if args.driver == "auto":
        args.driver = "wrk" if shutil.which("wrk") else "aiohttp"
    elif args.driver == "wrk" and not shutil.which("wrk"):
        p.error("--driver wrk: no wrk on PATH (Debian: apt-get install wrk)")
    # wrk needs at least one connection per thread
    args.wrk_threads = min(args.wrk_threads, args.concurrency)
    return args


# -- inputs ---------------------------------------------------------------------------------


def load_queries(data: Path) -> list[str]:
    texts: list[str] = []
    for path in sorted(data.rglob("queries.jsonl")):
        with path.open(encoding="utf-8") as fh:
            for line in fh:
                line = line.strip()
                if line:
                    text = json.loads(line).get("text", "").strip()
                    if text:
                        texts.append(text[:500])
    unique = sorted(set(texts))
    if not unique:
        raise SystemExit(f"no queries found under {data} (expected BEIR queries.jsonl files)")
    return unique


def query_stream(queries: Sequence[str], unique_fraction: float, seed: int) -> Iterator[str]:
    """Search-log-like traffic: dataset queries with Zipf popularity (s = 1: a few are asked
    often, most rarely; cache hits once seen), plus a share of never-repeated queries."""
    rnd = random.Random(seed)
    pool = list(queries)
    rnd.shuffle(pool)
    weights = [1.0 / rank for rank in range(1, len(pool) + 1)]
    cumulative = list(itertools.accumulate(weights))
    n = 0
    while True:
        n += 1
        base = rnd.choices(pool, cum_weights=cumulative)[0]
        yield f"{base} v{n}" if rnd.random() < unique_fraction else base


@contextlib.contextmanager
def model_uris(args: argparse.Namespace) -> Iterator[list[tuple[str, str]]]:
    """(label, artifact URI) of every model to compare; trained here unless given."""
    if args.model:
        yield [("model", args.model)]
        return
    if args.models:
        yield list(args.models)
        return
    tmp = Path(tempfile.mkdtemp(prefix="rankops-bench-"))
    try:
        out = []
        for label in args.encoders:
            encoder = label.partition("@")[0]  # int8 and int8@1 serve the same artifact
            path = tmp / f"model-{encoder}"
            if not path.exists():
                print(f"training a model with query encoder {encoder} into {path} ...", flush=True)
                cmd = [sys.executable, "-m", "rankops.cli", "train", "--data", str(args.data)]
                cmd += ["--out", str(path), "--version", "0.0.1-bench", "--query-encoder", encoder]
                subprocess.run(cmd, check=True, cwd=ROOT)
            out.append((label, str(path)))
        yield out
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


# -- the server -----------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def running_server(uri: str, *, cache: bool, log_path: Path, query_batch: str = "") -> Iterator[str]:
    port = free_port()
    cmd = [sys.executable, "-m", "rankops.cli", "serve", "--model", uri, "--host", "127.0.0.1"]
    cmd += ["--port", str(port), "--log-level", "warning"]
    if not cache:
        cmd.append("--no-cache")
    env = {**os.environ, "RANKOPS_TRACK": "bench"}
    if query_batch:
        env["RANKOPS_QUERY_BATCH"] = query_batch
    with log_path.open("wb") as log:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            yield f"http://127.0.0.1:{port}"
        finally:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def log_tail(path: Path, chars: int = 2000) -> str:
    return path.read_text(errors="replace")[-chars:]


async def wait_ready(base: str, limit_s: float, log_path: Path) -> dict[str, Any]:
    deadline = time.monotonic() + limit_s
    last = "no answer"
    async with aiohttp.ClientSession() as session:
        while time.monotonic() < deadline:
            try:
                async with session.get(f"{base}/readyz") as r:
                    body = await r.json()
                    if r.status == 200:
                        return dict(body)
                    last = json.dumps(body)
                    if body.get("status") == "failed":
                        break
            except aiohttp.ClientError as exc:
                last = repr(exc)
            await asyncio.sleep(0.2)
    tail = log_tail(log_path)
    raise SystemExit(f"server at {base} never became ready: {last}\n--- server log ---\n{tail}")


# -- the load -------------------------------------------------------------------------------


async def drive(
    base: str, queries: Iterator[str], *, concurrency: int, count: int, duration: float, k: int, timed: bool
) -> dict[str, Any]:
    latencies: list[float] = []
    errors: dict[str, int] = {}
    cached = 0
    issued = 0
    url = f"{base}/v1/rank"
    connector = aiohttp.TCPConnector(limit=concurrency, force_close=False)
    timeout = aiohttp.ClientTimeout(total=30)
    deadline = time.monotonic() + duration

    async def client(session: aiohttp.ClientSession) -> None:
        nonlocal issued, cached
        while issued < count and time.monotonic() < deadline:
            issued += 1
            body = {"query": next(queries), "k": k}
            started = time.perf_counter()
            try:
                async with session.post(url, json=body) as r:
                    payload = await r.read()
                    elapsed = time.perf_counter() - started
                    if r.status != 200:
                        errors[str(r.status)] = errors.get(str(r.status), 0) + 1
                        continue
            except (aiohttp.ClientError, TimeoutError) as exc:
                errors[type(exc).__name__] = errors.get(type(exc).__name__, 0) + 1
                continue
            latencies.append(elapsed)
            if b'"cached":true' in payload:
                cached += 1

    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        started = time.perf_counter()
        await asyncio.gather(*(client(session) for _ in range(concurrency)))
        wall = time.perf_counter() - started
    if not timed:
        return {}
    return summarize(latencies, wall, errors, cached)


def write_bodies(path: Path, queries: Iterator[str], count: int, k: int) -> Path:
    """``count`` request bodies from ``queries``, one JSON object a line (wrk reads them)."""
    with path.open("w", encoding="utf-8") as fh:
        for _ in range(count):
            fh.write(json.dumps({"query": next(queries), "k": k}) + "\n")
    return path


def drive_wrk(
    base: str, bodies: Path, script: Path, *, connections: int, threads: int, duration: float
) -> dict[str, Any]:
    """Run wrk against ``POST /v1/rank`` for ``duration`` seconds; its figures, as summarize's."""
    threads = min(threads, connections)
    seconds = max(1, round(duration))
    cmd = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--timeout", "10s", "--latency"]
    cmd += ["-s", str(script), base]
    env = {**os.environ, "RANKOPS_BENCH_BODIES": str(bodies)}
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=seconds + 60, check=False)
    line = next((x for x in proc.stdout.splitlines() if x.startswith("RANKOPS_WRK ")), None)
    if proc.returncode != 0 or line is None:
        raise SystemExit(f"wrk failed ({proc.returncode}): {proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
    w = json.loads(line.removeprefix("RANKOPS_WRK "))
    wall = w["duration_us"] / 1e6
    errors = {name: w[name] for name in ("connect", "read", "write", "status", "timeout") if w[name]}
    # wrk counts every completed response in requests, non-2xx ones too (errors["status"])
    ok = w["requests"] - w["status"]
    return {
        "requests_ok": ok,
        "errors": errors,
        "error_count": sum(errors.values()),
        "wall_s": round(wall, 3),
        "requests_per_s": round(ok / wall, 1) if wall > 0 else 0.0,
        "p50_ms": round(w["p50_us"] / 1000, 3),
        "p95_ms": round(w["p95_us"] / 1000, 3),
        "p99_ms": round(w["p99_us"] / 1000, 3),
        "max_ms": round(w["max_us"] / 1000, 3),
        "mean_ms": round(w["mean_us"] / 1000, 3),
        "wrk": {"threads": threads, "connections": connections, "duration_s": seconds},
    }


def percentile(sorted_values: Sequence[float], q: float) -> float:
    if not sorted_values:
        return float("nan")
    index = min(len(sorted_values) - 1, max(0, round(q / 100 * len(sorted_values) + 0.5) - 1))
    return sorted_values[index]


def summarize(latencies: list[float], wall: float, errors: dict[str, int], cached: int) -> dict[str, Any]:
    ms = sorted(x * 1000 for x in latencies)
    n = len(ms)
    return {
        "requests_ok": n,
        "errors": errors,
        "error_count": sum(errors.values()),
        "wall_s": round(wall, 3),
        "requests_per_s": round(n / wall, 1) if wall > 0 else 0.0,
        "p50_ms": round(percentile(ms, 50), 3),
        "p95_ms": round(percentile(ms, 95), 3),
        "p99_ms": round(percentile(ms, 99), 3),
        "max_ms": round(ms[-1], 3) if ms else float("nan"),
        "mean_ms": round(statistics.fmean(ms), 3) if ms else float("nan"),
        "client_cache_hit_rate": round(cached / n, 4) if n else 0.0,
    }


async def scrape_cache_stats(base: str) -> dict[str, Any]:
    async with aiohttp.ClientSession() as session, session.get(f"{base}/v1/cache/stats") as r:
        return dict(await r.json())


ENCODER_COUNTERS = ("rankops_query_encoder_passes_total", "rankops_query_encoder_queries_total")


async def scrape_server_metrics(base: str) -> tuple[dict[float, float], dict[str, float]]:
    """(upper bound -> cumulative count of the server's rankops_request_duration_seconds,
    the encoder's pass and query counters: absent for a model without a sentence encoder)."""
    from prometheus_client.parser import text_string_to_metric_families

    async with aiohttp.ClientSession() as session, session.get(f"{base}/metrics") as r:
        text = await r.text()
    buckets: dict[float, float] = {}
    encoder: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if family.name == "rankops_request_duration_seconds" and sample.name.endswith("_bucket"):
                buckets[float(sample.labels["le"])] = sample.value
            elif sample.name in ENCODER_COUNTERS:
                encoder[sample.name] = sample.value
    return buckets, encoder


def mean_encoder_batch(before: dict[str, float], after: dict[str, float]) -> float | None:
    """Queries per encoder pass between two scrapes (background jobs' passes included)."""
    passes_name, queries_name = ENCODER_COUNTERS
    passes = after.get(passes_name, 0.0) - before.get(passes_name, 0.0)
    if passes <= 0:
        return None
    return round((after.get(queries_name, 0.0) - before.get(queries_name, 0.0)) / passes, 2)


def histogram_quantile(q: float, before: dict[float, float], after: dict[float, float]) -> float:
    """Prometheus-style quantile (linear within a bucket) of the observations between scrapes, ms."""
    bounds = sorted(after)
    counts = [after[b] - before.get(b, 0.0) for b in bounds]
    total = counts[-1] if counts else 0.0
    if total <= 0:
        return float("nan")
    rank = q * total
    lower, below = 0.0, 0.0
    for bound, cumulative in zip(bounds, counts, strict=True):
        if cumulative >= rank:
            if math.isinf(bound):
                return lower * 1000
            inside = cumulative - below
            return (lower + (bound - lower) * ((rank - below) / inside if inside else 1.0)) * 1000
        lower, below = bound, cumulative
    return lower * 1000


async def run_phase(
    uri: str,
    phase: str,
    args: argparse.Namespace,
    queries: Sequence[str],
    workdir: Path,
    query_batch: str = "",
) -> list[dict[str, Any]]:
    """One server, one phase; the cold phase first measures one client alone (no queueing)."""
    log_path = workdir / f"server-{phase}.log"
    rows = []
    with running_server(uri, cache=phase == "mixed", log_path=log_path, query_batch=query_batch) as base:
        ready = await wait_ready(base, 180.0, log_path)
        unique = 1.0 if phase == "cold" else args.unique_fraction
        stream = query_stream(queries, unique, args.seed)
        await drive(
            base, stream, concurrency=args.concurrency, count=args.warmup, duration=30, k=args.k, timed=False
        )
        runs = [(phase, args.concurrency, args.requests)]
        if args.serial_requests > 0:
            runs.insert(0, (f"{phase}-c1", 1, args.serial_requests))
        for name, concurrency, count in runs:
            if args.driver == "wrk":
                # enough bodies that the stream does not wrap within the run (~10k requests/s at most)
                n_bodies = max(count, int(args.duration * 10_000))
                bodies = write_bodies(workdir / f"bodies-{name}.jsonl", stream, n_bodies, args.k)
                script = workdir / "rank.lua"
                script.write_text(WRK_SCRIPT)
            before = await scrape_cache_stats(base)
            buckets_before, encoder_before = await scrape_server_metrics(base)
            if args.driver == "wrk":
                duration = args.duration if concurrency > 1 else max(1.0, args.duration / 3)
                result = await asyncio.to_thread(
                    drive_wrk,
                    base,
                    bodies,
                    script,
                    connections=concurrency,
                    threads=args.wrk_threads,
                    duration=duration,
                )
            else:
                result = await drive(
                    base,
                    stream,
                    concurrency=concurrency,
                    count=count,
                    duration=args.duration,
                    k=args.k,
                    timed=True,
                )
            after = await scrape_cache_stats(base)
            buckets_after, encoder_after = await scrape_server_metrics(base)
            result["driver"] = args.driver
            result["encoder_mean_batch"] = mean_encoder_batch(encoder_before, encoder_after)
            for q in (50, 95, 99):
                result[f"server_p{q}_ms"] = round(
                    histogram_quantile(q / 100, buckets_before, buckets_after), 3
                )
            hits = after["hits"] - before["hits"]
            lookups = hits + after["misses"] - before["misses"]
            result["server_cache_hit_rate"] = round(hits / lookups, 4) if lookups else 0.0
            result.update(phase=name, concurrency=concurrency, sha256=ready.get("sha256"))
            rows.append(result)
    return rows


# -- bare scoring ---------------------------------------------------------------------------


def bare_scoring(uri: str, queries: Sequence[str], iterations: int, k: int) -> dict[str, Any]:
    """p50 of ``artifact.rank`` alone and of the service's whole scoring step, in-process."""
    import torch

    from rankops.serving.artifact import load_artifact
    from rankops.serving.encoder import shared_encoder
    from rankops.serving.service import RankingService, ServiceSettings

    settings = ServiceSettings()
    torch.set_num_threads(settings.torch_threads)  # as the server does
    artifact = load_artifact(uri)
    service = RankingService(uri, settings)
    # every call a new text, so no per-text memo (the MiniLM encoder keeps one) flatters it:
    # the two loops time different texts, and a model measured earlier in this process with
    # the same encoder (int8@1, then int8) left its texts in the encoder's memo
    if artifact.query_batcher is not None:
        shared_encoder(artifact.encoder_precision).query.cache_clear()
    sample = [f"{queries[i % len(queries)]} {i}" for i in range(iterations)]
    for q in sample[:20]:  # warm-up: first calls allocate
        artifact.rank(q, k)
    rank_ms, score_ms = [], []
    for q in sample:
        t = time.perf_counter()
        artifact.rank(q, k)
        rank_ms.append((time.perf_counter() - t) * 1000)
        t = time.perf_counter()
        service._score(artifact, f"{q} scored", k)
        score_ms.append((time.perf_counter() - t) * 1000)
    return {
        "bare_rank_p50_ms": round(statistics.median(rank_ms), 3),
        "bare_rank_p95_ms": round(percentile(sorted(rank_ms), 95), 3),
        "bare_service_scoring_p50_ms": round(statistics.median(score_ms), 3),
        "catalog_size": len(artifact.catalog),
    }


# -- main -----------------------------------------------------------------------------------


@contextlib.contextmanager
def dataset_dir(data: Path) -> Iterator[Path]:
    """``data``, or the bundled dataset generated into a temporary folder when it is absent."""
    if (data / "queries.jsonl").is_file() or data != DEFAULT_DATA:
        yield data
        return
    with tempfile.TemporaryDirectory(prefix="rankops-bench-data-") as tmp:
        print(f"{data} not generated yet: generating the bundled dataset into {tmp}", flush=True)
        script = ROOT / "examples" / "data" / "generate_datasets.py"
        subprocess.run([sys.executable, str(script), "--out", tmp], check=True, cwd=ROOT)
        yield Path(tmp)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    with dataset_dir(args.data) as data:
        args.data = data
        return run(args)


def run(args: argparse.Namespace) -> int:
    queries = load_queries(args.data)
    report: dict[str, Any] = {
        "load_average_before": os.getloadavg(),
        "concurrency": args.concurrency,
        "requests": args.requests,
        "k": args.k,
        "unique_fraction": args.unique_fraction,
        "cpus": os.cpu_count(),
        "queries_in_dataset": len(queries),
        "models": [],
    }
    print(f"driver {args.driver}; load average (1, 5, 15 min) before the run: {os.getloadavg()}", flush=True)
    with model_uris(args) as uris, tempfile.TemporaryDirectory(prefix="rankops-bench-logs-") as logs:
        for label, uri in uris:
            print(f"measuring {label} ({uri}) ...", flush=True)
            entry: dict[str, Any] = {"label": label, "model": uri}
            (Path(logs) / label).mkdir()
            entry["bare"] = bare_scoring(uri, queries, args.bare_iterations, args.k)
            entry["phases"] = [
                row
                for p in args.phases
                for row in asyncio.run(
                    run_phase(uri, p, args, queries, Path(logs) / label, label.partition("@")[2])
                )
            ]
            report["models"].append(entry)
            print_model(entry, args)
    if len(report["models"]) > 1:
        print_comparison(report["models"], args)
    print(f"load average (1, 5, 15 min) after the run: {os.getloadavg()}")
    report["driver"] = args.driver
    report["wrk_threads"] = args.wrk_threads if args.driver == "wrk" else None
    report["load_average_after"] = os.getloadavg()
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    failed = any(ph["error_count"] for m in report["models"] for ph in m["phases"])
    return 1 if failed else 0


def print_model(entry: dict[str, Any], args: argparse.Namespace) -> None:
    bare = entry["bare"]
    print()
    print(
        f"[{entry['label']}] model {entry['model']}  catalog {bare['catalog_size']} items"
        f"  cpus {os.cpu_count()}"
    )
    if args.driver == "wrk":
        print(
            f"driver: wrk, {args.wrk_threads} thread(s), connections = clients, {args.duration:g} s per run"
            " (c1 runs: a third of that), keep-alive, loopback"
        )
    else:
        print(
            f"driver: aiohttp, closed-loop async clients in this process, up to {args.requests} requests"
            f" or {args.duration:g} s per run, keep-alive, loopback"
        )
    print(
        f"bare in-process: artifact.rank p50 {bare['bare_rank_p50_ms']:.3f} ms"
        f" (p95 {bare['bare_rank_p95_ms']:.3f}),"
        f" service scoring step p50 {bare['bare_service_scoring_p50_ms']:.3f} ms"
    )
    columns = (
        "phase",
        "clients",
        "ok",
        "err",
        "req/s",
        "p50ms",
        "p95ms",
        "p99ms",
        "max",
        "srv50",
        "srv95",
        "hit%",
        "e2e/bare",
    )
    widths = (8, 7, 7, 4, 8, 7, 7, 7, 7, 7, 7, 5, 8)
    print(
        " ".join(
            f"{c:{'<' if i == 0 else '>'}{w}}" for i, (c, w) in enumerate(zip(columns, widths, strict=True))
        )
    )
    for ph in entry["phases"]:
        ph["ratio_p50_to_bare_rank_p50"] = round(ph["p50_ms"] / bare["bare_rank_p50_ms"], 2)
        ph["littles_law_mean_ms"] = round(1000 * ph["concurrency"] / ph["requests_per_s"], 3)
        cells = (
            f"{ph['phase']:<8}",
            f"{ph['concurrency']:>7}",
            f"{ph['requests_ok']:>7}",
            f"{ph['error_count']:>4}",
            f"{ph['requests_per_s']:>8.1f}",
            *(
                f"{ph[key]:>7.2f}"
                for key in ("p50_ms", "p95_ms", "p99_ms", "max_ms", "server_p50_ms", "server_p95_ms")
            ),
            f"{100 * ph['server_cache_hit_rate']:>5.1f}",
            f"{ph['ratio_p50_to_bare_rank_p50']:>8.2f}",
        )
        print(" ".join(cells))
        if ph.get("encoder_mean_batch") is not None:
            print(f"         queries per encoder pass: {ph['encoder_mean_batch']:.2f}")
        if ph["errors"]:
            print(f"         errors: {ph['errors']}")
    print(
        "client-side latency over loopback, ms; srv50/srv95: server-side p50/p95 from the service's own"
        " rankops_request_duration_seconds histogram (interpolated within buckets)"
    )
    print("e2e/bare: client-side p50 / bare artifact.rank p50")
    by_name = {ph["phase"]: ph for ph in entry["phases"]}
    if "cold-c1" in by_name:
        c1 = by_name["cold-c1"]
        step = c1["p50_ms"] / bare["bare_service_scoring_p50_ms"]
        print(
            f"ratio at 1 client (serving-stack overhead, no queueing; every request scored):"
            f" {c1['p50_ms']:.3f} / {bare['bare_rank_p50_ms']:.3f} = {c1['ratio_p50_to_bare_rank_p50']:.2f}"
            f"  (over the service's whole scoring step: {step:.2f})"
        )
    for name in ("mixed", "cold"):
        if name in by_name:
            ph = by_name[name]
            print(
                f"ratio at {ph['concurrency']} clients, {name} (includes queueing; Little's law: mean"
                f" latency = clients / throughput = {ph['littles_law_mean_ms']:.2f} ms,"
                f" measured mean {ph['mean_ms']:.2f}): {ph['ratio_p50_to_bare_rank_p50']:.2f}"
            )


def print_comparison(models: list[dict[str, Any]], args: argparse.Namespace) -> None:
    """Each model's p50/p95 per phase, and as ratios to the baseline's (the first model)."""
    base = {ph["phase"]: ph for ph in models[0]["phases"]}
    print()
    print(f"comparison, same run; baseline = {models[0]['label']} (ratios: model / baseline in that phase)")
    header = f"{'model':<8} {'phase':<9} {'clients':>7} {'cache':>5} {'req/s':>8} {'p50ms':>8} {'p95ms':>8}"
    print(header + f" {'p50/base':>8} {'p95/base':>8} {'rank p50':>8}")
    for m in models:
        for ph in m["phases"]:
            b = base.get(ph["phase"])
            r50 = ph["p50_ms"] / b["p50_ms"] if b and b["p50_ms"] > 0 else float("nan")
            r95 = ph["p95_ms"] / b["p95_ms"] if b and b["p95_ms"] > 0 else float("nan")
            cache = "on" if ph["phase"].startswith("mixed") else "off"
            print(
                f"{m['label']:<8} {ph['phase']:<9} {ph['concurrency']:>7} {cache:>5}"
                f" {ph['requests_per_s']:>8.1f}"
                f" {ph['p50_ms']:>8.2f} {ph['p95_ms']:>8.2f} {r50:>8.2f} {r95:>8.2f}"
                f" {m['bare']['bare_rank_p50_ms']:>8.3f}"
            )
    print("rank p50: the bare in-process artifact.rank p50, ms (every call a new query text)")
    for m in models:
        cold = next((ph for ph in m["phases"] if ph["phase"] == "cold"), None)
        if cold is not None:
            verdict = "meets" if cold["p95_ms"] <= 50 else "misses"
            print(
                f"target (issue 11): p95 <= 50 ms at {args.concurrency} clients without cache:"
                f" {m['label']} {cold['p95_ms']:.2f} ms, {verdict} it"
            )


if __name__ == "__main__":
    sys.exit(main())
