"""The Qwen web backends: one module each, behind a small common protocol."""

from __future__ import annotations

import hashlib
import time
from collections.abc import AsyncIterator
from typing import Protocol

from qwen_free_api.chat import ChatRequest
from qwen_free_api.credentials import Credential, Dialect
from qwen_free_api.events import StreamEvent
from qwen_free_api.models import Catalogue, ModelInfo


class Upstream(Protocol):
    """What the service needs from a backend."""

    name: Dialect
    catalogue: Catalogue

    def stream(self, chat: ChatRequest, credential: Credential) -> AsyncIterator[StreamEvent]:
        """Answer `chat`; raises GatewayError subclasses for every failure."""
        ...

    async def delete(self, credential: Credential, conversation: str) -> None:
        """Delete the upstream session behind a conversation id of this backend."""
        ...

    async def check(self, credential: Credential) -> bool:
        """Whether the backend accepts `credential` (its cheapest authenticated call)."""
        ...

    async def list_models(self, credential: Credential) -> list[ModelInfo]:
        """The backend's own model list."""
        ...

    async def generate_images(
        self, credential: Credential, prompt: str, n: int, size: str
    ) -> list[str]:
        """Draw `n` images (`size` an aspect ratio: 1:1, 16:9, 9:16, 4:3, 3:4); their URLs,
        signed query strings kept. A refusal is ContentFiltered; no image within the
        settings' image_timeout is UpstreamTimeout."""
        ...


def conversation_id(dialect: Dialect, *parts: str) -> str:
    return ".".join((dialect, *parts))


def conversation_parts(dialect: Dialect, value: str | None, count: int) -> list[str] | None:
    """The ids packed into a conversation id of this backend, or None if it is not one."""
    if not value:
        return None
    text = value.removeprefix("chatcmpl-")
    parts = text.split(".")
    if parts[0] != dialect or len(parts) != count + 1 or not all(parts[1:]):
        return None
    return parts[1:]


class UploadCache:
    """What was uploaded with which credential, by the SHA-256 of its bytes, for a while.

    The same image sent again (every turn of a stateless client resends it) is uploaded once
    per credential; entries expire before the upstream's references would.
    """

    def __init__(self, ttl: float = 600.0, size: int = 1024) -> None:
        self._ttl = ttl
        self._size = size
        self._entries: dict[tuple[str, str], tuple[float, object]] = {}

    @staticmethod
    def key(credential: Credential, data: bytes) -> tuple[str, str]:
        owner = hashlib.sha256(credential.secret.encode()).hexdigest()
        return owner, hashlib.sha256(data).hexdigest()

    def get(self, key: tuple[str, str]) -> object | None:
        found = self._entries.get(key)
        if found is None or found[0] < time.monotonic():
            self._entries.pop(key, None)
            return None
        return found[1]

    def put(self, key: tuple[str, str], reference: object) -> None:
        if len(self._entries) >= self._size:
            now = time.monotonic()
            for stale in [k for k, (until, _) in self._entries.items() if until < now]:
                del self._entries[stale]
            if len(self._entries) >= self._size:
                del self._entries[next(iter(self._entries))]
        self._entries[key] = (time.monotonic() + self._ttl, reference)
