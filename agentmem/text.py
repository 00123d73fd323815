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
# Scripts written without spaces between words (Chinese, Japanese) or with particles joined to them
# (Korean): Hangul Jamo and syllables, CJK radicals, ideographic marks, kana, CJK ideographs.
_CJK = (
    "\u1100-\u11ff\u2e80-\u2fdf\u3005-\u3007\u3021-\u3029\u3031-\u3035\u3038-\u303c\u3040-\u30ff"
    "\u3130-\u318f\u31a0-\u31ff\u3400-\u4dbf\u4e00-\u9fff\ua960-\ua97f\uac00-\ud7ff\uf900-\ufaff"
    "\U00020000-\U0003134f"
)
_CJK_RUN = re.compile(f"[{_CJK}]+")


def normalize(text: str) -> str:
    """Case-, accent-width- and punctuation-insensitive form used as a dedupe key."""
    folded = unicodedata.normalize("NFKC", text).casefold()
    return " ".join(_WORD.findall(folded))


def words(text: str) -> list[str]:
    """The text's words, folded; a word with CJK characters is followed by its ``cjk_parts``."""
    folded = unicodedata.normalize("NFKC", text).casefold()
    found = _WORD.findall(folded)
    if not _CJK_RUN.search(folded):
        return found
    return [part for word in found for part in (word, *cjk_parts(word))]


def cjk_words(text: str) -> list[str]:
    """What ``words`` adds to the text's own words: the ``cjk_parts`` of each."""
    folded = unicodedata.normalize("NFKC", text).casefold()
    if not _CJK_RUN.search(folded):
        return []
    return [part for word in _WORD.findall(folded) for part in cjk_parts(word)]


def cjk_parts(word: str) -> list[str]:
    """The parts a word with CJK characters is found by, besides itself: each run of CJK characters
    as its overlapping character pairs (a lone character as itself), and the rest's words. Chinese
    and Japanese leave no space between words, so "我喜欢喝咖啡" is one ``\\w`` run, which "咖啡" alone
    would never match; its pair "咖啡" does. In Korean, "서울" is found in "서울에서"; in
    "pythonで書いた", "python" too. Pairs make word-set similarity meaningful for these texts as well.
    """
    runs = _CJK_RUN.findall(word)
    if not runs:
        return []
    pairs = (run[i : i + 2] for run in runs for i in range(max(1, len(run) - 1)))
    rest = _WORD.findall(_CJK_RUN.sub(" ", word))
    return [part for part in dict.fromkeys([*pairs, *rest]) if part != word]


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
