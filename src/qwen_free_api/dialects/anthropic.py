"""Anthropic Messages API: `/v1/messages`, `/v1/messages/count_tokens` and the model list.

The key comes from `x-api-key` or a Bearer header; any `anthropic-version` and `anthropic-beta`
are accepted, and so is `?beta=true`. Wire parsing lives in anthropic_wire.py, rendering in
anthropic_render.py.
"""

from __future__ import annotations

import functools
import time
from collections.abc import AsyncIterator
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from qwen_free_api import sse
from qwen_free_api.chat import ChatRequest
from qwen_free_api.dialects import Meta, openai
from qwen_free_api.dialects.anthropic_render import DIALECT, PING
from qwen_free_api.dialects.anthropic_wire import (
    CountTokensRequest,
    MessagesRequest,
    counted_text,
    parse,
    to_chat,
)
from qwen_free_api.errors import GatewayError
from qwen_free_api.events import Usage
from qwen_free_api.respond import EventStream, error_response, respond
from qwen_free_api.service import Gateway
from qwen_free_api.web import bearer, gateway_of, read_json

EPOCH = "1970-01-01T00:00:00Z"  # what Anthropic sends when a model's release date is unknown
PING_BYTES = sse.encode(PING)


def api_key(request: Request) -> str | None:
    return request.headers.get("x-api-key") or bearer(request) or None


async def messages(request: Request) -> Response:
    gateway = gateway_of(request)
    try:
        caller = gateway.authorize(api_key(request))
        body = await read_json(request, gateway.settings.max_body_bytes)
        wire = parse(MessagesRequest, body)
        chat = to_chat(wire)
        prepared = await gateway.prepare(chat, caller)
    except GatewayError as error:
        return error_response(DIALECT, error)
    settings = gateway.settings
    response = await respond(
        gateway.stream(prepared),
        DIALECT,
        _meta(gateway, wire, chat),
        stream=wire.stream,
        first_event_timeout=settings.first_event_timeout,
        keepalive=settings.keepalive_interval,
        stop=gateway.stop,
    )
    if isinstance(response, EventStream):
        response = PingStream(response)
    if prepared.dropped:
        response.headers["x-qfa-history-dropped"] = str(prepared.dropped)
    return response


def _meta(gateway: Gateway, wire: MessagesRequest, chat: ChatRequest) -> Meta:
    @functools.cache
    def prompt_tokens() -> int:
        return gateway.tokenizer.count(counted_text(chat))

    def estimate(text: str, reasoning: str) -> Usage:
        completion = gateway.tokenizer.count(text) + gateway.tokenizer.count(reasoning)
        return Usage(prompt_tokens(), completion, estimated=True)

    return Meta(
        model=wire.model,
        created=int(time.time()),
        include_usage=True,
        reasoning_in_content=False,
        estimate=estimate,
    )


class PingStream(EventStream):
    """An EventStream whose keep-alives, while the answer has not begun, are `ping` events."""

    def __init__(self, inner: EventStream) -> None:
        super().__init__(_pings(inner._body), inner._terminator, inner._stop)


async def _pings(body: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    try:
        async for chunk in body:
            yield PING_BYTES if chunk == sse.KEEPALIVE else chunk
    finally:
        await body.aclose()  # type: ignore[attr-defined]


async def count_tokens(request: Request) -> Response:
    gateway = gateway_of(request)
    try:
        gateway.authorize(api_key(request))
        body = await read_json(request, gateway.settings.max_body_bytes)
        wire = parse(CountTokensRequest, body)
        chat = to_chat(wire)
    except GatewayError as error:
        return error_response(DIALECT, error)
    return JSONResponse({"input_tokens": gateway.tokenizer.count(counted_text(chat))})


async def list_models(request: Request) -> Response:
    """`GET /v1/models` when the request carries Anthropic's headers."""
    gateway = gateway_of(request)
    key = api_key(request)
    try:
        caller = gateway.authorize(key) if key or gateway.settings.pool_mode else None
    except GatewayError as error:
        return error_response(DIALECT, error)
    found = await gateway.models(caller)
    names = {info.id: info.name for _, info in found if info.name}
    data = [model_object(entry["id"], names) for entry in openai.model_list(gateway, found)]
    return JSONResponse(_page(data, request))


def model_object(model_id: str, names: dict[str, str]) -> dict[str, Any]:
    return {
        "type": "model",
        "id": model_id,
        "display_name": names.get(model_id) or model_id,
        "created_at": EPOCH,
    }


def _page(data: list[dict[str, Any]], request: Request) -> dict[str, Any]:
    """One page by `after_id` / `before_id` / `limit`; without them, every model."""
    query = request.query_params
    ids = [entry["id"] for entry in data]
    if query.get("after_id") in ids:
        data = data[ids.index(query["after_id"]) + 1 :]
    before = query.get("before_id") in ids
    if before:
        data = data[: ids.index(query["before_id"])]
    limit = query.get("limit", "")
    more = limit.isdigit() and 0 < int(limit) < len(data)
    if more:
        data = data[-int(limit) :] if before else data[: int(limit)]
    return {
        "data": data,
        "has_more": more,
        "first_id": data[0]["id"] if data else None,
        "last_id": data[-1]["id"] if data else None,
    }


routes = [
    Route("/v1/messages", messages, methods=["POST"]),
    Route("/v1/messages/count_tokens", count_tokens, methods=["POST"]),
]
