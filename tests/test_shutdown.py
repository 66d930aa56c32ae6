"""SIGTERM stops the server gracefully: running answers may finish within the grace period; past
it they end with an error event and [DONE], never a silently cut stream."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from collections.abc import Iterator

import httpx
import pytest

from qwen_free_api.testing import FakeUpstream, Script

from support import CREDENTIALS, SERVE, body, free_port, wait_for_ping

STOPPED = (0, -signal.SIGTERM)  # uvicorn re-raises the signal once it has shut down


@pytest.fixture
def server_process(
    fake_server: tuple[FakeUpstream, str], tmp_path: os.PathLike[str]
) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    _, fake_url = fake_server
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("QFA_")}
    env.update(
        QFA_STORE=f"sqlite:///{tmp_path}/state.db",
        QFA_SHUTDOWN_TIMEOUT="1",
        QFA_INTL_BASE_URL=fake_url,
        QFA_LOG_LEVEL="warning",
    )
    process = subprocess.Popen([*SERVE, "--port", str(port)], env=env, cwd="/")
    url = f"http://127.0.0.1:{port}"
    wait_for_ping(process, url)
    try:
        yield process, url
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=20)


async def _stream_until_held(client: httpx.AsyncClient) -> tuple[httpx.Response, list[str]]:
    headers = {"authorization": f"Bearer {CREDENTIALS['intl']}"}
    request = client.build_request("POST", "/v1/chat/completions", json=body("x"), headers=headers)
    response = await client.send(request, stream=True)
    seen: list[str] = []
    lines = response.aiter_lines()
    async for line in lines:
        seen.append(line)
        if '"content":"' in line and '"content":""' not in line:
            break
    async for line in lines:
        seen.append(line)
    return response, seen


async def test_answers_past_the_grace_period_end_with_an_error_and_done(
    server_process: tuple[subprocess.Popen[bytes], str], fake: FakeUpstream
) -> None:
    process, url = server_process
    fake.enqueue("intl", Script(answer="a long answer", hold_after=1))
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        headers = {"authorization": f"Bearer {CREDENTIALS['intl']}"}
        async with client.stream(
            "POST", "/v1/chat/completions", json=body("x"), headers=headers
        ) as response:
            lines = response.aiter_lines()
            seen: list[str] = []
            async for line in lines:
                seen.append(line)
                if '"content":"a l' in line:
                    process.send_signal(signal.SIGTERM)
                    break
            async for line in lines:
                seen.append(line)
    events = [line[6:] for line in seen if line.startswith("data: ")]
    assert events[-1] == "[DONE]"
    error = json.loads(events[-2])["error"]
    assert error["type"] == "service_unavailable" and error["code"] == "shutting_down"
    assert '"content":"a l' in events[-3]  # the answer so far, then the error
    assert process.wait(timeout=20) in STOPPED


async def test_answers_within_the_grace_period_finish(
    server_process: tuple[subprocess.Popen[bytes], str], fake: FakeUpstream
) -> None:
    process, url = server_process
    fake.enqueue("intl", Script(answer="finishes in time", hold_after=1))
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        headers = {"authorization": f"Bearer {CREDENTIALS['intl']}"}
        async with client.stream(
            "POST", "/v1/chat/completions", json=body("x"), headers=headers
        ) as response:
            content: list[str] = []
            async for line in response.aiter_lines():
                if '"content":"fin' in line:
                    process.send_signal(signal.SIGTERM)
                    await fake.wait_for(lambda: fake.held_streams == 1)
                    fake.release()
                content.append(line)
    text = "\n".join(content)
    assert "error" not in text and '"finish_reason":"stop"' in text
    assert content[-2] == "data: [DONE]"
    assert process.wait(timeout=20) in STOPPED
