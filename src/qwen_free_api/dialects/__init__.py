"""Client dialects: each parses its own requests and renders events and errors its own way."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError
from pydantic_core import ErrorDetails

from qwen_free_api.errors import GatewayError
from qwen_free_api.events import Completion, StreamEvent, Usage
from qwen_free_api.sse import Frame


@dataclass(frozen=True, slots=True)
class Meta:
    """Per-response facts a renderer needs besides the events."""

    model: str  # the name the client asked for
    created: int
    include_usage: bool
    reasoning_in_content: bool
    estimate: Callable[[str, str], Usage]  # (text, reasoning) → locally counted usage


@dataclass(frozen=True, slots=True)
class Dialect:
    """The contract every client dialect module fulfils."""

    name: str
    render_stream: Callable[[AsyncIterator[StreamEvent], Meta], AsyncIterator[Frame]]
    render_completion: Callable[[Completion, Meta], dict[str, Any]]
    render_error: Callable[[GatewayError], dict[str, Any]]
    render_stream_error: Callable[[GatewayError], list[Frame]]


LISTED_ERRORS = 100


def first_error(error: ValidationError) -> ErrorDetails:
    """The first problem of a request body. Listing them all takes seconds for a body with
    100 000 bad values (on the event loop), so past LISTED_ERRORS the body itself is named."""
    count = error.error_count()
    if count > LISTED_ERRORS:
        return ErrorDetails(type="many", loc=(), msg=f"{count} values are invalid", input=None)
    return error.errors(include_url=False, include_input=False)[0]
