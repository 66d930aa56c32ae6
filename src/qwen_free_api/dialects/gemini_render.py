"""Gemini responses: GenerateContentResponse chunks, the whole answer, errors, stream framing."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

from qwen_free_api import jsonfast
from qwen_free_api.chat import ToolCall
from qwen_free_api.dialects import Dialect, Meta
from qwen_free_api.errors import GatewayError
from qwen_free_api.events import (
    Citation,
    Citations,
    Completion,
    Finish,
    Heartbeat,
    Opened,
    ReasoningDelta,
    StreamEvent,
    TextDelta,
    ToolCalled,
    Usage,
)
from qwen_free_api.respond import EventStream
from qwen_free_api.sse import Frame

STATUSES = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    409: "ABORTED",
    413: "INVALID_ARGUMENT",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    502: "UNAVAILABLE",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}
FINISH_REASONS = {
    "stop": "STOP",
    "tool_calls": "STOP",
    "stop_sequence": "STOP",
    "length": "MAX_TOKENS",
    "content_filter": "SAFETY",
}
EMPTY_TEXT: list[dict[str, Any]] = [{"text": ""}]


def _json(value: Any) -> str:
    return jsonfast.compact(value)


def response_body(
    parts: list[dict[str, Any]],
    meta: Meta,
    response_id: str = "",
    *,
    finish: Finish | None = None,
    usage: dict[str, Any] | None = None,
    citations: list[Citation] | None = None,
) -> dict[str, Any]:
    """One GenerateContentResponse with a single candidate."""
    candidate: dict[str, Any] = {"content": {"role": "model", "parts": parts}, "index": 0}
    if finish is not None:
        candidate["finishReason"] = FINISH_REASONS.get(finish.reason, "OTHER")
    if citations:
        candidate["groundingMetadata"] = grounding(citations)
    body: dict[str, Any] = {"candidates": [candidate]}
    if usage is not None:
        body["usageMetadata"] = usage
    body["modelVersion"] = meta.model
    if response_id:
        body["responseId"] = response_id
    return body


def grounding(citations: list[Citation]) -> dict[str, Any]:
    return {
        "groundingChunks": [{"web": {"uri": c.url, "title": c.title or c.url}} for c in citations]
    }


def function_call_part(call: ToolCall) -> dict[str, Any]:
    try:
        args = json.loads(call.arguments)
    except (ValueError, RecursionError):
        args = {}
    if not isinstance(args, dict):
        args = {"value": args}
    return {"functionCall": {"name": call.name, "args": args, "id": call.id}}


def usage_metadata(meta: Meta, usage: Usage | None, text: str, reasoning: str) -> dict[str, Any]:
    """Gemini's counts: `candidates` excludes thoughts; the local estimate when none came."""
    thoughts = usage.reasoning_tokens if usage is not None else None
    if usage is None:
        usage = meta.estimate(text, reasoning)
        thoughts = meta.estimate("", reasoning).completion_tokens if reasoning else None
    body = {
        "promptTokenCount": usage.prompt_tokens,
        "candidatesTokenCount": max(usage.completion_tokens - (thoughts or 0), 0),
        "totalTokenCount": usage.total_tokens,
    }
    if thoughts:
        body["thoughtsTokenCount"] = thoughts
    return body


def keepalive_body(meta: Meta, response_id: str = "") -> str:
    """A keep-alive Google's SDKs can parse: a chunk whose only part is empty text.

    SSE comments break them (the Python SDK fails to parse `: keep-alive` as JSON; the older JS
    SDKs only match buffers that start with `data:`), so silences are filled with data frames.
    """
    return _json(response_body(EMPTY_TEXT, meta, response_id))


async def render_stream(
    events: AsyncIterator[StreamEvent], meta: Meta, *, thoughts: bool
) -> AsyncIterator[Frame]:
    response_id = ""
    texts: list[str] = []
    reasonings: list[str] = []
    citations: list[Citation] = []

    def chunk(parts: list[dict[str, Any]]) -> Frame:
        return Frame(_json(response_body(parts, meta, response_id)))

    async for event in events:
        match event:
            case Opened(conversation_id=cid):
                response_id = cid
            case TextDelta(text=text):
                texts.append(text)
                yield chunk([{"text": text}])
            case ReasoningDelta(text=text):
                reasonings.append(text)
                if thoughts:
                    yield chunk([{"text": text, "thought": True}])
            case Citations(items=items):
                citations.extend(items)
            case ToolCalled(call=call):
                yield chunk([function_call_part(call)])
            case Heartbeat():
                yield Frame(keepalive_body(meta, response_id))
            case Finish():
                usage = usage_metadata(meta, event.usage, "".join(texts), "".join(reasonings))
                last = response_body(
                    EMPTY_TEXT, meta, response_id, finish=event, usage=usage, citations=citations
                )
                yield Frame(_json(last))


