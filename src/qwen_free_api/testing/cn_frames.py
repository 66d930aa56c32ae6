"""cn (chat2.qianwen.com) stream frames: full-resend message lists with cumulative answer text."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from qwen_free_api.testing.script import (
    Script,
    completion_total,
    split_pieces,
)
from qwen_free_api.testing.stream import FramePlan, Step, assemble

CONTENT_TYPE = "text/event-stream;charset=UTF-8"
COMPLETE_TRUE = b"event:complete\ndata:true\n\n"
HEARTBEAT = b": ping\n\n[heartbeat]\n\n"
BACKEND_MODEL = "qwenchat-3p7-260602-b300"
FRAME_ERRORS: dict[str, tuple[int, str]] = {
    "sign_soft": (1001, "签名错误"),
    "not_login": (401, "未登录"),
    "error_frame": (500, "系统繁忙"),
}
"""Errors the cn server reports inside the stream: name -> (error_code, error_msg).

`not_login` is an assumption: the real logged-out chat body is unknown (protocol §8.8)."""

_SIGNAL = {
    "meta_data": {"operation_types": [["regenerate"], ["enable_web_search"]]},
    "mime_type": "signal/post",
    "status": "complete",
}


def encode(payload: dict[str, Any], *, event: str | None = "message") -> bytes:
    """One SSE event: optional `event:` line, `data:` without a space, compact JSON, blank line."""
    data = json.dumps(payload, ensure_ascii=False, separators=(",", ":"))
    head = f"event:{event}\n" if event else ""
    return f"{head}data:{data}\n\n".encode()


def error_payload(code: int, msg: str, communication: dict[str, Any]) -> dict[str, Any]:
    """The body of an in-stream error frame."""
    return {
        "communication": communication,
        "data": {"messages": [], "status": "processing"},
        "error_code": code,
        "error_msg": msg,
        "success": False,
    }


def first_error_frame(name: str, *, no_event: bool = False) -> bytes:
    """An error frame sent instead of any content (the captured 1001 frame has only `resid`)."""
    code, msg = FRAME_ERRORS[name]
    return encode(error_payload(code, msg, {"resid": 0}), event=None if no_event else "message")


@dataclass
class CnTurn:
    """What one answered cn request is about."""

    reqid: str
    sessionid: str
    answer: str
    reasoning: str
    think_kind: str  # "multimodal_chat_think" or "deep_think"
    prompt_tokens: int


class CnStream:
    """Builds the frames of one cn answer; `resid` counts up from 0 across every frame."""

    def __init__(self, turn: CnTurn, script: Script) -> None:
        self.turn = turn
        self.script = script
        self.resid = 0
        self.thinking = bool(turn.reasoning)
        self.search = bool(script.search_results)
        self.seq = turn.think_kind + ("_1" if turn.think_kind == "multimodal_chat_think" else "")

    # --- message items ---------------------------------------------------------------------

    def _communication(self, **extra: Any) -> dict[str, Any]:
        comm = {
            "chat_assistant_name": "MainChatAgent",
            "reqid": self.turn.reqid,
            "resid": self.resid,
            "sessionid": self.turn.sessionid,
            **extra,
        }
        self.resid += 1
        return comm

    def _progress(self, status: str, *, thinking: bool = False, text: str = "") -> dict[str, Any]:
        kind = "bar_update"
        if self.thinking and text:
            kind = "deep_thinking" if thinking else "deep_thought"
        return {
            "meta_data": {"elements": [{"type": "text", "content": text}], "type": kind},
            "mime_type": "bar/progress",
            "status": status,
        }

    def _answer(self, text: str, think: str, *, done: bool, think_done: bool) -> dict[str, Any]:
        meta: dict[str, Any] = {}
        content = text
        if self.thinking:
            content = f"[({self.seq})]{text}"
            status = "complete" if think_done else "processing"
            think_item = {"think_content": think, "status": status, "timecost": 100 * len(think)}
            meta = {
                "multi_load": [
                    {"type": self.turn.think_kind, "source_seq": self.seq, "content": think_item}
                ]
            }
        return {
            "content": content,
            "meta_data": meta,
            "mime_type": "multi_load/iframe",
            "status": "complete" if done else "processing",
        }

    def _messages(self, *, done: bool, thinking: bool = False) -> list[dict[str, Any]]:
        # Progress texts live only in bar/* items and must never reach the answer.
        progress_text = "正在思考" if thinking else "正在搜索" if self.search else "正在生成回答"
        status = "complete" if done else "processing"
        items = [_SIGNAL, self._progress(status, thinking=thinking, text=progress_text)]
        if self.search and not thinking:
            sources = {"sources": list(self.script.search_results or [])}
            items.append({"meta_data": sources, "mime_type": "bar/iframe", "status": "complete"})
        if self.thinking:
            plan_status = "processing" if thinking else "complete"
            items.append(
                {
                    "content": "",
                    "meta_data": {},
                    "mime_type": "plan_cot/post",
                    "status": plan_status,
                }
            )
        return items

    def _frame(self, messages: list[dict[str, Any]], *, done: bool = False) -> dict[str, Any]:
        return {
            "communication": self._communication(),
            "data": {"messages": messages, "status": "complete" if done else "processing"},
            "error_code": 0,
            "error_msg": "",
            "success": True,
        }

    def _encode(self, payload: dict[str, Any]) -> bytes:
        return encode(payload, event=None if self.script.no_event_lines else "message")

    # --- frames ----------------------------------------------------------------------------

    def opening(self) -> bytes:
        """resid 0: the signal and an empty progress bar, as captured."""
        return self._encode(self._frame([_SIGNAL, self._progress("processing")]))

    def reasoning_frames(self) -> list[bytes]:
        """Cumulative thinking in `meta_data.multi_load`; the answer holds only the placeholder."""
        frames = []
        think = ""
        for piece in split_pieces(self.turn.reasoning, self.script.piece):
            think += piece
            items = self._messages(done=False, thinking=True)
            items.append(self._answer("", think, done=False, think_done=False))
            frames.append(self._encode(self._frame(items)))
        return frames

    def answer_frame(self, text: str) -> bytes:
        """One cumulative answer snapshot."""
        items = self._messages(done=False)
        items.append(self._answer(text, self.turn.reasoning, done=False, think_done=True))
        return self._encode(self._frame(items))

    def final_payload(self) -> dict[str, Any]:
        """The last frame: everything complete, audit info and (optionally) usage."""
        items = self._messages(done=True)
        items.append(
            self._answer(self.turn.answer, self.turn.reasoning, done=True, think_done=True)
        )
        payload = self._frame(items, done=True)
        payload["data"]["audit_info"] = {"error_code": 0}
        if self.script.usage:
            pieces = len(split_pieces(self.turn.answer, self.script.piece))
            completion = completion_total(self.script, pieces)
            prompt = self.turn.prompt_tokens
            usage = {
                "completion_tokens": completion,
                "prompt_tokens": prompt,
                "total_tokens": prompt + completion,
            }
            model_info = {"model": BACKEND_MODEL, "audit_result": 1, "session_result": 1}
            payload["data"]["extra_info"] = {
                "chat_odps": {"total_usage": usage, "model_info": model_info}
            }
        return payload

    def moderation_frame(self, text: str) -> bytes:
        """A blocked answer: audit_info problem_code and the disconnection signal."""
        items = self._messages(done=True)
        items.append(self._answer(text, self.turn.reasoning, done=True, think_done=True))
        payload = {
            "communication": self._communication(disconnection_signal=1),
            "data": {
                "messages": items,
                "status": "complete",
                "audit_info": {"problem_code": "blocked", "error_code": 1},
            },
            "error_code": 0,
            "error_msg": "",
            "success": True,
        }
        return self._encode(payload)

    def error_frame(self, name: str) -> bytes:
        """An in-stream error after some content."""
        code, msg = FRAME_ERRORS[name]
        return self._encode(error_payload(code, msg, self._communication()))

    def contentless(self) -> list[Step]:
        """What an empty `ut` gets: a stream that never carries an answer."""
        return assemble(FramePlan(head=[self.opening()], tail=[COMPLETE_TRUE]), self.script)

    # --- the whole stream ------------------------------------------------------------------

    def steps(self, error: str | None = None) -> list[Step]:
        """Every step of this answer, shaped by the script (error = an in-stream error name)."""
        script = self.script
        if error is not None and script.error_after <= 0:
            first = first_error_frame(error, no_event=script.no_event_lines)
            return assemble(FramePlan(), script, error=first)
        plan = FramePlan(head=[self.opening(), *self.reasoning_frames()])
        pieces = split_pieces(self.turn.answer, script.piece)
        if script.moderation:
            pieces = pieces[: script.error_after or max(1, len(pieces) // 2)]
        elif error is not None:
            pieces = pieces[: script.error_after]
        text = ""
        for index, piece in enumerate(pieces):
            text += piece
            group = [self.answer_frame(text)]
            if script.duplicates and index % 2 == 0:
                group.append(group[0])
            if script.split_multibyte and index == 0:
                group.append(self.answer_frame(text + "\ufffd"))
            plan.answers.append(group)
        if script.moderation:
            plan.tail = [self.moderation_frame(text)]
            return assemble(plan, script, heartbeat=HEARTBEAT)
        if error is not None:
            return assemble(plan, script, error=self.error_frame(error), heartbeat=HEARTBEAT)
        final = self.final_payload()
        plan.tail = [self._encode(final)]
        if script.complete_json:
            plan.tail.append(encode(final, event="complete"))
        plan.tail.append(COMPLETE_TRUE)
        return assemble(plan, script, heartbeat=HEARTBEAT)
