"""End to end: the real Claude Code, gemini-cli and Codex CLIs against the server, offline.

The CLIs come from e2e/package.json (exact versions, hashed lock; scripts/check runs `npm ci`).
Each one runs in a private network namespace that has only loopback (`unshare -n`, or `unshare
-rn` without root), where e2e/netns_run.py serves the test server's port through a Unix socket,
and under `strace -e trace=connect`: the test fails on any attempt to reach anything but that
port. Every CLI gets a throwaway HOME and only the environment written here. Each answers a
plain prompt, then completes one tool round trip (the fake upstream scripts a tool call, the CLI
runs the tool, its output comes back in the next upstream prompt, the final text is printed).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from qwen_free_api.testing import FakeUpstream, Script

from support import CREDENTIALS

E2E = Path(__file__).resolve().parents[1] / "e2e"
BIN = E2E / "node_modules" / ".bin"
RUNNER = E2E / "netns_run.py"
TIMEOUT = 180.0
STRACE = ("strace", "-f", "-qq", "--seccomp-bpf", "-e", "trace=connect", "-e", "signal=none")
KEY = CREDENTIALS["intl"]

pytestmark = pytest.mark.skipif(
    shutil.which("node") is None, reason="node is not installed: the agent CLIs need it"
)

ECHO = "echo e2e-$((6 * 7))"
"""Prints e2e-42, which only running it can produce."""
TOOL_CALL = "[function_calls]\n[call:{name}]{arguments}[/call]\n[/function_calls]"


@dataclass
class Run:
    rc: int
    stdout: str
    stderr: str
    outside: list[str]
    """connect() calls to anything but the server's loopback port (one strace line each)."""
    reached: int
    """connect() calls to the server's port: proves strace saw the CLI's connections."""

    def explain(self) -> str:
        return f"rc={self.rc}\n--- stdout\n{self.stdout[-3000:]}\n--- stderr\n{self.stderr[-3000:]}"


# --- isolation: a network namespace if this machine allows one, and strace ------------------


@cache
def namespace_command() -> tuple[str, ...]:
    """`unshare -n` as root, else `unshare -rn`; () when neither works here (or QFA_E2E_NETNS=0:
    then only strace guards the run, and an attempt to go out would really leave)."""
    if shutil.which("unshare") is None or os.environ.get("QFA_E2E_NETNS") == "0":
        return ()
    candidates = [("unshare", "-n")] if os.geteuid() == 0 else []
    candidates.append(("unshare", "-rn"))
    for command in candidates:
        probe = subprocess.run([*command, "true"], capture_output=True, check=False)
        if probe.returncode == 0:
            return command
    return ()


def connections(log: Path, port: int) -> tuple[list[str], int]:
    """From an strace log: connect() calls to anywhere but Unix sockets or 127.0.0.1:`port`
    (including DNS, even to a loopback resolver), and the number of those to the server."""
    server = re.compile(rf'sin_port=htons\({port}\), sin_addr=inet_addr\("127\.0\.0\.1"\)')
    local = re.compile(r"sa_family=AF_(UNIX|NETLINK)")
    lines = [line for line in log.read_text().splitlines() if "connect(" in line]
    outside = [line for line in lines if not (server.search(line) or local.search(line))]
    return outside, sum(1 for line in lines if server.search(line))


class Bridge:
    """A Unix socket in the outer namespace forwarding every connection to 127.0.0.1:`port`."""

    def __init__(self, port: int) -> None:
        self.dir = tempfile.mkdtemp(prefix="qfa-e2e-")
        self.path = os.path.join(self.dir, "server.sock")
        self.port = port
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.listener.bind(self.path)
        self.listener.listen()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            try:
                server = socket.create_connection(("127.0.0.1", self.port))
            except OSError:
                conn.close()
                continue
            threading.Thread(target=_splice, args=(conn, server), daemon=True).start()

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.listener.shutdown(socket.SHUT_RDWR)
        self.listener.close()
        self.thread.join()
        shutil.rmtree(self.dir, ignore_errors=True)


def _pump(source: socket.socket, target: socket.socket) -> None:
    try:
        while data := source.recv(65536):
            target.sendall(data)
    except OSError:
        pass
    finally:
        with contextlib.suppress(OSError):
            target.shutdown(socket.SHUT_WR)


def _splice(first: socket.socket, second: socket.socket) -> None:
    back = threading.Thread(target=_pump, args=(second, first), daemon=True)
    back.start()
    _pump(first, second)
    back.join()
    first.close()
    second.close()


