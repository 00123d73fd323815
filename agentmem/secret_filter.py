"""The one secret detector every write path goes through: API keys, tokens, passwords, private keys,
URLs with credentials and card numbers.

The formats Yelp's ``detect-secrets`` knows come from its plugins' regexes (AWS, Azure storage, GitHub,
GitLab, Slack, Discord, Telegram, Twilio, Stripe, SendGrid, Mailchimp, PyPI, Square, JWTs, ...); it
is imported on the first write that needs it, so ``import agentmem`` and ``compile()`` never pay for it,
and a cheap screen spares ordinary chat turns its scans. Our own
rules cover what it does not: newer AI-provider keys, whole PEM blocks, credentials in prose or config
("the password for the VPN is ...", ``DB_PASSWORD=...``), card numbers (Luhn-checked) and more.

What each write path does with a secret:

- **refused** (``SecretError``, nothing written) where the value is the point of the write: manual
  writes and memory tools (``layers.schema.check_value``), and every string of an ``import_user``
  document other than message text (items, events, ids, keys and metadata, dict keys included).
- **dropped** where a model wrote it: an extracted item that contains a secret is not stored.
- **redacted** (``[redacted]`` in its place) where the text is a record of what was said: stored
  messages and their ``tool_calls``/``tool_call_id``/``name``, session summaries (model-written and
  offline), pending extractions' input and error (also cut short), and what ``learn`` sends to the
  model.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import cache
from typing import Any

REDACTED = "[redacted]"
Span = tuple[int, int]


@dataclass(frozen=True)
class _Rule:
    kind: str
    pattern: re.Pattern[str]
    span: Callable[[re.Match[str]], Span | None] = re.Match.span
    """Where the secret is in a match; ``None`` when a closer look finds none (Luhn, a plain word)."""


def _luhn_ok(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 1:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def _card(match: re.Match[str]) -> Span | None:
    digits = re.sub(r"\D", "", match.group())
    return match.span() if 13 <= len(digits) <= 19 and _luhn_ok(digits) else None


# ---- credentials named in prose or config: "the password for the VPN is ...", DB_PASSWORD=... ------

_KEYWORD = (
    r"pass(?:word|wd|phrase|code)|pwd|pw|pin|credentials?|token|key|"
    r"secret(?:[ _-]?(?:access[ _-]?)?key)?|(?:api|access|private)[ _-]?key|"
    r"(?:access|auth|refresh|bearer)[ _-]?token|client[ _-]?secret"
)
_NAMED = re.compile(
    rf"(?<![a-z0-9])(?P<key>{_KEYWORD})(?![\w-])[\"']?"  # also DB_PASSWORD, "api_key"
    r"(?:\s+(?:for|of|to|on|at)(?:\s+[^\s=:]+){1,5}?)?"  # ... for the VPN
    r"(?:\s+(?:is|was)(?:\s+(?:set\s+to|now|still|just))?\s*:?|\s*(?P<assign>:=|=>|=)|\s*:)"
    r"""\s*(?P<value>"[^"\s]{4,}"|'[^'\s]{4,}'|`[^`\s]{4,}`|[^\s"'`]{4,})""",
    re.IGNORECASE,
)
_DIGITS_ONLY_KEYS = ("pin", "passcode")
# In prose ("is", ":"), a value ends its clause: "The secret is Python3 and patience" names no password.
_CLAUSE_END = re.compile(
    r"\s*(?:$|[\n.,;:!?()\]}\"`]|'(?!\w)|\s(?:but|so|because|since|until|please|thanks|if|when|which)\b)"
)
_SYMBOLS = set("!@#$%^&*+=?~|\\")
_PASSPHRASE = re.compile(r"[a-z]{3,}(?:[-_][a-z]{3,}){2,}")  # correct-horse-battery
# Words and numbers joined by hyphens: "COVID-19", "ERC-20", "72h-fermentation". Named in prose as a
# "secret" or "token" they are ordinary; named as a password they still count.
_HYPHENATED = re.compile(r"(?:[A-Za-z]+|\d+[a-z]{0,2})(?:-(?:[A-Za-z]+|\d+[a-z]{0,2}))+")


