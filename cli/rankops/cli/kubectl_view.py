"""Plain-text views of a RankingModel for `kubectl rankops` (stable in CI logs: no cursor tricks)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from rankops.cli import kubectl_api as names


def _fmt(value: Any, digits: int = 3) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def _count(value: Any) -> str:
    return "-" if value is None else str(round(float(value)))


def _table(header: Sequence[str], rows: Sequence[Sequence[str]], indent: str = "  ") -> list[str]:
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *rows, strict=True)]
    return [
        indent + "  ".join(str(cell).ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in (header, *rows)
    ]


def step_summary(spec: Mapping[str, Any], status: Mapping[str, Any]) -> str:
    rollout = spec.get("rollout") or {}
    current = status.get("currentStep")
    if current is not None and rollout.get("experiment") is not None:
        return f"experiment (weight {status.get('canaryWeight', '?')})"
    steps = rollout.get("steps") or [{"weight": 100}]  # the parser's default: one step at 100
    if current is None:
        return "-"
    step = steps[current] if 0 <= current < len(steps) else {}
    detail = f"weight {step.get('weight', '?')}"
    if step.get("pause"):
        detail += f", pause {step['pause']}"
    return f"{current + 1}/{len(steps)} ({detail})"


def render_status(obj: Mapping[str, Any]) -> str:
    meta, spec, status = obj.get("metadata") or {}, obj.get("spec") or {}, obj.get("status") or {}
    weight = int(status.get("canaryWeight") or 0)
    lines = [
        f"Name:          {meta.get('name')}",
        f"Namespace:     {meta.get('namespace')}",
        f"Phase:         {status.get('phase', 'Unknown')}"
        + (
            f" ({status['pauseReason']})"
            if status.get("phase") == "Paused" and status.get("pauseReason")
            else ""
        ),
        f"Message:       {status.get('message') or '-'}",
        f"Spec version:  {(spec.get('model') or {}).get('version', '-')}",
        f"Stable:        {status.get('stableVersion') or '-'}  weight {100 - weight}",
        f"Canary:        {status.get('canaryVersion') or '-'}  weight {weight}"
        + (f"  (revision {status['canaryRevision']})" if status.get("canaryVersion") else ""),
        f"Step:          {step_summary(spec, status)}",
    ]
    if (meta.get("annotations") or {}).get(names.PAUSED_ANNOTATION) == "true":
        lines.append(f"Paused by:     {names.PAUSED_ANNOTATION}=true")
    analysis = status.get("lastAnalysis")
    if analysis:
        lines.append(
            f"Last analysis: {analysis.get('verdict')} ({analysis.get('reason')}), look "
            f"{analysis.get('look', '?')}/{analysis.get('plannedLooks', '?')} at {analysis.get('time', '-')}"
        )
        if analysis.get("message"):
            lines.append(f"               {analysis['message']}")
        rows = []
        for o in analysis.get("objectives") or []:
            ci = f"[{_fmt(o.get('ciLower'))}, {_fmt(o.get('ciUpper'))}]" if "ciLower" in o else "-"
            rows.append(
                [
                    o.get("name", "?"),
                    o.get("metric", "?"),
                    o.get("verdict", "?"),
                    _fmt(o.get("canaryMean")),
                    _fmt(o.get("stableMean")),
                    _fmt(o.get("difference")),
                    ci,
                    _fmt(o.get("pValue"), 4),
                    f"{_count(o.get('canaryN'))}/{_count(o.get('stableN'))}",
                ]
            )
        if rows:
            lines += _table(
                ["OBJECTIVE", "METRIC", "VERDICT", "CANARY", "STABLE", "DIFF", "CI", "P", "N(C/S)"], rows
            )
    lines += experiment_lines(status.get("experiment"))
    lines += retrain_lines(status.get("retrain") or {})
    conditions = status.get("conditions") or []
    if conditions:
        lines.append(
            "Conditions:    "
            + " ".join(f"{c.get('type')}={c.get('status')}" + (f"({c['reason']})" if c.get("reason") else "")
                       for c in conditions)
        )  # fmt: skip
    return "\n".join(lines)


def _effect(e: Mapping[str, Any]) -> str:
    """``+0.0210 [+0.0080, +0.0340] n 5012/4988`` from an experiment's figures."""
    if e.get("difference") is None:
        return "no estimate"
    lower = "-inf" if e.get("ciLower") is None else f"{e['ciLower']:+.4f}"
    upper = "inf" if e.get("ciUpper") is None else f"{e['ciUpper']:+.4f}"
    return (
        f"{e['difference']:+.4f} [{lower}, {upper}] n {_count(e.get('canaryN'))}/{_count(e.get('stableN'))}"
    )


