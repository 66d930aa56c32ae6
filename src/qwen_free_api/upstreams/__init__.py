"""The Qwen web backends: one module each, behind a small common protocol."""

from __future__ import annotations

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
