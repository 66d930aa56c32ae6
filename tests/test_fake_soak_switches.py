"""The fake's switches the soak relies on: a script chosen by a marker in the prompt (any order,
any concurrency, the queue untouched) and paced answer frames (a slow upstream body)."""

from __future__ import annotations

import httpx
import pytest

from qwen_free_api.testing import FakeUpstream, Script
from qwen_free_api.testing.stream import FramePlan, Pause, assemble

from fake_client import cn_body, cn_chat, deltas, intl_body, intl_chat, intl_frames, new_chat


def test_a_marker_in_the_prompt_picks_its_script_on_both_backends(
    up: FakeUpstream, http: httpx.Client
) -> None:
    up.script_for_prompt("[fast]", Script(answer="marked"))
    up.script_for_prompt("[broken]", Script(error="http_500"), ("intl",))
    up.enqueue("intl", Script(answer="queued"))
    chat_id = new_chat(http)
    marked = intl_frames(intl_chat(http, chat_id, intl_body("a [fast] one")).content)
    assert "".join(d["content"] for d in deltas(marked, "answer")) == "marked"
    assert intl_chat(http, new_chat(http), intl_body("[broken]")).status_code == 500
    plain = intl_frames(intl_chat(http, new_chat(http), intl_body("plain")).content)
    assert "".join(d["content"] for d in deltas(plain, "answer")) == "queued"
    assert "marked" in cn_chat(http, cn_body("[fast] cn", req="r2", session="s2")).text
    assert "Echo: [broken]" in cn_chat(http, cn_body("[broken]", req="r3", session="s3")).text


def test_a_marker_script_is_checked_for_each_backend(up: FakeUpstream) -> None:
    with pytest.raises(ValueError, match="unknown cn error"):
        up.script_for_prompt("[x]", Script(error="quota"))  # an intl-only error


def test_paced_frames_pause_after_each_answer_piece() -> None:
    plan = FramePlan(head=[b"head"], answers=[[b"a"], [b"b"]], tail=[b"end"])
    steps = assemble(plan, Script(pace=0.25))
    assert steps == [b"head", b"a", Pause(0.25), b"b", Pause(0.25), b"end"]
    assert assemble(plan, Script()) == [b"head", b"a", b"b", b"end"]
    with pytest.raises(ValueError, match="pace"):
        Script(pace=-1).check("intl")
