"""Opt-in log of the operator's API requests in the integration tests (for the chart's RBAC).

With ``RANKOPS_REQUEST_LOG=PATH`` set, the ``api`` fixture appends one JSON line per request
that the operator made to its emulator (kopf's own client and the operator's aiohttp client,
told apart from the tests' urllib/httpx/kubectl by User-Agent): the authorization attributes
a real API server would have checked (:mod:`rankops.sandbox.rbac`) and the test's node id.
``tests/unit/test_chart_rbac.py`` checks the log against the chart's rules.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from rankops.sandbox.rbac import request_attributes

ENV = "RANKOPS_REQUEST_LOG"


def is_operator_request(headers: Any) -> bool:
    """kopf's client says ``kopf/<version>``; the operator's KubeClient is aiohttp's default."""
    agent = str((headers or {}).get("User-Agent", ""))
    return agent.startswith("kopf/") or (agent.startswith("Python/") and "aiohttp/" in agent)


def record_operator_requests(api: Any, test: str, resources: set[str] | None = None) -> int:
    """Append the operator's requests (on ``resources`` only, if given) to the log named by
    ``RANKOPS_REQUEST_LOG``; their count."""
    target = os.environ.get(ENV)
    if not target:
        return 0
    lines = []
    for request in list(api):
        if not is_operator_request(request.headers):
            continue
        method = str(getattr(request.method, "value", request.method)).upper()
        url = str(request.url.path_qs)
        attrs = request_attributes(method, url).to_json()
        if resources is not None and attrs["resource"] not in resources:
            continue
        lines.append(json.dumps({**attrs, "test": test, "agent": request.headers.get("User-Agent", "")}))
    if lines:
        with Path(target).open("a", encoding="utf-8") as log:
            log.write("\n".join(lines) + "\n")
    return len(lines)
