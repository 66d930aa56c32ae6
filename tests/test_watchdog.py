"""The stream silence watchdog, on a loop whose clock the test moves by hand (no real waiting)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from qwen_free_api.upstreams.watchdog import Watchdog

LIMIT = 10.0


@pytest.fixture
async def clock(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[list[float]]:
    now = [0.0]
    monkeypatch.setattr(asyncio.get_running_loop(), "time", lambda: now[0])
    yield now


async def _at(clock: list[float], moment: float) -> None:
    clock[0] = moment
    for _ in range(5):
        await asyncio.sleep(0)


class Reader:
    """One task reading, as a stream's consumer does: each gate is one wait for data; between
    two waits the task sits on `pause` (a consumer busy writing to a slow client)."""

    def __init__(self) -> None:
        loop = asyncio.get_running_loop()
        self.gate: asyncio.Future[None] = loop.create_future()
        self.pause: asyncio.Future[None] = loop.create_future()
        self.outcomes: list[str] = []
        self.watch: Watchdog | None = None
        self.task = asyncio.ensure_future(self._run())

    async def _run(self) -> None:
        self.watch = watch = Watchdog(LIMIT)
        try:
            while True:
                watch.arm()
                try:
                    await self.gate
                except asyncio.CancelledError:
                    if watch.claim():
                        self.outcomes.append("silent")
                        return
                    raise
                watch.disarm()
                self.outcomes.append("data")
                await self.pause
        finally:
            watch.close()

    def data(self) -> None:
        self.gate.set_result(None)
        self.gate = asyncio.get_running_loop().create_future()

    def resume(self) -> None:
        self.pause.set_result(None)
        self.pause = asyncio.get_running_loop().create_future()


async def test_a_wait_longer_than_the_limit_is_cut(clock: list[float]) -> None:
    reader = Reader()
    await _at(clock, 0.0)
    await _at(clock, 9.9)
    assert not reader.task.done()
    await _at(clock, 10.0)
    assert reader.task.done() and reader.outcomes == ["silent"]


async def test_time_between_waits_does_not_count(clock: list[float]) -> None:
    reader = Reader()
    await _at(clock, 0.0)
    await _at(clock, 1.0)
    reader.data()
    await _at(clock, 50.0)  # a slow consumer: the pending timer fires with no wait in progress
    assert reader.outcomes == ["data"]
    reader.resume()
    await _at(clock, 50.0)
    await _at(clock, 59.9)
    assert not reader.task.done()
    await _at(clock, 60.0)
    assert reader.outcomes == ["data", "silent"]


async def test_a_new_wait_moves_the_deadline(clock: list[float]) -> None:
    reader = Reader()
    await _at(clock, 0.0)
    await _at(clock, 8.0)
    reader.data()
    await _at(clock, 9.0)
    reader.resume()
    await _at(clock, 9.0)
    await _at(clock, 10.0)  # the first timer fires: this wait began at 9, so it re-arms for 19
    await _at(clock, 18.9)
    assert not reader.task.done()
    await _at(clock, 19.0)
    assert reader.outcomes == ["data", "silent"]


async def test_someone_elses_cancel_is_not_taken_for_silence(clock: list[float]) -> None:
    reader = Reader()
    await _at(clock, 1.0)
    reader.task.cancel()
    await _at(clock, 1.0)
    assert reader.task.cancelled() and reader.outcomes == []


async def test_closing_stops_the_timer(clock: list[float]) -> None:
    reader = Reader()
    await _at(clock, 1.0)
    assert reader.watch is not None
    reader.watch.close()
    await _at(clock, 100.0)
    assert not reader.task.done()
    reader.task.cancel()
    await _at(clock, 100.0)
    assert reader.task.cancelled()
