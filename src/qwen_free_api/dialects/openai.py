"""OpenAI Chat Completions and model list: wire models, parsing, rendering, errors, routes."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from qwen_free_api import jsonfast
from qwen_free_api.chat import ToolCall
from qwen_free_api.dialects import Dialect, Meta
from qwen_free_api.dialects.openai_wire import parse_request, to_chat
from qwen_free_api.errors import GatewayError, NotFound
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
from qwen_free_api.models import SUFFIXES
from qwen_free_api.respond import error_response, respond
from qwen_free_api.service import Gateway
from qwen_free_api.sse import KEEPALIVE_FRAME, Frame
from qwen_free_api.web import bearer, gateway_of, read_json

ERROR_TYPES = {
    "internal": "server_error",
    "invalid_request": "invalid_request_error",
    "authentication": "authentication_error",
    "no_credential": "service_unavailable",
    "shutting_down": "service_unavailable",
    "upstream": "upstream_error",
    "credential_rejected": "authentication_error",
    "rate_limited": "rate_limit_error",
    "blocked": "service_unavailable",
    "signing": "upstream_error",
    "context_length": "invalid_request_error",
    "content_filter": "invalid_request_error",
    "timeout": "timeout",
    "protocol": "upstream_error",
}
DONE = Frame("[DONE]")


async def render_stream(events: AsyncIterator[StreamEvent], meta: Meta) -> AsyncIterator[Frame]:
    chunks = _Chunks(meta)
    async for event in events:
        match event:
            case Opened(conversation_id=cid):
                chunks.head = _chunk_head("chatcmpl-" + cid, meta)
                yield Frame(
                    chunks.head + '{"role":"assistant","content":""},"finish_reason":null}]}'
                )
            case TextDelta(text=text):
                chunks.texts.append(text)
                yield _delta(chunks.head, "content", chunks.close_think() + text)
            case ReasoningDelta(text=text):
                yield chunks.reasoning(text)
            case ToolCalled(call=call):
                chunks.texts.append(call.arguments)
                if chunks.think_open:
                    yield _delta(chunks.head, "content", chunks.close_think())
                yield _tool_delta(chunks.head, chunks.calls, call)
                chunks.calls += 1
            case Citations(items=items):
                urls = json.dumps([c.url for c in items], ensure_ascii=False)
                yield Frame(f'{chunks.head}{{}},"finish_reason":null}}],"citations":{urls}}}')
            case Heartbeat():
                yield KEEPALIVE_FRAME
            case Finish():
                for frame in chunks.closing(event):
                    yield frame
    yield DONE


class _Chunks:
    """What a chat.completion.chunk stream remembers between events."""

    def __init__(self, meta: Meta) -> None:
        self.meta = meta
        self.head = ""
        self.think_open = False  # reasoning_in_content: a <think> block is open in `content`
        self.texts: list[str] = []  # to estimate usage when the upstream reports none
        self.thoughts: list[str] = []
        self.calls = 0

    def close_think(self) -> str:
        if not self.think_open:
            return ""
        self.think_open = False
        return "\n</think>\n\n"

    def reasoning(self, text: str) -> Frame:
        self.thoughts.append(text)
        if self.meta.reasoning_in_content and not self.think_open:
            text, self.think_open = "<think>\n" + text, True
        return _delta(self.head, "content" if self.think_open else "reasoning_content", text)

    def closing(self, finish: Finish) -> list[Frame]:
        usage = finish.usage
        if self.meta.include_usage and usage is None:
            usage = self.meta.estimate("".join(self.texts), "".join(self.thoughts))
        return _closing(
            self.head, finish, usage if self.meta.include_usage else None, self.think_open
        )


def _closing(head: str, finish: Finish, usage: Usage | None, think_open: bool) -> list[Frame]:
    frames = [_delta(head, "content", "\n</think>\n\n")] if think_open else []
    frames.append(Frame(f'{head}{{}},"finish_reason":"{finish_reason(finish)}"}}]}}'))
    if usage is not None:
        frames.append(Frame(_usage_chunk(head, usage)))
    return frames


def finish_reason(finish: Finish) -> str:
    return "stop" if finish.reason == "stop_sequence" else finish.reason


def _tool_delta(head: str, index: int, call: ToolCall) -> Frame:
    """One whole call in one chunk: id, name and the complete arguments."""
    delta = {
        "tool_calls": [
            {
                "index": index,
                "id": call.id,
                "type": "function",
                "function": {"name": call.name, "arguments": call.arguments},
            }
        ]
    }
    return Frame(f'{head}{_compact(delta)},"finish_reason":null}}]}}')


def _compact(value: Any) -> str:
    return jsonfast.compact(value)


def _delta(head: str, key: str, text: str) -> Frame:
    return Frame(f'{head}{{"{key}":{_string(text)}}},"finish_reason":null}}]}}')


def _string(text: str) -> str:
    return jsonfast.string(text)


def _chunk_head(response_id: str, meta: Meta) -> str:
    envelope = {
        "id": response_id,
        "object": "chat.completion.chunk",
        "created": meta.created,
        "model": meta.model,
    }
    prefix = json.dumps(envelope, ensure_ascii=False, separators=(",", ":"))
    return prefix[:-1] + ',"choices":[{"index":0,"delta":'


def _usage_chunk(head: str, usage: Usage) -> str:
    envelope = head[: head.index(',"choices"')]
    usage_json = json.dumps(usage_object(usage), separators=(",", ":"))
    return f'{envelope},"choices":[],"usage":{usage_json}}}'


def usage_object(usage: Usage) -> dict[str, Any]:
    body: dict[str, Any] = {
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.completion_tokens,
        "total_tokens": usage.total_tokens,
    }
    if usage.reasoning_tokens is not None:
        body["completion_tokens_details"] = {"reasoning_tokens": usage.reasoning_tokens}
    if usage.estimated:
        body["estimated"] = True
    return body


def render_completion(done: Completion, meta: Meta) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": done.text}
    if done.tool_calls:
        message["content"] = done.text or None
        message["tool_calls"] = [
            {
                "id": call.id,
                "type": "function",
                "function": {"name": call.name, "arguments": call.arguments},
            }
            for call in done.tool_calls
        ]
    if done.reasoning:
        if meta.reasoning_in_content:
            message["content"] = f"<think>\n{done.reasoning}\n</think>\n\n{done.text}"
        else:
            message["reasoning_content"] = done.reasoning
    body: dict[str, Any] = {
        "id": "chatcmpl-" + done.conversation_id,
        "object": "chat.completion",
        "created": meta.created,
        "model": meta.model,
        "choices": [{"index": 0, "message": message, "finish_reason": finish_reason(done.finish)}],
        "usage": usage_object(done.finish.usage or meta.estimate(done.text, done.reasoning)),
    }
    if done.citations:
        message["annotations"] = [
            {"type": "url_citation", "url_citation": {"url": c.url, "title": c.title}}
            for c in done.citations
        ]
        body["citations"] = [c.url for c in done.citations]
    return body


def render_error(error: GatewayError) -> dict[str, Any]:
    kind_type = ERROR_TYPES[error.kind]
    if error.code == "insufficient_quota":
        kind_type = "insufficient_quota"
    return {
        "error": {
            "message": error.message,
            "type": kind_type,
            "code": error.code or error.kind,
            "param": error.param,
        }
    }


def render_stream_error(error: GatewayError) -> list[Frame]:
    return [Frame(json.dumps(render_error(error), ensure_ascii=False)), DONE]


DIALECT = Dialect("openai", render_stream, render_completion, render_error, render_stream_error)


async def chat_completions(request: Request) -> Response:
    gateway = gateway_of(request)
    try:
        caller = gateway.authorize(bearer(request))
        wire = parse_request(await read_json(request, gateway.settings.max_body_bytes))
        chat = to_chat(wire)
        prepared = await gateway.prepare(chat, caller)
    except GatewayError as error:
        return error_response(DIALECT, error)
    settings = gateway.settings
    meta = Meta(
        model=wire.model,
        created=int(time.time()),
        include_usage=bool(wire.stream_options and wire.stream_options.include_usage),
        reasoning_in_content=settings.reasoning_in_content,
        estimate=lambda text, reasoning: gateway.estimate(chat, text, reasoning),
    )
    response = await respond(
        gateway.stream(prepared),
        DIALECT,
        meta,
        stream=wire.stream,
        first_event_timeout=settings.first_event_timeout,
        keepalive=settings.keepalive_interval,
        stop=gateway.stop,
    )
    if prepared.dropped:
        response.headers["x-qfa-history-dropped"] = str(prepared.dropped)
    return response


async def list_models(request: Request) -> Response:
    gateway = gateway_of(request)
    key = bearer(request)
    try:
        caller = gateway.authorize(key) if key or gateway.settings.pool_mode else None
    except GatewayError as error:
        return error_response(DIALECT, error)
    return JSONResponse(
        {"object": "list", "data": model_list(gateway, await gateway.models(caller))}
    )


async def get_model(request: Request) -> Response:
    """One entry of the model list, or 404."""
    gateway = gateway_of(request)
    key = bearer(request)
    wanted = request.path_params["target"]
    try:
        caller = gateway.authorize(key) if key or gateway.settings.pool_mode else None
        listed = model_list(gateway, await gateway.models(caller))
        found = next((m for m in listed if m["id"] == wanted), None)
        if found is None:
            raise NotFound(f"model {wanted!r} does not exist", param="model")
    except GatewayError as error:
        return error_response(DIALECT, error)
    return JSONResponse(found)


def model_list(gateway: Gateway, models: list[Any]) -> list[dict[str, Any]]:
    created = int(time.time())
    seen: set[str] = set()
    data: list[dict[str, Any]] = []

    def add(model_id: str, owner: str) -> None:
        if model_id not in seen:
            seen.add(model_id)
            data.append({"id": model_id, "object": "model", "created": created, "owned_by": owner})

    for dialect, model in models:
        owner = f"qwen-{dialect}"
        add(model.id, owner)
        for suffix in SUFFIXES:
            if suffix == "-search" and not model.search:
                continue
            add(model.id + suffix, owner)
    for dialect, upstream in gateway.upstreams.items():
        for alias in upstream.catalogue.aliases:
            add(alias, f"qwen-{dialect}")
    add("qwen-image", "qwen")  # chats with it draw their last message (see drawing.py)
    return data


routes = [
    Route("/v1/chat/completions", chat_completions, methods=["POST"]),
    Route("/chat/completions", chat_completions, methods=["POST"]),
]
