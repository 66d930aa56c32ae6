"""cn session API (chat2-api.qianwen.com): session list, the three delete calls, model list."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Coroutine
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from qwen_free_api.testing.catalog import CN_MODELS
from qwen_free_api.testing.cn_chat import TICKET_COOKIE, ticket_valid
from qwen_free_api.testing.state import FakeState

NOT_LOGIN = {"success": False, "errorCode": "NOT_LOGIN", "errorMsg": "未登录"}
DELETED = {"success": True, "code": 0, "msg": "ok"}
DELETE_REFUSED = {"success": False, "code": 500, "msg": "session service unavailable"}
Endpoint = Callable[[Request], Coroutine[Any, Any, Response]]


def _ok(data: Any) -> Response:
    trace = uuid.uuid4().hex
    body = {"code": 0, "msg": "success", "success": True, "trace_id": trace, "httpCode": 200}
    return JSONResponse({**body, "data": data})


def _needs_ut(endpoint: Endpoint) -> Endpoint:
    """chat2-api refuses any call without a non-empty `ut` query value."""

    async def guarded(request: Request) -> Response:
        if not request.query_params.get("ut"):
            return JSONResponse({"success": False, "code": 400, "msg": "ut"}, status_code=400)
        return await endpoint(request)

    return guarded


async def _json_body(request: Request) -> dict[str, Any]:
    try:
        body = json.loads(await request.body() or b"{}")
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


class CnSessionEndpoints:
    """Lists and deletes the sessions a ticket created through the chat endpoint."""

    def __init__(self, state: FakeState) -> None:
        self.state = state

    def routes(self) -> list[Route]:
        """The chat2-api paths."""
        post = ["POST"]
        return [
            Route("/api/v2/session/page/list", _needs_ut(self.page_list), methods=post),
            Route("/api/v1/session/delete", _needs_ut(self.delete_one), methods=post),
            Route("/api/v1/session/delete/batch", _needs_ut(self.delete_batch), methods=post),
            Route("/api/v2/session/delete", _needs_ut(self.delete_one), methods=post),
            Route("/api/v1/model/list", _needs_ut(self.model_list), methods=["GET"]),
        ]

    async def page_list(self, request: Request) -> Response:
        """The ticket's live sessions, newest first, in one page (also the token check)."""
        ticket = request.cookies.get(TICKET_COOKIE)
        if not ticket_valid(ticket):
            return JSONResponse(NOT_LOGIN)
        with self.state.locked():
            mine = [
                s for s in self.state.cn_sessions.values() if s.ticket == ticket and not s.deleted
            ]
            items = [
                {
                    "session_id": s.session_id,
                    "title": s.title,
                    "created_at": s.created_ms,
                    "updated_at": s.created_ms,
                }
                for s in sorted(mine, key=lambda s: s.created_ms, reverse=True)
            ]
        return _ok({"list": items, "have_next_page": False, "next_token": ""})

    async def model_list(self, request: Request) -> Response:
        """The captured 2026-09-06 model list."""
        return _ok(CN_MODELS)

    async def delete_one(self, request: Request) -> Response:
        """`/api/v1/session/delete` and the legacy `/api/v2/session/delete`."""
        ticket = request.cookies.get(TICKET_COOKIE)
        if not ticket_valid(ticket):
            return JSONResponse(NOT_LOGIN)
        session_id = (await _json_body(request)).get("session_id")
        if self.state.refuse_deletes:
            self.state.note_delete("cn", str(session_id), deleted=False)
            return JSONResponse(DELETE_REFUSED, status_code=500)
        return JSONResponse(self._delete(str(ticket), session_id))

    async def delete_batch(self, request: Request) -> Response:
        """`/api/v1/session/delete/batch`: success only when every id was deleted."""
        ticket = request.cookies.get(TICKET_COOKIE)
        if not ticket_valid(ticket):
            return JSONResponse(NOT_LOGIN)
        ids = (await _json_body(request)).get("session_ids")
        if not isinstance(ids, list) or not ids:
            self.state.note_delete("cn", "", deleted=False)
            return JSONResponse({"success": False, "code": 400, "msg": "session_ids is empty"})
        results = [self._delete(str(ticket), ident) for ident in ids]
        failed = [r for r in results if not r["success"]]
        return JSONResponse(failed[0] if failed else DELETED)

    def _delete(self, ticket: str, session_id: object) -> dict[str, Any]:
        ident = session_id if isinstance(session_id, str) else ""
        if not ident:
            self.state.note_delete("cn", ident, deleted=False)
            return {"success": False, "code": 400, "msg": "session_id is blank"}
        with self.state.locked():
            session = self.state.cn_sessions.get(ident)
            found = session is not None and not session.deleted and session.ticket == ticket
            if session is not None and found:
                session.deleted = True
        self.state.note_delete("cn", ident, deleted=found)
        if not found:
            return {"success": False, "code": 404, "msg": "session not found"}
        return dict(DELETED)
