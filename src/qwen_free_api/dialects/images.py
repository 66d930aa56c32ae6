"""OpenAI Images: `POST /v1/images/generations`, drawn by either backend.

`response_format` defaults to `b64_json`, which is what the official SDK expects when it sends
none (it reads `data[].b64_json`); `url` returns the upstream's signed URLs as they are, query
string included, because they do not load without it.
"""

from __future__ import annotations

import asyncio
import base64
import time
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from qwen_free_api.dialects import first_error
from qwen_free_api.dialects.openai import DIALECT
from qwen_free_api.drawing import aspect, draw
from qwen_free_api.errors import BadRequest, GatewayError, ProtocolError
from qwen_free_api.respond import error_response
from qwen_free_api.service import Gateway
from qwen_free_api.web import bearer, gateway_of, read_json

MAX_IMAGE_BYTES = 32 * 1024 * 1024


class ImageRequest(BaseModel):
    model_config = ConfigDict(extra="allow")

    prompt: str = Field(min_length=1, max_length=32_000)
    model: str | None = None
    n: int = Field(1, ge=1, le=4)
    size: str | None = None
    response_format: Literal["url", "b64_json"] = "b64_json"


async def generations(request: Request) -> Response:
    gateway = gateway_of(request)
    try:
        caller = gateway.authorize(bearer(request))
        wire = _parse(await read_json(request, gateway.settings.max_body_bytes))
        urls = await draw(
            gateway.pool,
            gateway.upstreams,
            gateway.accounts_of(caller),
            wire.prompt,
            wire.n,
            aspect(wire.size),
        )
        if wire.response_format == "url":
            data = [{"url": url, "revised_prompt": wire.prompt} for url in urls]
        else:
            images = await asyncio.gather(*(_download(gateway, url) for url in urls))
            data = [{"b64_json": image, "revised_prompt": wire.prompt} for image in images]
    except GatewayError as error:
        return error_response(DIALECT, error)
    return JSONResponse({"created": int(time.time()), "data": data})


def _parse(body: Any) -> ImageRequest:
    try:
        return ImageRequest.model_validate(body)
    except ValidationError as error:
        first = first_error(error)
        field = ".".join(str(part) for part in first["loc"]) or "body"
        raise BadRequest(f"invalid `{field}`: {first['msg']}", param=field) from None


async def _download(gateway: Gateway, url: str) -> str:
    """An image the upstream drew (its own CDN, not a client's URL), as base64."""
    reply = await gateway.http.request("GET", url, headers={"accept": "image/*"})
    if reply.status != 200 or len(reply.body) > MAX_IMAGE_BYTES:
        raise ProtocolError(f"the drawn image could not be downloaded (HTTP {reply.status})")
    return base64.b64encode(reply.body).decode()


routes = [
    Route("/v1/images/generations", generations, methods=["POST"]),
    Route("/images/generations", generations, methods=["POST"]),
]
