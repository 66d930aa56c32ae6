"""The fake's upload flows, driven the way a correct client would: intl STS + OSS PUT, cn workspace.

The OSS V1 signature below is written from the protocol (client side), independently of the fake.
"""

import base64
import hashlib
import hmac
import json
import re
import time
from email.utils import formatdate
from typing import Any
from urllib.parse import quote, urlencode

import httpx
import pytest

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
    new_chat,
    sign,
)

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(200))
OCTET = "application/octet-stream"
SIG = "SignatureDoesNotMatch"
CN_COOKIE = {"cookie": "tongyi_sso_ticket=good"}

# --- client-side helpers ---------------------------------------------------------------------


def md5_b64(data: bytes) -> str:
    return base64.b64encode(hashlib.md5(data).digest()).decode()


def oss_v1(secret: str, headers: dict[str, str], resource: str) -> str:
    """OSS V1 header signature of a PUT, per the protocol (§3.6 + OSS docs)."""
    low = {k.lower(): v for k, v in headers.items()}
    canon = "".join(f"{k}:{low[k].strip()}\n" for k in sorted(low) if k.startswith("x-oss-"))
    fields = ["PUT", low.get("content-md5", ""), low.get("content-type", ""), low.get("date", "")]
    text = "\n".join(fields) + "\n" + canon + resource
    return base64.b64encode(
        hmac.new(secret.encode(), text.encode(), hashlib.sha1).digest()
    ).decode()


def sts(
    http: httpx.Client, name: str = "cat.png", size: int = len(PNG), version: str = "v2"
) -> httpx.Response:
    body = {"filename": name, "filesize": size, "filetype": "image"}
    return http.post(f"/api/{version}/files/getstsToken", json=body, headers=bearer())


def grant_of(http: httpx.Client, name: str = "cat.png", size: int = len(PNG)) -> dict[str, Any]:
    return dict(sts(http, name, size).json()["data"])


def put_headers(grant: dict[str, Any], data: bytes, **changes: str | None) -> dict[str, str]:
    """Signed PUT headers; `changes` replace (None: drop) headers before signing."""
    headers: dict[str, str] = {
        "Content-Type": "image/png",
        "Content-MD5": md5_b64(data),
        "Date": formatdate(usegmt=True),
        "x-oss-security-token": grant["security_token"],
    }
    for key, value in changes.items():
        name = key.replace("_", "-")
        headers.pop(name, None)
        if value is not None:
            headers[name] = value
    resource = f"/{grant['bucketname']}/{grant['file_path']}"
    signature = oss_v1(grant["access_key_secret"], headers, resource)
    headers["Authorization"] = f"OSS {grant['access_key_id']}:{signature}"
    return headers


def intl_put(
    http: httpx.Client, grant: dict[str, Any], data: bytes, headers: dict[str, str] | None = None
) -> httpx.Response:
    url = f"/{grant['bucketname']}/{quote(grant['file_path'])}"
    return http.put(url, content=data, headers=headers or put_headers(grant, data))


def oss_code(reply: httpx.Response) -> str:
    assert reply.headers["content-type"].startswith("application/xml")
    return reply.text.split("<Code>")[1].split("</Code>")[0]


def answer_of(reply: httpx.Response) -> str:
    return "".join(d["content"] for d in deltas(intl_frames(reply.content), "answer"))


# --- intl --------------------------------------------------------------------------------------


