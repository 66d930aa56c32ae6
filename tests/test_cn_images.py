"""cn image generation against the fake: the `zaodian_generate_image` chat, `chat/snap` polled
(signed afresh each time) until URLs appear, their `auth_key` kept; refusal and timeout."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from qwen_free_api.credentials import parse_credential
from qwen_free_api.errors import ContentFiltered, UpstreamTimeout
from qwen_free_api.janitor import Janitor
from qwen_free_api.testing import FakeUpstream, Script
from qwen_free_api.upstreams.cn import Cn
from qwen_free_api.upstreams.cn_images import image_urls, upstream_size
from qwen_free_api.upstreams.http import Http

from support import CN_TICKET, settings_for

CN_REFUSAL = "抱歉，这个请求无法为你生成图片。"
CREDENTIAL = parse_credential(CN_TICKET)


class Drawing:
    def __init__(self, cn: Cn, janitor: Janitor) -> None:
        self.cn = cn
        self.janitor = janitor

    async def draw(self, n: int = 1, size: str = "1:1") -> list[str]:
        try:
            return await self.cn.generate_images(CREDENTIAL, "一只橘猫", n, size)
        finally:
            await self.janitor.drain(5)


async def make(url: str, tmp_path: Path, **overrides: Any) -> AsyncIterator[Drawing]:
    settings = settings_for(url, tmp_path / "s.db", **overrides)
    http = Http(settings)
    janitor = Janitor()
    cn = Cn(settings, http, janitor)
    cn.image_poll_interval = 0
    yield Drawing(cn, janitor)
    await http.close()


@pytest.fixture
async def drawing(fake_server: tuple[FakeUpstream, str], tmp_path: Path) -> AsyncIterator[Drawing]:
    async for made in make(fake_server[1], tmp_path):
        yield made


@pytest.fixture
async def hasty(fake_server: tuple[FakeUpstream, str], tmp_path: Path) -> AsyncIterator[Drawing]:
    async for made in make(fake_server[1], tmp_path, image_timeout=0.3):
        yield made


def biz_of(fake: FakeUpstream, index: int = -1) -> dict[str, Any]:
    body = fake.chat_requests("cn")[index].json()
    assert body["ai_tool_scene"] == "zaodian_generate_image"
    return dict(json.loads(body["biz_data"]))


def snaps(fake: FakeUpstream) -> list[Any]:
    return [r for r in fake.requests if r.path == "/api/v1/chat/snap"]


async def test_one_image_with_its_auth_key(
    drawing: Drawing, fake: FakeUpstream, fake_server: tuple[FakeUpstream, str]
) -> None:
    fake.sign_mode = "hard"  # the chat and every poll must be signed with a fresh salt
    (url,) = await drawing.draw(size="3:4")
    assert "%2Fo%2F" in url and "?auth_key=" in url and fake.sign_failures == []
    async with httpx.AsyncClient() as client:
        image = await client.get(url)
    assert image.status_code == 200 and image.content.startswith(b"\x89PNG")
    biz = biz_of(fake)
    assert biz["bizScene"] == "genImage" and biz["req"]["prompt"] == "一只橘猫"
    assert biz["req"]["params"]["size"] == "3:4" and biz["req"]["rootModel"] == "qwen2"
    polls = snaps(fake)
    assert len(polls) == 3  # two pending answers (the default), then the image
    assert len({r.headers["eo-clt-sacsft"] for r in polls}) == 3
    assert all(r.body == fake.chat_requests("cn")[-1].body for r in polls)
    session = fake.chat_requests("cn")[-1].json()["session_id"]
    assert fake.sessions_deleted["cn"] == [session]


async def test_two_images_from_one_request(drawing: Drawing, fake: FakeUpstream) -> None:
    fake.enqueue("cn", Script(images=2, image_pending=0))
    urls = await drawing.draw(n=2, size="16:9")
    assert len(urls) == len(set(urls)) == 2 and all("auth_key=" in u for u in urls)
    assert len(fake.chat_requests("cn")) == 1 and biz_of(fake)["req"]["params"]["size"] == "16:9"


async def test_more_requests_when_one_draws_fewer(drawing: Drawing, fake: FakeUpstream) -> None:
    fake.enqueue("cn", Script(images=1, image_pending=0))
    fake.enqueue("cn", Script(images=1, image_pending=1))
    urls = await drawing.draw(n=2)
    assert len(set(urls)) == 2 and len(fake.chat_requests("cn")) == 2
    assert len(fake.sessions_deleted["cn"]) == 2


async def test_pending_polls_then_ready(drawing: Drawing, fake: FakeUpstream) -> None:
    fake.enqueue("cn", Script(image_pending=5))
    assert len(await drawing.draw()) == 1
    (job,) = fake.media.image_jobs.values()
    assert job.polls == 6 and len(snaps(fake)) == 6


async def test_a_refusal_is_content_filtered(drawing: Drawing, fake: FakeUpstream) -> None:
    fake.enqueue("cn", Script(image_refused=True, image_pending=1))
    with pytest.raises(ContentFiltered) as caught:
        await drawing.draw(n=2)
    assert caught.value.message == CN_REFUSAL and caught.value.status == 400
    assert len(fake.chat_requests("cn")) == 1  # a refusal is not asked again


async def test_a_job_that_never_ends_times_out(hasty: Drawing, fake: FakeUpstream) -> None:
    fake.enqueue("cn", Script(image_never=True))
    hasty.cn.image_poll_interval = 0.02
    with pytest.raises(UpstreamTimeout):
        await hasty.draw()
    assert len(snaps(fake)) >= 1
    assert len(fake.sessions_deleted["cn"]) == 1  # cleaned up after the timeout too


def test_sizes_map_to_the_nearest_cn_aspect() -> None:
    assert [upstream_size(s) for s in ("1:1", "16:9", "9:16", "3:4")] == [
        "1:1",
        "16:9",
        "9:16",
        "3:4",
    ]
    assert upstream_size("4:3") == "16:9"  # equally near 1:1; stays landscape
    assert upstream_size("1024x1792") == "9:16" and upstream_size("1792x1024") == "16:9"
    assert upstream_size("768x1024") == "3:4" and upstream_size("junk") == "1:1"


def test_image_urls_skip_static_images_and_keep_queries() -> None:
    signed = "https://workspace-zb-cdn.qianwen.com/ab%2Fo%2F1.png?auth_key=1-0-0-ff"
    pending = {
        "status": "processing",
        "response_messages": [
            {
                "mime_type": "multi_load/iframe",
                "meta_data": {
                    "multi_load": [
                        {
                            "type": "ai_generate_image_list",
                            "content": {
                                "status": "processing",
                                "resource_infos": [
                                    {"url": "https://g.alicdn.com/x/loading.png", "refer_id": "l"}
                                ],
                            },
                        }
                    ]
                },
            }
        ],
    }
    assert image_urls(pending) == []
    other_layout = {
        "status": "complete",
        "response_messages": [
            {
                "mime_type": "multi_load/iframe",
                "content": "done",
                "meta_data": {"result_images": [{"url": signed}, {"url": signed}]},
            }
        ],
    }
    assert image_urls(other_layout) == [signed]
