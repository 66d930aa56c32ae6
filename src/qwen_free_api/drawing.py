"""Drawing: images from a prompt, for `/v1/images/generations` and for chats with a drawing
model (`qwen-image`), with the account pool's failover before anything was drawn."""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator, Mapping

from qwen_free_api.chat import ChatRequest
from qwen_free_api.credentials import Dialect
from qwen_free_api.errors import BadRequest, Blocked, CredentialRejected, GatewayError, RateLimited
from qwen_free_api.events import Finish, Opened, StreamEvent, TextDelta
from qwen_free_api.models import split_suffixes
from qwen_free_api.pool import Account, Pool
from qwen_free_api.upstreams import Upstream

log = logging.getLogger(__name__)

DRAWING_MODELS = ("qwen-image", "qwen-image-1", "dall-e-2", "dall-e-3", "gpt-image-1")
RATIOS = {"1:1": 1.0, "16:9": 16 / 9, "9:16": 9 / 16, "4:3": 4 / 3, "3:4": 3 / 4}
ATTEMPTS = 3


def is_drawing(model: str) -> bool:
    base = split_suffixes(model).base.lower()
    return base in DRAWING_MODELS or base.startswith("gpt-image")


def aspect(size: str | None) -> str:
    """An OpenAI `size` (`1024x1792`, `auto`, or already `16:9`) as the nearest upstream ratio."""
    text = (size or "auto").strip().lower()
    if text in RATIOS:
        return text
    if text == "auto":
        return "1:1"
    width, _, height = text.partition("x")
    try:
        ratio = int(width) / int(height)
    except (ValueError, ZeroDivisionError):
        raise BadRequest(f"size {size!r} is not WIDTHxHEIGHT or a ratio", param="size") from None
    return min(RATIOS, key=lambda name: abs(RATIOS[name] - ratio))


async def draw(
    pool: Pool,
    upstreams: Mapping[Dialect, Upstream],
    accounts: list[Account],
    prompt: str,
    n: int,
    size: str,
) -> list[str]:
    """Image URLs from one account; another is tried when one is refused or limited."""
    if not prompt.strip():
        raise BadRequest("the prompt is empty", param="prompt")
    tried: set[str] = set()
    failure: GatewayError | None = None
    for _ in range(ATTEMPTS):
        remaining = [a for a in accounts if a.id not in tried]
        if not remaining and failure is not None:
            raise failure
        try:
            async with pool.lease(remaining) as account:
                tried.add(account.id)
                upstream = upstreams[account.credential.dialect]
                return await upstream.generate_images(account.credential, prompt, n, size)
        except (CredentialRejected, RateLimited, Blocked) as error:
            failure = error
            log.warning("drawing failed (%s); trying another credential", type(error).__name__)
    assert failure is not None
    raise failure


async def draw_in_chat(
    pool: Pool, upstreams: Mapping[Dialect, Upstream], accounts: list[Account], chat: ChatRequest
) -> AsyncIterator[StreamEvent]:
    """A chat answered by drawing its last user message: markdown images as the answer."""
    prompt = next((m.text for m in reversed(chat.messages) if m.role == "user"), "")
    urls = await draw(pool, upstreams, accounts, prompt, 1, "1:1")
    yield Opened(f"img.{uuid.uuid4().hex}", split_suffixes(chat.model).base)
    yield TextDelta("\n\n".join(f"![image]({url})" for url in urls))
    yield Finish("stop")
