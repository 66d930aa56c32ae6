"""The fake intl backend streams as captured: phases, thinking formats, continuation, auth."""

import hashlib
import re
import uuid

import httpx

from qwen_free_api.testing import (
    FakeUpstream,
    Script,
    make_token,
)

from fake_client import (
    bearer,
    deltas,
    intl_body,
    intl_chat,
    intl_frames,
    new_chat,
)

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
