"""The shared store: Redis, for several instances behind one load balancer.

Leases are sorted-set members scored by their expiry and renewed while their holder lives, so a
crashed instance's leases lapse on their own; multi-step updates run as Lua scripts, atomic
across instances.
"""

from __future__ import annotations

import json
import math
import time
import uuid
from typing import Any

from redis import asyncio as aioredis

from qwen_free_api.store import Conversation, Health, Lease

ACQUIRE = """
local now, cap, ttl, interval = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]),
    tonumber(ARGV[4])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) >= cap then return false end
redis.call('ZADD', KEYS[1], now + ttl, ARGV[5])
redis.call('EXPIRE', KEYS[1], math.ceil(ttl) + 60)
local slot = tonumber(redis.call('HGET', KEYS[2], 'next_slot') or '0')
if slot < now then slot = now end
redis.call('HSET', KEYS[2], 'next_slot', tostring(slot + interval))
return tostring(slot - now)
"""
FAILURE = """
redis.call('HINCRBY', KEYS[1], 'failures', 1)
redis.call('HSET', KEYS[1], 'last_error', ARGV[1], 'last_error_at', ARGV[2])
local cooldown = tonumber(redis.call('HGET', KEYS[1], 'cooldown_until') or '0')
if tonumber(ARGV[3]) > cooldown then redis.call('HSET', KEYS[1], 'cooldown_until', ARGV[3]) end
if ARGV[4] ~= '' then redis.call('HSET', KEYS[1], 'disabled', ARGV[4]) end
return 1
"""
PAUSE = """
local strikes = redis.call('HINCRBY', KEYS[1], 'strikes', 1)
local span = tonumber(ARGV[2]) * 2 ^ (strikes - 1)
if span > tonumber(ARGV[3]) then span = tonumber(ARGV[3]) end
local untils = tonumber(ARGV[1]) + span
redis.call('HSET', KEYS[1], 'until', tostring(untils))
return tostring(untils)
"""


