"""The welcome page and `/status`: over HTTP, and in real headless Chromium."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.async_api import Browser, BrowserContext, Page, async_playwright, expect

from qwen_free_api import __version__

from support import CN_TICKET, INTL_JWT

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
ADMIN = "admin-key-for-pages"
no_chromium = pytest.mark.skipif(
    not Path(CHROMIUM).exists(),
    reason=f"{CHROMIUM} is missing (scripts/check installs Debian's chromium)",
)


def pool_server(make_server: Any) -> str:
    return str(make_server(tokens=[CN_TICKET, INTL_JWT], api_keys=["k"], admin_key=ADMIN))


async def switch(http: httpx.AsyncClient, dialect: str, action: str) -> None:
    """Disable or enable the pool's account of one backend through the admin API."""
    admin = {"authorization": f"Bearer {ADMIN}"}
    listed = (await http.get("/v1/accounts", headers=admin)).json()["data"]
    [ident] = [view["id"] for view in listed if view["dialect"] == dialect]
    answer = await http.post(f"/v1/accounts/{ident}/{action}", headers=admin)
    assert answer.status_code == 200, answer.text


# --- HTTP ----------------------------------------------------------------------------------------


async def test_get_and_head_answer_the_page(client: httpx.AsyncClient, server: str) -> None:
    page = await client.get("/")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert f"v{__version__}" in page.text
    for snippet in (
        f"curl {server}/v1/chat/completions",
        f'OpenAI(base_url="{server}/v1"',
        f"export ANTHROPIC_BASE_URL={server}\n",
        f"export GOOGLE_GEMINI_BASE_URL={server}\n",
        f'base_url = "{server}/v1"',
        'wire_api = "responses"',
    ):
        assert snippet in page.text, snippet
    assert "http" not in page.headers["content-security-policy"]
    head = await client.head("/")
    assert head.status_code == 200
    assert head.headers["content-type"].startswith("text/html")
    assert head.content == b""


async def test_snippets_follow_the_host_the_client_used(client: httpx.AsyncClient) -> None:
    page = await client.get("/", headers={"host": "qfa.example.org:9000"})
    assert "curl http://qfa.example.org:9000/v1/chat/completions" in page.text
    v6 = await client.get("/", headers={"host": "[::1]:8000"})
    assert 'base_url="http://[::1]:8000/v1"' in v6.text


@pytest.mark.parametrize(
    "host",
    [
        'evil.example"><script>alert(1)</script>',
        "evil.example/<img src=x onerror=alert(1)>",
        "evil.example:80' onmouseover='alert(1)",
        "a&b.example",
    ],
)
async def test_a_hostile_host_header_is_neutralised(
    client: httpx.AsyncClient, server: str, host: str
) -> None:
    page = await client.get("/", headers={"host": host})
    assert page.status_code == 200
    assert "alert(1)" not in page.text
    assert "a&b" not in page.text
    assert f"curl {server}/v1/chat/completions" in page.text


async def test_status_counts_the_pool_and_hides_every_credential(make_server: Any) -> None:
    async with httpx.AsyncClient(base_url=pool_server(make_server), timeout=30) as http:
        await switch(http, "cn", "disable")
        answer = await http.get("/status")
        page = await http.get("/")
    assert answer.status_code == 200
    status = answer.json()
    assert status["version"] == __version__
    assert status["mode"] == "pool"
    assert status["accounts"] == {"live": 1, "cooling": 0, "disabled": 1, "paused": 0, "expired": 0}
    assert status["backends"]["cn"]["disabled"] == 1
    assert status["backends"]["intl"]["live"] == 1
    assert '<b data-count="live">1</b>' in page.text
    assert '<b data-count="disabled">1</b>' in page.text
    assert '<body data-mode="pool">' in page.text
    for secret in (CN_TICKET, INTL_JWT, CN_TICKET[:12], INTL_JWT.split(".")[1][:12]):
        assert secret not in answer.text
        assert secret not in page.text


async def test_status_in_seed_mode_has_no_accounts(client: httpx.AsyncClient) -> None:
    status = (await client.get("/status")).json()
    assert status["mode"] == "seed"
    assert set(status["accounts"].values()) == {0}


# --- Chromium ------------------------------------------------------------------------------------


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield launched
        await launched.close()


async def watched(context: BrowserContext) -> tuple[Page, list[str]]:
    """A new page whose console errors and warnings, failed requests and 4xx/5xx are recorded."""
    page = await context.new_page()
    problems: list[str] = []
    page.on(
        "console",
        lambda m: (
            problems.append(f"console {m.type}: {m.text}")
            if m.type in ("error", "warning")
            else None
        ),
    )
    page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
    page.on("requestfailed", lambda r: problems.append(f"failed: {r.url} {r.failure}"))
    page.on(
        "response",
        lambda r: problems.append(f"{r.status}: {r.url}") if r.status >= 400 else None,
    )
    return page, problems


