"""Reading cn frames: every frame resends the whole message list with cumulative text."""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from qwen_free_api.errors import SigningFailed
from qwen_free_api.events import (
    Citation,
    Citations,
    Finish,
    ReasoningDelta,
    StreamEvent,
    TextDelta,
    Usage,
)
from qwen_free_api.snapshots import Differ

log = logging.getLogger(__name__)

ANSWER_MIMES = ("multi_load/iframe", "text/plain")
THINK_TYPES = ("deep_think", "multimodal_chat_think")
DONE = ("complete", "finished")
PLACEHOLDER = re.compile(r"\[\([A-Za-z0-9_]+\)\]")
PARTIAL_PLACEHOLDER = re.compile(r"\[(\([A-Za-z0-9_]*\)?)?$")


@dataclass(slots=True)
class Turn:
    """State of one cn answer while its frames arrive."""

    answer: Differ = field(default_factory=Differ)
    reasoning: Differ = field(default_factory=Differ)
    last_text: str = ""
    cited: set[str] = field(default_factory=set)
    usage: Usage | None = None
    finish: Finish | None = None

    def flush(self) -> list[StreamEvent]:
        """Whatever was held back (a trailing partial character or placeholder)."""
        tail = self.answer.feed(PLACEHOLDER.sub("", self.last_text), final=True)
        return [TextDelta(tail)] if tail else []


def frame_events(frame: dict[str, Any], turn: Turn) -> list[StreamEvent]:
    data = frame.get("data")
    if not isinstance(data, dict):
        return []
    events: list[StreamEvent] = []
    messages = data.get("messages")
    for item in messages if isinstance(messages, list) else []:
        if not isinstance(item, dict):
            continue
        mime = item.get("mime_type")
        if mime == "bar/iframe":
            events.extend(_sources(item, turn))
        elif mime in ANSWER_MIMES:
            events.extend(_answer(item, turn))
    _read_usage(data, turn)
    if _blocked(frame, data):
        turn.finish = Finish("content_filter", turn.usage)
    elif data.get("status") in DONE and turn.finish is None:
        turn.finish = Finish("stop", turn.usage)
    elif turn.finish is not None:
        turn.finish = Finish(turn.finish.reason, turn.usage)
    return events


def _answer(item: dict[str, Any], turn: Turn) -> list[StreamEvent]:
    events: list[StreamEvent] = []
    meta = item.get("meta_data")
    thought = _thinking(meta) if isinstance(meta, dict) else ""
    if thought:
        piece = turn.reasoning.feed(thought)
        if piece:
            events.append(ReasoningDelta(piece))
    content = item.get("content")
    if isinstance(content, str) and content:
        final = item.get("status") in DONE
        text = PLACEHOLDER.sub("", content)
        turn.last_text = content
        if not final:
            text = PARTIAL_PLACEHOLDER.sub("", text)
        piece = turn.answer.feed(text, final=final)
        if piece:
            events.append(TextDelta(piece))
    return events


def _thinking(meta: dict[str, Any]) -> str:
    items = meta.get("multi_load")
    if not isinstance(items, list):
        return ""
    for wanted in THINK_TYPES:
        for entry in items:
            if isinstance(entry, dict) and entry.get("type") == wanted:
                content = entry.get("content")
                if isinstance(content, dict):
                    text = content.get("think_content") or content.get("content")
                    if isinstance(text, str):
                        return text
    return ""


def _sources(item: dict[str, Any], turn: Turn) -> list[StreamEvent]:
    meta = item.get("meta_data")
    sources = meta.get("sources") if isinstance(meta, dict) else None
    if not isinstance(sources, list):
        return []
    fresh: list[Citation] = []
    for source in sources:
        if not isinstance(source, dict):
            continue
        url = source.get("url") or source.get("link") or source.get("web_url")
        if isinstance(url, str) and url and url not in turn.cited:
            turn.cited.add(url)
            fresh.append(Citation(url, str(source.get("title") or "")))
    return [Citations(tuple(fresh))] if fresh else []


def _read_usage(data: dict[str, Any], turn: Turn) -> None:
    extra = data.get("extra_info")
    odps = extra.get("chat_odps") if isinstance(extra, dict) else None
    total = odps.get("total_usage") if isinstance(odps, dict) else None
    if isinstance(total, dict):
        prompt, completion = total.get("prompt_tokens"), total.get("completion_tokens")
        if isinstance(prompt, int) and isinstance(completion, int):
            turn.usage = Usage(prompt, completion)


def _blocked(frame: dict[str, Any], data: dict[str, Any]) -> bool:
    audit = data.get("audit_info")
    if isinstance(audit, dict) and audit.get("problem_code") == "blocked":
        return True
    communication = frame.get("communication")
    return isinstance(communication, dict) and communication.get("disconnection_signal") == 1


async def refuse_canned(
    events: AsyncIterator[StreamEvent], canned: list[str]
) -> AsyncIterator[StreamEvent]:
    """Hold an answer back while it could still be one of the known canned refusals.

    A cn server that dislikes the request's signature may answer HTTP 200 with a fixed
    sentence instead of an error. Such an answer becomes a signing failure (counted against
    the account, with a warning) instead of reaching the client as the model's words.
    """
    if not canned:
        async for event in events:
            yield event
        return
    held: list[StreamEvent] | None = []
    text = ""
    async for event in events:
        if held is None:
            yield event
            continue
        held.append(event)
        if isinstance(event, TextDelta):
            text += event.text
            if not any(c.startswith(text.strip()) for c in canned):
                for earlier in held:
                    yield earlier
                held = None
        elif isinstance(event, Finish):
            if text.strip() in canned:
                log.warning("cn answered with a canned refusal: the signature was probably refused")
                raise SigningFailed("the cn backend answered with a canned refusal (signing)")
            for earlier in held:
                yield earlier
