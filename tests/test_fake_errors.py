"""Every named fake error, mid-stream errors, and the transport hooks proxy tests rely on."""

import json
import socket

import httpx
import pytest

from qwen_free_api.testing import (
    CANNED_REFUSAL,
    CN_ERRORS,
    INTL_ERRORS,
    FakeUpstream,
    Script,
    make_token,
)

from fake_client import (
    COMMON,
    answer_item,
    bearer,
    cn_body,
    cn_chat,
    cn_events,
    deltas,
    intl_body,
    intl_chat,
    intl_frames,
    new_chat,
)

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
