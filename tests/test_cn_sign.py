"""Our cn signer reproduces the spec's §8.1.8 vectors and uses every salt once."""

from __future__ import annotations

from qwen_free_api.testing import FakeUpstream
from qwen_free_api.upstreams.cn_sign import (
    Device,
    Signer,
    body_sign,
    request_sign,
    signed_headers,
)
from qwen_free_api.upstreams.http import Http

from support import settings_for

DVIDN = "eCy#AAFAKEDEVICEIDFORTESTS"
KP = "tytk_hash:0123456789abcdef0123456789abcdef"
SALT = "ZmFrZS1zYWx0LWZvci10ZXN0cy0wMDAx"
REQT = "1775579162059"
PAIRS = [
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
BODY = (
    '{"req_id":"962930be419e41e0a795f062ecaa7877","parent_req_id":"0","messages":[{"mime_type":'
    '"text/plain","content":"你好","meta_data":{"ori_query":"你好"},"status":"complete"}],'
    '"scene":"chat","sub_scene":"","scene_param":"first_turn","session_id":'
    '"6c330dfa5257472b958a119c99b634b4","biz_id":"ai_qwen","topic_id":'
    '"962930be419e41e0a795f062ecaa7877","model":"Qwen","from":"default","protocol_version":"v2",'
    '"messages_merge":false,"chat_client":"h5","deep_search":null,"temporary":false,'
    '"chat_mode":"quick","bucket":{}}'
).encode()
SECRET = f"{SALT}:{REQT}"
VALUES = "".join(v for _, v in PAIRS)


def test_body_sign_vector() -> None:
    assert len(BODY) == 516
    assert body_sign(SECRET, BODY) == "Ayl6AZHh17rw2RycvMU/Hd249HqGAIB48WJGZfbfL3Y="


def test_request_sign_vectors() -> None:
    bfg = body_sign(SECRET, BODY)
    assert request_sign(SECRET, DVIDN, VALUES, "", bfg) == (
        "CK9x+yiHyZD/vpj3FiVUFGsLCbgk9d0Orm+OOzARaYc="
    )
    assert request_sign(SECRET, DVIDN, VALUES, KP, bfg) == (
        "r5RRu6htY2rXD/D3FbrFAirE1cOG+zIQJ+MDcPDAmpY="
    )


def test_signed_headers_consume_one_salt_each() -> None:
    device = Device(DVIDN, "lv", "act", 4102444800.0, "top", salts=[SALT, "other"])
    first = signed_headers(device, PAIRS, BODY, reqt=REQT)
    second = signed_headers(device, PAIRS, BODY, reqt=REQT)
    assert first["eo-clt-sacsft"] != second["eo-clt-sacsft"]
    assert device.salts == []
    by_salt = {h["eo-clt-sacsft"]: h for h in (first, second)}
    assert by_salt[SALT]["clt-acs-sign"] == "CK9x+yiHyZD/vpj3FiVUFGsLCbgk9d0Orm+OOzARaYc="
    assert by_salt[SALT]["clt-acs-request-params"] == ",".join(k for k, _ in PAIRS)
    assert by_salt[SALT]["eo-clt-acs-kp"] == ""


async def test_exhausted_salt_pool_registers_again_before_signing(
    fake: FakeUpstream, fake_server: tuple[FakeUpstream, str]
) -> None:
    _, url = fake_server
    http = Http(settings_for(url))
    try:
        signer = Signer(http, url, "https://www.qianwen.com")
        first = await signer.headers("tk-salt-test", PAIRS, BODY)
        device = signer._devices["tk-salt-test"]
        assert len(device.salts) > 3
        del device.salts[3:]  # as if nearly every salt had been used
        second = await signer.headers("tk-salt-test", PAIRS, BODY)
    finally:
        await http.close()
    registrations = [r for r in fake.requests if r.path.endswith("/access/register")]
    assert len(registrations) == 2
    assert second["eo-clt-sacsft"] and second["eo-clt-sacsft"] != first["eo-clt-sacsft"]
    assert second["eo-clt-dvidn"] != first["eo-clt-dvidn"]
