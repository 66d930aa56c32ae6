"""Entry point for `python -m qwen_free_api`."""

from __future__ import annotations

from qwen_free_api.cli import main

main()
