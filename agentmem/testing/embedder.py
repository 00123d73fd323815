"""HashingEmbedder: a deterministic, offline stand-in for an embedding model, for tests and examples."""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Sequence

_WORD = re.compile(r"\w+")
# Words in nearly every sentence: left out, or they would make every two texts look alike.
_STOP_WORDS = frozenset(
    [
        "a",
        "an",
        "and",
        "are",
        "as",
        "at",
        "be",
        "by",
        "do",
        "does",
        "did",
        "for",
        "from",
        "has",
        "have",
        "he",
        "her",
        "his",
        "how",
        "i",
        "in",
        "is",
        "it",
        "its",
        "me",
        "my",
        "of",
        "on",
        "or",
        "our",
        "she",
        "so",
        "that",
        "the",
        "their",
        "them",
        "they",
        "this",
        "to",
        "was",
        "we",
        "were",
        "what",
        "when",
        "where",
        "which",
        "who",
        "why",
        "will",
        "with",
        "you",
        "your",
    ]
)


def _stem(word: str) -> str:
    """A crude English stem, enough that "live", "lives", "lived" and "living" meet, and "cities" and
    "city": an ending taken off, then a final "e"."""
    if word.endswith("ies") and len(word) > 4:
        return word[:-3] + "y"
    for suffix in ("ing", "ed", "es", "s"):
        if word.endswith(suffix) and not word.endswith("ss") and len(word) - len(suffix) >= 3:
            word = word[: -len(suffix)]
            break
    return word[:-1] if word.endswith("e") and len(word) > 3 else word


class HashingEmbedder:
    """A test double of an embedding model, not a semantic one: each text becomes a hashed bag of its
    word stems and their character trigrams (common function words left out), ``dimensions`` long,
    unit length.

    Texts that share words or word parts ("Where does she live?", "She lives in Berlin") get similar
    vectors; texts that say the same thing in other words do not. The same text always gives the same
    vector, on every machine, with no network and no model download.

    Pass it as ``MemoryManager(embedding_model=HashingEmbedder())``; :class:`LoopbackServer` answers
    ``/embeddings`` with it. ``calls`` lists the batches of texts it was asked to embed.
    """

    name = "agentmem-testing-hashing"

    def __init__(self, dimensions: int = 256) -> None:
        if type(dimensions) is not int or dimensions < 8:
            raise ValueError(f"dimensions must be an int >= 8, got {dimensions!r}")
        self.dimensions = dimensions
        self.name = f"{HashingEmbedder.name}-{dimensions}"
        self.calls: list[list[str]] = []

    def __call__(self, texts: Sequence[str]) -> list[list[float]]:
        self.calls.append(list(texts))
        return [self.vector(text) for text in texts]

    def vector(self, text: str) -> list[float]:
        """The text's vector (unit length; a text without words gets one fixed component)."""
        values = [0.0] * self.dimensions
        for stem in (_stem(w) for w in _WORD.findall(text.lower()) if w not in _STOP_WORDS):
            self._add(values, "w:" + stem, 2.0)
            padded = f"<{stem}>"
            for i in range(len(padded) - 2):
                self._add(values, "t:" + padded[i : i + 3], 1.0)
        norm = math.sqrt(sum(v * v for v in values))
        if norm == 0:
            values[0], norm = 1.0, 1.0
        return [v / norm for v in values]

    def _add(self, values: list[float], feature: str, weight: float) -> None:
        digest = hashlib.blake2b(feature.encode(), digest_size=8).digest()
        index = int.from_bytes(digest[:4], "little") % self.dimensions
        sign = 1.0 if digest[4] & 1 else -1.0
        values[index] += sign * weight
