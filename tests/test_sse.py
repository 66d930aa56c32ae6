"""The SSE decoder yields the same events however the bytes are split, in every framing variant."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from qwen_free_api import sse

CN_BODY = (
    'event:message\ndata:{"a":"你好"}\n\n'
    "[heartbeat]\n\n"
    ': ping\n\ndata: {"b":"世界🌍"}\r\n\r\n'
    "event:complete\ndata:true\n\n"
).encode()
EXPECTED = [
    sse.Event('{"a":"你好"}', "message"),
    sse.Event('{"b":"世界🌍"}', "message"),
    sse.Event("true", "complete"),
]


async def _chunks(body: bytes, size: int) -> AsyncIterator[bytes]:
    for start in range(0, len(body), size):
        yield body[start : start + size]


async def _decode(body: bytes, size: int) -> list[sse.Event]:
    return [event async for event in sse.decode(_chunks(body, size))]


async def test_every_split_offset_gives_the_same_events() -> None:
    for cut in range(1, len(CN_BODY)):
        head, tail = CN_BODY[:cut], CN_BODY[cut:]

        async def two(h: bytes = head, t: bytes = tail) -> AsyncIterator[bytes]:
            yield h
            yield t

        assert [e async for e in sse.decode(two())] == EXPECTED, cut


@pytest.mark.parametrize("size", [1, 2, 3, 7, 64, 4096])
async def test_fixed_size_chunks(size: int) -> None:
    assert await _decode(CN_BODY, size) == EXPECTED


async def test_bare_json_body_and_missing_final_blank_line() -> None:
    body = b'{"success":false,"data":{"code":"RateLimited","num":3}}'
    assert await _decode(body, 5) == [sse.Event(body.decode())]
    assert await _decode(b'data: {"x":1}', 4) == [sse.Event('{"x":1}')]


async def test_multiline_data_and_done_marker() -> None:
    body = b"data: a\ndata: b\n\ndata: [DONE]\n\n"
    assert await _decode(body, 3) == [sse.Event("a\nb"), sse.Event("[DONE]")]


def test_encode_named_unnamed_and_keepalive() -> None:
    assert sse.encode(sse.Frame('{"x":1}')) == b'data: {"x":1}\n\n'
    assert sse.encode(sse.Frame("{}", "ping")) == b"event: ping\ndata: {}\n\n"
    assert sse.encode(sse.KEEPALIVE_FRAME) == b": keep-alive\n\n"
    assert sse.parse_text('data: {"x":1}\n\n') == [sse.Event('{"x":1}')]
