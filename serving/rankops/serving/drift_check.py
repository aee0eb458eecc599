"""The drift Job: live query features from every serving pod against the artifact's reference.

Each pod keeps a rolling window of features of the queries it served (``GET
/v1/drift/window``); the windows of the pods that serve the artifact under test are pooled,
a query seen by several pods counted once, and compared with ``reference_stats.json``
(``drift.compare``): Kolmogorov-Smirnov on the numeric features, chi-square on the
categorical ones, PSI on all.

Verdict per feature: drift when its p-value is significant after Holm's step-down
correction over all features at ``alpha`` (so the chance of a false alarm on a day without
drift stays at most ``alpha`` however many features are tested), or when PSI exceeds
``psi_threshold``. Fewer than ``min_samples`` distinct pooled rows is no verdict, never a pass.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import httpx

from rankops.serving.drift import DriftReference, compare

DRIFT, NO_DRIFT, INSUFFICIENT = "Drift", "NoDrift", "InsufficientData"


class DriftInputError(ValueError):
    """No usable live window: pods unreachable or serving another artifact."""


@dataclass(frozen=True)
class PodWindow:
    endpoint: str
    sha256: str | None
    version: str | None
    rows: list[dict[str, float | str]]
    # each row's query id (distinct_rows says why); None from a pod that sends none
    ids: list[str | None] | None = None


def fetch_window(endpoint: str, *, timeout_s: float = 10.0) -> PodWindow:
    url = endpoint.rstrip("/") + "/v1/drift/window"
    response = httpx.get(url, timeout=timeout_s)
    response.raise_for_status()
    body = response.json()
    rows = body.get("rows")
    if not isinstance(rows, list):
        raise ValueError(f"{url}: no 'rows' list in the response")
    ids = body.get("ids")
    if ids is not None and (
        not isinstance(ids, list)
        or len(ids) != len(rows)
        or not all(i is None or isinstance(i, str) for i in ids)
    ):
        raise ValueError(f"{url}: 'ids' must be a list of strings (or null), one per row")
    return PodWindow(endpoint, body.get("sha256"), body.get("version"), [dict(r) for r in rows], ids)


def holm_significant(pvalues: Mapping[str, float], alpha: float) -> set[str]:
    """Names whose p-value is significant under Holm's step-down procedure at ``alpha``."""
    ordered = sorted(pvalues.items(), key=lambda kv: kv[1])
    out: set[str] = set()
    m = len(ordered)
    for i, (name, p) in enumerate(ordered):
        if p >= alpha / (m - i):
            break
        out.add(name)
    return out


def judge_drift(
    reference: DriftReference,
    rows: Sequence[Mapping[str, float | str]],
    *,
    alpha: float,
    psi_threshold: float,
    min_samples: int,
) -> dict[str, Any]:
    """Per-feature statistic, p-value, PSI and verdict, and the overall verdict."""
    report = compare(reference, rows)
    significant = holm_significant({k: f.pvalue for k, f in report.features.items()}, alpha)
    features: dict[str, Any] = {}
    for name, f in sorted(report.features.items()):
        reasons = []
        if name in significant:
            reasons.append(f"{f.test} p={f.pvalue:.3g} significant at alpha={alpha:g} (Holm)")
        if f.psi > psi_threshold:
            reasons.append(f"PSI {f.psi:.3f} > {psi_threshold:g}")
        features[name] = {
            "kind": f.kind,
            "test": f.test,
            "statistic": round(f.statistic, 6),
            "pvalue": f.pvalue,
            "psi": round(f.psi, 6),
            "n": f.n,
            "verdict": DRIFT if reasons else NO_DRIFT,
            "reasons": reasons,
        }
    drifted = sorted(k for k, v in features.items() if v["verdict"] == DRIFT)
    verdict = INSUFFICIENT if len(rows) < min_samples else DRIFT if drifted else NO_DRIFT
    return {
        "verdict": verdict,
        "n": len(rows),
        "minSamples": min_samples,
        "alpha": alpha,
        "correction": "holm",
        "psiThreshold": psi_threshold,
        "drifted": drifted,
        "features": features,
    }


def drift_check(
    reference: DriftReference,
    artifact_sha256: str,
    endpoints: Sequence[str],
    *,
    alpha: float,
    psi_threshold: float,
    min_samples: int,
    fetch: Callable[[str], PodWindow] = fetch_window,
    progress: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Pool the windows of the pods serving ``artifact_sha256`` and judge them."""
    if not endpoints:
        raise DriftInputError("no serving pod endpoints given (--endpoint URL, one per pod)")
    pods: list[dict[str, Any]] = []
    rows: list[dict[str, float | str]] = []
    ids: list[str | None] = []
    for endpoint in endpoints:
        try:
            window = fetch(endpoint)
        except (httpx.HTTPError, ValueError) as exc:
            progress(f"{endpoint}: skipped: {exc}")
            pods.append({"endpoint": endpoint, "used": False, "problem": str(exc)})
            continue
        if window.sha256 != artifact_sha256:
            problem = f"serves artifact sha256 {window.sha256}, not {artifact_sha256}"
            progress(f"{endpoint}: skipped: {problem}")
            pods.append({"endpoint": endpoint, "used": False, "problem": problem, "version": window.version})
            continue
        progress(f"{endpoint}: {len(window.rows)} distinct live queries (version {window.version})")
        pods.append({"endpoint": endpoint, "used": True, "n": len(window.rows), "version": window.version})
        rows.extend(window.rows)
        ids.extend(window.ids if window.ids is not None else [None] * len(window.rows))
    if not any(p["used"] for p in pods):
        raise DriftInputError(
            "no serving pod gave a window of this artifact: "
            + "; ".join(f"{p['endpoint']}: {p['problem']}" for p in pods)
        )
    pooled = distinct_rows(rows, ids)
    if len(pooled) < len(rows):
        progress(f"pooled: {len(pooled)} distinct of {len(rows)} rows (a query two pods served counts once)")
    result = judge_drift(reference, pooled, alpha=alpha, psi_threshold=psi_threshold, min_samples=min_samples)
    return {**result, "pooledRows": len(rows), "pods": pods}


def distinct_rows(
    rows: Sequence[Mapping[str, float | str]], ids: Sequence[str | None] | None = None
) -> list[dict[str, float | str]]:
    """``rows`` without repeats, first seen kept.

    Each pod's window holds distinct queries, but traffic spreads one query over several pods,
    and a pooled sample holding it twice is not independent (the tests read repetition as
    drift). Pods send features, never query text, so a repeat is recognised by its query id
    (``ids[i]``, a keyed digest of the normalised text), and only without one by an equal
    feature row. Equal rows are not enough since the query batcher: one query's ``max_score``
    differs in its last digits between encoder passes of different company, and two pods
    pass it with different company."""
    seen: set[object] = set()
    out: list[dict[str, float | str]] = []
    for i, row in enumerate(rows):
        query_id = ids[i] if ids is not None else None
        key: object = ("id", query_id) if query_id is not None else ("row", tuple(sorted(row.items())))
        if key not in seen:
            seen.add(key)
            out.append(dict(row))
    return out
