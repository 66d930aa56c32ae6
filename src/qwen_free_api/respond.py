"""Turn a canonical event stream into an HTTP response of any dialect, streamed or whole."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

from starlette.responses import JSONResponse, Response
from starlette.types import Receive, Scope, Send

from qwen_free_api import sse
from qwen_free_api.dialects import Dialect, Meta
from qwen_free_api.errors import GatewayError, ProtocolError
from qwen_free_api.events import StreamEvent, collect

log = logging.getLogger(__name__)

SSE_HEADERS = {
    "cache-control": "no-cache",
    "x-accel-buffering": "no",
    "content-type": "text/event-stream; charset=utf-8",
}


def error_response(dialect: Dialect, error: GatewayError) -> JSONResponse:
    return JSONResponse(dialect.render_error(error), error.status, headers=error.headers())


async def respond(
    events: AsyncIterator[StreamEvent],
    dialect: Dialect,
    meta: Meta,
    *,
    stream: bool,
    first_event_timeout: float,
    keepalive: float,
) -> Response:
    if not stream:
        try:
            done = await collect(events)
        except GatewayError as error:
            return error_response(dialect, error)
        return JSONResponse(dialect.render_completion(done, meta))
    first: asyncio.Future[StreamEvent] = asyncio.ensure_future(anext(events))
    await asyncio.wait({first}, timeout=first_event_timeout)
    if first.done():
        failure = first.exception()
        if isinstance(failure, GatewayError):
            return error_response(dialect, failure)
        if isinstance(failure, StopAsyncIteration):
            return error_response(dialect, ProtocolError("the upstream sent nothing"))
    return EventStream(_body(first, events, dialect, meta, keepalive))


async def _body(
    first: asyncio.Future[StreamEvent],
    events: AsyncIterator[StreamEvent],
    dialect: Dialect,
    meta: Meta,
    keepalive: float,
) -> AsyncIterator[bytes]:
    try:
        while not first.done():
            await asyncio.wait({first}, timeout=keepalive)
            if not first.done():
                yield sse.KEEPALIVE
        try:
            head = first.result()
        except StopAsyncIteration:
            raise ProtocolError("the upstream sent nothing") from None
        async for frame in dialect.render_stream(_prepend(head, events), meta):
            yield sse.encode(frame)
    except GatewayError as error:
        log.info("stream ended by %s: %s", type(error).__name__, error.message)
        for frame in dialect.render_stream_error(error):
            yield sse.encode(frame)
    finally:
        if not first.done():
            first.cancel()
        with contextlib.suppress(Exception):
            await events.aclose()  # type: ignore[attr-defined]


async def _prepend(
    head: StreamEvent, rest: AsyncIterator[StreamEvent]
) -> AsyncIterator[StreamEvent]:
    yield head
    async for event in rest:
        yield event


class EventStream(Response):
    """A streaming response that stops producing as soon as the client goes away.

    The producer runs in its own task while this one listens for `http.disconnect`; a
    disconnect cancels the producer, and the cancellation unwinds every `async with` down to
    the upstream connection.
    """

    def __init__(self, body: AsyncIterator[bytes]) -> None:
        # Not Response.__init__: it would add `content-length: 0`.
        self.status_code = 200
        self.background = None
        self.raw_headers = [(k.encode(), v.encode()) for k, v in SSE_HEADERS.items()]
        self._body = body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers})
        producer = asyncio.ensure_future(self._pump(send))
        watcher = asyncio.ensure_future(_watch(receive, producer))
        try:
            await producer
        except (asyncio.CancelledError, OSError):
            if not watcher.done():
                raise
        finally:
            watcher.cancel()
            if not producer.done():
                producer.cancel()

    async def _pump(self, send: Send) -> None:
        body = self._body
        try:
            async for chunk in body:
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        finally:
            await body.aclose()  # type: ignore[attr-defined]


async def _watch(receive: Receive, producer: asyncio.Future[Any]) -> None:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            producer.cancel()
            return