class RedisStore:
    """All state in Redis under the `qfa:` prefix."""

    def __init__(self, url: str) -> None:
        self._redis: Any = aioredis.from_url(url, decode_responses=True)
        self._acquire = self._redis.register_script(ACQUIRE)
        self._failure = self._redis.register_script(FAILURE)
        self._pause = self._redis.register_script(PAUSE)

    async def open(self) -> RedisStore:
        await self._redis.ping()
        return self

    async def close(self) -> None:
        await self._redis.aclose()

    async def health(self, accounts: list[str]) -> dict[str, Health]:
        pipe = self._redis.pipeline(transaction=False)
        for account in accounts:
            pipe.hgetall(f"qfa:health:{account}")
        rows = await pipe.execute() if accounts else []
        return {account: _health(row) for account, row in zip(accounts, rows, strict=True)}

    async def note_success(self, account: str) -> None:
        pipe = self._redis.pipeline(transaction=True)
        pipe.hincrby(f"qfa:health:{account}", "successes", 1)
        pipe.hset(f"qfa:health:{account}", "cooldown_until", 0)
        await pipe.execute()

    async def note_failure(
        self, account: str, error: str, *, cooldown_until: float = 0.0, disabled: str = ""
    ) -> None:
        args = [error, repr(time.time()), repr(cooldown_until), disabled]
        await self._failure(keys=[f"qfa:health:{account}"], args=args)

    async def set_disabled(self, account: str, reason: str) -> None:
        changes: dict[str, Any] = {"disabled": reason}
        if not reason:
            changes["cooldown_until"] = 0
        await self._redis.hset(f"qfa:health:{account}", mapping=changes)

    async def acquire(self, account: str, *, cap: int, ttl: float, interval: float) -> Lease | None:
        lease = uuid.uuid4().hex
        keys = [f"qfa:leases:{account}", f"qfa:health:{account}"]
        wait = await self._acquire(keys=keys, args=[time.time(), cap, ttl, interval, lease])
        return None if wait is None else Lease(account, lease, float(wait))

    async def release(self, lease: Lease) -> None:
        await self._redis.zrem(f"qfa:leases:{lease.account}", lease.id)

    async def renew(self, lease: Lease, ttl: float) -> None:
        key = f"qfa:leases:{lease.account}"
        pipe = self._redis.pipeline(transaction=True)
        pipe.zadd(key, {lease.id: time.time() + ttl}, xx=True)  # a released one stays released
        pipe.expire(key, math.ceil(ttl) + 60)
        await pipe.execute()

    async def in_flight(self, accounts: list[str]) -> dict[str, int]:
        now = time.time()
        pipe = self._redis.pipeline(transaction=False)
        for account in accounts:
            pipe.zcount(f"qfa:leases:{account}", now, "+inf")
        counts = await pipe.execute() if accounts else []
        return {account: int(n) for account, n in zip(accounts, counts, strict=True)}

    async def pause(self, dialect: str, base: float, limit: float) -> float:
        result = await self._pause(keys=[f"qfa:pause:{dialect}"], args=[time.time(), base, limit])
        return float(result)

    async def paused_until(self, dialect: str) -> float:
        value = await self._redis.hget(f"qfa:pause:{dialect}", "until")
        return float(value) if value else 0.0

    async def resume(self, dialect: str) -> None:
        await self._redis.delete(f"qfa:pause:{dialect}")

    async def put_conversation(self, conversation: Conversation) -> None:
        c = conversation
        record = {
            "id": c.id,
            "account": c.account,
            "dialect": c.dialect,
            "prefix_hash": c.prefix_hash,
            "updated_at": c.updated_at,
            "expires_at": c.expires_at,
            "data": c.data,
        }
        keep = max(int(c.expires_at - time.time()), 0) + 86400  # the sweeper still needs it
        pipe = self._redis.pipeline(transaction=True)
        pipe.set(f"qfa:conv:{c.id}", json.dumps(record), ex=keep)
        pipe.set(f"qfa:convprefix:{c.prefix_hash}", c.id, ex=keep)
        pipe.zadd("qfa:convs", {c.id: c.expires_at})
        await pipe.execute()

    async def conversation(self, ident: str) -> Conversation | None:
        raw = await self._redis.get(f"qfa:conv:{ident}")
        found = _conversation(raw) if raw else None
        return found if found and found.expires_at > time.time() else None

    async def conversation_by_prefix(self, prefix_hash: str) -> Conversation | None:
        ident = await self._redis.get(f"qfa:convprefix:{prefix_hash}")
        return await self.conversation(ident) if ident else None

    async def expired_conversations(self, now: float, limit: int) -> list[Conversation]:
        idents = await self._redis.zrangebyscore("qfa:convs", "-inf", now, start=0, num=limit)
        found: list[Conversation] = []
        for ident in idents:
            raw = await self._redis.get(f"qfa:conv:{ident}")
            if raw:
                found.append(_conversation(raw))
            else:
                await self._redis.zrem("qfa:convs", ident)
        return found

    async def drop_conversation(self, ident: str) -> None:
        raw = await self._redis.get(f"qfa:conv:{ident}")
        pipe = self._redis.pipeline(transaction=True)
        pipe.delete(f"qfa:conv:{ident}")
        pipe.zrem("qfa:convs", ident)
        if raw:
            pipe.delete(f"qfa:convprefix:{_conversation(raw).prefix_hash}")
        await pipe.execute()

    async def accounts(self) -> dict[str, str]:
        found: dict[str, str] = await self._redis.hgetall("qfa:accounts")
        return found

    async def put_account(self, account: str, secret: str) -> None:
        await self._redis.hset("qfa:accounts", account, secret)

    async def drop_account(self, account: str) -> None:
        await self._redis.hdel("qfa:accounts", account)


def _health(row: dict[str, str]) -> Health:
    return Health(
        successes=int(row.get("successes", 0)),
        failures=int(row.get("failures", 0)),
        last_error=row.get("last_error", ""),
        last_error_at=float(row.get("last_error_at", 0)),
        cooldown_until=float(row.get("cooldown_until", 0)),
        disabled=row.get("disabled", ""),
        next_slot=float(row.get("next_slot", 0)),
    )


def _conversation(raw: str) -> Conversation:
    record = json.loads(raw)
    return Conversation(
        record["id"],
        record["account"],
        record["dialect"],
        record["prefix_hash"],
        float(record["updated_at"]),
        float(record["expires_at"]),
        dict(record.get("data") or {}),
    )
