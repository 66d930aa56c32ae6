"""The cn chat endpoint (`POST /api/v2/chat`): gatekeeping, signature, sessions, the stream.

Checks run in the order a request meets them: WAF (`Origin`), `Accept`, signature (per sign_mode),
body, login (ticket cookie), `ut`, session rules, attachments (`image/url` / `doc/url` items
naming completed uploads, before a text item) and an image request's `biz_data`; those two fail
with an in-stream frame `error_code` 400 (an assumption: the real body is unknown). A request
that passes them consumes the next cn Script; one refused by them does not. The logged-out
stream body is an assumption (protocol §8.8 says the real one is unknown): one frame with
`error_code` 401 and `error_msg` "未登录".
"""

from __future__ import annotations

import json
import time
from typing import Any
from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.responses import Response

from qwen_free_api.testing import cn_errors, cn_images
from qwen_free_api.testing.attachments import resolve_cn, with_markers
from qwen_free_api.testing.cn_frames import (
    CONTENT_TYPE,
    FRAME_ERRORS,
    CnStream,
    CnTurn,
    encode,
    error_payload,
    first_error_frame,
)
from qwen_free_api.testing.cn_security import SecurityEndpoints
from qwen_free_api.testing.cn_tickets import TICKET_COOKIE, ticket_valid
from qwen_free_api.testing.media_state import SeenAttachment
from qwen_free_api.testing.script import (
    CANNED_REFUSAL,
    Script,
    answer_text,
    reasoning_text,
)
from qwen_free_api.testing.signing import verify_signature
from qwen_free_api.testing.state import CnSession, FakeState
from qwen_free_api.testing.stream import PlannedResponse, Step

__all__ = ["TICKET_COOKIE", "CnChat", "prompt_of", "ticket_scenario", "ticket_valid"]


def ticket_scenario(ticket: str | None) -> str | None:
    """`scenario-<error name>-anything` forces that error on every chat of the ticket."""
    if not ticket or not ticket.startswith("scenario-"):
        return None
    name = ticket.removeprefix("scenario-").split("-", 1)[0]
    return name if name in cn_errors.RESPONSE_ERRORS | FRAME_ERRORS.keys() | {"canned"} else None


def prompt_of(body: dict[str, Any]) -> str:
    """The user's text: the last text item that carries `ori_query`, else the last text item."""
    items = [m for m in body.get("messages") or [] if isinstance(m, dict)]
    texts = [m for m in items if m.get("mime_type", "text/plain") == "text/plain"]
    asked = [
        m for m in texts if isinstance(m.get("meta_data"), dict) and "ori_query" in m["meta_data"]
    ]
    chosen = (asked or texts or [{}])[-1]
    content = chosen.get("content", "")
    return content if isinstance(content, str) else json.dumps(content, ensure_ascii=False)


def _stream(state: FakeState, steps: list[Step], script: Script) -> PlannedResponse:
    return PlannedResponse(
        state,
        steps,
        content_type=CONTENT_TYPE,
        head_delay=script.first_byte_delay,
        chunk_bytes=script.chunk_bytes,
    )


