"""Playing a planned response: frames, pauses, holds, stalls, byte chunking, disconnects."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TypeAlias

import anyio
from anyio import CancelScope
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from qwen_free_api.testing.script import Script
from qwen_free_api.testing.state import FakeState


class Hold:
    """Step: wait here until `FakeUpstream.release()`."""


class Stall:
    """Step: send nothing more, ever (until the client goes away)."""


@dataclass(frozen=True)
class Pause:
    """Step: sleep this many seconds."""

    seconds: float


HOLD = Hold()
STALL = Stall()
Step: TypeAlias = bytes | Pause | Hold | Stall


@dataclass
class FramePlan:
    """A stream before shaping: lead-in steps, one group of frames per answer piece, the ending."""

    head: list[Step] = field(default_factory=list)
    answers: list[list[bytes]] = field(default_factory=list)
    tail: list[bytes] = field(default_factory=list)


def assemble(
    plan: FramePlan, script: Script, *, error: bytes | None = None, heartbeat: bytes | None = None
) -> list[Step]:
    """Apply the script's error point, hold/stall points, early close, heartbeats and CRLF."""
    if error is not None and script.error_after <= 0:
        return _finish([error], script, heartbeat)
    steps: list[Step] = list(plan.head)
    steps.extend(_pause_points(script, 0))
    if STALL in steps:
        return _finish(steps, script, heartbeat)
    for done, group in enumerate(plan.answers, start=1):
        steps.extend(group)
        if script.pace > 0:
            steps.append(Pause(script.pace))
        points = _pause_points(script, done)
        steps.extend(points)
        if STALL in points:
            return _finish(steps, script, heartbeat)
        if error is not None and script.error_after == done:
            return _finish([*steps, error], script, heartbeat)
    if error is not None:
        steps.append(error)
    elif not script.close_early:
        steps.extend(plan.tail)
    return _finish(steps, script, heartbeat)


def _pause_points(script: Script, done: int) -> list[Step]:
    points: list[Step] = []
    if script.hold_after == done:
        points.append(HOLD)
    if script.stall_after == done:
        points.append(STALL)
    return points


def _finish(steps: list[Step], script: Script, heartbeat: bytes | None) -> list[Step]:
    if script.heartbeats and heartbeat is not None:
        steps = _interleave(steps, heartbeat)
    if script.crlf:
        steps = [s.replace(b"\n", b"\r\n") if isinstance(s, bytes) else s for s in steps]
    return steps


def _interleave(steps: list[Step], heartbeat: bytes) -> list[Step]:
    frames = [i for i, step in enumerate(steps) if isinstance(step, bytes)]
    out: list[Step] = []
    for i, step in enumerate(steps):
        out.append(step)
        if frames and isinstance(step, bytes) and i != frames[-1]:
            out.append(heartbeat)
    return out


class _Chunker:
    """Re-cuts the byte stream into writes of exactly `size` bytes (None: one write per frame)."""

    def __init__(self, size: int | None) -> None:
        self.size = size
        self.buffer = b""

    def feed(self, data: bytes) -> list[bytes]:
        if self.size is None:
            return [data] if data else []
        self.buffer += data
        cut = len(self.buffer) - len(self.buffer) % self.size
        ready, self.buffer = self.buffer[:cut], self.buffer[cut:]
        return [ready[i : i + self.size] for i in range(0, len(ready), self.size)]

    def flush(self) -> list[bytes]:
        rest, self.buffer = self.buffer, b""
        return [rest] if rest else []


@dataclass
class _Outcome:
    finished: bool = False
    client_gone: bool = False


class PlannedResponse(Response):
    """An ASGI response that plays a list of steps and notices when the client goes away."""

    def __init__(
        self,
        state: FakeState,
        steps: list[Step],
        *,
        content_type: str,
        status_code: int = 200,
        head_delay: float = 0.0,
        chunk_bytes: int | None = None,
        streaming: bool = True,
    ) -> None:
        self.status_code = status_code
        self.background = None
        self.body = b""
        self.state = state
        self.steps = steps
        self.head_delay = head_delay
        self.chunk_bytes = chunk_bytes
        self.streaming = streaming
        self.raw_headers = [(b"content-type", content_type.encode("latin-1"))]
        if not streaming:
            length = sum(len(step) for step in steps if isinstance(step, bytes))
            self.raw_headers.append((b"content-length", str(length).encode("latin-1")))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        outcome = _Outcome()
        if self.streaming:
            self.state.stream_opened()
        try:
            async with anyio.create_task_group() as group:
                group.start_soon(_watch, receive, outcome, group.cancel_scope)
                try:
                    await self._write(send, outcome)
                except OSError:
                    outcome.client_gone = True
                group.cancel_scope.cancel()
        finally:
            if self.streaming:
                self.state.stream_closed(client_gone=outcome.client_gone)

    async def _write(self, send: Send, outcome: _Outcome) -> None:
        if self.head_delay > 0:
            await anyio.sleep(self.head_delay)
        await send(
            {"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers}
        )
        chunker = _Chunker(self.chunk_bytes)
        for step in self.steps:
            if isinstance(step, bytes):
                await _send_all(send, chunker.feed(step))
                continue
            await _send_all(send, chunker.flush())
            await self._wait(step)
        await _send_all(send, chunker.flush())
        outcome.finished = True  # before the last send: the server reports completion as disconnect
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    async def _wait(self, step: Pause | Hold | Stall) -> None:
        if isinstance(step, Pause):
            await anyio.sleep(step.seconds)
        elif isinstance(step, Hold):
            await self.state.hold()
        else:
            await anyio.sleep_forever()


async def _send_all(send: Send, pieces: list[bytes]) -> None:
    for piece in pieces:
        await send({"type": "http.response.body", "body": piece, "more_body": True})


async def _watch(receive: Receive, outcome: _Outcome, scope: CancelScope) -> None:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            if not outcome.finished:
                outcome.client_gone = True
            scope.cancel()
            return


def fixed_response(
    state: FakeState,
    body: bytes,
    *,
    content_type: str,
    status_code: int = 200,
    head_delay: float = 0.0,
) -> PlannedResponse:
    """A plain (non-streaming) body with Content-Length, optionally delayed."""
    return PlannedResponse(
        state,
        [body],
        content_type=content_type,
        status_code=status_code,
        head_delay=head_delay,
        streaming=False,
    )
