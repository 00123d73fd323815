"""Attribution: the assistant's words are never stored as the user's facts.

A safety net under the prompt's instruction: an extracted value whose content words appear in the
assistant's turn but nowhere in the user's turns came from the assistant, and is dropped. A value
sharing no word with either (a paraphrase) is kept: nothing shows it was the assistant's.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..text import words
from .turns import Turn

_STOPWORDS = frozenset(
    {
        "the", "and", "for", "with", "that", "this", "from", "are", "was", "were", "has", "have", "had",
        "user", "users", "their", "they", "them", "its", "his", "her", "who", "what", "when", "where",
        "which", "about", "into", "over", "also", "very", "just", "like", "likes",
    }
)  # fmt: skip


def content_words(text: str) -> set[str]:
    """Words that carry meaning, cut to 5 letters so "cleaning" meets "clean" and "cleaned"."""
    return {w[:5] for w in words(text) if len(w) >= 3 and w not in _STOPWORDS}


class Attribution:
    def __init__(self, turns: Sequence[Turn]) -> None:
        self.user = set().union(*(content_words(t["content"]) for t in turns if t["role"] == "user"))
        self.assistant = set().union(
            *(content_words(t["content"]) for t in turns if t["role"] == "assistant")
        )

    def misattributed(self, text: str) -> bool:
        said = content_words(text)
        return bool(said) and not (said & self.user) and bool(said & self.assistant)
