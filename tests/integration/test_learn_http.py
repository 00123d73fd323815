"""learn() end to end over real HTTP: agentmem -> litellm -> OpenAI client -> a LoopbackServer.

Every test checks what the server received (the prompt, the response format, the re-ask) as well as
what was stored, so the wiring between extraction and the provider is covered, not only the parsing.
"""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from agentmem import ExtractionError, MemoryManager
from agentmem.testing import Fault, LoopbackServer, Slow, ToolCall

MODEL = "openai/test-model"  # the model id of the make_mem fixture (conftest.py)
SCHEMA_INTRO = "It must validate against this JSON Schema:\n"
MakeManager = Callable[..., MemoryManager]  # the make_mem fixture

PRIYA = [
    {"role": "user", "content": "Which message queue would you pick for a small team?"},
    {
        "role": "assistant",
        "content": "Here is a table comparing RabbitMQ, Kafka and SQS on cost, ops work and ordering.",
    },
    {
        "role": "user",
        "content": "That table was exactly what I needed. I'm Priya, a backend engineer in Lisbon, and "
        "I'm migrating our billing service to Go. Keep answers concise, please.",
    },
]

PRIYA_REPLY: dict[str, Any] = {
    "profile": {"name": "Priya", "role": "backend engineer", "location": "Lisbon"},
    "policies": {"set": {"response_style": "concise"}, "remove": []},
    "knowledge": [{"text": "Is migrating the billing service to Go", "topics": ["work", "go"]}],
    "feedback": [
        {"text": "Liked the table comparing queues", "sentiment": "positive", "target": "comparison table"}
    ],
}


def system_text(request: dict[str, Any]) -> str:
    first = request["messages"][0]
    assert first["role"] == "system"
    return str(first["content"])


def dump(path: Path, *tables: str) -> list[str]:
    """The rows of ``tables`` as SQL, read through a connection of its own."""
    with closing(sqlite3.connect(path)) as conn:
        return [
            line for line in conn.iterdump() if any(line.startswith(f'INSERT INTO "{t}"') for t in tables)
        ]


def pending_rows(path: Path) -> list[dict[str, Any]]:
    with closing(sqlite3.connect(path)) as conn:
        conn.row_factory = sqlite3.Row
        return [dict(r) for r in conn.execute("SELECT * FROM agentmem_pending ORDER BY created_at, id")]


def assert_priya_applied(mem: MemoryManager, user_id: str = "priya") -> None:
    state = mem.get(user_id=user_id)
    assert (state.profile.name, state.profile.role, state.profile.location) == (
        "Priya",
        "backend engineer",
        "Lisbon",
    )
    assert state.policies.response_style == "concise"
    assert [(i.text, i.data.topics) for i in state.knowledge] == [
        ("Is migrating the billing service to Go", ["work", "go"])
    ]
    assert [(i.text, i.data.sentiment, i.data.target) for i in state.feedback] == [
        ("Liked the table comparing queues", "positive", "comparison table")
    ]
    assert all(i.source == "extracted" for i in state.items)


# ---- the happy path -----------------------------------------------------------------------------


def test_valid_output_is_applied_with_the_servers_token_counts(
    server: LoopbackServer, http_mem: MemoryManager
) -> None:
    server.add(PRIYA_REPLY)
    result = http_mem.learn(PRIYA, user_id="priya", session_id="s1")

    assert_priya_applied(http_mem)
    assert {layer: len(changes) for layer, changes in result.changes.items()} == {
        "profile": 3,
        "policies": 1,
        "knowledge": 1,
        "feedback": 1,
    }
    assert {c.op for c in result.all_changes} == {"add"}

    [request] = server.requests
    [sent] = server.completions
    assert request["model"] == "test-model"
    assert request["messages"][1] == {"role": "user", "content": "Reply with the JSON object now."}
    assert '[user] "That table was exactly what I needed.' in system_text(request)

    usage = result.usage
    assert (usage.model_calls, usage.extractor, usage.skipped, usage.dropped) == (1, "model", None, {})
    assert usage.prompt_tokens == sent["usage"]["prompt_tokens"] == len(json.dumps(request["messages"])) // 4
    assert usage.completion_tokens == sent["usage"]["completion_tokens"] > 0
    assert usage.cost in (None, 0.0)  # litellm has no price for a made-up model