def run_agent(argv: list[str], env: dict[str, str], server: str, work: Path) -> Run:
    """Run one CLI offline (namespace + strace where possible) and collect what it did."""
    port = urlsplit(server).port
    assert port is not None
    log = work.parent / "strace.log"
    namespace = namespace_command()
    bridge = Bridge(port) if namespace else None
    if bridge is not None:
        runner = [sys.executable, str(RUNNER), "--bridge", bridge.path, "--port", str(port)]
        command = [*namespace, *runner, "--strace", str(log), "--", *argv]
    else:
        command = [*STRACE, "-o", str(log), *argv]
    try:
        rc, out, err = _run(command, env, work)
    finally:
        if bridge is not None:
            bridge.close()
    outside, reached = connections(log, port)
    return Run(rc, out, err, outside, reached)


def _run(command: list[str], env: dict[str, str], cwd: Path) -> tuple[int, str, str]:
    with subprocess.Popen(
        command,
        env=env,
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    ) as process:
        try:
            out, err = process.communicate(timeout=TIMEOUT)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            out, err = process.communicate()
            return -1, out, f"{err}\n[killed after {TIMEOUT} s]"
        return process.returncode, out, err


# --- fixtures ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def installed() -> Path:
    """The pinned CLIs, installed by `npm ci` in e2e/ (scripts/check does it)."""
    missing = [name for name in ("claude", "gemini", "codex") if not (BIN / name).exists()]
    assert not missing, f"{missing} not installed: run `npm ci` in {E2E} (scripts/check does)"
    assert shutil.which("strace"), "strace is needed to see every connection attempt"
    return BIN


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """A throwaway HOME (and TMPDIR in it); the CLIs' working directory is `home / "work"`."""
    (tmp_path / "work").mkdir()
    (tmp_path / "tmp").mkdir()
    (tmp_path / "work" / "notes.txt").write_text("e2e-file-marker\n")
    return tmp_path


def base_env(home: Path, bin_dir: Path) -> dict[str, str]:
    node_dir = os.path.dirname(shutil.which("node") or "/usr/bin/node")
    path = os.pathsep.join([str(bin_dir), node_dir, "/usr/local/bin", "/usr/bin", "/bin"])
    return {
        "PATH": path,
        "HOME": str(home),
        "TMPDIR": str(home / "tmp"),
        "LANG": "C.UTF-8",
        "TERM": "dumb",
        "NO_COLOR": "1",
        "CI": "1",
    }


# --- Claude Code --------------------------------------------------------------------------------


def claude(installed: Path, home: Path, server: str, *args: str) -> Run:
    env = {
        **base_env(home, installed),
        "ANTHROPIC_BASE_URL": server,
        "ANTHROPIC_API_KEY": KEY,
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
        "CLAUDE_CODE_MAX_RETRIES": "0",
    }
    return run_agent([str(installed / "claude"), "-p", *args], env, server, home / "work")


def test_claude_code_plain_prompt(
    installed: Path, home: Path, server: str, fake: FakeUpstream
) -> None:
    fake.enqueue("intl", Script(answer="pong-42"))
    run = claude(installed, home, server, "Reply with pong-42.")
    assert_answered(run, "pong-42")
    assert "Reply with pong-42." in upstream_prompt(fake, -1)


def test_claude_code_tool_round_trip(
    installed: Path, home: Path, server: str, fake: FakeUpstream
) -> None:
    call = TOOL_CALL.format(name="Bash", arguments=json.dumps({"command": ECHO}))
    fake.enqueue("intl", Script(answer=call))
    fake.enqueue("intl", Script(answer="The command printed the marker: done-7."))
    run = claude(installed, home, server, "Run the echo.", "--allowedTools", "Bash")
    assert_answered(run, "done-7")
    assert_tool_result(fake, "e2e-42")


# --- gemini-cli ---------------------------------------------------------------------------------

GEMINI_SETTINGS = {
    "security": {"auth": {"selectedType": "gemini-api-key"}},
    "privacy": {"usageStatisticsEnabled": False},
    "telemetry": {"enabled": False},
    "general": {"enableAutoUpdate": False, "enableAutoUpdateNotification": False, "maxAttempts": 1},
}


def gemini(installed: Path, home: Path, server: str, *args: str) -> Run:
    (home / ".gemini").mkdir(exist_ok=True)
    (home / ".gemini" / "settings.json").write_text(json.dumps(GEMINI_SETTINGS))
    env = {
        **base_env(home, installed),
        "GOOGLE_GEMINI_BASE_URL": server,
        "GEMINI_API_KEY": KEY,
        "GEMINI_CLI_TRUST_WORKSPACE": "true",
    }
    argv = [str(installed / "gemini"), *args]
    return run_agent(argv, env, server, home / "work")


