"""Everything the fake remembers, guarded by one lock, observable from any thread or event loop."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from qwen_free_api.testing.media_state import MediaStore, SeenAttachment
from qwen_free_api.testing.script import Dialect, Recorded, Script

SignMode = Literal["off", "soft", "hard", "canned"]
SIGN_MODES: tuple[SignMode, ...] = ("off", "soft", "hard", "canned")


@dataclass
class Device:
    """A cn signing identity issued by `register`: tokens and unused one-time salts per scene."""

    dvidn: str
    actkn: str
    actkn_dl: int
    scene_actkn: dict[str, str]
    salts: dict[str, set[str]]  # scene ("" = top level) -> salts not used yet


@dataclass
class CnSession:
    """A cn chat session, created under the client's `session_id` on its first turn."""

    session_id: str
    ticket: str
    created_ms: int
    title: str
    turns: dict[str, int] = field(default_factory=dict)  # req_id -> turn number
    deleted: bool = False


@dataclass
class IntlChat:
    """An intl chat created by `chats/new`, with its answered turns and their history."""

    chat_id: str
    owner: str
    model: str
    chat_type: str
    created: int
    responses: dict[str, int] = field(default_factory=dict)  # response_id -> turn number
    history: list[dict[str, Any]] = field(default_factory=list)


