"""The durable feedback log: batching, append-only objects, the loss bound, reading back."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient

from rankops.serving.app import create_app
from rankops.serving.feedback_log import FeedbackLog, FeedbackLogBehind, read_feedback, read_served
from tests import service_support
from tests.unit.test_service_app import rank, settings, svc, value, wait_status


def served(i: int, at: float | None = None) -> bytes:
    return orjson.dumps(
        {
            "request_id": f"r{i}",
            "time": time.time() if at is None else at,
            "model": "m",
            "version": "1",
            "track": "stable",
            "k": 1,
            "query": f"q{i}",
            "domain": "housing",
            "shown": [{"id": "a", "rank": 1, "score": 0.5, "source": "HDB"}],
        }
    )


def objects(root: Path) -> dict[Path, bytes]:
    return {p: p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


async def test_batches_by_size_and_time_as_new_objects_never_rewritten(tmp_path: Path) -> None:
    log = FeedbackLog(str(tmp_path), flush_s=0.3, batch_records=5, max_unflushed=20)
    log.start()
    try:
        for i in range(5):  # a full batch goes out at once
            log.served(served(i))
        await asyncio.sleep(0.1)
        first = objects(tmp_path)
        assert len(first) == 1 and log.written["served"] == 5
        log.served(served(5))  # a lone record waits at most flush_s
        await asyncio.sleep(0.05)
        assert len(objects(tmp_path)) == 1
        await asyncio.sleep(0.4)
        second = objects(tmp_path)
        assert len(second) == 2
        assert all(second[p] == data for p, data in first.items())  # earlier objects untouched
        assert not [p for p in second if not p.name.endswith(".jsonl")]  # no temporary left
    finally:
        await log.close()
    assert [r.request_id for r in read_served(str(tmp_path))] == [f"r{i}" for i in range(6)]


async def test_the_loss_bound_refuses_feedback_rather_than_exceed_it(tmp_path: Path) -> None:
    blocker = tmp_path / "log"
    blocker.write_text("a file where the log's directory should be")  # every write fails
    log = FeedbackLog(f"file://{blocker}", flush_s=0.05, batch_records=2, max_unflushed=4)
    log.start()
    try:
        for _ in range(4):
            log.feedback(b'{"x": 1}')
        with pytest.raises(FeedbackLogBehind, match="4 records not yet written"):
            log.feedback(b'{"x": 1}')
        await asyncio.sleep(0.3)
        assert log.write_errors >= 1 and log.last_error is not None
        assert log.unflushed_feedback == 4  # kept, not lost, while the storage fails
        for _ in range(10):
            log.served(b'{"x": 1}')  # served records never block: dropped past the bound
        assert log.dropped_served >= 6
    finally:
        blocker.unlink()
        await log.close()  # the storage is back: what was kept is written
    assert log.written["feedback"] == 4


def test_time_filters_and_day_partitions(tmp_path: Path) -> None:
    async def write() -> None:
        log = FeedbackLog(str(tmp_path), flush_s=10, batch_records=100, max_unflushed=100)
        for i, at in enumerate((1_000_000.0, 1_000_050.0, 1_100_000.0)):
            log.served(served(i, at))
        await log.flush()

    asyncio.run(write())
    assert [r.request_id for r in read_served(str(tmp_path), since=1_000_010.0, until=1_200_000.0)] == [
        "r1",
        "r2",
    ]
    assert list(read_feedback(str(tmp_path))) == []


# -- the service with a log ---------------------------------------------------------------------------


def feedback(c: TestClient, request_id: str, **kind: Any) -> Any:
    return c.post("/v1/feedback", json={"request_id": request_id, **kind})


def test_feedback_survives_a_restart_and_is_accepted_once(tmp_path: Path) -> None:
    uri = f"file://{tmp_path / 'feedback'}"
    model = str(service_support.artifact())
    app = create_app(model, settings(feedback_log=uri, feedback_log_flush_s=0.1))
    with TestClient(app) as c:
        wait_status(c, "/readyz", "ready")
        judged = rank(c, "hdb resale prices", k=5)
        later = rank(c, "bus ridership by stop", k=5)
        ids = [r["id"] for r in judged["results"]]
        r = feedback(c, judged["request_id"], ratings={ids[0]: 5, ids[1]: 2})
        assert r.status_code == 200, r.text
        before = c.get("/api/v2/quality/metrics").json()["current_metrics"]
    # a graceful stop wrote everything; a new process reads it back
    records = list(read_feedback(uri))
    assert len(records) == 1
    rec = records[0]
    assert rec.request_id == judged["request_id"] and rec.query == "hdb resale prices"
    assert rec.kind == "ratings" and rec.given == {ids[0]: 5, ids[1]: 2}
    assert rec.grades == {ids[0]: 4, ids[1]: 1}  # stars - 1
    assert [s.id for s in rec.shown] == ids and [s.rank for s in rec.shown] == [1, 2, 3, 4, 5]
    assert [s.score for s in rec.shown] == [r["score"] for r in judged["results"]]
    assert (rec.model, rec.track) == ("search", "canary") and rec.version == judged["version"]
    assert rec.served_at <= rec.time and rec.ndcg_at_3 == pytest.approx(r.json()["ndcg_at_3"])
    assert {s.request_id for s in read_served(uri)} == {judged["request_id"], later["request_id"]}

    app = create_app(model, settings(feedback_log=uri, feedback_log_flush_s=0.1))
    with TestClient(app) as c:
        wait_status(c, "/readyz", "ready")
        after = c.get("/api/v2/quality/metrics").json()["current_metrics"]
        assert after["feedback_count"] == before["feedback_count"] == 1
        assert after["overall_ndcg_at_3"] == before["overall_ndcg_at_3"]
        assert value(c, "rankops_ndcg_at_3_count") == 0  # Prometheus series restart from 0
        assert feedback(c, judged["request_id"], clicks=[]).status_code == 409
        r = feedback(c, later["request_id"], thumbs={later["results"][0]["id"]: "up"})
        assert r.status_code == 200, r.text
        assert r.json()["ndcg_at_3"] == pytest.approx(1.0)
        health = c.get("/api/v2/health").json()["components"]["feedback_log"]
        assert health["status"] == "ok" and health["loss_bound_records"] == 2000
    assert len(list(read_feedback(uri))) == 2


def test_feedback_on_unknown_item_ids_is_422_naming_them(tmp_path: Path) -> None:
    uri = str(tmp_path / "feedback")
    app = create_app(str(service_support.artifact()), settings(feedback_log=uri))
    with TestClient(app) as c:
        wait_status(c, "/readyz", "ready")
        body = rank(c, "population by planning area", k=3)
        top = body["results"][0]["id"]
        for kind in ({"judgments": {top: 3, "not-an-item": 2}}, {"ratings": {"not-an-item": 4}}):
            r = feedback(c, body["request_id"], **kind)
            assert r.status_code == 422 and "'not-an-item'" in r.json()["detail"], r.text
        assert c.get("/api/v2/quality/metrics").json()["current_metrics"]["feedback_count"] == 0
        assert svc(c).feedback_desk.log is not None and svc(c).feedback_desk.log.unflushed_feedback == 0  # type: ignore[union-attr]
        assert feedback(c, body["request_id"], judgments={top: 3}).status_code == 200


@pytest.mark.timeout(30)
async def test_close_during_a_write_writes_each_record_once(tmp_path: Path) -> None:
    for _ in range(20):  # the race needs the close to land while a write is in flight
        root = tmp_path / f"run{_}"
        log = FeedbackLog(str(root), flush_s=0.001, batch_records=1, max_unflushed=10)
        log.start()
        log.served(served(1))
        await asyncio.sleep(0.001 * (_ % 4))
        await log.close()
        assert [r.request_id for r in read_served(str(root))] == ["r1"]
