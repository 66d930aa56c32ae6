"""Supply chain: hashed locks that agree with pyproject.toml, pip-audit where advisories can be
read, no obfuscation markers in the project's files, and a wheel whose install and import run
nothing.

Run alone with `.venv/bin/pytest tests/test_supply_chain.py -rs` (the README's "Verifying what you
install"); `-rs` shows why the audit was skipped where no advisory service answers.
"""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import sys
import sysconfig
import tomllib
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

import supply_audit
import supply_locks
import supply_scan
import supply_wheel
from qwen_free_api.testing import ServerThread

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = ROOT / "pyproject.toml"
LOCK = ROOT / "requirements.lock"
DEV_LOCK = ROOT / "requirements-dev.lock"
LOCKS = {"requirements.lock": (LOCK, ()), "requirements-dev.lock": (DEV_LOCK, ("dev",))}
VOCABULARY = ROOT / "src/qwen_free_api/data/qwen.tiktoken"

# Exceptions to the obfuscation scan: (path, rule) -> why it is fine. None are needed today;
# an entry nothing matches any more fails test_the_scan_allowlist_is_current.
SCAN_ALLOWLIST: dict[tuple[str, str], str] = {}
# The vocabulary is data (151,643 lines of `<base64 token> <rank>`), checked by hash and by line
# shape in test_the_vocabulary_is_the_published_file rather than by the code scan.
SCAN_SKIP = {VOCABULARY.relative_to(ROOT).as_posix()}
# npm packages allowed an install script, which `npm ci` runs: the agent CLIs under test need them.
NPM_INSTALL_SCRIPTS = {
    "node_modules/@anthropic-ai/claude-code": "copies the platform's native binary over bin/claude",
    "node_modules/@github/keytar": "copies its bundled prebuilt addon (node-gyp if none fits)",
    "node_modules/node-pty": "deletes build leftovers other than its prebuilt addon",
}


# --- 1. the locks agree with pyproject.toml -------------------------------------------------


@pytest.mark.parametrize("lock_name", sorted(LOCKS))
def test_the_lock_agrees_with_pyproject(lock_name: str) -> None:
    lock, extras = LOCKS[lock_name]
    assert supply_locks.check_lock(lock, PYPROJECT, extras) == []


def test_the_runtime_pins_are_the_dev_locks_pins() -> None:
    assert supply_locks.check_subset(LOCK, DEV_LOCK) == []


def _replace(old: str, new: str) -> Callable[[str], str]:
    def edit(text: str) -> str:
        assert old in text
        return text.replace(old, new, 1)

    return edit


def _pin_of(name: str) -> str:
    match = re.search(rf"^{name}==\S+", LOCK.read_text(), re.MULTILINE)
    assert match is not None
    return match.group()


ORPHAN = "leftpad==1.0 \\\n    --hash=sha256:" + "0" * 64 + "\n    # via nothing-here\n"
MUTATIONS = {
    "a new dependency": ("pyproject", _replace('"redis>=5.0",', '"redis>=5.0", "leftpad>=1",'),
                         "leftpad>=1 is in pyproject.toml but not pinned"),
    "a raised floor": ("pyproject", _replace('"starlette>=1.0"', '"starlette>=99"'),
                       "does not satisfy starlette>=99"),
    "a dropped dependency": ("pyproject", _replace('    "redis>=5.0",\n', ""),
                             "redis claims pyproject needs it; it does not"),
    "a lost marker": ("pyproject", _replace("\"httptools>=0.6; sys_platform != 'win32'\"",
                                            '"httptools>=0.6"'),
                      "httptools is pinned for `sys_platform != \"win32\"`"),
    "a hand-edited pin": ("lock", lambda text: text.replace(_pin_of("starlette"),
                                                            "starlette==0.1.0", 1),
                          "starlette==0.1.0 does not satisfy starlette>=1.0"),
    "a pin without hashes": ("lock", lambda text: re.sub(r"(\nredis==\S+) \\\n(\s+--hash=\S+ \\\n)*"
                                                         r"\s+--hash=\S+\n", r"\1\n", text),
                             "redis has no sha256 --hash"),
    "an entry nothing needs": ("lock", lambda text: text + ORPHAN,
                               "leftpad is pinned but nothing in pyproject.toml needs it"),
    "a lock not from pip-compile": ("lock", _replace("--generate-hashes ", ""),
                                    "header command"),
}  # fmt: skip