# ---- invalid replies: re-ask, then give up without writing ----------------------------------------


def test_malformed_json_is_re_asked_once_with_the_validation_error(
    server: LoopbackServer, http_mem: MemoryManager
) -> None:
    broken = '{"profile": {"name": "Priya", "role": "backend engineer"'  # cut off mid-object
    server.add(broken, PRIYA_REPLY)
    result = http_mem.learn(PRIYA, user_id="priya")

    assert_priya_applied(http_mem)
    assert len(server.requests) == 2
    assert result.usage.model_calls == 2
    assert result.usage.prompt_tokens == sum(c["usage"]["prompt_tokens"] for c in server.completions)

    first, second = server.requests
    assert second["messages"][: len(first["messages"])] == first["messages"]
    reask = second["messages"][len(first["messages"]) :]
    assert reask[0] == {"role": "assistant", "content": broken}
    assert reask[1]["role"] == "user"
    assert reask[1]["content"].startswith("That reply was not valid: ")
    assert "Invalid JSON" in reask[1]["content"]  # pydantic's own words reach the model


def test_three_invalid_replies_write_nothing_and_keep_the_input_pending(
    server: LoopbackServer, http_mem: MemoryManager, db_path: Path
) -> None:
    # Memory from before, which the failure must leave exactly as it was.
    http_mem.knowledge.add("Has a dog called Miso", user_id="priya", topics=["pets"])
    server.add({"knowledge": [{"text": "Runs on weekends"}]})
    http_mem.learn([{"role": "user", "content": "I run every weekend."}], user_id="priya")
    tables = ("agentmem_items", "agentmem_events", "agentmem_learned")
    before_rows, before_export = dump(db_path, *tables), http_mem.export_user("priya")
    assert len(before_rows) > 4

    last = '{"profile": {"name": 42}}'
    server.add("Sure! Here is what I learned about Priya.", '{"knowledge": "Priya likes Go"}', last)
    with pytest.raises(ExtractionError) as caught:
        http_mem.learn(PRIYA, user_id="priya", session_id="s2")

    error = caught.value
    assert (error.attempts, error.last_output, error.layer) == (3, last, None)
    assert len(server.requests) == 1 + 3
    assert dump(db_path, *tables) == before_rows
    after_export = http_mem.export_user("priya")
    assert {**after_export, "pending": []} == before_export  # only the kept input is new
    assert [p["id"] for p in after_export["pending"]] == [error.pending_id]

    [pending] = pending_rows(db_path)
    assert pending["id"] == error.pending_id
    assert (pending["user_id"], pending["session_id"], pending["attempts"]) == ("priya", "s2", 3)
    assert "did not validate" in pending["error"]

    server.add(PRIYA_REPLY)
    report = http_mem.retry_pending()
    assert (report.retried, report.still_pending, len(report.results)) == (1, 0, 1)
    assert report.results[0].usage.model_calls == 1
    assert "I'm Priya, a backend engineer in Lisbon" in system_text(server.requests[-1])
    state = http_mem.get(user_id="priya")
    assert state.profile.name == "Priya"
    assert {i.text for i in state.knowledge} == {
        "Has a dog called Miso",
        "Runs on weekends",
        "Is migrating the billing service to Go",
    }
    assert pending_rows(db_path) == []

    requests_so_far = len(server.requests)
    again = http_mem.retry_pending()
    assert (again.retried, again.still_pending, again.results) == (0, 0, [])
    assert len(server.requests) == requests_so_far


def test_a_server_error_is_retried_then_applied(server: LoopbackServer, http_mem: MemoryManager) -> None:
    server.add(Fault(status=500), PRIYA_REPLY)
    result = http_mem.learn(PRIYA, user_id="priya")

    assert_priya_applied(http_mem)
    assert len(server.requests) == 2  # the SDK's own retries are off: every attempt is ours
    assert server.requests[0] == server.requests[1]  # a transient retry resends, it does not re-ask
    assert result.usage.model_calls == 2
    assert len(server.completions) == 1


