"""qwen-free-api: standard LLM APIs over your own Qwen web-chat login."""

from __future__ import annotations

__version__ = "0.1.0"
