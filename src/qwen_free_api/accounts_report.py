"""`qwen-free-api tokens check`: every configured credential, checked against its upstream."""

from __future__ import annotations

import time

from qwen_free_api.health import verdict
from qwen_free_api.janitor import Janitor
from qwen_free_api.pool import Pool, account_of
from qwen_free_api.settings import Settings
from qwen_free_api.store import open_store
from qwen_free_api.upstreams import Upstream
from qwen_free_api.upstreams.cn import Cn
from qwen_free_api.upstreams.http import Http
from qwen_free_api.upstreams.intl import Intl

Row = tuple[str, str, str, str, str]  # id, masked credential, source, state, reason


async def check_all(settings: Settings, extra: list[str]) -> list[Row]:
    store = await open_store(settings.store)
    http = Http(settings)
    janitor = Janitor()
    try:
        pool = Pool(settings, store)
        await pool.load()
        accounts = pool.accounts + [account_of(raw, "seed") for raw in extra]
        upstreams: dict[str, Upstream] = {
            "cn": Cn(settings, http, janitor),
            "intl": Intl(settings, http, janitor),
        }
        health = await store.health([a.id for a in accounts])
        rows: list[Row] = []
        for account in accounts:
            found = await verdict(upstreams[account.credential.dialect], account.credential)
            state, reason = found.state, found.reason
            if found.live and health[account.id].disabled:
                state, reason = "disabled", health[account.id].disabled
            elif found.live and health[account.id].cooldown_until > time.time():
                state, reason = "limited", health[account.id].last_error
            rows.append((account.id, account.masked, account.source, state, reason))
        return rows
    finally:
        await janitor.drain(5)
        await http.close()
        await store.close()
