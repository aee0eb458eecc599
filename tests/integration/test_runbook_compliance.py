"""The runbook's training-mapping compliance check passes 4 of 4 against the served bundled
model: ``rankops serve`` as a real process, ``/api/v2/search`` over loopback HTTP."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

from tests.integration.test_serving import serving
from tests.unit._model_support import bundled_artifact

ROOT = Path(__file__).resolve().parents[2]


def _compliance() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "runbook_compliance", ROOT / "benchmarks" / "runbook_compliance.py"
    )
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.slow  # trains the full bundled model (shared with test_full_bundle_beats_bm25)
def test_runbook_compliance_check_passes_over_http(tmp_path: Path) -> None:
    check = _compliance()
    with serving(bundled_artifact(), tmp_path) as server:
        server.wait_ready()
        outcomes = check.run_checks(server.url)
    report = "\n".join(o.line() for o in outcomes)
    assert [o.query for o in outcomes] == [c[0] for c in check.CHECKS]
    assert all(o.passed for o in outcomes), report
    for o in outcomes:
        assert len(o.top3_sources) == 3 and all("." not in s and " " not in s for s in o.top3_sources)
