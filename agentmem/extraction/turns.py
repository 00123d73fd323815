"""What ``learn`` reads of a conversation, and the salience gate that can skip the model call.

Input: the user's turns, plus one assistant turn as context (the one the user last reacted to).
System and tool messages never reach extraction. The gate is a cheap, conservative local check: it
skips only turns that are plainly acknowledgements, thanks, greetings or farewells, or bare questions or
requests for help that say nothing about the user; anything else (a fact, preference, plan, rule, or a
reaction to an answer, which is feedback) goes to the model.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from ..errors import InvalidInputError
from ..validation import checked_text
from .wordlists import HUMAN_LANGUAGES

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


# An acknowledgement, thanks, greeting or farewell: a run of such phrases ("ok great", "great, thanks",
# "bye for now"), at least one of them a core phrase. A mild word alone ("great") is a reaction to the
# answer, i.e. feedback, and goes to the model; so does anything after the run ("thanks - I prefer ...").
_CORE_ACK = (
    r"(?:ok(?:ay)?|k|kk|(?:many )?(?:thanks?|thank you)(?: (?:so|very) much| a (?:lot|bunch|ton))?"
    r"(?:[\s,.!\u2014-]+(?:that|this) helps)?|thx|ty|cheers|much appreciated|appreciate it|"
    r"got it|sure|yes|yeah|yep|no|nope|no (?:worries|problem)|hi|hello|hey|bye|goodbye|"
    r"good (?:morning|afternoon|evening|night)|lol|hmm+|alright|see you(?: (?:later|soon|tomorrow))?|"
    r"will do|sounds good|understood|noted|good to know|(?:that |it )?makes sense|"
    r"that['\u2019]?s (?:all|it for (?:now|today|tonight))|take care|talk (?:to you )?(?:later|soon)|"
    r"have a (?:good|nice|great) (?:day|evening|night|weekend))"
)
_MILD_ACK = r"(?:cool|great|nice|awesome|fine)"
_ACK_TAIL = r"(?:[\s,]+(?:there|again|then|now|for (?:now|today|tonight)|all|everyone))?"
_ACKNOWLEDGEMENT = re.compile(
    rf"^(?:{_MILD_ACK}[\s,!.]+)*{_CORE_ACK}{_ACK_TAIL}(?:[\s,!.]+(?:{_CORE_ACK}|{_MILD_ACK}){_ACK_TAIL})*"
    r"[\s!.?\u2026:)]*$",
    re.IGNORECASE,
)
# Anything hinting at the user themselves, a rule, or a reaction keeps a question or a request in.
_ABOUT_USER = re.compile(
    r"\b(?:i|i'm|im|i've|i'd|i'll|me|my|mine|myself|we|we're|our|us|always|never|prefer|please|don't|"
    r"stop|helpful|perfect|wrong|useless|too)\b",
    re.IGNORECASE,
)
# A request for help: an opening such as "can you show me", "please explain", "give me", then a verb that
# asks for content, not for a way of answering ("answer", "reply", "use", "keep" are left to the model).
_REQUEST = re.compile(
    r"^(?:(?:hi|hey|hello|ok(?:ay)?|so|also|and)[\s,]+)?(?:(?:can|could|would|will) you\s+(?:please\s+)?|"
    r"please\s+|pls\s+)?(?:explain|show|give|tell|list|describe|define|compare|summari[sz]e|translate|write|"
    r"draft|generate|create|suggest|recommend|find|calculate|compute|convert|outline|walk|help|name)"
    r"(?:\s+me\b)?(?P<rest>[^.!?;]*)[.!?\s]*$",
    re.IGNORECASE,
)
# Words that make a question or request a standing rule ("can you answer in Spanish from now on?") or a
# reaction to an earlier answer ("explain it again, more simply").
_RULE_OR_REACTION = re.compile(
    r"\b(?:from now on|going forward|in (?:the )?future|every time|each time|next time|by default|"
    r"instead|again|anymore|any more|better|more|less|shorter|longer|simpler|answers?|responses?|"
    r"repl(?:y|ies)|tone|style|format|use|using|speak|language|not|didn't|doesn't|isn't|wasn't|before|"
    r"earlier|last time|remember)\b",
    re.IGNORECASE,
)
# A request whose object starts with one of these asks for a manner, not for content.
_MANNER = re.compile(
    r"\s*(?:in|with|without|like|as|using|only|always|briefly|formally|casually)\b", re.IGNORECASE
)
MAX_SKIPPABLE_CHARS = 300  # a longer turn goes to the model whatever it looks like


def _is_impersonal_question(text: str) -> bool:
    return text.endswith("?") and not _ABOUT_USER.search(text) and not _RULE_OR_REACTION.search(text)


def _is_impersonal_request(text: str) -> bool:
    request = _REQUEST.match(text)
    if request is None:
        return False
    rest = request["rest"]
    if _MANNER.match(rest) or any(word in HUMAN_LANGUAGES for word in rest.lower().split()):
        return False  # "write in Spanish", "explain like a teacher": a way of answering, maybe a rule
    return not _ABOUT_USER.search(rest) and not _RULE_OR_REACTION.search(rest)


def salience(turns: Sequence[Turn]) -> str | None:
    """Why the model call can be skipped, or ``None`` when the turn may hold something to learn.

    Every user turn must be skippable for the same reason; a mix is left to the model."""
    said = [t["content"].strip() for t in turns if t["role"] == "user"]
    if not said:
        return "no user message"
    if any(len(text) >= MAX_SKIPPABLE_CHARS for text in said):
        return None
    if all(_ACKNOWLEDGEMENT.match(text) for text in said):
        return "acknowledgement or greeting only"
    if all(_is_impersonal_question(text) for text in said):
        return "a question that says nothing about the user"
    if all(_is_impersonal_request(text) for text in said):
        return "a request for help that says nothing about the user"
    return None
