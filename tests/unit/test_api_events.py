"""Events posted through the API client: the object's reference, never raising, never waiting."""

from __future__ import annotations

from datetime import UTC, datetime

import kopf

from rankops.operator.adapters.events import ApiEventPoster, event_body
from rankops.operator.adapters.kube import KubeClient
from rankops.operator.core.events import Event
from rankops.sandbox.apiserver import SandboxAPIServer

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
MODEL = {
    "apiVersion": "rankops.dev/v1alpha1",
    "kind": "RankingModel",
    "metadata": {"name": "search", "namespace": "default", "uid": "u-1"},
}


def test_event_body_references_the_object() -> None:
    body = event_body(MODEL, Event("Warning", "RolledBack", "x" * 2000), T0)
    assert body["involvedObject"] == {
        "apiVersion": "rankops.dev/v1alpha1",
        "kind": "RankingModel",
        "name": "search",
        "namespace": "default",
        "uid": "u-1",
    }
    assert (body["type"], body["reason"], len(body["message"])) == ("Warning", "RolledBack", 1024)
    assert body["metadata"] == {"generateName": "search.", "namespace": "default"}
    assert body["firstTimestamp"] == body["lastTimestamp"] == "2026-03-01T12:00:00Z"


async def test_posted_in_the_background_and_failures_only_logged() -> None:
    async with SandboxAPIServer(crds=[]) as api:
        client = KubeClient(lambda: kopf.ConnectionInfo(server=api.url))
        poster = ApiEventPoster(client, clock=lambda: T0)
        try:
            poster(MODEL, Event("Normal", "QualityMet", "ndcg Met at 0.8"))
            poster(
                {**MODEL, "metadata": {"name": "x", "namespace": "no-such-namespace"}},
                Event("Normal", "R", "m"),
            )
            await poster.drain()
        finally:
            await client.close()
        events = api.list_objects("events", "default")
    assert [(e["reason"], e["involvedObject"]["name"]) for e in events] == [("QualityMet", "search")]
