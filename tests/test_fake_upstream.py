"""The fake upstream speaks both Qwen web dialects faithfully over real loopback sockets.

Guards: the §8.1.8 signing vectors (verifier and a minimal test signer agree), cn signing and
one-time salts, cn/intl stream shapes as captured (cumulative vs incremental, framing bytes),
thinking, continuation rules, delete bookkeeping, every named error, byte-identical chunking,
and the deterministic hold/release/disconnect hooks tests of the proxy rely on.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import json
import re
import socket
import time
import uuid
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote, urlencode

import httpx
import pytest

from qwen_free_api.testing import (
    CANNED_REFUSAL,
    CN_ERRORS,
    INTL_ERRORS,
    FakeUpstream,
    Script,
    ServerThread,
    make_token,
)
from qwen_free_api.testing.signing import verify_signature

# --- §8.1.8 test vectors -------------------------------------------------------------------

V_DVIDN = "eCy#AAFAKEDEVICEIDFORTESTS"
V_KP = "tytk_hash:0123456789abcdef0123456789abcdef"
V_SALT = "ZmFrZS1zYWx0LWZvci10ZXN0cy0wMDAx"
V_REQT = "1775579162059"
V_QUERY = [
    ("biz_id", "ai_qwen"),
    ("fe_version", "1.0.0"),
    ("chat_client", "h5"),
    ("device", "pc"),
    ("fr", "pc"),
    ("pr", "qwen"),
    ("ut", "5b68c267cd8efd0e148a18345bc9a104"),
    ("la", "zh-CN"),
    ("tz", "Asia/Shanghai"),
    ("wv", "4.6.4"),
    ("ve", "4.6.4"),
    ("nonce", "k3v9q0x2m1a"),
    ("timestamp", "1775579161064"),
]
V_BODY = (
    '{"req_id":"962930be419e41e0a795f062ecaa7877","parent_req_id":"0","messages":[{"mime_type":'
    '"text/plain","content":"你好","meta_data":{"ori_query":"你好"},"status":"complete"}],"scene":'
    '"chat","sub_scene":"","scene_param":"first_turn","session_id":"6c330dfa5257472b958a119c99b634b4",'
    '"biz_id":"ai_qwen","topic_id":"962930be419e41e0a795f062ecaa7877","model":"Qwen","from":"default",'
    '"protocol_version":"v2","messages_merge":false,"chat_client":"h5","deep_search":null,'
    '"temporary":false,"chat_mode":"quick","bucket":{}}'
).encode()
V_BFG = "Ayl6AZHh17rw2RycvMU/Hd249HqGAIB48WJGZfbfL3Y="
V_SIGN_EMPTY_KP = "CK9x+yiHyZD/vpj3FiVUFGsLCbgk9d0Orm+OOzARaYc="
V_SIGN_QCM = "r5RRu6htY2rXD/D3FbrFAirE1cOG+zIQJ+MDcPDAmpY="
V_SIGN_CWA = "f/hTl6xBDGpy4n0CdCXuD1lljo9opMtBN3o7Hql2fKA="

CN_QUERY = [("biz_id", "ai_qwen"), ("chat_client", "h5"), ("device", "pc"), ("fr", "pc")]
CN_QUERY += [("pr", "qwen"), ("ut", "dev1"), ("tz", "Asia/Shanghai"), ("nonce", "abc123def45")]
COMMON = "biz_id=ai_qwen&chat_client=h5&device=pc&fr=pc&pr=qwen&ut=dev1"
BROWSER = {"origin": "https://www.qianwen.com", "accept": "application/json, text/event-stream"}


def _mac(secret: str, message: bytes) -> str:
    digest = hmac.new(secret.encode(), message, hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def sign(
    query: list[tuple[str, str]], body: bytes, dvidn: str, salt: str, reqt: str, kp: str = ""
) -> dict[str, str]:
    """Minimal §8.1.5 signer (kp after the values)."""
    secret = f"{salt}:{reqt}"
    bfg = _mac(secret, body)
    values = "".join(v for _, v in query)
    return {
        "clt-acs-sign": _mac(secret, (dvidn + "1.0.0" + values + kp + bfg).encode()),
        "clt-acs-bfg": bfg,
        "clt-acs-reqt": reqt,
        "clt-acs-request-params": ",".join(k for k, _ in query),
        "clt-acs-caer": "vrad",
        "eo-clt-dvidn": dvidn,
        "eo-clt-sacsft": salt,
        "eo-clt-snver": "lv",
        "eo-clt-acs-ve": "1.0.0",
        "eo-clt-acs-kp": kp,
    }


# --- fixtures and helpers ------------------------------------------------------------------


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


def cn_body(prompt: str = "你好", req: str = "r1", session: str = "s1", **extra: Any) -> bytes:
    body: dict[str, Any] = {"req_id": req, "parent_req_id": "0", "scene_param": "first_turn"}
    body["session_id"] = session
    body["messages"] = [
        {"mime_type": "text/plain", "content": prompt, "meta_data": {"ori_query": prompt}}
    ]
    body.update(extra)
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()


def cn_chat(
    http: httpx.Client, body: bytes, *, ticket: str = "good", query: str = COMMON, **headers: str
) -> httpx.Response:
    return http.post(
        f"/api/v2/chat?{query}",
        content=body,
        headers={**BROWSER, **headers, "cookie": f"tongyi_sso_ticket={ticket}"},
    )


def cn_events(raw: bytes) -> list[tuple[str | None, str]]:
    events = []
    for block in raw.decode().split("\n\n"):
        lines = [ln for ln in block.split("\n") if ln and not ln.startswith(":")]
        lines = [ln for ln in lines if ln != "[heartbeat]"]
        if not lines:
            continue
        event = lines[0][6:] if lines[0].startswith("event:") else None
        events.append((event, lines[-1].removeprefix("data:")))
    return events


def answer_item(frame: dict[str, Any]) -> dict[str, Any]:
    return next(m for m in frame["data"]["messages"] if m["mime_type"] == "multi_load/iframe")


def bearer(token: str | None = None) -> dict[str, str]:
    return {"authorization": f"Bearer {token or make_token()}"}


def new_chat(http: httpx.Client, token: str | None = None) -> str:
    reply = http.post("/api/v2/chats/new", json={"models": ["qwen3.7-plus"]}, headers=bearer(token))
    return str(reply.json()["data"]["id"])


def intl_body(prompt: str = "hello", parent: str | None = None, **config: Any) -> dict[str, Any]:
    feature = {"thinking_enabled": False, "output_schema": "phase", **config}
    message = {"role": "user", "content": prompt, "feature_config": feature}
    return {"stream": True, "parent_id": parent, "messages": [message]}


def intl_chat(
    http: httpx.Client, chat_id: str, body: dict[str, Any], token: str | None = None
) -> httpx.Response:
    url = f"/api/v2/chat/completions?chat_id={chat_id}"
    return http.post(url, json=body, headers=bearer(token))


def intl_frames(raw: bytes) -> list[dict[str, Any]]:
    frames = []
    for block in raw.decode().split("\n\n"):
        if block.startswith("data: {"):
            frames.append(json.loads(block[6:]))
    return frames


def deltas(frames: list[dict[str, Any]], phase: str) -> list[dict[str, Any]]:
    out = [f["choices"][0]["delta"] for f in frames if "choices" in f]
    return [d for d in out if d.get("phase") == phase]


# --- signing -------------------------------------------------------------------------------


def test_signing_vectors_pass_the_verifier_and_the_test_signer() -> None:
    now = int(V_REQT)
    assert sign(V_QUERY, V_BODY, V_DVIDN, V_SALT, V_REQT)["clt-acs-sign"] == V_SIGN_EMPTY_KP
    assert sign(V_QUERY, V_BODY, V_DVIDN, V_SALT, V_REQT, V_KP)["clt-acs-sign"] == V_SIGN_QCM
    base = sign(V_QUERY, V_BODY, V_DVIDN, V_SALT, V_REQT)
    assert base["clt-acs-bfg"] == V_BFG
    for kp, signed in (("", V_SIGN_EMPTY_KP), (V_KP, V_SIGN_QCM), (V_KP, V_SIGN_CWA)):
        headers = {**base, "eo-clt-acs-kp": kp, "clt-acs-sign": signed}
        assert verify_signature(headers, V_QUERY, V_BODY, now_ms=now).ok
    assert not verify_signature(base, V_QUERY, V_BODY + b" ", now_ms=now).ok
    assert not verify_signature(base, V_QUERY[1:], V_BODY, now_ms=now).ok
    assert not verify_signature(base, V_QUERY, V_BODY, now_ms=now + 6 * 60 * 1000).ok
    wrong_kp = {**base, "eo-clt-acs-kp": V_KP}
    assert not verify_signature(wrong_kp, V_QUERY, V_BODY, now_ms=now).ok


def register(http: httpx.Client, count: int = 3) -> dict[str, Any]:
    reply = http.post(
        "/security/external/access/register?chid=1775579161064abcdefghij",
        json={"businessScene": "qwen_web", "unifyRelateGenerate": ["qwen_chat"]},
        headers={"eo-clt-sftcnt": str(count)},
    )
    body = reply.json()
    assert body["status"] == 0
    return dict(body["data"])


def test_register_refresh_and_calibration(up: FakeUpstream, http: httpx.Client) -> None:
    data = register(http, count=5)
    assert data["eo-clt-dvidn"].startswith("eCy#") and data["eo-clt-snver"] == "lv"
    assert abs(data["eo-clt-actkn-dl"] - (time.time() + 86400)) < 120
    scenes = {r["businessScene"]: r for r in data["unifyRelate"]}
    assert set(scenes) == {"qwen_chat", "workspace_api"}
    assert len(data["eo-clt-bacsft"]) == 5 and len(scenes["qwen_chat"]["eo-clt-bacsft"]) == 5
    assert len(base64.b64decode(scenes["qwen_chat"]["eo-clt-bacsft"][0])) == 40
    url = "/security/external/access/refresh?businessScene=qwen_web&unifyRelateGenerate=qwen_chat"
    assert http.get(url).json()["status"] == 1
    top = {"eo-clt-dvidn": data["eo-clt-dvidn"], "eo-clt-actkn": data["eo-clt-actkn"]}
    fresh = http.get(url, headers=top).json()["data"]
    assert [r["businessScene"] for r in fresh["unifyRelate"]] == ["qwen_chat"]
    millis = http.get("/api/calibration/getMillisTimeStamp?t=1").json()["data"]
    assert millis["millisTimeStamp"].isdigit() and millis["exLoadBxTimeout"] == 1000


def signed_chat(http: httpx.Client, data: dict[str, Any], salt: str, body: bytes) -> httpx.Response:
    chat = next(r for r in data["unifyRelate"] if r["businessScene"] == "qwen_chat")
    headers = sign(CN_QUERY, body, data["eo-clt-dvidn"], salt, str(int(time.time() * 1000)))
    headers["eo-clt-actkn"] = chat["eo-clt-actkn"]
    return cn_chat(http, body, query=urlencode(CN_QUERY, quote_via=quote), **headers)


def test_hard_mode_accepts_a_signed_chat_and_rejects_a_reused_salt(
    up: FakeUpstream, http: httpx.Client
) -> None:
    up.sign_mode = "hard"
    data = register(http)
    salt = next(r for r in data["unifyRelate"] if r["businessScene"] == "qwen_chat")[
        "eo-clt-bacsft"
    ][0]
    first = signed_chat(http, data, salt, cn_body())
    assert first.status_code == 200 and first.text.endswith("event:complete\ndata:true\n\n")
    again = signed_chat(http, data, salt, cn_body(req="r2", session="s2"))
    assert again.status_code == 403
    assert again.json() == {"status": 1, "code": "EX015", "msg": "签名错误", "data": {}}
    assert up.sign_failures == ["eo-clt-sacsft not issued for qwen_chat or already used"]
    up.expire_signing()
    other = next(r for r in data["unifyRelate"] if r["businessScene"] == "qwen_chat")[
        "eo-clt-bacsft"
    ][1]
    assert signed_chat(http, data, other, cn_body(req="r3", session="s3")).status_code == 403


def test_soft_and_canned_modes_on_an_unsigned_chat(up: FakeUpstream, http: httpx.Client) -> None:
    up.sign_mode = "soft"
    soft = cn_chat(http, cn_body())
    expected = '{"communication":{"resid":0},"data":{"messages":[],"status":"processing"},'
    expected += '"error_code":1001,"error_msg":"签名错误","success":false}'
    assert soft.text == f"event:message\ndata:{expected}\n\n"
    up.sign_mode = "canned"
    canned = cn_events(cn_chat(http, cn_body(session="s9")).content)
    assert answer_item(json.loads(canned[-2][1]))["content"] == CANNED_REFUSAL
    assert up.chat_requests("cn")[0].headers["origin"] == "https://www.qianwen.com"


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


# --- intl streams --------------------------------------------------------------------------


def test_intl_stream_shape(up: FakeUpstream, http: httpx.Client) -> None:
    chat_id = new_chat(http)
    reply = intl_chat(http, chat_id, intl_body("hello"))
    assert reply.headers["content-type"] == "text/event-stream; charset=utf-8"
    created = reply.text.split("\n\n")[0]
    pattern = r'data: \{"response\.created":\{"chat_id": "%s", "parent_id": "[0-9a-f-]{36}", '
    pattern += r'"response_id":"([0-9a-f-]{36})", "response_index": "0"\}\} '
    match = re.fullmatch(pattern % chat_id, created)
    assert match is not None
    frames = intl_frames(reply.content)
    answers = deltas(frames, "answer")
    assert "".join(d["content"] for d in answers) == "Echo: hello"
    assert [d["content"] for d in answers[-3:-1]] == ["", ""]
    usage = [f["usage"]["output_tokens"] for f in frames if "usage" in f]
    assert usage == sorted(usage) and usage[-1] == 4 and frames[1]["usage"]["input_tokens"] == 17
    rid = match.group(1)
    final = '{"choices": [{"delta": {"content": "", "role": "assistant", "status": "finished", '
    final += f'"phase": "answer"}}}}], "response_id": "{rid}"}}'
    assert reply.text.endswith(f"data: {final}\n\n")
    assert up.sessions_created["intl"] == [chat_id]


def test_intl_done_marker_and_missing_output_schema(up: FakeUpstream, http: httpx.Client) -> None:
    chat_id = new_chat(http)
    up.enqueue("intl", Script(done_marker=True))
    assert intl_chat(http, chat_id, intl_body()).text.endswith("data: [DONE]\n\n")
    bare = intl_body(output_schema=None)
    frames = intl_frames(intl_chat(http, chat_id, bare).content)
    assert all("phase" not in f["choices"][0]["delta"] for f in frames if "choices" in f)


def test_intl_thinking_summary_and_detail(up: FakeUpstream, http: httpx.Client) -> None:
    chat_id = new_chat(http)
    up.enqueue("intl", Script(reasoning="a\nbc", piece=1))
    frames = intl_frames(intl_chat(http, chat_id, intl_body(thinking_enabled=True)).content)
    summary = deltas(frames, "thinking_summary")
    thoughts = [d["extra"]["summary_thought"]["content"] for d in summary if "extra" in d]
    assert thoughts == [["a"], ["a", ""], ["a", "b"], ["a", "bc"]]
    assert summary[-1] == {
        "role": "assistant",
        "content": "",
        "phase": "thinking_summary",
        "status": "finished",
    }
    detail = intl_body("xyz", thinking_enabled=True, thinking_format="detail")
    think = deltas(intl_frames(intl_chat(http, chat_id, detail).content), "think")
    assert (
        "".join(d["content"] for d in think) == "Thinking about: xyz"
        and think[-1]["status"] == "finished"
    )


def test_intl_continuation_history_and_deletes(up: FakeUpstream, http: httpx.Client) -> None:
    chat_id = new_chat(http)
    first = intl_chat(http, chat_id, intl_body("one"))
    rid = intl_frames(first.content)[0]["response.created"]["response_id"]
    second = intl_frames(intl_chat(http, chat_id, intl_body("two", parent=rid)).content)
    assert "".join(d["content"] for d in deltas(second, "answer")) == "Echo: two (turn 2)"
    wrong = intl_chat(http, chat_id, intl_body("x", parent=str(uuid.uuid4()))).json()
    assert wrong["success"] is False and wrong["data"]["code"] == "Not_Found"
    unknown = intl_chat(http, str(uuid.uuid4()), intl_body()).json()
    assert unknown["data"] == {"code": "Not_Found", "details": "chat not found"}
    history = http.get(f"/api/v2/chats/{chat_id}", headers=bearer()).json()["data"]["chat"][
        "messages"
    ]
    assert [m["content"] for m in history] == ["one", "Echo: one", "two", "Echo: two (turn 2)"]
    assert http.delete(f"/api/v2/chats/{chat_id}", headers=bearer()).json()["data"] == {
        "status": True
    }
    assert http.delete(f"/api/v2/chats/{chat_id}", headers=bearer()).json()["success"] is False
    assert intl_chat(http, chat_id, intl_body()).json()["data"]["code"] == "Not_Found"
    other = new_chat(http)
    assert http.delete("/api/v2/chats/", headers=bearer()).json()["success"] is True
    assert up.delete_calls == [("intl", chat_id), ("intl", chat_id), ("intl", "*")]
    assert up.sessions_deleted["intl"] == [chat_id, other]


def test_intl_auth_and_models(up: FakeUpstream, http: httpx.Client) -> None:
    for token in (make_token(expires_in=-10), "garbled", "a.b.c"):
        for method, path in (
            ("GET", "/api/v2/user"),
            ("POST", "/api/v2/chats/new"),
            ("GET", "/api/models"),
        ):
            assert http.request(method, path, headers=bearer(token)).status_code == 401
    assert (
        http.get("/api/v2/users/status", headers={"cookie": f"token={make_token()}"}).json()["data"]
        is True
    )
    assert http.get("/api/v2/user", headers=bearer()).json()["data"]["email"] == "user@example.com"
    digest = hashlib.sha256(b"password").hexdigest()
    signin = http.post(
        "/api/v1/auths/signin", json={"email": "user@example.com", "password": digest}
    )
    assert http.get("/api/v2/user", headers=bearer(signin.json()["token"])).status_code == 200
    bad = http.post(
        "/api/v1/auths/signin", json={"email": "user@example.com", "password": "password"}
    )
    assert bad.status_code == 401
    ids = [m["id"] for m in http.get("/api/models", headers=bearer()).json()["data"]]
    assert {"qwen3.7-plus", "qwen3.7-max", "qwen3.6-plus", "qwen3-coder-plus"} <= set(ids)
    wrapped = http.get("/api/v2/models/", headers=bearer()).json()
    assert wrapped["success"] is True and wrapped["data"]["data"][0]["info"]["meta"]["abilities"]


# --- named errors --------------------------------------------------------------------------

CN_EXPECT: dict[str, tuple[int, str]] = {
    "sign_soft": (200, '"error_code":1001'),
    "sign_hard": (403, '"code":"EX015"'),
    "not_login": (200, '"error_code":401'),
    "waf_html": (200, "rgv587_flag:sm"),
    "waf_json": (200, '"ret":["FAIL_SYS_USER_VALIDATE"'),
    "empty": (200, ""),
    "http_500": (500, "Internal Server Error"),
    "http_502": (502, "502 Bad Gateway"),
    "http_503": (503, "503 Service"),
    "http_504_html": (504, "alibaba-ga"),
    "canned": (200, CANNED_REFUSAL),
    "error_frame": (200, '"error_code":500,"error_msg":"系统繁忙"'),
}
INTL_EXPECT: dict[str, tuple[int, str]] = {
    "quota": (200, '"code":"RateLimited","details":"You\'ve reached the upper limit'),
    "waf": (200, "被挤爆啦"),
    "captcha": (200, "action=captchaconnect"),
    "bad_request": (
        200,
        '{"success":false,"data":{"code":"Bad_Request","details":"Internal error..."}}',
    ),
    "too_many_requests": (
        200,
        '{"error": {"code": "Too_Many_Requests", "details": "please slow down"}',
    ),
    "context_length": (200, '"ContextLengthExceeded"'),
    "http_401": (401, "Unauthorized"),
    "http_429": (429, ""),
    "http_500": (500, ""),
    "http_502": (502, "Bad Gateway"),
    "http_503": (503, "Unavailable"),
    "http_504_html": (504, "alibaba-ga"),
    "html_waf": (200, "rgv587_flag:sm"),
}


def test_every_named_error_is_covered() -> None:
    assert set(CN_EXPECT) == CN_ERRORS and set(INTL_EXPECT) == INTL_ERRORS
    with pytest.raises(ValueError):
        FakeUpstream().enqueue("cn", Script(error="quota"))


@pytest.mark.parametrize("name", sorted(CN_EXPECT))
def test_cn_named_error(up: FakeUpstream, http: httpx.Client, name: str) -> None:
    up.enqueue("cn", Script(error=name))
    reply = cn_chat(http, cn_body())
    status, needle = CN_EXPECT[name]
    assert reply.status_code == status and needle in reply.text
    assert "multi_load/iframe" not in reply.text or name == "canned"


@pytest.mark.parametrize("name", sorted(INTL_EXPECT))
def test_intl_named_error(up: FakeUpstream, http: httpx.Client, name: str) -> None:
    chat_id = new_chat(http)
    up.enqueue("intl", Script(error=name))
    reply = intl_chat(http, chat_id, intl_body())
    status, needle = INTL_EXPECT[name]
    assert (
        reply.status_code == status
        and needle in reply.text
        and "response.created" not in reply.text
    )
    if name in ("quota", "waf", "captcha", "bad_request"):
        assert reply.headers["content-type"] == "application/json"
    if name == "http_429":
        assert reply.content == b""


def test_mid_stream_errors_and_scenarios(up: FakeUpstream, http: httpx.Client) -> None:
    up.enqueue("cn", Script(answer="abcdef", error="error_frame", error_after=1))
    events = cn_events(cn_chat(http, cn_body()).content)
    assert answer_item(json.loads(events[1][1]))["content"] == "abc"
    last = json.loads(events[-1][1])
    assert (last["error_code"], last["data"]["messages"]) == (500, []) and events[-1][
        0
    ] == "message"
    chat_id = new_chat(http)
    up.enqueue("intl", Script(answer="abcdef", error="quota", error_after=1))
    frames = intl_frames(intl_chat(http, chat_id, intl_body()).content)
    assert (
        deltas(frames, "answer")[0]["content"] == "abc"
        and frames[-1]["data"]["code"] == "RateLimited"
    )
    assert cn_chat(http, cn_body(session="z"), ticket="scenario-waf_json-1").json()["ret"]
    token = make_token(scenario="quota")
    assert intl_chat(http, new_chat(http, token), intl_body(), token).json()["data"]["num"] == 3


# --- transport hooks -----------------------------------------------------------------------


def test_chunk_bytes_one_yields_identical_bytes(up: FakeUpstream, http: httpx.Client) -> None:
    answer = "多字节 UTF-8 ✓ text"
    up.enqueue("cn", Script(answer=answer, piece=4))
    up.enqueue("cn", Script(answer=answer, piece=4, chunk_bytes=1))
    whole = cn_chat(http, cn_body(session="c1")).content
    split = cn_chat(http, cn_body(session="c2")).content
    assert split.replace(b'"c2"', b'"c1"') == whole


def test_chunk_bytes_one_writes_one_byte_at_a_time(
    up: FakeUpstream, served: tuple[FakeUpstream, str]
) -> None:
    """Each ASGI write becomes one HTTP/1.1 chunk, so the chunk sizes show the write sizes."""
    up.enqueue("cn", Script(answer="✓✓", chunk_bytes=1))
    body = cn_body()
    head = f"POST /api/v2/chat?{COMMON} HTTP/1.1\r\nHost: fake\r\nConnection: close\r\n"
    head += "Origin: https://www.qianwen.com\r\nAccept: text/event-stream\r\n"
    head += f"Cookie: tongyi_sso_ticket=good\r\nContent-Length: {len(body)}\r\n\r\n"
    port = int(served[1].rsplit(":", 1)[1])
    raw = b""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(head.encode() + body)
        while chunk := sock.recv(65536):
            raw += chunk
    chunked = raw.split(b"\r\n\r\n", 1)[1]
    sizes = []
    while chunked:
        size_line, rest = chunked.split(b"\r\n", 1)
        size = int(size_line, 16)
        sizes.append(size)
        chunked = rest[size + 2 :]
    assert sizes[-1] == 0 and set(sizes[:-1]) == {1} and len(sizes) > 500


async def test_hold_release_stall_and_disconnects(up: FakeUpstream, http: httpx.Client) -> None:
    url = str(http.base_url.join(f"/api/v2/chat/completions?chat_id={new_chat(http)}"))
    up.enqueue("intl", Script(answer="abcdef", hold_after=1))
    async with httpx.AsyncClient(timeout=10) as client:
        async with client.stream("POST", url, json=intl_body(), headers=bearer()) as reply:
            await up.wait_for(lambda: up.held_streams == 1)
            assert up.open_streams == 1
            up.release()
            body = b"".join([chunk async for chunk in reply.aiter_bytes()])
        assert b'"status": "finished"' in body
        await up.wait_for(lambda: up.open_streams == 0)
        for script in (Script(hold_after=1), Script(stall_after=0)):
            up.enqueue("intl", script)
            async with client.stream("POST", url, json=intl_body(), headers=bearer()) as reply:
                await up.wait_for(lambda: up.held_streams == 1 or up.open_streams == 1)
        await up.wait_for(lambda: up.disconnects == 2 and up.open_streams == 0)
    assert up.held_streams == 0


async def test_wait_for_times_out_and_keepalives_fill_the_delay(
    up: FakeUpstream, http: httpx.Client
) -> None:
    with pytest.raises(TimeoutError):
        await up.wait_for(lambda: False, timeout=0.01)
    up.enqueue("intl", Script(first_byte_delay=0.25, keepalive_every=0.1))
    text = intl_chat(http, new_chat(http), intl_body()).text
    assert text.count('"response.info": {"action": "keep_alive"') == 2
    recorded = up.chat_requests("intl")[0]
    assert recorded.json()["messages"][0]["content"] == "hello"
    assert recorded.headers["authorization"].startswith("Bearer ")