def test_intl_upload_reaches_the_chat_through_files(up: FakeUpstream, http: httpx.Client) -> None:
    reply = sts(http)
    body = reply.json()
    assert reply.status_code == 200 and body["success"] is True
    grant = body["data"]
    assert grant["bucketname"] == "qwen-chat-files" and grant["region"] == "oss-ap-southeast-1"
    assert grant["file_path"].endswith("_cat.png") and grant["access_key_id"].startswith("STS.")
    assert grant["file_url"].startswith(
        f"https://qwen-chat-files.oss-ap-southeast-1.aliyuncs.com/{grant['file_path']}?"
    )
    put = intl_put(http, grant, PNG)
    assert put.status_code == 200 and put.content == b""
    assert put.headers["etag"] == '"' + hashlib.md5(PNG).hexdigest().upper() + '"'
    chat_id = new_chat(http)
    message = intl_body("describe")
    entry = {"type": "image", "id": grant["file_id"], "url": grant["file_url"], "name": "cat.png"}
    entry |= {"file_type": "image/png", "file_class": "vision", "status": "uploaded"}
    message["messages"][0]["files"] = [entry]
    digest = hashlib.sha256(PNG).hexdigest()
    expected = f"Echo: describe [image {digest[:12]} cat.png]"
    assert answer_of(intl_chat(http, chat_id, message)) == expected
    seen = up.attachments_seen["intl"]
    assert [(a.sha256, a.size, a.ref) for a in seen] == [(digest, len(PNG), grant["file_id"])]


def test_intl_content_item_and_flat_v1_shape(up: FakeUpstream, http: httpx.Client) -> None:
    flat = sts(http, "a b.png", version="v1").json()
    assert "success" not in flat and flat["file_path"].endswith("_a b.png")
    assert intl_put(http, flat, PNG).status_code == 200
    up.media.sts_shape = "flat"
    assert "access_key_id" in sts(http).json()
    up.media.sts_shape = "wrapped"
    assert "access_key_id" in sts(http, version="v1").json()["data"]
    message = intl_body()
    items = [{"type": "text", "text": "what is this"}, {"type": "image", "image": flat["file_url"]}]
    message["messages"][0]["content"] = items
    answer = answer_of(intl_chat(http, new_chat(http), message))
    assert answer == f"Echo: what is this [image {hashlib.sha256(PNG).hexdigest()[:12]} a b.png]"


@pytest.mark.parametrize(
    ("change", "status", "code"),
    [
        ({"x_oss_security_token": None}, 403, "InvalidAccessKeyId"),
        ({"x_oss_security_token": "CAISforged"}, 403, "InvalidAccessKeyId"),
        ({"Date": None}, 403, "AccessDenied"),
        ({"Date": formatdate(time.time() - 3600, usegmt=True)}, 403, "AccessDenied"),
        ({"Content_MD5": md5_b64(b"other")}, 400, "InvalidDigest"),
    ],
)
def test_intl_put_refusals(
    up: FakeUpstream, http: httpx.Client, change: dict[str, str | None], status: int, code: str
) -> None:
    grant = grant_of(http)
    reply = intl_put(http, grant, PNG, put_headers(grant, PNG, **change))
    assert (reply.status_code, oss_code(reply)) == (status, code)
    assert "<RequestId>" in reply.text and up.media.refusals[-1]["step"] == "intl oss put"
    assert intl_put(http, grant, PNG).status_code == 200  # a refusal does not burn the grant


def test_intl_put_signature_size_path_and_single_use(up: FakeUpstream, http: httpx.Client) -> None:
    grant = grant_of(http)
    forged = put_headers({**grant, "access_key_secret": "wrong"}, PNG)
    assert oss_code(intl_put(http, grant, PNG, forged)) == SIG
    tampered = put_headers(grant, PNG, Content_Type="image/jpeg")
    tampered["Content-Type"] = "image/png"  # signed one type, sent another
    assert oss_code(intl_put(http, grant, PNG, tampered)) == SIG
    short = PNG[:-1]
    no_md5 = put_headers(grant, short, Content_MD5=None)
    assert oss_code(intl_put(http, grant, short, no_md5)) == "AccessDenied"  # size != filesize
    other = grant_of(http, "dog.png")
    elsewhere = {**grant, "file_path": other["file_path"]}
    assert oss_code(intl_put(http, elsewhere, PNG, put_headers(elsewhere, PNG))) == "AccessDenied"
    assert intl_put(http, grant, PNG, put_headers(grant, PNG, Content_MD5=None)).status_code == 200
    again = intl_put(http, grant, PNG)
    assert (again.status_code, oss_code(again)) == (403, "SecurityTokenExpired")
    up.media.sts_ttl = 0.0
    expired = grant_of(http)
    time.sleep(0.01)
    assert oss_code(intl_put(http, expired, PNG)) == "SecurityTokenExpired"