@pytest.mark.parametrize("mutation", sorted(MUTATIONS))
def test_the_lock_check_fails_on_a_disagreement(mutation: str, tmp_path: Path) -> None:
    which, edit, expected = MUTATIONS[mutation]
    pyproject, lock = tmp_path / "pyproject.toml", tmp_path / "requirements.lock"
    pyproject.write_text(PYPROJECT.read_text())
    lock.write_text(LOCK.read_text())
    assert supply_locks.check_lock(lock, pyproject, ()) == []  # the copies agree, as the originals
    target = pyproject if which == "pyproject" else lock
    target.write_text(edit(target.read_text()))
    problems = supply_locks.check_lock(lock, pyproject, ())
    assert any(expected in problem for problem in problems), problems


def test_a_changed_runtime_pin_breaks_the_subset_check(tmp_path: Path) -> None:
    lock = tmp_path / "requirements.lock"
    lock.write_text(LOCK.read_text().replace(_pin_of("click"), "click==8.1.0", 1))
    assert supply_locks.check_subset(lock, DEV_LOCK) == [
        "click: requirements.lock and requirements-dev.lock pin it differently"
    ]


@pytest.mark.parametrize("lock", ["e2e/package-lock.json", "e2e/runtime/package-lock.json"])
def test_the_npm_locks_pin_exact_versions_by_integrity_hash(lock: str) -> None:
    data = json.loads((ROOT / lock).read_text())
    manifest = json.loads((ROOT / lock).with_name("package.json").read_text())
    wanted = {**manifest.get("dependencies", {}), **manifest.get("optionalDependencies", {})}
    assert data["lockfileVersion"] >= 2
    assert all(re.fullmatch(r"\d+\.\d+\.\d+", version) for version in wanted.values()), wanted
    for name, version in wanted.items():
        assert data["packages"][f"node_modules/{name}"]["version"] == version
    packages = {key: value for key, value in data["packages"].items() if key}
    unhashed = [key for key, value in packages.items()
                if not str(value.get("integrity", "")).startswith("sha512-")]  # fmt: skip
    assert unhashed == []
    scripts = {key for key, value in packages.items() if value.get("hasInstallScript")}
    assert scripts <= set(NPM_INSTALL_SCRIPTS), scripts - set(NPM_INSTALL_SCRIPTS)


# --- 2. pip-audit where an advisory service answers ------------------------------------------


@pytest.fixture(scope="module")
def advisory_service() -> list[str]:
    service, reason = supply_audit.advisory_service()
    if service is None:
        pytest.skip(f"pip-audit NOT RUN, vulnerabilities unchecked: {reason}")
    return service


@pytest.mark.parametrize("lock_name", sorted(LOCKS))
def test_pip_audit_finds_no_known_vulnerability(
    lock_name: str, advisory_service: list[str], tmp_path: Path
) -> None:
    found, error = supply_audit.audit(LOCKS[lock_name][0], advisory_service, tmp_path)
    assert (found, error) == ([], "")


def test_the_audit_fails_on_an_advisory(tmp_path: Path) -> None:
    """Offline: a local OSV-shaped service that knows one advisory for the pinned click."""
    click = _pin_of("click").split("==")[1]

    async def query(request: Request) -> JSONResponse:
        asked = await request.json()
        if (asked["package"]["name"], asked["version"]) != ("click", click):
            return JSONResponse({})
        affected = [{"package": {"name": "click", "ecosystem": "PyPI"}, "ranges": []}]
        vuln = {"id": "TEST-0001", "summary": "planted advisory", "affected": affected}
        return JSONResponse({"vulns": [vuln]})

    app = Starlette(routes=[Route("/v1/query", query, methods=["POST"])])
    with ServerThread(app) as server:
        service = ["--vulnerability-service", "osv", "--osv-url", f"{server.url}/v1/query"]
        found, error = supply_audit.audit(LOCK, service, tmp_path)
    assert (found, error) == ([f"click {click}: TEST-0001"], "")


# --- 3. no obfuscation markers ---------------------------------------------------------------


