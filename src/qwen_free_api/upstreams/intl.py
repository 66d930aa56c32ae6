"""The international backend, chat.qwen.ai (a JWT; incremental frames with phases)."""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from qwen_free_api import sse
from qwen_free_api.attachments import check_limits, sent_attachments
from qwen_free_api.chat import Attachment, ChatRequest
from qwen_free_api.credentials import Credential, Dialect
from qwen_free_api.errors import BadRequest, ProtocolError
from qwen_free_api.events import (
    Citation,
    Citations,
    Finish,
    Heartbeat,
    Opened,
    ReasoningDelta,
    StreamEvent,
    TextDelta,
    Usage,
)
from qwen_free_api.janitor import Janitor
from qwen_free_api.models import Catalogue, ModelInfo, split_suffixes
from qwen_free_api.prompt import upstream_prompt
from qwen_free_api.settings import Settings
from qwen_free_api.snapshots import Differ
from qwen_free_api.upstreams import (
    UploadCache,
    conversation_id,
    conversation_parts,
    failures,
    intl_account,
    intl_files,
    intl_images,
)
from qwen_free_api.upstreams.http import Http, Reply
from qwen_free_api.upstreams.replies import expect_stream, json_frame

log = logging.getLogger(__name__)

FALLBACK_MODELS = (
    ModelInfo("qwen3.7-plus", "Qwen3.7-Plus"),
    ModelInfo("qwen3.7-max", "Qwen3.7-Max"),
    ModelInfo("qwen3.6-plus", "Qwen3.6-Plus"),
    ModelInfo("qwen3.5-plus", "Qwen3.5-Plus"),
    ModelInfo("qwen3.5-flash", "Qwen3.5-Flash"),
    ModelInfo("qwen3-max", "Qwen3-Max"),
    ModelInfo("qwen3-coder-plus", "Qwen3-Coder"),
)
ALIASES = {
    "qwen": "qwen3.7-plus",
    "qwen-plus": "qwen3.7-plus",
    "qwen-max": "qwen3.7-max",
    "qwen-flash": "qwen3.5-flash",
    "qwen-coder": "qwen3-coder-plus",
}
DEFAULT_MODEL = "qwen3.7-plus"


@dataclass(slots=True)
class _Turn:
    """State of one answer while its frames arrive."""

    answer: Differ = field(default_factory=lambda: Differ("incremental"))
    thinking: Differ = field(default_factory=lambda: Differ("incremental"))
    summary: Differ = field(default_factory=lambda: Differ("cumulative"))
    usage: dict[str, Any] = field(default_factory=dict)
    cited: set[str] = field(default_factory=set)
    finished: bool = False


