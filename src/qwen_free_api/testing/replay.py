"""Replay mode of the fake upstream: serve a `doctor --record` directory back.

Each request gets the next recorded response of the same method and path, in recorded order,
with the recorded status, headers and body chunks (one write per recorded chunk, so a stream
arrives as it did). A request with no recorded response left gets a 404 that says so. Nothing
is checked (credentials and signatures were replaced in the recording anyway).

    replay = ReplayUpstream.from_directory(Path("doctor-recording"))
    with ServerThread(replay.app) as server:
        ...  # point every QFA_*_BASE_URL at server.url
"""

from __future__ import annotations

import json
import threading
from collections import deque
from pathlib import Path

import uvicorn
from starlette.types import ASGIApp, Receive, Scope, Send

from qwen_free_api.doctor_record import Recorded, load_exchanges

DROPPED = {"content-length", "transfer-encoding", "content-encoding", "connection", "date"}


class ReplayUpstream:
    """An ASGI app answering from a recording; `served` and `unmatched` tell what happened."""

    def __init__(self, exchanges: list[Recorded]) -> None:
        self._lock = threading.Lock()
        self._queues: dict[tuple[str, str], deque[Recorded]] = {}
        for exchange in exchanges:
            self._queues.setdefault((exchange.method, exchange.path), deque()).append(exchange)
        self.served: list[tuple[str, str]] = []
        self.unmatched: list[tuple[str, str]] = []

    @classmethod
    def from_directory(cls, directory: Path) -> ReplayUpstream:
        return cls(load_exchanges(directory))

    def left(self) -> int:
        """Recorded responses not served yet."""
        with self._lock:
            return sum(len(queue) for queue in self._queues.values())

    def _next(self, method: str, path: str) -> Recorded | None:
        with self._lock:
            queue = self._queues.get((method, path))
            found = queue.popleft() if queue else None
            (self.served if found else self.unmatched).append((method, path))
        return found

    @property
    def app(self) -> ASGIApp:
        """The ASGI app (the replay itself)."""
        return self

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        while (await receive()).get("more_body", False):
            pass  # the request body is not compared
        method, path = str(scope["method"]).upper(), str(scope["path"])
        found = self._next(method, path)
        if found is None or found.status is None:
            why = "no recorded response left" if found is None else "recorded transport failure"
            body = json.dumps({"replay": f"{why} for {method} {path}"}).encode()
            status = 404 if found is None else 502
            head = [(b"content-type", b"application/json")]
            await send({"type": "http.response.start", "status": status, "headers": head})
            await send({"type": "http.response.body", "body": body})
            return
        headers = [
            (name.encode("latin-1"), value.encode("latin-1", "replace"))
            for name, value in found.headers.items()
            if name.lower() not in DROPPED
        ]
        await send({"type": "http.response.start", "status": found.status, "headers": headers})
        for chunk in found.chunks:
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b""})


def run_replay(host: str, port: int, directory: Path) -> None:
    """Blocking: serve a recording (the CLI `qwen-free-api fake-upstream --replay DIR`)."""
    replay = ReplayUpstream.from_directory(directory)
    uvicorn.run(replay.app, host=host, port=port, lifespan="off", log_level="warning")
