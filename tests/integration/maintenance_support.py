"""Shared by the maintenance chore tests: the `rankops` runner and the bundled model.

The model is trained once per test process (``rankops train`` on examples/data/datasets,
2 epochs, as a separate process) and shared by every module that asks for it.
"""

from __future__ import annotations

import contextlib
import functools
import io
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
BUNDLED = ROOT / "examples" / "data" / "datasets"


def rankops(
    *args: str, timeout: float = 300, process: bool = False
) -> tuple[int, dict[str, Any] | None, str]:
    """Run ``rankops ARGS``: exit status, the JSON result line (last stdout line), stderr.

    ``process``: as a separate process (as a Job runs it); else through the same ``main`` in
    this process (no torch import per call)."""
    if process:
        env = {k: v for k, v in os.environ.items() if not k.startswith("RANKOPS_")}
        proc = subprocess.run(
            [sys.executable, "-m", "rankops.cli", *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=ROOT,
            env=env,
            check=False,
        )
        code, out, err = proc.returncode, proc.stdout, proc.stderr
    else:
        from rankops.cli.main import main

        out_buf, err_buf = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out_buf), contextlib.redirect_stderr(err_buf):
            code = main(list(args))
        out, err = out_buf.getvalue(), err_buf.getvalue()
    lines = out.strip().splitlines()
    result = json.loads(lines[-1]) if lines and lines[-1].startswith("{") else None
    return code, result, err


@functools.cache
def trained_bundled_model() -> Path:
    """Never modify it: copy it first."""
    out = Path(tempfile.mkdtemp(prefix="rankops-maint-")) / "v1.0.0"
    code, _, err = rankops(
        "train",
        "--data",
        str(BUNDLED),
        "--out",
        str(out),
        "--version",
        "1.0.0",
        "--epochs",
        "2",
        timeout=600,
        process=True,
    )
    assert code == 0, err
    return out
