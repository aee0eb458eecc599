"""The coalescing transport under the ranking service's uvicorn protocol."""

from __future__ import annotations

import asyncio
from typing import Any

from rankops.serving.http_protocol import CoalescingTransport


class RecordingTransport(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__()
        self.writes: list[bytes] = []
        self.closed = False
        self.aborted = False

    def write(self, data: Any) -> None:
        self.writes.append(bytes(data))

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.aborted = True

    def is_closing(self) -> bool:
        return self.closed or self.aborted

    def get_write_buffer_size(self) -> int:
        return 0

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"peername": ("127.0.0.1", 1)}.get(name, default)


async def test_writes_in_one_loop_turn_leave_as_one() -> None:
    inner = RecordingTransport()
    t = CoalescingTransport(inner, asyncio.get_running_loop())
    t.write(b"HTTP/1.1 200 OK\r\n\r\n")
    t.write(memoryview(b"body"))
    t.write(b"")
    assert inner.writes == [] and t.get_write_buffer_size() == 23
    await asyncio.sleep(0)
    assert inner.writes == [b"HTTP/1.1 200 OK\r\n\r\nbody"]
    t.writelines([b"a", b"b"])
    await asyncio.sleep(0)
    assert inner.writes[1:] == [b"ab"]
    assert t.get_extra_info("peername") == ("127.0.0.1", 1)


async def test_close_sends_what_is_held_and_abort_drops_it() -> None:
    loop = asyncio.get_running_loop()
    inner = RecordingTransport()
    t = CoalescingTransport(inner, loop)
    t.write(b"last words")
    t.close()
    assert inner.writes == [b"last words"] and inner.closed and t.is_closing()
    await asyncio.sleep(0)  # the scheduled flush finds nothing left
    assert inner.writes == [b"last words"]

    inner = RecordingTransport()
    t = CoalescingTransport(inner, loop)
    t.write(b"never sent")
    t.abort()
    await asyncio.sleep(0)
    assert inner.writes == [] and inner.aborted
