"""Pure parts of `kubectl rankops`: durations, when a watched rollout has ended, undo targets."""

from __future__ import annotations

import argparse
from typing import Any

import pytest

from rankops.cli.kubectl import duration, outcome
from rankops.cli.kubectl_actions import undo_target, undo_uri
from rankops.cli.kubectl_client import CliError


@pytest.mark.parametrize(
    ("text", "seconds"), [("90", 90), ("90s", 90), ("5m", 300), ("1h30m", 5400), ("0.5s", 0.5)]
)
def test_durations(text: str, seconds: float) -> None:
    assert duration(text) == seconds


@pytest.mark.parametrize("text", ["", "soon", "5x", "0s", "-3s"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError):
        duration(text)


def model(status: dict[str, Any], version: str = "1.1.0", generation: int = 2) -> dict[str, Any]:
    return {
        "metadata": {"name": "m", "generation": generation},
        "spec": {"model": {"version": version}},
        "status": {"observedGeneration": 2, **status},
    }


def test_outcome() -> None:
    assert outcome(model({"phase": "Healthy", "stableVersion": "1.1.0"})) == "Healthy"
    # Healthy at the old version: the operator has not started (or finished) the new one.
    assert outcome(model({"phase": "Healthy", "stableVersion": "1.0.0"})) is None
    assert outcome(model({"phase": "Healthy", "stableVersion": "1.1.0", "canaryDraining": True})) is None
    assert outcome(model({"phase": "RolledBack", "stableVersion": "1.0.0"})) == "RolledBack"
    assert outcome(model({"phase": "Failed"})) == "Failed"
    assert outcome(model({"phase": "Paused", "canaryVersion": "1.1.0"})) is None
    # A spec the operator has not observed yet says nothing about the rollout.
    assert outcome(model({"phase": "RolledBack"}, generation=3)) is None


HISTORY = [
    {"revision": 0, "version": "1.0.0", "outcome": "Deployed", "uri": "s3://b/m/v1"},
    {"revision": 1, "version": "1.1.0", "outcome": "Promoted", "uri": "s3://b/m/v1.1"},
    {"revision": 2, "version": "1.2.0", "outcome": "RolledBack", "uri": "s3://b/m/v1.2"},
]


def test_undo_targets() -> None:
    obj = {"status": {"stableVersion": "1.1.0", "stableUri": "s3://b/m/1.1.0", "history": HISTORY}}
    assert undo_target(obj, None)["version"] == "1.0.0"
    assert undo_target(obj, 1)["version"] == "1.1.0"
    with pytest.raises(CliError, match=r"no promoted or deployed revision 2 .*known: \[0, 1\]"):
        undo_target(obj, 2)
    assert undo_uri(HISTORY[0]) == "s3://b/m/v1"  # as recorded: not derived from the stable URI
    legacy = {k: v for k, v in HISTORY[0].items() if k != "uri"}
    with pytest.raises(
        CliError, match=r"revision 0 \(1\.0\.0\) records no artifact URI .*edit spec\.model by hand"
    ):
        undo_uri(legacy)


@pytest.mark.parametrize(
    "argv",
    [
        ["-n", "search", "status", "m"],
        ["status", "m", "-n", "search"],
        ["promote", "m", "--namespace=search"],
    ],
)
def test_namespace_flag_before_or_after_the_command(argv: list[str]) -> None:
    from rankops.cli.kubectl import build_parser

    assert build_parser().parse_args(argv).namespace == "search"


def test_no_namespace_flag_leaves_the_contexts() -> None:
    from rankops.cli.kubectl import build_parser

    assert build_parser().parse_args(["history", "m"]).namespace is None