def _looks_like_credential(value: str, key: str, quoted: bool, prose: bool) -> bool:
    """Whether a value named as a password/token/secret is one, not an ordinary word ("The secret is
    love"), a placeholder (``<your key>``, ``${TOKEN}``) or a redaction."""
    if value[0] in "<[{$%(" or value.lower().startswith("your") or not any(c.isalnum() for c in value):
        return False
    key = key.lower()
    if key == "key" and len(value) < 20:  # "the key is 42", "the key to it is Python3": a bare "key" is
        return False  # a credential only when its value is key-length
    if prose and not key.startswith("p") and _HYPHENATED.fullmatch(value):
        return False
    letters, digits = any(c.isalpha() for c in value), any(c.isdigit() for c in value)
    if key in _DIGITS_ONLY_KEYS and value.isdigit():
        return True
    if len(value) < (4 if quoted else 6):  # quotes mark a value as deliberate: a shorter one counts
        return False
    mixed_case = any(c.isupper() for c in value[1:]) and any(c.islower() for c in value)
    return (
        (letters and digits)
        or (value.isdigit() and len(value) >= 8)
        or (letters and any(c in _SYMBOLS for c in value))
        or (mixed_case and len(value) >= 16)
        or (key.startswith("pass") and _PASSPHRASE.fullmatch(value) is not None)
    )


def _named(match: re.Match[str]) -> Span | None:
    value, start = match["value"], match.start("value")
    quoted = value[0] in "\"'`"
    if quoted:
        value, start = value[1:-1], start + 1
    else:
        value = value.rstrip(".,;:!?)]}>")
    prose = not (quoted or match["assign"])
    if not value or not _looks_like_credential(value, match["key"], quoted, prose):
        return None
    if not (quoted or match["assign"] or _CLAUSE_END.match(match.string, start + len(value))):
        return None
    return start, start + len(value)  # the value only: "the password is [redacted]" keeps its sense


def _rule(kind: str, pattern: str, flags: int = 0) -> _Rule:
    return _Rule(kind, re.compile(pattern, flags))


