"""Whether two similar texts say the same thing: the meaning guard of collection dedupe.

Word-set similarity is blind to order and to small words: "Moved from Paris to Berlin" and "Moved from
Berlin to Paris" have the same words, and in a long sentence one "not" barely moves the score. Two texts
that pass the similarity gate still fold only when

- every word only one of them has is a light word (an article, a filler like "also"): a negation, a
  number, a date, a name or any other content word on one side only makes it another fact;
- each relation word (from, to, than, over, not, doesn't ...) is followed by the same word: "from
  Paris to Berlin" is not "from Berlin to Paris", though "to Berlin from Paris" is;
- their other anchors (numbers, and words capitalised past the first) come in the same order: "Alice
  manages Bob" is not "Bob manages Alice", nor "3 cats and 2 dogs" "2 cats and 3 dogs". (So "Python
  and Go" does not fold into "Go and Python": a missed fold, the safe side.)
- their remaining words differ at most by one phrase moved as a whole ("On Mondays works from home"):
  two words trading places, "loves jazz and hates rock" / "loves rock and hates jazz", is another fact.

Refusing is the safe side: a missed fold leaves two items that say the same, a wrong fold loses a fact.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from functools import lru_cache

# Apostrophes stay inside a word ("doesn't", "O'Brien"); "+" and "#" too, as in text.py (C++, C#).
_WORD = re.compile(r"\w[\w+#']*")


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


LIGHT = _words("a an the also really just currently still")
"""Words whose presence changes no fact: "Also uses the Vim editor" says "Uses Vim editor"."""

RELATIONS = _words(
    """
    from to into onto toward towards over than before after until till since instead rather vs versus
    above below under beyond except without unlike not no never nor neither
    """
)
"""Words that relate what follows them to the rest: the word after each must match."""


@lru_cache(maxsize=16384)
def _tokens(text: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The text's words (folded) and its anchors (folded, in order); cached like ``text.word_set``."""
    raw = _WORD.findall(unicodedata.normalize("NFKC", text).replace("’", "'"))
    folded = tuple(w.casefold() for w in raw)
    anchors = tuple(
        f for i, (w, f) in enumerate(zip(raw, folded, strict=True)) if f not in LIGHT and _anchor(w, i)
    )
    return folded, anchors


def _anchor(word: str, position: int) -> bool:
    """A number anywhere, or a capitalised word that is not the text's first (sentence case)."""
    return any(c.isdigit() for c in word) or (position > 0 and not word.islower())


def _relations(words: tuple[str, ...]) -> Counter[tuple[str, str]]:
    """Each relation word (or negated verb, "doesn't") with the first content word after it that is
    no relation word itself ("not to peanuts": peanuts)."""
    content = [w for w in words if w not in LIGHT]
    related = Counter[tuple[str, str]]()
    for i, word in enumerate(content):
        if _relation(word):
            after = (w for w in content[i + 1 :] if not _relation(w))
            related[word, next(after, "")] += 1
    return related


def _relation(word: str) -> bool:
    return word in RELATIONS or word.endswith("n't")


def same_meaning(a: str, b: str) -> bool:
    """Whether ``a`` and ``b``, already similar in words, say the same thing (symmetric)."""
    words_a, anchors_a = _tokens(a)
    words_b, anchors_b = _tokens(b)
    if not (set(words_a) ^ set(words_b)) <= LIGHT:
        return False
    relations_a, relations_b = _relations(words_a), _relations(words_b)
    if relations_a != relations_b:
        return False
    # Anchors of either side (a word capitalised in one text only still counts), except those a
    # relation already places: "to Berlin from Paris" is "from Paris to Berlin".
    placed = {after for _, after in relations_a}
    names = (set(anchors_a) | set(anchors_b)) - placed
    if [w for w in words_a if w in names] != [w for w in words_b if w in names]:
        return False
    return _one_phrase_moved(_plain(words_a, placed), _plain(words_b, placed))


def _plain(words: tuple[str, ...], placed: set[str]) -> list[str]:
    """The words no other check orders: neither light, nor a relation, nor placed by one."""
    return [w for w in words if w not in LIGHT and w not in placed and not _relation(w)]


def _one_phrase_moved(a: list[str], b: list[str]) -> bool:
    """Whether ``b`` is ``a``, or ``a`` with one run of words moved elsewhere. Past their common start
    and end, such a move leaves ``b`` a rotation of ``a``; a swap of two words leaves none."""
    if len(a) != len(b):
        return False
    start = 0
    while start < len(a) and a[start] == b[start]:
        start += 1
    end = len(a)
    while end > start and a[end - 1] == b[end - 1]:
        end -= 1
    middle_a, middle_b = a[start:end], b[start:end]
    return not middle_a or any(middle_a[i:] + middle_a[:i] == middle_b for i in range(len(middle_a)))
