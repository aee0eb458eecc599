"""What the retrain core hands to the rest of rankops: the Job's command line to `rankops retrain`,
the status to `kubectl rankops status`."""

from __future__ import annotations

from typing import Any

from rankops.operator.core.retrain import DriftVerdict, JobOutcome, RetrainState, plan_retrain
from tests.unit.test_retrain_core import T0, _started, manifest, observed, spec


def test_the_jobs_command_line_is_one_rankops_retrain_accepts(tmp_path: Any, capsys: Any) -> None:
    """The contract with serving: the operator's arguments parse, and reach the command's own checks."""
    from rankops.cli.main import main

    plan = plan_retrain(spec(drift={}), RetrainState(), observed(drift=DriftVerdict("d1", "w")), T0)
    assert plan.job is not None
    args = list(plan.job["spec"]["template"]["spec"]["containers"][0]["args"])
    args[args.index("--feedback-log") + 1] = str(tmp_path / "no-log")
    assert main(args) == 2  # bad input, before any training
    assert "no feedback log at" in capsys.readouterr().err


def test_kubectl_rankops_status_names_the_candidate_and_what_to_commit() -> None:
    from rankops.cli.kubectl_view import render_status

    s, state = _started("Manual")
    version = state.run.candidate_version  # type: ignore[union-attr]
    plan = plan_retrain(s, state, observed(job=JobOutcome("Succeeded"), manifest=manifest(version)), T0)
    obj = {"metadata": {"name": "ranker"}, "spec": {}, "status": {"phase": "Healthy", "retrain": plan.status}}
    text = render_status(obj)
    assert f"Candidate:     {version} gate Passed (NDCG@3 0.740 vs 0.700, p 0.0020)" in text
    assert (
        f"commit spec.model.version: {version}, spec.model.uri: file:///models/candidates/{version}" in text
    )
    assert "Retrain:       ranker-retrain-1-" in text and "Succeeded (triggers Drift; parent 1.0.0)" in text