@no_chromium
async def test_the_page_renders_cleanly_and_remembers_the_language(
    browser: Browser, make_server: Any
) -> None:
    url = pool_server(make_server)
    async with httpx.AsyncClient(base_url=url, timeout=30) as http:
        await switch(http, "cn", "disable")
    context = await browser.new_context(locale="en-US", viewport={"width": 1000, "height": 800})
    page, problems = await watched(context)
    await page.goto(url + "/")
    english, chinese = page.locator("h2 .en").first, page.locator("h2 .zh").first
    await expect(english).to_have_text("Health")
    await expect(english).to_be_visible()
    await expect(chinese).to_be_hidden()
    await expect(page.locator("#updated")).not_to_have_class("meta stale")
    await page.wait_for_function("document.documentElement.dataset.refreshed")
    await page.screenshot(path=ROOT / "docs" / "welcome-en.png", full_page=True)
    await page.click("#lang")
    await expect(chinese).to_have_text("健康状况")
    await expect(chinese).to_be_visible()
    await expect(english).to_be_hidden()
    await page.reload()
    await expect(chinese).to_be_visible()
    await expect(english).to_be_hidden()
    assert await page.evaluate("document.documentElement.lang") == "zh-CN"
    await page.wait_for_function("document.documentElement.dataset.refreshed")
    await page.screenshot(path=ROOT / "docs" / "welcome-zh.png", full_page=True)
    await context.close()
    assert problems == []


@no_chromium
async def test_the_language_defaults_to_the_browsers(browser: Browser, server: str) -> None:
    context = await browser.new_context(locale="zh-CN")
    page, problems = await watched(context)
    await page.goto(server + "/")
    await expect(page.locator("#lang .en")).to_be_hidden()
    await expect(page.locator("h2 .zh").first).to_be_visible()
    await context.close()
    assert problems == []


@no_chromium
async def test_a_copy_button_copies_the_snippet(browser: Browser, server: str) -> None:
    context = await browser.new_context(locale="en-US")
    await context.grant_permissions(["clipboard-read", "clipboard-write"], origin=server)
    page, problems = await watched(context)
    await page.goto(server + "/")
    button = page.locator('button[data-copy="s-curl"]')
    await button.click()
    await expect(button).to_have_attribute("data-state", "copied")
    copied = await page.evaluate("navigator.clipboard.readText()")
    assert copied == await page.locator("#s-curl").text_content()
    assert copied.startswith(f"curl {server}/v1/chat/completions \\\n")
    assert "&quot;" not in copied and '"content":"你好"' in copied
    await context.close()
    assert problems == []


async def shown_counts(page: Page) -> dict[str, int]:
    cells = page.locator("[data-count]")
    texts = await cells.evaluate_all(
        "cells => cells.map(cell => [cell.dataset.count, cell.textContent])"
    )
    return {state: int(text) for state, text in texts}


@no_chromium
async def test_the_health_figures_follow_the_server(browser: Browser, make_server: Any) -> None:
    url = pool_server(make_server)
    context = await browser.new_context(locale="en-US")
    page, problems = await watched(context)
    async with httpx.AsyncClient(base_url=url, timeout=30) as http:
        await switch(http, "intl", "disable")
        await page.goto(url + "/")
        await page.wait_for_function("document.documentElement.dataset.refreshed")
        expected = (await http.get("/status")).json()["accounts"]
        assert await shown_counts(page) == {**expected, "total": 2}
        assert expected["disabled"] == 1
        await switch(http, "intl", "enable")
        await page.click("#refresh")
        await expect(page.locator("[data-count=disabled]")).to_have_text("0")
        await expect(page.locator("[data-count=live]")).to_have_text("2")
        assert await shown_counts(page) == {
            **(await http.get("/status")).json()["accounts"],
            "total": 2,
        }
    assert json.loads(await page.evaluate("JSON.stringify(navigator.languages)"))[0] == "en-US"
    await context.close()
    assert problems == []


@no_chromium
async def test_without_clipboard_api_the_copy_falls_back(browser: Browser, server: str) -> None:
    context = await browser.new_context(locale="en-US")
    await context.add_init_script(
        "Object.defineProperty(Navigator.prototype, 'clipboard', {get: () => undefined});"
        "document.addEventListener('copy', e => { const t = e.target;"
        " window.copiedText = t.value.slice(t.selectionStart, t.selectionEnd); });"
    )
    page, problems = await watched(context)
    await page.goto(server + "/")
    button = page.locator('button[data-copy="s-python"]')
    await button.click()
    await expect(button).to_have_attribute("data-state", "copied")
    copied = await page.evaluate("window.copiedText")
    assert copied == await page.locator("#s-python").text_content()
    assert f'OpenAI(base_url="{server}/v1"' in copied
    assert await page.locator("textarea").count() == 0
    await context.close()
    assert problems == []


@no_chromium
async def test_without_javascript_the_page_still_shows_the_figures(
    browser: Browser, make_server: Any
) -> None:
    url = pool_server(make_server)
    async with httpx.AsyncClient(base_url=url, timeout=30) as http:
        await switch(http, "cn", "disable")
    context = await browser.new_context(java_script_enabled=False)
    page, problems = await watched(context)
    await page.goto(url + "/")
    await expect(page.locator("h2 .en").first).to_be_visible()
    assert await shown_counts(page) == {
        "live": 1,
        "cooling": 0,
        "disabled": 1,
        "paused": 0,
        "expired": 0,
        "total": 2,
    }
    await expect(page.locator("#s-curl")).to_contain_text(f"curl {url}/v1/chat/completions")
    await context.close()
    assert problems == []