class FakeState:
    """Requests, scripts, sessions and stream counters; every change wakes `wait_for` callers."""

    def __init__(self, *, sign_mode: SignMode = "off") -> None:
        if sign_mode not in SIGN_MODES:
            raise ValueError(f"sign_mode must be one of {SIGN_MODES}")
        self.sign_mode: str = sign_mode
        self._cond = threading.Condition(threading.RLock())
        self._waiters: set[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = set()
        self._holders: list[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]] = []
        self._pending_release = False
        self.open_streams = 0
        self.open_requests = 0  # requests whose handler has not returned (every path)
        self.held_streams = 0
        self._init_data()

    def _init_data(self) -> None:
        self.requests: list[Recorded] = []
        self.sessions_created: dict[str, list[str]] = {"cn": [], "intl": []}
        self.sessions_deleted: dict[str, list[str]] = {"cn": [], "intl": []}
        self.delete_calls: list[tuple[str, str]] = []
        self.sign_failures: list[str] = []
        self.disconnects = 0
        self.scripts: dict[str, deque[Script]] = {"cn": deque(), "intl": deque()}
        # marker -> script, for every chat whose prompt contains the marker (see next_script)
        self.prompt_scripts: dict[Dialect, dict[str, Script]] = {"cn": {}, "intl": {}}
        self.devices: dict[str, Device] = {}
        self.cn_sessions: dict[str, CnSession] = {}
        self.intl_chats: dict[str, IntlChat] = {}
        self.signin_lifetime = 30 * 24 * 3600.0  # seconds until a signed-in token expires
        self.refuse_deletes = False  # every session/chat delete fails (HTTP 500), nothing goes
        self.media = MediaStore()
        self.attachments_seen: dict[str, list[SeenAttachment]] = {"cn": [], "intl": []}

    # --- change notification -------------------------------------------------------------

    def changed(self) -> None:
        """Wake everything waiting on a predicate; call after every mutation."""
        with self._cond:
            self._cond.notify_all()
            waiters = list(self._waiters)
        for loop, event in waiters:
            with contextlib.suppress(RuntimeError):  # that loop is closed; its waiter is gone
                loop.call_soon_threadsafe(event.set)

    def locked(self) -> threading.Condition:
        """The lock guarding every mutable field (a re-entrant condition)."""
        return self._cond

    async def wait_for(self, predicate: Callable[[], bool], timeout: float = 10.0) -> None:
        """Return once `predicate()` holds (re-checked on every change); TimeoutError if not."""
        event = asyncio.Event()
        waiter = (asyncio.get_running_loop(), event)
        with self._cond:
            self._waiters.add(waiter)
        try:
            async with asyncio.timeout(timeout):
                while True:
                    event.clear()
                    if predicate():
                        return
                    await event.wait()
        finally:
            with self._cond:
                self._waiters.discard(waiter)

    def wait_until(self, predicate: Callable[[], bool], timeout: float = 10.0) -> None:
        """Blocking twin of `wait_for` for synchronous tests; TimeoutError after `timeout`."""
        with self._cond:
            if not self._cond.wait_for(predicate, timeout):
                raise TimeoutError(f"condition not reached within {timeout} s")

    # --- recording and bookkeeping -------------------------------------------------------

    def record(self, recorded: Recorded) -> None:
        """Append one request to `requests`."""
        with self._cond:
            self.requests.append(recorded)
        self.changed()

    def next_script(self, dialect: Dialect, prompt: str = "") -> Script:
        """The script of a marker the prompt contains (kept for reuse), else the next queued
        script of this dialect, else the default Script()."""
        with self._cond:
            for marker, chosen in self.prompt_scripts[dialect].items():
                if marker in prompt:
                    return chosen
            queue = self.scripts[dialect]
            script = queue.popleft() if queue else Script()
        self.changed()
        return script

    def note_created(self, dialect: Dialect, ident: str) -> None:
        """A session (cn) or chat (intl) came into existence."""
        with self._cond:
            self.sessions_created[dialect].append(ident)
        self.changed()

    def note_delete(self, dialect: Dialect, ident: str, *, deleted: bool) -> None:
        """A delete call for `ident`; `deleted` tells whether it removed something."""
        with self._cond:
            self.delete_calls.append((dialect, ident))
            if deleted:
                self.sessions_deleted[dialect].append(ident)
        self.changed()

    def note_delete_all(self, dialect: Dialect, idents: list[str]) -> None:
        """A delete-everything call (recorded as id "*") that removed `idents`."""
        with self._cond:
            self.delete_calls.append((dialect, "*"))
            self.sessions_deleted[dialect].extend(idents)
        self.changed()

    def note_sign_failure(self, reason: str) -> None:
        """Why a cn signature was refused (for test diagnostics)."""
        with self._cond:
            self.sign_failures.append(reason)
        self.changed()

    def note_media_refusal(self, step: str, reason: str) -> None:
        """Why an upload, reference or image step was refused (for test diagnostics)."""
        with self._cond:
            self.media.refusals.append({"step": step, "reason": reason})
        self.changed()

    def note_attachments(self, dialect: Dialect, seen: list[SeenAttachment]) -> None:
        """Attachments an accepted chat request carried."""
        with self._cond:
            self.attachments_seen[dialect].extend(seen)
        self.changed()

    def request_started(self) -> None:
        """Any request reached a handler (counted in `open_requests` until it returns)."""
        with self._cond:
            self.open_requests += 1
        self.changed()

    def request_finished(self) -> None:
        """A handler returned: its response was sent, or its client went away."""
        with self._cond:
            self.open_requests -= 1
        self.changed()

    # --- stream lifecycle ------------------------------------------------------------------

    def stream_opened(self) -> None:
        """A streaming response started."""
        with self._cond:
            self.open_streams += 1
        self.changed()

    def stream_closed(self, *, client_gone: bool) -> None:
        """A streaming response ended; `client_gone` when the client left before the end."""
        with self._cond:
            self.open_streams -= 1
            if client_gone:
                self.disconnects += 1
        self.changed()

    async def hold(self) -> None:
        """Park the calling stream until `release()`; passes at once if a release is pending."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        holder = (loop, future)
        with self._cond:
            if self._pending_release:
                self._pending_release = False
                return
            self._holders.append(holder)
            self.held_streams += 1
        self.changed()
        try:
            await future
        finally:
            with self._cond:
                if holder in self._holders:
                    self._holders.remove(holder)
                self.held_streams -= 1
            self.changed()

    def release(self) -> None:
        """Let every stream waiting at `hold_after` continue (or the next one, if none waits)."""
        with self._cond:
            holders, self._holders = self._holders, []
            if not holders:
                self._pending_release = True
        for loop, future in holders:
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(_resolve, future)
        self.changed()

    def reset(self) -> None:
        """Forget requests, scripts, sessions, devices and counters (sign_mode is kept)."""
        with self._cond:
            self._init_data()
            self._pending_release = False
        self.changed()


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)
