"""Google Gemini API: generateContent, streamGenerateContent, countTokens and the model list.

Served under `/v1beta/models/…` (the REST default, gemini-cli) and `/v1/models/…` (google-genai's
default). The key comes from `x-goog-api-key`, `?key=` or a Bearer header. Wire parsing lives
in gemini_wire.py, rendering in gemini_render.py.
"""

from __future__ import annotations

import time
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from qwen_free_api.chat import ChatRequest
from qwen_free_api.dialects import Meta
from qwen_free_api.dialects.gemini_render import GoogleStream, dialect, keepalive_body
from qwen_free_api.dialects.gemini_wire import (
    CountTokensRequest,
    GenerateContentRequest,
    counted_text,
    parse,
    to_chat,
)
from qwen_free_api.errors import BadRequest, GatewayError, NotFound
from qwen_free_api.models import ModelInfo, split_suffixes
from qwen_free_api.respond import EventStream, error_response, respond
from qwen_free_api.service import Caller, Gateway
from qwen_free_api.web import bearer, gateway_of, read_json

DIALECT = dialect(thoughts=False)
THOUGHTFUL = dialect(thoughts=True)  # the client set thinkingConfig.includeThoughts
METHODS = ["generateContent", "streamGenerateContent", "countTokens"]
INPUT_TOKEN_LIMIT = 131_072
OUTPUT_TOKEN_LIMIT = 32_768
MEDIA_TOKENS = 258  # what Gemini counts for one image


def api_key(request: Request) -> str | None:
    return (
        request.headers.get("x-goog-api-key")
        or request.query_params.get("key")
        or bearer(request)
        or None
    )


async def model_action(request: Request) -> Response:
    """POST `models/{model}:{method}`; a model name may hold dots, dashes and slashes."""
    target: str = request.path_params["target"]
    model, _, method = target.rpartition(":")
    model = model.removeprefix("models/")
    if not model or method not in METHODS:
        found = NotFound(f"no method {method or target!r} on models; use one of {METHODS}")
        return error_response(DIALECT, found)
    if method == "countTokens":
        return await count_tokens(request)
    stream = method == "streamGenerateContent"
    return await generate(request, model, stream=stream)


async def generate(request: Request, model: str, *, stream: bool) -> Response:
    gateway = gateway_of(request)
    try:
        caller = gateway.authorize(api_key(request))
        body = await read_json(request, gateway.settings.max_body_bytes)
        wire: GenerateContentRequest = parse(GenerateContentRequest, body)
        chat = to_chat(model, wire)
        prepared = await gateway.prepare(chat, caller)
    except GatewayError as error:
        return error_response(DIALECT, error)
    meta = _meta(gateway, chat, model)
    settings = gateway.settings
    response = await respond(
        gateway.stream(prepared),
        THOUGHTFUL if wire.include_thoughts else DIALECT,
        meta,
        stream=stream,
        first_event_timeout=settings.first_event_timeout,
        keepalive=settings.keepalive_interval,
        stop=gateway.stop,
    )
    if isinstance(response, EventStream):
        array = request.query_params.get("alt", "").lower() != "sse"
        response = GoogleStream(response, keepalive_body(meta), array=array)
    if prepared.dropped:
        response.headers["x-qfa-history-dropped"] = str(prepared.dropped)
    return response


def _meta(gateway: Gateway, chat: ChatRequest, model: str) -> Meta:
    return Meta(
        model=model,
        created=int(time.time()),
        include_usage=True,
        reasoning_in_content=False,
        estimate=lambda text, reasoning: gateway.estimate(chat, text, reasoning),
    )


async def count_tokens(request: Request) -> Response:
    gateway = gateway_of(request)
    try:
        gateway.authorize(api_key(request))
        body = await read_json(request, gateway.settings.max_body_bytes)
        wire: CountTokensRequest = parse(CountTokensRequest, body)
    except GatewayError as error:
        return error_response(DIALECT, error)
    text, media = counted_text(wire.generate_content_request or wire)
    return JSONResponse({"totalTokens": gateway.tokenizer.count(text) + media * MEDIA_TOKENS})


def _caller(request: Request) -> tuple[Gateway, Caller | None]:
    gateway = gateway_of(request)
    key = api_key(request)
    return gateway, gateway.authorize(key) if key or gateway.settings.pool_mode else None


async def list_models(request: Request) -> Response:
    """`GET /v1beta/models`, and `GET /v1/models` when the key header is Google's."""
    try:
        gateway, caller = _caller(request)
    except GatewayError as error:
        return error_response(DIALECT, error)
    models = _unique(await gateway.models(caller))
    return JSONResponse({"models": [model_object(info) for info in models]})


async def get_model(request: Request) -> Response:
    """`GET /v1beta/models/{name}`: the Qwen model that name is answered by."""
    name = str(request.path_params["target"]).removeprefix("models/")
    try:
        gateway, caller = _caller(request)
        if not name or ":" in name:
            raise BadRequest(f"{name!r} is not a model name", param="name")
        models = _unique(await gateway.models(caller))
        info = _find(gateway, models, name)
    except GatewayError as error:
        return error_response(DIALECT, error)
    return JSONResponse(model_object(info, name))


def _unique(models: list[tuple[Any, ModelInfo]]) -> list[ModelInfo]:
    seen: dict[str, ModelInfo] = {}
    for _, info in models:
        seen.setdefault(info.id, info)
    return list(seen.values())


def _find(gateway: Gateway, models: list[ModelInfo], name: str) -> ModelInfo:
    """The model a chat with this name would use (unknown names get the default model)."""
    by_id = {info.id: info for info in models}
    base = split_suffixes(name).base
    for upstream in gateway.upstreams.values():
        info = by_id.get(upstream.catalogue.resolve(base))
        if info is not None:
            return info
    raise NotFound(f"model {name!r} is not served here; GET /v1beta/models lists them")


def model_object(info: ModelInfo, name: str | None = None) -> dict[str, Any]:
    model_id = name or info.id
    return {
        "name": f"models/{model_id}",
        "version": "1",
        "displayName": info.name or model_id,
        "description": f"Qwen model {info.id}, served by qwen-free-api",
        "inputTokenLimit": INPUT_TOKEN_LIMIT,
        "outputTokenLimit": OUTPUT_TOKEN_LIMIT,
        "supportedGenerationMethods": list(METHODS),
        "thinking": info.thinking,
    }


routes = [
    Route("/v1beta/models", list_models, methods=["GET"]),
    Route("/v1beta/models/{target:path}", model_action, methods=["POST"]),
    Route("/v1beta/models/{target:path}", get_model, methods=["GET"]),
    Route("/v1/models/{target:path}", model_action, methods=["POST"]),
]