def experiment_lines(e: Mapping[str, Any] | None) -> list[str]:
    """The A/B experiment of ``status.experiment``: design, decision or progress, figures, guardrails."""
    if not e:
        return []
    level = f"{1 - float(e.get('alpha', 0.05)):.0%}"
    lines = [
        f"Experiment:    {e.get('candidate')} vs stable {e.get('baseline')} at "
        f"{e.get('weight')}/{100 - int(e.get('weight') or 0)}, {e.get('method')} ({level}), "
        f"{e.get('startedAt', '-')} to {e.get('endsAt', '-')}"
    ]
    if e.get("decision"):
        early = " (early)" if e.get("early") else ""
        action = str(e.get("action", "-")).lower()
        lines.append(
            f"  Decision:    {e['decision']} ({e.get('reason')}): candidate {action}, "
            f"at {e.get('decidedAt', '-')}{early}"
        )
    elif e.get("endedReason"):
        lines.append(f"  Ended:       without a decision ({e['endedReason']})")
    else:
        lines.append(
            f"  Running:     {e.get('looks', 0)} looks; interim figures (decides by {e.get('endsAt', '-')})"
        )
    p_value = f", p {e['pValue']:.4g}" if e.get("pValue") is not None else ""
    lines.append(
        f"  {e.get('objective') or 'ndcg_at_3'}: candidate {_fmt(e.get('canaryMean'), 4)} stable "
        f"{_fmt(e.get('stableMean'), 4)}, difference {_effect(e)}{p_value}"
    )
    guards = e.get("guardrails") or []
    if guards:
        lines.append(
            "  Guardrails:  "
            + ", ".join(f"{g.get('name')} {g.get('verdict')} ({g.get('reason')})" for g in guards)
        )
    if e.get("message"):
        lines.append(f"  {e['message']}")
    return lines


def retrain_lines(retrain: Mapping[str, Any]) -> list[str]:
    """``status.retrain``: the last retrain run, its candidate and an automatic promotion."""
    lines: list[str] = []
    run = retrain.get("run")
    if run:
        triggers = ", ".join(run.get("triggers") or []) or "-"
        lines.append(
            f"Retrain:       {run.get('job', '-')} {run.get('state', '?')} "
            f"(triggers {triggers}; parent {run.get('parentVersion', '-')})"
        )
    candidate = retrain.get("candidate")
    if candidate:
        figures = candidate.get("figures") or {}
        lines.append(
            f"Candidate:     {candidate.get('version')} gate {candidate.get('gate')} (NDCG@3 "
            f"{_fmt(figures.get('candidate_ndcg@3'))} vs {_fmt(figures.get('parent_ndcg@3'))}, "
            f"p {_fmt(figures.get('p_value'), 4)}) {candidate.get('uri')}"
        )
        if candidate.get("action") == "CommitToGit":
            lines.append(
                f"               commit spec.model.version: {candidate.get('version')}, "
                f"spec.model.uri: {candidate.get('uri')} to roll it out"
            )
    promotion = retrain.get("promotion")
    if promotion:
        lines.append(
            f"Promotion:     {promotion.get('version')} {promotion.get('state')} (automatic; "
            f"spec.model {promotion.get('specVersion')}); served by {retrain.get('servedBy', '-')}"
        )
    return lines


def render_history(obj: Mapping[str, Any]) -> str:
    history = (obj.get("status") or {}).get("history") or []
    if not history:
        return f"{(obj.get('metadata') or {}).get('name')}: no history yet"
    keys = ("revision", "version", "outcome", "reason", "at", "uri")
    rows = []
    for h in history:
        e = h.get("experiment")
        rows.append(
            [*(str(h.get(key, "-")) for key in keys), f"{e.get('decision')} {_effect(e)}" if e else "-"]
        )
    return "\n".join(
        _table(["REVISION", "VERSION", "OUTCOME", "REASON", "AT", "URI", "EXPERIMENT"], rows, indent="")
    )


def render_list(items: Sequence[Mapping[str, Any]]) -> str:
    rows = []
    for obj in items:
        status, spec = obj.get("status") or {}, obj.get("spec") or {}
        rows.append(
            [
                (obj.get("metadata") or {}).get("name", "?"),
                status.get("phase", "Unknown"),
                status.get("stableVersion") or "-",
                status.get("canaryVersion") or "-",
                str(status.get("canaryWeight") or 0),
                step_summary(spec, status),
            ]
        )
    if not rows:
        return "no RankingModels"
    return "\n".join(_table(["NAME", "PHASE", "STABLE", "CANARY", "WEIGHT", "STEP"], rows, indent=""))
