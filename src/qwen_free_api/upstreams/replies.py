"""Reading upstream replies: refuse what is not an event stream, decode each JSON frame."""

from __future__ import annotations

from typing import Any

from qwen_free_api import jsonfast
from qwen_free_api.credentials import Credential
from qwen_free_api.errors import ProtocolError
from qwen_free_api.upstreams import failures
from qwen_free_api.upstreams.http import Reply

ERROR_BODY_LIMIT = 64 << 10


async def expect_stream(reply: Reply, credential: Credential) -> None:
    """Raise the typed error for a non-200 reply or a 200 that is not an event stream."""
    if reply.status != 200:
        body = await reply.read(limit=ERROR_BODY_LIMIT)
        raise failures.from_status(reply.status, body, credential=credential.masked)
    if "event-stream" not in reply.content_type:
        body = await reply.read(limit=ERROR_BODY_LIMIT)
        raise failures.from_body(reply.content_type, body, credential=credential.masked)


def json_frame(data: str) -> dict[str, Any]:
    """One frame's JSON object; anything else is a protocol error."""
    try:
        frame = jsonfast.loads(data)
    except (ValueError, RecursionError) as error:  # RecursionError: nested too deeply
        raise ProtocolError(
            f"the upstream sent a frame that is not JSON ({len(data)} bytes)"
        ) from error
    if not isinstance(frame, dict):
        raise ProtocolError("the upstream sent a frame that is not a JSON object")
    return frame
