"""The Chinese backend, www.qianwen.com (ticket cookie, signed requests, cumulative frames)."""

from __future__ import annotations

import hashlib
import json
import logging
import re
import secrets
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any

from qwen_free_api import sse
from qwen_free_api.chat import ChatRequest
from qwen_free_api.credentials import Credential, Dialect
from qwen_free_api.errors import BadRequest, ProtocolError, SigningFailed
from qwen_free_api.events import Finish, Opened, StreamEvent
from qwen_free_api.janitor import Janitor
from qwen_free_api.models import Catalogue, ModelInfo, split_suffixes
from qwen_free_api.prompt import upstream_prompt
from qwen_free_api.settings import Settings
from qwen_free_api.upstreams import (
    UploadCache,
    cn_files,
    cn_images,
    conversation_id,
    conversation_parts,
    failures,
)
from qwen_free_api.upstreams.cn_files import Media
from qwen_free_api.upstreams.cn_frames import Turn, frame_events, refuse_canned
from qwen_free_api.upstreams.cn_sign import CHAT_SCENE, Signer, encode_query
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


@dataclass(frozen=True, slots=True)
class Ids:
    """The ids of one cn chat request (`parent` None: the first turn of its session)."""

    session_id: str
    req_id: str
    topic_id: str
    parent: str | None = None