@pytest.mark.parametrize(
    "status",
    [
        408,
        429,
        503,
        504,
        502,
        500,
    ],
)
def test_transient_statuses_are_retried(status: int, server: LoopbackServer, http_mem: MemoryManager) -> None:
    server.add(Fault(status=status), PRIYA_REPLY)
    result = http_mem.learn(PRIYA, user_id="priya")
    assert_priya_applied(http_mem)
    assert len(server.requests) == 2
    assert result.usage.model_calls == 2


def test_an_error_no_retry_fixes_fails_at_once_and_keeps_the_input(
    server: LoopbackServer, http_mem: MemoryManager, db_path: Path
) -> None:
    server.add(Fault(status=401, body={"error": {"message": "Incorrect API key provided", "type": "auth"}}))
    with pytest.raises(ExtractionError) as caught:
        http_mem.learn(PRIYA, user_id="priya")
    assert len(server.requests) == 1
    assert caught.value.attempts == 1
    assert caught.value.last_output is None
    assert "AuthenticationError" in str(caught.value)
    assert "Incorrect API key provided" in str(caught.value)
    assert [row["id"] for row in pending_rows(db_path)] == [caught.value.pending_id]
    assert http_mem.get(user_id="priya").items == []


def test_a_tool_call_instead_of_json_is_re_asked(server: LoopbackServer, http_mem: MemoryManager) -> None:
    server.add(ToolCall("save_memory", {"name": "Priya"}), PRIYA_REPLY)
    result = http_mem.learn(PRIYA, user_id="priya")
    assert_priya_applied(http_mem)
    assert result.usage.model_calls == 2
    reask = server.requests[1]["messages"][-2:]
    assert reask[0] == {"role": "assistant", "content": ""}  # no content came back, only the call
    assert reask[1]["content"].startswith("That reply was not valid: ")


# ---- what the model is shown, and what is kept of its answer ------------------------------------------


def test_a_contradiction_supersedes_the_stored_fact_by_its_alias(
    server: LoopbackServer, http_mem: MemoryManager
) -> None:
    server.add({"knowledge": [{"text": "Lives in Berlin", "topics": ["home"]}]})
    http_mem.learn(
        [{"role": "user", "content": "I live in Berlin and work as a product designer."}], user_id="lena"
    )
    [berlin] = http_mem.get(user_id="lena").knowledge

    server.add(
        {
            "knowledge": [
                {"text": "Lives in Munich", "topics": ["home"], "replaces": 1},
                {"text": "Commutes to the studio by bike", "replaces": 7},  # no stored fact 7
            ]
        }
    )
    result = http_mem.learn(
        [{"role": "user", "content": "I moved to Munich last month, and I commute to the studio by bike."}],
        user_id="lena",
    )

    assert "Stored facts:\n1. Lives in Berlin\n" in system_text(server.requests[1])
    assert "Stored facts:" not in system_text(server.requests[0])
    assert result.usage.dropped == {"unknown_alias": 1}
    state = http_mem.get(user_id="lena")
    assert [i.text for i in state.knowledge] == ["Lives in Munich", "Commutes to the studio by bike"]
    munich = state.knowledge[0]
    history = http_mem.history(user_id="lena", item_id=berlin.id)
    assert [e.op for e in history] == ["add", "supersede"]
    assert history[1].old["text"] == "Lives in Berlin"
    assert history[1].new["text"] == "Lives in Munich"
    assert [(c.op, c.item_id) for c in result.changes["knowledge"] if c.op == "supersede"] == [
        ("supersede", berlin.id)
    ]
    closed = next(i for i in http_mem.export_user("lena")["items"] if i["id"] == berlin.id)
    assert closed["valid_to"] is not None
    assert closed["superseded_by"] == munich.id


@dataclass
class DevProfile:
    """A developer's profile."""

    name: str | None = None
    """The name the user goes by."""
    favourite_editor: str | None = None
    """The code editor the user prefers, e.g. "neovim" or "VS Code"."""


CUSTOM_KNOWLEDGE_PROMPT = """\
Key "{{ layer }}": facts about the developer's projects. CUSTOM-MARKER {{ fields|length }} fields:
{% for field in fields %}- {{ field.name }}
{% endfor %}{% for item in items %}{{ item.alias }}. {{ item.text }}
{% endfor %}"""


