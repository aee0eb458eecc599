"""``rankops report``: the runbook's weekly or quarterly quality report, from the feedback log.

Writes ``quality-report-<type>.json`` (the ``POST /api/v2/quality/report`` body, with details)
and ``ndcg-by-domain-<type>.png`` (mean NDCG@3 per domain per day, or per week for the
quarterly report) into the output directory.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from rankops.serving.feedback_log import log_exists, read_feedback
from rankops.serving.quality_report import build_report

REPORT_RANGES = {"weekly": "7d", "quarterly": "90d"}
REPORT_DAYS = {"weekly": 7, "quarterly": 90}


def plot_series(report: dict[str, Any], title: str, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")  # files only; no display
    import matplotlib.pyplot as plt

    series = report["details"]["series"]
    fig, ax = plt.subplots(figsize=(9, 4.5), dpi=100)
    for domain in sorted({p["domain"] for p in series}):
        points = [p for p in series if p["domain"] == domain]
        ax.plot([p["bucket"] for p in points], [p["avg_ndcg"] for p in points], marker="o", label=domain)
    threshold = report["report_summary"]["quality_threshold"]
    ax.axhline(threshold, color="grey", linestyle="--", linewidth=1, label=f"target {threshold:g}")
    ax.set_ylim(0, 1.02)
    ax.set_ylabel("mean NDCG@3")
    ax.set_xlabel(report["details"]["bucket"])
    ax.set_title(title)
    if not series:
        ax.text(0.5, 0.5, "no feedback in this period", ha="center", va="center", transform=ax.transAxes)
    ax.legend(loc="lower left", fontsize="small", ncol=3)
    ax.tick_params(axis="x", labelrotation=45)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def report_command(
    feedback_log: str, kind: str, out_dir: str | Path, *, threshold: float = 0.7, now: float | None = None
) -> tuple[Path, Path]:
    """Write the report's JSON and chart; returns their paths."""
    if kind not in REPORT_RANGES:
        raise ValueError(f"--type must be one of {', '.join(REPORT_RANGES)}, got {kind!r}")
    if not log_exists(feedback_log):
        raise ValueError(f"no feedback log at {feedback_log} (nothing was ever written there)")
    end = time.time() if now is None else now
    start = end - REPORT_DAYS[kind] * 86400
    report = build_report(
        read_feedback(feedback_log, start, end),
        start=start,
        end=end,
        time_range=REPORT_RANGES[kind],
        threshold=threshold,
        include_details=True,
    )
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    json_path = out / f"quality-report-{kind}.json"
    json_path.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    png_path = out / f"ndcg-by-domain-{kind}.png"
    summary = report["report_summary"]
    plot_series(report, f"NDCG@3 per domain, {kind} ({summary['total_queries']} judged queries)", png_path)
    return json_path, png_path
