"""Background clean-up work (deleting upstream sessions) that must outlive a request."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any

log = logging.getLogger(__name__)


class Janitor:
    """Runs fire-and-forget coroutines, keeps them referenced, and drains them on shutdown.

    Clean-up started from a cancelled request (a client that went away) cannot await anything
    itself, so it is handed over here.
    """

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[None]] = set()

    def spawn(self, work: Coroutine[Any, Any, None], what: str) -> None:
        task = asyncio.get_running_loop().create_task(self._run(work, what))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run(self, work: Coroutine[Any, Any, None], what: str) -> None:
        try:
            await work
        except Exception as error:  # clean-up failures are logged, never raised to anyone
            log.warning("%s failed: %s", what, error)

    async def drain(self, timeout: float) -> None:
        """Wait for the clean-up under way, including any that clean-up itself starts."""
        deadline = asyncio.get_running_loop().time() + timeout
        while self._tasks:
            left = deadline - asyncio.get_running_loop().time()
            if left <= 0:
                break
            await asyncio.wait(set(self._tasks), timeout=left)
