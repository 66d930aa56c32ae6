"""Cumulative and incremental frames become clean increments: no repeats, no loss, no U+FFFD."""

from __future__ import annotations

from qwen_free_api.snapshots import Differ


def run(differ: Differ, frames: list[tuple[str, bool]]) -> str:
    return "".join(differ.feed(text, final=final) for text, final in frames)


def test_cumulative_with_duplicates_and_stale_frames() -> None:
    frames = [("我是", False), ("我是", False), ("我是通义", False), ("我是", False)]
    frames += [("我是通义千问", False), ("我是通义千问。", True)]
    assert run(Differ(), frames) == "我是通义千问。"


def test_incremental_detected_and_final_full_copy_not_repeated() -> None:
    frames = [("Hello", False), (" world", False), ("!", False), ("Hello world!", True)]
    assert run(Differ(), frames) == "Hello world!"


def test_incremental_mode_keeps_repeated_tokens() -> None:
    frames = [("very", False), ("very", False), (" good", False), ("", True)]
    assert run(Differ("incremental"), frames) == "veryvery good"


def test_trailing_replacement_char_is_held_until_repaired() -> None:
    differ = Differ()
    assert differ.feed("ab\ufffd") == "ab"
    assert differ.feed("ab你好") == "你好"
    assert differ.feed("ab你好", final=True) == ""


def test_unrepaired_replacement_char_is_released_at_the_end() -> None:
    differ = Differ()
    assert differ.feed("x\ufffd") == "x"
    assert differ.feed("", final=True) == "\ufffd"


def test_rewrite_never_retracts_sent_text() -> None:
    differ = Differ()
    assert run(differ, [("abc", False), ("abcd", False), ("xyz", False)]) == "abcd"
    assert differ.feed("abcdef", final=True) == "ef"