def test_a_custom_schema_and_prompt_reach_the_server(server: LoopbackServer, make_mem: MakeManager) -> None:
    import litellm

    mem = make_mem(profile_schema=DevProfile, knowledge_extraction_prompt=CUSTOM_KNOWLEDGE_PROMPT)
    server.add({"profile": {"name": "Ada", "favourite_editor": "neovim"}})
    mem.learn(
        [{"role": "user", "content": "I'm Ada. I write all my Rust in neovim, nothing else comes close."}],
        user_id="ada",
    )
    assert mem.get(user_id="ada").profile == DevProfile(name="Ada", favourite_editor="neovim")

    [request] = server.requests
    system = system_text(request)
    assert "CUSTOM-MARKER 2 fields:\n- text\n- topics" in system  # Fact has text and topics
    assert "a list of durable facts about the user" not in system  # the default knowledge text is gone

    # litellm knows nothing of "openai/test-model", so it is not credited with json_schema support:
    # extraction falls back to JSON mode and puts the schema in the prompt. Should litellm ever map
    # the model, the schema travels as response_format instead; both carry the same JSON Schema.
    if litellm.supports_response_schema(model=MODEL):
        assert request["response_format"]["type"] == "json_schema"
        schema = request["response_format"]["json_schema"]["schema"]
    else:
        assert request["response_format"] == {"type": "json_object"}
        schema = json.loads(system.split(SCHEMA_INTRO, 1)[1])
    profile_fields = schema["properties"]["profile"]["properties"]
    assert set(profile_fields) == {"name", "favourite_editor"}
    assert profile_fields["favourite_editor"] == {"type": "string"}  # structure only: the prompt describes it
    assert "\nfavourite_editor: The code editor the user prefers" in system  # the profile section
    assert json.dumps(request).count("The code editor the user prefers") == 1  # described once


def test_the_assistants_words_are_never_stored_as_the_users(
    server: LoopbackServer, http_mem: MemoryManager
) -> None:
    server.add({"knowledge": [{"text": "Lives in Reykjavik"}, {"text": "Works on compilers"}]})
    result = http_mem.learn(
        [
            {"role": "user", "content": "What do you do for fun?"},
            {"role": "assistant", "content": "I live in Reykjavik and love chess."},
            {"role": "user", "content": "cool, I work on compilers"},
        ],
        user_id="kim",
    )
    assert '[assistant] "I live in Reykjavik and love chess."' in system_text(server.requests[0])
    assert [i.text for i in http_mem.get(user_id="kim").knowledge] == ["Works on compilers"]
    assert result.usage.dropped == {"misattributed": 1}


def test_a_secret_in_the_conversation_never_reaches_the_server(
    server: LoopbackServer, http_mem: MemoryManager
) -> None:
    key = "sk-proj-4fQx9TbLm2Wc7ZrK8vNd3HgYp6"
    server.add(
        {
            "knowledge": [
                {"text": "Deploys the billing service to Fly.io"},
                {"text": f"Uses the OpenAI key {key}"},  # as if the model had seen it after all
            ]
        }
    )
    result = http_mem.learn(
        [{"role": "user", "content": f"My OpenAI key is {key}; I deploy the billing service to Fly.io."}],
        user_id="priya",
    )
    assert key not in json.dumps(server.requests)
    assert "[redacted]" in system_text(server.requests[0])
    assert [i.text for i in http_mem.get(user_id="priya").knowledge] == [
        "Deploys the billing service to Fly.io"
    ]
    assert result.usage.dropped == {"secret": 1}


# ---- async ----------------------------------------------------------------------------------------


def test_alearn_goes_over_http_too(server: LoopbackServer, http_mem: MemoryManager) -> None:
    server.add("```json\n" + json.dumps(PRIYA_REPLY) + "\n```")  # fenced, as chatty models do
    result = asyncio.run(http_mem.alearn(PRIYA, user_id="priya"))
    assert_priya_applied(http_mem)
    assert result.usage.model_calls == 1
    assert result.usage.prompt_tokens == server.completions[0]["usage"]["prompt_tokens"]


