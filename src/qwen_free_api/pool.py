"""The account pool: which credential serves a request, and what a failure does to it.

Selection takes the healthy credential with the fewest requests in flight, under a
per-credential concurrency cap and minimum interval (bursts get accounts flagged). Failures are
classified by their type where the upstream adapter raised them: a rejected credential is
disabled, a quota cools it down until the upstream's reset, a WAF answer pauses its whole
backend with a growing backoff, a transient failure cools it down briefly.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from qwen_free_api import observe_facts
from qwen_free_api.credentials import Credential, parse_credential
from qwen_free_api.errors import (
    Blocked,
    CredentialRejected,
    GatewayError,
    NoCredential,
    Overloaded,
    ProtocolError,
    RateLimited,
    SigningFailed,
    UpstreamError,
    UpstreamTimeout,
)
from qwen_free_api.settings import Settings
from qwen_free_api.store import Health, Lease, Store

log = logging.getLogger(__name__)

Source = Literal["settings", "file", "admin", "seed", "login"]
State = Literal["live", "cooling", "disabled", "paused", "expired"]


@dataclass(frozen=True, slots=True)
class Account:
    id: str  # stable, not secret: derived from the credential by a one-way hash
    credential: Credential
    source: Source

    @property
    def masked(self) -> str:
        return self.credential.masked


def account_id(credential: Credential) -> str:
    digest = hashlib.sha256(f"{credential.dialect}:{credential.secret}".encode()).hexdigest()
    return digest[:12]


def account_of(raw: str, source: Source) -> Account:
    credential = parse_credential(raw)
    return Account(account_id(credential), credential, source)


def state_of(account: Account, health: Health, paused_until: float, now: float) -> State:
    if health.disabled:
        return "disabled"
    if account.credential.expired(now):
        return "expired"
    if paused_until > now:
        return "paused"
    if health.cooldown_until > now:
        return "cooling"
    return "live"


class Pool:
    """Credentials from settings, the tokens file and the admin API, with shared health."""

    def __init__(self, settings: Settings, store: Store) -> None:
        self.settings = settings
        self.store = store
        self._accounts: dict[str, Account] = {}
        # Told when a credential is disabled (the webhook); set by the gateway.
        self.on_disabled: Callable[[Account, str], None] = lambda account, reason: None
        # Renews a signed-in account whose token is about to expire; set by the gateway.
        self.freshen: Callable[[Account], Awaitable[Account]] = _same

    async def disable(self, account: Account, error: str, reason: str) -> None:
        """Take a credential out of service because the upstream refused it."""
        log.warning("credential %s (%s) %s; disabling it", account.id, account.masked, reason)
        await self.store.note_failure(account.id, error, disabled=reason)
        self.on_disabled(account, reason)

    async def load(self) -> None:
        found: list[Account] = [account_of(raw, "settings") for raw in self.settings.tokens]
        if self.settings.tokens_file:
            found += [account_of(raw, "file") for raw in file_tokens(self.settings.tokens_file)]
        stored = await self.store.accounts()
        found += [account_of(secret, "admin") for secret in stored.values()]
        self._accounts = {}
        for account in found:
            self._accounts.setdefault(account.id, account)

    @property
    def accounts(self) -> list[Account]:
        return list(self._accounts.values())

    def get(self, ident: str) -> Account | None:
        return self._accounts.get(ident)

    def put(self, account: Account) -> None:
        """Add or replace an account (a signed-in one whose token was renewed)."""
        self._accounts[account.id] = account

    async def add(self, raw: str) -> Account:
        account = account_of(raw, "admin")
        if account.id not in self._accounts:
            await self.store.put_account(account.id, account.credential.secret)
            self._accounts[account.id] = account
        return self._accounts[account.id]

    async def remove(self, ident: str) -> bool:
        account = self._accounts.get(ident)
        if account is None or account.source != "admin":
            return False
        await self.store.drop_account(ident)
        del self._accounts[ident]
        return True

    @asynccontextmanager
    async def lease(self, candidates: Iterable[Account]) -> AsyncIterator[Account]:
        """Hold one healthy account for the duration of the block; learn from its outcome."""
        lease, account = await self._take(list(candidates))
        keeper = asyncio.ensure_future(self._keep(lease))
        try:
            if lease.wait > 0:
                await asyncio.sleep(lease.wait + random.uniform(0, self.settings.interval_jitter))
            account = await self.freshen(account)
            observe_facts.leased(account.credential.dialect, account.id)
            yield account
        except GatewayError as error:
            observe_facts.failed(account.credential.dialect, type(error).__name__)
            await self._learn(account, error)
            raise
        else:
            await self.store.note_success(account.id)
        finally:
            keeper.cancel()
            await asyncio.shield(self.store.release(lease))

    async def _keep(self, lease: Lease) -> None:
        """Renew a held lease every third of its TTL: only a dead holder's lease lapses."""
        ttl = self.settings.lease_ttl
        while True:
            await asyncio.sleep(ttl / 3)
            try:
                await self.store.renew(lease, ttl)
            except Exception as error:  # the store is away: the lease may lapse, the answer goes on
                log.warning("could not renew lease of credential %s: %s", lease.account, error)

    async def _take(self, candidates: list[Account]) -> tuple[Lease, Account]:
        now = time.time()
        ids = [a.id for a in candidates]
        health = await self.store.health(ids)
        flights = await self.store.in_flight(ids)
        dialects = {a.credential.dialect for a in candidates}
        pauses: dict[str, float] = {d: await self.store.paused_until(d) for d in dialects}
        usable = [
            a
            for a in candidates
            if state_of(a, health[a.id], pauses[a.credential.dialect], now) == "live"
        ]
        random.shuffle(usable)  # ties go to a random account
        usable.sort(key=lambda a: flights[a.id])
        for account in usable:
            lease = await self.store.acquire(
                account.id,
                cap=self.settings.account_concurrency,
                ttl=self.settings.lease_ttl,
                interval=self.settings.min_interval,
            )
            if lease is not None:
                return lease, account
        raise _unavailable(candidates, health, pauses, now, busy=bool(usable))

    async def _learn(self, account: Account, error: GatewayError) -> None:
        text = f"{type(error).__name__}: {error.message}"[:300]
        now = time.time()
        if isinstance(error, CredentialRejected):
            await self.disable(account, text, "rejected by the upstream")
        elif isinstance(error, RateLimited):
            wait = error.retry_after or self.settings.quota_cooldown
            await self.store.note_failure(account.id, text, cooldown_until=now + wait)
        elif isinstance(error, Blocked):
            until = await self.store.pause(
                account.credential.dialect, self.settings.waf_pause, self.settings.waf_pause_max
            )
            log.warning(
                "%s backend paused for %.0f s (WAF)", account.credential.dialect, until - now
            )
            await self.store.note_failure(account.id, text)
        elif isinstance(error, TRANSIENT) or type(error) is UpstreamError:
            cooldown = now + self.settings.transient_cooldown
            await self.store.note_failure(account.id, text, cooldown_until=cooldown)
        # A too-long prompt or a moderation stop is not the account's fault: no change.


