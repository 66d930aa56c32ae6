"""Small request helpers shared by every route: the gateway, keys, bounded JSON bodies."""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import ClientDisconnect, Request

from qwen_free_api.errors import BadRequest, PayloadTooLarge
from qwen_free_api.service import Gateway

# Shape limits of a request body: the code after parsing recurses (depth) and validates every
# value on the event loop (count). Real requests nest ~10 levels and hold far fewer values.
MAX_DEPTH = 100
MAX_VALUES = 200_000
_TOO_DEEP = f"request body is nested over {MAX_DEPTH} levels deep"


def gateway_of(request: Request) -> Gateway:
    gateway: Gateway = request.state.gateway
    return gateway


def bearer(request: Request) -> str | None:
    value = request.headers.get("authorization", "")
    scheme, _, token = value.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    return None


async def read_json(request: Request, limit: int) -> Any:
    """The request body as JSON, refusing bodies over `limit` bytes before reading them all."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"request body is larger than {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise PayloadTooLarge(f"request body is larger than {limit} bytes")
            chunks.append(chunk)
    except ClientDisconnect:  # gone, or too slow (guard.py): nobody reads this answer
        raise BadRequest("the client left before sending the whole body", param="body") from None
    try:
        value = json.loads(b"".join(chunks), parse_constant=_no_constant)
    except ValueError as error:
        raise BadRequest(f"request body is not valid JSON: {error}", param="body") from None
    except RecursionError:  # deeper than Python's own stack
        raise BadRequest(_TOO_DEEP, param="body") from None
    _check_shape(value)
    return value


def _check_shape(value: Any) -> None:
    """Refuse bodies nested deeper than MAX_DEPTH or holding more than MAX_VALUES values."""
    level: list[Any] = [value]
    count = 0
    for _ in range(MAX_DEPTH + 1):
        level = [
            item
            for node in level
            if isinstance(node, list | dict)
            for item in (node.values() if isinstance(node, dict) else node)
        ]
        count += len(level)
        if count > MAX_VALUES:
            raise BadRequest(f"request body holds over {MAX_VALUES} values", param="body")
        if not level:
            return
    raise BadRequest(_TOO_DEEP, param="body")


def _no_constant(name: str) -> Any:
    """NaN and Infinity are not JSON (and could not be written back into an answer)."""
    raise ValueError(f"{name} is not a JSON value")
