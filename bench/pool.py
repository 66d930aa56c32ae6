"""Bounded concurrency: run N coroutines with at most C in flight, within a deadline."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Batch(Generic[T]):
    """The results that finished, how many did not (deadline), and the wall time taken."""

    results: list[T]
    unfinished: int
    wall: float


async def run_bounded(
    make: Callable[[], Awaitable[T]], concurrency: int, count: int, deadline: float
) -> Batch[T]:
    """Call `make` `count` times with at most `concurrency` calls in flight.

    Calls still running after `deadline` seconds are cancelled and counted as unfinished.
    """
    results: list[T] = []
    remaining = count

    async def worker() -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            results.append(await make())

    started = time.perf_counter()
    tasks = [asyncio.ensure_future(worker()) for _ in range(min(concurrency, count))]
    _done, pending = await asyncio.wait(tasks, timeout=deadline)
    for task in pending:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    wall = time.perf_counter() - started
    return Batch(results, count - len(results), wall)


def run_async(main: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine on uvloop when it is installed (as the server does), else asyncio."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(main)
    return uvloop.run(main)
