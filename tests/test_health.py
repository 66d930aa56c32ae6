"""Credential health: the probe disables credentials the upstream no longer accepts and brings
back ones it accepts again; `tokens check` reports each credential's state and exits non-zero."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from qwen_free_api.health import Prober
from qwen_free_api.janitor import Janitor
from qwen_free_api.pool import Pool
from qwen_free_api.store import open_store
from qwen_free_api.testing import FakeUpstream
from qwen_free_api.upstreams import Upstream
from qwen_free_api.upstreams.cn import Cn
from qwen_free_api.upstreams.http import Http
from qwen_free_api.upstreams.intl import Intl

from support import CN_TICKET, CREDENTIALS, make_jwt, settings_for


async def test_probe_disables_and_restores(
    fake_server: tuple[FakeUpstream, str], fake: FakeUpstream, tmp_path: Path
) -> None:
    _, url = fake_server
    expired = make_jwt({"id": "old", "exp": int(time.time()) - 5})
    tokens = ["bad-ticket-1234567890", expired, CN_TICKET]
    settings = settings_for(url, tmp_path / "s.db", tokens=tokens)
    store = await open_store(settings.store)
    http = Http(settings)
    try:
        pool = Pool(settings, store)
        await pool.load()
        upstreams: dict[Any, Upstream] = {
            "cn": Cn(settings, http, Janitor()),
            "intl": Intl(settings, http, Janitor()),
        }
        prober = Prober(pool, upstreams, 60)
        bad, old, good = pool.accounts
        await store.set_disabled(good.id, "rejected by the health probe")  # as if once refused
        verdicts = await prober.probe_all()
        health = await store.health([a.id for a in pool.accounts])
    finally:
        await http.close()
        await store.close()
    assert [verdicts[a.id].state for a in (bad, old, good)] == ["rejected", "expired", "live"]
    assert health[bad.id].disabled == "rejected by the health probe"
    assert health[old.id].disabled == ""  # expiry is reported, not recorded as a failure
    assert health[good.id].disabled == ""  # accepted again: back in service


@pytest.mark.parametrize("scenario", ["mixed"])
def test_tokens_check_cli(
    fake_server: tuple[FakeUpstream, str], fake: FakeUpstream, tmp_path: Path, scenario: str
) -> None:
    _, url = fake_server
    env = {k: v for k, v in os.environ.items() if not k.startswith("QFA_")}
    env.update(
        QFA_STORE=f"sqlite:///{tmp_path}/s.db",
        QFA_TOKENS=f"{CN_TICKET},{CREDENTIALS['intl']}",
        QFA_CN_BASE_URL=url,
        QFA_CN_API_BASE_URL=url,
        QFA_CN_SEC_BASE_URL=url,
        QFA_INTL_BASE_URL=url,
    )
    command = [sys.executable, "-m", "qwen_free_api", "tokens", "check"]
    good = subprocess.run(command, env=env, capture_output=True, text=True, cwd=tmp_path)
    assert good.returncode == 0, good.stderr
    assert good.stdout.count(" live ") == 2
    assert CN_TICKET not in good.stdout and CREDENTIALS["intl"] not in good.stdout
    bad = subprocess.run(
        [*command, "--token", "bad-ticket-0000000000"], env=env, capture_output=True, text=True
    )
    assert bad.returncode == 1
    assert "rejected" in bad.stdout
