"""The embedded store: one SQLite file in WAL mode, safe for several worker processes."""

from __future__ import annotations

import asyncio
import functools
import json
import sqlite3
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from qwen_free_api.store import Conversation, Health, Lease

T = TypeVar("T")

SCHEMA = """
CREATE TABLE IF NOT EXISTS health(
    account TEXT PRIMARY KEY, successes INTEGER NOT NULL DEFAULT 0,
    failures INTEGER NOT NULL DEFAULT 0, last_error TEXT NOT NULL DEFAULT '',
    last_error_at REAL NOT NULL DEFAULT 0, cooldown_until REAL NOT NULL DEFAULT 0,
    disabled TEXT NOT NULL DEFAULT '', next_slot REAL NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS leases(
    id TEXT PRIMARY KEY, account TEXT NOT NULL, expires_at REAL NOT NULL);
CREATE INDEX IF NOT EXISTS leases_account ON leases(account, expires_at);
CREATE TABLE IF NOT EXISTS pauses(
    dialect TEXT PRIMARY KEY, until REAL NOT NULL, strikes INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS conversations(
    id TEXT PRIMARY KEY, account TEXT NOT NULL, dialect TEXT NOT NULL,
    prefix_hash TEXT NOT NULL, updated_at REAL NOT NULL, expires_at REAL NOT NULL,
    data TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS conversations_prefix ON conversations(prefix_hash);
CREATE INDEX IF NOT EXISTS conversations_expiry ON conversations(expires_at);
CREATE TABLE IF NOT EXISTS accounts(account TEXT PRIMARY KEY, secret TEXT NOT NULL);
"""
HEALTH_FIELDS = (
    "successes, failures, last_error, last_error_at, cooldown_until, disabled, next_slot"
)


