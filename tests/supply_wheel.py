"""Build the project's wheel from a copy of the sources, and say what is in it that should not be.

A wheel installs by unpacking: pip runs none of its code. What could still run is a `.pth` file
(executed at every interpreter start), a file placed outside the package, or an extra entry point;
so the wheel may hold the package's own files, byte for byte as in src/, its dist-info and the one
console script, and nothing else.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

PACKAGE = "qwen_free_api"
DIST_INFO = {"METADATA", "WHEEL", "RECORD", "entry_points.txt", "top_level.txt"}
ENTRY_POINTS = "[console_scripts]\nqwen-free-api = qwen_free_api.cli:main"
SKIP = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info")


def sandbox_env(home: Path) -> dict[str, str]:
    """Environment for pip: an empty home and temp dir, no user config, no cache.

    PATH is the system default: pip asks `rustc --version` for its User-Agent, and a rustup shim
    on PATH writes ~/.rustup/settings.toml, which is pip's doing, not the package's.
    """
    (home / "tmp").mkdir(parents=True)
    env = {key: value for key, value in os.environ.items() if not key.startswith("PIP_")}
    env.update(
        HOME=str(home),
        TMPDIR=str(home / "tmp"),
        PATH=os.defpath,
        PIP_CONFIG_FILE=os.devnull,
        PIP_NO_CACHE_DIR="1",
        PIP_DISABLE_PIP_VERSION_CHECK="1",
        PYTHONDONTWRITEBYTECODE="1",
        PYTHONNOUSERSITE="1",
    )
    return env


def source_files(root: Path) -> dict[str, bytes]:
    """The package's files in src/, by wheel path (caches left out)."""
    base = root / "src"
    return {
        path.relative_to(base).as_posix(): path.read_bytes()
        for path in sorted((base / PACKAGE).rglob("*"))
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc"
    }


def build_wheel(root: Path, work: Path, env: dict[str, str]) -> Path:
    """`pip wheel` over a copy of pyproject.toml, README.md and src/ (the Docker build's inputs)."""
    copy = work / "project"
    copy.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(root / name, copy / name)
    shutil.copytree(root / "src", copy / "src", ignore=SKIP)
    out = work / "dist"
    command = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation"]
    command += ["--no-index", "--quiet", "-w", str(out), str(copy)]
    subprocess.run(command, env=env, cwd=work, check=True, capture_output=True, timeout=600)
    (wheel,) = out.glob("*.whl")
    return wheel


def _digest(data: bytes) -> str:
    raw = hashlib.sha256(data).digest()
    return "sha256=" + base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _record_problems(archive: zipfile.ZipFile, record: str) -> list[str]:
    rows = list(csv.reader(io.StringIO(archive.read(record).decode())))
    listed = {row[0] for row in rows}
    problems = [f"{name} is not in RECORD" for name in archive.namelist() if name not in listed]
    for name, digest, _size in rows:
        if name != record and digest != _digest(archive.read(name)):
            problems.append(f"RECORD's hash of {name} is wrong")
    return problems


def wheel_problems(wheel: Path, sources: dict[str, bytes]) -> list[str]:
    """Everything in the wheel that is not the package's own file, dist-info or entry point."""
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        dist = next(name.split("/")[0] for name in names if ".dist-info/" in name)
        problems = [f"{name}: neither the package nor its dist-info" for name in names
                    if not name.startswith((f"{PACKAGE}/", f"{dist}/"))]  # fmt: skip
        problems += [f"{name}: a .pth file runs at interpreter start" for name in names
                     if name.endswith(".pth")]  # fmt: skip
        extra = {name.split("/", 1)[1] for name in names if name.startswith(f"{dist}/")}
        extra -= DIST_INFO
        problems += [f"{dist}/{name}: unexpected dist-info file" for name in sorted(extra)]
        entry = archive.read(f"{dist}/entry_points.txt").decode().strip()
        if entry != ENTRY_POINTS:
            problems.append(f"entry points are {entry!r}, not only the console script")
        if "Root-Is-Purelib: true" not in archive.read(f"{dist}/WHEEL").decode():
            problems.append("the wheel is not pure Python")
        shipped = {name: archive.read(name) for name in names if name.startswith(f"{PACKAGE}/")}
        problems += _record_problems(archive, f"{dist}/RECORD")
    problems += [f"{name}: not in src/" for name in sorted(set(shipped) - set(sources))]
    problems += [f"{name}: in src/, not shipped" for name in sorted(set(sources) - set(shipped))]
    problems += [f"{name}: differs from src/" for name in sorted(set(shipped) & set(sources))
                 if shipped[name] != sources[name]]  # fmt: skip
    return problems


def tree(path: Path) -> set[str]:
    """Every file and directory under path, relative to it."""
    return {entry.relative_to(path).as_posix() for entry in path.rglob("*")}
