"""FakeUpstream: one ASGI app serving every cn and intl path, recording each request it receives."""

from __future__ import annotations

from typing import Literal
from urllib.parse import parse_qsl

from starlette.applications import Starlette
from starlette.requests import Request, cookie_parser
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from qwen_free_api.testing.cn_chat import CnChat
from qwen_free_api.testing.cn_files import CnFiles
from qwen_free_api.testing.cn_images import CnImages
from qwen_free_api.testing.cn_security import SecurityEndpoints
from qwen_free_api.testing.cn_sessions import CnSessionEndpoints
from qwen_free_api.testing.images import ImageFiles
from qwen_free_api.testing.intl_auth import AccountEndpoints
from qwen_free_api.testing.intl_files import BUCKET as INTL_BUCKET
from qwen_free_api.testing.intl_files import IntlFiles
from qwen_free_api.testing.intl_routes import IntlEndpoints
from qwen_free_api.testing.script import Recorded, Script
from qwen_free_api.testing.state import FakeState, SignMode

CHAT_PATHS = {"cn": "/api/v2/chat", "intl": "/api/v2/chat/completions"}
DIALECTS: tuple[Literal["cn", "intl"], ...] = ("cn", "intl")


def recorded_from(scope: Scope, body: bytes) -> Recorded:
    """A Recorded from an ASGI scope and the full request body."""
    headers: dict[str, str] = {}
    for raw_name, raw_value in scope["headers"]:
        name, value = raw_name.decode("latin-1").lower(), raw_value.decode("latin-1")
        joiner = "; " if name == "cookie" else ", "
        headers[name] = f"{headers[name]}{joiner}{value}" if name in headers else value
    query = dict(
        parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True)
    )
    return Recorded(
        method=scope["method"],
        path=scope["path"],
        query=query,
        headers=headers,
        cookies=cookie_parser(headers.get("cookie", "")),
        body=body,
    )


class _Recorder:
    """ASGI wrapper: reads the whole body, records the request, replays the body to the app."""

    def __init__(self, app: ASGIApp, state: FakeState) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        while True:
            message = await receive()
            if message["type"] != "http.request":
                break
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        self.state.record(recorded_from(scope, body))
        pending: list[Message] = [{"type": "http.request", "body": body, "more_body": False}]

        async def replay() -> Message:
            return pending.pop() if pending else await receive()

        self.state.request_started()
        try:
            await self.app(scope, replay, send)
        finally:
            self.state.request_finished()


class FakeUpstream(FakeState):
    """A scriptable fake of the cn and intl Qwen web backends (all paths on one app).

    Attributes from FakeState: `sign_mode` (mutable), `requests`, `sessions_created`,
    `sessions_deleted`, `delete_calls`, `open_streams`, `open_requests`, `disconnects`,
    `held_streams`, `sign_failures`, `refuse_deletes`, `attachments_seen` (per dialect),
    `media` (uploads, grants, generated images, refusals and the switches `sts_ttl`, `sts_shape`,
    `sts_forbidden`, `oss_token_ttl`); methods `wait_for`, `wait_until`, `release`, `reset`.
    """

    def __init__(self, *, sign_mode: SignMode = "off") -> None:
        super().__init__(sign_mode=sign_mode)
        self.security = SecurityEndpoints(self)
        self.intl_files = IntlFiles(self)
        self.cn_files = CnFiles(self, self.security)
        routes = [
            *self.security.routes(),
            Route(CHAT_PATHS["cn"], CnChat(self, self.security).chat, methods=["POST"]),
            *CnSessionEndpoints(self).routes(),
            *AccountEndpoints(self).routes(),
            *IntlEndpoints(self).routes(),
            *self.intl_files.routes(),
            *self.cn_files.routes(),
            *CnImages(self, self.security).routes(),
            Route("/{key:path}", self._oss_put, methods=["PUT"]),
            *ImageFiles(self).routes(),  # last: the cn CDN path is a broad pattern
        ]
        self.app: ASGIApp = _Recorder(Starlette(routes=routes), self)

    async def _oss_put(self, request: Request) -> Response:
        """Both OSS buckets on one path space: intl path-style `/{bucket}/{file_path}`, else cn."""
        path = str(request.scope["path"]).lstrip("/")
        bucket, _, key = path.partition("/")
        if bucket == INTL_BUCKET and key:
            return await self.intl_files.put(request, bucket, key)
        return await self.cn_files.put(request, path)

    def enqueue(self, dialect: Literal["cn", "intl"], script: Script) -> None:
        """Queue the answer of the next accepted chat request of that dialect (FIFO)."""
        script.check(dialect)
        with self.locked():
            self.scripts[dialect].append(script)
        self.changed()

    def script_for_prompt(
        self, marker: str, script: Script, dialects: tuple[Literal["cn", "intl"], ...] = DIALECTS
    ) -> None:
        """Answer every chat whose prompt contains `marker` with `script` (until `reset`), in
        any order and at any concurrency; the queue of `enqueue` is left alone."""
        for dialect in dialects:
            script.check(dialect)
        with self.locked():
            for dialect in dialects:
                self.prompt_scripts[dialect][marker] = script
        self.changed()

    def chat_requests(self, dialect: Literal["cn", "intl"]) -> list[Recorded]:
        """Every chat request of that dialect, in order (accepted or not)."""
        path = CHAT_PATHS[dialect]
        return [r for r in list(self.requests) if r.method == "POST" and r.path == path]

    def expire_signing(self) -> None:
        """Expire every issued cn actkn, so the next signed chat or refresh is refused."""
        self.security.expire_all()
