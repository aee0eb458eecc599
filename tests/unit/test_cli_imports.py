"""The `rankops` command starts without the heavy stacks.

The operator image ships without torch, and ``rankops --help`` / ``rankops rollout ...`` must
start fast: importing the CLI (and building its parser, which every subcommand's ``register``
contributes to) may import none of the serving or operator runtime stacks. Subcommands
import what they need when they run.

Checked in a fresh interpreter: this test process has long imported everything.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

FORBIDDEN = ("torch", "fastapi", "uvicorn", "kopf", "scipy", "matplotlib")

_PROBE = """
import json, sys
import rankops.cli.main
stage = {"import": sorted({m.split(".")[0] for m in sys.modules})}
rankops.cli.main.build_parser()
stage["parser"] = sorted({m.split(".")[0] for m in sys.modules})
print(json.dumps(stage))
"""


@pytest.fixture(scope="module")
def top_level_modules() -> dict[str, list[str]]:
    """Top-level package names in ``sys.modules`` after the import and after ``build_parser()``."""
    result = subprocess.run(
        [sys.executable, "-c", _PROBE], capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, f"probe failed:\n{result.stderr}"
    loaded: dict[str, list[str]] = json.loads(result.stdout.strip().splitlines()[-1])
    return loaded


@pytest.mark.parametrize("stage", ["import", "parser"])
def test_cli_imports_no_heavy_packages(top_level_modules: dict[str, list[str]], stage: str) -> None:
    loaded = set(top_level_modules[stage])
    assert "rankops" in loaded  # the probe did import the CLI
    heavy = sorted(loaded.intersection(FORBIDDEN))
    assert not heavy, f"`import rankops.cli.main` ({stage}) pulled in {heavy}; import them lazily"
