"""The "beats production" gate of ``rankops retrain``: candidate vs parent on one held-out split.

The candidate passes only if BOTH hold:

* quality: the mean per-query NDCG@3 difference (candidate - parent) exceeds ``margin`` and a
  one-sided paired t-test of ``d_i - margin > 0`` across the queries rejects at ``alpha``.
  The t-test, not Wilcoxon's signed-rank test, because the gate is about the MEAN NDCG@3 (what
  the QualitySLO and the canary judge track) and the t-test's hypothesis is the mean; the
  signed-rank test is about the median of the differences and drops the many queries whose
  NDCG@3 does not change, so it can call significant a shift whose mean is negligible. With
  ~100 held-out queries the mean of differences bounded in [-1, 1] is close to normal.
* latency: the candidate's median ``rank`` time over the same queries is at most
  ``max_latency_ratio`` times the parent's; both are timed in the same run, interleaved query
  by query, so machine load hits both alike.
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from scipy import stats

from rankops.serving.artifact import ModelArtifact
from rankops.serving.ir_metrics import ndcg_at_k

GATE_K = 3
RANK_K = 10
TEST_NAME = "one-sided paired t-test (scipy.stats.ttest_1samp on d - margin, alternative='greater')"


@dataclass(frozen=True)
class GateConfig:
    margin: float = 0.0
    alpha: float = 0.05
    max_latency_ratio: float = 1.5
    latency_rounds: int = 3
    # a floor on the candidate's NDCG@3 over its own golden set (what its pods will export as
    # rankops_golden_ndcg_at_3): beating the parent is not enough when both are poor
    min_golden_ndcg: float | None = None

    def __post_init__(self) -> None:
        if not 0.0 < self.alpha < 1.0:
            raise ValueError(f"--alpha must be within (0, 1), got {self.alpha}")
        if not -1.0 < self.margin < 1.0:
            raise ValueError(f"--margin must be within (-1, 1), got {self.margin}")
        if self.max_latency_ratio <= 0:
            raise ValueError(f"--max-latency-ratio must be > 0, got {self.max_latency_ratio}")
        if self.latency_rounds < 1:
            raise ValueError("latency_rounds must be >= 1")
        if self.min_golden_ndcg is not None and not 0.0 <= self.min_golden_ndcg <= 1.0:
            raise ValueError(f"--min-golden-ndcg must be within [0, 1], got {self.min_golden_ndcg}")


@dataclass
class GateResult:
    passed: bool
    reasons: list[str]
    figures: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"verdict": "passed" if self.passed else "failed", "reasons": self.reasons, **self.figures}


def per_query_ndcg(
    artifact: ModelArtifact, queries: Sequence[tuple[str, str, dict[str, int]]], k: int = GATE_K
) -> list[float]:
    """NDCG@k of each query (id, text, judgments), ranking the whole catalogue."""
    ranked = artifact.rank_many([q[1] for q in queries], RANK_K)
    return [ndcg_at_k([r.item.id for r in row], q[2], k) for row, q in zip(ranked, queries, strict=True)]


def median_latencies(
    artifacts: Sequence[ModelArtifact], texts: Sequence[str], rounds: int, k: int = RANK_K
) -> list[float]:
    """Median seconds of one ``rank(text, k)`` call per artifact, timed interleaved."""
    samples: list[list[float]] = [[] for _ in artifacts]
    for art in artifacts:  # warm-up: first calls pay for lazy init and cold caches
        art.rank(texts[0], k)
    for _ in range(rounds):
        for text in texts:
            for i, art in enumerate(artifacts):
                started = time.perf_counter()
                art.rank(text, k)
                samples[i].append(time.perf_counter() - started)
    return [statistics.median(s) for s in samples]


def paired_p_value(diffs: Sequence[float], margin: float) -> float:
    """One-sided p-value of ``mean(d) > margin``."""
    shifted = [d - margin for d in diffs]
    if len(shifted) < 2:
        return 1.0
    if statistics.pstdev(shifted) == 0.0:  # the t statistic is undefined: the sign decides
        return 0.0 if shifted[0] > 0 else 1.0
    p = float(stats.ttest_1samp(shifted, 0.0, alternative="greater").pvalue)
    return 1.0 if math.isnan(p) else p


def judge_gate(
    parent_ndcg: Sequence[float],
    candidate_ndcg: Sequence[float],
    parent_latency_s: float,
    candidate_latency_s: float,
    config: GateConfig,
    candidate_golden_ndcg: float | None = None,
) -> GateResult:
    if len(parent_ndcg) != len(candidate_ndcg) or not parent_ndcg:
        raise ValueError("the gate needs the same non-empty set of queries for parent and candidate")
    diffs = [c - p for c, p in zip(candidate_ndcg, parent_ndcg, strict=True)]
    parent_mean = statistics.fmean(parent_ndcg)
    candidate_mean = statistics.fmean(candidate_ndcg)
    difference = candidate_mean - parent_mean
    p_value = paired_p_value(diffs, config.margin)
    ratio = candidate_latency_s / parent_latency_s if parent_latency_s > 0 else math.inf
    reasons: list[str] = []
    quality_ok = difference > config.margin and p_value < config.alpha
    if difference <= config.margin:
        reasons.append(
            f"NDCG@3 did not improve by the margin: candidate {candidate_mean:.4f} - parent "
            f"{parent_mean:.4f} = {difference:+.4f} <= margin {config.margin}"
        )
    elif p_value >= config.alpha:
        reasons.append(
            f"NDCG@3 improvement {difference:+.4f} is not significant: "
            f"p = {p_value:.4g} >= alpha {config.alpha}"
        )
    else:
        reasons.append(
            f"NDCG@3 improved by {difference:+.4f} > margin {config.margin} with p = {p_value:.4g} "
            f"< alpha {config.alpha}"
        )
    latency_ok = ratio <= config.max_latency_ratio
    reasons.append(
        f"median rank latency ratio {ratio:.3f} {'<=' if latency_ok else '>'} "
        f"bound {config.max_latency_ratio} "
        f"(candidate {candidate_latency_s * 1e3:.3f} ms, parent {parent_latency_s * 1e3:.3f} ms)"
    )
    golden_ok = True
    if config.min_golden_ndcg is not None:
        golden = candidate_golden_ndcg
        golden_ok = golden is not None and math.isfinite(golden) and golden >= config.min_golden_ndcg
        shown = "none (no golden queries)" if golden is None or not math.isfinite(golden) else f"{golden:.4f}"
        reasons.append(
            f"golden NDCG@3 {shown} {'>=' if golden_ok else 'below'} floor {config.min_golden_ndcg}"
        )
    figures = {
        "split": "test",
        "queries": len(diffs),
        "metric": f"ndcg@{GATE_K}",
        "parent_ndcg@3": round(parent_mean, 6),
        "candidate_ndcg@3": round(candidate_mean, 6),
        "difference": round(difference, 6),
        "queries_better": sum(d > 0 for d in diffs),
        "queries_worse": sum(d < 0 for d in diffs),
        "p_value": p_value,
        "test": TEST_NAME,
        "margin": config.margin,
        "alpha": config.alpha,
        "parent_latency_ms": round(parent_latency_s * 1e3, 4),
        "candidate_latency_ms": round(candidate_latency_s * 1e3, 4),
        "latency_ratio": round(ratio, 4),
        "max_latency_ratio": config.max_latency_ratio,
        "quality_passed": quality_ok,
        "latency_passed": latency_ok,
    }
    if config.min_golden_ndcg is not None:
        figures["candidate_golden_ndcg@3"] = (
            round(candidate_golden_ndcg, 6)
            if candidate_golden_ndcg is not None and math.isfinite(candidate_golden_ndcg)
            else None
        )
        figures["min_golden_ndcg@3"] = config.min_golden_ndcg
        figures["golden_passed"] = golden_ok
    return GateResult(quality_ok and latency_ok and golden_ok, reasons, figures)


def evaluate_gate(
    parent: ModelArtifact,
    candidate: ModelArtifact,
    queries: Sequence[tuple[str, str, dict[str, int]]],
    config: GateConfig,
) -> GateResult:
    """Score both models on the same held-out queries and time both in this run."""
    if not queries:
        raise ValueError("the held-out split has no queries")
    parent_ndcg = per_query_ndcg(parent, queries)
    candidate_ndcg = per_query_ndcg(candidate, queries)
    parent_s, candidate_s = median_latencies(
        [parent, candidate], [q[1] for q in queries], config.latency_rounds
    )
    golden = None
    if config.min_golden_ndcg is not None and candidate.golden:
        golden_queries = [(g.query_id, g.text, g.judgments) for g in candidate.golden]
        golden = statistics.fmean(per_query_ndcg(candidate, golden_queries))
    return judge_gate(parent_ndcg, candidate_ndcg, parent_s, candidate_s, config, golden)