class Intl:
    name: Dialect = "intl"

    def __init__(self, settings: Settings, http: Http, janitor: Janitor) -> None:
        self.settings = settings
        self.http = http
        self.janitor = janitor
        self.base = settings.intl_base_url
        self._uploads = UploadCache()
        self.catalogue = Catalogue(
            FALLBACK_MODELS,
            ALIASES,
            DEFAULT_MODEL,
            settings.models_ttl,
            settings.models_by_pattern,
        )

    def headers(self, credential: Credential, chat_id: str | None = None) -> dict[str, str]:
        return {
            "authorization": f"Bearer {credential.secret}",
            "cookie": f"token={credential.secret}",
            "content-type": "application/json",
            "accept": "application/json, text/event-stream",
            "source": "web",
            "version": self.settings.intl_web_version,
            "bx-v": "2.5.36",
            "timezone": time.strftime("%a %b %d %Y %H:%M:%S GMT%z"),
            "x-request-id": str(uuid.uuid4()),
            "x-accel-buffering": "no",
            "origin": self.base,
            "referer": f"{self.base}/c/{chat_id or 'new-chat'}",
        }

    async def stream(self, chat: ChatRequest, credential: Credential) -> AsyncIterator[StreamEvent]:
        await self.catalogue.warm(
            lambda: self.list_models(credential),
            lambda work: self.janitor.spawn(work, "refreshing the model list"),
        )
        choice = split_suffixes(chat.model)
        model = self.catalogue.resolve(choice.base)
        thinking = choice.thinking if choice.thinking is not None else chat.thinking
        search = choice.search or chat.search
        ids = self._continuation(chat)
        chat_id = ids[0] if ids else await self.new_chat(credential, model, search)
        parent = ids[1] if ids else None
        files = await self._upload_all(chat, credential)
        body = self._payload(chat, model, chat_id, parent, bool(thinking), search, files)
        finished = False  # a finished chat is the gateway's to keep or delete
        try:
            url = f"{self.base}/api/v2/chat/completions?chat_id={chat_id}"
            headers = self.headers(credential, chat_id)
            async with self.http.stream("POST", url, headers=headers, body=body) as reply:
                await expect_stream(reply, credential)
                async for event in self._events(reply, credential, chat_id, model):
                    finished = isinstance(event, Finish)
                    yield event
        finally:
            if ids is None and not finished and self.settings.delete_sessions:
                self.janitor.spawn(self.delete_chat(credential, chat_id), "deleting intl chat")

    async def _upload_all(self, chat: ChatRequest, credential: Credential) -> list[Any]:
        """Upload the attachments of the turns being sent (each once per credential)."""
        found = sent_attachments(chat)
        if not found:
            return []
        check_limits(found, "intl")
        return list(await asyncio.gather(*(self._upload(credential, a) for a in found)))

    async def _upload(self, credential: Credential, attachment: Attachment) -> Any:
        key = self._uploads.key(credential, attachment.data or b"")
        cached = self._uploads.get(key)
        if cached is not None:
            return cached
        headers = self.headers(credential)
        entry = await intl_files.upload(
            self.http,
            self.base,
            self.settings.intl_oss_base_url,
            headers,
            credential,
            attachment,
        )
        self._uploads.put(key, entry)
        return entry

    async def delete(self, credential: Credential, conversation: str) -> None:
        ids = conversation_parts("intl", conversation, 2)
        if ids is not None:
            await self.delete_chat(credential, ids[0])

    def _continuation(self, chat: ChatRequest) -> list[str] | None:
        if not chat.conversation_id:
            return None
        ids = conversation_parts("intl", chat.conversation_id, 2)
        if ids is None:
            raise BadRequest(
                "conversation_id does not belong to the intl backend", param="conversation_id"
            )
        return ids

    async def new_chat(
        self, credential: Credential, model: str, search: bool, chat_type: str = ""
    ) -> str:
        body = {
            "title": "New Chat",
            "models": [model],
            "chat_mode": "normal",
            "chat_type": chat_type or ("search" if search else "t2t"),
            "timestamp": int(time.time() * 1000),
            "project_id": "",
        }
        url = f"{self.base}/api/v2/chats/new"
        reply = await self.http.request(
            "POST", url, headers=self.headers(credential), body=json.dumps(body).encode()
        )
        data = _json_ok(reply.status, reply.body, credential)
        chat_id = data.get("data", {}).get("id") if isinstance(data.get("data"), dict) else None
        if not isinstance(chat_id, str) or not chat_id:
            raise ProtocolError("intl chats/new returned no chat id")
        return chat_id

    def _payload(
        self,
        chat: ChatRequest,
        model: str,
        chat_id: str,
        parent: str | None,
        thinking: bool,
        search: bool,
        files: list[Any],
    ) -> bytes:
        chat_type = "search" if search else "t2t"
        feature: dict[str, Any] = {
            "thinking_enabled": thinking,
            "output_schema": "phase",
            "research_mode": "normal",
            "auto_thinking": thinking,
            "thinking_mode": "Thinking" if thinking else "Fast",
            "thinking_format": self.settings.intl_thinking_format,
            "auto_search": search,
        }
        if thinking and chat.thinking_budget:
            feature["thinking_budget"] = chat.thinking_budget
        now = int(time.time())
        message = {
            "fid": str(uuid.uuid4()),
            "parentId": parent,
            "childrenIds": [str(uuid.uuid4())],
            "role": "user",
            "content": upstream_prompt(chat),
            "user_action": "chat",
            "files": files,
            "timestamp": now,
            "models": [model],
            "chat_type": chat_type,
            "feature_config": feature,
            "extra": {"meta": {"subChatType": chat_type}},
            "sub_chat_type": chat_type,
            "parent_id": parent,
        }
        payload = {
            "stream": True,
            "version": "2.1",
            "incremental_output": True,
            "chat_id": chat_id,
            "chat_mode": "normal",
            "model": model,
            "parent_id": parent,
            "messages": [message],
            "timestamp": now,
        }
        return json.dumps(payload, ensure_ascii=False).encode()

    async def _events(
        self, reply: Reply, credential: Credential, chat_id: str, model: str
    ) -> AsyncIterator[StreamEvent]:
        turn = _Turn()
        async for message in sse.decode(reply.chunks()):
            if message.data == "[DONE]":
                break
            frame = json_frame(message.data)
            created = frame.get("response.created")
            if isinstance(created, dict):
                response_id = str(created.get("response_id") or "")
                yield Opened(conversation_id("intl", chat_id, response_id), model)
                continue
            if "response.info" in frame:
                yield Heartbeat()
                continue
            error = failures.failure_in(frame, credential=credential.masked)
            if error is not None:
                raise error
            for event in _frame_events(frame, turn):
                yield event
            if turn.finished:
                break
        if not turn.finished:
            raise ProtocolError("the upstream ended the answer before finishing it")
        yield Finish("stop", _usage(turn.usage))

    async def delete_chat(self, credential: Credential, chat_id: str) -> None:
        url = f"{self.base}/api/v2/chats/{chat_id}"
        reply = await self.http.request("DELETE", url, headers=self.headers(credential))
        if reply.status != 200:
            log.warning("intl chat deletion answered HTTP %s", reply.status)

    async def sign_in(self, email: str, password: str) -> str:
        """A fresh JWT for an account, by its email and password."""
        return await intl_account.sign_in(self.http, self.base, email, password)

    async def check(self, credential: Credential) -> bool:
        if credential.expired():
            return False
        url = f"{self.base}/api/v2/user"
        reply = await self.http.request("GET", url, headers=self.headers(credential))
        if reply.status != 200:
            return False
        data = failures.parse_json(reply.body)
        return isinstance(data, dict) and data.get("success") is not False and "data" in data

    async def generate_images(
        self, credential: Credential, prompt: str, n: int, size: str
    ) -> list[str]:
        return await intl_images.generate(self, credential, prompt, n, size)

    async def list_models(self, credential: Credential) -> list[ModelInfo]:
        reply = await self.http.request(
            "GET", f"{self.base}/api/models", headers=self.headers(credential)
        )
        data = _json_ok(reply.status, reply.body, credential)
        items = data.get("data")
        if isinstance(items, dict):  # the /api/v2/models/ envelope
            items = items.get("data")
        return [
            _model_info(item) for item in items or [] if isinstance(item, dict) and item.get("id")
        ]


