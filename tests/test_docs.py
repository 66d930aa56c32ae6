"""Every setting is documented in the README and in `serve --help`; no upstream host is fixed."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from qwen_free_api.settings import Settings

ROOT = Path(__file__).resolve().parent.parent


def test_every_setting_is_in_the_readme() -> None:
    readme = (ROOT / "README.md").read_text()
    missing = [name for name in Settings.model_fields if f"`QFA_{name.upper()}`" not in readme]
    assert missing == []


def test_every_setting_is_a_serve_flag_with_its_description() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "qwen_free_api", "serve", "--help"],
        capture_output=True,
        text=True,
        check=True,
    )
    help_text = " ".join(result.stdout.split())
    for name, field in Settings.model_fields.items():
        assert f"--{name.replace('_', '-')}" in help_text, name
        assert f"QFA_{name.upper()}" in help_text, name
        assert field.description and field.description.split(".")[0][:30] in help_text, name


def test_upstream_hosts_are_only_named_in_settings() -> None:
    pattern = re.compile(r"https?://[\w.-]*(qianwen|qwen\.ai|aliyun)")
    offenders = [
        str(path.relative_to(ROOT))
        for path in (ROOT / "src").rglob("*.py")
        if path.name != "settings.py"
        and "testing" not in path.parts
        and pattern.search(path.read_text())
    ]
    assert offenders == []


def test_environment_and_flags_build_the_same_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QFA_TOKENS", "a, b ,intl:c")
    monkeypatch.setenv("QFA_PORT", "9001")
    monkeypatch.setenv("QFA_DELETE_SESSIONS", "false")
    settings = Settings(_env_file=None)
    assert settings.tokens == ["a", "b", "intl:c"]
    assert settings.port == 9001 and settings.delete_sessions is False
    assert Settings(_env_file=None, port=1).port == 1
