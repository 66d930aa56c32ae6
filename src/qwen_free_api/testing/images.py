"""Images the fake serves: PNG bytes, signed GET URLs (intl `key`, cn `auth_key`), the t2i stream.

Every generated or uploaded image is served by the fake itself, on the host the client used:
intl `GET /output/<uid>/t2i/<response_id>/<id>.png?key=<jwt>` and cn (CDN style)
`GET /<hash>%2Fo%2F<ts>.<ext>?auth_key=<exp>-0-0-<md5>`. A missing or wrong signed query is a 403
(OSS-style XML), an unknown path a 404; a good one returns the bytes.

intl t2i (protocol §3.7): `response.created`, `image_pending` `response.info` keep-alives
(`image_interval` s apart), one `phase:"image_gen"` frame per image whose `content` is the signed
URL, then `{"status":"finished","phase":"image_gen"}`. `image_refused`: an `answer` refusal text
and `finished`, no URL. `image_never`: keep-alives for ever.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import struct
import time
import uuid
import zlib

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from qwen_free_api.testing import oss
from qwen_free_api.testing.intl_frames import DONE, created_frame, encode
from qwen_free_api.testing.media_state import Blob
from qwen_free_api.testing.script import Script
from qwen_free_api.testing.state import FakeState
from qwen_free_api.testing.stream import STALL, Pause, Step

SIZES: dict[str, tuple[int, int]] = {  # aspect -> nominal (width, height) the upstream reports
    "1:1": (2048, 2048),
    "16:9": (2688, 1536),
    "9:16": (1536, 2688),
    "4:3": (2368, 1728),
    "3:4": (1728, 2368),
}
INTL_REFUSAL = "I can't generate that image."
CN_REFUSAL = "抱歉，这个请求无法为你生成图片。"
NEVER_KEEPALIVES = 10_000
_CDN_PRIVATE_KEY = "fake-cdn-private-key"
_OUTPUT_KEY = b"fake-output-key"


def png_bytes(width: int, height: int, seed: bytes) -> bytes:
    """A valid RGB PNG filled with a colour taken from `seed` (different seeds, different bytes)."""
    colour = (seed + b"\x80\x80\x80")[:3]
    row = b"\x00" + colour * width
    raw = row * height

    def chunk(tag: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(tag + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )


def image_for(size: str, seed: str) -> tuple[bytes, tuple[int, int]]:
    """PNG bytes in the aspect of `size` (1/64 of the nominal size) and the nominal (w, h)."""
    width, height = SIZES.get(size, SIZES["1:1"])
    digest = hashlib.sha256(seed.encode()).digest()
    return png_bytes(width // 64, height // 64, digest), (width, height)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _output_key(path: str) -> str:
    """A JWT-shaped resource key bound to the path."""
    head = _b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    claims = {"resource": path, "exp": int(time.time()) + 7 * 86400, "nonce": secrets.token_hex(4)}
    body = _b64(json.dumps(claims, separators=(",", ":")).encode())
    sig = hmac.new(_OUTPUT_KEY, f"{head}.{body}".encode(), hashlib.sha256).digest()
    return f"{head}.{body}.{_b64(sig)}"


def _auth_key(path: str) -> str:
    """Alibaba CDN type-A `auth_key`: `<exp>-<rand>-<uid>-md5(<path>-<exp>-<rand>-<uid>-<key>)`."""
    exp = int(time.time()) + 30 * 86400
    digest = hashlib.md5(f"{path}-{exp}-0-0-{_CDN_PRIVATE_KEY}".encode()).hexdigest()
    return f"{exp}-0-0-{digest}"


def _store(state: FakeState, blob: Blob) -> Blob:
    with state.locked():
        state.media.blobs[blob.path] = blob
    state.changed()
    return blob


def register_output(state: FakeState, base: str, owner: str, response_id: str, data: bytes) -> Blob:
    """An intl generated image: `<base>output/<uid>/t2i/<response_id>/<id>.png?key=…`."""
    while True:  # the captured names are unix seconds + 4 hex digits
        name = f"{int(time.time())}{secrets.token_hex(2)}.png"
        path = f"/output/{owner}/t2i/{response_id}/{name}"
        with state.locked():
            if path not in state.media.blobs:
                break
    key = _output_key(path)
    url = f"{base.rstrip('/')}{path}?key={key}"
    blob = Blob(path, "key", key, "image/png", data, url=url, owner=owner, name=name)
    return _store(state, blob)


def register_cdn(
    state: FakeState, base: str, ext: str, data: bytes, *, content_type: str, owner: str, name: str
) -> Blob:
    """A cn CDN object `<base><hash>%2Fo%2F<ts>.<ext>?auth_key=…` (GET /<hash>/o/<ts>.<ext>)."""
    digest, stamp = uuid.uuid4().hex, int(time.time() * 1000)
    path = f"/{digest}/o/{stamp}.{ext}"
    key = _auth_key(path)
    url = f"{base.rstrip('/')}/{digest}%2Fo%2F{stamp}.{ext}?auth_key={key}"
    blob = Blob(path, "auth_key", key, content_type, data, url=url, owner=owner, name=name)
    return _store(state, blob)


def blob_by_url(state: FakeState, url: str) -> Blob | None:
    """The blob whose full signed URL is `url` exactly."""
    with state.locked():
        return next((b for b in state.media.blobs.values() if b.url == url), None)


class ImageFiles:
    """GET of every image the fake holds."""

    def __init__(self, state: FakeState) -> None:
        self.state = state

    def routes(self) -> list[Route]:
        """The image paths (kept last: the cn CDN path is a broad pattern)."""
        return [
            Route("/output/{rest:path}", self.get, methods=["GET"]),
            Route("/{digest}/o/{name}", self.get, methods=["GET"]),
        ]

    async def get(self, request: Request) -> Response:
        """The bytes, when the signed query matches."""
        path = str(request.scope["path"])
        with self.state.locked():
            blob = self.state.media.blobs.get(path)
        host = request.url.netloc
        if blob is None:
            return oss.xml_error(404, "NoSuchKey", "The specified key does not exist.", host)
        given = request.query_params.get(blob.query_key, "")
        if not hmac.compare_digest(given, blob.query_value):
            self.state.note_media_refusal("image get", f"{blob.query_key} missing or wrong")
            return oss.xml_error(403, "AccessDenied", f"{blob.query_key} is invalid.", host)
        return Response(blob.data, media_type=blob.content_type)


def _image_frame(url: str, size: tuple[int, int], response_id: str) -> bytes:
    width, height = size
    delta = {
        "role": "assistant",
        "content": url,
        "phase": "image_gen",
        "extra": {"output_image_hw": [[height, width]]},
        "status": "typing",
    }
    usage = {
        "input_tokens": 0,
        "output_tokens": 0,
        "characters": 0,
        "width": width,
        "image_count": 1,
        "height": height,
    }
    payload = {
        "choices": [{"delta": delta}],
        "response_id": response_id,
        "usage": usage,
        "timestamp": int(time.time()),
    }
    return encode(payload)


def _finished(phase: str, response_id: str) -> bytes:
    delta = {"content": "", "role": "assistant", "status": "finished", "phase": phase}
    return encode({"choices": [{"delta": delta}], "response_id": response_id})


def _keepalive(chat_id: str, response_id: str, offset: float) -> bytes:
    info = {
        "action": "keep_alive",
        "chat_id": chat_id,
        "response_id": response_id,
        "timestamp": int(time.time() + offset),
    }
    return encode({"response.info": info})


def t2i_steps(
    state: FakeState,
    script: Script,
    *,
    base: str,
    owner: str,
    ids: tuple[str, str, str],
    size: str,
) -> tuple[list[Step], list[str]]:
    """The intl t2i stream for (chat_id, parent_id, response_id) and the image URLs it carries."""
    chat_id, parent_id, response_id = ids
    steps: list[Step] = [created_frame(chat_id, parent_id, response_id)]
    interval = script.image_interval
    count = script.image_pending
    if script.image_never:
        interval = interval or script.keepalive_every
        count = NEVER_KEEPALIVES
    for index in range(count):
        if interval > 0:
            steps.append(Pause(interval))
        steps.append(_keepalive(chat_id, response_id, interval * (index + 1)))
    if script.image_never:
        return [*steps, STALL], []
    urls: list[str] = []
    if script.image_refused or script.images <= 0:
        text = script.answer if script.answer is not None else INTL_REFUSAL
        delta = {"role": "assistant", "content": text, "phase": "answer", "status": "typing"}
        steps.append(encode({"choices": [{"delta": delta}], "response_id": response_id}))
        steps.append(_finished("answer", response_id))
    else:
        for index in range(script.images):
            data, nominal = image_for(size, f"{response_id}/{index}")
            blob = register_output(state, base, owner, response_id, data)
            urls.append(blob.url)
            steps.append(_image_frame(blob.url, nominal, response_id))
        steps.append(_finished("image_gen", response_id))
    if script.done_marker:
        steps.append(DONE)
    if script.crlf:
        steps = [s.replace(b"\n", b"\r\n") if isinstance(s, bytes) else s for s in steps]
    return steps, urls
