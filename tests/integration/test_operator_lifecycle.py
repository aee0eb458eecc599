"""Lifecycle of a RankingModel with the real operator against the sandbox API server, without
analysis (so without Prometheus): children, idempotence, deletion."""

from __future__ import annotations

import time
from typing import Any

import pytest

from tests.integration.conftest import NAMESPACE, children_of, deploy_healthy, get_model, writes
from tests.integration.harness import free_port, wait_for

pytestmark = [pytest.mark.timeout(60)]


def _no_prometheus() -> str:
    return f"http://127.0.0.1:{free_port()}"  # nothing listens: a healthy model needs no metrics


def test_deleting_the_model_leaves_no_children(api: Any, operator: Any, model_name: str) -> None:
    operator(prometheus_url=_no_prometheus())
    deploy_healthy(api, model_name)
    uid = get_model(api, model_name)["metadata"]["uid"]
    children = children_of(api, uid)
    assert sorted(children) == sorted(
        [
            f"deployments/{model_name}-stable",
            f"deployments/{model_name}-canary",
            f"services/{model_name}",
            f"services/{model_name}-stable",
            f"services/{model_name}-canary",
        ]
    )
    api.delete_object("rankingmodels", model_name, NAMESPACE)
    wait_for(
        lambda: api.get_object("rankingmodels", model_name, NAMESPACE) is None,
        15,
        0.1,
        "the RankingModel to go (finalizer released)",
    )
    wait_for(lambda: not children_of(api, uid), 15, 0.1, "garbage collection of the children")


def _wait_quiet(api: Any, quiet: float = 1.0, timeout: float = 30.0) -> None:
    """Until no write has reached the emulator for ``quiet`` seconds (load may delay the last ones)."""
    seen = {"count": len(writes(api)), "since": time.monotonic()}

    def settled() -> bool:
        count = len(writes(api))
        if count != seen["count"]:
            seen.update(count=count, since=time.monotonic())
        return time.monotonic() - seen["since"] >= quiet

    wait_for(settled, timeout, 0.1, f"no writes for {quiet}s")


def test_reconcile_without_changes_makes_no_writes(api: Any, operator: Any, model_name: str) -> None:
    first = operator(prometheus_url=_no_prometheus(), resync=0.3)  # the daemon re-reconciles every 0.3 s
    deploy_healthy(api, model_name)
    _wait_quiet(api)  # the first Events and kopf's own annotations go out after Healthy
    baseline, requests_before = writes(api), len(list(api))
    time.sleep(3)  # ~10 no-op reconciles
    assert writes(api)[len(baseline) :] == []
    # ~10 reconciles of a few GETs each (+ watch reconnects): bounded, not a busy loop
    assert len(list(api)) - requests_before < 150
    first.stop()
    baseline = writes(api)
    # A restart: the resume handler and the daemon reconcile again, with nothing to change.
    operator(prometheus_url=_no_prometheus(), resync=0.3)
    time.sleep(3)
    assert writes(api)[len(baseline) :] == []


def test_drifted_or_deleted_children_are_repaired(api: Any, operator: Any, model_name: str) -> None:
    operator(prometheus_url=_no_prometheus(), resync=0.5)
    deploy_healthy(api, model_name)
    api.delete_object("services", f"{model_name}-canary", NAMESPACE)
    deployment = api.get_object("deployments", f"{model_name}-stable", NAMESPACE)
    deployment["spec"]["replicas"] = 9
    api.apply_object(deployment)
    wait_for(
        lambda: api.get_object("services", f"{model_name}-canary", NAMESPACE) is not None,
        10,
        0.1,
        "the deleted Service to be recreated",
    )
    wait_for(
        lambda: api.get_object("deployments", f"{model_name}-stable", NAMESPACE)["spec"]["replicas"] == 2,
        10,
        0.1,
        "the scaled Deployment to be reset",
    )
