"""An A/B experiment through the real operator (kopf), the sandbox API server and a real Prometheus:
the candidate serves half the traffic for the experiment's duration, is judged once at the end on
the NDCG@3 counters the exporters publish, and (better by 0.06) is promoted with its figures in
``status.experiment``, the history and an Event. The lean cousin of ``test_operator_rollout.py``.
"""

from __future__ import annotations

from typing import Any

import pytest

from rankops.cli.kubectl_view import render_history, render_status
from tests.integration.conftest import (
    NAMESPACE,
    get_model,
    quality_slo,
    ranking_model,
    start_rollout,
    wait_events,
    wait_status,
)

pytestmark = [pytest.mark.prometheus, pytest.mark.timeout(120)]


def test_better_candidate_wins_a_fixed_horizon_experiment(
    api: Any, stack: Any, operator: Any, model_name: str
) -> None:
    api.create(quality_slo())
    stack.use(model_name, "1.0.0", "1.1.0", stable_mean=0.80, canary_mean=0.86)
    operator()
    model = ranking_model(model_name)
    rollout = model["spec"]["rollout"]
    del rollout["steps"]
    rollout["experiment"] = {"duration": "6s"}  # the rest defaulted: 50/50, alpha 0.05, fixed horizon
    api.create(model)
    wait_status(api, model_name, lambda s: s.get("phase") == "Healthy", 20, "first deploy")
    start_rollout(api, model_name, "1.1.0")
    running = wait_status(
        api, model_name, lambda s: (s.get("experiment") or {}).get("looks", 0) >= 1, 30, "a first look"
    )
    assert running["canaryWeight"] == 50 and "decision" not in running["experiment"]
    status = wait_status(api, model_name, lambda s: s.get("stableVersion") == "1.1.0", 45, "the decision")
    experiment = status["experiment"]
    assert (experiment["decision"], experiment["reason"], experiment["action"]) == (
        "Promote",
        "CandidateBetter",
        "Promoted",
    )
    assert experiment["method"] == "FixedHorizon" and not experiment.get("early")
    assert experiment["decidedAt"] >= experiment["endsAt"]
    assert 0.03 < experiment["difference"] < 0.09 and experiment["ciLower"] > 0
    assert experiment["canaryN"] >= 30 and experiment["stableN"] >= 30 and experiment["pValue"] < 0.05
    last = status["history"][-1]
    assert (last["outcome"], last["reason"], last["experiment"]["decision"]) == (
        "Promoted",
        "CandidateBetter",
        "Promote",
    )
    wait_events(api, model_name, "ExperimentStarted", "ExperimentDecided", "Promoted")
    assert get_model(api, model_name)["spec"]["model"]["version"] == "1.1.0"
    stable = api.get_object("deployments", f"{model_name}-stable", NAMESPACE)
    assert stable["metadata"]["labels"]["rankops.dev/version"] == "1.1.0"
    obj = get_model(api, model_name)
    assert "Decision:    Promote (CandidateBetter)" in render_status(obj)
    assert "Promote +0.0" in render_history(obj)
