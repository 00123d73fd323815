"""Offline token counting for context budgets.

Uses tiktoken's ``cl100k_base`` loaded from the copy litellm ships (found without importing litellm),
so no network is ever touched. If that file cannot be found, a conservative estimate is used instead,
so budgets still hold (at the price of using less of them).
"""

from __future__ import annotations

import base64
import hashlib
import importlib.util
import math
import threading
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from typing import Any

TokenCounter = Callable[[str], int]

_CL100K_URL = "https://openaipublic.blob.core.windows.net/encodings/cl100k_base.tiktoken"
_CL100K_SHA256 = "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7"
_CL100K_PATTERN = (
    r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+| ?[^\s\p{L}\p{N}]++[\r\n]*+|"""
    r"""\s++$|\s*[\r\n]|\s+(?!\S)|\s"""
)
_lock = threading.Lock()
_REMEMBERED_COUNTS = 16_384


def estimate_tokens(text: str) -> int:
    """Conservative estimate: one token per two UTF-8 bytes (about twice cl100k's count for English,
    still above it for digits, accents and CJK), and at least one per word or symbol."""
    pieces = sum(1 for ch in text if not ch.isalnum() and not ch.isspace()) + len(text.split())
    return max(math.ceil(len(text.encode("utf-8")) / 2), pieces)


def _bundled_cl100k() -> Path | None:
    spec = importlib.util.find_spec("litellm")  # locates the package; does not import it
    if spec is None or not spec.submodule_search_locations:
        return None
    name = hashlib.sha1(_CL100K_URL.encode()).hexdigest()
    for root in spec.submodule_search_locations:
        path = Path(root) / "litellm_core_utils" / "tokenizers" / name
        if path.is_file():
            return path
    return None


@lru_cache(maxsize=1)
def _cl100k() -> Any | None:
    path = _bundled_cl100k()
    if path is None:
        return None
    data = path.read_bytes()
    if hashlib.sha256(data).hexdigest() != _CL100K_SHA256:
        return None
    try:
        import tiktoken
    except ImportError:
        return None
    ranks = {base64.b64decode(tok): int(rank) for tok, rank in (ln.split() for ln in data.splitlines() if ln)}
    return tiktoken.Encoding(
        name="cl100k_base",
        pat_str=_CL100K_PATTERN,
        mergeable_ranks=ranks,
        special_tokens={"<|endoftext|>": 100257},
    )


def default_counter() -> TokenCounter:
    """The best offline counter available: cl100k when present, else the conservative estimate."""
    with _lock:
        encoding = _cl100k()
    if encoding is None:
        return estimate_tokens

    # Every compile counts the same stored lines again; a count is remembered by the text's hash (no
    # memory content is kept; a collision, about 1 in 10^11 here, would only misjudge one line's size).
    counts: dict[int, int] = {}

    def count(text: str) -> int:
        key = hash(text)
        found = counts.get(key)
        if found is None:
            found = len(encoding.encode_ordinary(text))
            if len(counts) >= _REMEMBERED_COUNTS:
                counts.clear()
            counts[key] = found
        return found

    return count
