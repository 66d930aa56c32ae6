"""The Docker files, checked without a Docker engine: pins, the lock, the user, names used."""

from __future__ import annotations

import fnmatch
import re
import tomllib
from pathlib import Path

import pytest

from qwen_free_api.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
DOCKERFILE = ROOT / "Dockerfile"
COMPOSE_FILES = [ROOT / "docker-compose.yml", ROOT / "docker-compose.multi.yml"]
NGINX = ROOT / "deploy" / "nginx.conf"
DIGEST = re.compile(r"@sha256:[0-9a-f]{64}$")


def instructions() -> list[tuple[str, str]]:
    """The Dockerfile as (INSTRUCTION, arguments), continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    lines = [line.strip() for line in text.splitlines()]
    pairs = [line.split(None, 1) for line in lines if line and not line.startswith("#")]
    return [(pair[0].upper(), pair[1] if len(pair) > 1 else "") for pair in pairs]


def base_images() -> list[str]:
    args: dict[str, str] = {}
    images = []
    for name, rest in instructions():
        if name == "ARG" and "=" in rest:
            key, _, value = rest.partition("=")
            args.setdefault(key.strip(), value.strip())
        elif name == "FROM":
            image = rest.split()[0]
            images.append(re.sub(r"\$\{(\w+)\}", lambda m: args.get(m[1], m[0]), image))
    return images


def test_every_base_image_is_pinned_by_digest() -> None:
    images = base_images()
    assert len(images) >= 2  # a build stage and the final one
    assert all(DIGEST.search(image) for image in images), images
    assert all(image.startswith("python:3.11-slim") for image in images), images


def test_it_installs_the_hashed_lock_and_the_project_without_fetching_anything() -> None:
    runs = [rest for name, rest in instructions() if name == "RUN"]
    assert any("--require-hashes" in run and "-r requirements.lock" in run for run in runs)
    project = [run for run in runs if re.search(r"pip install .*--no-deps .*\s\.(\s|$)", run)]
    assert project and "--no-build-isolation" in project[0]
    # with no build isolation the build backend must come from the lock itself
    lock = (ROOT / "requirements.lock").read_text()
    backend = tomllib.loads((ROOT / "pyproject.toml").read_text())["build-system"]["requires"]
    for requirement in backend:
        name = re.split(r"[<>=!~ \[;]", requirement)[0].lower()
        assert re.search(rf"^{name}==\S+ \\$", lock, re.MULTILINE), name


def final_stage() -> list[tuple[str, str]]:
    steps = instructions()
    last_from = max(i for i, (name, _) in enumerate(steps) if name == "FROM")
    return steps[last_from:]


def test_the_final_stage_runs_as_a_fixed_non_root_user_and_copies_only_the_venv() -> None:
    stage = final_stage()
    users = [rest.split(":")[0] for name, rest in stage if name == "USER"]
    assert users and users[-1] not in {"root", "0"} and users[-1].isdigit()
    copies = [rest for name, rest in stage if name == "COPY"]
    assert copies and all(copy.startswith("--from=") for copy in copies)
    assert ("CMD", '["qwen-free-api", "serve"]') in stage
    assert ("EXPOSE", "8000") in stage


def test_the_healthcheck_asks_ping_with_python() -> None:
    checks = [rest for name, rest in final_stage() if name == "HEALTHCHECK"]
    assert len(checks) == 1 and "/ping" in checks[0] and '"python"' in checks[0]
    assert "curl" not in checks[0] and "wget" not in checks[0]


def test_the_build_context_holds_what_the_dockerfile_copies_and_no_secrets() -> None:
    ignore = (ROOT / ".dockerignore").read_text().split()
    kept = {line[1:].rstrip("/") for line in ignore if line.startswith("!")}
    assert "*" in ignore and ".env" not in kept
    sources = [
        part
        for name, rest in instructions()
        if name == "COPY" and not rest.startswith("--from=")
        for part in rest.split()[:-1]
    ]
    assert sources and all(source.rstrip("/") in kept for source in sources), sources
    assert all((ROOT / path).exists() for path in kept)


QFA_NAME = re.compile(r"\bQFA_[A-Z0-9_]+")


@pytest.mark.parametrize(
    "path", [*COMPOSE_FILES, DOCKERFILE, ROOT / ".env.example"], ids=lambda p: p.name
)
def test_every_qfa_variable_named_is_a_setting(path: Path) -> None:
    names = set(QFA_NAME.findall(path.read_text()))
    known = {f"QFA_{field.upper()}" for field in Settings.model_fields}
    assert names and names <= known, names - known


def services(path: Path) -> dict[str, list[str]]:
    """A compose file's services and their lines (a small reader: two-space YAML, no tabs)."""
    text = path.read_text()
    assert "\t" not in text
    found: dict[str, list[str]] = {}
    current: list[str] | None = None
    inside = False
    for line in text.splitlines():
        if line and not line.startswith(" ") and not line.startswith("#"):
            inside, current = line.startswith("services:"), None
        elif inside and re.match(r"^  [\w.-]+:", line):
            name, _, rest = line.strip().partition(":")
            current = found.setdefault(name, [rest.strip()] if rest.strip() else [])
        elif inside and current is not None and line.strip():
            current.append(line.strip())
    return found


