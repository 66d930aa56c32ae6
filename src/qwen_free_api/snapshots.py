"""Turn upstream text frames into clean increments, whether they are cumulative or not.

Qwen's backends send either the whole text so far (cn) or only the new piece (intl), and both
have been seen to change; duplicate, stale and repeated-final frames happen. This follows the
spec's normalisation rules: detect the mode from the first frames, never retract text already
sent, never re-emit a final full copy, and hold back a trailing U+FFFD (half a character cut
at a frame boundary) until a later frame repairs it.
"""

from __future__ import annotations

import logging
from typing import Literal

log = logging.getLogger(__name__)

REPLACEMENT = "\ufffd"


class Differ:
    """Feed each frame's text; get back only what the client has not seen yet."""

    __slots__ = ("_held", "mode", "sent")

    def __init__(self, mode: Literal["unknown", "cumulative", "incremental"] = "unknown") -> None:
        self.mode = mode
        self.sent = ""  # everything emitted so far (plus what is held back)
        self._held = 0  # length of the held-back tail of `sent` not yet emitted

    def feed(self, text: str, *, final: bool = False) -> str:
        if not text:
            return self._release() if final else ""
        if self.mode == "incremental":
            return self._incremental(text, final)
        if self.mode == "unknown":
            if not self.sent:
                return self._snapshot(text, final)
            if self._is_growth(text):
                self.mode = "cumulative"
            elif self.sent.startswith(text):
                return self._release() if final else ""
            else:
                self.mode = "incremental"
                log.debug("stream looks incremental")
                return self._incremental(text, final)
        return self._cumulative(text, final)

    def _is_growth(self, text: str) -> bool:
        base = self.sent[: len(self.sent) - self._held]
        # Longer than what was emitted: a held-back U+FFFD may come back repaired, same length.
        return text != self.sent and len(text) > len(base) and text.startswith(base)

    def _cumulative(self, text: str, final: bool) -> str:
        base = self.sent[: len(self.sent) - self._held]
        if text.startswith(base) and len(text) >= len(base):
            return self._snapshot(text, final)
        if self.sent.startswith(text):
            return self._release() if final else ""  # duplicate or stale frame
        log.warning("cumulative stream rewrote earlier text; keeping what was sent")
        return self._release() if final else ""

    def _snapshot(self, text: str, final: bool) -> str:
        """`text` is the whole text so far; emit what is new, holding back a trailing U+FFFD."""
        emitted = len(self.sent) - self._held
        self.sent = text
        cut = len(text) if final else _repair_point(text, emitted)
        self._held = len(text) - cut
        return text[emitted:cut]

    def _incremental(self, text: str, final: bool) -> str:
        if final and len(self.sent) > 0 and text.startswith(self.sent):
            text = text[len(self.sent) :]  # a final full copy: only its new tail counts
        self.sent += text
        self._held = 0
        return text

    def _release(self) -> str:
        if not self._held:
            return ""
        tail = self.sent[len(self.sent) - self._held :]
        self._held = 0
        return tail


def _repair_point(text: str, emitted: int) -> int:
    """Index up to which `text` can be sent: before a trailing run of U+FFFD."""
    end = len(text)
    while end > emitted and text[end - 1] == REPLACEMENT:
        end -= 1
    return end
