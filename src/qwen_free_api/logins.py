"""intl accounts kept signed in by email and password (QFA_INTL_LOGINS).

Each login gets a JWT at start-up and a fresh one when its token comes within
`login_refresh_before` of expiry: on the next request that leases it, or by the hourly pass
for accounts nobody uses. The account keeps one id (derived from the email), so its health
and statistics survive every renewal. Passwords live only in memory, never in the store.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import Awaitable, Callable

from qwen_free_api.credentials import Credential, mask
from qwen_free_api.errors import GatewayError
from qwen_free_api.pool import Account, Pool

log = logging.getLogger(__name__)

SignIn = Callable[[str, str], Awaitable[str]]
PASS_INTERVAL = 3600.0


def login_id(email: str) -> str:
    return hashlib.sha256(f"intl-login:{email.lower()}".encode()).hexdigest()[:12]


class Logins:
    def __init__(self, pool: Pool, logins: list[tuple[str, str]], before: float) -> None:
        self._pool = pool
        self._before = before
        self._logins = {login_id(email): (email, password) for email, password in logins}
        self._locks = {ident: asyncio.Lock() for ident in self._logins}
        self.sign_in: SignIn | None = None  # set by the gateway: the intl upstream's sign-in

    async def start(self) -> None:
        """Sign every login in; one that fails is left out, with a warning that says why."""
        await asyncio.gather(*(self._renew(ident) for ident in self._logins))

    async def fresh(self, account: Account) -> Account:
        """`account`, or a renewed copy of it if its token is about to expire."""
        if account.id not in self._logins or not self._due(account):
            return account
        async with self._locks[account.id]:
            current = self._pool.get(account.id) or account
            if not self._due(current):
                return current  # renewed by another request meanwhile
            return await self._sign_in(account.id)

    async def run_forever(self) -> None:
        while True:
            await asyncio.sleep(PASS_INTERVAL)
            for ident in self._logins:
                account = self._pool.get(ident)
                if account is None or self._due(account):
                    await self._renew(ident)

    def _due(self, account: Account) -> bool:
        expires = account.credential.expires_at()
        return expires is not None and expires - time.time() <= self._before

    async def _renew(self, ident: str) -> None:
        try:
            async with self._locks[ident]:
                await self._sign_in(ident)
        except GatewayError as error:
            email = self._logins[ident][0]
            log.warning("could not sign in intl account %s: %s", mask(email), error.message)

    async def _sign_in(self, ident: str) -> Account:
        assert self.sign_in is not None, "the gateway sets sign_in"
        email, password = self._logins[ident]
        token = await self.sign_in(email, password)
        account = Account(ident, Credential("intl", token), "login")
        self._pool.put(account)
        log.info("intl account %s signed in (token %s)", mask(email), account.masked)
        return account