def _json_ok(status: int, body: bytes, credential: Credential) -> dict[str, Any]:
    if status != 200:
        raise failures.from_status(status, body, credential=credential.masked)
    data = failures.parse_json(body)
    error = failures.failure_in(data, credential=credential.masked)
    if error is not None:
        raise error
    if not isinstance(data, dict):
        raise ProtocolError("the upstream sent an unexpected JSON body")
    return data


def _frame_events(frame: dict[str, Any], turn: _Turn) -> list[StreamEvent]:
    usage = frame.get("usage")
    if isinstance(usage, dict) and "output_tokens" in usage:
        turn.usage = usage
    choices = frame.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        return []
    delta = choices[0].get("delta")
    if not isinstance(delta, dict):
        return []
    return _delta_events(delta, turn)


def _delta_events(delta: dict[str, Any], turn: _Turn) -> list[StreamEvent]:
    phase = delta.get("phase")
    content = delta.get("content") or ""
    finished = delta.get("status") == "finished"
    events: list[StreamEvent] = []
    raw_extra = delta.get("extra")
    extra: dict[str, Any] = raw_extra if isinstance(raw_extra, dict) else {}
    if delta.get("name") == "web_search" or (extra and "web_search_info" in extra):
        events.extend(_citations(extra.get("web_search_info"), turn))
    if phase == "think":
        piece = turn.thinking.feed(content, final=finished)
        events.append(ReasoningDelta(piece)) if piece else None
    elif phase == "thinking_summary":
        piece = turn.summary.feed(_summary_text(extra), final=finished)
        events.append(ReasoningDelta(piece)) if piece else None
    elif phase in (None, "answer"):
        piece = turn.answer.feed(content, final=finished)
        events.append(TextDelta(piece)) if piece else None
        turn.finished = finished
    elif phase in ("image_gen", "image") and content:
        url = content if phase == "image_gen" else ""
        events.append(TextDelta(f"![image]({url})\n" if url else content))
        turn.finished = finished
    elif finished and phase in ("image_gen", "image"):
        turn.finished = True
    return events


def _summary_text(extra: dict[str, Any]) -> str:
    thought = extra.get("summary_thought") if extra else None
    parts = thought.get("content") if isinstance(thought, dict) else None
    return "\n".join(str(p) for p in parts) if isinstance(parts, list) else ""


def _citations(info: Any, turn: _Turn) -> list[StreamEvent]:
    if not isinstance(info, list):
        return []
    fresh = [
        Citation(str(item["url"]), str(item.get("title") or ""))
        for item in info
        if isinstance(item, dict) and item.get("url") and item["url"] not in turn.cited
    ]
    turn.cited.update(c.url for c in fresh)
    return [Citations(tuple(fresh))] if fresh else []


def _usage(usage: dict[str, Any]) -> Usage | None:
    prompt, completion = usage.get("input_tokens"), usage.get("output_tokens")
    if not isinstance(prompt, int) or not isinstance(completion, int):
        return None
    details = usage.get("output_tokens_details")
    reasoning = details.get("reasoning_tokens") if isinstance(details, dict) else None
    return Usage(prompt, completion, reasoning if isinstance(reasoning, int) else None)


def _model_info(item: dict[str, Any]) -> ModelInfo:
    meta = (item.get("info") or {}).get("meta") or {}
    abilities = meta.get("abilities") or meta.get("capabilities") or {}
    chat_types = meta.get("chat_type") or []
    return ModelInfo(
        id=str(item["id"]),
        name=str(item.get("name") or item["id"]),
        thinking=bool(abilities.get("thinking", True)),
        search="search" in chat_types if chat_types else True,
    )
