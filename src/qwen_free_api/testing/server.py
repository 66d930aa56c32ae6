"""Serving an ASGI app on loopback: ServerThread for tests, run_fake for the CLI."""

from __future__ import annotations

import asyncio
import logging
import threading
from types import TracebackType

import uvicorn
from starlette.types import ASGIApp

from qwen_free_api.testing.fake import FakeUpstream
from qwen_free_api.testing.state import SIGN_MODES, SignMode

log = logging.getLogger(__name__)
_START_TIMEOUT = 10.0
_POLL = 0.005


class ServerThread:
    """Runs an ASGI app under uvicorn in a background thread on 127.0.0.1, port 0 (ephemeral)."""

    def __init__(self, app: ASGIApp, *, host: str = "127.0.0.1", port: int = 0) -> None:
        config = uvicorn.Config(app, host=host, port=port, log_level="warning", access_log=False)
        self._server = uvicorn.Server(config)
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.host = host
        self.port = port
        self.url = ""

    def start(self) -> ServerThread:
        """Start serving; returns once the socket listens (url and port are then set)."""
        thread = threading.Thread(target=self._run, name="server-thread", daemon=True)
        self._thread = thread
        thread.start()
        waited = 0.0
        # Startup, not test synchronisation: uvicorn only exposes a `started` flag.
        while not self._server.started:
            if not thread.is_alive():
                raise RuntimeError("uvicorn stopped before it started listening")
            if waited > _START_TIMEOUT:
                raise RuntimeError("uvicorn did not start listening in time")
            thread.join(_POLL)
            waited += _POLL
        sockets = self._server.servers[0].sockets
        self.port = int(sockets[0].getsockname()[1])
        self.url = f"http://{self.host}:{self.port}"
        return self

    def _run(self) -> None:
        with asyncio.Runner(loop_factory=self._server.config.get_loop_factory()) as runner:
            runner.run(self._serve())

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        await self._server.serve()

    def _drop_connections(self) -> None:
        # Closing the transports makes every open stream see http.disconnect and end cleanly.
        for connection in list(self._server.server_state.connections):
            transport = getattr(connection, "transport", None)
            if transport is not None:
                transport.close()

    def stop(self) -> None:
        """Stop serving; connections still streaming after a short grace period are closed."""
        thread = self._thread
        if thread is None:
            return
        self._server.should_exit = True
        thread.join(0.5)
        if thread.is_alive() and self._loop is not None:
            self._loop.call_soon_threadsafe(self._drop_connections)
            thread.join(5.0)
        if thread.is_alive():
            self._server.force_exit = True
            thread.join(5.0)
        self._thread = None

    def __enter__(self) -> ServerThread:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def run_fake(host: str, port: int, *, sign_mode: str = "off") -> None:
    """Blocking: serve a FakeUpstream (used by the CLI `qwen-free-api fake-upstream --port N`)."""
    modes: list[SignMode] = [m for m in SIGN_MODES if m == sign_mode]
    if not modes:
        raise ValueError(f"sign_mode must be one of {SIGN_MODES}")
    mode = modes[0]
    fake = FakeUpstream(sign_mode=mode)
    log.info("fake upstream on http://%s:%d (sign_mode=%s)", host, port, mode)
    uvicorn.run(fake.app, host=host, port=port, lifespan="off")
