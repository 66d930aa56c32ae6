"""cn image generation (spec §8.6): a chat request that starts a drawing job, then `chat/snap`.

The chat body carries `"ai_tool_scene":"zaodian_generate_image"` and `biz_data`, a JSON string
`{"req":{rootModel, prompt, originPrompt, negativePrompt, params:{size, features}},
"bizScene":"genImage"}`. Its stream ends before any image exists, so the same body is POSTed to
`/api/v1/chat/snap` (signed afresh each time: salts are one-time) until the job's
`ai_generate_image_list` names image URLs, or it completes without one (a refusal). URLs are
returned exactly as given: their `auth_key` query is what makes them load.
"""

from __future__ import annotations

import asyncio
import json
import math
import re
import urllib.parse
import uuid
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from qwen_free_api.credentials import Credential
from qwen_free_api.errors import ContentFiltered, SigningFailed, UpstreamTimeout
from qwen_free_api.events import Finish, Opened, TextDelta
from qwen_free_api.upstreams import conversation_id

if TYPE_CHECKING:
    from qwen_free_api.upstreams.cn import Cn

IMAGE_SCENE = "zaodian_generate_image"
SIZES = {"1:1": 1.0, "16:9": 16 / 9, "9:16": 9 / 16, "3:4": 3 / 4}  # what spec §8.6 lists
STATIC_HOSTS = ("g.alicdn.com", "gw.alicdn.com", "img.alicdn.com", "at.alicdn.com")
DONE = ("complete", "finished", "failed", "error")
IMAGE_URL = re.compile(r"https?://[^\s\"'<>()]+?\.(?:png|jpe?g|webp)(?:\?[^\s\"'<>()]*)?", re.I)
PLACEHOLDER = re.compile(r"\[\([A-Za-z0-9_]+\)\]")


def upstream_size(size: str) -> str:
    """The cn aspect ratio nearest to `size` ("W:H" or "WxH"); landscape stays landscape."""
    if size in SIZES:
        return size
    width, _, height = size.lower().replace("x", ":").partition(":")
    try:
        ratio = float(width) / float(height)
    except (ValueError, ZeroDivisionError):
        return "1:1"
    if not math.isfinite(ratio) or ratio <= 0:
        return "1:1"

    def distance(name: str) -> tuple[float, bool]:
        candidate = SIZES[name]
        turned = (candidate > 1) != (ratio > 1) or (candidate < 1) != (ratio < 1)
        return round(abs(math.log(candidate / ratio)), 6), turned

    return min(SIZES, key=distance)


def image_fields(prompt: str, size: str) -> dict[str, str]:
    """The fields that make a chat request an image request."""
    req = {
        "rootModel": "qwen2",
        "prompt": prompt,
        "originPrompt": prompt,
        "negativePrompt": "",
        "params": {"size": size, "features": ["qwen_image_2"]},
    }
    biz = json.dumps({"req": req, "bizScene": "genImage"}, ensure_ascii=False)
    return {"ai_tool_scene": IMAGE_SCENE, "biz_data": biz}


async def generate(cn: Cn, credential: Credential, prompt: str, n: int, size: str) -> list[str]:
    """`n` image URLs; asks again while the backend drew fewer (at most `n` requests), all
    within the settings' image_timeout."""
    urls: list[str] = []
    refusal = ""
    try:
        async with asyncio.timeout(cn.settings.image_timeout):
            for _ in range(max(n, 1)):
                found, said = await _one_round(cn, credential, prompt, upstream_size(size))
                urls.extend(url for url in found if url not in urls)
                refusal = refusal or said
                if len(urls) >= n or not found:
                    break
    except TimeoutError:
        if not urls:
            raise UpstreamTimeout("the cn backend drew no image in time") from None
    if not urls:
        raise ContentFiltered(refusal.strip() or "the cn backend drew no image")
    return urls[:n]


