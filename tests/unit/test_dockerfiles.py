"""Both Dockerfiles, parsed with BuildKit's own parser (the `dockerfile` package).

No container engine runs here, so the images are not built (the GitHub workflow builds them
and runs the kind e2e test); these checks hold the properties the chart and the operator's
pod specs rely on: multi-stage, a pinned slim base, a numeric non-root user, nothing that
needs a writable root filesystem, and torch (CPU) only in the serving image.
"""

from __future__ import annotations

import ast
import importlib.metadata
import re
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.chart_support import render

dockerfile = pytest.importorskip("dockerfile", reason="the `dockerfile` parser is a dev dependency")

ROOT = Path(__file__).resolve().parents[2]
IMAGES = {"operator": ROOT / "Dockerfile.operator", "serving": ROOT / "Dockerfile.serving"}
PINNED = re.compile(r"^[\w./-]+(:\d+\.\d+\.\d+-slim(-[a-z]+)?|@sha256:[0-9a-f]{64})$")


def parse(path: Path) -> list[Any]:
    return list(dockerfile.parse_file(str(path)))


def stages(commands: list[Any]) -> list[tuple[str, str, list[Any]]]:
    """(base image, stage name, commands) per stage, with global ARG defaults substituted."""
    args: dict[str, str] = {}
    out: list[tuple[str, str, list[Any]]] = []
    for cmd in commands:
        if cmd.cmd == "ARG" and not out:
            name, _, default = cmd.value[0].partition("=")
            args[name] = default
        elif cmd.cmd == "FROM":
            image = re.sub(r"\$\{(\w+)\}|\$(\w+)", lambda m: args[m.group(1) or m.group(2)], cmd.value[0])
            name = cmd.value[2] if len(cmd.value) > 2 and cmd.value[1].upper() == "AS" else ""
            out.append((image, name, []))
        elif out:
            out[-1][2].append(cmd)
    return out


def env_of(commands: list[Any]) -> dict[str, str]:
    env: dict[str, str] = {}
    for cmd in commands:
        if cmd.cmd == "ENV":
            values = list(cmd.value)
            env.update(zip(values[::2], values[1::2], strict=True))
    return env


@pytest.mark.parametrize("image", sorted(IMAGES))
def test_multi_stage_from_a_pinned_slim_base(image: str) -> None:
    parsed = stages(parse(IMAGES[image]))
    assert len(parsed) >= 2, "multi-stage: the build toolchain stays out of the final image"
    names = set()
    for base, name, _ in parsed:
        assert base in names or PINNED.match(base), f"{base!r} is neither a pinned slim image nor a stage"
        names.add(name)
    final_base = parsed[-1][0]
    assert PINNED.match(final_base) and "slim" in final_base


@pytest.mark.parametrize("image", sorted(IMAGES))
def test_final_stage_is_non_root_and_read_only_friendly(image: str) -> None:
    _, _, commands = stages(parse(IMAGES[image]))[-1]
    users = [c.value[0] for c in commands if c.cmd == "USER"]
    assert users, "the final stage sets USER"
    uid, _, gid = users[-1].partition(":")
    assert uid.isdigit() and int(uid) != 0, "numeric non-root uid (runAsNonRoot can verify it)"
    assert gid.isdigit() and int(gid) != 0
    # Nothing runs in the final stage: what it needs was built in an earlier one.
    assert not [c for c in commands if c.cmd == "RUN"]
    env = env_of(commands)
    assert env.get("HOME") == "/tmp" and env.get("TMPDIR") == "/tmp"
    assert env.get("PYTHONDONTWRITEBYTECODE") == "1", "no __pycache__ writes into a read-only root"
    assert [c for c in commands if c.cmd == "ENTRYPOINT"][-1].json, (
        "exec-form ENTRYPOINT (signals reach rankops)"
    )


def test_torch_cpu_only_in_the_serving_image() -> None:
    serving = IMAGES["serving"].read_text()
    assert re.search(r"--index-url https://download\.pytorch\.org/whl/cpu torch==2\.13\.0\b", serving)
    assert "torch.version.cuda" in serving, "the build fails if a CUDA torch slipped in"
    operator_lines = [
        line
        for path in (IMAGES["operator"], ROOT / "docker" / "operator-requirements.txt")
        for line in path.read_text().splitlines()
        if not line.lstrip().startswith("#")
    ]
    assert not [line for line in operator_lines if "torch" in line.lower()]
    run = " ".join(c.original for c in parse(IMAGES["operator"]) if c.cmd == "RUN")
    assert "--no-deps ." in run, "the operator installs rankops without its torch dependency"


@pytest.mark.parametrize("image", sorted(IMAGES))
def test_copied_sources_exist(image: str) -> None:
    for cmd in parse(IMAGES[image]):
        if cmd.cmd == "COPY" and not any(f.startswith("--from") for f in cmd.flags):
            for source in cmd.value[:-1]:
                assert (ROOT / source).exists(), f"{image}: COPY {source} names nothing"


def _third_party_imports(root: Path) -> set[str]:
    names: set[str] = set()
    for path in root.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names.add(node.module.split(".")[0])
    return {n for n in names if n not in sys.stdlib_module_names and n != "rankops"}


def test_operator_requirements_cover_what_the_operator_imports() -> None:
    pinned = {
        re.sub(r"[-_.]+", "-", line.split("==")[0]).lower(): line.split("==")[1]
        for line in (ROOT / "docker" / "operator-requirements.txt").read_text().splitlines()
        if line and not line.startswith("#")
    }
    assert all(re.fullmatch(r"[\w.+-]+", v) for v in pinned.values()), "exact versions only"
    distributions = importlib.metadata.packages_distributions()
    # kubernetes is optional in the operator (kopf falls back to its own in-cluster login).
    for module in sorted(_third_party_imports(ROOT / "operator") - {"kubernetes"}):
        dists = {re.sub(r"[-_.]+", "-", d).lower() for d in distributions.get(module, [module])}
        assert dists & set(pinned), f"the operator imports {module} but the image does not install it"


def test_chart_runs_the_operator_image_entrypoint() -> None:
    commands = parse(IMAGES["operator"])
    entrypoint = [c for c in commands if c.cmd == "ENTRYPOINT"][-1].value
    cmd = [c for c in commands if c.cmd == "CMD"][-1].value
    assert list(entrypoint) == ["rankops"]
    deployment = next(o for o in render() if o["kind"] == "Deployment")
    args = deployment["spec"]["template"]["spec"]["containers"][0]["args"]
    assert args[:2] == list(cmd[:2]) == ["operator", "run"]


def test_workflow_builds_both_images_and_runs_kind_with_the_chart() -> None:
    import yaml

    workflow = yaml.safe_load((ROOT / ".github" / "workflows" / "e2e.yaml").read_text())
    steps = workflow["jobs"]["kind"]["steps"]
    scripts = "\n".join(step.get("run", "") for step in steps)
    for image in IMAGES.values():
        assert f"docker build -f {image.name}" in scripts
    kind_step = next(step for step in steps if "tests/e2e/test_kind.py" in step.get("run", ""))
    assert kind_step["env"]["RANKOPS_REQUIRE_KIND"] == "1", "a skipped e2e must not pass the workflow"
    assert "install_chart(ctx)" in (ROOT / "tests" / "e2e" / "test_kind.py").read_text()
