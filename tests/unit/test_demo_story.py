"""The demo story's pure helpers: the v4 training data, the query mixes, alert times."""

from __future__ import annotations

from pathlib import Path

from rankops.sandbox.regression_act import _epoch
from rankops.sandbox.story import _mix
from rankops.sandbox.versions import WEAK_DOMAIN, query_domains, without_domain_queries

DATA = Path(__file__).resolve().parents[2] / "examples" / "data" / "datasets"


def test_v4_data_loses_the_weak_domain_queries_in_train_and_dev_only(tmp_path: Path) -> None:
    out = without_domain_queries(DATA, tmp_path / "v4")
    for split in ("train", "dev"):
        before, after = query_domains(DATA, split), query_domains(out, split)
        assert WEAK_DOMAIN in before.values() and WEAK_DOMAIN not in after.values()
        assert after == {q: d for q, d in before.items() if d != WEAK_DOMAIN}
    assert (out / "qrels" / "test.tsv").read_text() == (DATA / "qrels" / "test.tsv").read_text()
    assert (out / "corpus.jsonl").read_text() == (DATA / "corpus.jsonl").read_text()


def test_the_shifted_mix_draws_the_weak_queries_at_the_share_asked() -> None:
    weak = [("w1", {}), ("w2", {})]
    rest = [(f"r{i}", {}) for i in range(40)]
    mixed = _mix(weak, rest, 0.8)
    share = sum(q.startswith("w") for q, _ in mixed) / len(mixed)
    assert abs(share - 0.8) < 0.02
    assert _mix(weak, rest, 1.0) == weak


def test_prometheus_and_alertmanager_times_parse_to_the_microsecond() -> None:
    assert _epoch("2026-12-02T05:01:02.123456789Z") == _epoch("2026-12-02T05:01:02.123456Z")
    assert _epoch("2026-12-02T05:01:02Z") == 1796187662.0
    assert _epoch("") is None and _epoch("yesterday") is None


def test_alert_marks_seconds_apart_share_one_label() -> None:
    from rankops.sandbox.plot import grouped

    marks = [(104.0, "firing"), (101.5, "pending"), (104.1, "delivered"), (140.0, "pending")]
    assert grouped(marks, 5.0) == [(101.5, "pending\nfiring\ndelivered"), (140.0, "pending")]
