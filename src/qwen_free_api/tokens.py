"""Local token counts for when the upstream reports none (Qwen's own BPE vocabulary).

The vocabulary file `data/qwen.tiktoken` is the published Qwen tokenizer (Apache-2.0, as
shipped in Alibaba's dashscope SDK). It is loaded once at start-up, never per request.
"""

from __future__ import annotations

import base64
import functools
from importlib import resources

import tiktoken

# Qwen's pre-tokenisation pattern (the same family as cl100k).
PATTERN = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"
    r"|\s*[\r\n]+|\s+(?!\S)|\s+"
)


class Tokenizer:
    """Counts tokens with Qwen's vocabulary."""

    def __init__(self) -> None:
        ranks: dict[bytes, int] = {}
        text = resources.files("qwen_free_api").joinpath("data/qwen.tiktoken").read_text("ascii")
        for line in text.splitlines():
            token, _, rank = line.partition(" ")
            if token:
                ranks[base64.b64decode(token)] = int(rank)
        self._encoding = tiktoken.Encoding(
            name="qwen", pat_str=PATTERN, mergeable_ranks=ranks, special_tokens={}
        )

    def count(self, text: str) -> int:
        return len(self._encoding.encode_ordinary(text)) if text else 0


@functools.cache
def shared_tokenizer() -> Tokenizer:
    """The process-wide tokenizer, built on first use (≈0.6 s), then reused."""
    return Tokenizer()
