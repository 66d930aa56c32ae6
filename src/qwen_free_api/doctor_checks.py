"""The doctor's checks: each one capability of a backend, tried with the real upstream clients.

A check returns a short detail when the capability works and raises when it does not
(`Broken` for a wrong answer, the client's own GatewayError for an upstream failure). Every
chat a check opens is noted in `Probe.created`, for the session clean-up check.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from qwen_free_api.chat import Attachment, ChatRequest, Message
from qwen_free_api.credentials import Credential
from qwen_free_api.events import Citations, Finish, Opened, ReasoningDelta, TextDelta, collect
from qwen_free_api.settings import Settings
from qwen_free_api.upstreams import Upstream, conversation_parts, failures
from qwen_free_api.upstreams.cn import Cn
from qwen_free_api.upstreams.intl import Intl

MODEL = "qwen"
IMAGE_PROMPT = "qwen-free-api doctor, image check: a plain red square on a white background"


class Broken(Exception):
    """The upstream answered, but not with what the capability needs."""


@dataclass
class Probe:
    """One credential being examined, and the chats its checks opened."""

    upstream: Upstream
    credential: Credential
    settings: Settings
    created: list[str] = field(default_factory=list)


def prompt(check: str, extra: str = "") -> str:
    """The fixed prompt of a check (its `<check> check` marker lets a fake script it)."""
    return f"qwen-free-api doctor, {check} check: {extra or 'reply with one short sentence.'}"


def short(text: str, size: int = 40) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= size else flat[: size - 1] + "…"


def asking(
    check: str,
    *,
    thinking: bool | None = None,
    search: bool = False,
    attachments: tuple[Attachment, ...] = (),
) -> ChatRequest:
    message = Message("user", prompt(check), attachments=attachments)
    return ChatRequest(MODEL, (message,), thinking=thinking, search=search)


async def check_credential(probe: Probe) -> str:
    expires = probe.credential.expires_at()
    if probe.credential.expired():
        when = datetime.fromtimestamp(expires or 0, UTC).isoformat(timespec="minutes")
        raise Broken(f"the JWT expired at {when}; sign in again for a fresh one")
    if not await probe.upstream.check(probe.credential):
        raise Broken("the upstream refused the credential")
    if expires is None:
        return "accepted"
    day = datetime.fromtimestamp(expires, UTC).date().isoformat()
    return f"accepted (JWT valid until {day})"


async def check_chat(probe: Probe) -> str:
    done = await collect(probe.upstream.stream(asking("chat"), probe.credential))
    if done.conversation_id:
        probe.created.append(done.conversation_id)
    if not done.text.strip():
        raise Broken("the answer was empty")
    return f'answered "{short(done.text)}"'


async def _stream(probe: Probe, chat: ChatRequest) -> tuple[int, int, int, bool]:
    """(text deltas, reasoning characters, sources, finished) of a streamed answer."""
    deltas = reasoning = sources = 0
    finished = False
    async for event in probe.upstream.stream(chat, probe.credential):
        match event:
            case Opened(conversation_id=conversation):
                probe.created.append(conversation)
            case TextDelta():
                deltas += 1
            case ReasoningDelta(text=text):
                reasoning += len(text)
            case Citations(items=items):
                sources += len(items)
            case Finish():
                finished = True
    if not finished:
        raise Broken("the stream ended without finishing the answer")
    return deltas, reasoning, sources, finished


async def check_stream(probe: Probe) -> str:
    deltas, _, _, _ = await _stream(probe, asking("stream"))
    if deltas < 2:
        raise Broken(f"the answer arrived in {deltas} piece(s), not as a stream")
    return f"{deltas} text deltas"


async def check_thinking(probe: Probe) -> str:
    _, reasoning, _, _ = await _stream(probe, asking("thinking", thinking=True))
    if not reasoning:
        raise Broken("thinking was asked for, but no reasoning arrived")
    return f"{reasoning} characters of reasoning"


async def check_search(probe: Probe) -> str:
    _, _, sources, _ = await _stream(probe, asking("search", search=True))
    return f"answered with search on, {sources} source(s) cited"


async def check_upload(probe: Probe) -> str:
    image = Attachment("image", "image/png", "qfa-doctor.png", tiny_png())
    done = await collect(
        probe.upstream.stream(asking("upload", attachments=(image,)), probe.credential)
    )
    if done.conversation_id:
        probe.created.append(done.conversation_id)
    if not done.text.strip():
        raise Broken("the answer about the uploaded image was empty")
    return f'uploaded a PNG; answered "{short(done.text, 30)}"'


async def check_image(probe: Probe) -> str:
    urls = await probe.upstream.generate_images(probe.credential, IMAGE_PROMPT, 1, "1:1")
    if not urls:
        raise Broken("the generation named no image")
    return f"{len(urls)} image(s) generated"


async def check_cleanup(probe: Probe) -> str:
    if not probe.created:
        raise Skipped("no chat was opened to clean up")
    for conversation in probe.created:
        await probe.upstream.delete(probe.credential, conversation)
    left = await remaining(probe)
    if left:
        raise Broken(f"{len(left)} of {len(probe.created)} chats still exist after deletion")
    return f"{len(probe.created)} chats deleted and gone"


async def remaining(probe: Probe) -> list[str]:
    """The chats the doctor opened that can still be found (listed, or fetched by id)."""
    upstream = probe.upstream
    if isinstance(upstream, Cn):
        listed = set(await upstream.session_ids(probe.credential))
        ids = [conversation_parts("cn", c, 3) or [""] for c in probe.created]
        return [parts[0] for parts in ids if parts[0] in listed]
    if isinstance(upstream, Intl):
        chats = [(conversation_parts("intl", c, 2) or [""])[0] for c in probe.created]
        return [chat for chat in chats if await _intl_chat_exists(upstream, probe, chat)]
    return []


async def _intl_chat_exists(intl: Intl, probe: Probe, chat_id: str) -> bool:
    url = f"{intl.base}/api/v2/chats/{chat_id}"
    reply = await intl.http.request("GET", url, headers=intl.headers(probe.credential))
    data = failures.parse_json(reply.body)
    return reply.status == 200 and isinstance(data, dict) and data.get("success") is True


class Skipped(Exception):
    """The check cannot run (its precondition is missing); neither ok nor broken."""


CheckFn = Callable[[Probe], Awaitable[str]]
CHECKS: tuple[tuple[str, CheckFn], ...] = (
    ("credential", check_credential),
    ("chat", check_chat),
    ("stream", check_stream),
    ("thinking", check_thinking),
    ("search", check_search),
    ("upload", check_upload),
    ("image", check_image),
    ("cleanup", check_cleanup),
)
NAMES = tuple(name for name, _ in CHECKS)


def tiny_png(size: int = 8) -> bytes:
    """A small, valid PNG (a red square), made here so the upload needs no file."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", size, size, 8, 2, 0, 0, 0)  # 8-bit RGB
    rows = b"".join(b"\x00" + b"\xd0\x20\x20" * size for _ in range(size))
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )
