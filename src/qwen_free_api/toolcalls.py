"""Tool calls read back out of a model's answer, while it streams.

The model was asked (see tool_prompt.py) to call tools with a block like

    [function_calls]
    [call:get_weather]{"city": "Paris"}[/call]
    [/function_calls]

and Qwen models sometimes answer in their native form `<tool_call>{"name": …, "arguments": …}
</tool_call>` instead, so both are read. Text before a block streams through; text that might be
the start of a marker is held back until it is clearly not one, so no partial markup ever
reaches a client. Once a block starts, nothing but calls comes out; if no call could be read
from it, the held text is released as plain text at the end.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterable
from typing import Any

from qwen_free_api.chat import Tool, ToolCall
from qwen_free_api.events import TextDelta, ToolCalled

BLOCK_OPEN = "[function_calls]"
BLOCK_CLOSE = "[/function_calls]"
CALL_OPEN = "[call"
CALL_CLOSE = "[/call]"
NATIVE_OPEN = "<tool_call>"
NATIVE_CLOSE = "</tool_call>"
MARKERS = (BLOCK_OPEN, CALL_OPEN + ":", CALL_OPEN + "=", NATIVE_OPEN)
LONGEST = max(len(m) for m in MARKERS)
CALL_HEAD = re.compile(r"\[call[:=]\s*([^\]\s]+)\s*\]")
FENCE = re.compile(r"^\s*```[a-zA-Z]*\s*|\s*```\s*$")
NOISE = (BLOCK_OPEN, BLOCK_CLOSE, CALL_CLOSE, NATIVE_CLOSE, "```json", "```")

Parsed = TextDelta | ToolCalled


class ToolCallParser:
    """Feed answer text as it arrives; get text deltas and whole tool calls back."""

    def __init__(self, tools: Iterable[Tool]) -> None:
        self._names = {tool.name: tool.name for tool in tools}
        self._folded = {name.lower(): name for name in self._names}
        self._held = ""  # text that may begin a marker
        self._block: str | None = None  # text since the first marker, once one was seen
        self._since_marker = ""  # all of it, read or not: the text if no call can be read
        self.calls: list[ToolCall] = []

    def feed(self, text: str) -> list[Parsed]:
        if self._block is not None:
            self._block += text
            self._since_marker += text
            return self._take_calls(final=False)
        held = self._held + text
        start = _first_marker(held)
        if start is None:
            keep = _partial_marker(held)
            self._held = held[keep:]
            return [TextDelta(held[:keep])] if keep else []
        self._held, self._block = "", held[start:]
        self._since_marker = self._block
        out: list[Parsed] = [TextDelta(held[:start])] if start else []
        out.extend(self._take_calls(final=False))
        return out

    def finish(self) -> list[Parsed]:
        """The answer ended: read what is left; unreadable markup goes out as text."""
        if self._block is None:
            held, self._held = self._held, ""
            return [TextDelta(held)] if held else []
        out = self._take_calls(final=True)
        if not self.calls and self._since_marker:
            out.append(TextDelta(self._since_marker))  # unreadable calls included: no loss
        self._block = self._since_marker = ""
        return out

    def _take_calls(self, *, final: bool) -> list[Parsed]:
        out: list[Parsed] = []
        assert self._block is not None
        while True:
            rest = _skip_noise(self._block)
            found = self._next_call(rest, final=final)
            if found is None:
                self._block = rest if self.calls else self._block
                return out
            call, used = found
            self._block = rest[used:]
            if call is not None:
                self.calls.append(call)
                out.append(ToolCalled(call))

    def _next_call(self, text: str, *, final: bool) -> tuple[ToolCall | None, int] | None:
        """The call at the start of `text` and the characters it used; None: not there yet."""
        if text.startswith(NATIVE_OPEN):
            return self._native_call(text, final=final)
        head = CALL_HEAD.match(text)
        if head is None:
            return None
        end = _object_end(text, head.end())
        if end is None:
            return None
        arguments = repair_json(text[head.end() : end])
        used = _after(text, end, CALL_CLOSE, final=final)
        if used is None:
            return None
        if arguments is None:
            return None, used  # unreadable arguments: skip this call
        return self._call(head.group(1), arguments), used

    def _native_call(self, text: str, *, final: bool) -> tuple[ToolCall | None, int] | None:
        end = _object_end(text, len(NATIVE_OPEN))
        if end is None:
            return None
        used = _after(text, end, NATIVE_CLOSE, final=final)
        if used is None:
            return None
        body = repair_json(text[len(NATIVE_OPEN) : end])
        if body is None or not isinstance(body.get("name"), str):
            return None, used
        arguments = body.get("arguments", body.get("parameters", {}))
        if isinstance(arguments, str):
            arguments = repair_json(arguments) or {}
        if not isinstance(arguments, dict):
            return None, used
        return self._call(body["name"], arguments), used

    def _call(self, name: str, arguments: dict[str, Any]) -> ToolCall:
        return ToolCall(
            id="call_" + uuid.uuid4().hex[:24],
            name=self._known_name(name),
            arguments=json.dumps(arguments, ensure_ascii=False),
        )

    def _known_name(self, name: str) -> str:
        name = name.strip().strip("`\"'")
        for candidate in (name, name.removeprefix("functions."), name.split(":")[-1]):
            if candidate in self._names:
                return candidate
            folded = self._folded.get(candidate.lower())
            if folded:
                return folded
        return name


def _first_marker(text: str) -> int | None:
    found = [i for i in (text.find(m) for m in MARKERS) if i >= 0]
    return min(found) if found else None


def _partial_marker(text: str) -> int:
    """Where a possible start of a marker begins at the end of `text` (len(text) if none)."""
    for start in range(max(0, len(text) - LONGEST + 1), len(text)):
        tail = text[start:]
        if any(marker.startswith(tail) for marker in MARKERS):
            return start
    return len(text)


def _skip_noise(text: str) -> str:
    changed = True
    while changed:
        changed = False
        stripped = text.lstrip()
        for noise in NOISE:
            if stripped.startswith(noise):
                stripped = stripped[len(noise) :]
                changed = True
        text = stripped
    return text


def _after(text: str, end: int, closer: str, *, final: bool) -> int | None:
    """Characters used by a call ending at `end`, its closing tag included when present."""
    rest = text[end:]
    stripped = rest.lstrip(" \t\r\n`")
    gap = len(rest) - len(stripped)
    if stripped.startswith(closer):
        return end + gap + len(closer)
    if not final and closer.startswith(stripped):
        return None  # the closing tag may still be on its way
    return end


def _object_end(text: str, start: int) -> int | None:
    """End of the balanced JSON object starting at the first `{` after `start`, if complete."""
    begin = text.find("{", start)
    if begin < 0 or text[start:begin].strip(" \t\r\n`json"):
        return None
    depth, quote, escaped = 0, "", False
    for index in range(begin, len(text)):
        char = text[index]
        if quote:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == quote:
                quote = ""
        elif char == '"':
            quote = char
        elif char == "{":
            depth += 1
        elif char == "}":
            depth -= 1
            if depth == 0:
                return index + 1
    return None


def repair_json(text: str) -> dict[str, Any] | None:
    """A JSON object from text a model wrote, fixing the mistakes models commonly make."""
    text = FENCE.sub("", text.strip()).strip()
    begin = text.find("{")
    if begin > 0:
        text = text[begin:]
    for fix in _FIXES:
        text = fix(text)
        try:
            value = json.loads(text, strict=False)
        except ValueError:
            continue
        except RecursionError:  # nested deeper than Python's stack: not a call's arguments
            return None
        return value if isinstance(value, dict) else None
    return None


def _same(text: str) -> str:
    return text


def _trailing_commas(text: str) -> str:
    return re.sub(r",\s*([}\]])", r"\1", text)


def _bare_keys(text: str) -> str:
    return re.sub(r"([{,]\s*)([A-Za-z_][A-Za-z0-9_\-]*)\s*:", r'\1"\2":', text)


def _single_quotes(text: str) -> str:
    return text.replace("'", '"') if '"' not in text else text


def _python_literals(text: str) -> str:
    return re.sub(
        r"\b(True|False|None)\b",
        lambda m: {"True": "true", "False": "false"}.get(m.group(1), "null"),
        text,
    )


_FIXES = (_same, _trailing_commas, _single_quotes, _bare_keys, _python_literals)
