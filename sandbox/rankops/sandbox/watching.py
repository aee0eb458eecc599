"""Watch requests: a stream of ``ADDED``/``MODIFIED``/``DELETED`` events as a real API server sends them."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable, Mapping
from typing import Any

import aiohttp.web
from kmock._internal import rendering  # Request: kmock 0.8 internals (pinned <0.9)

from rankops.sandbox.errors import ApiError, status_body
from rankops.sandbox.registry import ResourceType
from rankops.sandbox.semantics import Cluster
from rankops.sandbox.store import Event
from rankops.sandbox.tables import build_table

__all__ = ["JSON_CT", "serve_watch"]

JSON_CT = "application/json"


async def serve_watch(
    cluster: Cluster,
    request: rendering.Request,
    rt: ResourceType,
    ns: str | None,
    params: Mapping[str, str],
    as_table: bool,
    closing: Callable[[], bool],
) -> aiohttp.web.StreamResponse:
    """Stream a watch: the snapshot (or the events since ``resourceVersion``), then every change
    the selection sees, bookmarks when asked, until ``timeoutSeconds``, the client going away or
    the server ``closing()``."""
    match = cluster.predicates(params)
    timeout = float(params.get("timeoutSeconds") or 0) or None
    rv_text = params.get("resourceVersion") or ""
    bookmarks = params.get("allowWatchBookmarks") in ("true", "1")
    queue: asyncio.Queue[Event | None] = asyncio.Queue()

    def visible(ev: Event) -> str | None:
        """The event type this watcher sees, or None. As a real server does, a change that
        moves an object into the selection is ADDED and one that moves it out is DELETED."""
        if ev.group != rt.group or ev.plural != rt.plural:
            return None
        meta = ev.object.get("metadata") or {}
        if ns is not None and meta.get("namespace") != ns:
            return None
        now = match(ev.object)
        if ev.type != "MODIFIED" or ev.previous is None:
            return ev.type if now else None
        before = match(ev.previous)
        if now:
            return "MODIFIED" if before else "ADDED"
        return "DELETED" if before else None

    # Subscribe and take the snapshot in one step (no await between): nothing is lost.
    initial: list[Event]
    gone = False
    if rv_text in ("", "0"):
        initial = [
            Event(0, rt.group, rt.plural, "ADDED", o) for o in cluster.store.items(rt.group, rt.plural, ns)
        ]
    else:
        try:
            since = int(rv_text)
        except ValueError as exc:
            raise ApiError.bad_request(f"invalid resourceVersion: {rv_text!r}") from exc
        gone = since < cluster.store.oldest_replayable
        initial = [] if gone else cluster.store.events_since(since, rt.group, rt.plural)
    cluster.store.subscribers.add(queue)

    raw = request._raw_request
    assert raw is not None
    response = aiohttp.web.StreamResponse(status=200, headers={"Content-Type": JSON_CT})
    response.enable_chunked_encoding()

    async def send(ev_type: str, obj: Mapping[str, Any]) -> None:
        payload: Mapping[str, Any] = obj
        if as_table and ev_type in ("ADDED", "MODIFIED", "DELETED"):
            payload = build_table(
                [obj],
                rt.printer_columns,
                obj["metadata"].get("resourceVersion", ""),
                params.get("includeObject", "Metadata"),
            )
        await response.write(json.dumps({"type": ev_type, "object": payload}).encode() + b"\n")

    try:
        await response.prepare(raw)
        if gone:
            await send("ERROR", status_body(ApiError.gone(rv_text)))
            return response
        for ev in initial:
            if seen_as := visible(ev):
                await send(seen_as, cluster.present(rt, ev.object))
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout if timeout else None
        bookmark_every = 10.0
        next_bookmark = loop.time() + bookmark_every
        while not closing():
            # Wake up at least every second to notice a client that went away (aiohttp
            # does not cancel handlers on disconnect), to send bookmarks and to time out.
            wait = 1.0
            if deadline is not None:
                left = deadline - loop.time()
                if left <= 0:
                    break
                wait = min(left, wait)
            try:
                item = await asyncio.wait_for(queue.get(), wait)
            except TimeoutError:
                if raw.transport is None or raw.transport.is_closing():
                    return response
                if bookmarks and loop.time() >= next_bookmark and not closing():
                    next_bookmark = loop.time() + bookmark_every
                    await send(
                        "BOOKMARK",
                        {
                            "kind": rt.kind,
                            "apiVersion": rt.api_version,
                            "metadata": {"resourceVersion": str(cluster.store.rv)},
                        },
                    )
                continue
            if item is None:
                break
            if seen_as := visible(item):
                await send(seen_as, cluster.present(rt, item.object))
    except ConnectionResetError:
        return response  # the client went away
    finally:
        cluster.store.subscribers.discard(queue)
    with contextlib.suppress(ConnectionResetError, RuntimeError):
        await response.write_eof()
    return response
