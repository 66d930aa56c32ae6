"""Shared state: account health, leases, pauses and conversations, in SQLite or Redis.

One interface, two backends. SQLite (a file, WAL) serves one machine and any number of worker
processes on it; Redis lets several instances behind a load balancer share the same state.
Every method is atomic on its own, across processes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol


@dataclass(slots=True)
class Health:
    """What the pool knows about one credential."""

    successes: int = 0
    failures: int = 0
    last_error: str = ""
    last_error_at: float = 0.0
    cooldown_until: float = 0.0
    disabled: str = ""  # the reason, empty while enabled
    next_slot: float = 0.0  # earliest start of the next request (minimum interval)


@dataclass(slots=True)
class Conversation:
    """An upstream conversation this server answered, kept for continuation."""

    id: str  # the conversation id clients see
    account: str  # the credential's id
    dialect: str
    prefix_hash: str  # hash of the messages up to and including this answer
    updated_at: float
    expires_at: float
    data: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Lease:
    account: str
    id: str
    wait: float  # seconds to wait before using it (minimum interval between requests)


class Store(Protocol):
    async def close(self) -> None: ...

    async def health(self, accounts: list[str]) -> dict[str, Health]: ...

    async def note_success(self, account: str) -> None: ...

    async def note_failure(
        self, account: str, error: str, *, cooldown_until: float = 0.0, disabled: str = ""
    ) -> None: ...

    async def set_disabled(self, account: str, reason: str) -> None: ...

    async def acquire(
        self, account: str, *, cap: int, ttl: float, interval: float
    ) -> Lease | None: ...

    async def release(self, lease: Lease) -> None: ...

    async def renew(self, lease: Lease, ttl: float) -> None:
        """Push a held lease's expiry to `ttl` seconds from now (its holder is alive)."""
        ...

    async def in_flight(self, accounts: list[str]) -> dict[str, int]: ...

    async def pause(self, dialect: str, base: float, limit: float) -> float:
        """Pause a whole backend, doubling the pause at each strike; returns its end."""
        ...

    async def paused_until(self, dialect: str) -> float: ...

    async def resume(self, dialect: str) -> None: ...

    async def put_conversation(self, conversation: Conversation) -> None: ...

    async def conversation(self, ident: str) -> Conversation | None: ...

    async def conversation_by_prefix(self, prefix_hash: str) -> Conversation | None: ...

    async def expired_conversations(self, now: float, limit: int) -> list[Conversation]: ...

    async def drop_conversation(self, ident: str) -> None: ...

    async def accounts(self) -> dict[str, str]: ...

    async def put_account(self, account: str, secret: str) -> None: ...

    async def drop_account(self, account: str) -> None: ...


async def open_store(url: str) -> Store:
    """`sqlite:///relative/path`, `sqlite:////absolute/path` or `redis://host:port/db`."""
    if url.startswith(("redis://", "rediss://", "unix://")):
        from qwen_free_api.store.redis import RedisStore

        return await RedisStore(url).open()
    if url.startswith("sqlite:///"):
        from pathlib import Path

        from qwen_free_api.store.sqlite import SqliteStore

        return await SqliteStore(Path(url.removeprefix("sqlite:///"))).open()
    raise ValueError(f"unknown store {url!r}: use sqlite:///path or redis://host:port/db")
