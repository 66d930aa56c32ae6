"""Fixtures: one fake upstream for the session, and real servers on loopback sockets."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

import log_scan
from qwen_free_api.app import create_app
from qwen_free_api.testing import FakeUpstream, ServerThread

from support import clear_state, settings_for

# Every log record of the session, scanned for credentials when the session ends.
LOGS = log_scan.Capture()


def pytest_sessionstart(session: pytest.Session) -> None:
    log_scan.install(LOGS)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    leaks = log_scan.scan(LOGS.lines)
    if not leaks:
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    write = reporter.write_line if reporter is not None else print
    write("")
    write(f"LOG SECRET SCAN FAILED: {len(leaks)} log line(s) hold a credential (masked):")
    for line in leaks[:50]:
        write(f"  {line[:500]}")
    session.exitstatus = pytest.ExitCode.TESTS_FAILED


@pytest.fixture(scope="session")
def fake_server() -> Iterator[tuple[FakeUpstream, str]]:
    fake = FakeUpstream()
    with ServerThread(fake.app) as thread:
        yield fake, thread.url


@pytest.fixture
def fake(fake_server: tuple[FakeUpstream, str]) -> Iterator[FakeUpstream]:
    upstream, _ = fake_server
    upstream.reset()
    upstream.sign_mode = "off"
    yield upstream
    upstream.release()


ServerFactory = Callable[..., str]


@pytest.fixture(scope="session")
def default_server(
    fake_server: tuple[FakeUpstream, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, Path]]:
    _, url = fake_server
    state = tmp_path_factory.mktemp("state") / "state.db"
    with ServerThread(create_app(settings_for(url, state))) as thread:
        yield thread.url, state


@pytest.fixture
def server(fake: FakeUpstream, default_server: tuple[str, Path]) -> str:
    """Base URL of a seed-mode server wired to the fake (shared; fake and state reset per test)."""
    url, state = default_server
    clear_state(state)
    return url


@pytest.fixture
def make_server(fake_server: tuple[FakeUpstream, str], tmp_path: Path) -> Iterator[ServerFactory]:
    """Start a server with custom settings; stopped at the end of the test."""
    threads: list[ServerThread] = []
    _, url = fake_server

    def start(**overrides: Any) -> str:
        state = tmp_path / f"state-{len(threads)}.db"
        thread = ServerThread(create_app(settings_for(url, state, **overrides))).start()
        threads.append(thread)
        return thread.url

    yield start
    for thread in threads:
        thread.stop()


@pytest.fixture
async def client(server: str) -> Any:
    async with httpx.AsyncClient(base_url=server, timeout=30) as http:
        yield http


# The fake upstream's own tests use a fake of their own, module-scoped.


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[FakeUpstream, str]]:
    upstream = FakeUpstream()
    with ServerThread(upstream.app) as server:
        yield upstream, server.url


@pytest.fixture
def up(served: tuple[FakeUpstream, str]) -> Iterator[FakeUpstream]:
    upstream, _ = served
    upstream.reset()
    upstream.sign_mode = "off"
    yield upstream
    upstream.release()


@pytest.fixture
def http(served: tuple[FakeUpstream, str]) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=served[1], timeout=10) as client:
        yield client
