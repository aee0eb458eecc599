"""Calibrated relevance: an estimate of an item's graded relevance / 4 for a query.

Ranking scores are only comparable within one query (the listwise loss is shift-invariant),
so the estimate reads three things about an item at rank r of a ranking: its score s, its gap
to the top score s - s_0, and 1 / (1 + r). A logistic model over those,

    relevance = sigmoid(a * s + b * (s - s_0) + c / (1 + r) + d),

is fitted (L-BFGS, cross-entropy against the soft target grade / 4) on the top 10 of
held-out queries (the dev split, never the training queries). ``reliability`` tabulates mean
estimate against mean truth by bins, the check of the fit.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy.optimize import minimize

N_PARAMS = 4
CALIBRATION_DEPTH = 10


def _design(ranked_scores: Sequence[float]) -> np.ndarray:
    s = np.asarray(ranked_scores, dtype=np.float64)
    if s.size == 0:
        return np.zeros((0, N_PARAMS))
    return np.stack([s, s - s[0], 1.0 / (1.0 + np.arange(s.size)), np.ones_like(s)], axis=1)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return np.asarray(0.5 * (1.0 + np.tanh(0.5 * x)))  # overflow-free logistic


class Calibrator:
    """Applies fitted parameters; without parameters the estimate is 0.5 (nothing known)."""

    def __init__(self, params: Sequence[float]) -> None:
        self.params = np.asarray(params, dtype=np.float64) if len(params) == N_PARAMS else None

    def estimate(self, ranked_scores: Sequence[float]) -> list[float]:
        if len(ranked_scores) == 0:
            return []
        if self.params is None:
            return [0.5] * len(ranked_scores)
        return [float(v) for v in _sigmoid(_design(ranked_scores) @ self.params)]


def fit_calibration(rankings: Sequence[tuple[Sequence[float], Sequence[float]]]) -> list[float]:
    """Fit on (ranked scores, true grade / 4 of the same items) per held-out query."""
    xs = [_design(scores[:CALIBRATION_DEPTH]) for scores, _ in rankings]
    ys = [np.asarray(truth[:CALIBRATION_DEPTH], dtype=np.float64) for _, truth in rankings]
    if not xs or sum(len(y) for y in ys) == 0:
        return []
    x = np.concatenate(xs)
    y = np.clip(np.concatenate(ys), 0.0, 1.0)

    def loss(w: np.ndarray) -> tuple[float, np.ndarray]:
        z = x @ w
        # cross-entropy with logits, written stably: softplus(z) - y * z
        ce = np.logaddexp(0.0, z) - y * z
        grad = x.T @ (_sigmoid(z) - y) / len(y)
        reg = 1e-3
        return float(ce.mean() + reg * (w[:-1] @ w[:-1])), grad + 2 * reg * np.append(w[:-1], 0.0)

    result = minimize(loss, np.zeros(N_PARAMS), jac=True, method="L-BFGS-B")
    return [round(float(v), 8) for v in result.x]


def reliability(pairs: Sequence[tuple[float, float, int]], bins: int = 5) -> dict[str, Any]:
    """(estimate, truth, rank) triples -> mean estimate vs truth by estimate bin, and top 3."""
    est = np.asarray([p[0] for p in pairs], dtype=np.float64)
    truth = np.asarray([p[1] for p in pairs], dtype=np.float64)
    rank = np.asarray([p[2] for p in pairs])
    top3 = rank < 3
    table = []
    edges = np.linspace(0.0, 1.0, bins + 1)
    for i in range(bins):
        lo, hi = edges[i], edges[i + 1]
        sel = (est >= lo) & ((est < hi) if i < bins - 1 else (est <= hi))
        if sel.any():
            table.append(
                {
                    "bin": f"{lo:.1f}-{hi:.1f}",
                    "n": int(sel.sum()),
                    "mean_estimate": float(est[sel].mean()),
                    "mean_truth": float(truth[sel].mean()),
                }
            )
    m_est = float(est[top3].mean()) if top3.any() else 0.0
    m_truth = float(truth[top3].mean()) if top3.any() else 0.0
    return {
        "bins": table,
        "top3_mean_estimate": m_est,
        "top3_mean_truth": m_truth,
        "top3_gap": m_est - m_truth,
    }
