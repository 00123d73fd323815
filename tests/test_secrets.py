"""The secret detector against a corpus of fabricated credentials and ordinary look-alikes, and every
write path on both backends: a secret is refused, dropped or redacted, and never reaches the database.

The corpus (tests/data/secrets_corpus.py) prints its rates for any version of the detector:
``python tests/data/secrets_corpus.py [path/to/secret_filter.py]``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from data.secrets_corpus import BENIGN, SECRETS, left_in
from sqlalchemy import inspect, text

from agentmem import ExtractionError, MemoryManager, SecretError
from agentmem.secret_filter import REDACTED, find_secret, find_secret_in, redact
from agentmem.store.sessions import MAX_MESSAGE_CHARS
from agentmem.testing import ScriptedModel

Factory = Callable[..., MemoryManager]
BY_FORMAT = {fmt: (sentence, secret) for fmt, sentence, secret in SECRETS}


# ---- the corpus -----------------------------------------------------------------------------------


def test_the_corpus_is_big_enough() -> None:
    assert len(SECRETS) >= 60
    assert len(BENIGN) >= 60
    assert len(BY_FORMAT) == len(SECRETS)  # one entry per format name


@pytest.mark.parametrize(("fmt", "sentence", "secret"), SECRETS, ids=[s[0] for s in SECRETS])
def test_every_secret_is_detected_and_redacted_whole(fmt: str, sentence: str, secret: str) -> None:
    assert find_secret(sentence) is not None, fmt
    redacted = redact(sentence)
    assert REDACTED in redacted
    assert not left_in(redacted, secret), redacted
    assert find_secret(redacted) is None  # redacting again would change nothing


@pytest.mark.parametrize("sentence", BENIGN)
def test_ordinary_look_alikes_are_not_secrets(sentence: str) -> None:
    assert find_secret(sentence) is None
    assert redact(sentence) == sentence


def test_redaction_keeps_what_is_not_the_secret() -> None:
    assert redact("the password for the VPN is Xk9#mP2vLq.") == "the password for the VPN is [redacted]."
    assert redact("postgres://app:S3cr3tPw9x@db:5432/prod") == "postgres://app:[redacted]@db:5432/prod"
    block = BY_FORMAT["RSA private key"][1]
    assert redact(f"before\n{block}\nafter") == f"before\n{REDACTED}\nafter"
    truncated = block[: len(block) // 2]
    assert redact(f"before {truncated}") == f"before {REDACTED}"


def test_card_numbers_need_a_valid_check_digit() -> None:
    valid = "4539 1488 0343 6467"
    invalid = valid[:-1] + "8"
    assert find_secret(f"card {valid}") == "card number"
    assert find_secret(f"card {invalid}") is None


@pytest.mark.parametrize("piece", ["sk-", "//x/", "xoxb-1-", "eyJ.", "AKIA", "a://b:", "ghp_"])
def test_long_adversarial_text_takes_linear_time(piece: str) -> None:
    # Each of these took from seconds to minutes at 100k characters with a quadratic rule or widening;
    # now well under a second. The bound is loose: the test machine may be busy.
    hostile = (piece * (MAX_MESSAGE_CHARS // len(piece) + 1))[:MAX_MESSAGE_CHARS]
    started = time.perf_counter()
    find_secret(hostile)
    redact(hostile)
    assert time.perf_counter() - started < 5


def test_find_secret_in_names_where_in_nested_data() -> None:
    stripe = BY_FORMAT["Stripe live"][1]
    assert find_secret_in({"a": [1, "fine", {"b": f"x {stripe}"}]}) == ("a[2].b", "API key")
    assert find_secret_in({"meta": {stripe: "value"}}) == ("meta key", "API key")
    assert find_secret_in({"a": ["fine", {"b": None}], "c": 3}) is None
    deep: Any = f"x {stripe}"
    for _ in range(5000):  # the walk is a loop: deep nesting is not a RecursionError
        deep = [deep]
    assert find_secret_in(deep) is not None


def test_the_read_path_never_imports_the_detector_library(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'd.db'}"
    with MemoryManager(db=url) as mem:
        mem.knowledge.add("Builds a churn model", user_id="u")
    code = (
        "import sys\n"
        "from agentmem import MemoryManager\n"
        f"mem = MemoryManager(db={url!r})\n"
        "assert 'churn' in mem.compile(user_id='u', query='churn')\n"
        "mem.get(user_id='u'); mem.search('churn', user_id='u')\n"
        "assert 'detect_secrets' not in sys.modules, 'read path imported detect_secrets'\n"
        "mem.knowledge.add('Keeps passwords in a manager', user_id='u')\n"
        "assert 'detect_secrets' in sys.modules, 'a write did not check for secrets'\n"
    )
    env = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr


# ---- every write path, on both backends -----------------------------------------------------------

SAMPLE = ["Stripe live", "Hugging Face", "Postgres URL", "RSA private key", "prose: VPN password"]
SENTENCES = [BY_FORMAT[fmt][0] for fmt in SAMPLE]
SECRET_VALUES = [BY_FORMAT[fmt][1] for fmt in SAMPLE]
STRIPE = BY_FORMAT["Stripe live"][1]


def database_text(mem: MemoryManager) -> str:
    """Every row of every table in the database, as one lower-case text (PostgreSQL's search index
    holds words lower-cased)."""
    with mem._store.engine.connect() as conn:
        names = inspect(conn).get_table_names()
        rows = [repr(list(conn.execute(text(f'SELECT * FROM "{name}"')))) for name in names]
    assert any(name == "agentmem_items" for name in names)
    return "\n".join(rows).lower()


def leaked(mem: MemoryManager, secrets: list[str] = SECRET_VALUES) -> list[str]:
    stored = database_text(mem)
    return [secret for secret in secrets if left_in(stored, secret.lower())]


def test_manual_writes_refuse_secrets(mem: MemoryManager) -> None:
    for sentence in SENTENCES:
        with pytest.raises(SecretError):
            mem.knowledge.add(sentence, user_id="u")
        with pytest.raises(SecretError):
            mem.profile.update(user_id="u", company=sentence)
        with pytest.raises(SecretError):
            mem.knowledge.add_many([{"text": "Has a cat", "topics": [sentence]}], user_id="u")
        with pytest.raises(SecretError):
            mem.variables.set("current_task", sentence, user_id="u", agent_id="a", session_id="s")
    assert mem.export_user("u")["items"] == []
    assert mem.export_user("u")["variables"] == []
    assert leaked(mem) == []


def test_memory_tools_refuse_secrets_without_repeating_them(mem: MemoryManager) -> None:
    tools = mem.tools(user_id="u")
    for sentence in SENTENCES:
        result = json.loads(tools.dispatch("memory_remember", {"layer": "knowledge", "value": sentence}))
        assert result["ok"] is False
        assert "secret" in result["error"]
        assert not any(left_in(result["error"], secret) for secret in SECRET_VALUES)
    assert leaked(mem) == []


def test_learn_keeps_secrets_from_the_model_and_drops_them_from_its_reply(make_mem: Factory) -> None:
    reply = {
        "profile": {"company": SENTENCES[0]},
        "knowledge": [{"text": sentence, "topics": ["x"]} for sentence in SENTENCES]
        + [{"text": "Deploys on Fridays", "topics": ["work"]}],
    }
    model = ScriptedModel([reply])
    mem = make_mem(model=model)
    said = [{"role": "user", "content": f"I deploy on Fridays. {sentence}"} for sentence in SENTENCES]

    result = mem.learn(said, user_id="u")

    prompt = json.dumps(model.requests[0].messages)
    assert not any(left_in(prompt, secret) for secret in SECRET_VALUES)
    kept = [c.new for c in result.changes["knowledge"]]
    assert kept == [{"text": "Deploys on Fridays", "topics": ["work"]}]
    assert result.usage.dropped["secret"] == len(SENTENCES) + 1
    assert leaked(mem) == []


def test_offline_learn_stores_no_secret(mem: MemoryManager) -> None:
    for sentence in SENTENCES:
        mem.learn([{"role": "user", "content": f"I'm Sam, a data engineer. {sentence}"}], user_id="u")
    assert mem.get(user_id="u").profile.role == "data engineer"
    assert leaked(mem) == []


def test_stored_messages_and_their_extras_are_redacted(mem: MemoryManager) -> None:
    call = {"id": "c1", "type": "function", "function": {"name": "login", "arguments": json.dumps(SENTENCES)}}
    messages: list[dict[str, Any]] = [{"role": "user", "content": sentence} for sentence in SENTENCES]
    messages += [
        {"role": "assistant", "content": None, "tool_calls": [call]},
        {"role": "tool", "tool_call_id": f"call {STRIPE}", "name": f"tool {STRIPE}", "content": "ok"},
    ]
    mem.sessions.add("s1", messages, user_id="u")
    assert mem.sessions.summarize("s1", user_id="u")  # offline: from the stored (redacted) messages
    stored = mem.sessions.messages("s1", user_id="u")
    assert stored[0]["content"] == f"stripe secret {REDACTED}"
    assert leaked(mem) == []


def test_model_written_summaries_are_redacted(make_mem: Factory) -> None:
    mem = make_mem(model=ScriptedModel([f"The user shared {' and '.join(SENTENCES)}."]))
    mem.sessions.add("s1", [{"role": "user", "content": "hello"}], user_id="u")
    summary = mem.sessions.summarize("s1", user_id="u")
    assert summary.startswith("The user shared stripe secret [redacted]")
    assert mem.sessions.summary("s1", user_id="u") == summary
    assert leaked(mem) == []


def test_pending_inputs_and_errors_keep_no_secret_and_a_short_error(make_mem: Factory) -> None:
    provider_error = ValueError(f"invalid request {STRIPE}: {'the provider explains at length. ' * 100}")
    mem = make_mem(model=ScriptedModel([provider_error]))
    with pytest.raises(ExtractionError):
        mem.learn([{"role": "user", "content": sentence} for sentence in SENTENCES], user_id="u")
    [pending] = mem._store.pending("u")
    assert pending["error"].startswith("ExtractionError: the model call failed")
    assert "ValueError: invalid request [redacted]" in pending["error"]
    assert len(pending["error"]) <= 300
    assert leaked(mem) == []


def test_a_provider_error_with_unstorable_characters_is_kept_cleaned(make_mem: Factory) -> None:
    mem = make_mem(model=ScriptedModel([ValueError("bad byte \ud800 and a NUL \x00 here")]))
    with pytest.raises(ExtractionError) as raised:
        mem.learn([{"role": "user", "content": "I live in Lyon."}], user_id="u")
    assert raised.value.pending_id is not None  # kept, not lost to the database refusing the text
    [pending] = mem._store.pending("u")
    assert "bad byte \ufffd and a NUL  here" in pending["error"]


# ---- import_user: refused where it cannot be redacted, redacted where it is a record of what was said --


def _exported(mem: MemoryManager) -> dict[str, Any]:
    mem.knowledge.add("Builds a churn model", user_id="u", session_id="s1")
    mem.sessions.add("s1", [{"role": "user", "content": "hello"}], user_id="u")
    mem.variables.set("current_task", "plan the churn model", user_id="u", session_id="s1")
    data = mem.export_user("u")
    mem.delete_user("u")
    return data


IMPORT_REFUSALS: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    "item id": lambda d: {**d, "items": [{**d["items"][0], "id": STRIPE}]},
    "item meta key": lambda d: {**d, "items": [{**d["items"][0], "meta": {STRIPE: 1}}]},
    "item superseded_by": lambda d: {**d, "items": [{**d["items"][0], "superseded_by": STRIPE}]},
    "event item id": lambda d: {**d, "events": [{**d["events"][0], "item_id": STRIPE}]},
    "event key": lambda d: {**d, "events": [{**d["events"][0], "key": f"key {STRIPE}"}]},
    "event value key": lambda d: {**d, "events": [{**d["events"][0], "new": {STRIPE: "x"}}]},
    "event reason": lambda d: {**d, "events": [{**d["events"][0], "reason": SENTENCES[4]}]},
    "session id": lambda d: {
        **d,
        "sessions": [{**d["sessions"][0], "session_id": STRIPE}],
        "messages": [{**d["messages"][0], "session_id": STRIPE}],
    },
    "variable value": lambda d: {**d, "variables": [{**d["variables"][0], "value": SENTENCES[4]}]},
    "learned key": lambda d: {
        **d,
        "learned": [{"agent_id": None, "key": STRIPE, "created_at": d["items"][0]["created_at"]}],
    },
}


@pytest.mark.parametrize("field", list(IMPORT_REFUSALS))
def test_import_refuses_a_secret_in_any_field_it_cannot_redact(mem: MemoryManager, field: str) -> None:
    data = _exported(mem)
    with pytest.raises(SecretError):
        mem.import_user(IMPORT_REFUSALS[field](data))
    assert leaked(mem, [STRIPE, BY_FORMAT["prose: VPN password"][1]]) == []
    assert mem.export_user("u")["items"] == []


def test_import_redacts_messages_summaries_and_pending(mem: MemoryManager) -> None:
    data = _exported(mem)
    joined = " ".join(SENTENCES)
    pending = {
        "id": "p1",
        "agent_id": None,
        "session_id": None,
        "key": "k" * 64,
        "messages": [{"role": "user", "content": joined}],
        "error": f"ValueError: {joined}",
        "attempts": 1,
        "watermark": None,
        "read_at": None,
        "created_at": data["items"][0]["created_at"],
        "updated_at": data["items"][0]["created_at"],
    }
    arguments = json.dumps({STRIPE: joined})
    call = {"id": "c", "type": "function", "function": {"name": "f", "arguments": arguments}}
    message = {**data["messages"][0], "content": joined, "extra": {"tool_calls": [call]}}
    doc = {
        **data,
        "sessions": [{**data["sessions"][0], "summary": joined}],
        "messages": [message],
        "pending": [pending],
    }
    assert mem.import_user(doc) == 1
    assert mem.sessions.summary("s1", user_id="u") == redact(joined)
    assert leaked(mem) == []
