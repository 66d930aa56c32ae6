"""The fake's image generation: intl t2i stream with signed URLs, cn image jobs polled by snap."""

import hashlib
import json
import re
import struct
import time
from typing import Any
from urllib.parse import quote, urlencode

import httpx

from qwen_free_api.testing import FakeUpstream, Script

from fake_client import (
    CN_QUERY,
    answer_item,
    bearer,
    cn_chat,
    cn_events,
    deltas,
    intl_body,
    intl_chat,
    intl_frames,
    sign,
)

# --- intl t2i ----------------------------------------------------------------------------------


def t2i_chat(http: httpx.Client) -> str:
    body = {
        "title": "New Chat",
        "models": ["qwen3.5-plus"],
        "chat_type": "t2i",
        "chat_mode": "normal",
    }
    return str(http.post("/api/v2/chats/new", json=body, headers=bearer()).json()["data"]["id"])


def t2i_body(
    prompt: str = "two pandas", size: str | None = "16:9", parent: str | None = None
) -> dict[str, Any]:
    body = intl_body(prompt, parent)
    body["messages"][0] |= {"chat_type": "t2i", "sub_chat_type": "t2i", "files": []}
    if size is not None:
        body["size"] = size
    return body


def png_size(data: bytes) -> tuple[int, int]:
    assert data.startswith(b"\x89PNG\r\n\x1a\n") and data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def test_intl_t2i_stream_and_signed_urls(up: FakeUpstream, http: httpx.Client) -> None:
    up.enqueue("intl", Script(images=2, image_pending=3))
    chat_id = t2i_chat(http)
    reply = intl_chat(http, chat_id, t2i_body())
    frames = intl_frames(reply.content)
    rid = frames[0]["response.created"]["response_id"]
    infos = [f["response.info"] for f in frames[1:4]]
    assert [i["action"] for i in infos] == ["keep_alive"] * 3 and {
        i["response_id"] for i in infos
    } == {rid}
    images = deltas(frames, "image_gen")
    assert [d["status"] for d in images] == ["typing", "typing", "finished"]
    urls = [d["content"] for d in images[:2]]
    pattern = rf"http://127\.0\.0\.1:\d+/output/[0-9a-f-]+/t2i/{rid}/\d{{10}}[0-9a-f]{{4}}\.png\?key=[\w-]+\.[\w-]+\.[\w-]+"
    assert all(re.fullmatch(pattern, url) for url in urls) and len(set(urls)) == 2
    assert images[0]["extra"] == {"output_image_hw": [[1536, 2688]]}
    usage = frames[4]["usage"]
    assert (usage["width"], usage["height"], usage["image_count"]) == (2688, 1536, 1)
    assert reply.text.endswith(f'"phase": "image_gen"}}}}], "response_id": "{rid}"}}\n\n')
    first = http.get(urls[0])
    assert first.status_code == 200 and first.headers["content-type"] == "image/png"
    assert png_size(first.content) == (42, 24)
    assert http.get(urls[1]).content != first.content
    bare = http.get(urls[0].split("?")[0])
    assert bare.status_code == 403 and "<Code>AccessDenied</Code>" in bare.text
    assert http.get(urls[0][:-3] + "abc").status_code == 403
    assert http.get(urls[0].replace(".png", "0.png")).status_code == 404


def test_intl_t2i_continuation_can_reference_a_generated_image(
    up: FakeUpstream, http: httpx.Client
) -> None:
    chat_id = t2i_chat(http)
    frames = intl_frames(intl_chat(http, chat_id, t2i_body()).content)
    rid = frames[0]["response.created"]["response_id"]
    url = deltas(frames, "image_gen")[0]["content"]
    data = http.get(url).content
    follow = intl_body("the left panda eats", parent=rid)
    entry = {"type": "image", "name": "example.png", "file_type": "image/png", "showType": "image"}
    follow["messages"][0]["files"] = [
        entry | {"file_class": "vision", "status": "uploaded", "url": url}
    ]
    answer = "".join(
        d["content"]
        for d in deltas(intl_frames(intl_chat(http, chat_id, follow).content), "answer")
    )
    name = url.split("?")[0].rsplit("/", 1)[1]
    marker = f"[image {hashlib.sha256(data).hexdigest()[:12]} {name}]"
    assert answer == f"Echo: the left panda eats (turn 2) {marker}"
    follow["messages"][0]["files"][0]["url"] = url.split("?")[0]  # the key is part of the reference
    assert intl_chat(http, chat_id, follow).json()["data"]["code"] == "Bad_Request"


