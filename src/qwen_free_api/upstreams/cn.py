"""The Chinese backend, www.qianwen.com (ticket cookie, signed requests, cumulative frames)."""

from __future__ import annotations

import hashlib
import json
import logging
import re
import secrets
import time
import uuid
from collections.abc import AsyncIterator

from qwen_free_api import sse
from qwen_free_api.chat import ChatRequest
from qwen_free_api.credentials import Credential, Dialect
from qwen_free_api.errors import BadRequest, ProtocolError, SigningFailed
from qwen_free_api.events import Finish, Opened, StreamEvent, TextDelta
from qwen_free_api.janitor import Janitor
from qwen_free_api.models import Catalogue, ModelInfo, split_suffixes
from qwen_free_api.prompt import upstream_prompt
from qwen_free_api.settings import Settings
from qwen_free_api.upstreams import conversation_id, conversation_parts, failures
from qwen_free_api.upstreams.cn_frames import Turn, frame_events
from qwen_free_api.upstreams.cn_sign import Signer, encode_query
from qwen_free_api.upstreams.http import Http, Reply
from qwen_free_api.upstreams.replies import expect_stream, json_frame

log = logging.getLogger(__name__)

FALLBACK_MODELS = (
    ModelInfo("Qwen", "Qwen3.7-千问"),
    ModelInfo("Qwen3.8-Max", "Qwen3.8-Max"),
    ModelInfo("Qwen3.7-Max", "Qwen3.7-Max"),
    ModelInfo("Qwen3.6-Flash", "Qwen3.6-Flash"),
)
ALIASES = {
    "qwen": "Qwen",
    "qwen-max": "Qwen3.8-Max",
    "qwen-flash": "Qwen3.6-Flash",
    "qwen-plus": "Qwen",
}
DEFAULT_MODEL = "Qwen"
HEX32 = re.compile(r"^[0-9a-f]{32}$")


class Cn:
    name: Dialect = "cn"

    def __init__(self, settings: Settings, http: Http, janitor: Janitor) -> None:
        self._settings = settings
        self._http = http
        self._janitor = janitor
        self._signer = Signer(http, settings.cn_sec_base_url, settings.cn_origin)
        self.catalogue = Catalogue(
            FALLBACK_MODELS,
            ALIASES,
            DEFAULT_MODEL,
            settings.models_ttl,
            settings.models_by_pattern,
        )

    def _common(self, credential: Credential) -> list[tuple[str, str]]:
        version = self._settings.cn_web_version
        return [
            ("biz_id", "ai_qwen"),
            ("fe_version", "1.0.0"),
            ("chat_client", "h5"),
            ("device", "pc"),
            ("fr", "pc"),
            ("pr", "qwen"),
            ("ut", _device_id(credential)),
            ("la", "zh-CN"),
            ("tz", "Asia/Shanghai"),
            ("wv", version),
            ("ve", version),
        ]

    def _headers(self, credential: Credential, session_id: str = "") -> dict[str, str]:
        origin = self._settings.cn_origin
        return {
            "cookie": f"tongyi_sso_ticket={credential.secret}",
            "content-type": "application/json",
            "accept": "application/json, text/event-stream, text/plain, */*",
            "origin": origin,
            "referer": f"{origin}/chat/{session_id}" if session_id else f"{origin}/",
            "x-platform": "pc_tongyi",
            "x-device-id": _device_id(credential),
            "prod_id": "tongyi",
            "x-xsrf-token": "",
        }

    async def stream(self, chat: ChatRequest, credential: Credential) -> AsyncIterator[StreamEvent]:
        await self.catalogue.warm(
            lambda: self.list_models(credential),
            lambda work: self._janitor.spawn(work, "refreshing the model list"),
        )
        choice = split_suffixes(chat.model)
        model = self.catalogue.resolve(choice.base)
        thinking = choice.thinking if choice.thinking is not None else chat.thinking
        ids = self._continuation(chat)
        session_id, topic_id = (ids[0], ids[2]) if ids else (uuid.uuid4().hex, "")
        req_id = uuid.uuid4().hex
        body = _payload(
            chat,
            model,
            session_id,
            req_id,
            topic_id or req_id,
            ids[1] if ids else None,
            bool(thinking),
            choice.search or chat.search,
        )
        answered = False  # the session exists upstream once it sent a frame
        finished = False  # a finished session is the gateway's to keep or delete
        try:
            opened = Opened(conversation_id("cn", session_id, req_id, topic_id or req_id), model)
            events = self._signed_stream(credential, session_id, body, opened)
            async for event in _refuse_canned(events, self._settings.cn_canned_answers):
                answered, finished = True, isinstance(event, Finish)
                yield event
        finally:
            if answered and not finished and ids is None and self._settings.delete_sessions:
                self._janitor.spawn(
                    self.delete_session(credential, session_id), "deleting cn session"
                )

    def _continuation(self, chat: ChatRequest) -> list[str] | None:
        if not chat.conversation_id:
            return None
        ids = conversation_parts("cn", chat.conversation_id, 3)
        if ids is None or not all(HEX32.match(part) for part in ids):
            raise BadRequest(
                "conversation_id does not belong to the cn backend", param="conversation_id"
            )
        return ids

    async def _signed_stream(
        self, credential: Credential, session_id: str, body: bytes, opened: Opened
    ) -> AsyncIterator[StreamEvent]:
        """Sign and send; a refused signature is retried once with a fresh device."""
        for attempt in (1, 2):
            started = False
            try:
                async for event in self._send(credential, session_id, body, opened):
                    started = True
                    yield event
                return
            except SigningFailed:
                if started or attempt == 2:
                    raise
                log.warning("cn signature refused for %s; registering again", credential.masked)
                self._signer.forget(credential.secret)

    async def _send(
        self, credential: Credential, session_id: str, body: bytes, opened: Opened
    ) -> AsyncIterator[StreamEvent]:
        pairs = [
            *self._common(credential),
            ("nonce", secrets.token_hex(6)[:11]),
            ("timestamp", str(int(time.time() * 1000))),
        ]
        headers = self._headers(credential, session_id)
        headers["x-chat-id"] = json.loads(body)["req_id"]
        headers.update(await self._signer.headers(credential.secret, pairs, body))
        url = f"{self._settings.cn_base_url}/api/v2/chat?{encode_query(pairs)}"
        async with self._http.stream("POST", url, headers=headers, body=body) as reply:
            await expect_stream(reply, credential)
            async for event in _events(reply, credential, opened):
                yield event

    def _api_url(self, path: str, credential: Credential) -> str:
        query = encode_query(self._common(credential))
        return f"{self._settings.cn_api_base_url}{path}?{query}"

    async def delete(self, credential: Credential, conversation: str) -> None:
        ids = conversation_parts("cn", conversation, 3)
        if ids is not None:
            await self.delete_session(credential, ids[0])

    async def delete_session(self, credential: Credential, session_id: str) -> None:
        body = json.dumps({"session_id": session_id, "biz_id": "ai_qwen"}).encode()
        url = self._api_url("/api/v1/session/delete", credential)
        reply = await self._http.request("POST", url, headers=self._headers(credential), body=body)
        data = failures.parse_json(reply.body)
        if reply.status != 200 or not isinstance(data, dict) or data.get("success") is False:
            log.warning("cn session deletion failed (HTTP %s)", reply.status)

    async def check(self, credential: Credential) -> bool:
        url = self._api_url("/api/v2/session/page/list", credential)
        reply = await self._http.request("POST", url, headers=self._headers(credential), body=b"{}")
        data = failures.parse_json(reply.body)
        return reply.status == 200 and isinstance(data, dict) and data.get("success") is True

    async def list_models(self, credential: Credential) -> list[ModelInfo]:
        url = self._api_url("/api/v1/model/list", credential)
        reply = await self._http.request("GET", url, headers=self._headers(credential))
        if reply.status != 200:
            raise failures.from_status(reply.status, reply.body, credential=credential.masked)
        data = failures.parse_json(reply.body)
        error = failures.failure_in(data, credential=credential.masked)
        if error is not None:
            raise error
        items = data.get("data") if isinstance(data, dict) else None
        if isinstance(items, dict):
            items = items.get("list") or items.get("models")
        return [
            ModelInfo(str(item["modelCode"]), str(item.get("displayModelName") or ""))
            for item in items or []
            if isinstance(item, dict) and item.get("modelCode")
        ]


