"""Every field the runbook's scripts read (daily check, cache investigation, weekly report), with
the values they must hold, plus `rankops report`."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from statistics import fmean
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient

from rankops.cli.main import main as rankops_main
from rankops.serving.app import create_app
from rankops.serving.artifact import load_artifact
from rankops.serving.feedback_log import FeedbackLog
from tests import service_support
from tests.unit.test_service_app import rank, settings, svc, value, wait_status

DAY = 86400.0


@pytest.fixture(scope="module")
def log_uri(tmp_path_factory: pytest.TempPathFactory) -> str:
    return f"file://{tmp_path_factory.mktemp('runbook') / 'feedback'}"


@pytest.fixture(scope="module")
def client(log_uri: str) -> Iterator[TestClient]:
    app = create_app(
        str(service_support.artifact()), settings(feedback_log=log_uri, feedback_log_flush_s=0.1)
    )
    with TestClient(app) as c:
        wait_status(c, "/readyz", "ready")
        yield c


def search(c: TestClient, **body: Any) -> dict[str, Any]:
    r = c.post("/api/v2/search", json=body)
    assert r.status_code == 200, r.text
    return dict(r.json())


# -- daily check --------------------------------------------------------------------------------------


def test_daily_check_fields(client: TestClient) -> None:
    health = client.get("/api/v2/health").json()
    assert health["status"] == "healthy"
    assert health["components"]["feedback_log"]["status"] == "ok"
    body = search(client, query="hdb resale prices singapore", max_results=3)
    assert len(body["recommendations"]) == 3 and body["total_results"] == 3
    for rec in body["recommendations"]:
        assert rec["source"] and 0.0 <= rec["quality_metrics"]["relevance_score"] <= 1.0
    assert body["routing_summary"]["singapore_first_applied"] is True
    assert body["quality_summary"]["overall_ndcg_at_3"] is not None
    current = client.get("/api/v2/quality/metrics").json()["current_metrics"]
    for name in (
        "overall_ndcg_at_3",
        "relevance_accuracy",
        "domain_routing_accuracy",
        "singapore_first_accuracy",
    ):
        assert current[name] is not None and 0.0 <= current[name] <= 1.0, name
    for name in ("relevance_accuracy", "domain_routing_accuracy", "singapore_first_accuracy"):
        assert value(client, f"rankops_golden_{name}") == pytest.approx(current[name], abs=1e-6)


def test_golden_accuracies_match_the_served_rankings(client: TestClient) -> None:
    """Recomputed through the public API: the top result and routing of each golden query."""
    artifact = load_artifact(str(service_support.artifact()))
    judged = source_hits = domain_hits = sg = sg_hits = 0
    for g in artifact.golden:
        body = search(client, query=g.text, max_results=3)
        top = body["recommendations"][0]
        best = max(g.judgments.values())
        if best > 0:
            items = [artifact.item(i) for i, grade in g.judgments.items() if grade == best]
            judged += 1
            source_hits += top["source"] in {i.source for i in items if i}
            domain_hits += body["routing_summary"]["predicted_domain"] in {i.domain for i in items if i}
        if (body["routing_summary"]["region"] or "").casefold() == "singapore":
            sg += 1
            sg_hits += top["region"].casefold() == "singapore"
    current = client.get("/api/v2/quality/metrics").json()["current_metrics"]
    assert judged and sg
    assert current["relevance_accuracy"] == pytest.approx(source_hits / judged, abs=1e-6)
    assert current["domain_routing_accuracy"] == pytest.approx(domain_hits / judged, abs=1e-6)
    assert current["singapore_first_accuracy"] == pytest.approx(sg_hits / sg, abs=1e-6)


def test_search_quality_threshold_and_unknown_fields(client: TestClient) -> None:
    full = search(client, query="bus ridership by stop", max_results=10)
    scores = [r["quality_metrics"]["relevance_score"] for r in full["recommendations"]]
    threshold = sorted(scores)[len(scores) // 2]
    kept = search(client, query="bus ridership by stop", max_results=10, quality_threshold=threshold)
    assert [r["quality_metrics"]["relevance_score"] for r in kept["recommendations"]] == [
        s for s in scores if s >= threshold
    ]
    assert kept["filtered_out"] == sum(s < threshold for s in scores) > 0
    r = client.post("/api/v2/search", json={"query": "bus", "max_result": 3})
    assert r.status_code == 422 and "max_result: unknown field" in r.json()["detail"]
    r = client.post("/api/v2/search", json={"query": "bus", "max_results": 3, "limit": 3})
    assert r.status_code == 422 and "not both" in r.json()["detail"]


# -- cache investigation ----------------------------------------------------------------------------


def test_cache_investigation_fields_and_invalidation(client: TestClient) -> None:
    client.post("/v1/cache/invalidate")
    for q in ("hdb resale prices", "bus ridership", "population by planning area", "rental index singapore"):
        search(client, query=q, max_results=5)
    rankings = svc(client).cache.values()
    qualities = [r.quality for r in rankings]
    stats = client.get("/api/v2/cache/stats").json()["cache_statistics"]
    assert 0.0 <= stats["hit_rate"] <= 1.0
    assert stats["total_entries"] == len(qualities) == 4
    assert stats["avg_quality_score"] == pytest.approx(fmean(qualities), abs=1e-6)
    dist = stats["quality_distribution"]
    assert set(dist) == {"excellent", "good", "fair", "poor", "total"} and dist["total"] == 4
    assert dist["excellent"] == sum(q >= 0.9 for q in qualities)
    assert dist["poor"] == sum(q < 0.5 for q in qualities)
    threshold = sorted(qualities)[2]
    r = client.post("/api/v2/cache/invalidate", json={"quality_threshold": threshold, "force_refresh": False})
    assert r.status_code == 200, r.text
    body = r.json()
    below = sum(q < threshold for q in qualities)
    assert body["invalidated"] == below and body["remaining"] == 4 - below and body["total_before"] == 4
    assert all(rk.quality >= threshold for rk in svc(client).cache.values())
    r = client.post("/api/v2/cache/invalidate", json={"quality_threshold": 0.0, "force_refresh": True})
    assert r.json()["invalidated"] == 4 - below and r.json()["remaining"] == 0
    assert client.post("/api/v2/cache/invalidate", json={"quality_threshold": 2}).status_code == 422


# -- weekly report ------------------------------------------------------------------------------------


def past_feedback(log_uri: str, now: float) -> list[tuple[float, str, str, float]]:
    """Feedback records over the past week, written straight to the log: (time, domain, version, ndcg)."""
    rows = []
    for i in range(24):
        at = now - 6.5 * DAY + i * (6 * DAY / 24)
        domain = "housing" if i % 2 else "transport"
        version, ndcg = ("1.0.0", 0.5) if i < 12 else ("1.1.0", 0.8)  # the newer version is better
        rows.append((at, domain, version, ndcg))

    async def write() -> None:
        log = FeedbackLog(log_uri)
        for n, (at, domain, version, ndcg) in enumerate(rows):
            shown = [
                {"id": f"i{n}", "rank": 1, "score": 1.0, "source": "HDB" if domain == "housing" else "LTA"}
            ]
            record = {
                "request_id": f"past-{n}",
                "time": at,
                "served_at": at - 1,
                "model": "older",
                "version": version,
                "track": "stable",
                "query": "q",
                "domain": domain,
                "kind": "judgments",
                "given": {f"i{n}": 3},
                "grades": {f"i{n}": 3},
                "ndcg_at_3": ndcg,
                "top1_relevant": True,
                "shown": shown,
            }
            log.feedback(orjson.dumps(record))
        await log.flush()

    import asyncio

    asyncio.run(write())
    return rows


def test_weekly_report_fields_from_the_feedback_log(client: TestClient, log_uri: str, tmp_path: Path) -> None:
    rows = past_feedback(log_uri, time.time())
    live = []
    for q in ("hdb resale prices", "bus ridership by stop"):
        served = rank(client, q, k=3)
        r = client.post(
            "/v1/feedback",
            json={"request_id": served["request_id"], "judgments": {served["results"][0]["id"]: 4}},
        )
        live.append(r.json()["ndcg_at_3"])
    r = client.post(
        "/api/v2/quality/report", json={"time_range": "7d", "include_details": True, "format": "json"}
    )
    assert r.status_code == 200, r.text
    report = r.json()
    summary = report["report_summary"]
    assert set(summary["period"]) >= {"start", "end"}
    ndcgs = [n for *_, n in rows] + live
    assert summary["total_queries"] == len(ndcgs)
    assert summary["avg_quality_score"] == pytest.approx(fmean(ndcgs), abs=1e-6)
    assert summary["quality_threshold_compliance"] == pytest.approx(sum(n >= 0.7 for n in ndcgs) / len(ndcgs))
    housing = report["domain_performance"]["housing"]
    assert set(housing) == {"queries", "avg_ndcg", "top_sources"}
    assert housing["top_sources"][0] == "HDB"
    assert sum(d["queries"] for d in report["domain_performance"].values()) == len(ndcgs)
    improvements = report["quality_improvements"]
    assert improvements and all({"improvement", "impact"} <= set(i) for i in improvements)
    by_scope = {i["scope"]: i for i in improvements}
    assert by_scope["version 1.1.0"]["impact"] == pytest.approx(0.3)
    assert by_scope["overall"]["impact"] > 0
    assert report["details"]["series"]
    assert client.post("/api/v2/quality/report", json={"time_range": "a week"}).status_code == 422

    # `rankops report` writes the same report and its chart
    assert (
        rankops_main(["report", "--type", "weekly", "--out", str(tmp_path), "--feedback-log", log_uri]) == 0
    )
    written = json.loads((tmp_path / "quality-report-weekly.json").read_text())
    assert written["report_summary"]["total_queries"] == len(ndcgs)
    assert written["domain_performance"].keys() == report["domain_performance"].keys()
    png = (tmp_path / "ndcg-by-domain-weekly.png").read_bytes()
    assert png.startswith(b"\x89PNG") and len(png) > 5000
    # a mistyped log is an error, not an empty report
    missing = [
        "report",
        "--type",
        "quarterly",
        "--out",
        str(tmp_path),
        "--feedback-log",
        str(tmp_path / "nope"),
    ]
    assert rankops_main(missing) != 0
    assert not (tmp_path / "quality-report-quarterly.json").exists()


def test_report_without_a_feedback_log_is_503() -> None:
    app = create_app(str(service_support.artifact()), settings())
    with TestClient(app) as c:
        wait_status(c, "/readyz", "ready")
        r = c.post("/api/v2/quality/report", json={})
        assert r.status_code == 503 and "--feedback-log" in r.json()["detail"]
