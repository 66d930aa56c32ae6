"""The fake cn backend streams as captured: cumulative frames, thinking, variants, sessions."""

import itertools
import json
from typing import Any

import httpx
import pytest

from qwen_free_api.testing import (
    FakeUpstream,
    Script,
)

from fake_client import (
    COMMON,
    answer_item,
    cn_body,
    cn_chat,
    cn_events,
)

# --- cn streams ----------------------------------------------------------------------------


def test_cn_stream_is_cumulative_with_event_lines_usage_and_complete(
    up: FakeUpstream, http: httpx.Client
) -> None:
    reply = cn_chat(http, cn_body("hello"))
    assert reply.headers["content-type"] == "text/event-stream;charset=UTF-8"
    assert reply.text.startswith('event:message\ndata:{"communication":{"chat_assistant_name"')
    events = cn_events(reply.content)
    assert events[-1] == ("complete", "true")
    frames = [json.loads(data) for event, data in events[:-1]]
    assert all(event == "message" for event, _ in events[:-1])
    assert [f["communication"]["resid"] for f in frames] == list(range(len(frames)))
    assert {f["communication"]["reqid"] for f in frames} == {"r1"}
    texts = [answer_item(f)["content"] for f in frames[1:]]
    assert texts[-1] == "Echo: hello"
    assert all(b.startswith(a) for a, b in itertools.pairwise(texts))
    final = frames[-1]["data"]
    assert final["status"] == "complete" and answer_item(frames[-1])["status"] == "complete"
    assert final["audit_info"] == {"error_code": 0}
    usage = {"completion_tokens": 4, "prompt_tokens": 17, "total_tokens": 21}
    assert final["extra_info"]["chat_odps"]["total_usage"] == usage
    progress = next(m for m in final["messages"] if m["mime_type"] == "bar/progress")
    assert progress["meta_data"]["elements"][0]["content"] == "正在生成回答"
    assert up.sessions_created["cn"] == ["s1"]


def test_cn_thinking_frames_come_first_with_placeholder(
    up: FakeUpstream, http: httpx.Client
) -> None:
    up.enqueue("cn", Script(answer="42", reasoning="ponder", piece=2))
    frames = [
        json.loads(d) for e, d in cn_events(cn_chat(http, cn_body(deep_search="1")).content)[:-1]
    ]
    items = [answer_item(f) for f in frames[1:]]
    thinks = [i["meta_data"]["multi_load"][0]["content"] for i in items]
    assert [t["think_content"] for t in thinks[:3]] == ["po", "pond", "ponder"]
    assert [i["content"] for i in items[:3]] == ["[(multimodal_chat_think_1)]"] * 3
    assert items[-1]["content"] == "[(multimodal_chat_think_1)]42"
    assert thinks[-1]["status"] == "complete"
    assert any(m["mime_type"] == "plan_cot/post" for m in frames[-1]["data"]["messages"])
    agent = cn_body(session="s2", model="tongyi-qwen3-max-thinking-agent")
    last = json.loads(cn_events(cn_chat(http, agent).content)[-2][1])
    assert answer_item(last)["content"].startswith("[(deep_think)]Echo: ")


@pytest.mark.parametrize(
    ("script", "check"),
    [
        (Script(no_event_lines=True), lambda raw: raw.startswith(b"data:{")),
        (Script(complete_json=True), lambda raw: b"event:complete\ndata:{" in raw),
        (
            Script(crlf=True),
            lambda raw: b"\r\n\r\n" in raw and b"\n\n" not in raw.replace(b"\r\n", b""),
        ),
        (Script(heartbeats=True), lambda raw: b"\n: ping\n" in raw and b"\n[heartbeat]\n" in raw),
        (Script(close_early=True), lambda raw: b"event:complete" not in raw),
        (Script(split_multibyte=True), lambda raw: "Ech\ufffd".encode() in raw),
    ],
)
def test_cn_framing_variants(
    http: httpx.Client, up: FakeUpstream, script: Script, check: Any
) -> None:
    up.enqueue("cn", script)
    assert check(cn_chat(http, cn_body()).content)


def test_cn_duplicates_and_moderation(up: FakeUpstream, http: httpx.Client) -> None:
    up.enqueue("cn", Script(duplicates=True))
    events = cn_events(cn_chat(http, cn_body()).content)
    assert len(events) != len(set(events))
    up.enqueue("cn", Script(answer="abcdef", moderation=True, error_after=1))
    last = json.loads(cn_events(cn_chat(http, cn_body(session="s2")).content)[-1][1])
    assert last["data"]["audit_info"] == {"problem_code": "blocked", "error_code": 1}
    assert (
        last["communication"]["disconnection_signal"] == 1 and answer_item(last)["content"] == "abc"
    )


