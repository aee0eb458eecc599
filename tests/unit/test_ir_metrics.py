"""ir_metrics agrees with trec_eval (through ir-measures / pytrec_eval) and with hand examples."""

from __future__ import annotations

import math

import ir_measures
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from ir_measures import RR, P, nDCG

from rankops.serving.ir_metrics import (
    evaluate_run,
    ndcg_at_k,
    precision_at_k,
    rank_by_score,
    reciprocal_rank,
)


def test_ndcg_hand_example_linear_gain_and_all_judged_ideal() -> None:
    judgments = {"a": 3, "b": 2, "c": 0, "d": 1}
    ranked = ["c", "a", "x"]
    dcg = 0 / math.log2(2) + 3 / math.log2(3) + 0 / math.log2(4)
    idcg = 3 / math.log2(2) + 2 / math.log2(3) + 1 / math.log2(4)
    assert ndcg_at_k(ranked, judgments, 3) == pytest.approx(dcg / idcg)
    # a relevant document that was never ranked still counts in the ideal
    assert ndcg_at_k(["a"], {"a": 1, "b": 4}, 3) < 1.0
    assert ndcg_at_k(["a", "b"], {"a": 4, "b": 1}, 3) == pytest.approx(1.0)


def test_edge_cases() -> None:
    assert ndcg_at_k([], {"a": 2}, 3) == 0.0
    assert ndcg_at_k(["a"], {"a": 0}, 3) == 0.0  # no positive judgment
    assert precision_at_k(["a", "b"], {"a": 1, "b": 0}, 3) == pytest.approx(1 / 3)
    assert reciprocal_rank(["x", "y", "a"], {"a": 1}) == pytest.approx(1 / 3)
    assert reciprocal_rank(["x"], {"a": 1}) == 0.0
    with pytest.raises(ValueError):
        ndcg_at_k(["a"], {"a": 1}, 0)


def test_rank_by_score_breaks_ties_like_trec_eval() -> None:
    assert rank_by_score({"a": 1.0, "b": 1.0, "c": 2.0}) == ["c", "b", "a"]


def test_evaluate_run_means() -> None:
    qrels = {"q1": {"a": 1}, "q2": {"b": 2}}
    out = evaluate_run({"q1": ["a"], "q2": ["x", "b"]}, qrels)
    assert out["mrr"] == pytest.approx(0.75)
    assert set(out) == {"ndcg@3", "ndcg@10", "mrr", "p@3"}


queries_strategy = st.dictionaries(
    keys=st.sampled_from([f"q{i}" for i in range(6)]),
    values=st.tuples(
        # judgments: doc -> grade 0-4
        st.dictionaries(
            st.sampled_from([f"d{i:02d}" for i in range(25)]), st.integers(0, 4), min_size=1, max_size=15
        ),
        # run: doc -> distinct score
        st.lists(st.sampled_from([f"d{i:02d}" for i in range(25)]), min_size=1, max_size=25, unique=True),
        st.randoms(use_true_random=False),
    ),
    min_size=1,
    max_size=6,
)


@settings(max_examples=60, deadline=None)
@given(queries_strategy)
def test_agrees_with_trec_eval(data: dict) -> None:
    qrels: dict[str, dict[str, int]] = {}
    run: dict[str, dict[str, float]] = {}
    for qid, (judg, docs, rnd) in data.items():
        qrels[qid] = judg
        scores = rnd.sample(range(1000), len(docs))  # distinct scores: no ties
        run[qid] = {d: float(s) for d, s in zip(docs, scores, strict=True)}
    measures = [nDCG @ 3, nDCG @ 10, P(rel=1) @ 3, RR(rel=1)]
    per_query = {(m.measure, m.query_id): m.value for m in ir_measures.iter_calc(measures, qrels, run)}
    for qid in qrels:
        ranked = rank_by_score(run[qid])
        ours_q = {
            nDCG @ 3: ndcg_at_k(ranked, qrels[qid], 3),
            nDCG @ 10: ndcg_at_k(ranked, qrels[qid], 10),
            P(rel=1) @ 3: precision_at_k(ranked, qrels[qid], 3),
            RR(rel=1): reciprocal_rank(ranked, qrels[qid]),
        }
        for m, v in ours_q.items():
            if any(g > 0 for g in qrels[qid].values()) or m not in (nDCG @ 3, nDCG @ 10):
                ref = per_query.get((m, qid), 0.0)
                assert v == pytest.approx(ref, abs=1e-6), (m, qid, ranked, qrels[qid])
    agg = ir_measures.calc_aggregate([nDCG @ 3], qrels, run)
    n = len(qrels)
    mean_ours = sum(ndcg_at_k(rank_by_score(run[q]), qrels[q], 3) for q in qrels) / n
    assert mean_ours == pytest.approx(agg[nDCG @ 3], abs=1e-6)


@settings(max_examples=40, deadline=None)
@given(queries_strategy)
def test_ties_are_broken_like_trec_eval(data: dict) -> None:
    # scores from a tiny range, so many documents tie: rank_by_score must order them exactly as
    # trec_eval does (score descending, then document id descending)
    qrels = {qid: judg for qid, (judg, _, _) in data.items()}
    run = {qid: {d: float(rnd.randint(0, 2)) for d in docs} for qid, (_, docs, rnd) in data.items()}
    per_query = {
        (str(m.measure), m.query_id): m.value
        for m in ir_measures.iter_calc([nDCG @ 3, nDCG @ 10], qrels, run)
    }
    for qid in qrels:
        if not any(g > 0 for g in qrels[qid].values()):
            continue
        ranked = rank_by_score(run[qid])
        assert ndcg_at_k(ranked, qrels[qid], 3) == pytest.approx(per_query[("nDCG@3", qid)], abs=1e-6)
        assert ndcg_at_k(ranked, qrels[qid], 10) == pytest.approx(per_query[("nDCG@10", qid)], abs=1e-6)
