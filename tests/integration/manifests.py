"""QualitySLO manifests of the integration tests and the benchmarks: the NDCG@3 objective they
all judge (target 0.70, breach floor 0.65) with what each adds."""

from __future__ import annotations

from typing import Any

NAMESPACE = "default"


def ndcg_objective(window: str, **fields: Any) -> dict[str, Any]:
    """The ``ndcg`` objective on ``ndcg_at_3`` over ``window``; ``fields`` add to it (comparison,
    severityTiers...)."""
    return {"name": "ndcg", "metric": "ndcg_at_3", "target": 0.70, "breach": 0.65, "window": window, **fields}


def quality_slo_manifest(
    name: str, objectives: list[dict[str, Any]], namespace: str = NAMESPACE, **spec: Any
) -> dict[str, Any]:
    """A QualitySLO with ``objectives`` and the other ``spec`` fields (evaluation, alerting...)."""
    return {
        "apiVersion": "rankops.dev/v1alpha1",
        "kind": "QualitySLO",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"objectives": objectives, **spec},
    }
