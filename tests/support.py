"""Shared test support: credentials, settings for the fake, and HTTP helpers."""

from __future__ import annotations

import base64
import json
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from qwen_free_api.settings import Settings

CN_TICKET = "tk-good-0123456789abcdefghijklmnopqrstuvwxyz"


def make_jwt(payload: dict[str, Any]) -> str:
    def part(obj: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'HS256', 'typ': 'JWT'})}.{part(payload)}.c2lnbmF0dXJlLWZha2U"


INTL_JWT = make_jwt({"id": "user-1", "last_password_change": 0, "exp": int(time.time()) + 86400})
CREDENTIALS = {"cn": CN_TICKET, "intl": INTL_JWT}
# Every upstream host the server calls is a setting named *_base_url; tests point all at the fake.
UPSTREAM_HOSTS = tuple(name for name in Settings.model_fields if name.endswith("_base_url"))


def fake_hosts_env(fake_url: str) -> dict[str, str]:
    """QFA_* variables pointing every upstream host at the fake."""
    return {f"QFA_{name.upper()}": fake_url for name in UPSTREAM_HOSTS}


SERVE = [sys.executable, "-m", "qwen_free_api", "serve", "--host", "127.0.0.1"]  # + --port N


def wait_for_ping(
    process: subprocess.Popen[bytes], url: str, log_tail: Callable[[], str] = lambda: ""
) -> None:
    """Poll a starting server's /ping until it answers (start-up, not test synchronisation)."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited at start:\n{log_tail()}")
        try:
            if httpx.get(url + "/ping", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.05)
    process.kill()
    raise RuntimeError("the server did not start listening in time")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def settings_for(fake_url: str, state: Path | None = None, **overrides: Any) -> Settings:
    """Settings that point every upstream at the fake; state in `state` (a fresh file)."""
    store = f"sqlite:///{state}" if state else f"sqlite:///{tempfile.mkdtemp()}/state.db"
    values: dict[str, Any] = {
        "store": store,
        "host": "127.0.0.1",
        "port": 0,
        **dict.fromkeys(UPSTREAM_HOSTS, fake_url),
        "image_poll_interval": 0.0,
        "cn_origin": "https://www.qianwen.com",
        "read_timeout": 10.0,
        "transient_cooldown": 0.0,
        "health_interval": 0.0,
        **overrides,
    }
    return Settings(_env_file=None, **values)


@dataclass
class Streamed:
    status: int
    headers: dict[str, str]
    raw: str
    chunks: list[dict[str, Any]] = field(default_factory=list)
    done: bool = False

    @property
    def content(self) -> str:
        return "".join(_delta(c).get("content") or "" for c in self.chunks)

    @property
    def reasoning(self) -> str:
        return "".join(_delta(c).get("reasoning_content") or "" for c in self.chunks)

    @property
    def finish_reasons(self) -> list[str]:
        return [
            c["choices"][0]["finish_reason"]
            for c in self.chunks
            if c.get("choices") and c["choices"][0].get("finish_reason")
        ]

    @property
    def errors(self) -> list[dict[str, Any]]:
        return [c["error"] for c in self.chunks if "error" in c]

    @property
    def usage_chunks(self) -> list[dict[str, Any]]:
        return [c for c in self.chunks if c.get("choices") == [] and "usage" in c]


def _delta(chunk: dict[str, Any]) -> dict[str, Any]:
    choices = chunk.get("choices") or []
    delta: dict[str, Any] = choices[0].get("delta", {}) if choices else {}
    return delta


def body(prompt: str = "hello", stream: bool = True, **extra: Any) -> dict[str, Any]:
    return {
        "model": extra.pop("model", "qwen"),
        "messages": [{"role": "user", "content": prompt}],
        "stream": stream,
        **extra,
    }


async def stream_chat(
    client: httpx.AsyncClient, dialect: str, payload: dict[str, Any], token: str | None = None
) -> Streamed:
    headers = {"authorization": f"Bearer {token or CREDENTIALS[dialect]}"}
    async with client.stream("POST", "/v1/chat/completions", json=payload, headers=headers) as r:
        raw = (await r.aread()).decode()
    result = Streamed(r.status_code, dict(r.headers), raw)
    if r.status_code != 200 or "text/event-stream" not in r.headers.get("content-type", ""):
        return result
    for block in raw.split("\n\n"):
        for line in block.split("\n"):
            if line.startswith("data: "):
                data = line[6:]
                if data == "[DONE]":
                    result.done = True
                else:
                    assert not result.done, "data after [DONE]"
                    result.chunks.append(json.loads(data))
    return result


async def chat(
    client: httpx.AsyncClient, dialect: str, payload: dict[str, Any], token: str | None = None
) -> httpx.Response:
    headers = {"authorization": f"Bearer {token or CREDENTIALS[dialect]}"}
    payload = {**payload, "stream": False}
    return await client.post("/v1/chat/completions", json=payload, headers=headers)


def clear_state(path: Path) -> None:
    """Forget all health, leases, pauses and conversations of a test server's store."""
    with sqlite3.connect(path, timeout=10) as db:
        for table in ("health", "leases", "pauses", "conversations", "accounts"):
            db.execute(f"DELETE FROM {table}")
