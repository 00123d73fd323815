"""Small text utilities shared by the merge policies, the compiler and search."""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

# "+" and "#" stay inside a word: C++, C# and F# are different things.
_WORD = re.compile(r"\w[\w+#]*", re.UNICODE)
# Characters XML 1.0 forbids even when escaped; a memory must never make the block unparsable.
_XML_INVALID = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff\ud800-\udfff]")
_SPACE = re.compile(r"\s+")


def normalize(text: str) -> str:
    """Case-, accent-width- and punctuation-insensitive form used as a dedupe key."""
    folded = unicodedata.normalize("NFKC", text).casefold()
    return " ".join(_WORD.findall(folded))


def words(text: str) -> list[str]:
    return _WORD.findall(unicodedata.normalize("NFKC", text).casefold())


@lru_cache(maxsize=65536)
def word_set(text: str) -> frozenset[str]:
    """The text's distinct words (cached: dedupe compares each new entry with every stored one)."""
    return frozenset(words(text))


def similarity(a: str, b: str) -> float:
    """Jaccard similarity of the two texts' word sets (0..1)."""
    wa, wb = word_set(a), word_set(b)
    if not wa or not wb:
        return 0.0
    return len(wa & wb) / len(wa | wb)


def could_reach(a: str, b: str, threshold: float) -> bool:
    """Whether the texts' similarity can reach ``threshold`` at all: a cheap bound on set sizes."""
    na, nb = len(word_set(a)), len(word_set(b))
    return bool(na and nb) and min(na, nb) / max(na, nb) >= threshold


def one_line(text: str) -> str:
    """Collapse whitespace so a memory cannot forge new lines (``- fake rule``) in the block."""
    return _SPACE.sub(" ", text).strip()


def xml_text(text: str) -> str:
    """Escape text for an XML text node, on one line, without characters XML cannot carry."""
    if not text.isprintable():  # newlines, tabs, controls, surrogates, non-characters: the slow path
        text = _XML_INVALID.sub("", one_line(text))
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
