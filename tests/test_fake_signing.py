"""The fake cn signing service: §8.1.8 vectors, registration, one-time salts, sign modes."""

import base64
import json
import time
from typing import Any
from urllib.parse import quote, urlencode

import httpx

from qwen_free_api.testing import (
    CANNED_REFUSAL,
    FakeUpstream,
)
from qwen_free_api.testing.signing import verify_signature

from fake_client import (
    CN_QUERY,
    V_BFG,
    V_BODY,
    V_DVIDN,
    V_KP,
    V_QUERY,
    V_REQT,
    V_SALT,
    V_SIGN_CWA,
    V_SIGN_EMPTY_KP,
    V_SIGN_QCM,
    answer_item,
    cn_body,
    cn_chat,
    cn_events,
    sign,
)

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
