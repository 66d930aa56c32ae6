"""Anthropic Messages responses: the SSE event grammar, the whole message, the error envelope.

A stream is `message_start`, then content blocks with consecutive indexes, each
`content_block_start` → `content_block_delta`… → `content_block_stop` (a new block whenever the
kind changes: thinking → text → tool_use), then `message_delta` (stop reason, usage) and
`message_stop`. `ping` fills silences; an error is one `error` event and nothing after it.
"""

from __future__ import annotations

import base64
import hashlib
import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

from qwen_free_api import jsonfast
from qwen_free_api.chat import ToolCall
from qwen_free_api.dialects import Dialect, Meta
from qwen_free_api.errors import GatewayError, ProtocolError
from qwen_free_api.events import (
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
from qwen_free_api.sse import Frame

STOP_REASONS = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "stop_sequence": "stop_sequence",
    "content_filter": "refusal",
}
ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    504: "timeout_error",
}
OVERLOADED = frozenset({"no_credential", "blocked", "shutting_down"})
PING = Frame('{"type":"ping"}', "ping")


def _json(value: Any) -> str:
    return jsonfast.compact(value)


def _event(name: str, body: dict[str, Any]) -> Frame:
    return Frame(_json({"type": name, **body}), name)


def message_id(conversation_id: str) -> str:
    return "msg_" + (conversation_id or uuid.uuid4().hex)


def tool_use_id(call: ToolCall) -> str:
    """Anthropic's ids look like `toolu_…`; the gateway's `call_…` ids are renamed to match."""
    if call.id.startswith("toolu_"):
        return call.id
    return "toolu_" + call.id.removeprefix("call_")


def tool_input(call: ToolCall) -> dict[str, Any]:
    try:
        value = json.loads(call.arguments or "{}")
    except (ValueError, RecursionError):
        return {}
    return value if isinstance(value, dict) else {"value": value}


def signature(thinking: str) -> str:
    """An opaque signature for a thinking block (clients send it back; it is dropped then)."""
    return base64.b64encode(hashlib.sha256(thinking.encode()).digest()).decode()


def usage_object(usage: Usage) -> dict[str, Any]:
    return {
        "input_tokens": usage.prompt_tokens,
        "output_tokens": usage.completion_tokens,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
        "cache_creation": {"ephemeral_5m_input_tokens": 0, "ephemeral_1h_input_tokens": 0},
    }


def stop_reason(finish: Finish) -> str:
    return STOP_REASONS.get(finish.reason, "end_turn")


def stop_sequence(finish: Finish) -> str | None:
    return finish.stop_sequence if finish.reason == "stop_sequence" else None


async def render_stream(events: AsyncIterator[StreamEvent], meta: Meta) -> AsyncIterator[Frame]:
    message = _StreamedMessage(meta)
    async for event in events:
        for frame in message.on(event):
            yield frame
        if message.finished:
            return
    raise ProtocolError("the upstream answer ended without finishing")