def test_intl_t2i_refusal_and_request_checks(up: FakeUpstream, http: httpx.Client) -> None:
    up.enqueue("intl", Script(image_refused=True, image_pending=0))
    chat_id = t2i_chat(http)
    frames = intl_frames(intl_chat(http, chat_id, t2i_body(size=None)).content)
    assert deltas(frames, "image_gen") == []
    answer = deltas(frames, "answer")
    assert (
        answer[0]["content"] == "I can't generate that image."
        and answer[-1]["status"] == "finished"
    )
    plain = http.post(
        "/api/v2/chats/new", json={"models": ["qwen3.5-plus"]}, headers=bearer()
    ).json()
    wrong_chat = intl_chat(http, plain["data"]["id"], t2i_body())
    assert wrong_chat.json()["data"]["code"] == "Bad_Request"
    assert intl_chat(http, chat_id, t2i_body(size="2:1")).json()["data"]["code"] == "Bad_Request"
    assert len(up.media.refusals) == 2


def test_intl_t2i_that_never_finishes_keeps_sending_keepalives(
    up: FakeUpstream, http: httpx.Client
) -> None:
    up.enqueue("intl", Script(image_never=True, image_interval=0.02))
    chat_id = t2i_chat(http)
    url = f"/api/v2/chat/completions?chat_id={chat_id}"
    seen = 0
    with http.stream("POST", url, json=t2i_body(), headers=bearer()) as reply:
        for line in reply.iter_lines():
            seen += '"keep_alive"' in line
            assert "image_gen" not in line
            if seen == 5:
                break
    up.wait_until(lambda: up.open_streams == 0)
    assert up.disconnects == 1


# --- cn image jobs -----------------------------------------------------------------------------

BIZ = {
    "req": {
        "rootModel": "qwen2",
        "prompt": "一只橘猫",
        "originPrompt": "一只橘猫",
        "negativePrompt": "",
        "params": {"size": "3:4", "features": ["qwen_image_2"]},
    },
    "bizScene": "genImage",
}


def image_body(req: str = "r1", session: str = "s1", biz: Any = None) -> bytes:
    text = {
        "mime_type": "text/plain",
        "content": "画一只橘猫",
        "meta_data": {"ori_query": "画一只橘猫"},
        "status": "complete",
    }
    body: dict[str, Any] = {"req_id": req, "parent_req_id": "0", "scene_param": "first_turn"}
    body |= {
        "session_id": session,
        "messages": [text],
        "model": "Qwen",
        "ai_tool_scene": "zaodian_generate_image",
    }
    body["biz_data"] = json.dumps(BIZ if biz is None else biz, ensure_ascii=False)
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()


def snap(http: httpx.Client, body: bytes, **headers: str) -> dict[str, Any]:
    reply = http.post(
        "/api/v1/chat/snap?ut=dev1",
        content=body,
        headers={"cookie": "tongyi_sso_ticket=good", **headers},
    )
    assert reply.status_code == 200
    return dict(reply.json())


def image_list(data: dict[str, Any]) -> dict[str, Any]:
    item = data["response_messages"][0]["meta_data"]["multi_load"][0]
    assert item["type"] == "ai_generate_image_list"
    return dict(item["content"])


def detail(http: httpx.Client, req: str) -> dict[str, Any]:
    url = f"/api/v1/session/req/detail?ut=dev1&session_id=s1&req_id={req}"
    return dict(http.get(url, headers={"cookie": "tongyi_sso_ticket=good"}).json())


