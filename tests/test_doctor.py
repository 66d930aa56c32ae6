"""`qwen-free-api doctor` against the fake upstream over loopback: healthy, each capability
broken in turn, and a `--record` run whose recording holds no secret and replays to the same
report."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import urllib.parse
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Literal

import pytest
from click.testing import CliRunner

from qwen_free_api.cli import main
from qwen_free_api.doctor_checks import NAMES
from qwen_free_api.doctor_scrub import Scrubber
from qwen_free_api.testing import FAKE_EMAIL, FakeUpstream, Script, ServerThread, make_token
from qwen_free_api.testing.replay import ReplayUpstream

from support import CN_TICKET, INTL_JWT, fake_hosts_env

SECRET_HEADERS = (
    "authorization",
    "cookie",
    "x-oss-security-token",
    "x-device-id",
    "eo-clt-dvidn",
    "eo-clt-actkn",
    "eo-clt-sacsft",
    "clt-acs-sign",
    "clt-acs-bfg",
)
JWT = re.compile(r"eyJ[\w-]{4,}\.eyJ[\w-]{4,}\.")
SECRET_QUERY = ("ut", "auth_key", "key", "Signature", "OSSAccessKeyId", "security-token")


def doctor_env(url: str) -> dict[str, str]:
    """QFA_* settings pointing every upstream host at `url` (and nothing configured else)."""
    env = fake_hosts_env(url)
    env |= {"QFA_IMAGE_POLL_INTERVAL": "0", "QFA_READ_TIMEOUT": "10", "QFA_TOKENS": ""}
    return env


def run_doctor(url: str, cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """The real command, as a user runs it, in a directory without a .env file."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("QFA_")} | doctor_env(url)
    return subprocess.run(
        [sys.executable, "-m", "qwen_free_api", "doctor", *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


def rows(report: dict[str, Any], index: int = 0) -> dict[str, dict[str, Any]]:
    return {check["name"]: check for check in report["credentials"][index]["checks"]}


@pytest.fixture
def doctor_cli(
    fake_server: tuple[FakeUpstream, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Callable[..., tuple[int, dict[str, Any]]]:
    """The doctor command run in-process through click (the upstream is still the fake on a
    loopback socket); returns (exit status, the --json report)."""
    _, url = fake_server
    monkeypatch.chdir(tmp_path)

    def invoke(*tokens: str) -> tuple[int, dict[str, Any]]:
        args = ["doctor", "--json", *(f"--token={token}" for token in tokens)]
        result = CliRunner().invoke(main, args, env=doctor_env(url))
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            raise result.exception
        return result.exit_code, json.loads(result.stdout)

    return invoke


def test_healthy_cn_and_intl_all_ok(
    fake: FakeUpstream, fake_server: tuple[FakeUpstream, str], tmp_path: Path
) -> None:
    result = run_doctor(fake_server[1], tmp_path, "--json", "--token", f"{CN_TICKET},{INTL_JWT}")
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(result.stdout)
    assert report["ok"] is True
    assert [c["backend"] for c in report["credentials"]] == ["cn", "intl"]
    for index in (0, 1):
        found = rows(report, index)
        assert list(found) == list(NAMES)
        assert {name: row["state"] for name, row in found.items()} == dict.fromkeys(NAMES, "ok")
        assert found["thinking"]["detail"].split()[0] != "0"
        assert found["image"]["detail"].startswith("1 image")
    for secret in (CN_TICKET, INTL_JWT):
        assert secret not in result.stdout + result.stderr
    # Every chat the doctor opened upstream is gone again.
    for dialect in ("cn", "intl"):
        assert fake.sessions_created[dialect]
        assert set(fake.sessions_created[dialect]) <= set(fake.sessions_deleted[dialect])


def test_table_output_and_exit_status(
    fake: FakeUpstream, fake_server: tuple[FakeUpstream, str], tmp_path: Path
) -> None:
    fake.script_for_prompt("chat check:", Script(error="http_500"))
    result = run_doctor(fake_server[1], tmp_path, "--token", CN_TICKET, "--skip", "image")
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    assert lines[0].startswith("cn:tk-g…") and CN_TICKET not in result.stdout
    chat = next(line for line in lines if line.split()[:2] == ["chat", "broken"])
    assert "HTTP 500" in chat
    said = lines[lines.index(chat) + 1]
    assert "upstream said: POST /api/v2/chat → HTTP 500" in said
    assert any(line.split()[:2] == ["image", "skipped"] for line in lines)
    assert lines[-1] == "1 check(s) broken"


Setup = Callable[[FakeUpstream, Literal["cn", "intl"]], None]


def by_prompt(check: str, script: Script) -> Setup:
    return lambda fake, dialect: fake.script_for_prompt(f"{check} check:", script, (dialect,))


def switch(**values: Any) -> Setup:
    def apply(fake: FakeUpstream, dialect: Literal["cn", "intl"]) -> None:
        for name, value in values.items():
            target = fake.media if hasattr(fake.media, name) else fake
            setattr(target, name, value)

    return apply


# (check, dialect, how the fake breaks it, what the raw upstream answer must show)
BROKEN: list[tuple[str, Literal["cn", "intl"], Setup, str]] = [
    ("chat", "cn", by_prompt("chat", Script(error="http_500")), "HTTP 500"),
    ("chat", "intl", by_prompt("chat", Script(error="http_502")), "HTTP 502"),
    ("stream", "cn", by_prompt("stream", Script(close_early=True)), "HTTP 200: event:"),
    ("stream", "intl", by_prompt("stream", Script(close_early=True)), "HTTP 200: data:"),
    ("thinking", "cn", by_prompt("thinking", Script(reasoning="")), "HTTP 200"),
    ("thinking", "intl", by_prompt("thinking", Script(reasoning="")), "HTTP 200"),
    ("search", "cn", by_prompt("search", Script(error="waf_html")), "rgv587_flag"),
    ("search", "intl", by_prompt("search", Script(error="too_many_requests")), "Too_Many_Requests"),
    ("upload", "cn", switch(oss_token_ttl=-1.0), "PUT /qwen_pc/"),
    ("upload", "intl", switch(sts_forbidden=True), "HTTP 403"),
    ("image", "cn", by_prompt("image", Script(image_refused=True)), "/api/v1/chat/snap"),
    ("image", "intl", by_prompt("image", Script(image_refused=True)), "/api/v2/chat/completions"),
    ("cleanup", "cn", switch(refuse_deletes=True), "HTTP 500"),
    ("cleanup", "intl", switch(refuse_deletes=True), "HTTP 500"),
]


@pytest.mark.parametrize(
    ("check", "dialect", "setup", "shown"),
    BROKEN,
    ids=[f"{check}-{dialect}" for check, dialect, _, _ in BROKEN],
)
def test_each_capability_broken_alone(
    fake: FakeUpstream,
    doctor_cli: Callable[..., tuple[int, dict[str, Any]]],
    check: str,
    dialect: Literal["cn", "intl"],
    setup: Setup,
    shown: str,
) -> None:
    setup(fake, dialect)
    status, report = doctor_cli(CN_TICKET if dialect == "cn" else INTL_JWT)
    assert status == 1
    assert report["ok"] is False
    found = rows(report)
    assert found[check]["state"] == "broken", found[check]
    assert shown in found[check]["raw"], found[check]
    others = {name: row["state"] for name, row in found.items() if name != check}
    assert others == {name: "ok" for name in NAMES if name != check}


@pytest.mark.parametrize(
    ("token", "shown"),
    [
        ("bad-ticket-0123456789abcdef", "NOT_LOGIN"),
        (make_token(scenario="revoked"), "HTTP 401"),
    ],
    ids=["cn", "intl"],
)
def test_rejected_credential(
    fake: FakeUpstream,
    doctor_cli: Callable[..., tuple[int, dict[str, Any]]],
    token: str,
    shown: str,
) -> None:
    status, report = doctor_cli(token)
    assert status == 1
    found = rows(report)
    assert found["credential"]["state"] == "broken"
    assert shown in found["credential"]["raw"]
    # The other checks still ran (and fail the same way) and the cleanup had nothing to do.
    assert all(found[name]["state"] == "broken" for name in NAMES[1:-1])
    assert found["cleanup"]["state"] == "skipped"
    assert token not in json.dumps(report)


def test_expired_jwt_is_named_without_calling_upstream(
    fake: FakeUpstream, doctor_cli: Callable[..., tuple[int, dict[str, Any]]]
) -> None:
    _, report = doctor_cli(make_token(expires_in=-60))
    found = rows(report)["credential"]
    assert found["state"] == "broken"
    assert "expired" in found["detail"]
    assert not [r for r in fake.requests if r.path == "/api/v2/user"]


def test_no_credential_is_a_usage_error(tmp_path: Path) -> None:
    result = run_doctor("http://127.0.0.1:9", tmp_path)
    assert result.returncode == 2
    assert "no credential" in result.stderr


def test_credentials_come_from_the_tokens_file_too(
    fake: FakeUpstream, fake_server: tuple[FakeUpstream, str], tmp_path: Path
) -> None:
    """Without --token the doctor checks what the server's pool would use: QFA_TOKENS and the
    lines of QFA_TOKENS_FILE (comments and blank lines skipped)."""
    _, url = fake_server
    tokens = tmp_path / "tokens.txt"
    tokens.write_text(f"# my accounts\n\n{INTL_JWT}\n", encoding="utf-8")
    env = doctor_env(url) | {"QFA_TOKENS": CN_TICKET, "QFA_TOKENS_FILE": str(tokens)}
    result = CliRunner().invoke(main, ["doctor", "--json", "--skip", "image"], env=env)
    report = json.loads(result.stdout)
    assert [entry["backend"] for entry in report["credentials"]] == ["cn", "intl"]
    assert result.exit_code == 0, result.stdout
    missing = CliRunner().invoke(
        main, ["doctor"], env=doctor_env(url) | {"QFA_TOKENS_FILE": str(tmp_path / "none")}
    )
    assert missing.exit_code == 2 and "cannot read QFA_TOKENS_FILE" in missing.output


def handed_out(fake: FakeUpstream) -> set[str]:
    """Every credential, cookie, signature, salt and signed-URL value the fake issued or saw."""
    found = {CN_TICKET, INTL_JWT, FAKE_EMAIL}
    with fake.locked():
        for device in fake.devices.values():
            found |= {device.dvidn, device.actkn, *device.scene_actkn.values()}
            found |= {salt for pool in device.salts.values() for salt in pool}
        for grant in fake.media.grants.values():
            found |= {grant.access_key_id, grant.secret, grant.security_token}
            found |= _query_secrets(grant.file_url)
        for slot in fake.media.cn_slots.values():
            tokens = [p["value"] for p in slot.oss_headers if "token" in p["key"].lower()]
            found |= {slot.authorization, *tokens}
        found |= {blob.query_value for blob in fake.media.blobs.values()}
        for request in fake.requests:
            found |= {request.headers[name] for name in SECRET_HEADERS if name in request.headers}
            found |= set(request.cookies.values())
            found |= {request.query[name] for name in SECRET_QUERY if name in request.query}
    return {secret for secret in found if len(secret) >= 8}


def _query_secrets(url: str) -> set[str]:
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(url).query)
    return {value for name in SECRET_QUERY for value in query.get(name, [])}


@pytest.fixture
def recorded(
    fake: FakeUpstream, fake_server: tuple[FakeUpstream, str], tmp_path: Path
) -> Iterator[tuple[Path, dict[str, Any], set[str]]]:
    directory = tmp_path / "recording"
    tokens = f"{CN_TICKET},{INTL_JWT}"
    result = run_doctor(fake_server[1], tmp_path, "--json", "--token", tokens, "--record", "rec")
    assert result.returncode == 0, result.stdout + result.stderr
    (tmp_path / "rec").rename(directory)
    yield directory, json.loads(result.stdout), handed_out(fake)


def test_recording_holds_no_secret(recorded: tuple[Path, dict[str, Any], set[str]]) -> None:
    directory, _, secrets = recorded
    files = sorted(directory.iterdir())
    assert len(files) > 20 and (directory / "doctor.json") in files
    assert len(secrets) > 50  # salts, tokens, grants, signatures: the scan has something to find
    for path in files:
        text = path.read_text(encoding="utf-8")
        for secret in secrets:
            for form in {secret, urllib.parse.quote(secret, safe=""), json.dumps(secret)[1:-1]}:
                assert form not in text, f"{path.name} holds a secret ({secret[:3]}…{len(secret)})"
        assert not JWT.search(text)  # no JWT at all, not even one the fake did not issue
        assert "@example.com" not in text
    exchanges = [json.loads(p.read_text()) for p in files if p.name != "doctor.json"]
    assert {e["method"] for e in exchanges} >= {"GET", "POST", "PUT", "DELETE"}
    chat = next(e for e in exchanges if urllib.parse.urlsplit(e["url"]).path == "/api/v2/chat")
    assert chat["request"]["headers"]["cookie"] == "<redacted>"
    assert chat["request"]["headers"]["eo-clt-snver"] == "lv"  # no secret: kept readable
    assert "".join(chat["response"]["chunks"]).startswith("event:")


def test_replaying_the_recording_gives_the_same_report(
    recorded: tuple[Path, dict[str, Any], set[str]], tmp_path: Path
) -> None:
    directory, first, _ = recorded
    replay = ReplayUpstream.from_directory(directory)
    with ServerThread(replay.app) as server:
        tokens = f"{CN_TICKET},{INTL_JWT}"
        result = run_doctor(server.url, tmp_path, "--json", "--token", tokens)
    assert result.returncode == 0, result.stdout + result.stderr
    again = json.loads(result.stdout)

    def table(report: dict[str, Any]) -> list[tuple[str, str, str, str]]:
        return [
            (c["credential"], check["name"], check["state"], check["detail"])
            for c in report["credentials"]
            for check in c["checks"]
        ]

    assert table(again) == table(first)
    assert replay.unmatched == []
    assert replay.left() == 0


def test_a_secret_split_across_chunks_is_still_replaced() -> None:
    scrubber = Scrubber(["s3cr3t-value-123"])
    chunks = scrubber.chunks([b'data:{"x":"s3cr3t-', b'value-123"}\n\n'])
    assert b"".join(chunks) == b'data:{"x":"<redacted-1>"}\n\n'
    scrubber.learn_body(b'{"data":{"security_token":"CAISabcdefgh","name":"n"}}')
    assert scrubber.text("token CAISabcdefgh") == "token <redacted-2>"
