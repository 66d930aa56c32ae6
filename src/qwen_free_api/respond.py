"""Turn a canonical event stream into an HTTP response of any dialect, streamed or whole."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from starlette.responses import JSONResponse, Response
from starlette.types import Receive, Scope, Send

from qwen_free_api import observe_facts, sse
from qwen_free_api.dialects import Dialect, Meta
from qwen_free_api.errors import GatewayError, ProtocolError, ShuttingDown
from qwen_free_api.events import StreamEvent, collect

log = logging.getLogger(__name__)

SSE_HEADERS = {
    "cache-control": "no-cache",
    "x-accel-buffering": "no",
    "content-type": "text/event-stream; charset=utf-8",
}


def error_response(dialect: Dialect, error: GatewayError) -> JSONResponse:
    observe_facts.note(error=type(error).__name__)
    return JSONResponse(dialect.render_error(error), error.status, headers=error.headers())


async def respond(
    events: AsyncIterator[StreamEvent],
    dialect: Dialect,
    meta: Meta,
    *,
    stream: bool,
    first_event_timeout: float,
    keepalive: float,
    stop: Stop,
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
    stopping = ShuttingDown("the server is shutting down; retry the request")
    terminator = b"".join(sse.encode(f) for f in dialect.render_stream_error(stopping))
    return EventStream(_body(first, events, dialect, meta, keepalive), terminator, stop)


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
        frames = dialect.render_stream(_prepend(head, events), meta)
        async for frame in frames:
            observe_facts.first_token()
            yield sse.encode(frame)
            break
        async for frame in frames:  # the rest: no per-frame bookkeeping
            yield sse.encode(frame)
    except GatewayError as error:
        observe_facts.note(error=type(error).__name__)
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

    The producer runs in its own task while a watcher listens for `http.disconnect` and for the
    server stopping. A disconnect cancels the producer, and the cancellation unwinds every
    `async with` down to the upstream connection. A stopping server gives the producer its grace
    period, then cancels it and ends the stream with the dialect's error event.
    """

    def __init__(self, body: AsyncIterator[bytes], terminator: bytes, stop: Stop) -> None:
        # Not Response.__init__: it would add `content-length: 0`.
        self.status_code = 200
        self.background = None
        self.raw_headers = [(k.encode(), v.encode()) for k, v in SSE_HEADERS.items()]
        self._body = body
        self._terminator = terminator  # how to end the stream if the server stops first
        self._stop = stop

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        observe_facts.note(stream=True)
        await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers})
        producer = asyncio.ensure_future(self._pump(send))
        watcher = asyncio.ensure_future(_watch(receive, producer, self._stop))
        try:
            await asyncio.wait({producer})
        finally:
            if not producer.done():
                producer.cancel()  # this task itself was cancelled
            watcher.cancel()
        ended_by_stop = (
            watcher.done() and not watcher.cancelled() and watcher.result() == "stopping"
        )
        if producer.cancelled() and ended_by_stop:
            with contextlib.suppress(Exception):
                body = self._terminator
                await send({"type": "http.response.body", "body": body, "more_body": False})
        elif not producer.cancelled() and producer.exception() is not None:
            raise producer.exception()  # type: ignore[misc]

    async def _pump(self, send: Send) -> None:
        body = self._body
        try:
            async for chunk in body:
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        finally:
            await body.aclose()  # type: ignore[attr-defined]


@dataclass(frozen=True, slots=True)
class Stop:
    """The server's stop signal and how long running answers may go on after it."""

    event: asyncio.Event
    grace: float


async def _watch(receive: Receive, producer: asyncio.Future[Any], stop: Stop) -> str:
    gone = asyncio.ensure_future(_disconnect(receive))
    stopping = asyncio.ensure_future(stop.event.wait())
    try:
        await asyncio.wait({gone, stopping, producer}, return_when=asyncio.FIRST_COMPLETED)
        if producer.done():
            return "done"
        if not gone.done():  # the server is stopping: the answer gets its grace period
            await asyncio.wait({gone, producer}, timeout=stop.grace, return_when="FIRST_COMPLETED")
            if producer.done():
                return "done"
        producer.cancel()
        return "client" if gone.done() else "stopping"
    finally:
        gone.cancel()
        stopping.cancel()


async def _disconnect(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass
