"""intl chat endpoints: chats/new, completions (the stream), chat history, deletes and model lists.

A completion request that passes the fake's checks (token, known chat, valid `parent_id`, JSON
body) consumes the next intl Script; a refused one does not. `parent_id` must be null or a
`response_id` this chat already produced; the default answer of a continued turn ends "(turn N)".
Attachments must name uploads of the caller (see attachments.py); a `messages[-1].chat_type`
of `t2i` in a chat created as t2i answers with images (see images.py). A bad reference or t2i
request gets the generic `{"success":false,"data":{"code":"Bad_Request",…}}` body (HTTP 200) —
an assumption, the real failure body is not documented.
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from qwen_free_api.testing import intl_errors
from qwen_free_api.testing.attachments import resolve_intl, with_markers
from qwen_free_api.testing.catalog import INTL_MODELS
from qwen_free_api.testing.images import SIZES, t2i_steps
from qwen_free_api.testing.intl_auth import envelope, failure, request_claims, unauthorized
from qwen_free_api.testing.intl_frames import CONTENT_TYPE, IntlStream, IntlTurn
from qwen_free_api.testing.media_state import SeenAttachment
from qwen_free_api.testing.script import INTL_ERRORS, Script, answer_text, reasoning_text
from qwen_free_api.testing.state import FakeState, IntlChat
from qwen_free_api.testing.stream import PlannedResponse

NOT_FOUND = ("Not_Found", "chat not found")


def _first_message(body: dict[str, Any]) -> dict[str, Any]:
    messages = body.get("messages")
    if isinstance(messages, list) and messages and isinstance(messages[-1], dict):
        return messages[-1]
    return {}


def prompt_of(message: dict[str, Any]) -> str:
    """The user's text: a string `content`, or the text items of a list joined by newlines."""
    content = message.get("content", "")
    if isinstance(content, list):
        texts = [
            i.get("text", "") for i in content if isinstance(i, dict) and i.get("type") == "text"
        ]
        return "\n".join(str(t) for t in texts)
    return str(content)


async def _json(request: Request) -> dict[str, Any] | None:
    try:
        body = json.loads(await request.body() or b"{}")
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


