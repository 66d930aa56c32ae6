"""OpenAI Chat Completions and model list: wire models, parsing, rendering, errors, routes."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from qwen_free_api.chat import ChatRequest, Message, Role
from qwen_free_api.dialects import Dialect, Meta
from qwen_free_api.errors import BadRequest, GatewayError
from qwen_free_api.events import (
    Citations,
    Completion,
    Finish,
    Heartbeat,
    Opened,
    ReasoningDelta,
    StreamEvent,
    TextDelta,
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
ROLES: dict[str, Role] = {
    "system": "system",
    "developer": "system",
    "user": "user",
    "assistant": "assistant",
    "tool": "tool",
    "function": "tool",
}
DONE = Frame("[DONE]")


class WireModel(BaseModel):
    model_config = ConfigDict(extra="allow")


class StreamOptions(WireModel):
    include_usage: bool = False


class ChatMessage(WireModel):
    role: str
    content: str | list[dict[str, Any]] | None = None


class ChatCompletionRequest(WireModel):
    model: str = Field(min_length=1)
    messages: list[ChatMessage] = Field(min_length=1)
    stream: bool = False
    stream_options: StreamOptions | None = None
    reasoning_effort: str | None = None
    enable_thinking: bool | None = None
    thinking_budget: int | None = None
    enable_search: bool | None = None
    search_type: str | None = None
    web_search_options: dict[str, Any] | None = None
    conversation_id: str | None = None


def parse_request(body: Any) -> ChatCompletionRequest:
    try:
        return ChatCompletionRequest.model_validate(body)
    except ValidationError as error:
        first = error.errors()[0]
        field = ".".join(str(part) for part in first["loc"]) or "body"
        raise BadRequest(f"invalid `{field}`: {first['msg']}", param=field) from None


def to_chat(wire: ChatCompletionRequest) -> ChatRequest:
    messages = tuple(_message(i, m) for i, m in enumerate(wire.messages))
    effort = (wire.reasoning_effort or "").lower()
    thinking = wire.enable_thinking
    if thinking is None and effort:
        thinking = effort not in ("none", "minimal")
    search_type = (wire.search_type or "").lower()
    return ChatRequest(
        model=wire.model,
        messages=messages,
        thinking=thinking,
        thinking_budget=wire.thinking_budget,
        search=bool(wire.enable_search or search_type or wire.web_search_options is not None),
        deep_search=search_type in ("deep", "depth", "deep_search"),
        conversation_id=wire.conversation_id,
    )


def _message(index: int, message: ChatMessage) -> Message:
    role = ROLES.get(message.role)
    if role is None:
        raise BadRequest(f"unknown role {message.role!r}", param=f"messages.{index}.role")
    content = message.content
    if content is None or isinstance(content, str):
        return Message(role, content or "")
    texts: list[str] = []
    for part_index, part in enumerate(content):
        kind = part.get("type")
        if kind in ("text", "input_text") and isinstance(part.get("text"), str):
            texts.append(part["text"])
        else:
            raise BadRequest(
                f"content part type {kind!r} is not supported yet",
                param=f"messages.{index}.content.{part_index}",
            )
    return Message(role, "\n".join(texts))


async def render_stream(events: AsyncIterator[StreamEvent], meta: Meta) -> AsyncIterator[Frame]:
    head = ""
    think_open = False  # reasoning_in_content: a <think> block is open in `content`
    texts: list[str] = []  # to estimate usage when the upstream reports none
    thoughts: list[str] = []
    async for event in events:
        match event:
            case Opened(conversation_id=cid):
                head = _chunk_head("chatcmpl-" + cid, meta)
                yield Frame(head + '{"role":"assistant","content":""},"finish_reason":null}]}')
            case TextDelta(text=text):
                texts.append(text)
                if think_open:
                    text, think_open = "\n</think>\n\n" + text, False
                yield _delta(head, "content", text)
            case ReasoningDelta(text=text):
                thoughts.append(text)
                if meta.reasoning_in_content and not think_open:
                    text, think_open = "<think>\n" + text, True
                yield _delta(head, "content" if think_open else "reasoning_content", text)
            case Citations(items=items):
                urls = json.dumps([c.url for c in items], ensure_ascii=False)
                yield Frame(f'{head}{{}},"finish_reason":null}}],"citations":{urls}}}')
            case Heartbeat():
                yield KEEPALIVE_FRAME
            case Finish():
                usage = event.usage
                if meta.include_usage and usage is None:
                    usage = meta.estimate("".join(texts), "".join(thoughts))
                for frame in _closing(
                    head, event, usage if meta.include_usage else None, think_open
                ):
                    yield frame
    yield DONE


def _closing(head: str, finish: Finish, usage: Usage | None, think_open: bool) -> list[Frame]:
    frames = [_delta(head, "content", "\n</think>\n\n")] if think_open else []
    frames.append(Frame(f'{head}{{}},"finish_reason":"{finish.reason}"}}]}}'))
    if usage is not None:
        frames.append(Frame(_usage_chunk(head, usage)))
    return frames


def _delta(head: str, key: str, text: str) -> Frame:
    return Frame(f'{head}{{"{key}":{_string(text)}}},"finish_reason":null}}]}}')


def _string(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)


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
        "choices": [{"index": 0, "message": message, "finish_reason": done.finish.reason}],
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
    return data


routes = [
    Route("/v1/chat/completions", chat_completions, methods=["POST"]),
    Route("/chat/completions", chat_completions, methods=["POST"]),
    Route("/v1/models", list_models, methods=["GET"]),
    Route("/models", list_models, methods=["GET"]),
]
