"""Running the server (async, in a thread, as a CLI) and kopf against it.

Checked against what a real API server answers (see ``__init__``)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import kmock
import pytest
import yaml

from rankops.sandbox.apiserver import SandboxAPIServer
from tests.integration.apiserver.support import (
    GROUP,
    ROOT,
    WIDGET_CRD,
    WIDGETS,
    configmap,
    wait_for,
    widget,
)

# ============================================================================================
# 8. Running it


async def test_async_context_manager_and_kmock_reactions() -> None:
    import aiohttp

    async with SandboxAPIServer(crds=[WIDGET_CRD]) as server:
        server["get", "/apis/sandbox.rankops.dev/v1/namespaces/default/widgets/injected"] << 503
        async with aiohttp.ClientSession(server.url) as session:
            async with session.post(f"{WIDGETS}/namespaces/default/widgets", json=widget("w")) as r:
                assert r.status == 201
            async with session.get(f"{WIDGETS}/namespaces/default/widgets/w") as r:
                assert (await r.json())["spec"]["size"] == 1
            async with session.get(f"{WIDGETS}/namespaces/default/widgets/injected") as r:
                assert r.status == 503
        assert server.get_object("widgets", "w", "default") is not None
        creates = [r for r in server if r.action == kmock.action.CREATE]  # kmock's request capture
        assert len(creates) == 1 and creates[0].resource.plural == "widgets"
        assert creates[0].namespace == "default"
        await asyncio.sleep(0)


def test_in_thread_helpers_and_kubeconfig(api: SandboxAPIServer, tmp_path: Path, ns: str) -> None:
    path = api.write_kubeconfig(tmp_path / "kubeconfig", namespace=ns)
    config = yaml.safe_load(path.read_text())
    assert config["clusters"][0]["cluster"]["server"] == api.url
    assert config["contexts"][0]["context"]["namespace"] == ns
    obj = api.apply_object({**configmap("seeded", k="v"), "metadata": {"name": "seeded", "namespace": ns}})
    assert obj["metadata"]["resourceVersion"]
    assert [o["metadata"]["name"] for o in api.list_objects("configmaps", ns)] == ["seeded"]
    api.delete_object("configmaps", "seeded", ns)
    assert api.get_object("configmaps", "seeded", ns) is None


def test_cli_runs_standalone(tmp_path: Path) -> None:
    crd_file = tmp_path / "crd.yaml"
    crd_file.write_text(yaml.safe_dump(WIDGET_CRD))
    kubeconfig = tmp_path / "kubeconfig"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "rankops.cli",
            "sandbox",
            "apiserver",
            "--port",
            "0",
            "--crds",
            str(crd_file),
            "--kubeconfig",
            str(kubeconfig),
        ],
        stdout=subprocess.PIPE,
        text=True,
        env={
            **os.environ,
            "PYTHONPATH": os.pathsep.join(str(ROOT / d) for d in ("sandbox", "cli", "operator", "serving")),
        },
    )
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:")
        assert httpx.get(f"{url}{WIDGETS}").status_code == 200
        wait_for(kubeconfig.exists)
    finally:
        proc.terminate()
        proc.wait(10)
    assert proc.returncode == 0


# ============================================================================================
# 9. kopf against the server (the property the rest of the project relies on)


def test_kopf_operator_runs_against_the_server() -> None:
    kopf = pytest.importorskip("kopf")
    from kopf.testing import KopfRunner

    default_registry = kopf.get_default_registry()  # kopf's CLI installs the given registry as default
    with contextlib.ExitStack() as cleanup, SandboxAPIServer.in_thread(crds=[WIDGET_CRD]) as server:
        cleanup.callback(kopf.set_default_registry, default_registry)  # leave no handlers behind
        registry = kopf.OperatorRegistry()
        settings = kopf.OperatorSettings()
        settings.watching.server_timeout = 10
        deleted: list[str] = []

        @kopf.on.login(registry=registry)
        def login(**_: Any) -> Any:
            return kopf.ConnectionInfo(server=server.url, insecure=True)

        @kopf.on.create(GROUP, "v1", "widgets", registry=registry)
        def on_create(spec: Any, patch: Any, body: Any, **_: Any) -> None:
            patch.status["phase"] = "Healthy"
            patch.status["seenSize"] = spec["size"]
            kopf.info(body, reason="Seen", message="the handler saw it")

        @kopf.on.delete(GROUP, "v1", "widgets", registry=registry)
        def on_delete(name: str, **_: Any) -> None:
            deleted.append(name)

        with KopfRunner(
            ["run", "--standalone", "-A"], registry=registry, settings=settings, timeout=30
        ) as runner:
            server.create({**widget("w", size=3), "metadata": {"name": "w", "namespace": "default"}})

            def handled() -> dict[str, Any] | None:
                obj = server.get_object("widgets", "w", "default") or {}
                return obj if (obj.get("status") or {}).get("phase") == "Healthy" else None

            obj = wait_for(handled, timeout=15)
            assert obj["status"]["seenSize"] == 3
            assert obj["metadata"]["finalizers"] == ["kopf.zalando.org/KopfFinalizerMarker"]
            assert obj["metadata"]["generation"] == 1

            def posted() -> list[dict[str, Any]]:
                return [e for e in server.list_objects("v1/events", "default") if e.get("reason") == "Seen"]

            [event] = wait_for(posted, timeout=15)
            assert event["involvedObject"]["uid"] == obj["metadata"]["uid"]
            server.delete_object("widgets", "w", "default")
            wait_for(lambda: server.get_object("widgets", "w", "default") is None, timeout=15)
        assert runner.exit_code == 0, runner.output
        assert runner.exception is None
        assert deleted == ["w"]
