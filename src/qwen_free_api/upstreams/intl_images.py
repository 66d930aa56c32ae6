"""intl image generation (spec §3.7): a chat created as `t2i`, then one stream that sends
keep-alives while drawing and one `image_gen` frame per image, whose URL must keep its `key`."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from typing import TYPE_CHECKING, Any

from qwen_free_api import sse
from qwen_free_api.credentials import Credential
from qwen_free_api.errors import ContentFiltered, UpstreamTimeout
from qwen_free_api.upstreams import failures
from qwen_free_api.upstreams.replies import expect_stream, json_frame

if TYPE_CHECKING:
    from qwen_free_api.upstreams.intl import Intl

SIZES = ("1:1", "16:9", "9:16", "4:3", "3:4")


async def generate(intl: Intl, credential: Credential, prompt: str, n: int, size: str) -> list[str]:
    """`n` image URLs; asks again while the upstream drew fewer (at most `n` rounds)."""
    urls: list[str] = []
    refusal = ""
    try:
        async with asyncio.timeout(intl.settings.image_timeout):
            for _ in range(n):
                found, said = await _one_round(intl, credential, prompt, size)
                urls.extend(found)
                refusal = refusal or said
                if len(urls) >= n or not found:
                    break
    except TimeoutError:
        raise UpstreamTimeout("the intl backend drew no image in time") from None
    if not urls:
        raise ContentFiltered(refusal.strip() or "the intl backend drew no image")
    return urls[:n]


async def _one_round(
    intl: Intl, credential: Credential, prompt: str, size: str
) -> tuple[list[str], str]:
    model = intl.catalogue.resolve("qwen")
    chat_id = await intl.new_chat(credential, model, False, "t2i")
    try:
        url = f"{intl.base}/api/v2/chat/completions?chat_id={chat_id}"
        body = json.dumps(_payload(model, chat_id, prompt, size), ensure_ascii=False).encode()
        headers = intl.headers(credential, chat_id)
        async with intl.http.stream("POST", url, headers=headers, body=body) as reply:
            await expect_stream(reply, credential)
            return await _read(reply.chunks(), credential)
    finally:
        if intl.settings.delete_sessions:
            intl.janitor.spawn(intl.delete_chat(credential, chat_id), "deleting intl t2i chat")


async def _read(chunks: Any, credential: Credential) -> tuple[list[str], str]:
    urls: list[str] = []
    said: list[str] = []
    async for message in sse.decode(chunks):
        frame = json_frame(message.data)
        error = failures.failure_in(frame, credential=credential.masked)
        if error is not None:
            raise error
        choices = frame.get("choices")
        delta = choices[0].get("delta", {}) if isinstance(choices, list) and choices else {}
        content = delta.get("content") if isinstance(delta, dict) else None
        if delta.get("phase") == "image_gen" and isinstance(content, str) and content:
            urls.append(content.strip())
        elif isinstance(content, str):
            said.append(content)
        if delta.get("status") == "finished":
            break
    return urls, "".join(said)


def _payload(model: str, chat_id: str, prompt: str, size: str) -> dict[str, Any]:
    now = int(time.time())
    message = {
        "fid": str(uuid.uuid4()),
        "parentId": None,
        "childrenIds": [str(uuid.uuid4())],
        "role": "user",
        "content": prompt,
        "user_action": "chat",
        "files": [],
        "timestamp": now,
        "models": [model],
        "chat_type": "t2i",
        "feature_config": {"thinking_enabled": False, "output_schema": "phase"},
        "extra": {"meta": {"subChatType": "t2i"}},
        "sub_chat_type": "t2i",
        "parent_id": None,
    }
    return {
        "stream": True,
        "version": "2.1",
        "incremental_output": True,
        "chat_id": chat_id,
        "chat_mode": "normal",
        "model": model,
        "parent_id": None,
        "messages": [message],
        "size": size if size in SIZES else "1:1",
        "timestamp": now,
    }