_PEM = r"-----BEGIN[ A-Z0-9]*PRIVATE KEY(?: BLOCK)?-----"
_OWN: tuple[_Rule, ...] = (
    # The whole block, BEGIN to END (or to the end of a truncated text); \n may be escaped, as in JSON.
    _rule("private key", rf"{_PEM}.*?(?:{_PEM.replace('BEGIN', 'END')}|\Z)", re.DOTALL),
    _rule("private key", r"PuTTY-User-Key-File-\d+:.*?(?:Private-MAC:\s*\S+|\Z)", re.DOTALL),
    # AI providers: OpenAI, Anthropic, OpenRouter; Hugging Face, Groq, Replicate, xAI, Perplexity; Google
    _rule("API key", r"\bsk-(?:ant-(?:api|admin)\d+|proj|svcacct|admin|or-v1|None)-[\w-]{20,}"),
    _rule("API key", r"\b(?:sk|rk)-(?=[A-Za-z_]*\d)[A-Za-z0-9_]{20,}"),
    _rule("API key", r"\b(?:hf|gsk|r8)_[A-Za-z0-9]{30,}|\b(?:xai|pplx)-[A-Za-z0-9]{40,}"),
    _rule("API key", r"\b(?:AIza[\w-]{35}|GOCSPX-[\w-]{20,}|ya29\.[\w-]{20,})"),
    # payment and SaaS: Stripe (any length, test mode, webhooks), Square, Mailgun, DigitalOcean, Shopify
    _rule("API key", r"\b(?:sk|rk)_(?:live|test)_[A-Za-z0-9]{16,}|\bwhsec_[A-Za-z0-9]{24,}"),
    _rule("API key", r"\bsq0(?:atp|csp)-[\w-]{22,}|\bEAAA[\w-]{60,}"),
    _rule("API key", r"\bkey-[0-9a-zA-Z]{32}\b|\bdo[opr]_v1_[a-f0-9]{64}\b"),
    _rule("API key", r"\bshp(?:at|ca|pa|ss)_[a-fA-F0-9]{32}"),
    # developer platforms: Docker Hub, Linear, Heroku
    _rule("access token", r"\bdckr_pat_[\w-]{20,}|\blin_api_[A-Za-z0-9]{30,}|\bHRKU-[\w-]{20,}"),
    # Azure: client secrets, storage and service-bus keys of any length, SAS signatures
    _rule("API key", r"\b[\w.-]{3}\dQ~[\w.~-]{30,}"),
    _rule("API key", r"\b(?:AccountKey|SharedAccessKey)=[A-Za-z0-9+/=]{20,}|[?&]sig=[A-Za-z0-9%+/=]{20,}"),
    # VCS, registries, chat, vaults: GitHub (any length, fine-grained), GitLab, npm, PyPI, Slack,
    # Bitbucket, Atlassian, HashiCorp Vault
    _rule(
        "access token",
        r"\b(?:gh[pousr]_[A-Za-z0-9]{20,}|github_pat_\w{30,}|glpat-[\w-]{20,}|npm_[A-Za-z0-9]{36}"
        r"|(?<=:_authToken=)[\w-]{20,}"
        r"|pypi-[\w-]{50,}|xox[a-z]-[A-Za-z0-9-]{10,}|xapp-\d-[A-Za-z0-9-]{20,}|ATBB[\w=.-]{24,}"
        r"|ATATT3[\w=-]{40,}|hv[sb]\.[\w-]{24,})",
    ),
    _rule("webhook URL", r"discord(?:app)?\.com/api/webhooks/\d+/[\w-]{40,}"),
    _rule("JSON web token", r"\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}"),
    _Rule(
        "URL with credentials",
        # bounded parts: an unbounded scheme makes a long dotted word a quadratic search
        re.compile(r"\b[a-z][a-z0-9+.-]{0,30}://[^\s:/?#@]{0,200}:([^\s/?#@]{1,200})@", re.IGNORECASE),
        lambda m: m.span(1),  # the password: user, host and path stay readable
    ),
    _rule("bearer token", r"\bbearer\s+[A-Za-z0-9._~+/=-]{20,}", re.IGNORECASE),
    # on a command line or in a .netrc: sshpass -p 'x', "machine h login u password x"
    _Rule("password", re.compile(r"\bsshpass\s+-p\s*['\"]?([^\s'\"]+)"), lambda m: m.span(1)),
    _Rule("password", re.compile(r"\blogin\s+\S+\s+password\s+(\S+)"), lambda m: m.span(1)),
    _rule("basic auth credentials", r"\bauthorization:\s*basic\s+[A-Za-z0-9+/=]{8,}", re.IGNORECASE),
    _Rule("password", _NAMED, _named),
    _Rule("card number", re.compile(r"\b[2-6]\d(?:[ -]?\d){11,17}\b"), _card),
)

# detect-secrets plugins whose regexes are used: every regex-based one but three. IPPublicDetector: an
# IP address is not a secret. NpmDetector and OpenAIDetector: their regexes backtrack quadratically on
# long runs ("//x//x...", "sk-sk-..."), seconds on a 100k-character message; the rules above cover both
# formats. Its keyword and entropy plugins are built for source code, not prose.
_LIBRARY = (
    ("artifactory", "ArtifactoryDetector"),
    ("aws", "AWSKeyDetector"),
    ("azure_storage_key", "AzureStorageKeyDetector"),
    ("basic_auth", "BasicAuthDetector"),
    ("cloudant", "CloudantDetector"),
    ("discord", "DiscordBotTokenDetector"),
    ("github_token", "GitHubTokenDetector"),
    ("gitlab_token", "GitLabTokenDetector"),
    ("ibm_cloud_iam", "IbmCloudIamDetector"),
    ("ibm_cos_hmac", "IbmCosHmacDetector"),
    ("jwt", "JwtTokenDetector"),
    ("mailchimp", "MailchimpDetector"),
    ("private_key", "PrivateKeyDetector"),
    ("pypi_token", "PypiTokenDetector"),
    ("sendgrid", "SendGridDetector"),
    ("slack", "SlackDetector"),
    ("softlayer", "SoftlayerDetector"),
    ("square_oauth", "SquareOAuthDetector"),
    ("stripe", "StripeDetector"),
    ("telegram_token", "TelegramBotTokenDetector"),
    ("twilio", "TwilioKeyDetector"),
)