def _device_id(credential: Credential) -> str:
    """A stable per-ticket device id (`ut`); the backend only needs it non-empty."""
    return hashlib.sha256(b"qfa-ut:" + credential.secret.encode()).hexdigest()[:32]


def _payload(
    chat: ChatRequest,
    model: str,
    session_id: str,
    req_id: str,
    topic_id: str,
    parent: str | None,
    thinking: bool,
    search: bool,
) -> bytes:
    text = upstream_prompt(chat)
    payload = {
        "req_id": req_id,
        "parent_req_id": parent or "0",
        "messages": [
            {
                "mime_type": "text/plain",
                "content": text,
                "meta_data": {"ori_query": text},
                "status": "complete",
            }
        ],
        "scene": "chat",
        "sub_scene": "",
        "scene_param": "continue_chat" if parent else "first_turn",
        "session_id": session_id,
        "biz_id": "ai_qwen",
        "topic_id": topic_id,
        "model": model,
        "from": "default",
        "protocol_version": "v2",
        "messages_merge": False,
        "chat_client": "h5",
        "deep_search": "1" if thinking or chat.deep_search else "0",
        "enable_search": search,
        "temporary": False,
        "chat_mode": "quick",
        "bucket": {},
    }
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()


async def _events(
    reply: Reply, credential: Credential, opened: Opened
) -> AsyncIterator[StreamEvent]:
    turn = Turn()
    started = False
    async for message in sse.decode(reply.chunks()):
        if message.event == "complete" and message.data.strip() in ("true", ""):
            break
        frame = json_frame(message.data)
        error = failures.failure_in(frame, credential=credential.masked)
        if error is not None:
            raise error
        if not started:
            started = True
            yield opened
        for event in frame_events(frame, turn):
            yield event
        if turn.finish is not None and turn.finish.reason == "content_filter":
            break
    if turn.finish is None:
        raise ProtocolError(
            "the upstream ended the answer before finishing it"
            if started
            else "the upstream sent no answer"
        )
    for event in turn.flush():
        yield event
    yield turn.finish


async def _refuse_canned(
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
