"""Shape a model's raw answer into what the request asked for.

Between the upstream's events and any client dialect: tool calls are read out of the text
(toolcalls.py), JSON mode answers are reduced to the JSON value, and the answer is cut at the
first stop sequence. Requests that ask for none of these pass through untouched.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import AsyncIterator

from qwen_free_api.chat import ChatRequest, ToolCall
from qwen_free_api.events import Finish, StreamEvent, TextDelta, ToolCalled
from qwen_free_api.toolcalls import ToolCallParser, repair_json


class Shaper:
    """The state of one answer's shaping; `text` and `finish` return what to send on."""

    def __init__(self, chat: ChatRequest) -> None:
        self._parser = ToolCallParser(chat.tools) if chat.calls_tools else None
        self._stops = chat.stop
        self._held = ""  # text that may begin a stop sequence
        self._stopped: str | None = None
        self._json: list[str] | None = [] if chat.json_schema is not None else None
        self.text_parts: list[str] = []  # what was sent, for the conversation record
        self.calls: list[ToolCall] = []

    def text(self, text: str) -> list[StreamEvent]:
        pieces = self._parser.feed(text) if self._parser else [TextDelta(text)]
        return [out for piece in pieces for out in self._piece(piece)]

    def finish(self, finish: Finish) -> list[StreamEvent]:
        out: list[StreamEvent] = []
        for piece in self._parser.finish() if self._parser else []:
            out.extend(self._piece(piece))
        if self._held and self._stopped is None:
            out.extend(self._send(self._held))
        if self._json is not None:
            answer = json_answer("".join(self._json))
            self._json = None
            out.extend(self._send(answer) if answer else [])
        reason = finish.reason
        if self.calls:
            reason = "tool_calls"
        elif self._stopped is not None:
            reason = "stop_sequence"
        out.append(dataclasses.replace(finish, reason=reason, stop_sequence=self._stopped))
        return out

    def _piece(self, piece: TextDelta | ToolCalled) -> list[StreamEvent]:
        if self._stopped is not None:
            return []
        if isinstance(piece, ToolCalled):
            self.calls.append(piece.call)
            return [piece]
        return self._cut(piece.text)

    def _cut(self, text: str) -> list[StreamEvent]:
        if not self._stops:
            return self._send(text)
        text = self._held + text
        hits = [(text.find(s), s) for s in self._stops if s and s in text]
        if hits:
            index, stop = min(hits)
            self._stopped, self._held = stop, ""
            return self._send(text[:index])
        keep = len(text)
        for start in range(max(0, len(text) - max(map(len, self._stops)) + 1), len(text)):
            if any(s.startswith(text[start:]) for s in self._stops):
                keep = start
                break
        self._held = text[keep:]
        return self._send(text[:keep])

    def _send(self, text: str) -> list[StreamEvent]:
        if not text:
            return []
        if self._json is not None:
            self._json.append(text)
            return []
        self.text_parts.append(text)
        return [TextDelta(text)]


def json_answer(text: str) -> str:
    """The JSON value in a JSON-mode answer, without fences or prose around it."""
    stripped = text.strip()
    try:
        json.loads(stripped)
        return stripped
    except (ValueError, RecursionError):  # RecursionError: nested too deeply to check
        pass
    start = min((i for i in (stripped.find("["), stripped.find("{")) if i >= 0), default=-1)
    if start >= 0:
        try:
            found, _ = json.JSONDecoder().raw_decode(stripped[start:])
            return json.dumps(found, ensure_ascii=False)
        except (ValueError, RecursionError):
            pass
    value = repair_json(stripped)
    if value is not None:
        return json.dumps(value, ensure_ascii=False)
    return stripped


def needs_shaping(chat: ChatRequest) -> bool:
    return chat.calls_tools or chat.json_schema is not None or bool(chat.stop)


async def shape(events: AsyncIterator[StreamEvent], shaper: Shaper) -> AsyncIterator[StreamEvent]:
    async for event in events:
        if isinstance(event, TextDelta):
            for out in shaper.text(event.text):
                yield out
        elif isinstance(event, Finish):
            for out in shaper.finish(event):
                yield out
        else:
            yield event