def test_gemini_cli_plain_prompt(
    installed: Path, home: Path, server: str, fake: FakeUpstream
) -> None:
    """The default `auto` model: a JSON-mode router call picks the model, then the answer."""
    route = {"complexity_reasoning": "a one-line reply", "complexity_score": 5}
    fake.enqueue("intl", Script(answer=json.dumps(route)))
    fake.enqueue("intl", Script(answer="pong-42"))
    run = gemini(installed, home, server, "-p", "Reply with pong-42.")
    assert_answered(run, "pong-42")
    assert "complexity" not in run.stdout
    assert len(fake.chat_requests("intl")) == 2
    assert "Reply with pong-42." in upstream_prompt(fake, -1)


def test_gemini_cli_tool_round_trip(
    installed: Path, home: Path, server: str, fake: FakeUpstream
) -> None:
    call = TOOL_CALL.format(name="read_file", arguments=json.dumps({"file_path": "notes.txt"}))
    fake.enqueue("intl", Script(answer=call))
    fake.enqueue("intl", Script(answer="The file holds the marker: done-7."))
    run = gemini(
        installed, home, server, "-m", "gemini-2.5-flash", "--yolo", "-p", "Read notes.txt."
    )
    assert_answered(run, "done-7")
    assert_tool_result(fake, "e2e-file-marker")


# --- Codex --------------------------------------------------------------------------------------


def codex(installed: Path, home: Path, server: str, *args: str) -> Run:
    codex_home = home / ".codex"
    codex_home.mkdir(exist_ok=True)
    (codex_home / "config.toml").write_text(
        f"""model = "gpt-5-codex"
model_provider = "qfa"
check_for_update_on_startup = false
[analytics]
enabled = false
[otel]
metrics_exporter = "none"
exporter = "none"
[features]
plugins = false
remote_plugin = false
apps = false
[model_providers.qfa]
name = "qwen-free-api"
base_url = "{server}/v1"
env_key = "QFA_KEY"
wire_api = "responses"
request_max_retries = 0
stream_max_retries = 0
"""
    )
    env = {**base_env(home, installed), "CODEX_HOME": str(codex_home), "QFA_KEY": KEY}
    argv = [str(installed / "codex"), "exec", "--skip-git-repo-check", *args]
    return run_agent(argv, env, server, home / "work")


def test_codex_plain_prompt(installed: Path, home: Path, server: str, fake: FakeUpstream) -> None:
    fake.enqueue("intl", Script(answer="pong-42"))
    run = codex(installed, home, server, "Reply with pong-42.")
    assert_answered(run, "pong-42")
    assert "Reply with pong-42." in upstream_prompt(fake, -1)


def test_codex_tool_round_trip(
    installed: Path, home: Path, server: str, fake: FakeUpstream
) -> None:
    call = TOOL_CALL.format(name="exec_command", arguments=json.dumps({"cmd": ECHO}))
    fake.enqueue("intl", Script(answer=call))
    fake.enqueue("intl", Script(answer="The command printed the marker: done-7."))
    run = codex(installed, home, server, "Run the echo.")
    assert_answered(run, "done-7")
    assert_tool_result(fake, "e2e-42")


# --- what reached the upstream ------------------------------------------------------------------


def upstream_prompt(fake: FakeUpstream, index: int) -> str:
    requests = fake.chat_requests("intl")
    assert requests, "nothing reached the upstream"
    prompt: str = requests[index].json()["messages"][0]["content"]
    return prompt


def assert_answered(run: Run, text: str) -> None:
    """rc 0, `text` printed, the server reached, and no other connection attempted."""
    assert run.rc == 0, run.explain()
    assert text in run.stdout, run.explain()
    assert run.reached > 0, "strace saw no connection to the server"
    assert run.outside == [], "\n".join(run.outside)


def assert_tool_result(fake: FakeUpstream, output: str) -> None:
    """The second upstream prompt carries the tool's result, with the tool's real output."""
    assert len(fake.chat_requests("intl")) >= 2, "the CLI never sent the tool result back"
    prompt = upstream_prompt(fake, -1)
    assert "[TOOL_RESULT for " in prompt, prompt[-2000:]
    assert output in prompt.split("[TOOL_RESULT for ", 1)[1], prompt[-2000:]
