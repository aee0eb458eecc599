"""`rankops demo` and `rankops sandbox up/down/status`: bad input gets one line and a non-zero exit."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from rankops.cli.main import main


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["demo", "--acts", "v9"], "--acts: choose from v1,v2,maint,v3"),
        (["demo", "--acts", "v2,v3"], "(v1 always; v4 needs v2), got 'v2,v3'"),
        (["demo", "--acts", "v1,v4"], "(v1 always; v4 needs v2), got 'v1,v4'"),
        (["demo", "--rate", "0"], "--rate must be positive"),
        (["demo", "--data", "/no/such/dataset"], "no BEIR dataset at /no/such/dataset"),
    ],
)
def test_demo_refuses_bad_options(argv: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_down_and_status_without_a_running_sandbox(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["sandbox", "down", "--workdir", str(tmp_path)]) == 0
    assert main(["sandbox", "status", "--workdir", str(tmp_path)]) == 1
    assert capsys.readouterr().err.count("no sandbox running") == 2


def test_up_refuses_a_second_sandbox_in_the_same_workdir(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "sandbox.json").write_text(json.dumps({"pid": os.getpid()}))  # a live pid
    assert main(["sandbox", "up", "--workdir", str(tmp_path)]) == 2
    assert "already running" in capsys.readouterr().err
