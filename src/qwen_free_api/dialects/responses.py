"""OpenAI Responses API: `POST /v1/responses` (and `/responses`), streamed or whole.

The key is a Bearer token. Parsing lives in responses_wire.py, rendering (typed SSE events with
sequence numbers, the response object, `response.failed`) in responses_render.py. The response
id is `resp_` + the conversation id, so `previous_response_id` continues the conversation.
"""

from __future__ import annotations

import time

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from qwen_free_api.dialects import Meta, openai
from qwen_free_api.dialects.responses_render import Turn, dialect_for
from qwen_free_api.dialects.responses_wire import parse_request, to_chat
from qwen_free_api.errors import BadRequest, GatewayError
from qwen_free_api.respond import error_response, respond
from qwen_free_api.web import bearer, gateway_of, read_json


async def create_response(request: Request) -> Response:
    gateway = gateway_of(request)
    try:
        caller = gateway.authorize(bearer(request))
        wire = parse_request(await read_json(request, gateway.settings.max_body_bytes))
        translated = to_chat(wire)
        prepared = await gateway.prepare(translated.chat, caller)
    except BadRequest as error:
        if error.param == "conversation_id":  # the previous response is not known (any more)
            error = BadRequest(
                "previous_response_id is unknown, expired or not yours; send the whole input",
                param="previous_response_id",
            )
        return error_response(openai.DIALECT, error)
    except GatewayError as error:
        return error_response(openai.DIALECT, error)
    settings = gateway.settings
    chat = translated.chat
    meta = Meta(
        model=wire.model,
        created=int(time.time()),
        include_usage=True,
        reasoning_in_content=False,
        estimate=lambda text, reasoning: gateway.estimate(chat, text, reasoning),
    )
    turn = Turn(wire, translated.names, translated.summary)
    response = await respond(
        gateway.stream(prepared),
        dialect_for(meta, turn),
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
    """The Responses API shares OpenAI's model list."""
    return await openai.list_models(request)


routes = [
    Route("/v1/responses", create_response, methods=["POST"]),
    Route("/responses", create_response, methods=["POST"]),
]
