"""Helpers for the fake upstream's own tests: a minimal cn signer, request builders, parsers."""

import base64
import hashlib
import hmac
import json
from typing import Any

import httpx

from qwen_free_api.testing import (
    make_token,
)

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