def project_files() -> list[str]:
    """Tracked files, and new ones not ignored (so a helper's uncommitted file is scanned too)."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=ROOT, capture_output=True, check=True, timeout=60,
    ).stdout.decode()  # fmt: skip
    return sorted(name for name in set(listed.split("\0")) if name and (ROOT / name).is_file())


def scan_findings() -> list[supply_scan.Finding]:
    return [
        finding
        for name in project_files()
        if name not in SCAN_SKIP and "node_modules/" not in name
        for finding in supply_scan.scan_file(ROOT, name)
    ]


def test_no_file_carries_obfuscation_markers() -> None:
    found = [str(f) for f in scan_findings() if (f.path, f.rule) not in SCAN_ALLOWLIST]
    assert found == []


def test_the_scan_allowlist_is_current() -> None:
    used = {(finding.path, finding.rule) for finding in scan_findings()}
    assert set(SCAN_ALLOWLIST) - used == set()


def test_the_scan_covers_the_whole_project() -> None:
    files = project_files()
    for wanted in (
        "Dockerfile",
        "scripts/check",
        "deploy/nginx.conf",
        "e2e/netns_run.py",
        "src/qwen_free_api/static/welcome.js",
        "bench/run.py",
        "tests/conftest.py",
    ):
        assert wanted in files  # fmt: skip


LONG = "x = 1  # " + "padding " * 30
BLOB = "DATA = (\n" + "".join(f'    "{"QUJDRA" * 10}"\n' for _ in range(6)) + ")\n"
PLANTED = {
    "exec of base64": ("a.py", "exec(base64.b64decode('cHJpbnQoMSk='))\n", "runs-text"),
    "eval": ("a.py", "value = eval(input())\n", "runs-text"),
    "compile": ("a.py", "code = compile(source, 'x', 'exec')\n", "runs-text"),
    "builtins exec": ("a.py", "import builtins\nbuiltins.exec('1')\n", "runs-text"),
    "getattr exec": ("a.py", "getattr(__builtins__, 'exec')('1')\n", "runs-text"),
    "import of a decoded name": (
        "a.py", "import codecs, importlib\nimportlib.import_module(codecs.decode('bf', 'rot13'))\n",
        "decoded-code"),
    "marshal": ("a.py", "import marshal\nrun = marshal.loads(blob)\n", "runs-text"),
    "pickle of decoded data": ("a.py", "pickle.loads(zlib.decompress(data))\n", "decoded-code"),
    "long line": ("a.py", LONG + "\n", "long-line"),
    "one-line blob": ("a.md", "see " + "QUJD" * 60 + "\n", "blob"),
    "hex blob": ("a.toml", "k = '" + "ab12" * 60 + "'\n", "blob"),
    "blob over lines": ("a.py", BLOB, "blob"),
    "escapes": ("a.py", "s = '" + "\\x41" * 40 + "'\n", "escapes"),
    "bidi override": ("a.py", f"ok = 'admin{chr(0x202E)} '\n", "invisible"),
    "zero-width space": ("a.md", f"pip install qwen{chr(0x200B)}-free-api\n", "invisible"),
    "escape character": ("a.sh", f"echo {chr(0x1B)}[2J\n", "invisible"),
    "js eval": ("a.js", "eval(atob('YWxlcnQoMSk='));\n", "runs-text"),
    "js Function": ("a.js", "const f = new Function('return 1');\n", "runs-text"),
    "decode and run": ("a.sh", "echo aGk= | base64 -d | sh\n", "runs-text"),
    "minified": ("a.js", ("var a=1;" * 19 + "\n") * 5, "minified"),
    "not text": ("a.dat", "\x00\x01", "binary"),
}  # fmt: skip


@pytest.mark.parametrize("sample", sorted(PLANTED))
def test_the_scan_flags_a_planted_sample(sample: str, tmp_path: Path) -> None:
    name, text, rule = PLANTED[sample]
    (tmp_path / name).write_text(text)
    assert rule in {finding.rule for finding in supply_scan.scan_file(tmp_path, name)}


def test_the_scan_passes_ordinary_code(tmp_path: Path) -> None:
    text = (ROOT / "tests/support.py").read_text() + "\nPATTERN = re.compile('a+')\n"
    (tmp_path / "ok.py").write_text(text + "value = json.loads(base64.b64decode(raw))\n")
    assert supply_scan.scan_file(tmp_path, "ok.py") == []


def test_the_vocabulary_is_the_published_file() -> None:
    published = re.search(r"`qwen\.tiktoken`.*?SHA-256\s+`([0-9a-f]{64})`",
                          (ROOT / "README.md").read_text(), re.DOTALL)  # fmt: skip
    assert published is not None
    data = VOCABULARY.read_bytes()
    assert hashlib.sha256(data).hexdigest() == published.group(1)
    assert re.fullmatch(rb"([A-Za-z0-9+/]+=*) (\d+)\n", data.splitlines(keepends=True)[0])
    lines = data.decode("ascii").splitlines()
    assert all(re.fullmatch(r"[A-Za-z0-9+/]+=* \d+", line) for line in lines)
    assert [int(line.split(" ")[1]) for line in lines] == list(range(len(lines)))


# --- 4. installing runs no code --------------------------------------------------------------


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    work = tmp_path_factory.mktemp("wheel")
    return supply_wheel.build_wheel(ROOT, work, supply_wheel.sandbox_env(work / "home"))


def test_the_project_has_no_build_or_install_hooks() -> None:
    assert not (ROOT / "setup.py").exists() and not (ROOT / "setup.cfg").exists()
    data = tomllib.loads(PYPROJECT.read_text())
    assert data["build-system"]["build-backend"] == "setuptools.build_meta"
    assert set(data["tool"]["setuptools"]) <= {"packages", "package-data"}
    assert set(data["project"]) - {"name", "version", "description", "readme",
                                   "requires-python", "license", "dependencies",
                                   "optional-dependencies", "scripts"} == set()  # fmt: skip


def test_the_wheel_holds_only_the_package_byte_for_byte(wheel: Path) -> None:
    assert wheel.name == "qwen_free_api-0.1.0-py3-none-any.whl"
    assert supply_wheel.wheel_problems(wheel, supply_wheel.source_files(ROOT)) == []


def test_the_wheel_check_flags_planted_files(wheel: Path, tmp_path: Path) -> None:
    planted = tmp_path / wheel.name
    with zipfile.ZipFile(wheel) as source, zipfile.ZipFile(planted, "w") as copy:
        for item in source.infolist():
            data = source.read(item)
            if item.filename.endswith("/entry_points.txt"):
                data += b"\n[gui_scripts]\nsurprise = qwen_free_api.cli:main\n"
            if item.filename.endswith("/cli.py"):
                data += b"import os\n"
            copy.writestr(item, data)
        copy.writestr("zzz_hook.pth", "import os\n")
    problems = supply_wheel.wheel_problems(planted, supply_wheel.source_files(ROOT))
    wanted = [
        "zzz_hook.pth: neither",
        "zzz_hook.pth: a .pth file",
        "entry points are",
        "zzz_hook.pth is not in RECORD",
        "RECORD's hash of qwen_free_api/cli.py",
        "qwen_free_api/cli.py: differs from src/",
    ]
    assert all(any(problem.startswith(w) for problem in problems) for w in wanted), problems


def _install(wheel: Path, tmp_path: Path) -> tuple[Path, dict[str, str]]:
    env = supply_wheel.sandbox_env(tmp_path / "home")
    target = tmp_path / "target"
    command = [sys.executable, "-m", "pip", "install", "--no-deps", "--no-index", "--no-compile"]
    command += ["--quiet", "--target", str(target), str(wheel)]
    subprocess.run(command, env=env, cwd=tmp_path / "home", check=True, timeout=600)
    return target, env


def _import_probe(target: Path, env: dict[str, str]) -> dict[str, Any]:
    probe = Path(__file__).with_name("supply_import_probe.py")
    result = subprocess.run(
        [sys.executable, str(probe), str(target)],
        env={**env, "PYTHONPATH": str(target)}, cwd=env["HOME"], capture_output=True, text=True,
        check=True, timeout=300,
    )  # fmt: skip
    assert result.stderr == ""
    report: dict[str, Any] = json.loads(result.stdout)
    return report


def test_installing_the_wheel_writes_only_its_files(wheel: Path, tmp_path: Path) -> None:
    site = Path(sysconfig.get_paths()["purelib"])
    before = sorted(site.iterdir())
    target, _ = _install(wheel, tmp_path)
    assert supply_wheel.tree(tmp_path / "home") == {"tmp"}
    assert sorted(site.iterdir()) == before
    installed = {name for name in supply_wheel.tree(target) if not (target / name).is_dir()}
    dist = {name for name in installed if name.startswith("qwen_free_api-0.1.0.dist-info/")}
    assert installed - dist == {"bin/qwen-free-api", *supply_wheel.source_files(ROOT)}
    script = (target / "bin/qwen-free-api").read_text()
    assert "from qwen_free_api.cli import main" in script and "sys.exit(main())" in script


def test_importing_the_package_does_nothing_but_define_things(wheel: Path, tmp_path: Path) -> None:
    report = _import_probe(*_install(wheel, tmp_path))
    assert report["modules"] > 50
    assert (report["events"], report["threads"], report["signals"], report["outside"]) == (
        [], ["MainThread"], [], []
    )  # fmt: skip
    assert supply_wheel.tree(tmp_path / "home") == {"tmp"}


def test_the_import_probe_sees_a_planted_side_effect(wheel: Path, tmp_path: Path) -> None:
    target, env = _install(wheel, tmp_path)
    (target / "qwen_free_api/planted.py").write_text(
        "import signal, socket, threading\n"
        "socket.socket().close()\n"
        "open('planted.txt', 'w').close()\n"
        "threading.Thread(target=threading.Event().wait, name='planted', daemon=True).start()\n"
        "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
    )
    report = _import_probe(target, env)
    assert any(event.startswith("socket.__new__") for event in report["events"]), report
    assert any(event.startswith("open ") for event in report["events"]), report
    assert (report["threads"], report["signals"]) == (["MainThread", "planted"], ["SIGTERM"])