def test_intl_unknown_references_fail(up: FakeUpstream, http: httpx.Client) -> None:
    never_put = grant_of(http)
    up.enqueue("intl", Script(answer="scripted"))
    chat_id = new_chat(http)
    failures = [
        [{"type": "image", "id": never_put["file_id"], "url": never_put["file_url"]}],
        [{"type": "image", "url": "https://example.com/cat.png"}],
        [{"type": "image"}],
    ]
    for files in failures:
        message = intl_body()
        message["messages"][0]["files"] = files
        reply = intl_chat(http, chat_id, message)
        assert reply.headers["content-type"].startswith("application/json")
        body = reply.json()
        assert body["success"] is False and body["data"]["code"] == "Bad_Request"
    assert "File not found" in up.media.refusals[0]["reason"]
    assert len(up.scripts["intl"]) == 1 and up.attachments_seen["intl"] == []
    uploaded = grant_of(http)
    assert intl_put(http, uploaded, PNG).status_code == 200
    message = intl_body()
    mixed = {"type": "image", "id": uploaded["file_id"], "url": never_put["file_url"]}
    message["messages"][0]["files"] = [mixed]
    assert intl_chat(http, chat_id, message).json()["data"]["code"] == "Bad_Request"


def test_intl_sts_checks_token_fields_and_permission(up: FakeUpstream, http: httpx.Client) -> None:
    body = {"filename": "x.png", "filesize": 3, "filetype": "image"}
    assert http.post("/api/v2/files/getstsToken", json=body).status_code == 401
    for bad in ({**body, "filetype": "exe"}, {**body, "filesize": 0}, {"filename": ""}):
        reply = http.post("/api/v2/files/getstsToken", json=bad, headers=bearer())
        assert reply.status_code == 400 and reply.json()["data"]["code"] == "Bad_Request"
    up.media.sts_forbidden = True
    assert sts(http).status_code == 403


# --- cn ----------------------------------------------------------------------------------------


def workspace(
    http: httpx.Client,
    path: str,
    body: dict[str, Any],
    headers: dict[str, str] | None = None,
    query: str = "ut=dev1&req_id=0f0e",
) -> httpx.Response:
    raw = json.dumps(body, separators=(",", ":")).encode()
    return http.post(f"{path}?{query}", content=raw, headers={**CN_COOKIE, **(headers or {})})


def token_body(name: str = "cat.png", data: bytes = PNG) -> dict[str, Any]:
    return dict(file_name=name, content_type=OCTET, content_md5=md5_b64(data), size=len(data))


def cn_put(
    http: httpx.Client, token: dict[str, Any], data: bytes, **changes: str | None
) -> httpx.Response:
    headers = {"Content-Type": OCTET, "authorization": token["authorization"]}
    headers |= {pair["key"]: pair["value"] for pair in token["oss_headers"]}
    for key, value in changes.items():
        headers.pop(key, None)
        if value is not None:
            headers[key] = value
    return http.put(
        f"/{quote(token['object'])}?req_id=0f0e&biz_id=ai_qwen", content=data, headers=headers
    )


def callback_body(
    token: dict[str, Any], name: str = "cat.png", data: bytes = PNG
) -> dict[str, Any]:
    fields = {"file_md5": md5_b64(data), "file_name": name, "file_type": "PNG", "entry": "qwen_pc"}
    return fields | {k: token[k] for k in ("bucket", "endpoint", "object")}


def cn_upload(http: httpx.Client, name: str = "cat.png", data: bytes = PNG) -> dict[str, Any]:
    token = workspace(http, "/1/oss_token", token_body(name, data)).json()["data"]
    assert cn_put(http, token, data).status_code == 200
    reply = workspace(http, "/1/oss/callback", callback_body(token, name, data)).json()
    assert reply["code"] == 0
    return dict(reply["data"])


