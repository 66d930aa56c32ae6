"""OpenAI Responses rendering: the response object, typed SSE events, errors.

Every streamed event carries its `type` both as the SSE event name and in the data, and a
`sequence_number` counted from 0. One `Turn` per request holds what the events share: the
response id (known from `Opened`), the counter and the finished output items, so that an error
after the start still ends the stream with a `response.failed` of the same response.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from qwen_free_api import jsonfast
from qwen_free_api.chat import ToolCall
from qwen_free_api.dialects import Dialect, Meta, openai
from qwen_free_api.dialects.responses_wire import ResponsesRequest, ToolNames
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
from qwen_free_api.sse import KEEPALIVE_FRAME, Frame

INCOMPLETE = {"length": "max_output_tokens", "content_filter": "content_filter"}


@dataclass
class Turn:
    """One request's response: what its events and its final object are made of."""

    wire: ResponsesRequest
    names: ToolNames
    summary: bool  # reasoning as summary_text (asked for a summary) or as reasoning_text
    response_id: str = ""
    sequence: int = 0
    output: list[dict[str, Any]] = field(default_factory=list)  # finished items

    def frame(self, kind: str, body: dict[str, Any]) -> Frame:
        data = {"type": kind, "sequence_number": self.sequence, **body}
        self.sequence += 1
        return Frame(jsonfast.compact(data), kind)

    def response(self, meta: Meta, **fields: Any) -> dict[str, Any]:
        """The response object, echoing the request the way the SDK's `Response` expects."""
        wire = self.wire
        reasoning = wire.reasoning
        return {
            "id": self.response_id,
            "object": "response",
            "created_at": meta.created,
            "status": "in_progress",
            "error": None,
            "incomplete_details": None,
            "instructions": wire.instructions,
            "max_output_tokens": wire.max_output_tokens,
            "model": meta.model,
            "output": list(self.output),
            "parallel_tool_calls": wire.parallel_tool_calls is not False,
            "previous_response_id": wire.previous_response_id,
            "reasoning": {
                "effort": reasoning.effort if reasoning else None,
                "summary": (reasoning.summary or reasoning.generate_summary) if reasoning else None,
            },
            "store": wire.store is not False,
            "temperature": wire.temperature,
            "text": wire.text or {"format": {"type": "text"}},
            "tool_choice": wire.tool_choice or "auto",
            "tools": wire.tools or [],
            "top_p": wire.top_p,
            "truncation": "disabled",
            "usage": None,
            "metadata": wire.metadata or {},
            **fields,
        }

    def function_call(self, call: ToolCall, status: str) -> dict[str, Any]:
        namespace, name = self.names.split(call.name)
        item: dict[str, Any] = {
            "id": "fc_" + call.id.removeprefix("call_"),
            "type": "function_call",
            "status": status,
            "arguments": call.arguments if status == "completed" else "",
            "call_id": call.id,
            "name": name,
        }
        if namespace is not None:
            item["namespace"] = namespace
        return item


def new_id(prefix: str) -> str:
    return prefix + uuid.uuid4().hex


def usage_object(usage: Usage, reasoning_tokens: int) -> dict[str, Any]:
    body: dict[str, Any] = {
        "input_tokens": usage.prompt_tokens,
        "input_tokens_details": {"cached_tokens": 0},
        "output_tokens": usage.completion_tokens,
        "output_tokens_details": {"reasoning_tokens": reasoning_tokens},
        "total_tokens": usage.total_tokens,
    }
    if usage.estimated:
        body["estimated"] = True
    return body


def final_fields(finish: Finish, usage: dict[str, Any]) -> dict[str, Any]:
    """Status, incomplete_details and usage of a finished response."""
    reason = INCOMPLETE.get(finish.reason)
    return {
        "status": "incomplete" if reason else "completed",
        "incomplete_details": {"reason": reason} if reason else None,
        "usage": usage,
    }


def _usage(meta: Meta, finish: Finish, text: str, reasoning: str) -> dict[str, Any]:
    usage = finish.usage or meta.estimate(text, reasoning)
    thought = usage.reasoning_tokens
    if thought is None:  # the reasoning's share of the output, by characters
        share = len(reasoning) / max(1, len(text) + len(reasoning))
        thought = round(usage.completion_tokens * share)
    return usage_object(usage, thought)


def text_part(text: str, citations: list[Citation]) -> dict[str, Any]:
    annotations = [
        {"type": "url_citation", "url": c.url, "title": c.title, "start_index": 0, "end_index": 0}
        for c in citations
    ]
    return {"type": "output_text", "text": text, "annotations": annotations, "logprobs": []}


