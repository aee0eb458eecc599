"""The demo's picture: online NDCG@3 per track over time, the canary weight, the events marked.

NDCG@3 is the mean of the judged requests each track served in consecutive ``bin_s``-second
bins (from the traffic generator's record: what users got), labelled with the version a
track served where that changes; the canary weight is the
RankingModel's ``status.canaryWeight`` as the recorder saw it change; alerts (firing in
Prometheus, held by Alertmanager) are dash-dotted lines. The series drawn are
returned (and written next to the PNG as JSON) so tests can check them.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rankops.sandbox.timeline import Mark, StatusSample
from rankops.sandbox.traffic import Judged

__all__ = ["binned_ndcg", "write_plot"]

BIN_S = 2.0
EVENT_COLORS = {"RolloutStarted": "tab:blue", "Promoted": "tab:green", "RolledBack": "tab:red"}
ALERT_COLOR = "darkred"
ALERT_GROUP_S = 5.0  # an alert's pending, firing and delivery come seconds apart


def binned_ndcg(judged: Sequence[Judged], start: float, bin_s: float = 2.0) -> dict[str, list[list[float]]]:
    """track -> [[seconds since start (bin middle), mean NDCG@3, n], ...]."""
    bins: dict[str, dict[int, list[float]]] = defaultdict(lambda: defaultdict(list))
    for j in judged:
        bins[j.track][int((j.at - start) // bin_s)].append(j.ndcg)
    return {
        track: [[(b + 0.5) * bin_s, sum(v) / len(v), len(v)] for b, v in sorted(by_bin.items())]
        for track, by_bin in sorted(bins.items())
    }


def version_changes(judged: Sequence[Judged], start: float, bin_s: float = 2.0) -> list[list[Any]]:
    """[[seconds, track, version], ...] where the version a track mostly served changes."""
    counts: dict[str, dict[int, dict[str, int]]] = defaultdict(lambda: defaultdict(lambda: defaultdict(int)))
    for j in judged:
        counts[j.track][int((j.at - start) // bin_s)][j.version] += 1
    out: list[list[Any]] = []
    for track, by_bin in sorted(counts.items()):
        current = None
        for b, versions in sorted(by_bin.items()):
            top = max(versions, key=lambda v: versions[v])
            if top != current:
                out.append([(b + 0.5) * bin_s, track, top])
                current = top
    return out


def grouped(marks: Sequence[tuple[float, str]], within_s: float) -> list[tuple[float, str]]:
    """Marks less than ``within_s`` after the previous one join its label, one line each."""
    out: list[tuple[float, str]] = []
    last = float("-inf")
    for at, label in sorted(marks):
        if out and at - last < within_s:
            out[-1] = (out[-1][0], f"{out[-1][1]}\n{label}")
        else:
            out.append((at, label))
        last = at
    return out


def write_plot(
    path: Path,
    *,
    start: float,
    end: float,
    judged: Sequence[Judged],
    samples: Sequence[StatusSample],
    marks: Sequence[Mark],
    title: str = "rankops demo",
) -> dict[str, Any]:
    import matplotlib

    matplotlib.use("Agg")  # no display; safe in threads and CI
    import matplotlib.pyplot as plt

    ndcg = binned_ndcg(judged, start, BIN_S)
    steps = [[s.at - start, s.weight] for s in samples]
    if steps:
        steps.append([end - start, steps[-1][1]])
    events: list[tuple[float, str]] = [
        (m.at - start, m.label) for m in marks if m.kind == "event" and m.label in EVENT_COLORS
    ]
    acts: list[tuple[float, str]] = [(m.at - start, m.label) for m in marks if m.kind == "act"]
    alerts: list[tuple[float, str]] = [(m.at - start, m.label) for m in marks if m.kind == "alert"]

    fig, (top, bottom) = plt.subplots(
        2, 1, figsize=(11, 6.5), sharex=True, gridspec_kw={"height_ratios": [3, 1.2]}
    )
    colors = {"stable": "tab:blue", "canary": "tab:orange"}
    for track, points in ndcg.items():
        xs: list[float] = []
        ys: list[float] = []
        for point in points:
            if xs and point[0] - xs[-1] > 2.5 * BIN_S:  # no traffic on this track meanwhile: a gap
                xs.append(float("nan"))
                ys.append(float("nan"))
            xs.append(point[0])
            ys.append(point[1])
        top.plot(
            xs,
            ys,
            marker=".",
            lw=1.5,
            color=colors.get(track),
            label=f"NDCG@3 {track}",
        )
    changes = version_changes(judged, start, BIN_S)
    for at, track, version in changes:
        y = next((p[1] for p in ndcg[track] if p[0] == at), 0.5)
        top.annotate(
            version, (at, y), xytext=(3, 6), textcoords="offset points", fontsize=8, color=colors.get(track)
        )
    top.set_ylabel("online NDCG@3 (2 s bins)")
    top.set_ylim(0, 1.02)
    top.set_title(title)
    bottom.step(
        [s[0] for s in steps], [s[1] for s in steps], where="post", color="tab:purple", label="canary weight"
    )
    bottom.set_ylabel("canary weight %")
    bottom.set_ylim(-5, 105)
    bottom.set_xlabel("seconds since start")
    for axis in (top, bottom):
        for at, label in events:
            axis.axvline(at, color=EVENT_COLORS[label], ls="--", lw=1, alpha=0.8)
        for at, _ in acts:
            axis.axvline(at, color="grey", ls=":", lw=1)
        for at, _ in alerts:
            axis.axvline(at, color=ALERT_COLOR, ls="-.", lw=1)
    for at, label in events:
        top.annotate(
            label, (at, 1.0), rotation=90, va="top", ha="right", fontsize=7, color=EVENT_COLORS[label]
        )
    for at, label in grouped(alerts, ALERT_GROUP_S):  # pending, firing, delivered: one block, not a smear
        top.annotate(label, (at, 0.5), rotation=90, va="center", ha="right", fontsize=6, color=ALERT_COLOR)
    for at, label in acts:
        top.annotate(label, (at, 0.02), rotation=90, va="bottom", ha="left", fontsize=7, color="dimgrey")
    top.legend(loc="lower right")
    bottom.legend(loc="upper right")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    series = {
        "ndcg_at_3": ndcg,
        "canary_weight": steps,
        "events": events,
        "acts": acts,
        "alerts": alerts,
        "versions": changes,
        "lines": [f"NDCG@3 {t}" for t in ndcg] + ["canary weight"],
    }
    path.with_suffix(".json").write_text(json.dumps(series))
    return series