def test_cn_image_job_is_pending_then_ready_with_auth_key_urls(
    up: FakeUpstream, http: httpx.Client
) -> None:
    up.enqueue("cn", Script(images=2, image_pending=2))
    body = image_body()
    stream = cn_events(cn_chat(http, body).content)
    assert stream[-1] == ("complete", "true")
    assert answer_item(json.loads(stream[-2][1]))["content"] == "Echo: 画一只橘猫"
    assert "data" not in detail(http, "r1_complete")  # pending: no data, as captured (1st poll)
    pending = snap(http, body)["data"]  # 2nd poll
    assert pending["status"] == "processing" and image_list(pending)["resource_infos"] == []
    assert image_list(pending)["loading_image"].startswith("https://g.alicdn.com/")
    ready = snap(http, body)["data"]
    assert (ready["status"], ready["req_id"], ready["session_id"]) == ("complete", "r1", "s1")
    content = image_list(ready)
    urls = [info["url"] for info in content["resource_infos"]]
    assert len(urls) == 2 and all(
        re.search(r"/[0-9a-f]{32}%2Fo%2F\d+\.png\?auth_key=\d+-0-0-[0-9a-f]{32}$", u) for u in urls
    )
    assert content["layout_list"] == [
        {"image": [info["refer_id"] for info in content["resource_infos"]]}
    ]
    image = http.get(urls[0])
    assert image.headers["content-type"] == "image/png" and png_size(image.content) == (27, 37)
    assert http.get(urls[0].split("?")[0]).status_code == 403
    assert http.get(urls[0].replace("auth_key=", "auth_key=1")).status_code == 403
    assert detail(http, "r1_complete")["data"]["response_messages"] == ready["response_messages"]
    assert "data" not in detail(http, "r1")  # the `_complete` suffix is required
    assert "data" not in snap(http, image_body(req="unknown"))
    assert up.media.image_jobs["r1"].polls == 4


def test_cn_image_refusal_never_and_bad_biz_data(up: FakeUpstream, http: httpx.Client) -> None:
    up.enqueue("cn", Script(image_refused=True, image_pending=0))
    cn_chat(http, image_body())
    refused = snap(http, image_body())["data"]
    assert refused["status"] == "complete" and image_list(refused)["resource_infos"] == []
    assert refused["response_messages"][0]["content"] == "抱歉，这个请求无法为你生成图片。"
    up.enqueue("cn", Script(image_never=True))
    cn_chat(http, image_body(req="r2", session="s2"))
    body = image_body(req="r2", session="s2")
    assert all(snap(http, body)["data"]["status"] == "processing" for _ in range(5))
    bad: list[Any] = [
        {"req": {"prompt": "x", "params": {"size": "5:1"}}, "bizScene": "genImage"},
        {"req": {}},
        "not json",
    ]
    for biz in bad:
        raw = image_body(req="r3", session="s3", biz=biz)
        frame = json.loads(cn_events(cn_chat(http, raw).content)[0][1])
        assert (frame["error_code"], frame["success"]) == (400, False)
        assert "biz_data" in frame["error_msg"] or "req." in frame["error_msg"]
    assert "r3" not in up.media.image_jobs


def test_cn_snap_is_signed_afresh_each_poll(up: FakeUpstream, http: httpx.Client) -> None:
    up.sign_mode = "hard"
    data = http.post(
        "/security/external/access/register?chid=2y", json={}, headers={"eo-clt-sftcnt": "5"}
    ).json()["data"]
    chat = next(r for r in data["unifyRelate"] if r["businessScene"] == "qwen_chat")
    query = urlencode(CN_QUERY, quote_via=quote)
    body = image_body()

    def signed(salt: int) -> dict[str, str]:
        headers = sign(
            CN_QUERY,
            body,
            data["eo-clt-dvidn"],
            chat["eo-clt-bacsft"][salt],
            str(int(time.time() * 1000)),
        )
        return headers | {"eo-clt-actkn": chat["eo-clt-actkn"]}

    up.enqueue("cn", Script(image_pending=0))
    assert cn_chat(http, body, query=query, **signed(0)).status_code == 200
    unsigned = http.post(
        f"/api/v1/chat/snap?{query}", content=body, headers={"cookie": "tongyi_sso_ticket=good"}
    )
    assert unsigned.status_code == 403 and unsigned.json()["code"] == "EX015"
    reused = http.post(
        f"/api/v1/chat/snap?{query}",
        content=body,
        headers={"cookie": "tongyi_sso_ticket=good", **signed(0)},
    )
    assert reused.status_code == 403
    fresh = http.post(
        f"/api/v1/chat/snap?{query}",
        content=body,
        headers={"cookie": "tongyi_sso_ticket=good", **signed(1)},
    )
    assert fresh.json()["data"]["status"] == "complete"