def test_per_layer_alearn_sends_one_request_per_layer_concurrently(
    server: LoopbackServer, make_mem: MakeManager
) -> None:
    mem = make_mem(extraction="per_layer")
    server.add(*[PRIYA_REPLY] * 8)  # each request reads only its own layer's key

    async def learn_twice() -> float:
        # The first learn warms up litellm (import, HTTP client); only the second is timed.
        await mem.alearn([{"role": "user", "content": "I'm Priya and I mostly write Go."}], user_id="warm")
        server.delay = 0.3
        started = time.perf_counter()
        await mem.alearn(PRIYA, user_id="priya")
        return time.perf_counter() - started

    elapsed = asyncio.run(learn_twice())

    assert_priya_applied(mem)
    timed = server.requests[4:]
    assert len(timed) == 4
    sections = sorted(
        line[3:] for r in timed for line in system_text(r).splitlines() if line.startswith("## ")
    )
    assert sections == ["feedback", "knowledge", "policies", "profile"]  # one layer per request
    # Sequential calls would take at least 4 x 0.3 s; concurrent ones about 0.3 s plus overhead.
    assert server.peak_concurrency >= 2
    assert elapsed < 0.95, f"per-layer alearn took {elapsed:.2f}s; the 4 calls did not overlap"


def test_a_cancelled_alearn_gives_back_its_concurrency_slot(
    server: LoopbackServer, make_mem: MakeManager
) -> None:
    mem = make_mem(max_concurrency=1)
    server.add(Slow(1.0, {"knowledge": [{"text": "Writes Go"}]}))

    async def cancel_a_waiting_learn() -> None:
        holder = asyncio.create_task(mem.alearn([{"role": "user", "content": "I write Go."}], user_id="a"))
        while not server.requests:  # the holder has the only slot once its request arrives
            await asyncio.sleep(0.01)
        waiting = mem.alearn([{"role": "user", "content": "I write Rust."}], user_id="b")
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(waiting, 0.5)  # cancelled while waiting for the slot
        await holder

    asyncio.run(cancel_a_waiting_learn())
    server.add({"knowledge": [{"text": "Writes Zig"}]})
    finished = threading.Event()

    def learn() -> None:
        mem.learn([{"role": "user", "content": "I write Zig."}], user_id="c")
        finished.set()

    threading.Thread(target=learn, daemon=True).start()  # a daemon: a deadlock must not hang the run
    assert finished.wait(3.0), "learn() is stuck waiting for a concurrency slot nobody holds"
    assert [i.text for i in mem.get(user_id="c").knowledge] == ["Writes Zig"]


def test_sync_and_async_calls_share_one_concurrency_limit(
    server: LoopbackServer, make_mem: MakeManager
) -> None:
    """Three threads calling learn() and two concurrent alearn() tasks never exceed the limit together."""
    server.delay = 0.2
    server.add(*({"knowledge": [{"text": f"Uses tool number {i}"}]} for i in range(5)))
    mem = make_mem(max_concurrency=2)

    def said(i: int) -> list[dict[str, str]]:
        return [{"role": "user", "content": f"I use tool number {i} daily."}]

    async def two_tasks() -> None:
        await asyncio.gather(*(mem.alearn(said(i), user_id=f"async-{i}") for i in (3, 4)))

    threads = [
        threading.Thread(target=mem.learn, args=(said(i),), kwargs={"user_id": f"sync-{i}"}) for i in range(3)
    ]
    for t in threads:
        t.start()
    asyncio.run(two_tasks())
    for t in threads:
        t.join()
    assert len(server.requests) == 5
    assert server.peak_concurrency == 2  # the limit was reached, and never passed


# ---- calls that are not made ----------------------------------------------------------------------


def test_the_salience_gate_makes_no_request(server: LoopbackServer, http_mem: MemoryManager) -> None:
    result = http_mem.learn([{"role": "user", "content": "thanks!"}], user_id="priya")
    assert server.requests == []
    assert result.usage.model_calls == 0
    assert result.usage.skipped == "acknowledgement or greeting only"
    assert result.all_changes == []


def test_learning_the_same_input_twice_makes_one_request(
    server: LoopbackServer, http_mem: MemoryManager
) -> None:
    server.add(PRIYA_REPLY)  # a second request would find the queue empty and fail
    first = http_mem.learn(PRIYA, user_id="priya")
    items = http_mem.get(user_id="priya").items
    second = http_mem.learn(PRIYA, user_id="priya")

    assert len(server.requests) == 1
    assert len(first.all_changes) == 6
    assert second.all_changes == []
    assert (second.usage.model_calls, second.usage.skipped) == (0, "this input was already learned")
    assert http_mem.get(user_id="priya").items == items