def test_cn_gatekeeping(up: FakeUpstream, http: httpx.Client) -> None:
    no_origin = http.post(
        f"/api/v2/chat?{COMMON}", content=cn_body(), headers={"accept": "text/event-stream"}
    )
    assert no_origin.status_code == 200 and "rgv587_flag:sm" in no_origin.text
    assert no_origin.headers["content-type"].startswith("text/html")
    plain = cn_chat(http, cn_body(), accept="*/*")
    assert plain.status_code == 200 and plain.headers["content-length"] == "0"
    logged_out = json.loads(cn_events(cn_chat(http, cn_body(), ticket="expired-1").content)[0][1])
    assert logged_out["error_code"] == 401 and logged_out["success"] is False
    no_ut = cn_chat(http, cn_body(), query="biz_id=ai_qwen&ut=")
    assert "multi_load/iframe" not in no_ut.text and no_ut.text.endswith("data:true\n\n")
    assert up.sessions_created["cn"] == []


def test_cn_continuation_rules(up: FakeUpstream, http: httpx.Client) -> None:
    cn_chat(http, cn_body(req="r1"))
    cont = {"parent_req_id": "r1", "scene_param": "continue_chat"}
    second = cn_events(cn_chat(http, cn_body("more", req="r2", **cont)).content)
    assert answer_item(json.loads(second[-2][1]))["content"] == "Echo: more (turn 2)"
    for bad in (
        cn_body(req="r3", parent_req_id="nope", scene_param="continue_chat"),
        cn_body(req="r4"),  # first_turn on an existing session
        cn_body(req="r5", session="other", **cont),
    ):
        frame = json.loads(cn_events(cn_chat(http, bad).content)[0][1])
        assert frame["success"] is False and frame["error_code"] != 0
    jar = {"cookie": "tongyi_sso_ticket=good"}
    http.post(f"/api/v1/session/delete?{COMMON}", json={"session_id": "s1"}, headers=jar)
    after = cn_body(req="r6", parent_req_id="r2", scene_param="continue_chat")
    assert json.loads(cn_events(cn_chat(http, after).content)[0][1])["error_code"] == 404


def test_cn_session_endpoints(up: FakeUpstream, http: httpx.Client) -> None:
    cn_chat(http, cn_body(session="sa"))
    cn_chat(http, cn_body(session="sb"))
    jar = {"cookie": "tongyi_sso_ticket=good"}
    listed = http.post(f"/api/v2/session/page/list?{COMMON}", json={}, headers=jar).json()
    assert {s["session_id"] for s in listed["data"]["list"]} == {"sa", "sb"}
    assert listed["code"] == 0 and listed["data"]["have_next_page"] is False
    no_ut = http.post("/api/v2/session/page/list?biz_id=ai_qwen", json={}, headers=jar)
    assert no_ut.status_code == 400 and no_ut.json()["msg"] == "ut"
    bad = http.post(
        f"/api/v2/session/page/list?{COMMON}", json={}, headers={"cookie": "tongyi_sso_ticket=bad"}
    )
    assert bad.json() == {"success": False, "errorCode": "NOT_LOGIN", "errorMsg": "未登录"}
    delete = f"/api/v1/session/delete?{COMMON}"
    assert (
        http.post(delete, json={"session_id": "", "biz_id": "ai_qwen"}, headers=jar).json()[
            "success"
        ]
        is False
    )
    assert http.post(delete, json={"session_id": "zz"}, headers=jar).json()["success"] is False
    assert http.post(delete, json={"session_id": "sa"}, headers=jar).json() == {
        "success": True,
        "code": 0,
        "msg": "ok",
    }
    batch = http.post(
        f"/api/v1/session/delete/batch?{COMMON}", json={"session_ids": ["sb"]}, headers=jar
    )
    assert batch.json()["code"] == 0
    assert up.delete_calls == [("cn", ""), ("cn", "zz"), ("cn", "sa"), ("cn", "sb")]
    assert up.sessions_deleted["cn"] == ["sa", "sb"]
    models = http.get(f"/api/v1/model/list?{COMMON}").json()["data"]
    assert [m["modelCode"] for m in models] == [
        "Qwen",
        "Qwen3.8-Max",
        "Qwen3.7-Max",
        "Qwen3.6-Flash",
    ]