class CnChat:
    """Serves `POST /api/v2/chat`."""

    def __init__(self, state: FakeState, security: SecurityEndpoints) -> None:
        self.state = state
        self.security = security

    def _frame_error(self, code: int, msg: str) -> PlannedResponse:
        frame = encode(error_payload(code, msg, {"resid": 0}))
        return _stream(self.state, [frame], Script())

    def _signature_refusal(self, request: Request, body: bytes) -> str | None:
        """None when the signature is acceptable (or not checked), else the reason."""
        if self.state.sign_mode == "off":
            return None
        headers = {k.lower(): v for k, v in request.headers.items()}
        query = parse_qsl(request.url.query, keep_blank_values=True)
        verdict = verify_signature(headers, query, body, now_ms=int(time.time() * 1000))
        reason = self.security.spend_salt(headers) if verdict.ok else verdict.reason
        if reason is not None:
            self.state.note_sign_failure(reason)
        return reason

    async def chat(self, request: Request) -> Response:
        """One chat turn."""
        raw = await request.body()
        if not request.headers.get("origin"):
            return cn_errors.error_response(self.state, "waf_html")
        if "text/event-stream" not in request.headers.get("accept", ""):
            return cn_errors.error_response(self.state, "empty")
        canned = False
        if self._signature_refusal(request, raw) is not None:
            mode = self.state.sign_mode
            if mode == "hard":
                return cn_errors.error_response(self.state, "sign_hard")
            if mode == "soft":
                return _stream(self.state, [first_error_frame("sign_soft")], Script())
            canned = True
        try:
            body = json.loads(raw)
        except ValueError:
            body = None
        if not isinstance(body, dict):
            return self._frame_error(400, "参数错误")
        return self._answer(request, body, canned=canned)

    def _answer(self, request: Request, body: dict[str, Any], *, canned: bool) -> Response:
        ticket = request.cookies.get(TICKET_COOKIE)
        if not ticket_valid(ticket):
            return _stream(self.state, [first_error_frame("not_login")], Script())
        ticket = str(ticket)
        if not request.query_params.get("ut"):
            turn = CnTurn("", "", "", "", "multimodal_chat_think", 0)
            return _stream(self.state, CnStream(turn, Script()).contentless(), Script())
        turn_number, refusal = self._turn_for(body, ticket)
        if refusal is not None:
            return self._frame_error(*refusal)
        media = self._media(body, ticket)
        if isinstance(media, Response):
            return media
        seen, image = media
        script = self.state.next_script("cn", prompt_of(body))
        self.state.note_attachments("cn", seen)
        error = ticket_scenario(ticket) or script.error
        if error in cn_errors.RESPONSE_ERRORS:
            return cn_errors.error_response(
                self.state, str(error), head_delay=script.first_byte_delay
            )
        if error in FRAME_ERRORS and script.error_after <= 0:
            return _stream(
                self.state, CnStream(self._turn(body, script, 1), script).steps(error), script
            )
        self._commit(body, ticket, turn_number)
        turn = self._turn(body, script, turn_number)
        turn.answer = with_markers(turn.answer, seen, script)
        if canned or error == "canned":
            turn.answer, turn.reasoning = CANNED_REFUSAL, ""
        elif image is not None:
            base = str(request.base_url)
            cn_images.start_job(self.state, script, base=base, ticket=ticket, body=body, size=image)
        frame_error = error if error in FRAME_ERRORS else None
        return _stream(self.state, CnStream(turn, script).steps(frame_error), script)

    def _media(
        self, body: dict[str, Any], ticket: str
    ) -> tuple[list[SeenAttachment], str | None] | Response:
        """(attachments, image size or None), or the frame refusing the request."""
        seen = resolve_cn(self.state, ticket, body)
        if isinstance(seen, str):
            return self._media_refusal(seen)
        image = cn_images.image_request(body)
        if isinstance(image, str):
            return self._media_refusal(image)
        return seen, None if image is None else image[1]

    def _media_refusal(self, problem: str) -> Response:
        self.state.note_media_refusal("cn chat", problem)
        return self._frame_error(400, problem)

    def _turn(self, body: dict[str, Any], script: Script, number: int) -> CnTurn:
        prompt = prompt_of(body)
        model = str(body.get("model") or "").lower()
        asked = str(body.get("deep_search")) == "1" or "think" in model
        kind = "deep_think" if "think" in model else "multimodal_chat_think"
        return CnTurn(
            reqid=str(body.get("req_id", "")),
            sessionid=str(body.get("session_id", "")),
            answer=answer_text(script, prompt, number),
            reasoning=reasoning_text(script, prompt, asked),
            think_kind=kind,
            prompt_tokens=script.usage_numbers[0],
        )

    def _turn_for(self, body: dict[str, Any], ticket: str) -> tuple[int, tuple[int, str] | None]:
        """The turn number this request answers, or an error (code, msg) refusing it."""
        session_id, req_id = body.get("session_id"), body.get("req_id")
        if not isinstance(session_id, str) or not session_id or not isinstance(req_id, str):
            return 0, (400, "参数错误: session_id/req_id")
        scene = body.get("scene_param") or ""
        parent = str(body.get("parent_req_id") or "0")
        with self.state.locked():
            session = self.state.cn_sessions.get(session_id)
            if session is None:
                if scene == "continue_chat" or parent != "0":
                    return 0, (404, "会话不存在")
                return 1, None
            if session.deleted or session.ticket != ticket:
                return 0, (404, "会话不存在")
            if scene == "retry" and parent == "0":
                return 1, None
            if scene in ("continue_chat", "retry") and parent in session.turns:
                return session.turns[parent] + 1, None
        return 0, (400, "会话已存在，续聊需要 continue_chat 与有效的 parent_req_id")

    def _commit(self, body: dict[str, Any], ticket: str, number: int) -> None:
        session_id, req_id = str(body["session_id"]), str(body["req_id"])
        with self.state.locked():
            session = self.state.cn_sessions.get(session_id)
            created = session is None
            if session is None:
                millis = int(time.time() * 1000)
                session = CnSession(session_id, ticket, millis, prompt_of(body)[:20])
                self.state.cn_sessions[session_id] = session
            session.turns[req_id] = number
        if created:
            self.state.note_created("cn", session_id)
        self.state.changed()