def test_litellm_is_imported_only_when_a_model_is_called(server: LoopbackServer, tmp_path: Path) -> None:
    server.add({"knowledge": [{"text": "Works on compilers"}]})
    script = textwrap.dedent(
        f"""
        import json, sys

        import agentmem
        from agentmem import MemoryManager

        seen = {{"after_import": "litellm" in sys.modules}}
        mem = MemoryManager(
            db={f"sqlite:///{tmp_path / 'sub.db'}"!r},
            model={MODEL!r},
            model_options={{"api_base": {server.url!r}, "api_key": "test-key"}},
        )
        mem.profile.update(user_id="kim", name="Kim")
        mem.compile(user_id="kim", query="compilers", token_budget=200)
        seen["after_compile"] = "litellm" in sys.modules
        mem.learn([{{"role": "user", "content": "I work on compilers."}}], user_id="kim")
        seen["after_learn"] = "litellm" in sys.modules
        seen["facts"] = [i.text for i in mem.get(user_id="kim").knowledge]
        print(json.dumps(seen))
        """
    )
    env = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True", "NO_PROXY": "127.0.0.1,localhost"}
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen == {
        "after_import": False,
        "after_compile": False,
        "after_learn": True,
        "facts": ["Works on compilers"],
    }
    assert len(server.requests) == 1


# ---- the LoopbackServer itself ----------------------------------------------------------------------


def post(url: str, body: object, *, raw: bytes | None = None) -> tuple[int, Any]:
    data = raw if raw is not None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            status, text = response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        status, text = error.code, error.read().decode()
    try:
        return status, json.loads(text)
    except ValueError:
        return status, text


def test_the_loopback_server_speaks_openai_and_never_hangs() -> None:
    idle = LoopbackServer()
    with pytest.raises(RuntimeError, match="not running"):
        _ = idle.url

    chat = {"model": "m-1", "messages": [{"role": "user", "content": "hi"}]}
    with LoopbackServer(["plain"], delay=0.05) as server:
        endpoint = server.url + "/chat/completions"
        assert server.url.startswith("http://127.0.0.1:")
        assert post(endpoint, {**chat, "stream": "yes"})[0] == 400  # and the queued reply stays
        assert post(endpoint, None, raw=b"{not json")[0] == 400
        assert post(server.url + "/completions", chat)[0] == 404

        status, body = post(endpoint, chat)
        assert status == 200
        assert (body["object"], body["model"], body["choices"][0]["finish_reason"]) == (
            "chat.completion",
            "m-1",
            "stop",
        )
        assert body["choices"][0]["message"] == {"role": "assistant", "content": "plain"}
        prompt = len(json.dumps(chat["messages"])) // 4
        assert body["usage"]["prompt_tokens"] == prompt
        assert body["usage"]["total_tokens"] == prompt + body["usage"]["completion_tokens"]

        status, body = post(endpoint, chat)
        assert status == 500
        assert "no reply queued for request #3" in body["error"]["message"]

        server.add(
            ToolCall("lookup", {"city": "Oslo"}),
            Fault(503, body="overloaded"),
            Slow(0.2, {"ok": True}),
            lambda request: f"you sent {len(request['messages'])} message(s)",
        )
        message = post(endpoint, chat)[1]["choices"][0]
        assert message["finish_reason"] == "tool_calls"
        [call] = message["message"]["tool_calls"]
        assert call["function"] == {"name": "lookup", "arguments": '{"city": "Oslo"}'}
        assert post(endpoint, chat) == (503, "overloaded")
        assert post(endpoint, chat)[1]["choices"][0]["message"]["content"] == '{"ok": true}'
        assert post(endpoint, chat)[1]["choices"][0]["message"]["content"] == "you sent 1 message(s)"
        server.add(lambda request: 1 / 0)
        status, body = post(endpoint, chat)
        assert status == 500
        assert "could not build reply #8: ZeroDivisionError" in body["error"]["message"]

        assert len(server.requests) == 8  # the JSON bodies the chat endpoint received, refused ones too
        assert server.requests[-1] == chat
        assert len(server.completions) == 4
        assert server.handler_seconds >= 0.2 + 7 * 0.05  # delay: every reply, not the refusals
    with pytest.raises(RuntimeError):
        _ = server.url