class Cn:
    name: Dialect = "cn"

    def __init__(self, settings: Settings, http: Http, janitor: Janitor) -> None:
        self._settings = settings
        self._http = http
        self._janitor = janitor
        self._signer = Signer(http, settings.cn_sec_base_url, settings.cn_origin)
        self.uploads = UploadCache()
        self.image_poll_interval = settings.image_poll_interval
        self.catalogue = Catalogue(
            FALLBACK_MODELS,
            ALIASES,
            DEFAULT_MODEL,
            settings.models_ttl,
            settings.models_by_pattern,
        )

    @property
    def settings(self) -> Settings:
        return self._settings

    @property
    def http(self) -> Http:
        return self._http

    @property
    def janitor(self) -> Janitor:
        return self._janitor

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
        before = self._continuation(chat)
        media = await cn_files.prepare(self, chat, credential)  # uploads precede the chat
        req_id = uuid.uuid4().hex
        if before is None:
            ids = Ids(uuid.uuid4().hex, req_id, req_id)
        else:
            ids = Ids(before[0], req_id, before[2], before[1])
        body = _payload(chat, model, ids, bool(thinking), choice.search or chat.search, media)
        answered: list[bool] = []  # the session exists upstream once it sent a frame
        finished = False  # a finished session is the gateway's to keep or delete
        try:
            opened = Opened(conversation_id("cn", ids.session_id, req_id, ids.topic_id), model)
            # Noted before refuse_canned: a canned refusal never reaches the gateway, but its
            # session exists upstream all the same and must be deleted.
            events = _noting(self.signed_stream(credential, ids.session_id, body, opened), answered)
            async for event in refuse_canned(events, self._settings.cn_canned_answers):
                finished = isinstance(event, Finish)
                yield event
        finally:
            if answered and not finished and before is None and self._settings.delete_sessions:
                self._janitor.spawn(
                    self.delete_session(credential, ids.session_id), "deleting cn session"
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

    async def signed_stream(
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

    def _signed_pairs(
        self, credential: Credential, extra: Sequence[tuple[str, str]] = ()
    ) -> list[tuple[str, str]]:
        return [
            *self._common(credential),
            ("nonce", secrets.token_hex(6)[:11]),
            ("timestamp", str(int(time.time() * 1000))),
            *extra,
        ]

    async def _send(
        self, credential: Credential, session_id: str, body: bytes, opened: Opened
    ) -> AsyncIterator[StreamEvent]:
        pairs = self._signed_pairs(credential)
        headers = self._headers(credential, session_id)
        headers["x-chat-id"] = json.loads(body)["req_id"]
        headers.update(await self._signer.headers(credential.secret, pairs, body))
        url = f"{self._settings.cn_base_url}/api/v2/chat?{encode_query(pairs)}"
        async with self._http.stream("POST", url, headers=headers, body=body) as reply:
            await expect_stream(reply, credential)
            async for event in _events(reply, credential, opened):
                yield event

    async def signed_json(
        self,
        credential: Credential,
        url: str,
        body: bytes,
        *,
        scene: str = CHAT_SCENE,
        extra: Sequence[tuple[str, str]] = (),
    ) -> dict[str, Any]:
        """POST a signed JSON call (uploads, `chat/snap`); its reply, failures raised typed.

        A refused signature is retried once with a fresh device, as chat requests are.
        """
        try:
            return await self._signed_call(credential, url, body, scene, extra)
        except SigningFailed:
            log.warning("cn signature refused for %s; registering again", credential.masked)
            self._signer.forget(credential.secret)
        return await self._signed_call(credential, url, body, scene, extra)

    async def _signed_call(
        self,
        credential: Credential,
        url: str,
        body: bytes,
        scene: str,
        extra: Sequence[tuple[str, str]],
    ) -> dict[str, Any]:
        pairs = self._signed_pairs(credential, extra)
        headers = self._headers(credential)
        headers.update(await self._signer.headers(credential.secret, pairs, body, scene))
        reply = await self._http.request(
            "POST", f"{url}?{encode_query(pairs)}", headers=headers, body=body
        )
        if reply.status != 200:
            raise failures.from_status(reply.status, reply.body, credential=credential.masked)
        data = failures.parse_json(reply.body)
        error = failures.failure_in(data, credential=credential.masked)
        if error is not None:
            raise error
        if data is None:  # HTML (a WAF page) or nothing
            kind = reply.headers.get("content-type", "")
            raise failures.from_body(kind, reply.body, credential=credential.masked)
        if not isinstance(data, dict):
            raise ProtocolError("the cn backend answered a JSON call with something else")
        return data

    def chat_body(
        self, text: str, model: str, session_id: str, req_id: str, extra: dict[str, Any]
    ) -> bytes:
        """The body of a new session's first request for `text`, with `extra` fields added
        (image generation's `ai_tool_scene` and `biz_data`)."""
        payload = _body(text, [], model, Ids(session_id, req_id, req_id)) | extra
        return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()

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

    async def session_ids(self, credential: Credential) -> list[str]:
        """The ids on the first page of the ticket's session list (newest first)."""
        url = self._api_url("/api/v2/session/page/list", credential)
        reply = await self._http.request("POST", url, headers=self._headers(credential), body=b"{}")
        data = failures.parse_json(reply.body)
        page = data.get("data") if isinstance(data, dict) and data.get("success") else None
        if reply.status != 200 or not isinstance(page, dict):
            found = failures.failure_in(data, credential=credential.masked)
            raise found or failures.from_status(
                reply.status, reply.body, credential=credential.masked
            )
        items = page.get("list")
        return [
            str(i["session_id"]) for i in items or [] if isinstance(i, dict) and i.get("session_id")
        ]

    async def generate_images(
        self, credential: Credential, prompt: str, n: int, size: str
    ) -> list[str]:
        return await cn_images.generate(self, credential, prompt, n, size)

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
    chat: ChatRequest, model: str, ids: Ids, thinking: bool, search: bool, media: Media
) -> bytes:
    text = upstream_prompt(chat)
    if media.documents:
        text = f"{media.documents}\n\n{text}"
    payload = _body(text, media.items, model, ids)
    payload["deep_search"] = "1" if thinking or chat.deep_search else "0"
    payload["enable_search"] = search
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()


def _body(text: str, items: list[dict[str, Any]], model: str, ids: Ids) -> dict[str, Any]:
    """A chat body: attachment items first, then the text item (spec §8.2, §8.5)."""
    message = {
        "mime_type": "text/plain",
        "content": text,
        "meta_data": {"ori_query": text},
        "status": "complete",
    }
    return {
        "req_id": ids.req_id,
        "parent_req_id": ids.parent or "0",
        "messages": [*items, message],
        "scene": "chat",
        "sub_scene": "",
        "scene_param": "continue_chat" if ids.parent else "first_turn",
        "session_id": ids.session_id,
        "biz_id": "ai_qwen",
        "topic_id": ids.topic_id,
        "model": model,
        "from": "default",
        "protocol_version": "v2",
        "messages_merge": False,
        "chat_client": "h5",
        "deep_search": "0",
        "enable_search": False,
        "temporary": False,
        "chat_mode": "quick",
        "bucket": {},
    }


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


async def _noting(
    events: AsyncIterator[StreamEvent], seen: list[bool]
) -> AsyncIterator[StreamEvent]:
    """Pass `events` on; `seen` becomes non-empty once the first one came."""
    async for event in events:
        if not seen:
            seen.append(True)
        yield event