class SqliteStore:
    """All state in one SQLite file; calls run on one dedicated thread."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="qfa-sqlite")
        self._db: sqlite3.Connection | None = None

    async def open(self) -> SqliteStore:
        await self._run(self._connect)
        return self

    def _connect(self) -> None:
        self._path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(self._path, timeout=10, isolation_level=None, check_same_thread=False)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        db.executescript(SCHEMA)
        self._db = db

    async def _run(self, work: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._executor, work, *args)

    def _conn(self) -> sqlite3.Connection:
        assert self._db is not None, "store not opened"
        return self._db

    def _write(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """Run `work` in one IMMEDIATE transaction (serialised across processes)."""
        db = self._conn()
        db.execute("BEGIN IMMEDIATE")
        try:
            result = work(db)
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")
        return result

    async def close(self) -> None:
        if self._db is not None:
            await self._run(self._conn().close)
            self._db = None
        self._executor.shutdown(wait=True)

    async def health(self, accounts: list[str]) -> dict[str, Health]:
        def read() -> dict[str, Health]:
            marks = ",".join("?" * len(accounts))
            rows = self._conn().execute(
                f"SELECT account, {HEALTH_FIELDS} FROM health WHERE account IN ({marks})",
                accounts,
            )
            found = {row[0]: Health(*row[1:]) for row in rows}
            return {account: found.get(account, Health()) for account in accounts}

        return await self._run(read) if accounts else {}

    async def note_success(self, account: str) -> None:
        await self._run(self._upsert, account, "successes = successes + 1, cooldown_until = 0", ())

    async def note_failure(
        self, account: str, error: str, *, cooldown_until: float = 0.0, disabled: str = ""
    ) -> None:
        changes = (
            "failures = failures + 1, last_error = ?, last_error_at = ?,"
            " cooldown_until = MAX(cooldown_until, ?),"
            " disabled = CASE WHEN ? = '' THEN disabled ELSE ? END"
        )
        values = (error, time.time(), cooldown_until, disabled, disabled)
        await self._run(self._upsert, account, changes, values)

    async def set_disabled(self, account: str, reason: str) -> None:
        changes = "disabled = ?, cooldown_until = CASE WHEN ? = '' THEN 0 ELSE cooldown_until END"
        await self._run(self._upsert, account, changes, (reason, reason))

    def _upsert(self, account: str, changes: str, values: tuple[Any, ...]) -> None:
        db = self._conn()
        db.execute("INSERT OR IGNORE INTO health(account) VALUES (?)", (account,))
        db.execute(f"UPDATE health SET {changes} WHERE account = ?", (*values, account))

    async def acquire(self, account: str, *, cap: int, ttl: float, interval: float) -> Lease | None:
        def take(db: sqlite3.Connection) -> Lease | None:
            now = time.time()
            db.execute("DELETE FROM leases WHERE account = ? AND expires_at <= ?", (account, now))
            (count,) = db.execute(
                "SELECT COUNT(*) FROM leases WHERE account = ?", (account,)
            ).fetchone()
            if count >= cap:
                return None
            lease = uuid.uuid4().hex
            db.execute("INSERT INTO leases VALUES (?, ?, ?)", (lease, account, now + ttl))
            db.execute("INSERT OR IGNORE INTO health(account) VALUES (?)", (account,))
            (slot,) = db.execute(
                "SELECT MAX(next_slot, ?) FROM health WHERE account = ?", (now, account)
            ).fetchone()
            db.execute(
                "UPDATE health SET next_slot = ? WHERE account = ?", (slot + interval, account)
            )
            return Lease(account, lease, slot - now)

        return await self._run(functools.partial(self._write, take))

    async def release(self, lease: Lease) -> None:
        await self._run(self._conn().execute, "DELETE FROM leases WHERE id = ?", (lease.id,))

    async def renew(self, lease: Lease, ttl: float) -> None:
        until = time.time() + ttl
        sql = "UPDATE leases SET expires_at = ? WHERE id = ?"
        await self._run(self._conn().execute, sql, (until, lease.id))

    async def in_flight(self, accounts: list[str]) -> dict[str, int]:
        def count() -> dict[str, int]:
            marks = ",".join("?" * len(accounts))
            rows = self._conn().execute(
                f"SELECT account, COUNT(*) FROM leases WHERE expires_at > ?"
                f" AND account IN ({marks}) GROUP BY account",
                (time.time(), *accounts),
            )
            found = dict(rows.fetchall())
            return {account: int(found.get(account, 0)) for account in accounts}

        return await self._run(count) if accounts else {}

    async def pause(self, dialect: str, base: float, limit: float) -> float:
        def strike(db: sqlite3.Connection) -> float:
            row = db.execute("SELECT strikes FROM pauses WHERE dialect = ?", (dialect,)).fetchone()
            strikes = int(row[0]) + 1 if row else 1
            until: float = time.time() + min(base * 2.0 ** (strikes - 1), limit)
            db.execute("INSERT OR REPLACE INTO pauses VALUES (?, ?, ?)", (dialect, until, strikes))
            return until

        return await self._run(functools.partial(self._write, strike))

    async def paused_until(self, dialect: str) -> float:
        def read() -> float:
            row = (
                self._conn()
                .execute("SELECT until FROM pauses WHERE dialect = ?", (dialect,))
                .fetchone()
            )
            return float(row[0]) if row else 0.0

        return await self._run(read)

    async def resume(self, dialect: str) -> None:
        await self._run(self._conn().execute, "DELETE FROM pauses WHERE dialect = ?", (dialect,))

    async def put_conversation(self, conversation: Conversation) -> None:
        c = conversation
        row = (c.id, c.account, c.dialect, c.prefix_hash, c.updated_at, c.expires_at)
        await self._run(
            self._conn().execute,
            "INSERT OR REPLACE INTO conversations VALUES (?, ?, ?, ?, ?, ?, ?)",
            (*row, json.dumps(c.data)),
        )

    async def conversation(self, ident: str) -> Conversation | None:
        return await self._run(self._one, "id", ident)

    async def conversation_by_prefix(self, prefix_hash: str) -> Conversation | None:
        return await self._run(self._one, "prefix_hash", prefix_hash)

    def _one(self, column: str, value: str) -> Conversation | None:
        row = (
            self._conn()
            .execute(
                f"SELECT * FROM conversations WHERE {column} = ? AND expires_at > ?"
                " ORDER BY updated_at DESC LIMIT 1",
                (value, time.time()),
            )
            .fetchone()
        )
        return _conversation(row) if row else None

    async def expired_conversations(self, now: float, limit: int) -> list[Conversation]:
        def read() -> list[Conversation]:
            rows = self._conn().execute(
                "SELECT * FROM conversations WHERE expires_at <= ? LIMIT ?", (now, limit)
            )
            return [_conversation(row) for row in rows]

        return await self._run(read)

    async def drop_conversation(self, ident: str) -> None:
        await self._run(self._conn().execute, "DELETE FROM conversations WHERE id = ?", (ident,))

    async def accounts(self) -> dict[str, str]:
        def read() -> dict[str, str]:
            rows = self._conn().execute("SELECT account, secret FROM accounts")
            return {str(a): str(s) for a, s in rows}

        return await self._run(read)

    async def put_account(self, account: str, secret: str) -> None:
        await self._run(
            self._conn().execute,
            "INSERT OR REPLACE INTO accounts VALUES (?, ?)",
            (account, secret),
        )

    async def drop_account(self, account: str) -> None:
        await self._run(self._conn().execute, "DELETE FROM accounts WHERE account = ?", (account,))


def _conversation(row: tuple[Any, ...]) -> Conversation:
    ident, account, dialect, prefix, updated, expires, data = row
    return Conversation(ident, account, dialect, prefix, updated, expires, json.loads(data))