def _group_or_match(match: re.Match[str]) -> Span:
    """A library regex's first group where it has one (the secret, or a token's prefix, which widening
    in ``redact`` grows to the whole token), else the whole match."""
    return match.span(1) if match.re.groups and match.start(1) >= 0 else match.span()


@cache
def _rules() -> tuple[_Rule, ...]:
    """Our rules, then detect-secrets' (imported here, on the first check: never on the read path)."""
    import importlib

    library = []
    for module, name in _LIBRARY:
        detector = getattr(importlib.import_module(f"detect_secrets.plugins.{module}"), name)
        library += [_Rule(detector.secret_type, pattern, _group_or_match) for pattern in detector.denylist]
    return (*_OWN, *library)


# A cheap first look that lets through every text any rule can match: each needs a run of 11+
# non-space characters, 13+ digits, "://" or one of these words (the corpus test holds it to that).
# Most chat turns pass none of them, and skip the rules' ~60 scans.
_SCREEN = re.compile(r"\S{11,}|(?:\d[ -]?){13}")
_SCREEN_WORDS = (
    "pass",
    "pw",
    "pin",
    "secret",
    "token",
    "key",
    "credential",
    "bearer",
    "authorization",
    "://",
)


def _may_hold_secret(text: str) -> bool:
    if _SCREEN.search(text):
        return True
    lower = text.lower()
    return any(word in lower for word in _SCREEN_WORDS)


def _found(text: str) -> Iterator[tuple[str, Span]]:
    if not _may_hold_secret(text):
        return
    for rule in _rules():
        for match in rule.pattern.finditer(text):
            span = rule.span(match)
            if span is not None and text[span[0] : span[1]] != REDACTED:  # already redacted
                yield rule.kind, span


def find_secret(text: str) -> str | None:
    """Return what kind of secret ``text`` contains, or ``None`` when it looks clean."""
    return next((kind for kind, _ in _found(text)), None)


def find_secret_in(value: Any) -> tuple[str, str] | None:
    """The first secret in any string inside JSON-like ``value`` (dict keys included), as
    ``(where, kind)`` with ``where`` a path such as ``items[2].meta.note``; ``None`` when clean."""
    stack: list[tuple[str, Any]] = [("", value)]
    while stack:  # a loop, not recursion: nesting depth is the caller's input
        where, node = stack.pop()
        if isinstance(node, str):
            kind = find_secret(node)
            if kind:
                return where or "value", kind
        elif isinstance(node, dict):
            for key, child in node.items():
                stack.append((f"{where} key", key))
                stack.append((f"{where}.{key}" if where else str(key), child))
        elif isinstance(node, (list, tuple)):
            stack.extend((f"{where}[{i}]", child) for i, child in enumerate(node))
    return None


# A match is widened to the whole token it sits in: some library regexes match only a key's prefix.
_TOKEN = re.compile(r"[\w+/=~-]*")


def _trimmed(text: str, span: Span) -> Span:
    start, end = span
    while start < end and text[start].isspace():  # some library regexes take the space before
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end


def _token_end(text: str, at: int) -> int:
    found = _TOKEN.match(text, at)
    assert found is not None  # * matches the empty string
    return found.end()


def redact(text: str) -> str:
    """``text`` with every detected secret replaced, whole, by ``[redacted]``."""
    out: list[str] = []
    done = 0  # where the last redaction ended: overlapping and touching secrets become one
    backwards = text[::-1]
    for start, end in sorted(_trimmed(text, span) for _kind, span in _found(text)):
        if end <= done:
            continue
        if not out or start > done:
            start = max(done, len(text) - _token_end(backwards, len(text) - start))
            out += [text[done:start], REDACTED]
        done = _token_end(text, end)  # each widening starts past the last: linear in the text
    out.append(text[done:])
    return "".join(out)
