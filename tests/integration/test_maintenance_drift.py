"""`rankops drift` on real traffic: two `rankops serve` processes on loopback receive queries
over HTTP, and the drift Job reads each pod's rolling window (GET /v1/drift/window).

Queries "from the same distribution" are fresh draws from the generator that made the
bundled dataset (same catalogue, same query model, new random state); "shifted" ones are the
same draws with words the model never saw appended (a new vocabulary in live traffic).

False-alarm rate, measured here over 100 windows of 200 fresh queries each (alpha 0.05 with
Holm's correction over the six features, PSI > 0.25): printed by the test and asserted
<= 10% (measured 0.5-2% while writing this test; at 100 queries per window it is ~24%, from PSI
on rare regions and the 105-query dev reference of max_score, hence the 200 minimum).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from rankops.serving.drift_check import DRIFT, NO_DRIFT, judge_drift
from tests.integration.harness import http_json, wait_for
from tests.integration.maintenance_support import rankops, trained_bundled_model
from tests.integration.test_serving import Server, serving
from tests.unit._model_support import generator

NEW_WORDS = ["blockchain", "metaverse", "crypto", "nft", "quantum", "webinar", "influencer", "vaping"]
WINDOW = 150  # per pod; two pods pool 300 >= the drift Job's minimum of 200


@pytest.fixture(scope="session")
def bundled_model() -> Path:
    return trained_bundled_model()


@pytest.fixture(scope="module")
def query_pool() -> list[str]:
    gen = generator()
    items = gen.make_catalog(np.random.default_rng(13), 1200)  # the bundled catalogue (seed 13)
    texts = [text for _, text, _ in gen.make_queries(np.random.default_rng(2024), items, 3000)]
    # distinct: a pod's window keeps each query once, and these tests count rows
    return list({" ".join(t.casefold().split()): t for t in texts}.values())


def shifted(queries: list[str], seed: int) -> list[str]:
    rng = np.random.default_rng(seed)
    return [f"{q} {' '.join(rng.choice(NEW_WORDS, 2, replace=False))}" for q in queries]


def test_false_alarm_rate_and_power_over_repeated_draws(bundled_model: Path, query_pool: list[str]) -> None:
    from rankops.serving.artifact import load_artifact
    from rankops.serving.drift import query_features_many

    artifact = load_artifact(str(bundled_model))
    features = query_features_many(artifact, query_pool)
    moved_features = query_features_many(artifact, shifted(query_pool, 1))
    rng = np.random.default_rng(7)
    draws, n = 100, 200
    thresholds: dict[str, Any] = {"alpha": 0.05, "psi_threshold": 0.25, "min_samples": n}
    false_alarms = detected = 0
    for _ in range(draws):
        idx = rng.choice(len(query_pool), n, replace=False)
        same = judge_drift(artifact.reference, [features[i] for i in idx], **thresholds)
        false_alarms += same["verdict"] == DRIFT
        moved = judge_drift(artifact.reference, [moved_features[i] for i in idx], **thresholds)
        detected += moved["verdict"] == DRIFT
    print(f"drift check at n={n}: false-alarm rate {false_alarms / draws:.3f}, power {detected / draws:.3f}")
    assert false_alarms / draws <= 0.10
    assert detected / draws >= 0.95


def send(server: Server, queries: list[str]) -> None:
    for q in queries:
        http_json(f"{server.url}/v1/rank", {"query": q, "k": 3})


def window_size(server: Server) -> int:
    status, body = server.get("/v1/drift/window")
    return int(json.loads(body)["n"]) if status == 200 else -1


def observed(server: Server) -> int:
    status, body = server.get("/v1/drift/window")
    return int(json.loads(body)["observed"]) if status == 200 else -1


@pytest.fixture
def pods(bundled_model: Path, tmp_path: Path) -> Iterator[list[Server]]:
    env = {
        "RANKOPS_DRIFT_INTERVAL_S": "0.2",
        "RANKOPS_DRIFT_WINDOW": str(WINDOW),
        "RANKOPS_DRIFT_SAMPLE": "1000",
        "RANKOPS_CACHE_ENTRIES": "0",
    }
    with serving(bundled_model, tmp_path, **env) as a, serving(bundled_model, tmp_path, **env) as b:
        a.wait_ready()
        b.wait_ready()
        yield [a, b]


@pytest.mark.slow
def test_drift_job_reads_each_pod_window_over_http(
    bundled_model: Path, query_pool: list[str], pods: list[Server], tmp_path: Path
) -> None:
    endpoints = [arg for p in pods for arg in ("--endpoint", p.url)]
    status, body = pods[0].get("/v1/drift/window")
    assert status == 200 and json.loads(body)["n"] == 0

    # Too little traffic is no verdict, never a pass.
    send(pods[0], query_pool[:20])
    wait_for(lambda: window_size(pods[0]) == 20, 30, 0.1, "20 queries in the window")
    code, result, err = rankops("drift", "--model", str(bundled_model), *endpoints)
    # Its own exit code (3), so the operator reports DriftInconclusive, not DriftDetected.
    assert code == 3 and result is not None and result["verdict"] == "InsufficientData", err

    same = query_pool[100 : 100 + 2 * WINDOW]
    send(pods[0], same[:WINDOW])
    send(pods[1], same[WINDOW:])
    for p in pods:
        wait_for(lambda p=p: window_size(p) == WINDOW, 30, 0.1, "a full window")
    code, result, err = rankops("drift", "--model", str(bundled_model), *endpoints, process=True)
    assert code == 0, err
    assert result is not None and result["verdict"] == NO_DRIFT and result["n"] == 2 * WINDOW
    assert [p["n"] for p in result["pods"]] == [WINDOW, WINDOW]
    assert set(result["features"]) == {"n_tokens", "n_chars", "oov_fraction", "max_score", "domain", "region"}
    for f in result["features"].values():
        assert {"statistic", "pvalue", "psi", "verdict"} <= set(f)

    # Repeats are not independent samples: a pod keeps a query once, and the Job counts a query
    # that both pods served once.
    before = [observed(p) for p in pods]
    send(pods[0], same[:3])  # pod 0 has these: moved to the newest end, no new row
    send(pods[1], same[:5])  # pod 1 has not: 5 new rows (its 5 oldest leave), also on pod 0
    wait_for(lambda: [observed(p) for p in pods] == [before[0] + 3, before[1] + 5], 30, 0.1, "repeats seen")
    assert [window_size(p) for p in pods] == [WINDOW, WINDOW]
    code, result, err = rankops("drift", "--model", str(bundled_model), *endpoints)
    assert result is not None and (result["n"], result["pooledRows"]) == (2 * WINDOW - 5, 2 * WINDOW), err

    moved = shifted(same, 1)
    send(pods[0], moved[:WINDOW])
    send(pods[1], moved[WINDOW:])
    wait_for(
        lambda: (
            all(json.loads(p.get("/v1/drift/window")[1])["rows"][0]["oov_fraction"] > 0 for p in pods)
            and all(window_size(p) == WINDOW for p in pods)
        ),
        30,
        0.1,
        "windows of shifted traffic",
    )
    code, result, err = rankops("drift", "--model", str(bundled_model), *endpoints)
    assert code == 1, err
    assert result is not None and result["verdict"] == DRIFT and "oov_fraction" in result["drifted"]
    assert result["features"]["oov_fraction"]["pvalue"] < 0.05 / 6

    # A pod that serves another artifact, or none reachable: bad input, exit 2.
    code, _, err = rankops("drift", "--model", str(bundled_model), "--endpoint", "http://127.0.0.1:9")
    assert code == 2 and "no serving pod gave a window" in err