class IntlEndpoints:
    """Chats owned by the token's user id, their turns and history."""

    def __init__(self, state: FakeState) -> None:
        self.state = state

    def routes(self) -> list[Route]:
        """The chat.qwen.ai paths (besides the account ones)."""
        return [
            Route("/api/v2/chats/new", self.new_chat, methods=["POST"]),
            Route("/api/v2/chat/completions", self.completions, methods=["POST"]),
            Route("/api/v2/chats/", self.delete_all, methods=["DELETE"]),
            Route("/api/v2/chats", self.delete_all, methods=["DELETE"]),
            Route("/api/v2/chats/{chat_id}", self.chat_detail, methods=["GET"]),
            Route("/api/v2/chats/{chat_id}", self.delete_chat, methods=["DELETE"]),
            Route("/api/models", self.models, methods=["GET"]),
            Route("/api/v2/models/", self.models_wrapped, methods=["GET"]),
            Route("/api/v2/models", self.models_wrapped, methods=["GET"]),
        ]

    def _owned(self, claims: dict[str, Any], chat_id: str) -> IntlChat | None:
        with self.state.locked():
            chat = self.state.intl_chats.get(chat_id)
        return chat if chat is not None and chat.owner == str(claims.get("id")) else None

    async def new_chat(self, request: Request) -> Response:
        """A fresh chat id for the caller."""
        claims = request_claims(request)
        if claims is None:
            return unauthorized()
        body = await _json(request) or {}
        models = body.get("models") if isinstance(body.get("models"), list) else ["qwen3.7-plus"]
        now = int(time.time())
        chat = IntlChat(
            chat_id=str(uuid.uuid4()),
            owner=str(claims.get("id")),
            model=str((models or ["qwen3.7-plus"])[0]),
            chat_type=str(body.get("chat_type") or "t2t"),
            created=now,
        )
        with self.state.locked():
            self.state.intl_chats[chat.chat_id] = chat
        self.state.note_created("intl", chat.chat_id)
        data = {
            "id": chat.chat_id,
            "title": str(body.get("title") or "New Chat"),
            "models": models,
            "chat_type": chat.chat_type,
            "chat_mode": str(body.get("chat_mode") or "normal"),
            "created_at": now,
            "updated_at": now,
        }
        return JSONResponse(envelope(data))

    async def completions(self, request: Request) -> Response:
        """One turn of a chat, streamed."""
        claims = request_claims(request)
        if claims is None:
            return unauthorized()
        body = await _json(request)
        chat_id = request.query_params.get("chat_id") or str((body or {}).get("chat_id") or "")
        chat = self._owned(claims, chat_id)
        if chat is None:
            return JSONResponse(failure(*NOT_FOUND))
        if body is None:
            return JSONResponse(failure("Bad_Request", "body is not a JSON object"))
        parent = body.get("parent_id")
        with self.state.locked():
            known = parent is None or parent in chat.responses
            turn_number = 1 if parent is None else chat.responses.get(str(parent), 0) + 1
        if not known:
            return JSONResponse(failure("Not_Found", "parent message not found"))
        media = self._media(claims, chat, body)
        if isinstance(media, Response):
            return media
        seen, size = media
        script = self.state.next_script("intl", prompt_of(_first_message(body)))
        self.state.note_attachments("intl", seen)
        scenario = claims.get("scenario")
        error = scenario if scenario in INTL_ERRORS else script.error
        delay = script.first_byte_delay
        if error in intl_errors.RESPONSE_ERRORS:
            return intl_errors.response_error(self.state, str(error), head_delay=delay)
        if error in intl_errors.BODY_ERRORS and script.error_after <= 0:
            return intl_errors.body_error(self.state, str(error), head_delay=delay)
        if size is not None and error is None:
            return self._t2i(request, claims, chat, body, script, size, turn_number)
        turn = self._turn(chat, body, script, turn_number)
        turn.answer = with_markers(turn.answer, seen, script)
        if error is None or script.error_after > 0:
            self._commit(chat, body, turn, turn_number)
        steps = IntlStream(turn, script).steps(error)
        # Keep-alives cover the delay inside a normal stream; a lone error frame just waits.
        alone = error is not None and script.error_after <= 0
        return PlannedResponse(
            self.state,
            steps,
            content_type=CONTENT_TYPE,
            head_delay=delay if alone else 0.0,
            chunk_bytes=script.chunk_bytes,
        )

    def _media(
        self, claims: dict[str, Any], chat: IntlChat, body: dict[str, Any]
    ) -> tuple[list[SeenAttachment], str | None] | Response:
        """(attachments, t2i size or None), or the failure refusing the request."""
        message = _first_message(body)
        seen = resolve_intl(self.state, str(claims.get("id")), message)
        if isinstance(seen, str):
            return self._media_refusal(seen)
        if message.get("chat_type") != "t2i":
            return seen, None
        if chat.chat_type != "t2i":
            return self._media_refusal("chat was not created with chat_type t2i")
        size = body.get("size", "1:1")
        if size not in SIZES:
            return self._media_refusal(f"size must be one of {sorted(SIZES)}")
        return seen, str(size)

    def _media_refusal(self, problem: str) -> Response:
        """The assumed answer to a bad media request: the generic Bad_Request envelope."""
        self.state.note_media_refusal("intl chat", problem)
        return JSONResponse(failure("Bad_Request", problem))

    def _t2i(
        self,
        request: Request,
        claims: dict[str, Any],
        chat: IntlChat,
        body: dict[str, Any],
        script: Script,
        size: str,
        number: int,
    ) -> Response:
        """The image stream of a t2i turn."""
        ids = (chat.chat_id, str(uuid.uuid4()), str(uuid.uuid4()))
        base, owner = str(request.base_url), str(claims.get("id"))
        steps, urls = t2i_steps(self.state, script, base=base, owner=owner, ids=ids, size=size)
        answer = "\n".join(f"![image]({url})" for url in urls)
        turn = IntlTurn(ids[0], ids[2], ids[1], answer, "", "summary", True, 0)
        if not script.image_never:
            self._commit(chat, body, turn, number)
        return PlannedResponse(
            self.state, steps, content_type=CONTENT_TYPE, chunk_bytes=script.chunk_bytes
        )

    def _turn(self, chat: IntlChat, body: dict[str, Any], script: Script, number: int) -> IntlTurn:
        message = _first_message(body)
        config = message.get("feature_config")
        config = config if isinstance(config, dict) else {}
        prompt = prompt_of(message)
        fmt = script.reasoning_format or config.get("thinking_format") or "summary"
        return IntlTurn(
            chat_id=chat.chat_id,
            response_id=str(uuid.uuid4()),
            parent_id=str(uuid.uuid4()),
            answer=answer_text(script, prompt, number),
            reasoning=reasoning_text(script, prompt, bool(config.get("thinking_enabled"))),
            reasoning_format="detail" if fmt == "detail" else "summary",
            phases=config.get("output_schema") == "phase" and not script.no_phase,
            prompt_tokens=script.usage_numbers[0],
        )

    def _commit(self, chat: IntlChat, body: dict[str, Any], turn: IntlTurn, number: int) -> None:
        now = int(time.time())
        user = {
            "id": turn.parent_id,
            "parentId": body.get("parent_id"),
            "childrenIds": [turn.response_id],
            "role": "user",
            "content": prompt_of(_first_message(body)),
            "files": _first_message(body).get("files") or [],
            "timestamp": now,
            "models": [str(body.get("model") or chat.model)],
        }
        assistant = {
            "id": turn.response_id,
            "parentId": turn.parent_id,
            "childrenIds": [],
            "role": "assistant",
            "content": turn.answer,
            "reasoning_content": turn.reasoning,
            "model": str(body.get("model") or chat.model),
            "timestamp": now,
            "done": True,
        }
        with self.state.locked():
            chat.responses[turn.response_id] = number
            chat.history += [user, assistant]
        self.state.changed()

    async def chat_detail(self, request: Request) -> Response:
        """The chat's messages, as `chat.history.messages` and `chat.messages`."""
        claims = request_claims(request)
        if claims is None:
            return unauthorized()
        chat = self._owned(claims, request.path_params["chat_id"])
        if chat is None:
            return JSONResponse(failure(*NOT_FOUND))
        with self.state.locked():
            messages = [dict(m) for m in chat.history]
        current = messages[-1]["id"] if messages else None
        history = {"messages": {m["id"]: m for m in messages}, "currentId": current}
        data = {
            "id": chat.chat_id,
            "title": "New Chat",
            "chat": {"history": history, "messages": messages, "models": [chat.model]},
            "currentId": current,
            "chat_type": chat.chat_type,
            "created_at": chat.created,
        }
        return JSONResponse(envelope(data))

    async def delete_chat(self, request: Request) -> Response:
        """Delete one chat; an unknown or foreign id fails with Not_Found."""
        claims = request_claims(request)
        if claims is None:
            return unauthorized()
        chat_id = request.path_params["chat_id"]
        if self.state.refuse_deletes:
            self.state.note_delete("intl", chat_id, deleted=False)
            return JSONResponse(failure("Internal_Error", "chat service unavailable"), 500)
        chat = self._owned(claims, chat_id)
        if chat is not None:
            with self.state.locked():
                self.state.intl_chats.pop(chat_id, None)
        self.state.note_delete("intl", chat_id, deleted=chat is not None)
        if chat is None:
            return JSONResponse(failure(*NOT_FOUND))
        return JSONResponse(envelope({"status": True}))

    async def delete_all(self, request: Request) -> Response:
        """Delete every chat of the caller (recorded in delete_calls as id "*")."""
        claims = request_claims(request)
        if claims is None:
            return unauthorized()
        owner = str(claims.get("id"))
        with self.state.locked():
            gone = [c for c, chat in self.state.intl_chats.items() if chat.owner == owner]
            for chat_id in gone:
                del self.state.intl_chats[chat_id]
        self.state.note_delete_all("intl", gone)
        return JSONResponse(envelope({"status": True}))

    async def models(self, request: Request) -> Response:
        """`{"data": [model, …]}`."""
        if request_claims(request) is None:
            return unauthorized()
        return JSONResponse({"data": INTL_MODELS})

    async def models_wrapped(self, request: Request) -> Response:
        """The v2 variant inside the success envelope."""
        if request_claims(request) is None:
            return unauthorized()
        return JSONResponse(envelope({"data": INTL_MODELS}))