def image_item(material: dict[str, Any]) -> dict[str, Any]:
    info = {"url": material["material_cdn_url"], "id": material["ws_gid"], "file_format": "png"}
    info |= {"file_name": material["file_name"], "file_size": str(material["file_size"])}
    meta = {"resource_infos": [info]}
    return {"content": "", "mime_type": "image/url", "status": "complete", "meta_data": meta}


def cn_body_with(items: list[dict[str, Any]], *, text_last: bool = True) -> bytes:
    text = {"mime_type": "text/plain", "content": "看图", "meta_data": {"ori_query": "看图"}}
    body: dict[str, Any] = {"req_id": "r1", "parent_req_id": "0", "scene_param": "first_turn"}
    body |= {"session_id": "s1", "messages": [*items, text] if text_last else [text, *items]}
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()


def cn_answer(reply: httpx.Response) -> str:
    events = cn_events(reply.content)
    return str(answer_item(json.loads(events[-2][1]))["content"])


def test_cn_upload_chain_reaches_the_chat(up: FakeUpstream, http: httpx.Client) -> None:
    token_reply = workspace(http, "/1/oss_token", token_body()).json()
    assert token_reply["code"] == 0 and token_reply["success"] is True
    token = token_reply["data"]
    assert token["host"] == "workspace-zb-provide.oss-cn-zhangjiakou.aliyuncs.com"
    assert token["bucket"] == "workspace-zb-provide" and token["object"].endswith("/cat.png")
    assert token["authorization"].startswith("OSS ")
    keys = [pair["key"] for pair in token["oss_headers"]]
    assert keys[0] == "Content-MD5" and "x-oss-security-token" in keys
    assert cn_put(http, token, PNG).status_code == 200
    material = workspace(http, "/1/oss/callback", callback_body(token)).json()["data"]
    assert len(material["ws_gid"]) == 32 and int(material["ws_gid"], 16) >= 0
    assert re.search(
        r"/[0-9a-f]{32}%2Fo%2F\d+\.png\?auth_key=\d+-0-0-", material["material_cdn_url"]
    )
    assert [material[k] for k in ("file_name", "file_type", "file_size")] == [
        "cat.png",
        "PNG",
        200 + 8,
    ]
    image = http.get(material["material_cdn_url"])
    assert image.content == PNG and image.headers["content-type"] == "image/png"
    assert http.get(material["material_cdn_url"].split("?")[0]).status_code == 403
    answer = cn_answer(cn_chat(http, cn_body_with([image_item(material)])))
    assert answer == f"Echo: 看图 [image {hashlib.sha256(PNG).hexdigest()[:12]} cat.png]"
    assert [a.ref for a in up.attachments_seen["cn"]] == [material["ws_gid"]]


def test_cn_put_refusals_and_order(up: FakeUpstream, http: httpx.Client) -> None:
    token = workspace(http, "/1/oss_token", token_body()).json()["data"]
    early = workspace(http, "/1/oss/callback", callback_body(token)).json()
    assert early["code"] != 0 and early["success"] is False  # callback before the PUT
    stranger = {**token, "object": "qwen_pc/20260101/none/cat.png"}
    assert oss_code(cn_put(http, stranger, PNG)) == "AccessDenied"  # PUT before any token
    for change in ({"authorization": "OSS x:y"}, {"x-oss-security-token": None}):
        assert oss_code(cn_put(http, token, PNG, **change)) == SIG
    assert oss_code(cn_put(http, token, PNG, **{"Content-Type": "image/png"})) == SIG
    wrong = cn_put(http, token, PNG[:-1] + b"!")
    assert (wrong.status_code, oss_code(wrong)) == (400, "InvalidDigest")
    assert cn_put(http, token, PNG).status_code == 200
    twice = cn_put(http, token, PNG)
    assert (twice.status_code, oss_code(twice)) == (409, "FileAlreadyExists")
    bad_md5 = {**callback_body(token), "file_md5": md5_b64(b"x")}
    assert workspace(http, "/1/oss/callback", bad_md5).json()["code"] == 400
    no_req_id = workspace(http, "/1/oss/callback", callback_body(token), query="ut=dev1")
    assert no_req_id.json()["code"] == 400
    first = workspace(http, "/1/oss/callback", callback_body(token)).json()["data"]
    assert workspace(http, "/1/oss/callback", callback_body(token)).json()["data"] == first
    up.media.oss_token_ttl = 0.0
    late = workspace(http, "/1/oss_token", token_body()).json()["data"]
    time.sleep(0.01)
    assert oss_code(cn_put(http, late, PNG)) == "AccessDenied"
    bad = workspace(http, "/1/oss_token", {**token_body(), "content_md5": "nope"}).json()
    assert bad["code"] == 400
    logged_out = http.post("/1/oss_token?req_id=1", json=token_body()).json()
    assert logged_out["errorCode"] == "NOT_LOGIN"


