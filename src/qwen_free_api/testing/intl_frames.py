"""intl (chat.qwen.ai) stream frames: `response.created`, phases with incremental deltas, usage."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

from qwen_free_api.testing.intl_errors import error_payload
from qwen_free_api.testing.script import Script, completion_total, split_pieces, tokens_after
from qwen_free_api.testing.stream import FramePlan, Pause, Step, assemble

CONTENT_TYPE = "text/event-stream; charset=utf-8"
HEARTBEAT = b": ping\n\n"
DONE = b"data: [DONE]\n\n"
SUMMARY_TITLE = "Considering the request"


def encode(payload: dict[str, Any]) -> bytes:
    """One `data: ` line (Python-style `, ` / `: ` separators, UTF-8 unescaped) and a blank line."""
    return b"data: " + json.dumps(payload, ensure_ascii=False).encode() + b"\n\n"


def created_frame(chat_id: str, parent_id: str, response_id: str) -> bytes:
    """The first frame, spaced exactly like the capture, including the space before the newline."""
    quoted = [json.dumps(v) for v in (chat_id, parent_id, response_id)]
    return (
        f'data: {{"response.created":{{"chat_id": {quoted[0]}, "parent_id": {quoted[1]}, '
        f'"response_id":{quoted[2]}, "response_index": "0"}}}} \n\n'
    ).encode()


@dataclass
class IntlTurn:
    """What one answered intl request is about."""

    chat_id: str
    response_id: str
    parent_id: str  # the id the server gives the user message
    answer: str
    reasoning: str
    reasoning_format: str  # "summary" or "detail"
    phases: bool
    prompt_tokens: int


class IntlStream:
    """Builds the frames of one intl answer."""

    def __init__(self, turn: IntlTurn, script: Script) -> None:
        self.turn = turn
        self.script = script
        self.pieces = split_pieces(turn.answer, script.piece)
        self.completion = completion_total(script, len(self.pieces))
        self.reasoning_pieces = split_pieces(turn.reasoning, script.piece) if turn.phases else []

    def _usage(self, output: int, reasoning: int) -> dict[str, Any]:
        prompt = self.turn.prompt_tokens
        details: dict[str, int] = {"text_tokens": output}
        if self.reasoning_pieces:
            details = {"reasoning_tokens": reasoning, "text_tokens": output}
        return {
            "input_tokens": prompt,
            "output_tokens": output,
            "characters": 0,
            "total_tokens": prompt + output,
            "input_tokens_details": {"text_tokens": prompt},
            "output_tokens_details": details,
            "prompt_tokens_details": {"cached_tokens": 0},
        }

    def _frame(
        self, delta: dict[str, Any], usage: dict[str, Any] | None = None, *, stamp: bool = True
    ) -> bytes:
        if not self.turn.phases:
            delta = {k: v for k, v in delta.items() if k != "phase"}
        payload: dict[str, Any] = {
            "choices": [{"delta": delta}],
            "response_id": self.turn.response_id,
        }
        if usage is not None and self.script.usage:
            payload["usage"] = usage
        if stamp:
            payload["timestamp"] = int(time.time())
        return encode(payload)

    def keepalives(self) -> list[Step]:
        """Waiting for the first content: a keep-alive every `keepalive_every` seconds."""
        steps: list[Step] = []
        left = self.script.first_byte_delay
        every = self.script.keepalive_every
        while every > 0 and left > every:
            info = {
                "action": "keep_alive",
                "chat_id": self.turn.chat_id,
                "response_id": self.turn.response_id,
                "timestamp": int(time.time()),
            }
            steps += [Pause(every), encode({"response.info": info})]
            left -= every
        if left > 0:
            steps.append(Pause(left))
        return steps

    def search_frame(self) -> bytes:
        """The web search tool result (`name == "web_search"`)."""
        delta = {
            "role": "assistant",
            "content": "",
            "phase": "web_search",
            "name": "web_search",
            "extra": {"web_search_info": list(self.script.search_results or [])},
            "status": "finished",
        }
        return self._frame(delta)

    def reasoning_frames(self) -> list[bytes]:
        """`thinking_summary` with cumulative arrays, or `think` with incremental content."""
        summary = self.turn.reasoning_format == "summary"
        frames = []
        text = ""
        for done, piece in enumerate(self.reasoning_pieces, start=1):
            text += piece
            delta: dict[str, Any] = {"role": "assistant", "content": piece, "phase": "think"}
            if summary:
                extra = {
                    "summary_title": {"content": [SUMMARY_TITLE]},
                    "summary_thought": {"content": text.split("\n")},
                }
                delta = {"role": "assistant", "content": "", "phase": "thinking_summary"}
                delta["extra"] = extra
            delta["status"] = "typing"
            frames.append(self._frame(delta, self._usage(0, done)))
        if frames:
            phase = "thinking_summary" if summary else "think"
            end = {"role": "assistant", "content": "", "phase": phase, "status": "finished"}
            frames.append(self._frame(end))
        return frames

    def answer_frames(self) -> list[list[bytes]]:
        """One incremental `answer` frame per piece, with cumulative usage."""
        count = len(self.pieces)
        reasoning = len(self.reasoning_pieces)
        groups = []
        for done, piece in enumerate(self.pieces, start=1):
            delta = {"role": "assistant", "content": piece, "phase": "answer", "status": "typing"}
            usage = self._usage(tokens_after(self.completion, done, count), reasoning)
            groups.append([self._frame(delta, usage)])
        return groups

    def tail(self) -> list[bytes]:
        """Two empty typing frames (as captured), `finished`, and optionally `[DONE]`."""
        usage = self._usage(self.completion, len(self.reasoning_pieces))
        empty = {"role": "assistant", "content": "", "phase": "answer", "status": "typing"}
        end = {"content": "", "role": "assistant", "status": "finished", "phase": "answer"}
        frames = [
            self._frame(empty, usage),
            self._frame(empty, usage),
            self._frame(end, stamp=False),
        ]
        if self.script.done_marker:
            frames.append(DONE)
        return frames

    def steps(self, error: str | None = None) -> list[Step]:
        """Every step of this answer, shaped by the script (error = a frame error name)."""
        script = self.script
        error_frame = encode(error_payload(error, self.turn.response_id)) if error else None
        if error_frame is not None and script.error_after <= 0:
            return assemble(FramePlan(), script, error=error_frame)
        created = created_frame(self.turn.chat_id, self.turn.parent_id, self.turn.response_id)
        head: list[Step] = [created, *self.keepalives()]
        if script.search_results:
            head.append(self.search_frame())
        head.extend(self.reasoning_frames())
        plan = FramePlan(head=head, answers=self.answer_frames(), tail=self.tail())
        return assemble(plan, script, error=error_frame, heartbeat=HEARTBEAT)