def render_completion(done: Completion, meta: Meta, *, thoughts: bool) -> dict[str, Any]:
    parts: list[dict[str, Any]] = []
    if thoughts and done.reasoning:
        parts.append({"text": done.reasoning, "thought": True})
    if done.text or not done.tool_calls:
        parts.append({"text": done.text})
    parts.extend(function_call_part(call) for call in done.tool_calls)
    usage = usage_metadata(meta, done.finish.usage, done.text, done.reasoning)
    return response_body(
        parts,
        meta,
        done.conversation_id,
        finish=done.finish,
        usage=usage,
        citations=done.citations,
    )


def render_error(error: GatewayError) -> dict[str, Any]:
    details: list[dict[str, Any]] = [
        {
            "@type": "type.googleapis.com/google.rpc.ErrorInfo",
            "reason": (error.code or error.kind).upper(),
            "domain": "qwen-free-api",
        }
    ]
    if error.retry_after is not None:
        details.append(
            {
                "@type": "type.googleapis.com/google.rpc.RetryInfo",
                "retryDelay": f"{error.retry_after}s",
            }
        )
    status = STATUSES.get(error.status, "INTERNAL" if error.status >= 500 else "UNKNOWN")
    return {
        "error": {
            "code": error.status,
            "message": error.message,
            "status": status,
            "details": details,
        }
    }


def render_stream_error(error: GatewayError) -> list[Frame]:
    return [Frame(_json(render_error(error)))]


def dialect(*, thoughts: bool) -> Dialect:
    """The Gemini dialect; `thoughts`: render reasoning as `thought: true` parts."""

    def stream(events: AsyncIterator[StreamEvent], meta: Meta) -> AsyncIterator[Frame]:
        return render_stream(events, meta, thoughts=thoughts)

    def completion(done: Completion, meta: Meta) -> dict[str, Any]:
        return render_completion(done, meta, thoughts=thoughts)

    return Dialect("gemini", stream, completion, render_error, render_stream_error)


# Stream framing. respond() frames events as SSE; Google clients need two changes to that:
# keep-alives as data frames, and (without `alt=sse`) one JSON array written as it grows.

SSE_PREFIX = b"data: "
SSE_END = b"\n\n"


def _payload(chunk: bytes) -> bytes | None:
    """The JSON of one encoded SSE data frame, or None for a keep-alive comment."""
    if chunk.startswith(SSE_PREFIX) and chunk.endswith(SSE_END):
        return chunk[len(SSE_PREFIX) : -len(SSE_END)]
    return None


class GoogleStream(EventStream):
    """An EventStream re-framed for Google's clients, as SSE (`alt=sse`) or a JSON array."""

    def __init__(self, inner: EventStream, keepalive: str, *, array: bool) -> None:
        self._array = array
        self._keepalive = keepalive.encode()
        self._started = False  # array: the opening bracket and one element were written
        shutdown = [_payload(c) for c in _frames(inner._terminator)]
        self._errors = [p for p in shutdown if p is not None]
        super().__init__(self._reframe(inner._body), self._closing_error(), inner._stop)
        if array:
            self.raw_headers = [
                (b"content-type", b"application/json; charset=utf-8"),
                (b"cache-control", b"no-cache"),
                (b"x-accel-buffering", b"no"),
            ]

    def _closing_error(self) -> bytes:
        """What ends the stream when the server stops first."""
        if not self._array:
            return b"".join(SSE_PREFIX + e + SSE_END for e in self._errors)
        opening = b"\n," if self._started else b"["
        return opening + b"\n,".join(self._errors) + b"\n]"

    async def _reframe(self, body: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
        try:
            async for chunk in body:
                payload = _payload(chunk)
                if not self._array:
                    yield chunk if payload is not None else _sse(self._keepalive)
                elif payload is None:
                    yield b"\n"  # whitespace between array elements keeps the line alive
                else:
                    opening = b"\n," if self._started else b"["
                    self._started = True
                    self._terminator = self._closing_error()
                    yield opening + payload
            if self._array:
                yield b"\n]" if self._started else b"[]"
        finally:
            await body.aclose()  # type: ignore[attr-defined]


def _sse(data: bytes) -> bytes:
    return SSE_PREFIX + data + SSE_END


def _frames(encoded: bytes) -> list[bytes]:
    return [block + SSE_END for block in encoded.split(SSE_END) if block]
