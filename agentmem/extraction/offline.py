"""The offline extractor: deterministic patterns for explicit English statements, no model.

It reads only the user's turns (the assistant turn names what feedback is about) and extracts only
what a sentence states outright: when a sentence matches no pattern, nothing is extracted from it.
Its output has the same shape as a model's and goes through the same validation and merge path.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from .turns import Turn

_NAME = r"([A-Z][a-zà-ÿ'-]+(?: [A-Z][a-zà-ÿ'-]+)?)"
_PLACE = r"([A-Z][\w'-]+(?:[ ,]+(?:[A-Z][\w'-]+))*)"
_ORG = r"([A-Z][\w&.'-]*(?: [A-Z][\w&.'-]*)*)"
_ROLE_WORD = re.compile(
    r"(?:er|or|ist|ian|ant|ent|eer|ect|ee)$|^(?:student|nurse|chef|intern|ceo|cto|cfo|coo|founder|lead|head|"
    r"pm|dev|teacher|doctor|lawyer|analyst|consultant|architect|professor|pilot|artist|writer|editor)$"
)
_NOT_ROLES = {
    "mother", "father", "brother", "sister", "daughter", "son", "partner", "member", "user", "customer",
    "beginner", "fan", "lover", "believer", "follower", "number", "owner", "parent", "person", "bit", "ever",
    "newcomer", "learner", "other", "reader", "viewer", "listener", "subscriber", "winner", "loser", "gamer",
}  # fmt: skip
_NOT_NAMES = {
    "Not", "Sorry", "Just", "Also", "Still", "So", "Here", "Back", "Sure", "Fine", "Good", "Great", "Happy",
    "Looking", "Working", "Trying", "Going", "Done", "Glad", "Ready", "Afraid", "Currently", "Really",
    # nationalities and languages read like names after "I'm"
    "American", "Australian", "Brazilian", "British", "Canadian", "Chinese", "Danish", "Dutch", "English",
    "Finnish", "French", "German", "Greek", "Indian", "Irish", "Italian", "Japanese", "Korean", "Mexican",
    "Norwegian", "Polish", "Portuguese", "Russian", "Scottish", "Spanish", "Swedish", "Swiss", "Thai",
    "Turkish", "Ukrainian", "Vietnamese", "Welsh",
}  # fmt: skip
_LANGUAGE = r"([A-Z][a-z]+(?:(?:,| and| or|, and) [A-Z][a-z]+)*)"

_CONCISE = re.compile(
    r"\b(?:keep (?:your |the )?(?:answers?|responses?|replies|it) (?:short|brief|concise)|"
    r"be (?:brief|concise)|(?:short|brief|concise) (?:answers?|responses?|replies) please|"
    r"I prefer (?:short|brief|concise) "
    r"(?:answers?|responses?|replies))\b",
    re.IGNORECASE,
)
_DETAILED = re.compile(
    r"\b(?:I prefer|I like|give me) (?:detailed|long|thorough|in-depth) "
    r"(?:answers?|responses?|explanations?)\b",
    re.IGNORECASE,
)
_ANSWER_IN = re.compile(r"\b(?i:answer|respond|reply|write|talk) (?i:to me )?in ([A-Z][a-z]+)\b")
_RULE = re.compile(r"^(?:please |and |also )*((?:always|never|don't|do not) [^.!?]{3,120})", re.IGNORECASE)
_PREFER_OVER = re.compile(r"\bI prefer ([^.!?]{2,60}?) (?:over|to|rather than) ([^.!?]{2,60})", re.IGNORECASE)

_POSITIVE = re.compile(
    r"^(?:that|this|it|your (?:last )?answer)(?: was| is|'s)? (?:perfect|great|very helpful|really helpful|"
    r"helpful|exactly what I needed|spot on|super useful|useful)\b|^that helped\b",
    re.IGNORECASE,
)
_NEGATIVE = re.compile(
    r"^(?:that|this|it|your (?:last )?answer)(?: was| is|'s)? (?:not helpful|unhelpful|wrong|confusing|"
    r"too long|too short|too technical|useless)\b|"
    r"^(?:that|this|it) (?:didn't|did not|doesn't|does not) help\b",
    re.IGNORECASE,
)


def _sentences(text: str) -> list[str]:
    return [s.strip(" \t\"'") for s in re.split(r"(?<=[.!?;])\s+|\n+", text) if s.strip()]


def _clean(phrase: str) -> str:
    return re.sub(r"\s+", " ", phrase).strip(" ,.;:!?")


def _role(phrase: str) -> str | None:
    words = phrase.split()
    if not words or len(words) > 4:
        return None
    last = words[-1].lower()
    if last in _NOT_ROLES or words[0].lower() in _NOT_ROLES or not _ROLE_WORD.search(last):
        return None
    return _clean(phrase)


def _profile(sentence: str, out: dict[str, Any]) -> None:
    name = re.search(
        rf"\b(?i:my name is|my name's|call me|I'm|I am|this is)\s+{_NAME}(?=$|[\s,.!;])", sentence
    )
    if name and name.group(1).split()[0] not in _NOT_NAMES:
        lead = sentence[: name.start()].strip().lower()
        if not lead or lead.endswith(("hi", "hello", "hey", ",")) or lead in ("so", "well", "oh"):
            out["name"] = name.group(1)
    role = re.search(
        r"\b(?:I work as|I'm|I am)(?: [A-Z][a-z]+,)? an? ([a-zA-Z -]{2,40}?)"
        r"(?= at | for | in |,|\.|!|;| and |$)",
        sentence,
    )
    if role and (found := _role(role.group(1))):
        out["role"] = found
    company = re.search(
        rf"\b(?:I work|I'm working|I am working|I'm|I am)\b[^.!?]*? (?:at|for) {_ORG}", sentence
    )
    if company and (out.get("role") or re.search(r"\bI(?:'m| am)? work", sentence)):
        out["company"] = _clean(company.group(1))
    place = re.search(
        rf"\b(?:I live in|I'm based in|I am based in|I moved to|I've moved to) {_PLACE}", sentence
    )
    if place:
        out["location"] = _clean(place.group(1))
    spoken = re.search(rf"\bI speak (?:fluent |some |a little )?{_LANGUAGE}", sentence)
    if spoken:
        out.setdefault("languages", []).extend(re.split(r",? and |,? or |, ", spoken.group(1)))


def _policies(sentence: str, out: dict[str, Any]) -> None:
    if _CONCISE.search(sentence):
        out["response_style"] = "concise"
    elif _DETAILED.search(sentence):
        out["response_style"] = "detailed"
    language = _ANSWER_IN.search(sentence)
    if language:
        out["language"] = language.group(1)
    rule = _RULE.search(sentence)
    if rule:
        text = _clean(rule.group(1))
        out.setdefault("rules", []).append(text[0].lower() + text[1:])
    prefer = _PREFER_OVER.search(sentence)
    if prefer and not _CONCISE.search(sentence) and not _DETAILED.search(sentence):
        out.setdefault("rules", []).append(f"prefer {_clean(prefer.group(1))} over {_clean(prefer.group(2))}")


def _knowledge(sentence: str) -> str | None:
    patterns = [
        (
            r"\bI(?:'m| am) (?:currently )?"
            r"(working on|building|writing|learning|studying|planning) (.{3,160})",
            "Is",
        ),
        (r"\bmy goal is to (.{3,160})", "Goal: to"),
        (r"\bmy goal is (.{3,160})", "Goal:"),
    ]
    for pattern, lead in patterns:
        match = re.search(pattern, sentence, re.IGNORECASE)
        if match:
            return f"{lead} {' '.join(_clean(g) for g in match.groups())}"
    return None


def _about(context: str | None) -> str | None:
    if not context:
        return None
    first = _sentences(context)[0] if _sentences(context) else context
    return first[:80].rstrip(" ,.:;") or None


def extract_offline(turns: Sequence[Turn]) -> dict[str, Any]:
    """Explicit statements in the user's turns, shaped like the extraction output."""
    profile: dict[str, Any] = {}
    policies: dict[str, Any] = {}
    knowledge: list[dict[str, Any]] = []
    feedback: list[dict[str, Any]] = []
    context: str | None = None
    for turn in turns:
        if turn["role"] == "assistant":
            context = turn["content"]
            continue
        for sentence in _sentences(turn["content"]):
            _profile(sentence, profile)
            _policies(sentence, policies)
            fact = _knowledge(sentence)
            if fact:
                knowledge.append({"text": fact})
            for sentiment, pattern in (("positive", _POSITIVE), ("negative", _NEGATIVE)):
                if pattern.search(sentence):
                    feedback.append(
                        {"text": _clean(sentence), "sentiment": sentiment, "target": _about(context)}
                    )
    return {
        "profile": profile or None,
        "policies": {"set": policies, "remove": []} if policies else None,
        "knowledge": knowledge,
        "feedback": feedback,
    }
