"""Detects secrets so they are never stored: API keys, tokens, passwords, card numbers."""

from __future__ import annotations

import re

_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("API key", re.compile(r"\b(?:sk|pk|rk)-(?:[A-Za-z0-9_-]{2,}-)?[A-Za-z0-9_-]{16,}")),
    ("API key", re.compile(r"\bAKIA[0-9A-Z]{16}\b")),
    ("API key", re.compile(r"\bAIza[0-9A-Za-z_-]{35}\b")),
    (
        "access token",
        re.compile(r"\b(?:ghp|gho|ghu|ghs|ghr|github_pat|glpat|xox[abprs])[-_][A-Za-z0-9_-]{10,}"),
    ),
    ("JSON web token", re.compile(r"\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}")),
    ("private key", re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----")),
    ("bearer token", re.compile(r"\bbearer\s+[A-Za-z0-9._~+/=-]{20,}", re.IGNORECASE)),
    (
        "password",
        re.compile(
            r"\b(?:password|passwd|passcode|pwd|pin|secret|api[ _-]?key|token)\b\s*(?:is|=|:)\s*\S{4,}",
            re.IGNORECASE,
        ),
    ),
)
_CARD = re.compile(r"\b(?:\d[ -]?){13,19}\b")


def _luhn_ok(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 1:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def find_secret(text: str) -> str | None:
    """Return what kind of secret ``text`` contains, or ``None`` when it looks clean."""
    for kind, pattern in _PATTERNS:
        if pattern.search(text):
            return kind
    for match in _CARD.finditer(text):
        digits = re.sub(r"\D", "", match.group())
        if 13 <= len(digits) <= 19 and _luhn_ok(digits):
            return "card number"
    return None


def redact(text: str) -> str:
    """``text`` with every detected secret replaced by ``[redacted]`` (for keeping failed inputs)."""
    for _kind, pattern in _PATTERNS:
        text = pattern.sub("[redacted]", text)
    return _CARD.sub(lambda m: "[redacted]" if _luhn_ok(re.sub(r"\D", "", m.group())) else m.group(), text)
