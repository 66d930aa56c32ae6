"""Credential health: a background probe of every pool credential, and one-off checks."""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass

from qwen_free_api.credentials import Credential, Dialect
from qwen_free_api.errors import GatewayError
from qwen_free_api.pool import Account, Pool
from qwen_free_api.upstreams import Upstream

log = logging.getLogger(__name__)

EXPIRY_WARNING = 24 * 3600
PROBE_REJECTED = "rejected by the health probe"


@dataclass(frozen=True, slots=True)
class Verdict:
    state: str  # live, expired, rejected, unreachable
    reason: str = ""

    @property
    def live(self) -> bool:
        return self.state == "live"


async def verdict(upstream: Upstream, credential: Credential) -> Verdict:
    """Ask the upstream's cheapest authenticated endpoint whether `credential` works."""
    if credential.expired():
        return Verdict("expired", "the JWT's exp has passed")
    try:
        live = await upstream.check(credential)
    except GatewayError as error:
        return Verdict("unreachable", error.message)
    return Verdict("live") if live else Verdict("rejected", "the upstream refused it")


class Prober:
    """Checks every pool credential at an interval and records what it finds."""

    def __init__(self, pool: Pool, upstreams: dict[Dialect, Upstream], interval: float) -> None:
        self.pool = pool
        self.upstreams = upstreams
        self.interval = interval

    async def probe(self, account: Account) -> Verdict:
        found = await verdict(self.upstreams[account.credential.dialect], account.credential)
        store = self.pool.store
        health = (await store.health([account.id]))[account.id]
        if found.state == "rejected" and not health.disabled:
            await self.pool.disable(account, f"probe: {found.reason}", PROBE_REJECTED)
        elif found.live and health.disabled in (PROBE_REJECTED, "rejected by the upstream"):
            log.info("credential %s (%s) is accepted again", account.id, account.masked)
            await store.set_disabled(account.id, "")
        _warn_if_expiring(account)
        return found

    async def probe_all(self) -> dict[str, Verdict]:
        accounts = self.pool.accounts
        verdicts = await asyncio.gather(*(self.probe(a) for a in accounts))
        return {a.id: v for a, v in zip(accounts, verdicts, strict=True)}

    async def run_forever(self) -> None:
        if self.interval <= 0:
            return
        while True:
            try:
                await self.probe_all()
            except Exception as error:  # the probe must outlive any one failure
                log.warning("credential probe failed: %s", error)
            await asyncio.sleep(self.interval)


def _warn_if_expiring(account: Account) -> None:
    expires = account.credential.expires_at()
    if expires is not None and 0 < expires - time.time() < EXPIRY_WARNING:
        hours = (expires - time.time()) / 3600
        log.warning("credential %s (%s) expires in %.1f h", account.id, account.masked, hours)
