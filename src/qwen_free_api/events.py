"""The canonical stream of events every upstream produces and every dialect renders."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Literal

from qwen_free_api.chat import ToolCall

FinishReason = Literal["stop", "length", "content_filter", "tool_calls", "stop_sequence"]


@dataclass(frozen=True, slots=True)
class Usage:
    prompt_tokens: int
    completion_tokens: int
    reasoning_tokens: int | None = None
    estimated: bool = False  # True when counted locally, not reported by the upstream

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


@dataclass(frozen=True, slots=True)
class Citation:
    url: str
    title: str = ""


@dataclass(frozen=True, slots=True)
class Opened:
    """The upstream accepted the request; `conversation_id` lets a client continue it."""

    conversation_id: str
    upstream_model: str


@dataclass(frozen=True, slots=True)
class TextDelta:
    text: str


@dataclass(frozen=True, slots=True)
class ReasoningDelta:
    text: str


@dataclass(frozen=True, slots=True)
class Citations:
    items: tuple[Citation, ...]


@dataclass(frozen=True, slots=True)
class ToolCalled:
    """The model called a tool; the call is whole (arguments are complete, valid JSON)."""

    call: ToolCall


@dataclass(frozen=True, slots=True)
class Heartbeat:
    """The upstream is alive but said nothing new (lets renderers send a keep-alive)."""


@dataclass(frozen=True, slots=True)
class Finish:
    reason: FinishReason = "stop"
    usage: Usage | None = None
    stop_sequence: str | None = None  # which of the request's stop sequences ended the answer


StreamEvent = Opened | TextDelta | ReasoningDelta | Citations | ToolCalled | Heartbeat | Finish


@dataclass(slots=True)
class Completion:
    """A whole answer: the fold of a stream."""

    conversation_id: str = ""
    upstream_model: str = ""
    text: str = ""
    reasoning: str = ""
    citations: list[Citation] = field(default_factory=list)
    tool_calls: list[ToolCall] = field(default_factory=list)
    finish: Finish = field(default_factory=Finish)


async def collect(events: AsyncIterator[StreamEvent]) -> Completion:
    """Fold a stream into one Completion (the non-streaming path)."""
    done = Completion()
    text: list[str] = []
    reasoning: list[str] = []
    async for event in events:
        match event:
            case Opened(conversation_id=cid, upstream_model=model):
                done.conversation_id, done.upstream_model = cid, model
            case TextDelta(text=piece):
                text.append(piece)
            case ReasoningDelta(text=piece):
                reasoning.append(piece)
            case Citations(items=items):
                done.citations.extend(items)
            case ToolCalled(call=call):
                done.tool_calls.append(call)
            case Finish():
                done.finish = event
            case Heartbeat():
                pass
    done.text, done.reasoning = "".join(text), "".join(reasoning)
    return done
