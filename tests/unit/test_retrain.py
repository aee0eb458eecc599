"""`rankops retrain`'s pieces: the feedback-to-qrels rule, no held-out leakage, the gate, bad input."""

from __future__ import annotations

from pathlib import Path

import pytest

from rankops.cli.main import main
from rankops.serving.dataset import load_dataset
from rankops.serving.feedback_log import FeedbackRecord
from rankops.serving.gate import GateConfig, judge_gate, paired_p_value
from rankops.serving.retrain import FEEDBACK_QUERY_PREFIX, feedback_training_set, materialize
from tests.service_support import artifact_version
from tests.unit._model_support import tiny_artifact, tiny_dataset


def record(query: str, grades: dict[str, int], t: float = 1.0, rid: str = "r") -> FeedbackRecord:
    return FeedbackRecord(
        request_id=rid, time=t, served_at=t, model="m", version="1.0.0", track="stable", query=query,
        domain="", shown=(), kind="judgments", given=grades, grades=grades, ndcg_at_3=0.0,
        top1_relevant=False,
    )  # fmt: skip


def test_mean_grade_per_query_and_item_rounded_half_up() -> None:
    records = [
        record("Rain  in Oslo", {"a": 4, "b": 0}, 1, "1"),
        record("rain in oslo", {"a": 1, "b": 1}, 2, "2"),  # same query once normalised
        record("rain in oslo", {"a": 0}, 3, "3"),
    ]
    fb = feedback_training_set(records, [], ["a", "b"])
    assert fb.qrels == {"rain in oslo": {"a": 2, "b": 1}}  # a: mean 5/3 -> 2; b: mean 0.5 -> 1
    assert fb.used == 3 and fb.records == 3


def test_feedback_on_heldout_queries_and_unknown_items_is_dropped() -> None:
    records = [
        record("Test Query", {"a": 4}, 1, "1"),
        record("train query", {"a": 3, "ghost": 4}, 2, "2"),
    ]
    fb = feedback_training_set(records, ["  test   query "], ["a"])
    assert fb.qrels == {"train query": {"a": 3}}
    assert (fb.dropped_heldout, fb.dropped_unknown_items, fb.used) == (1, 1, 1)


def test_materialized_training_set_adds_feedback_to_train_only(tmp_path: Path) -> None:
    base = load_dataset(tiny_dataset())
    heldout = [t for s in ("dev", "test") if s in base.qrels for _, t, _ in base.split_queries(s)]
    assert heldout
    item = base.corpus[0].id
    records = [record(heldout[0], {item: 4}, 1, "1"), record("a brand new query", {item: 3}, 2, "2")]
    fb = feedback_training_set(records, heldout, [d.id for d in base.corpus])
    added = materialize(base, fb, tmp_path / "combined")
    combined = load_dataset(tmp_path / "combined")
    assert added == 1
    new = [q for q in combined.split("train") if q.startswith(FEEDBACK_QUERY_PREFIX)]
    assert [combined.queries[q] for q in new] == ["a brand new query"]  # the held-out one is not there
    assert combined.split("train")[new[0]] == {item: 3}
    for split in ("dev", "test"):
        if split in base.qrels:
            assert combined.split(split) == base.split(split)


def test_gate_passes_a_consistent_improvement_within_the_latency_bound() -> None:
    parent = [0.2, 0.4, 0.5, 0.3, 0.6, 0.1, 0.5, 0.4]
    candidate = [p + 0.1 + 0.01 * i for i, p in enumerate(parent)]
    result = judge_gate(parent, candidate, 1e-3, 1.2e-3, GateConfig())
    assert result.passed, result.reasons
    assert result.figures["p_value"] < 0.05 and result.figures["latency_ratio"] == pytest.approx(1.2)


def test_gate_fails_below_the_margin_on_noise_and_on_latency() -> None:
    parent = [0.2, 0.4, 0.5, 0.3, 0.6, 0.1, 0.5, 0.4]
    better = [p + 0.1 + 0.01 * i for i, p in enumerate(parent)]
    below_margin = judge_gate(parent, better, 1e-3, 1e-3, GateConfig(margin=0.2))
    assert not below_margin.passed and "margin" in below_margin.reasons[0]
    noisy = [p + d for p, d in zip(parent, [0.3, -0.25, 0.2, -0.2, 0.1, -0.05, 0.02, -0.1], strict=True)]
    insignificant = judge_gate(parent, noisy, 1e-3, 1e-3, GateConfig())
    assert not insignificant.passed and "not significant" in insignificant.reasons[0]
    slow = judge_gate(parent, better, 1e-3, 2e-3, GateConfig(max_latency_ratio=1.5))
    assert not slow.passed and slow.figures["quality_passed"] and not slow.figures["latency_passed"]


def test_gate_floor_on_the_candidates_golden_ndcg() -> None:
    parent = [0.2, 0.4, 0.5, 0.3, 0.6, 0.1, 0.5, 0.4]
    better = [p + 0.1 + 0.01 * i for i, p in enumerate(parent)]
    floor = GateConfig(min_golden_ndcg=0.7)
    poor = judge_gate(parent, better, 1e-3, 1e-3, floor, candidate_golden_ndcg=0.64)
    assert not poor.passed and poor.figures["quality_passed"] and not poor.figures["golden_passed"]
    assert "golden NDCG@3 0.6400 below floor 0.7" in poor.reasons[-1]
    good = judge_gate(parent, better, 1e-3, 1e-3, floor, candidate_golden_ndcg=0.71)
    assert good.passed and good.figures["candidate_golden_ndcg@3"] == 0.71
    unknown = judge_gate(parent, better, 1e-3, 1e-3, floor, candidate_golden_ndcg=None)
    assert not unknown.passed and "no golden queries" in unknown.reasons[-1]  # no figure is no pass
    unset = judge_gate(parent, better, 1e-3, 1e-3, GateConfig(), candidate_golden_ndcg=0.1)
    assert unset.passed and "golden_passed" not in unset.figures
    with pytest.raises(ValueError, match="--min-golden-ndcg"):
        GateConfig(min_golden_ndcg=1.5)


def test_paired_p_value_edge_cases() -> None:
    assert paired_p_value([0.1, 0.1, 0.1], 0.0) == 0.0  # no variance: the sign decides
    assert paired_p_value([0.0, 0.0], 0.0) == 1.0
    assert paired_p_value([0.5], 0.0) == 1.0  # one query proves nothing


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--version", "v2"], "semver"),
        (["--version", "1.1.0", "--feedback-log", "MISSING"], "no feedback log"),
        (["--version", "1.1.0", "--feedback-log", "nosuchscheme://x/y"], "--feedback-log"),
        (["--version", "1.1.0", "--feedback-log", "MISSING", "--alpha", "1.5"], "--alpha"),
        (["--version", "1.1.0"], "no usable feedback"),  # the log exists but holds nothing
        (["--version", "PARENT"], "is the parent's version"),
    ],
)
def test_bad_input_exits_2_with_a_message(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: list[str], message: str
) -> None:
    subs = {"MISSING": str(tmp_path / "no-log"), "PARENT": artifact_version()}
    extra = [subs.get(a, a) for a in extra]
    if "--feedback-log" not in extra:
        extra += ["--feedback-log", str(tmp_path)]
    args = ["retrain", "--model", str(tiny_artifact()), "--data", str(tiny_dataset())]
    rc = main([*args, "--out", str(tmp_path / "cand"), *extra])
    assert rc == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "cand").exists()
