"""Model names: the suffixes clients use to switch features, and the cached upstream lists."""

from __future__ import annotations

import asyncio
import fnmatch
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)

SUFFIXES = ("-thinking", "-search", "-fast")


@dataclass(frozen=True, slots=True)
class ModelInfo:
    id: str
    name: str = ""
    thinking: bool = True
    search: bool = True


@dataclass(frozen=True, slots=True)
class Choice:
    """A client's model name taken apart: base name and the features its suffixes switch."""

    base: str
    thinking: bool | None
    search: bool


def split_suffixes(name: str) -> Choice:
    base, thinking, search = name.strip(), None, False
    changed = True
    while changed:
        changed = False
        lowered = base.lower()
        for suffix in SUFFIXES:
            if lowered.endswith(suffix) and len(base) > len(suffix):
                base = base[: -len(suffix)]
                changed = True
                if suffix == "-search":
                    search = True
                else:
                    thinking = suffix == "-thinking"
    return Choice(base, thinking, search)


class Catalogue:
    """One backend's model list: fetched from the upstream, cached, with a built-in fallback."""

    def __init__(
        self,
        fallback: tuple[ModelInfo, ...],
        aliases: dict[str, str],
        default: str,
        ttl: float,
        patterns: list[tuple[str, str]] | None = None,
    ) -> None:
        self._models = fallback
        self._aliases = aliases
        self._patterns = patterns or []
        self._default = default
        self._ttl = ttl
        self._fetched_at = 0.0
        self._lock = asyncio.Lock()

    @property
    def models(self) -> tuple[ModelInfo, ...]:
        return self._models

    @property
    def aliases(self) -> list[str]:
        return sorted(self._aliases)

    def resolve(self, base: str) -> str:
        """The upstream id for a client's base name.

        Real ids and display names first, then aliases, then the client-name patterns
        (claude-*, gemini-*, …); anything else goes to the default model.
        """
        found = self._known(base)
        if found:
            return found
        lowered = base.lower()
        for pattern, target in self._patterns:
            if fnmatch.fnmatchcase(lowered, pattern):
                return self._known(target) or target
        log.debug("unknown model %r, using %s", base, self._default)
        return self._default

    def _known(self, name: str) -> str | None:
        lowered = name.lower()
        for model in self._models:
            if lowered in (model.id.lower(), model.name.lower()):
                return model.id
        return self._aliases.get(lowered)

    async def warm(
        self,
        fetch: Callable[[], Awaitable[list[ModelInfo]]],
        background: Callable[[Coroutine[Any, Any, None]], None],
    ) -> None:
        """Before a chat: fetch the list once (so new models resolve), later refresh behind."""
        if self._fetched_at == 0.0:
            await self.refresh(fetch)
        elif self.stale() and not self._lock.locked():
            background(self.refresh(fetch))

    def stale(self) -> bool:
        return time.monotonic() - self._fetched_at > self._ttl

    async def refresh(self, fetch: Callable[[], Awaitable[list[ModelInfo]]]) -> None:
        """Fetch the upstream list if the cache is stale; keep the old list on failure."""
        async with self._lock:
            if not self.stale():
                return
            try:
                models = await fetch()
            except Exception as error:
                log.warning("could not fetch the model list, using the cached one: %s", error)
                self._fetched_at = time.monotonic() - self._ttl + 60  # retry in a minute
                return
            if models:
                self._models = tuple(models)
            self._fetched_at = time.monotonic()
