"""What ``learn`` reads of a conversation, and the salience gate that can skip the model call.

Input: the user's turns, plus one assistant turn as context (the one the user last reacted to).
System and tool messages never reach extraction. The gate is a cheap, conservative local check: it
skips only turns that are plainly acknowledgements or greetings, or bare questions that say nothing
about the user; anything else goes to the model.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from ..errors import InvalidInputError
from ..validation import checked_text

MAX_USER_CHARS = 24_000  # most recent user text kept; older turns drop first
MAX_CONTEXT_CHARS = 2_000  # of the assistant turn given as context

Turn = dict[str, str]


def message_text(content: Any, where: str) -> str:
    """A message's content as text: a str as is, the text parts of a content-part list; refused when
    it holds text no store keeps (see agentmem.validation)."""
    if isinstance(content, str):
        return checked_text(content, where)
    if isinstance(content, list):  # OpenAI content parts: keep the text ones (images and audio are skipped)
        texts = []
        for i, part in enumerate(content):
            if not isinstance(part, Mapping) or not isinstance(part.get("type"), str):
                raise InvalidInputError(f"{where}: content[{i}] must be a content part with a 'type'")
            if part["type"] == "text":
                if not isinstance(part.get("text"), str):
                    raise InvalidInputError(f"{where}: content[{i}] is a text part without a str 'text'")
                texts.append(part["text"])
        return checked_text("\n".join(texts), where)
    if content is None:
        return ""
    raise InvalidInputError(f"{where}: content must be a str or a list of content parts")


def select_turns(messages: object) -> list[Turn]:
    """Validate ``messages`` (OpenAI-style dicts) and keep what extraction may read, in order."""
    if isinstance(messages, (str, bytes)) or not isinstance(messages, Sequence):
        raise InvalidInputError("messages must be a list of {'role': ..., 'content': ...} dicts")
    turns: list[Turn] = []
    for i, message in enumerate(messages):
        if not isinstance(message, Mapping) or not isinstance(message.get("role"), str):
            raise InvalidInputError(f"messages[{i}] must be a dict with a 'role' and 'content'")
        if message["role"] in ("user", "assistant"):
            text = message_text(message.get("content"), f"messages[{i}]").strip()
            if text:
                turns.append({"role": message["role"], "content": text})
    last_user = max((i for i, t in enumerate(turns) if t["role"] == "user"), default=None)
    if last_user is None:
        return []
    before = [i for i, t in enumerate(turns[:last_user]) if t["role"] == "assistant"]
    after = [i for i, t in enumerate(turns) if t["role"] == "assistant"]
    context = before[-1] if before else (after[-1] if after else None)
    kept: list[Turn] = []
    budget = MAX_USER_CHARS
    for i in range(len(turns) - 1, -1, -1):
        turn = turns[i]
        if turn["role"] == "assistant":
            if i == context:
                kept.append({"role": "assistant", "content": turn["content"][:MAX_CONTEXT_CHARS]})
        elif budget > 0:
            kept.append({"role": "user", "content": turn["content"][-budget:]})
            budget -= len(turn["content"])
    return kept[::-1]


_ACKNOWLEDGEMENT = re.compile(
    r"^(?:ok(?:ay)?|k|kk|thanks?(?: you)?(?: (?:so|very) much)?|thx|ty|cheers|cool|got it|sure|yes|yeah|yep|"
    r"no|nope|hi|hello|hey|bye|goodbye|good (?:morning|afternoon|evening|night)|lol|hmm+|alright|"
    r"see you|will do|sounds good|understood|noted)(?:[\s,]+(?:there|again|then|now))?[\s!.?…:)]*$",
    re.IGNORECASE,
)
# Anything hinting at the user themselves, a rule, or a reaction keeps a question in.
_ABOUT_USER = re.compile(
    r"\b(?:i|i'm|im|i've|i'd|i'll|me|my|mine|myself|we|we're|our|us|always|never|prefer|please|don't|"
    r"stop|helpful|perfect|wrong|useless|too)\b",
    re.IGNORECASE,
)


def salience(turns: Sequence[Turn]) -> str | None:
    """Why the model call can be skipped, or ``None`` when the turn may hold something to learn."""
    said = [t["content"].strip() for t in turns if t["role"] == "user"]
    if not said:
        return "no user message"
    if all(_ACKNOWLEDGEMENT.match(text) for text in said):
        return "acknowledgement or greeting only"
    if all(text.endswith("?") and not _ABOUT_USER.search(text) and len(text) < 300 for text in said):
        return "a question that says nothing about the user"
    return None
