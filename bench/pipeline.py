"""The relay's per-frame work in one process, without sockets: `python bench/pipeline.py`.

Bench-upstream frames go through the intl backend's SSE decoding and frame parsing, the
canonical events, the OpenAI chunk rendering and SSE encoding, as in the server, fed from
memory. It leaves out the network, the event loop's I/O and the ASGI layers, so it is far less
sensitive to other load on the machine than the end-to-end bench: a quick before/after check of
a change to that path (run it against another tree with `PYTHONPATH=that/src`).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

from load import jwt_token
from qwen_free_api import sse
from qwen_free_api.credentials import parse_credential
from qwen_free_api.dialects import Meta, openai
from qwen_free_api.events import Usage
from qwen_free_api.upstreams.intl import Intl
from upstream import answer_frame, created_frame, finished_frame

FRAMES = 100
ANSWERS = 200  # per timed round
ROUNDS = 7


def _frames() -> list[bytes]:
    response_id = str(uuid.uuid4()).encode()
    body = [answer_frame(index, response_id) for index in range(FRAMES)]
    return [created_frame(b"bench", response_id), *body, finished_frame(response_id)]


class _Reply:
    """What the intl backend reads: the body's chunks, one frame per network read."""

    def __init__(self, frames: list[bytes]) -> None:
        self._frames = frames

    async def chunks(self) -> AsyncIterator[bytes]:
        for frame in self._frames:
            yield frame


def _no_estimate(text: str, reasoning: str) -> Usage:
    return Usage(0, 0, estimated=True)


async def _answer(intl: Intl, frames: list[bytes], credential: Any) -> int:
    reply: Any = _Reply(frames)
    events = intl._events(reply, credential, "bench", "qwen3.7-plus")
    meta = Meta("qwen3.7-plus", 0, False, False, _no_estimate)
    sent = 0
    async for frame in openai.render_stream(events, meta):
        sent += len(sse.encode(frame))
    return sent


async def measure() -> float:
    """The best round's microseconds per upstream frame."""
    intl = Intl.__new__(Intl)  # _events needs no settings, client or state
    frames, credential = _frames(), parse_credential(jwt_token())
    for _ in range(ANSWERS // 4):  # warm-up
        await _answer(intl, frames, credential)
    best = float("inf")
    for _ in range(ROUNDS):
        started = time.perf_counter()
        for _ in range(ANSWERS):
            await _answer(intl, frames, credential)
        best = min(best, (time.perf_counter() - started) / (ANSWERS * len(frames)))
    return best * 1e6


def main() -> None:
    print(f"{asyncio.run(measure()):.2f} µs per upstream frame (best of {ROUNDS} rounds)")


if __name__ == "__main__":
    main()
