"""The retrain Job of a RankingModel, as a pure function of data.

- Name: ``<model>-retrain-<serial>`` cut to fit, then a digest of both; ``serial`` is
  ``status.retrain.runs + 1``, so a restarted operator or a second replica computes the same
  name and the API server's create conflict stops a duplicate.
- Candidate version: the parent's next patch version as a pre-release,
  ``<major>.<minor>.<patch+1>-retrain.<serial>`` (``1.4.0`` -> ``1.4.1-retrain.3``): a valid
  semver and label value, ordered below the release a person would cut from it.
- Candidate URI: ``<trainer.outputUri>/<version>`` (a directory per version).
- The Job runs ``rankops retrain`` (exit 0 passed, 1 gate failed, 2 bad input) in a pod built
  like a MaintenanceWindow chore's (``maintenance.jobs``: Pod Security "restricted", no retry),
  on top of ``trainer.template`` (a ``JobTemplateSpec``): its metadata and Job fields are kept,
  its pod spec too, and its first container, if any, is the trainer's (image, resources,
  mounts), the operator setting command, args and the ``RANKOPS_*`` environment.
"""

from __future__ import annotations

import copy
import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..maintenance.jobs import chore_container, chore_job_spec, restricted_pod_spec
from ..spec import RankingModelSpec

__all__ = [
    "ANNOTATION_CANDIDATE",
    "LABEL_RETRAIN",
    "RetrainTarget",
    "build_retrain_job",
    "candidate_uri",
    "candidate_version",
    "retrain_args",
    "retrain_job_name",
]

API_VERSION = "rankops.dev/v1alpha1"
MAX_NAME = 63
LABEL_RETRAIN = "rankops.dev/retrain"
ANNOTATION_CANDIDATE = "rankops.dev/candidate-version"
ANNOTATION_PARENT = "rankops.dev/parent-version"
ANNOTATION_TRIGGERS = "rankops.dev/triggers"
_CORE = re.compile(r"^(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)")


@dataclass(frozen=True)
class RetrainTarget:
    """The model a Job retrains, as the controller read it."""

    name: str
    namespace: str
    uid: str
    parent_version: str
    parent_uri: str


def retrain_job_name(model: str, serial: int) -> str:
    digest = hashlib.sha256(f"{model}\0{serial}".encode()).hexdigest()[:8]
    prefix = f"{model}-retrain-{serial}"[: MAX_NAME - len(digest) - 1].rstrip("-.")
    return f"{prefix}-{digest}"


def candidate_version(parent: str, serial: int) -> str:
    match = _CORE.match(parent)
    if match is None:
        raise ValueError(f"parent version {parent!r} is not a semantic version")
    major, minor, patch = (int(g) for g in match.groups())
    return f"{major}.{minor}.{patch + 1}-retrain.{serial}"


def candidate_uri(output_uri: str, version: str) -> str:
    return f"{output_uri.rstrip('/')}/{version}"


def retrain_args(spec: RankingModelSpec, target: RetrainTarget, version: str) -> list[str]:
    retrain = spec.retrain
    if retrain is None:
        raise ValueError("no spec.retrain")
    trainer = retrain.trainer
    missing = [
        name
        for name, value in (
            ("data", trainer.data),
            ("outputUri", trainer.output_uri),
            ("feedbackLog", trainer.feedback_log),
        )
        if not value
    ]
    if missing:
        raise ValueError("spec.retrain.trainer needs " + ", ".join(missing) + " to run a retrain")
    assert trainer.data and trainer.output_uri and trainer.feedback_log
    floor = retrain.promotion_gate.min_golden_ndcg_at_3
    golden_floor = [] if floor is None else ["--min-golden-ndcg", repr(floor)]
    return [
        "rankops", "retrain",
        "--model", target.parent_uri,
        "--data", trainer.data,
        "--feedback-log", trainer.feedback_log,
        "--out", candidate_uri(trainer.output_uri, version),
        "--version", version,
        "--margin", repr(retrain.promotion_gate.min_improvement),
        *golden_floor,
    ]  # fmt: skip