def test_cn_chat_refuses_bad_attachments(up: FakeUpstream, http: httpx.Client) -> None:
    material = cn_upload(http)
    good = image_item(material)
    forged = image_item({**material, "ws_gid": "0" * 32})
    moved = image_item({**material, "material_cdn_url": "https://workspace-zb-cdn.qianwen.com/x"})
    for body in (
        cn_body_with([forged]),
        cn_body_with([moved]),
        cn_body_with([good], text_last=False),
    ):
        reply = cn_chat(http, body)
        frame = json.loads(cn_events(reply.content)[0][1])
        assert (frame["error_code"], frame["success"]) == (400, False)
    assert up.sessions_created["cn"] == [] and up.attachments_seen["cn"] == []
    other = cn_chat(http, cn_body_with([good]), ticket="someone-else")
    assert json.loads(cn_events(other.content)[0][1])["error_code"] == 400
    by_material_url = image_item({**material, "material_cdn_url": material["material_url"]})
    assert "[image " in cn_answer(cn_chat(http, cn_body_with([by_material_url])))


def test_cn_workspace_calls_use_the_workspace_scene(up: FakeUpstream, http: httpx.Client) -> None:
    up.sign_mode = "hard"
    data = http.post(
        "/security/external/access/register?chid=1x",
        json={"unifyRelateGenerate": ["qwen_chat", "workspace_api"]},
        headers={"eo-clt-sftcnt": "4"},
    ).json()["data"]
    scenes = {r["businessScene"]: r for r in data["unifyRelate"]}
    query = [*CN_QUERY, ("req_id", "0f0e")]

    def signed(path: str, body: dict[str, Any], scene: str, salt: int) -> httpx.Response:
        raw = json.dumps(body, separators=(",", ":")).encode()
        pool = scenes[scene]
        now = str(int(time.time() * 1000))
        headers = sign(query, raw, data["eo-clt-dvidn"], pool["eo-clt-bacsft"][salt], now)
        headers["eo-clt-actkn"] = pool["eo-clt-actkn"]
        url = f"{path}?{urlencode(query, quote_via=quote)}"
        return http.post(url, content=raw, headers={**CN_COOKIE, **headers})

    unsigned = workspace(http, "/1/oss_token", token_body())
    assert unsigned.status_code == 403 and unsigned.json()["code"] == "EX015"
    assert signed("/1/oss_token", token_body(), "qwen_chat", 0).status_code == 403
    token = signed("/1/oss_token", token_body(), "workspace_api", 0).json()["data"]
    reused = signed("/1/oss_token", token_body(), "workspace_api", 0)
    assert reused.status_code == 403 and "workspace_api" in up.sign_failures[-1]
    assert cn_put(http, token, PNG).status_code == 200
    done = signed("/1/oss/callback", callback_body(token), "workspace_api", 1).json()
    assert done["code"] == 0
    up.sign_mode = "soft"
    soft = workspace(http, "/1/oss_token", token_body())
    assert soft.status_code == 200 and soft.json()["code"] == "EX015"