def message_item(item_id: str, text: str, citations: list[Citation], status: str) -> dict[str, Any]:
    content = [text_part(text, citations)] if status == "completed" else []
    return {
        "id": item_id,
        "type": "message",
        "status": status,
        "role": "assistant",
        "content": content,
    }


def reasoning_item(item_id: str, text: str, summary: bool, status: str) -> dict[str, Any]:
    done = status == "completed"
    item: dict[str, Any] = {"id": item_id, "type": "reasoning", "status": status, "summary": []}
    if summary and done:
        item["summary"] = [{"type": "summary_text", "text": text}]
    if not summary:
        item["content"] = [{"type": "reasoning_text", "text": text}] if done else []
    return item


# ---------------------------------------------------------------------------------------------
# Streaming


@dataclass
class _Open:
    """The output item being streamed: a message or a reasoning item."""

    kind: str  # "message" | "reasoning"
    item_id: str
    index: int
    texts: list[str] = field(default_factory=list)


async def render_stream(
    events: AsyncIterator[StreamEvent], meta: Meta, turn: Turn
) -> AsyncIterator[Frame]:
    current: _Open | None = None
    citations: list[Citation] = []
    texts: list[str] = []
    thoughts: list[str] = []
    async for event in events:
        frames: list[Frame] = []
        match event:
            case Opened(conversation_id=cid):
                frames = _opening(turn, meta, cid)
            case TextDelta(text=text) if text:
                texts.append(text)
                current, frames = _switch(turn, current, "message", citations)
                frames.append(_text_delta(turn, current, text))
            case ReasoningDelta(text=text) if text:
                thoughts.append(text)
                current, frames = _switch(turn, current, "reasoning", citations)
                frames.append(_reasoning_delta(turn, current, text))
            case ToolCalled(call=call):
                frames = _close(turn, current, citations)
                current = None
                frames.extend(_function_call(turn, call))
            case Citations(items=items):
                citations.extend(items)
            case Heartbeat():
                frames = [KEEPALIVE_FRAME]
            case Finish():
                frames = _close(turn, current, citations)
                current = None
                usage = _usage(meta, event, "".join(texts), "".join(thoughts))
                body = turn.response(meta, **final_fields(event, usage))
                kind = f"response.{body['status']}"  # response.completed or response.incomplete
                frames.append(turn.frame(kind, {"response": body}))
        for frame in frames:
            yield frame


def _opening(turn: Turn, meta: Meta, conversation_id: str) -> list[Frame]:
    turn.response_id = "resp_" + conversation_id
    return [
        turn.frame(kind, {"response": turn.response(meta)})
        for kind in ("response.created", "response.in_progress")
    ]


def _switch(
    turn: Turn, current: _Open | None, kind: str, citations: list[Citation]
) -> tuple[_Open, list[Frame]]:
    """Keep streaming into the open item of `kind`, or close it and open a new one."""
    if current is not None and current.kind == kind:
        return current, []
    frames = _close(turn, current, citations)
    prefix = "msg_" if kind == "message" else "rs_"
    opened = _Open(kind, new_id(prefix), len(turn.output))
    if kind == "message":
        item = message_item(opened.item_id, "", [], "in_progress")
    else:
        item = reasoning_item(opened.item_id, "", turn.summary, "in_progress")
    frames.append(
        turn.frame("response.output_item.added", {"output_index": opened.index, "item": item})
    )
    frames.append(_part(turn, opened, "added", ""))
    return opened, frames


def _where(item: _Open) -> dict[str, Any]:
    return {"item_id": item.item_id, "output_index": item.index}


def _part(turn: Turn, item: _Open, stage: str, text: str) -> Frame:
    """`…part.added` / `…part.done` of the one part every streamed item has."""
    if item.kind == "reasoning" and turn.summary:
        part = {"type": "summary_text", "text": text}
        body = {**_where(item), "summary_index": 0, "part": part}
        return turn.frame(f"response.reasoning_summary_part.{stage}", body)
    if item.kind == "reasoning":
        part = {"type": "reasoning_text", "text": text}
    else:
        part = text_part(text, [])
    return turn.frame(
        f"response.content_part.{stage}", {**_where(item), "content_index": 0, "part": part}
    )


def _text_delta(turn: Turn, item: _Open, text: str) -> Frame:
    item.texts.append(text)
    body = {**_where(item), "content_index": 0, "delta": text, "logprobs": []}
    return turn.frame("response.output_text.delta", body)