async def _one_round(
    cn: Cn, credential: Credential, prompt: str, size: str
) -> tuple[list[str], str]:
    """One image request: (image URLs, what the backend said when it drew none)."""
    model = cn.catalogue.resolve("qwen")
    session_id, req_id = uuid.uuid4().hex, uuid.uuid4().hex
    body = cn.chat_body(prompt, model, session_id, req_id, image_fields(prompt, size))
    opened = Opened(conversation_id("cn", session_id, req_id, req_id), model)
    answered = False
    try:
        said: list[str] = []
        async for event in cn.signed_stream(credential, session_id, body, opened):
            answered = True
            if isinstance(event, TextDelta):
                said.append(event.text)
            elif isinstance(event, Finish) and event.reason == "content_filter":
                raise ContentFiltered("".join(said).strip() or "the cn backend refused to draw")
        if "".join(said).strip() in cn.settings.cn_canned_answers:
            raise SigningFailed("the cn backend answered with a canned refusal (signing)")
        urls, text = await _poll(cn, credential, body)
        return urls, text or "".join(said)
    finally:
        if answered and cn.settings.delete_sessions:
            cn.janitor.spawn(cn.delete_session(credential, session_id), "deleting cn image session")


async def _poll(cn: Cn, credential: Credential, body: bytes) -> tuple[list[str], str]:
    """Poll `chat/snap` until the job has images or is over; (URLs, its text)."""
    url = f"{cn.settings.cn_base_url}/api/v1/chat/snap"
    while True:
        await asyncio.sleep(cn.image_poll_interval)
        reply = await cn.signed_json(credential, url, body)
        data = reply.get("data")
        if not isinstance(data, dict):
            continue  # not known yet
        urls = image_urls(data)
        if urls:
            return urls, ""
        if _over(data):
            return [], answer_text(data)


def _messages(data: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for item in _list(data.get("response_messages") or data.get("messages")):
        if isinstance(item, dict):
            yield item


def _image_lists(data: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """The `content` of every `ai_generate_image_list` block of the answer."""
    for message in _messages(data):
        meta = message.get("meta_data")
        for block in _list(meta.get("multi_load") if isinstance(meta, dict) else None):
            if isinstance(block, dict) and block.get("type") == "ai_generate_image_list":
                content = block.get("content")
                if isinstance(content, dict):
                    yield content


def _static(url: str) -> bool:
    host = (urllib.parse.urlsplit(url).hostname or "").lower()
    return host in STATIC_HOSTS


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def image_urls(data: dict[str, Any]) -> list[str]:
    """The generated images' URLs (queries intact), in order; none while drawing."""
    urls: list[str] = []
    for content in _image_lists(data):
        layouts = [item for item in _list(content.get("layout_list")) if isinstance(item, dict)]
        chosen = {str(refer) for layout in layouts for refer in _list(layout.get("image"))}
        for info in _list(content.get("resource_infos")):
            url = info.get("url") if isinstance(info, dict) else None
            if isinstance(url, str) and (not chosen or str(info.get("refer_id")) in chosen):
                urls.append(url)
    if not urls and _over(data):  # another layout: any image URL in the finished answer
        urls = IMAGE_URL.findall(json.dumps(list(_messages(data)), ensure_ascii=False))
    return list(dict.fromkeys(url for url in urls if url and not _static(url)))


def _over(data: dict[str, Any]) -> bool:
    """Whether the job ended (a job still drawing keeps its image list `processing`)."""
    if str(data.get("status")) not in DONE:
        return False
    return all(str(content.get("status", "complete")) in DONE for content in _image_lists(data))


def answer_text(data: dict[str, Any]) -> str:
    """What the backend said in the job's answer (its refusal when it drew nothing)."""
    texts = [
        PLACEHOLDER.sub("", str(message["content"]))
        for message in _messages(data)
        if message.get("mime_type") in ("multi_load/iframe", "text/plain")
        and isinstance(message.get("content"), str)
    ]
    return "\n".join(text.strip() for text in texts if text.strip())