def anchored(path: Path, lines: list[str]) -> list[str]:
    """The lines of a service, with a `*alias` replaced by the anchored block's lines."""
    if lines and lines[0].startswith("*"):
        text = path.read_text()
        block = text.split(f"&{lines[0][1:]}\n", 1)[1].split("\n\n", 1)[0]
        return [line.strip() for line in block.splitlines()]
    return lines


@pytest.mark.parametrize("path", COMPOSE_FILES, ids=lambda p: p.name)
def test_compose_services_are_built_or_pinned(path: Path) -> None:
    found = {name: anchored(path, lines) for name, lines in services(path).items()}
    assert found
    for name, lines in found.items():
        images = [line.split(None, 1)[1] for line in lines if line.startswith("image:")]
        built = any(line.startswith("build:") for line in lines)
        assert built or (images and DIGEST.search(images[0])), name
        env_files = [line.split(None, 1)[1] for line in lines if line.startswith("env_file:")]
        assert all(file == ".env" for file in env_files), name


def test_one_instance_keeps_sqlite_state_on_a_named_volume() -> None:
    text = COMPOSE_FILES[0].read_text()
    store = re.search(r"QFA_STORE: sqlite:///(/\S+)/[^/\s]+\.db", text)
    assert store, "QFA_STORE must be an absolute sqlite path"
    volume = re.search(rf"- (\w[\w-]*):{re.escape(store[1])}\s", text)
    assert volume and re.search(rf"^volumes:\n  {volume[1]}:", text, re.MULTILINE)


def test_several_instances_share_redis_behind_the_proxy() -> None:
    path = COMPOSE_FILES[1]
    found = services(path)
    stores = re.findall(r"QFA_STORE: redis://([\w-]+):6379/\d+", path.read_text())
    assert stores and stores[0] in found
    nginx = NGINX.read_text()
    backends = re.findall(r"^\s*server ([\w-]+):8000\b", nginx, re.MULTILINE)
    assert len(backends) >= 2 and all(name in found for name in backends)
    assert "./deploy/nginx.conf:" in path.read_text()


def test_the_proxy_streams_server_sent_events_unbuffered() -> None:
    nginx = NGINX.read_text()
    assert re.search(r"^\s*proxy_buffering off;", nginx, re.MULTILINE)
    assert re.search(r"^\s*proxy_http_version 1\.1;", nginx, re.MULTILINE)
    timeout = re.search(r"^\s*proxy_read_timeout (\d+)s;", nginx, re.MULTILINE)
    assert timeout and int(timeout[1]) >= Settings.model_fields["read_timeout"].default


def docker_section() -> str:
    readme = (ROOT / "README.md").read_text()
    return readme.split("\n## Docker\n", 1)[1].split("\n## ", 1)[0]


def test_the_readme_docker_commands_use_files_that_exist() -> None:
    section = docker_section()
    commands = re.findall(r"^docker compose.*$", section, re.MULTILINE)
    assert len(commands) == 2
    named = re.findall(r"-f (\S+)", section) + re.findall(
        r"`([\w./-]+\.(?:conf|yml|example))`", section
    )
    named += re.findall(r"^cp (\S+) ", section, re.MULTILINE)
    assert named and all((ROOT / name).is_file() for name in ["Dockerfile", *named]), named


def test_every_packaged_data_file_is_in_the_package_data() -> None:
    """A non-editable install (the image's) must carry the static files the server reads."""
    package = ROOT / "src" / "qwen_free_api"
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    globs = config["tool"]["setuptools"]["package-data"]["qwen_free_api"]
    files = [
        path.relative_to(package).as_posix()
        for path in package.rglob("*")
        if path.is_file() and path.suffix not in {".py", ".pyc"} and "__pycache__" not in path.parts
    ]
    missing = [name for name in files if not any(fnmatch.fnmatch(name, glob) for glob in globs)]
    assert missing == []