def _merge_container(base: Mapping[str, Any] | None, ours: dict[str, Any]) -> dict[str, Any]:
    if base is None:
        return ours
    merged = {**copy.deepcopy(dict(base)), "command": ours["command"], "args": ours["args"]}
    merged.setdefault("name", ours["name"])
    merged.setdefault("image", ours["image"])
    env = [e for e in merged.get("env") or [] if not str(e.get("name", "")).startswith("RANKOPS_")]
    merged["env"] = [*ours["env"], *env]
    for key in ("securityContext", "volumeMounts"):
        merged.setdefault(key, ours[key])
    return merged


def build_retrain_job(
    spec: RankingModelSpec,
    target: RetrainTarget,
    serial: int,
    triggers: Sequence[str],
    image: str,
) -> dict[str, Any]:
    """The ``batch/v1`` Job for retrain ``serial`` of ``target``; raises ``ValueError`` if unconfigured."""
    version = candidate_version(target.parent_version, serial)
    args = retrain_args(spec, target, version)
    assert spec.retrain is not None and spec.retrain.trainer.output_uri
    name = retrain_job_name(target.name, serial)
    template = copy.deepcopy(dict(spec.retrain.trainer.template or {}))
    t_meta = dict(template.get("metadata") or {})
    t_spec = dict(template.get("spec") or {})
    t_pod = dict(t_spec.get("template") or {})
    t_pod_spec = dict(t_pod.get("spec") or {})
    labels = {
        **{str(k): str(v) for k, v in (t_meta.get("labels") or {}).items()},
        "app.kubernetes.io/name": target.name,
        "app.kubernetes.io/managed-by": "rankops",
        LABEL_RETRAIN: target.name,
        "rankops.dev/model": target.name,
    }
    env = [
        {"name": "RANKOPS_MODEL", "value": target.name},
        {"name": "RANKOPS_VERSION", "value": target.parent_version},
        {"name": "RANKOPS_MODEL_URI", "value": target.parent_uri},
        {"name": "RANKOPS_CANDIDATE_VERSION", "value": version},
    ]
    ours = chore_container("retrain", image, args, env)
    given = list(t_pod_spec.get("containers") or [])
    containers = [_merge_container(given[0] if given else None, ours), *given[1:]]
    pod_spec = {
        **restricted_pod_spec(containers),
        **{k: v for k, v in t_pod_spec.items() if k != "containers"},
    }
    if "volumes" in t_pod_spec:  # the chore volumes stay: the container mounts them
        names = {v.get("name") for v in t_pod_spec["volumes"]}
        pod_spec["volumes"] = [
            *t_pod_spec["volumes"],
            *(v for v in restricted_pod_spec([])["volumes"] if v["name"] not in names),
        ]
    pod_spec["restartPolicy"] = "Never"
    job_spec = chore_job_spec(pod_spec, labels)
    job_spec["template"]["metadata"] = {
        **dict(t_pod.get("metadata") or {}),
        "labels": {**dict((t_pod.get("metadata") or {}).get("labels") or {}), **labels},
    }
    job_spec.update({k: v for k, v in t_spec.items() if k != "template"})
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": name,
            "namespace": target.namespace,
            "labels": labels,
            "annotations": {
                **{str(k): str(v) for k, v in (t_meta.get("annotations") or {}).items()},
                ANNOTATION_PARENT: target.parent_version,
                ANNOTATION_CANDIDATE: version,
                ANNOTATION_TRIGGERS: ",".join(triggers),
            },
            "ownerReferences": [
                {
                    "apiVersion": API_VERSION,
                    "kind": "RankingModel",
                    "name": target.name,
                    "uid": target.uid,
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ],
        },
        "spec": job_spec,
    }
