"""What the conformance tests of the sandbox API server share: their own small CRDs (Widget,
Gadget, so they do not depend on the project's), object builders, content types, a poll, and
thin HTTP helpers."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import yaml

ROOT = Path(__file__).resolve().parents[3]
GROUP = "sandbox.rankops.dev"
WIDGETS = f"/apis/{GROUP}/v1"

WIDGET_CRD: dict[str, Any] = yaml.safe_load(f"""
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {{name: widgets.{GROUP}}}
spec:
  group: {GROUP}
  scope: Namespaced
  names: {{plural: widgets, singular: widget, kind: Widget, shortNames: [wd], categories: [sandbox]}}
  versions:
  - name: v1
    served: true
    storage: true
    subresources: {{status: {{}}}}
    additionalPrinterColumns:
    - {{name: Size, type: integer, jsonPath: .spec.size}}
    - {{name: Phase, type: string, jsonPath: .status.phase}}
    - {{name: Color, type: string, jsonPath: .spec.color, priority: 1}}
    - {{name: Ready, type: string, jsonPath: '.status.conditions[?(@.type=="Ready")].status'}}
    - {{name: Age, type: date, jsonPath: .metadata.creationTimestamp}}
    schema:
      openAPIV3Schema:
        type: object
        properties:
          metadata: {{type: object}}
          spec:
            type: object
            required: [size]
            x-kubernetes-validations:
            - rule: "!has(self.steps) || self.steps[self.steps.size() - 1].weight == 100"
              message: the last step must have weight 100
            properties:
              size: {{type: integer, minimum: 0, maximum: 10}}
              color: {{type: string, enum: [red, green, blue], default: red}}
              code:
                type: string
                pattern: '^[a-z]+$'
                maxLength: 8
                x-kubernetes-validations:
                - {{rule: self == oldSelf, message: code is immutable}}
              port: {{x-kubernetes-int-or-string: true}}
              note: {{type: string, nullable: true}}
              tags: {{type: array, maxItems: 3, items: {{type: string}}}}
              steps:
                type: array
                minItems: 1
                items:
                  type: object
                  required: [weight]
                  properties:
                    weight: {{type: integer, minimum: 0, maximum: 100}}
                    pause: {{type: string, default: 0s}}
              extra: {{type: object, x-kubernetes-preserve-unknown-fields: true}}
          status:
            type: object
            x-kubernetes-preserve-unknown-fields: true
""")

# No status subresource: status is part of the main endpoint and bumps generation.
GADGET_CRD: dict[str, Any] = yaml.safe_load(f"""
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {{name: gadgets.{GROUP}}}
spec:
  group: {GROUP}
  scope: Cluster
  names: {{plural: gadgets, singular: gadget, kind: Gadget}}
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        x-kubernetes-preserve-unknown-fields: true
""")


def widget(name: str, size: int = 1, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/v1",
        "kind": "Widget",
        "metadata": {"name": name},
        "spec": {"size": size, **spec},
    }


def configmap(name: str, labels: dict[str, str] | None = None, **data: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "labels": labels or {}},
        "data": data,
    }


def deployment(name: str, replicas: int = 2) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "c", "image": "example"}]},
            },
        },
    }


def wait_for(check: Callable[[], Any], timeout: float = 5.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        time.sleep(0.02)


MERGE = {"Content-Type": "application/merge-patch+json"}
JSONPATCH = {"Content-Type": "application/json-patch+json"}
STRATEGIC = {"Content-Type": "application/strategic-merge-patch+json"}
APPLY = {"Content-Type": "application/apply-patch+yaml"}
TABLE = {"Accept": "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"}


def create(http: httpx.Client, path: str, body: dict[str, Any]) -> dict[str, Any]:
    r = http.post(path, json=body)
    assert r.status_code == 201, r.text
    return r.json()


def watch_lines(
    http: httpx.Client, path: str, params: dict[str, str], max_events: int = 100
) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    with http.stream("GET", path, params={"watch": "true", **params}) as r:
        assert r.status_code == 200
        for line in r.iter_lines():
            if line.strip():
                events.append(json.loads(line))
                if len(events) >= max_events:
                    break
    return events


def names_for(http: httpx.Client, ns: str, **params: str) -> list[str]:
    r = http.get(f"/api/v1/namespaces/{ns}/configmaps", params=params)
    assert r.status_code == 200, r.text
    return sorted(i["metadata"]["name"] for i in r.json()["items"])