TRANSIENT = (UpstreamTimeout, ProtocolError, SigningFailed, Overloaded)


def _unavailable(
    candidates: list[Account],
    health: dict[str, Health],
    pauses: dict[str, float],
    now: float,
    *,
    busy: bool,
) -> GatewayError:
    """The error for a request no credential can serve right now, with when to retry."""
    if not candidates:
        return NoCredential("no upstream credential is configured")
    if busy:
        return RateLimited("every credential is at its concurrency limit", retry_after=1)
    waiting = [a for a in candidates if not health[a.id].disabled and not a.credential.expired(now)]
    if not waiting:
        return NoCredential("every credential is disabled or expired; see GET /v1/accounts")
    paused = [pauses[a.credential.dialect] - now for a in waiting]
    cooling = [health[a.id].cooldown_until - now for a in waiting]
    soonest = min(max(p, c) for p, c in zip(paused, cooling, strict=True))
    retry = max(1, int(soonest) + 1)
    if all(p > 0 for p in paused):
        return Blocked("the upstream's WAF paused this backend; try again later", retry_after=retry)
    return RateLimited("every credential is cooling down after quota or errors", retry_after=retry)


async def _same(account: Account) -> Account:
    return account


def file_tokens(path: str) -> list[str]:
    """The credentials of a tokens file: one per line, blank lines and `#` comments skipped."""
    lines = Path(path).read_text(encoding="utf-8").splitlines()
    return [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]


async def describe(pool: Pool, accounts: list[Account]) -> list[dict[str, object]]:
    """Each account's state for people and the admin API; never the secret."""
    now = time.time()
    ids = [a.id for a in accounts]
    health = await pool.store.health(ids)
    flights = await pool.store.in_flight(ids)
    pauses = {d: await pool.store.paused_until(d) for d in ("cn", "intl")}
    views: list[dict[str, object]] = []
    for account in accounts:
        h = health[account.id]
        views.append(
            {
                "id": account.id,
                "dialect": account.credential.dialect,
                "credential": account.masked,
                "source": account.source,
                "state": state_of(account, h, pauses[account.credential.dialect], now),
                "in_flight": flights[account.id],
                "successes": h.successes,
                "failures": h.failures,
                "last_error": h.last_error or None,
                "cooldown_until": h.cooldown_until if h.cooldown_until > now else None,
                "disabled_reason": h.disabled or None,
                "expires_at": account.credential.expires_at(),
            }
        )
    return views
