"""Model lists served by the fake: the cn `model/list` payload and intl `/api/models` objects."""

from __future__ import annotations

from typing import Any


def _cn_model(
    code: str, display: str, legacy: str, describe: str, *, default: bool, new: bool, answer: bool
) -> dict[str, Any]:
    # Key order as in the 2026-09-06 capture.
    return {
        "thirdParty": False,
        "newTag": new,
        "expanded": True,
        "answerShow": answer,
        "defaultModel": default,
        "modelCode": code,
        "displayModelName": display,
        "show": True,
        "supportMultiModal": False,
        "describe": describe,
        "modelTag": [],
        "legacyModelCode": legacy,
    }


CN_MODELS: list[dict[str, Any]] = [
    _cn_model(
        "Qwen",
        "Qwen3.7-千问",
        "Qwen",
        "综合AI助手，全面回答工作、学习、生活各类问题",
        default=True,
        new=False,
        answer=False,
    ),
    _cn_model(
        "Qwen3.8-Max",
        "Qwen3.8-Max",
        "tongyi-qwen3.8-max-model",
        "最新 Max 旗舰模型，擅长视觉理解任务",
        default=False,
        new=True,
        answer=True,
    ),
    _cn_model(
        "Qwen3.7-Max",
        "Qwen3.7-Max",
        "tongyi-qwen3-max-model",
        "擅长代码编写，处理复杂任务",
        default=False,
        new=False,
        answer=True,
    ),
    _cn_model(
        "Qwen3.6-Flash",
        "Qwen3.6-Flash",
        "tongyi-qwen36-plus-model",
        "适用于简单任务，响应速度快",
        default=True,
        new=False,
        answer=True,
    ),
]

_ALL_CHAT_TYPES = [
    "t2t",
    "t2v",
    "t2i",
    "image_edit",
    "search",
    "artifacts",
    "web_dev",
    "deep_research",
    "travel",
    "learn",
    "slides",
]


def _intl_model(
    model_id: str, name: str, *, context: int, thinking: bool, vision: bool, chat_types: list[str]
) -> dict[str, Any]:
    flag = 1 if vision else 0
    meta = {
        "description": f"{name} (fake upstream model).",
        "capabilities": {
            "vision": vision,
            "document": True,
            "video": vision,
            "audio": vision,
            "thinking": thinking,
            "search": "search" in chat_types,
        },
        "short_description": f"{name} in the offline fake.",
        "max_context_length": context,
        "max_summary_generation_length": 65536,
        "abilities": {
            "vision": flag,
            "document": 1,
            "video": flag,
            "audio": flag,
            "mcp": 1,
            "thinking": 3 if thinking else 0,
            "parse_url": 2,
        },
        "auto_thinking": thinking,
        "auto_search": "search" in chat_types,
        "thinking_format": "summary",
        "chat_type": chat_types,
        "mcp": ["image-generation", "code-interpreter"],
        "modality": ["text", "image", "video"] if vision else ["text"],
        "think_skip": {"enable": thinking},
    }
    info = {
        "id": model_id,
        "user_id": "00000000-0000-0000-0000-000000000000",
        "base_model_id": None,
        "name": name,
        "meta": meta,
        "is_active": True,
        "is_visitor_active": True,
    }
    return {
        "id": model_id,
        "name": name,
        "object": "model",
        "owned_by": "qwen",
        "info": info,
        "preset": True,
        "action_ids": [],
    }


INTL_MODELS: list[dict[str, Any]] = [
    _intl_model(
        "qwen3.7-plus",
        "Qwen3.7-Plus",
        context=1_000_000,
        thinking=True,
        vision=True,
        chat_types=_ALL_CHAT_TYPES,
    ),
    _intl_model(
        "qwen3.7-max",
        "Qwen3.7-Max",
        context=262_144,
        thinking=True,
        vision=True,
        chat_types=_ALL_CHAT_TYPES,
    ),
    _intl_model(
        "qwen3.8-max",
        "Qwen3.8-Max",
        context=262_144,
        thinking=True,
        vision=True,
        chat_types=_ALL_CHAT_TYPES,
    ),
    _intl_model(
        "qwen3.6-plus",
        "Qwen3.6-Plus",
        context=1_000_000,
        thinking=True,
        vision=True,
        chat_types=["t2t", "t2i", "image_edit", "search", "artifacts", "web_dev"],
    ),
    _intl_model(
        "qwen3-coder-plus",
        "Qwen3-Coder",
        context=1_048_576,
        thinking=False,
        vision=False,
        chat_types=["t2t", "search", "artifacts", "web_dev"],
    ),
    _intl_model(
        "qwen3.5-flash",
        "Qwen3.5-Flash",
        context=1_000_000,
        thinking=True,
        vision=True,
        chat_types=["t2t", "search", "t2i"],
    ),
]
