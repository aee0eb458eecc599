"""The operator's API surface: the one place its group, kinds, labels and annotation keys are spelled.

Everything else (core, adapters, controllers, handlers, the CLI) imports these names; the CRDs
under ``crds/`` spell the same values, and ``tests/unit/test_crds.py`` checks they agree.
"""

from __future__ import annotations

from typing import Final

GROUP: Final = "rankops.dev"
VERSION: Final = "v1alpha1"
API_VERSION: Final = f"{GROUP}/{VERSION}"

RANKING_MODEL: Final = "RankingModel"
QUALITY_SLO: Final = "QualitySLO"
MAINTENANCE_WINDOW: Final = "MaintenanceWindow"

# kind -> (group, version, plural) of every kind the operator reads or writes: its own and the
# built-in ones it manages (children, Jobs, Events).
RESOURCES: Final[dict[str, tuple[str, str, str]]] = {
    RANKING_MODEL: (GROUP, VERSION, "rankingmodels"),
    QUALITY_SLO: (GROUP, VERSION, "qualityslos"),
    MAINTENANCE_WINDOW: (GROUP, VERSION, "maintenancewindows"),
    "Deployment": ("apps", "v1", "deployments"),
    "Service": ("", "v1", "services"),
    "HTTPRoute": ("gateway.networking.k8s.io", "v1", "httproutes"),
    "Job": ("batch", "v1", "jobs"),
    "Event": ("", "v1", "events"),
}


def plural(kind: str) -> str:
    return RESOURCES[kind][2]


def resource(kind: str) -> tuple[str, str, str]:
    """``(group, version, plural)``: the positional arguments kopf's decorators take."""
    return RESOURCES[kind]


# Labels on every child object.
LABEL_NAME: Final = "app.kubernetes.io/name"
LABEL_MANAGED_BY: Final = "app.kubernetes.io/managed-by"
MANAGED_BY: Final = "rankops"
LABEL_TRACK: Final = f"{GROUP}/track"
LABEL_VERSION: Final = f"{GROUP}/version"

# User-facing annotation tokens: each distinct value acts once (see core.rollout).
PROMOTE_ANNOTATION: Final = f"{GROUP}/promote"
ABORT_ANNOTATION: Final = f"{GROUP}/abort"
RETRY_ANNOTATION: Final = f"{GROUP}/retry"
ROLLOUT_ANNOTATIONS: Final = {
    "promote": PROMOTE_ANNOTATION,
    "abort": ABORT_ANNOTATION,
    "retry": RETRY_ANNOTATION,
}

# kopf's own annotations (progress, diff-base) live under a prefix of their own: kopf's diff
# ignores every annotation under a prefix it stores into, which would hide the user-facing
# tokens above from the annotation handler.
KOPF_PREFIX: Final = f"kopf.{GROUP}"
FINALIZER: Final = f"{GROUP}/finalizer"