def _reasoning_delta(turn: Turn, item: _Open, text: str) -> Frame:
    item.texts.append(text)
    if turn.summary:
        body = {**_where(item), "summary_index": 0, "delta": text}
        return turn.frame("response.reasoning_summary_text.delta", body)
    body = {**_where(item), "content_index": 0, "delta": text}
    return turn.frame("response.reasoning_text.delta", body)


def _close(turn: Turn, item: _Open | None, citations: list[Citation]) -> list[Frame]:
    if item is None:
        return []
    text = "".join(item.texts)
    where = _where(item)
    if item.kind == "message":
        done = turn.frame(
            "response.output_text.done", {**where, "content_index": 0, "text": text, "logprobs": []}
        )
        part = text_part(text, citations)
        part_done = turn.frame(
            "response.content_part.done", {**where, "content_index": 0, "part": part}
        )
        finished = message_item(item.item_id, text, citations, "completed")
    else:
        if turn.summary:
            kind, index = "response.reasoning_summary_text.done", {"summary_index": 0}
        else:
            kind, index = "response.reasoning_text.done", {"content_index": 0}
        done = turn.frame(kind, {**where, **index, "text": text})
        part_done = _part(turn, item, "done", text)
        finished = reasoning_item(item.item_id, text, turn.summary, "completed")
    turn.output.append(finished)
    body = {"output_index": item.index, "item": finished}
    return [done, part_done, turn.frame("response.output_item.done", body)]


def _function_call(turn: Turn, call: ToolCall) -> list[Frame]:
    """A whole call: added, its arguments in one delta, done."""
    index = len(turn.output)
    started = turn.function_call(call, "in_progress")
    finished = turn.function_call(call, "completed")
    where = {"item_id": started["id"], "output_index": index}
    turn.output.append(finished)
    return [
        turn.frame("response.output_item.added", {"output_index": index, "item": started}),
        turn.frame("response.function_call_arguments.delta", {**where, "delta": call.arguments}),
        turn.frame(
            "response.function_call_arguments.done",
            {**where, "name": finished["name"], "arguments": call.arguments},
        ),
        turn.frame("response.output_item.done", {"output_index": index, "item": finished}),
    ]


# ---------------------------------------------------------------------------------------------
# Whole responses and errors


def render_completion(done: Completion, meta: Meta, turn: Turn) -> dict[str, Any]:
    turn.response_id = "resp_" + done.conversation_id
    if done.reasoning:
        turn.output.append(reasoning_item(new_id("rs_"), done.reasoning, turn.summary, "completed"))
    if done.text or not done.tool_calls:
        turn.output.append(message_item(new_id("msg_"), done.text, done.citations, "completed"))
    turn.output.extend(turn.function_call(call, "completed") for call in done.tool_calls)
    usage = _usage(meta, done.finish, done.text, done.reasoning)
    return turn.response(meta, **final_fields(done.finish, usage))


def stream_error(error: GatewayError) -> dict[str, Any]:
    """`response.error` in the codes agents act on (Codex: context window, quota, retry)."""
    code = error.code or error.kind
    message = error.message
    if error.kind == "context_length":
        code = "context_length_exceeded"
    elif error.kind == "rate_limited" and code != "insufficient_quota":
        code = "rate_limit_exceeded"
        if error.retry_after is not None and "try again in" not in message.lower():
            message = f"{message} Please try again in {error.retry_after}s."
    return {"code": code, "message": message, "param": error.param}


def render_stream_error(error: GatewayError, meta: Meta, turn: Turn) -> list[Frame]:
    """After response.created: `response.failed`; before it (nothing to fail): `error`."""
    details = stream_error(error)
    if not turn.response_id:
        # Also what respond() computes up front as its shutdown terminator: it must not
        # advance the counter, so that response.created still gets sequence number 0.
        data = {"type": "error", "sequence_number": turn.sequence, **details}
        return [Frame(json.dumps(data, ensure_ascii=False, separators=(",", ":")), "error")]
    body = turn.response(meta, status="failed", error=details)
    return [turn.frame("response.failed", {"response": body})]


def dialect_for(meta: Meta, turn: Turn) -> Dialect:
    """The renderers of one request, sharing its Turn."""

    def stream(events: AsyncIterator[StreamEvent], meta: Meta) -> AsyncIterator[Frame]:
        return render_stream(events, meta, turn)

    def completion(done: Completion, meta: Meta) -> dict[str, Any]:
        return render_completion(done, meta, turn)

    def failure(error: GatewayError) -> list[Frame]:
        return render_stream_error(error, meta, turn)

    return Dialect("responses", stream, completion, openai.render_error, failure)
