"""The ranking service's HTTP API against a real (tiny, trained) artifact."""

from __future__ import annotations

import asyncio
import importlib
import json
import math
import re
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from rankops.serving import service as service_module
from rankops.serving.app import create_app
from rankops.serving.artifact import load_artifact
from rankops.serving.ir_metrics import ndcg_at_k
from rankops.serving.service import RankingService, ServiceSettings, local_first
from tests import service_support

IDENTITY = {"model": "search", "track": "canary"}


def settings(**overrides: Any) -> ServiceSettings:
    base: dict[str, Any] = {
        "model_name": IDENTITY["model"],
        "track": IDENTITY["track"],
        "drift_interval_s": 0.2,
        "drift_min_samples": 5,
        "golden_interval_s": 0.3,
        "load_attempts": 1,
    }
    return ServiceSettings(**{**base, **overrides})


def wait_status(client: TestClient, path: str, status: str, timeout: float = 60.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    body: dict[str, Any] = {}
    while time.monotonic() < deadline:
        body = client.get(path).json()
        if body.get("status") == status:
            return body
        time.sleep(0.02)
    raise AssertionError(f"{path} never reached status {status!r}; last: {body}")


@pytest.fixture(scope="module")
def model_dir() -> Path:
    return service_support.artifact()


@pytest.fixture(scope="module")
def client(model_dir: Path) -> Iterator[TestClient]:
    app = create_app(str(model_dir), settings())
    with TestClient(app) as c:
        wait_status(c, "/readyz", "ready")
        yield c


def svc(client: TestClient) -> RankingService:
    service = client.app.state.service  # type: ignore[attr-defined]
    assert isinstance(service, RankingService)
    return service


def metrics(client: TestClient) -> dict[str, list[Any]]:
    """name -> samples, parsed from /metrics."""
    r = client.get("/metrics")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain")
    out: dict[str, list[Any]] = {}
    for family in text_string_to_metric_families(r.text):
        for sample in family.samples:
            out.setdefault(sample.name, []).append(sample)
    return out


def value(client: TestClient, name: str, **labels: str) -> float:
    samples = [
        s for s in metrics(client).get(name, []) if all(s.labels.get(k) == v for k, v in labels.items())
    ]
    assert len(samples) == 1, f"{name}{labels}: {samples}"
    return float(samples[0].value)


def rank(client: TestClient, query: str, k: int = 5) -> dict[str, Any]:
    r = client.post("/v1/rank", json={"query": query, "k": k})
    assert r.status_code == 200, r.text
    return dict(r.json())


# -- probes and model ---------------------------------------------------------------------------


def test_probes_and_model_info(client: TestClient, model_dir: Path) -> None:
    assert client.get("/healthz").json() == {"status": "alive"}
    ready = client.get("/readyz")
    assert ready.status_code == 200
    manifest_bytes = (model_dir / "manifest.json").read_bytes()
    manifest = json.loads(manifest_bytes)
    model = client.get("/v1/model").json()
    assert model["version"] == manifest["version"]  # RANKOPS_VERSION unset: the manifest's
    assert model["track"] == "canary" and model["model"] == "search"
    assert model["uri"] == str(model_dir)
    assert model["sha256"] == load_artifact(str(model_dir)).sha256
    assert model["metrics"] == manifest["metrics"]
    assert model["loaded_at"].endswith("+00:00")
    assert 0.0 <= model["golden_ndcg_at_3"] <= 1.0


def test_identity_comes_from_the_environment(model_dir: Path) -> None:
    env = {"RANKOPS_MODEL": "prod-search", "RANKOPS_VERSION": "9.9.9", "RANKOPS_TRACK": "stable"}
    app = create_app(str(model_dir), env=env)
    with TestClient(app) as c:
        wait_status(c, "/readyz", "ready")
        body = rank(c, "hdb resale prices")
        assert (body["model"], body["version"], body["track"]) == ("prod-search", "9.9.9", "stable")
        samples = metrics(c)["rankops_requests_total"]
        assert {(s.labels["model"], s.labels["version"], s.labels["track"]) for s in samples} == {
            ("prod-search", "9.9.9", "stable")
        }


def test_not_ready_while_loading_then_ready(model_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    gate = threading.Event()
    real_load = load_artifact  # the function service imports

    def slow_load(uri: str, *, verify: bool = True) -> Any:
        assert gate.wait(30)
        return real_load(uri, verify=verify)

    monkeypatch.setattr(service_module, "load_artifact", slow_load)
    app = create_app(str(model_dir), settings())
    with TestClient(app) as c:
        assert c.get("/healthz").status_code == 200
        r = c.get("/readyz")
        assert r.status_code == 503 and r.json()["status"] == "loading" and r.json()["reason"]
        for method, path, body in [
            ("post", "/v1/rank", {"query": "hdb", "k": 3}),
            ("post", "/api/v2/search", {"query": "hdb"}),
            ("get", "/v1/model", None),
            ("post", "/v1/feedback", {"request_id": "a" * 32, "clicks": []}),
        ]:
            r = c.request(method, path, json=body)
            assert r.status_code == 503, path
            assert r.json()["error"] == "model not ready" and "loading" in r.json()["detail"]
        assert c.get("/api/v2/health").json()["status"] == "starting"
        # every contract series exists from the start, at zero
        assert value(c, "rankops_requests_total", code="503") == 2
        assert value(c, "rankops_requests_total", code="200") == 0
        assert value(c, "rankops_ndcg_at_3_count") == 0
        assert value(c, "rankops_ndcg_at_3_squares_sum_total") == 0
        assert value(c, "rankops_cache_requests_total", result="hit") == 0
        assert math.isnan(value(c, "rankops_golden_ndcg_at_3"))
        gate.set()
        wait_status(c, "/readyz", "ready")
        assert rank(c, "hdb resale")["results"]


def test_tampered_artifact_never_becomes_ready(model_dir: Path, tmp_path: Path) -> None:
    bad = service_support.artifact_copy(tmp_path / "model")
    weights = bad / "model.pt"
    data = bytearray(weights.read_bytes())
    data[len(data) // 2] ^= 0x01  # one byte changed
    weights.write_bytes(bytes(data))
    app = create_app(str(bad), settings())
    with TestClient(app) as c:
        body = wait_status(c, "/readyz", "failed")
        time.sleep(0.5)
        r = c.get("/readyz")
        assert r.status_code == 503
        assert r.json()["status"] == "failed"
        assert any("model.pt" in p and "sha256 mismatch" in p for p in r.json()["problems"])
        assert "model.pt" in body["reason"]
        r = c.post("/v1/rank", json={"query": "hdb", "k": 3})
        assert r.status_code == 503 and "model.pt" in r.json()["detail"]
        health = c.get("/api/v2/health")
        assert health.status_code == 503 and health.json()["status"] == "unhealthy"
        assert value(c, "rankops_model_ready") == 0


def test_missing_artifact_fails_with_the_reason(tmp_path: Path) -> None:
    app = create_app(str(tmp_path / "nothing-here"), settings())
    with TestClient(app) as c:
        body = wait_status(c, "/readyz", "failed")
        assert "manifest.json: missing" in body["reason"]


# -- ranking ----------------------------------------------------------------------------------------


def test_rank_response_shape(client: TestClient) -> None:
    body = rank(client, "hdb resale prices", k=7)
    assert re.fullmatch(r"[0-9a-f]{32}", body["request_id"])
    version = service_support.artifact_version()
    assert (body["model"], body["version"], body["track"]) == ("search", version, "canary")
    assert len(body["results"]) == 7
    assert all(
        set(r) == {"id", "title", "source", "source_name", "score", "relevance"} for r in body["results"]
    )
    scores = [r["score"] for r in body["results"]]
    assert scores == sorted(scores, reverse=True)
    assert len({r["id"] for r in body["results"]}) == 7
    routing = body["routing"]
    assert set(routing) == {"predicted_domain", "domain_confidence", "region", "local_first_applied"}
    assert 0.0 < routing["domain_confidence"] <= 1.0
    assert rank(client, "hdb resale prices")["results"] and len(rank(client, "x y z", k=1)["results"]) == 1


def test_rank_fast_path_and_framework_route_answer_alike(client: TestClient) -> None:
    """A plain JSON body is served by the middleware's fast path; a body with a charset
    parameter goes through the FastAPI route. Both give the same ranking and headers."""
    query = {"query": "quarterly rental index singapore", "k": 4}
    fast = client.post("/v1/rank", content=json.dumps(query), headers={"content-type": "application/json"})
    routed = client.post(
        "/v1/rank", content=json.dumps(query), headers={"content-type": "application/json; charset=utf-8"}
    )
    for r in (fast, routed):
        assert r.status_code == 200, r.text
        assert r.headers["content-type"] == "application/json"
        assert int(r.headers["content-length"]) == len(r.content)
    a, b = fast.json(), routed.json()
    assert a["request_id"] != b["request_id"] and b["cached"] is True
    del a["request_id"], b["request_id"], a["cached"], b["cached"]
    assert a == b
    # A body spread over several ASGI messages is read whole.
    r = client.post(
        "/v1/rank",
        content=iter([b'{"query": "hdb ', b'resale", "k": 2}']),
        headers={"content-type": "application/json"},
    )
    assert r.status_code == 200 and len(r.json()["results"]) == 2


def test_rank_fast_path_leaves_invalid_bodies_to_the_route(client: TestClient) -> None:
    before = value(client, "rankops_requests_total", code="422")
    # NaN is not JSON (orjson refuses it) but Python's json reads it: the route decides, as before.
    bodies = [b'{"query": "hdb", "k": 1.5}', b'{"query": "hdb", "extra": 1}', b"[1]", b'{"query": NaN}']
    for content in bodies:
        r = client.post("/v1/rank", content=content, headers={"content-type": "application/json"})
        assert r.status_code == 422 and r.json()["error"] == "invalid request", r.text
    assert value(client, "rankops_requests_total", code="422") == before + len(bodies)


def test_local_first_for_a_query_naming_a_region(client: TestClient, model_dir: Path) -> None:
    query = "rental prices in singapore"
    body = rank(client, query, k=5)
    routing = body["routing"]
    assert routing["region"] == "Singapore"
    assert routing["local_first_applied"] is True
    # the served order is the documented rule applied to the model's top candidates
    artifact = svc(client).artifact
    assert artifact is not None
    depth = max(5 * svc(client).settings.candidate_factor, svc(client).settings.candidate_min)
    expected, applied = local_first(
        artifact.rank(query, depth), "Singapore", 5, svc(client).settings.region_boost
    )
    assert applied
    assert [r["id"] for r in body["results"]] == [r.id for r in expected]
    by_id = {c.id: c for c in artifact.catalog}
    served_local = sum(by_id[r["id"]].region == "Singapore" for r in body["results"])
    model_local = sum(r.item.region == "Singapore" for r in artifact.rank(query, 5))
    assert served_local >= model_local


def test_cache_hits_get_fresh_request_ids(client: TestClient) -> None:
    client.post("/v1/cache/invalidate")
    before_hits = value(client, "rankops_cache_requests_total", result="hit")
    before_misses = value(client, "rankops_cache_requests_total", result="miss")
    first = client.post("/v1/rank", json={"query": "Bus ridership  by stop", "k": 4}).json()
    second = client.post("/v1/rank", json={"query": "  bus ridership by STOP ", "k": 4}).json()
    other_k = client.post("/v1/rank", json={"query": "bus ridership by stop", "k": 3}).json()
    assert first["cached"] is False and second["cached"] is True and other_k["cached"] is False
    assert first["request_id"] != second["request_id"]
    assert first["results"] == second["results"]
    assert value(client, "rankops_cache_requests_total", result="hit") == before_hits + 1
    assert value(client, "rankops_cache_requests_total", result="miss") == before_misses + 2
    stats = client.get("/v1/cache/stats").json()
    assert stats["size"] == 2 and stats["hits"] >= 1 and 0 < stats["hit_rate"] < 1
    # feedback works for the cached response, independently of the first
    r = client.post("/v1/feedback", json={"request_id": second["request_id"], "clicks": []})
    assert r.status_code == 200
    assert client.post("/v1/cache/invalidate").json() == {"invalidated": 2}
    assert client.post("/v1/rank", json={"query": "bus ridership by stop", "k": 4}).json()["cached"] is False


def test_encoder_passes_and_their_queries_are_counted(client: TestClient) -> None:
    batcher = svc(client).artifact.query_batcher  # type: ignore[union-attr]
    assert batcher is not None, "the tiny artifact should use the MiniLM query encoder"
    passes = value(client, "rankops_query_encoder_passes_total")
    queries = value(client, "rankops_query_encoder_queries_total")
    for n in range(3):
        rank(client, f"encoder counter probe {n} {time.monotonic_ns()}")
    after_passes = value(client, "rankops_query_encoder_passes_total")
    after_queries = value(client, "rankops_query_encoder_queries_total")
    # three new queries, one at a time: at least one pass each (background jobs may add more)
    assert after_passes >= passes + 3
    assert after_queries >= queries + 3
    assert after_queries >= after_passes  # every pass carries at least one query
    assert (after_passes, after_queries) <= batcher.totals  # never ahead of the encoder


def test_cache_can_be_turned_off(model_dir: Path) -> None:
    app = create_app(str(model_dir), settings(cache_entries=0))
    with TestClient(app) as c:
        wait_status(c, "/readyz", "ready")
        assert [rank(c, "hdb resale")["cached"] for _ in range(3)] == [False] * 3
        assert value(c, "rankops_cache_requests_total", result="miss") == 3


# -- feedback -----------------------------------------------------------------------------------------


def test_feedback_with_judgments(client: TestClient) -> None:
    body = rank(client, "population by planning area", k=5)
    ids = [r["id"] for r in body["results"]]
    not_shown = next(item.id for item in svc(client).artifact.catalog if item.id not in ids)  # type: ignore[union-attr]
    judgments = {ids[1]: 3, ids[0]: 0, not_shown: 4}  # a judged catalogue item not shown: in the ideal DCG
    count0 = value(client, "rankops_ndcg_at_3_count")
    sum0 = value(client, "rankops_ndcg_at_3_sum")
    sq0 = value(client, "rankops_ndcg_at_3_squares_sum_total")
    r = client.post("/v1/feedback", json={"request_id": body["request_id"], "judgments": judgments})
    assert r.status_code == 200, r.text
    expected = ndcg_at_k(ids, judgments, 3)
    assert 0 < expected < 1
    assert r.json() == {"request_id": body["request_id"], "ndcg_at_3": pytest.approx(expected, abs=1e-6)}
    assert value(client, "rankops_ndcg_at_3_count") == count0 + 1
    assert value(client, "rankops_ndcg_at_3_sum") == pytest.approx(sum0 + expected)
    assert value(client, "rankops_ndcg_at_3_squares_sum_total") == pytest.approx(sq0 + expected**2)
    conflicts = value(client, "rankops_feedback_total", code="409")
    again = client.post("/v1/feedback", json={"request_id": body["request_id"], "judgments": judgments})
    assert again.status_code == 409
    assert value(client, "rankops_feedback_total", code="409") == conflicts + 1
    assert again.json()["error"] == "feedback already given" and body["request_id"] in again.json()["detail"]


@pytest.mark.parametrize(
    ("clicked_positions", "expected"),
    [
        ([0], 1.0),  # the only click is on top: ideal
        ([], 0.0),  # nothing clicked
        ([1], 1 / math.log2(3)),  # one click in second place
        ([0, 2], (1 + 1 / 2) / (1 + 1 / math.log2(3))),
        ([4], 0.0),  # clicked below the NDCG@3 cut
    ],
)
def test_feedback_with_clicks(client: TestClient, clicked_positions: list[int], expected: float) -> None:
    body = rank(client, "electricity consumption by household", k=5)
    ids = [r["id"] for r in body["results"]]
    clicks = [ids[i] for i in clicked_positions]
    r = client.post("/v1/feedback", json={"request_id": body["request_id"], "clicks": clicks})
    assert r.status_code == 200, r.text
    assert r.json()["ndcg_at_3"] == pytest.approx(expected, abs=1e-6)


def test_feedback_errors(client: TestClient) -> None:
    r = client.post("/v1/feedback", json={"request_id": "0" * 32, "clicks": []})
    assert r.status_code == 404
    assert r.json()["error"] == "unknown request_id" and "0" * 32 in r.json()["detail"]
    body = rank(client, "hawker centre hygiene grades")
    r = client.post("/v1/feedback", json={"request_id": body["request_id"], "clicks": ["ghost-item"]})
    assert r.status_code == 422 and "ghost-item" in r.json()["detail"]
    # a rejected feedback does not use up the request: valid feedback still lands
    r = client.post("/v1/feedback", json={"request_id": body["request_id"], "clicks": []})
    assert r.status_code == 200


def test_feedback_for_an_expired_request_is_404(model_dir: Path) -> None:
    app = create_app(str(model_dir), settings(shown_ttl_s=0.2))
    with TestClient(app) as c:
        wait_status(c, "/readyz", "ready")
        request_id = rank(c, "hdb resale")["request_id"]
        time.sleep(0.3)
        r = c.post("/v1/feedback", json={"request_id": request_id, "clicks": []})
        assert r.status_code == 404 and "older than" in r.json()["detail"]


# -- bad input ---------------------------------------------------------------------------------------


RANK_BAD_BODIES = [
    ({"query": "", "k": 3}, 422, "query"),
    ({"query": "   \t ", "k": 3}, 422, "query"),
    ({"query": "x" * 513, "k": 3}, 422, "at most 512"),
    ({"query": "hdb", "k": 0}, 422, "k"),
    ({"query": "hdb", "k": 101}, 422, "k"),
    ({"query": "hdb", "k": "5"}, 422, "k"),
    ({"query": "hdb", "k": 2.5}, 422, "k"),
    ({"query": "hdb", "k": True}, 422, "k"),
    ({"query": 42}, 422, "query"),
    ({"query": None}, 422, "query"),
    ({"k": 3}, 422, "query: field required"),
    ({"query": "hdb", "K": 3}, 422, "K: unknown field"),
    (["hdb"], 422, "JSON object"),
    ("hdb", 422, "JSON object"),
]


@pytest.mark.parametrize(("body", "status", "needle"), RANK_BAD_BODIES)
def test_rank_rejects_bad_input(client: TestClient, body: Any, status: int, needle: str) -> None:
    r = client.post("/v1/rank", json=body)
    assert r.status_code == status, r.text
    payload = r.json()
    assert set(payload) >= {"error", "detail"}
    assert needle in payload["detail"]


def test_query_is_stripped_before_the_length_check(client: TestClient) -> None:
    assert client.post("/v1/rank", json={"query": "  " + "x" * 512 + "  ", "k": 1}).status_code == 200


@pytest.mark.parametrize(
    ("content", "content_type", "status", "error"),
    [
        (b'{"query": "hdb", ', "application/json", 400, "malformed JSON"),
        (b"not json at all", "application/json", 400, "malformed JSON"),
        (b"", "application/json", 422, "invalid request"),
        (b"query=hdb", "application/x-www-form-urlencoded", 422, "invalid request"),
    ],
)
def test_rank_rejects_unparsable_bodies(
    client: TestClient, content: bytes, content_type: str, status: int, error: str
) -> None:
    r = client.post("/v1/rank", content=content, headers={"content-type": content_type})
    assert r.status_code == status, r.text
    assert r.json()["error"] == error and r.json()["detail"]


def test_oversized_body_is_413(client: TestClient) -> None:
    r = client.post("/v1/rank", content=b"x" * (2 << 20), headers={"content-type": "application/json"})
    assert r.status_code == 413 and r.json()["error"] == "request too large"


FEEDBACK_BAD_BODIES = [
    ({"request_id": "a" * 32, "judgments": {"d1": 5}}, "less than or equal to 4"),
    ({"request_id": "a" * 32, "judgments": {"d1": -1}}, "greater than or equal to 0"),
    ({"request_id": "a" * 32, "judgments": {"d1": "3"}}, "valid integer"),
    ({"request_id": "a" * 32, "judgments": {}}, "judgments"),
    ({"request_id": "a" * 32}, "exactly one of"),
    ({"request_id": "a" * 32, "judgments": {"d1": 1}, "clicks": ["d1"]}, "exactly one of"),
    ({"request_id": "a" * 32, "clicks": "d1"}, "clicks"),
    ({"judgments": {"d1": 1}}, "request_id: field required"),
    ({"request_id": 7, "clicks": []}, "request_id"),
]


@pytest.mark.parametrize(("body", "needle"), FEEDBACK_BAD_BODIES)
def test_feedback_rejects_bad_input(client: TestClient, body: Any, needle: str) -> None:
    r = client.post("/v1/feedback", json=body)
    assert r.status_code == 422, r.text
    assert r.json()["error"] == "invalid request" and needle in r.json()["detail"]


def test_unknown_paths_and_methods_are_json_errors(client: TestClient) -> None:
    r = client.get("/v1/nope")
    assert r.status_code == 404 and r.json() == {"error": "not found", "detail": "no endpoint GET /v1/nope"}
    r = client.get("/v1/rank")
    assert r.status_code == 405 and r.json()["error"] == "method not allowed"


def test_bad_requests_are_counted_by_status(client: TestClient) -> None:
    before = {code: value(client, "rankops_requests_total", code=code) for code in ("200", "400", "422")}
    client.post("/v1/rank", json={"query": "", "k": 1})
    client.post("/v1/rank", content=b"{", headers={"content-type": "application/json"})
    rank(client, "hdb resale")
    assert value(client, "rankops_requests_total", code="422") == before["422"] + 1
    assert value(client, "rankops_requests_total", code="400") == before["400"] + 1
    assert value(client, "rankops_requests_total", code="200") == before["200"] + 1


# -- metrics --------------------------------------------------------------------------------------------


def test_every_series_carries_the_identity_labels(client: TestClient) -> None:
    rank(client, "hdb resale")
    m = metrics(client)
    wanted = [
        "rankops_requests_total",
        "rankops_request_duration_seconds_bucket",
        "rankops_request_duration_seconds_count",
        "rankops_ndcg_at_3_sum",
        "rankops_ndcg_at_3_count",
        "rankops_ndcg_at_3_squares_sum_total",
        "rankops_golden_ndcg_at_3",
        "rankops_cache_requests_total",
        "rankops_drift_psi",
        "rankops_drift_pvalue",
        "rankops_model_info",
    ]
    for name in wanted:
        assert name in m, name
        for sample in m[name]:
            assert sample.labels["model"] == "search", name
            assert sample.labels["version"] == service_support.artifact_version(), name
            assert sample.labels["track"] == "canary", name
    assert {s.labels["result"] for s in m["rankops_cache_requests_total"]} == {"hit", "miss"}
    buckets = sorted(float(s.labels["le"]) for s in m["rankops_request_duration_seconds_bucket"])
    assert sum(b <= 0.05 for b in buckets) >= 12  # fine-grained below 50 ms
    info = m["rankops_model_info"]
    assert len(info) == 1 and info[0].value == 1
    assert info[0].labels["sha256"] == svc(client).artifact.sha256  # type: ignore[union-attr]
    golden = value(client, "rankops_golden_ndcg_at_3")
    assert golden == pytest.approx(svc(client).golden_ndcg)
    assert 0.0 <= golden <= 1.0


def test_drift_gauges_follow_live_queries(client: TestClient) -> None:
    for q in service_support.dataset_queries()[:20]:
        rank(client, q)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        psi = {s.labels["feature"]: s.value for s in metrics(client)["rankops_drift_psi"]}
        if psi and all(math.isfinite(v) for v in psi.values()):
            break
        time.sleep(0.1)
    assert set(psi) >= {"n_tokens", "n_chars", "domain", "region"}
    assert all(math.isfinite(v) and v >= 0 for v in psi.values()), psi
    pvalues = {
        (s.labels["feature"], s.labels["test"]): s.value for s in metrics(client)["rankops_drift_pvalue"]
    }
    assert ("n_tokens", "ks") in pvalues and ("domain", "chi2") in pvalues
    assert all(0.0 <= v <= 1.0 for v in pvalues.values())


def test_registries_are_per_app(model_dir: Path) -> None:
    a = create_app(str(model_dir), settings(track="stable"))
    b = create_app(str(model_dir), settings(track="canary"))
    with TestClient(a) as ca, TestClient(b) as cb:
        wait_status(ca, "/readyz", "ready")
        wait_status(cb, "/readyz", "ready")
        rank(ca, "hdb resale")
        assert value(ca, "rankops_requests_total", code="200") == 1
        assert value(cb, "rankops_requests_total", code="200") == 0


# -- runbook API --------------------------------------------------------------------------------------------


def test_runbook_search(client: TestClient) -> None:
    r = client.post("/api/v2/search", json={"query": "hdb resale prices singapore", "limit": 4})
    assert r.status_code == 200, r.text
    body = r.json()
    assert len(body["recommendations"]) == 4
    for rec in body["recommendations"]:
        assert rec["source"]
        assert 0.0 <= rec["quality_metrics"]["relevance_score"] <= 1.0
    assert body["routing_summary"]["singapore_first_applied"] is True
    quality = body["quality_summary"]
    assert quality["ndcg_source"] in {"golden", "feedback"}
    assert quality["overall_ndcg_at_3"] is not None
    # the default limit is 10; bad input gets the same error format
    assert len(client.post("/api/v2/search", json={"query": "hdb"}).json()["recommendations"]) == 10
    bad = client.post("/api/v2/search", json={"query": " ", "limit": 500})
    assert bad.status_code == 422 and "query" in bad.json()["detail"] and "limit" in bad.json()["detail"]
    no_region = client.post("/api/v2/search", json={"query": "bus ridership"}).json()
    assert no_region["routing_summary"]["singapore_first_applied"] is False


def test_runbook_quality_golden_until_feedback(model_dir: Path) -> None:
    app = create_app(str(model_dir), settings())
    with TestClient(app) as c:
        wait_status(c, "/readyz", "ready")
        golden = svc(c).golden_ndcg
        current = c.get("/api/v2/quality/metrics").json()["current_metrics"]
        assert current["ndcg_source"] == "golden"
        assert current["overall_ndcg_at_3"] == pytest.approx(golden, abs=1e-6)
        assert current["feedback_top1_relevance"] is None
        first = rank(c, "hdb resale prices", k=3)
        top = first["results"][0]["id"]
        c.post("/v1/feedback", json={"request_id": first["request_id"], "judgments": {top: 3}})
        second = rank(c, "bus ridership", k=3)
        c.post("/v1/feedback", json={"request_id": second["request_id"], "clicks": []})
        current = c.get("/api/v2/quality/metrics").json()["current_metrics"]
        assert current["ndcg_source"] == "feedback"
        assert current["feedback_count"] == 2
        assert current["overall_ndcg_at_3"] == pytest.approx(0.5)
        assert current["feedback_top1_relevance"] == pytest.approx(0.5)
        search = c.post("/api/v2/search", json={"query": "hdb"}).json()
        assert search["quality_summary"]["overall_ndcg_at_3"] == pytest.approx(0.5)
        health = c.get("/api/v2/health")
        assert health.status_code == 200
        body = health.json()
        assert body["status"] == "healthy"
        assert set(body["components"]) >= {"model", "cache", "metrics"}
        assert body["components"]["model"]["sha256"] == svc(c).artifact.sha256  # type: ignore[union-attr]
        assert body["quality_metrics"]["overall_ndcg_at_3"] == pytest.approx(0.5)
        stats = c.get("/api/v2/cache/stats").json()["cache_statistics"]
        assert 0.0 <= stats["hit_rate"] <= 1.0 and stats["misses"] >= 2


# -- periodic refresh ----------------------------------------------------------------------------------------


async def test_golden_refresh_recomputes_the_gauge(model_dir: Path) -> None:
    service = RankingService(str(model_dir), settings(golden_interval_s=3600))
    await service.start()
    try:
        assert await asyncio.wait_for(service.wait_until_settled(), 60) is service_module.State.READY
        assert service.metrics is not None
        service.metrics.golden_ndcg.set(-1)
        await service.refresh_golden()
        assert service.metrics.golden_ndcg._value.get() == pytest.approx(service.golden_ndcg)
    finally:
        await service.stop()


def test_an_artifact_without_golden_queries_serves_without_a_golden_figure(tmp_path: Path) -> None:
    import hashlib

    model = service_support.artifact_copy(tmp_path / "model")
    (model / "golden.jsonl").write_bytes(b"")
    manifest = json.loads((model / "manifest.json").read_text())
    manifest["files"]["golden.jsonl"] = {"sha256": hashlib.sha256(b"").hexdigest(), "size": 0}
    (model / "manifest.json").write_text(json.dumps(manifest))
    app = create_app(str(model), settings())
    with TestClient(app) as c:
        wait_status(c, "/readyz", "ready")
        assert c.get("/v1/model").json()["golden_ndcg_at_3"] is None
        current = c.get("/api/v2/quality/metrics").json()["current_metrics"]
        assert current["overall_ndcg_at_3"] is None and current["ndcg_source"] == "none"
        assert c.get("/api/v2/health").status_code == 200
        assert math.isnan(value(c, "rankops_golden_ndcg_at_3"))


# -- the contract ----------------------------------------------------------------------------------


def test_405_carries_allow(client: TestClient) -> None:
    r = client.get("/v1/rank")
    assert r.status_code == 405 and r.headers["allow"] == "POST"
    assert r.json()["error"] == "method not allowed"
    assert client.delete("/api/v2/cache/stats").headers["allow"] == "GET"


def test_integral_floats_are_integers(client: TestClient) -> None:
    for path, body in [
        ("/v1/rank", {"query": "hdb", "k": 46.0}),
        ("/api/v2/search", {"query": "hdb", "max_results": 46.0}),
    ]:
        r = client.post(path, json=body)
        assert r.status_code == 200, r.text
        assert len(r.json().get("results") or r.json()["recommendations"]) == 46
    assert client.post("/v1/rank", json={"query": "hdb", "k": 46.5}).status_code == 422


@pytest.mark.parametrize("path", ["/v1/rank", "/api/v2/search"])
def test_both_apis_refuse_unknown_fields_alike(client: TestClient, path: str) -> None:
    r = client.post(path, json={"query": "hdb", "colour": "blue"})
    assert r.status_code == 422 and r.json()["detail"] == "colour: unknown field"


def test_openapi_declares_the_error_model_and_every_status(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    assert "HTTPValidationError" not in spec["components"]["schemas"]
    assert set(spec["components"]["schemas"]["ErrorBody"]["required"]) == {"error", "detail"}
    declared = {
        (path, method): set(op["responses"])
        for path, ops in spec["paths"].items()
        for method, op in ops.items()
    }
    assert declared[("/v1/rank", "post")] == {"200", "400", "413", "422", "503"}
    assert declared[("/v1/feedback", "post")] == {"200", "400", "404", "409", "413", "422", "503"}
    assert declared[("/api/v2/quality/report", "post")] == {"200", "400", "413", "422", "503"}
    error_ref = {"$ref": "#/components/schemas/ErrorBody"}
    assert (
        spec["paths"]["/v1/feedback"]["post"]["responses"]["404"]["content"]["application/json"]["schema"]
        == error_ref
    )
    # each declared error status is one the route really answers
    assert (
        client.post("/v1/rank", content=b"{", headers={"content-type": "application/json"}).status_code == 400
    )
    assert client.post("/v1/feedback", json={"request_id": "x", "clicks": []}).status_code == 404


def test_the_gil_switch_interval_is_read_from_the_environment_and_set_at_start(model_dir: Path) -> None:
    parsed = ServiceSettings.from_env({"RANKOPS_GIL_SWITCH_INTERVAL_S": "0.0007"})
    assert parsed.gil_switch_interval_s == 0.0007
    with pytest.raises(ValueError, match="RANKOPS_GIL_SWITCH_INTERVAL_S"):
        ServiceSettings.from_env({"RANKOPS_GIL_SWITCH_INTERVAL_S": "-1"})
    before = sys.getswitchinterval()
    try:
        with TestClient(create_app(str(model_dir), settings(gil_switch_interval_s=0.0007))) as c:
            wait_status(c, "/readyz", "ready")
            assert sys.getswitchinterval() == pytest.approx(0.0007)
    finally:
        sys.setswitchinterval(before)
    with TestClient(create_app(str(model_dir), settings())) as c:  # 0 leaves it alone
        wait_status(c, "/readyz", "ready")
        assert sys.getswitchinterval() == pytest.approx(before)


def test_the_drift_reports_scipy_stats_is_imported_before_the_pod_is_ready(
    model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import types

    from rankops.serving import drift as drift_module

    imported: list[str] = []
    ready_when: list[bool] = []

    def import_module(name: str) -> object:
        imported.append(name)
        ready_when.append(c.get("/readyz").status_code == 200)
        return importlib.import_module(name)

    monkeypatch.setattr(drift_module, "importlib", types.SimpleNamespace(import_module=import_module))
    with TestClient(create_app(str(model_dir), settings())) as c:
        wait_status(c, "/readyz", "ready")
    assert imported == ["scipy.stats"] and ready_when == [False]
