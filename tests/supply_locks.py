"""Do the hashed lock files agree with pyproject.toml? Offline: reads the files, resolves nothing.

The locks are written by pip-compile (see their headers); this re-checks what pip-compile
promised, so a hand edit, a forgotten re-lock after a pyproject change or a stray entry fails the
test command.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from packaging.markers import Marker
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

PROJECT_VIA = re.compile(r"^qwen-free-api \(pyproject\.toml(::build-system\.requires)?\)$")
HASH = re.compile(r"^--hash=sha256:[0-9a-f]{64}$")
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;]+)(\s*;\s*(.+))?$")
HEADER_FLAGS = (
    "--allow-unsafe",
    "--build-deps-for=wheel",
    "--generate-hashes",
    "--strip-extras",
)


@dataclass
class Pin:
    name: str
    version: str
    marker: str | None
    hashes: set[str] = field(default_factory=set)
    via: list[str] = field(default_factory=list)


@dataclass
class Lock:
    path: Path
    command: str
    pins: dict[str, Pin]


def _logical_lines(text: str) -> list[str]:
    """Join backslash continuations; keep comment lines (the `# via` annotations) as they are."""
    lines: list[str] = []
    pending = ""
    for raw in text.splitlines():
        if pending:
            pending += " " + raw.strip()
        elif raw.strip().startswith("#") or not raw.strip():
            lines.append(raw)
            continue
        else:
            pending = raw.strip()
        if pending.endswith("\\"):
            pending = pending[:-1].strip()
        else:
            lines.append(pending)
            pending = ""
    if pending:
        lines.append(pending)
    return lines


def _via_items(comment: str, in_via: bool) -> tuple[list[str], bool]:
    body = comment.lstrip("#").strip()
    if body == "via":
        return [], True
    if body.startswith("via "):
        return [body[4:].strip()], False
    if in_via and comment.startswith("#   ") and body:
        return [body], True
    return [], False


def parse_lock(path: Path) -> Lock:
    pins: dict[str, Pin] = {}
    command = ""
    current: Pin | None = None
    in_via = False
    for line in _logical_lines(path.read_text()):
        stripped = line.strip()
        if stripped.startswith("#    pip-compile ") and current is None:
            command = stripped.lstrip("#").strip()
        elif stripped.startswith("#"):
            items, in_via = _via_items(stripped, in_via)
            if current is not None:
                current.via.extend(items)
        elif stripped and not stripped.startswith("-"):
            words = stripped.split(" --hash=")
            match = PIN.match(words[0].strip())
            if match is None:
                raise ValueError(f"{path.name}: not a pinned requirement: {words[0]!r}")
            name = canonicalize_name(match.group(1))
            current = Pin(name, match.group(2), match.group(4))
            current.hashes = {"--hash=" + word.strip() for word in words[1:]}
            pins[name] = current
            in_via = False
    return Lock(path, command, pins)


def project_requirements(pyproject: Path, extras: tuple[str, ...]) -> list[Requirement]:
    data = tomllib.loads(pyproject.read_text())
    texts = list(data["project"]["dependencies"]) + list(data["build-system"]["requires"])
    for extra in extras:
        texts += data["project"]["optional-dependencies"][extra]
    return [Requirement(text) for text in texts]


def _marker(marker: Marker | str | None) -> str:
    return "" if marker is None else str(Marker(str(marker)))


def _check_requirements(lock: Lock, requirements: list[Requirement]) -> list[str]:
    problems = []
    for req in requirements:
        if req.marker is not None and not req.marker.evaluate():
            continue  # pip-compile resolves for this platform; a req not for it is not pinned
        pin = lock.pins.get(canonicalize_name(req.name))
        if pin is None:
            problems.append(f"{lock.path.name}: {req} is in pyproject.toml but not pinned")
        elif not req.specifier.contains(Version(pin.version), prereleases=True):
            problems.append(f"{lock.path.name}: {pin.name}=={pin.version} does not satisfy {req}")
        elif _marker(pin.marker) != _marker(req.marker):
            problems.append(
                f"{lock.path.name}: {pin.name} is pinned for `{pin.marker}`,"
                f" pyproject.toml wants it for `{req.marker}`"
            )
    return problems


def _check_entries(lock: Lock, requirements: list[Requirement]) -> list[str]:
    problems = []
    direct = {canonicalize_name(req.name) for req in requirements}
    for pin in lock.pins.values():
        if not pin.hashes or not all(HASH.match(h) for h in pin.hashes):
            problems.append(f"{lock.path.name}: {pin.name} has no sha256 --hash (or a bad one)")
        for via in pin.via:
            if PROJECT_VIA.match(via) and pin.name not in direct:
                problems.append(
                    f"{lock.path.name}: {pin.name} claims pyproject needs it; it does not"
                )
            elif not PROJECT_VIA.match(via) and canonicalize_name(via) not in lock.pins:
                problems.append(f"{lock.path.name}: {pin.name} is needed by {via}, not in the lock")
    needed = {name for name, pin in lock.pins.items() if any(map(PROJECT_VIA.match, pin.via))}
    grew = True
    while grew:
        before = len(needed)
        needed |= {
            n for n, p in lock.pins.items() if any(canonicalize_name(v) in needed for v in p.via)
        }
        grew = len(needed) > before
    for name in sorted(set(lock.pins) - needed):
        problems.append(
            f"{lock.path.name}: {name} is pinned but nothing in pyproject.toml needs it"
        )
    return problems


def _check_header(lock: Lock, extras: tuple[str, ...]) -> list[str]:
    words = lock.command.split()
    wanted = [*HEADER_FLAGS, f"--output-file={lock.path.name}", "pyproject.toml"]
    wanted += [f"--extra={extra}" for extra in extras]
    missing = [flag for flag in wanted if flag not in words]
    stray = [w for w in words if w.startswith("--extra") and w not in wanted]
    if not words or words[0] != "pip-compile" or missing or stray:
        return [f"{lock.path.name}: header command {lock.command!r} (missing {missing}, {stray})"]
    return []


def check_lock(lock_path: Path, pyproject: Path, extras: tuple[str, ...]) -> list[str]:
    """Everything wrong with one lock against pyproject.toml, as readable lines ([] = agrees)."""
    lock = parse_lock(lock_path)
    requirements = project_requirements(pyproject, extras)
    return (
        _check_header(lock, extras)
        + _check_requirements(lock, requirements)
        + _check_entries(lock, requirements)
    )


def check_subset(runtime_path: Path, dev_path: Path) -> list[str]:
    """The runtime lock's pins, hashes and markers are exactly the dev lock's for those packages."""
    runtime, dev = parse_lock(runtime_path), parse_lock(dev_path)
    problems = []
    for name, pin in runtime.pins.items():
        other = dev.pins.get(name)
        if other is None:
            problems.append(f"{dev_path.name}: {name} is in {runtime_path.name} but not here")
        elif (other.version, other.hashes, other.marker) != (pin.version, pin.hashes, pin.marker):
            problems.append(f"{name}: {runtime_path.name} and {dev_path.name} pin it differently")
    return problems
