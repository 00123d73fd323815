"""The checks every piece of input text and JSON data passes before it is stored or sent to a model.

Refused, with an :class:`~agentmem.InvalidInputError`, on every backend alike:

- a lone surrogate (``"\\ud800"``): not valid Unicode, no database can store it;
- a control character other than tab, newline and carriage return (``\\x00``-``\\x1f``, DEL and the
  C1 controls ``\\x7f``-``\\x9f``): PostgreSQL text cannot hold NUL, and the others are terminal
  escapes (``\\x1b``, ``\\x9b``) and garbage no memory needs;
- data nested deeper than ``MAX_DEPTH`` lists and objects: JSON encoders recurse.

Nothing is cleaned silently: what the caller gave is stored as given, or refused. Text a model wrote
(a reply, a summary) is not the caller's to fix, so :func:`cleaned_text` repairs it instead.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from .errors import InvalidInputError

MAX_DEPTH = 32
"""The most lists and objects nested in one another, in message extras, item values and imports."""

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
_UNSTORABLE = re.compile(f"{_CONTROL.pattern}|[\ud800-\udfff]")  # what cleaned_text repairs


def text_problem(value: str) -> str | None:
    """What is wrong with ``value`` as stored text, or ``None``."""
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as exc:
            return f"contains a lone surrogate (U+{ord(value[exc.start]):04X}), which is not valid Unicode"
    found = _CONTROL.search(value)
    if found:
        return f"contains the control character U+{ord(found.group()):04X}; only tab and newlines are kept"
    return None


def checked_text(value: str, where: str) -> str:
    """``value`` when it is storable text (see the module docstring); else InvalidInputError."""
    problem = text_problem(value)
    if problem:
        raise InvalidInputError(f"{where} {problem}")
    return value


def cleaned_text(value: str) -> str:
    """Model-written text made storable: lone surrogates become U+FFFD, refused controls are dropped."""
    return _UNSTORABLE.sub(lambda found: "\ufffd" if found.group() >= "\ud800" else "", value)


def checked_json(value: Any, where: str, *, max_depth: int = MAX_DEPTH) -> Any:
    """``value`` when every string in it (object keys too) is storable text, every float is finite and
    it nests at most ``max_depth`` lists and objects deep; else InvalidInputError. Other types pass
    unchanged."""
    _check_json(value, where, max_depth)
    return value


def _check_json(value: Any, where: str, depth_left: int) -> None:
    if isinstance(value, str):
        checked_text(value, where)
    elif isinstance(value, float) and not math.isfinite(value):
        # JSON has no NaN or Infinity: PostgreSQL refuses them, SQLite would keep a null instead.
        raise InvalidInputError(f"{where} holds {value!r}; only finite numbers can be stored")
    elif isinstance(value, Mapping | list | tuple):
        if depth_left <= 0:
            raise InvalidInputError(f"{where} nests more than {MAX_DEPTH} lists or objects deep")
        if isinstance(value, Mapping):
            for key, item in value.items():
                if isinstance(key, str):
                    checked_text(key, f"{where} (a key)")
                _check_json(item, f"{where}.{key}", depth_left - 1)
        else:
            for item in value:
                _check_json(item, where, depth_left - 1)


def checked_time(value: object, where: str) -> datetime:
    """``value`` when it is a timezone-aware datetime that UTC can hold (``9999-12-31T23:59:59-14:00``
    cannot: it is past the year 9999 in UTC); else InvalidInputError."""
    if not isinstance(value, datetime) or value.utcoffset() is None:
        raise InvalidInputError(f"{where} must be a timezone-aware datetime, got {value!r}")
    try:
        value.astimezone(UTC)
    except OverflowError:
        raise InvalidInputError(f"{where} {value.isoformat()} is out of range in UTC") from None
    return value