class _StreamedMessage:
    """What one streamed message remembers: its open block, the next index, what was said."""

    def __init__(self, meta: Meta) -> None:
        self.meta = meta
        self.started = False
        self.finished = False
        self.index = -1
        self.open: str | None = None  # "thinking" | "text": the kind of the open block
        self.said: list[str] = []  # text and tool arguments, to estimate usage
        self.thought: list[str] = []  # reasoning of the whole message
        self.block_thought: list[str] = []  # reasoning of the open thinking block

    def on(self, event: StreamEvent) -> list[Frame]:
        match event:
            case Heartbeat():
                return [PING]
            case Opened(conversation_id=cid):
                return self.start(cid)
            case Citations():
                return []  # Anthropic's citations need source locations we do not have
            case TextDelta(text=text) if text:
                self.said.append(text)
                return [*self.enter("text"), self.delta({"type": "text_delta", "text": text})]
            case ReasoningDelta(text=text) if text:
                self.thought.append(text)
                self.block_thought.append(text)
                delta = {"type": "thinking_delta", "thinking": text}
                return [*self.enter("thinking"), self.delta(delta)]
            case ToolCalled(call=call):
                self.said.append(call.arguments)
                return self.tool_use(call)
            case Finish():
                return self.finish(event)
        return []

    def start(self, conversation_id: str = "") -> list[Frame]:
        if self.started:
            return []
        self.started = True
        usage = usage_object(self.meta.estimate("", ""))
        usage["output_tokens"] = 0
        message: dict[str, Any] = {
            "id": message_id(conversation_id),
            "type": "message",
            "role": "assistant",
            "content": [],
            "model": self.meta.model,
            "stop_reason": None,
            "stop_sequence": None,
            "usage": usage,
        }
        return [_event("message_start", {"message": message})]

    def enter(self, kind: str, block: dict[str, Any] | None = None) -> list[Frame]:
        """Open a block of `kind` unless one is open already (tool_use blocks: always)."""
        if self.open == kind and block is None:
            return []
        frames = [*self.start(), *self.close()]
        self.index += 1
        self.open = kind
        if block is None:
            block = {"type": kind, kind: ""}
            if kind == "thinking":
                block["signature"] = ""
        frames.append(_event("content_block_start", {"index": self.index, "content_block": block}))
        return frames

    def delta(self, delta: dict[str, Any]) -> Frame:
        return _event("content_block_delta", {"index": self.index, "delta": delta})

    def close(self) -> list[Frame]:
        if self.open is None:
            return []
        frames = []
        if self.open == "thinking":
            sign = signature("".join(self.block_thought))
            frames.append(self.delta({"type": "signature_delta", "signature": sign}))
            self.block_thought = []
        frames.append(_event("content_block_stop", {"index": self.index}))
        self.open = None
        return frames

    def tool_use(self, call: ToolCall) -> list[Frame]:
        block = {"type": "tool_use", "id": tool_use_id(call), "name": call.name, "input": {}}
        frames = self.enter("tool_use", block)
        frames.append(self.delta({"type": "input_json_delta", "partial_json": call.arguments}))
        return [*frames, *self.close()]

    def finish(self, finish: Finish) -> list[Frame]:
        frames = [*self.start(), *self.close()]
        usage = finish.usage or self.meta.estimate("".join(self.said), "".join(self.thought))
        delta = {"stop_reason": stop_reason(finish), "stop_sequence": stop_sequence(finish)}
        frames.append(_event("message_delta", {"delta": delta, "usage": usage_object(usage)}))
        frames.append(_event("message_stop", {}))
        self.finished = True
        return frames


def render_completion(done: Completion, meta: Meta) -> dict[str, Any]:
    content: list[dict[str, Any]] = []
    if done.reasoning:
        thinking = {"type": "thinking", "thinking": done.reasoning}
        content.append({**thinking, "signature": signature(done.reasoning)})
    if done.text:
        content.append({"type": "text", "text": done.text})
    for call in done.tool_calls:
        block = {"id": tool_use_id(call), "name": call.name, "input": tool_input(call)}
        content.append({"type": "tool_use", **block})
    texts = done.text + "".join(call.arguments for call in done.tool_calls)
    usage = done.finish.usage or meta.estimate(texts, done.reasoning)
    return {
        "id": message_id(done.conversation_id),
        "type": "message",
        "role": "assistant",
        "model": meta.model,
        "content": content,
        "stop_reason": stop_reason(done.finish),
        "stop_sequence": stop_sequence(done.finish),
        "usage": usage_object(usage),
    }


def error_type(error: GatewayError) -> str:
    if error.kind in OVERLOADED:
        return "overloaded_error"
    return ERROR_TYPES.get(error.status, "api_error")


def render_error(error: GatewayError) -> dict[str, Any]:
    return {"type": "error", "error": {"type": error_type(error), "message": error.message}}


def render_stream_error(error: GatewayError) -> list[Frame]:
    return [Frame(_json(render_error(error)), "error")]


DIALECT = Dialect("anthropic", render_stream, render_completion, render_error, render_stream_error)
