"""The streaming SSE decoder agrees with decoding the whole body at once, for any bytes at all
(invalid UTF-8, characters cut across reads, CRLF, bare JSON) and any way of cutting them."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from hypothesis import given
from hypothesis import strategies as st

from qwen_free_api import sse

FRAMING = [b"data:", b"data: ", b"event:", b"event: x", b": c", b"{", b'"a"', b"[DONE]", b"x"]
ENDINGS = [b"\n", b"\r\n", b"\n\n"]
TEXT = ["你".encode(), "🌍".encode(), "é".encode()[:1], b"\xff", b"\xe4\xb8"]  # cut, invalid
PIECES = st.sampled_from([*FRAMING, *ENDINGS, *TEXT])


async def _streamed(body: bytes, cuts: list[int]) -> list[sse.Event]:
    async def chunks() -> AsyncIterator[bytes]:
        start = 0
        for cut in sorted({c % (len(body) + 1) for c in cuts}):
            yield body[start:cut]
            start = cut
        yield body[start:]

    return [event async for event in sse.decode(chunks())]


@given(st.lists(PIECES, max_size=40), st.lists(st.integers(min_value=0), max_size=8))
def test_any_cut_gives_what_the_whole_body_gives(pieces: list[bytes], cuts: list[int]) -> None:
    body = b"".join(pieces)
    expected = sse.parse_text(body.decode("utf-8", "replace"))
    assert asyncio.run(_streamed(body, cuts)) == expected
