"""The small routes and the edges of every request: models, ping, token check, keys, limits."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from qwen_free_api.app import UnsafeSettings, check_settings
from qwen_free_api.testing import FakeUpstream

from support import CREDENTIALS, body, chat, make_jwt, settings_for


async def test_ping(client: httpx.AsyncClient) -> None:
    response = await client.get("/ping")
    assert response.status_code == 200 and response.text == "pong"


async def test_models_come_from_the_upstreams_with_suffixes_and_aliases(
    make_server: Any, fake: FakeUpstream
) -> None:
    seed = f"{CREDENTIALS['cn']},{CREDENTIALS['intl']}"
    async with httpx.AsyncClient(base_url=make_server()) as client:
        response = await client.get("/v1/models", headers={"authorization": f"Bearer {seed}"})
    assert response.status_code == 200
    data = response.json()
    assert data["object"] == "list"
    ids = {m["id"]: m for m in data["data"]}
    assert {"object", "created", "owned_by", "id"} <= set(next(iter(ids.values())))
    assert ids["qwen3.7-plus"]["owned_by"] == "qwen-intl"
    assert ids["Qwen3.8-Max"]["owned_by"] == "qwen-cn"
    for suffix in ("-thinking", "-fast", "-search"):
        assert "qwen3.7-plus" + suffix in ids
    assert "qwen" in ids and "qwen-max" in ids
    paths = {r.path for r in fake.requests}
    assert "/api/models" in paths and "/api/v1/model/list" in paths


async def test_models_without_credentials_use_the_builtin_list(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/models")
    assert response.status_code == 200
    assert any(m["id"] == "qwen3.7-plus" for m in response.json()["data"])


@pytest.mark.parametrize(
    ("token", "live", "state"),
    [
        (CREDENTIALS["cn"], True, "live"),
        ("bad-ticket-0000000000000000", False, "rejected"),
        (CREDENTIALS["intl"], True, "live"),
        (make_jwt({"id": "u", "exp": 1}), False, "expired"),
    ],
)
async def test_token_check(
    client: httpx.AsyncClient, fake: FakeUpstream, token: str, live: bool, state: str
) -> None:
    response = await client.post("/token/check", json={"token": token})
    assert response.status_code == 200
    assert response.json()["live"] is live
    assert response.json()["state"] == state


async def test_token_check_needs_a_token(client: httpx.AsyncClient) -> None:
    response = await client.post("/token/check", json={})
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "token"


async def test_missing_credentials_is_401(client: httpx.AsyncClient) -> None:
    response = await client.post("/v1/chat/completions", json=body("x"))
    assert response.status_code == 401
    assert response.json()["error"]["type"] == "authentication_error"


async def test_pool_mode_requires_a_client_key(make_server: Any, fake: FakeUpstream) -> None:
    url = make_server(tokens=[CREDENTIALS["cn"]], api_keys=["sk-right"])
    async with httpx.AsyncClient(base_url=url) as client:
        wrong = await client.post(
            "/v1/chat/completions", json=body("x"), headers={"authorization": "Bearer sk-wrong"}
        )
        right = await client.post(
            "/v1/chat/completions",
            json=body("x", stream=False),
            headers={"authorization": "Bearer sk-right"},
        )
        check = await client.post("/token/check", json={"token": "t"})
    assert wrong.status_code == 401
    assert right.status_code == 200
    assert right.json()["choices"][0]["message"]["content"] == "Echo: x"
    assert check.status_code == 401


def test_pool_without_keys_refuses_to_serve_beyond_loopback() -> None:
    with pytest.raises(UnsafeSettings):
        check_settings(settings_for("http://x", tokens=["t"], host="0.0.0.0"))
    check_settings(settings_for("http://x", tokens=["t"], host="127.0.0.1"))
    check_settings(settings_for("http://x", tokens=["t"], host="0.0.0.0", api_keys=["k"]))
    check_settings(settings_for("http://x", host="0.0.0.0"))


@pytest.mark.parametrize(
    ("payload", "param"),
    [
        ({"model": "qwen"}, "messages"),
        ({"messages": [{"role": "user", "content": "x"}]}, "model"),
        ({"model": "qwen", "messages": []}, "messages"),
        ({"model": "qwen", "messages": [{"role": "robot", "content": "x"}]}, "messages.0.role"),
        (
            {"model": "qwen", "messages": [{"role": "user", "content": [{"type": "audio"}]}]},
            "messages.0.content.0",
        ),
    ],
)
async def test_bad_requests_name_the_field(
    client: httpx.AsyncClient, payload: dict[str, Any], param: str
) -> None:
    response = await chat(client, "cn", payload)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["param"] == param and error["type"] == "invalid_request_error"


async def test_invalid_json_is_a_400(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/v1/chat/completions",
        content=b"{not json",
        headers={"authorization": f"Bearer {CREDENTIALS['cn']}"},
    )
    assert response.status_code == 400


async def test_oversized_body_is_a_413(make_server: Any) -> None:
    url = make_server(max_body_bytes=1000)
    async with httpx.AsyncClient(base_url=url) as client:
        response = await chat(client, "cn", body("x" * 5000))
    assert response.status_code == 413
    assert response.json()["error"]["type"] == "invalid_request_error"


async def test_unknown_path_is_a_json_404(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/nothing-here")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == 404


async def test_one_model_is_retrieved_by_id(client: httpx.AsyncClient) -> None:
    headers = {"authorization": f"Bearer {CREDENTIALS['intl']}"}
    found = await client.get("/v1/models/qwen3.7-plus", headers=headers)
    assert found.status_code == 200 and found.json()["id"] == "qwen3.7-plus"
    assert found.json()["object"] == "model"
    missing = await client.get("/v1/models/no-such-model", headers=headers)
    assert missing.status_code == 404
    assert missing.json()["error"]["type"] == "invalid_request_error"
