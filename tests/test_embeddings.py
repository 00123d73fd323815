"""Opt-in embeddings on both backends: what writes embed (batched, after the commit), what stays pending
when the model fails and what completes it, what deletions take with them, the dense scan of one owner,
re-embedding after a model change, and litellm's real HTTP path through LoopbackServer."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from agentmem import ConfigurationError, EmbeddingError, MemoryManager
from agentmem.cli import main
from agentmem.embeddings import BATCH_SIZE, Embedder
from agentmem.scope import Scope
from agentmem.testing import Fault, HashingEmbedder, LoopbackServer, ScriptedModel


class Flaky:
    """A HashingEmbedder that fails while ``down`` is set (as a provider's outage would)."""

    name = "flaky-hashing"

    def __init__(self) -> None:
        self.inner = HashingEmbedder()
        self.down = False
        self.calls: list[list[str]] = []

    def __call__(self, texts: Sequence[str]) -> list[list[float]]:
        self.calls.append(list(texts))
        if self.down:
            raise ConnectionError("the embedding server is down")
        return self.inner(texts)


@pytest.fixture
def managers() -> Iterator[list[MemoryManager]]:
    made: list[MemoryManager] = []
    yield made
    for mem in made:
        mem.close()


def vectors(mem: MemoryManager) -> dict[str, str]:
    """Item id -> model of every stored vector."""
    with mem._store.engine.connect() as conn:
        rows = conn.exec_driver_sql(
            "SELECT i.id, v.model FROM agentmem_vectors v JOIN agentmem_items i ON i.pk = v.pk"
        ).all()
    return {r[0]: r[1] for r in rows}


def vector_rows(mem: MemoryManager) -> int:
    with mem._store.engine.connect() as conn:
        return int(conn.exec_driver_sql("SELECT count(*) FROM agentmem_vectors").scalar_one())


def hits(mem: MemoryManager, scope: Scope, query: str, k: int = 10) -> list[tuple[str, float]]:
    """dense_hits as (item text, similarity)."""
    assert mem._embedder is not None
    vector = mem._embedder.embed([query])[0]
    with mem._store.engine.connect() as conn:
        found = mem._store.dense_hits(conn, scope, vector, k)
        texts = dict(conn.exec_driver_sql("SELECT pk, text FROM agentmem_items").all())
    return [(texts[pk], score) for pk, score in found]


def test_a_write_embeds_its_items_in_one_call_after_it_commits(
    db_url: str, managers: list[MemoryManager]
) -> None:
    embedder = HashingEmbedder()
    mem = MemoryManager(db=db_url, embedding_model=embedder)
    managers.append(mem)
    ids = mem.knowledge.add_many(["Lives in Berlin", "Likes pandas", "Works at a bakery"], user_id="sarah")
    assert embedder.calls == [["Lives in Berlin", "Likes pandas", "Works at a bakery"]]
    assert set(vectors(mem)) == set(ids)
    mem.profile.update(user_id="sarah", name="Sarah")
    assert len(embedder.calls) == 2
    assert len(embedder.calls[1]) == 1  # only the new item: the others have their vectors


def test_more_items_than_a_batch_are_embedded_in_batches(
    sqlite_url: str, managers: list[MemoryManager]
) -> None:
    embedder = HashingEmbedder()
    mem = MemoryManager(db=sqlite_url, embedding_model=embedder)
    managers.append(mem)
    mem.knowledge.add_many([f"Fact number {i}" for i in range(BATCH_SIZE + 5)], user_id="sarah")
    assert [len(batch) for batch in embedder.calls] == [BATCH_SIZE, 5]
    assert vector_rows(mem) == BATCH_SIZE + 5


def test_a_failed_embedding_keeps_the_write_and_leaves_its_items_pending(
    db_url: str, managers: list[MemoryManager], caplog: pytest.LogCaptureFixture
) -> None:
    flaky = Flaky()
    mem = MemoryManager(db=db_url, embedding_model=flaky)
    managers.append(mem)
    flaky.down = True
    first = mem.knowledge.add("Lives in Berlin", user_id="sarah")  # no error: the write stands
    assert [k.text for k in mem.get(user_id="sarah").knowledge] == ["Lives in Berlin"]
    assert vectors(mem) == {}
    assert "stay pending" in caplog.text
    with mem._store.engine.connect() as conn:
        assert mem._store.dense_hits(conn, Scope.of("sarah"), flaky.inner.vector("Berlin"), 5) == []

    # The next write, the model back, embeds its own item and the pending one, in one call.
    flaky.down = False
    flaky.calls.clear()
    second = mem.knowledge.add("Likes pandas", user_id="sarah")
    assert flaky.calls == [["Lives in Berlin", "Likes pandas"]]
    assert set(vectors(mem)) == {first, second}


def test_retry_pending_embeds_what_failed(db_url: str, managers: list[MemoryManager]) -> None:
    flaky = Flaky()
    mem = MemoryManager(db=db_url, embedding_model=flaky)
    managers.append(mem)
    flaky.down = True
    mem.knowledge.add_many(["Lives in Berlin", "Likes pandas"], user_id="sarah")
    mem.knowledge.add("Has a cat", user_id="marco")
    mem.knowledge.add("Answers in French", agent_id="bot")  # the agent's own memory
    assert mem.retry_pending().embedded == 0  # still down: nothing embedded, nothing raised
    flaky.down = False
    assert mem.retry_pending(user_id="sarah").embedded == 2
    assert len(vectors(mem)) == 2
    assert mem.retry_pending().embedded == 2  # marco's and the agent's
    assert mem.retry_pending().embedded == 0


def test_a_changed_text_is_embedded_anew_and_a_closed_item_loses_its_vector(
    db_url: str, managers: list[MemoryManager]
) -> None:
    embedder = HashingEmbedder()
    mem = MemoryManager(db=db_url, embedding_model=embedder)
    managers.append(mem)
    fact = mem.knowledge.add("Lives in Berlin", user_id="sarah")
    mem.update(fact, "Lives in Lisbon", user_id="sarah")
    assert embedder.calls[-1] == ["Lives in Lisbon"]
    assert hits(mem, Scope.of("sarah"), "Lisbon")[0][0] == "Lives in Lisbon"
    calls, stored = len(embedder.calls), vectors(mem)
    assert mem.knowledge.add("Lives in Lisbon", user_id="sarah", topics=["home"]) == fact  # merged
    assert mem.item(fact, user_id="sarah").value["topics"] == ["home"]
    assert (len(embedder.calls), vectors(mem)) == (calls, stored)  # new topics, same text: same vector
    newer = mem.knowledge.add("Lives in Porto", user_id="sarah", replaces=fact)
    assert set(vectors(mem)) == {newer}  # the superseded item is closed: out of every search


def test_an_item_changed_while_it_was_embedded_keeps_its_new_text(
    sqlite_url: str, managers: list[MemoryManager]
) -> None:
    """The vector is stored only if the item still says what was embedded: a write made during the model
    call wins, and its own embedding is what stays."""
    inner = HashingEmbedder()
    changed: list[str] = []

    def racing(texts: Sequence[str]) -> list[list[float]]:
        if texts == ["Lives in Berlin"] and not changed:
            changed.append("done")
            mem.update(fact_id[0], "Lives in Lisbon", user_id="sarah")  # commits while we "compute"
        return inner(texts)

    racing.name = "racing"  # type: ignore[attr-defined]
    fact_id: list[str] = []
    mem = MemoryManager(db=sqlite_url, embedding_model=racing)
    managers.append(mem)
    mem._store.embedder = None  # the first write stores the item only
    fact_id.append(mem.knowledge.add("Lives in Berlin", user_id="sarah"))
    mem._store.embedder = mem._embedder
    assert mem.retry_pending().embedded == 0  # Berlin's vector is refused; Lisbon's came with the update
    assert [(t, round(s, 3)) for t, s in hits(mem, Scope.of("sarah"), "Lives in Lisbon")] == [
        ("Lives in Lisbon", 1.0)
    ]


def test_forget_and_delete_user_take_the_vectors_with_them(
    db_url: str, managers: list[MemoryManager]
) -> None:
    mem = MemoryManager(db=db_url, embedding_model=HashingEmbedder())
    managers.append(mem)
    fact = mem.knowledge.add("Lives in Berlin", user_id="sarah")
    mem.knowledge.add("Likes pandas", user_id="sarah", agent_id="bot")
    mem.knowledge.add("Has a cat", user_id="marco")
    assert vector_rows(mem) == 3
    mem.forget(fact, user_id="sarah")
    assert vector_rows(mem) == 2
    mem.delete_user("sarah")
    assert set(vectors(mem)) == {mem.get(user_id="marco").knowledge[0].id}
    mem.delete_agent_memory("bot")
    assert vector_rows(mem) == 1


def test_an_imported_user_is_pending_embedding(db_url: str, managers: list[MemoryManager]) -> None:
    mem = MemoryManager(db=db_url, embedding_model=HashingEmbedder())
    managers.append(mem)
    mem.knowledge.add_many(["Lives in Berlin", "Likes pandas"], user_id="sarah")
    exported = mem.export_user("sarah")
    mem.delete_user("sarah")
    mem.import_user(exported)
    assert vector_rows(mem) == 0
    assert mem.retry_pending(user_id="sarah").embedded == 2


def test_dense_hits_rank_one_owners_items_only(db_url: str, managers: list[MemoryManager]) -> None:
    mem = MemoryManager(db=db_url, embedding_model=HashingEmbedder())
    managers.append(mem)
    mem.knowledge.add_many(["Lives in Berlin", "Likes pandas", "Works at a bakery"], user_id="sarah")
    mem.knowledge.add("Reviews code on Fridays", user_id="sarah", agent_id="reviewer")
    mem.knowledge.add("Lives in Berlin too", user_id="marco")
    mem.knowledge.add("Lives in Berlin as an agent", agent_id="reviewer")

    found = hits(mem, Scope.of("sarah"), "Where does she live?")
    assert found[0][0] == "Lives in Berlin"
    assert [s for _t, s in found] == sorted((s for _t, s in found), reverse=True)
    # The user's rows of every agent (the read path filters what the scope sees), never another
    # user's or an agent's own memory.
    assert {t for t, _s in found} == {
        "Lives in Berlin",
        "Likes pandas",
        "Works at a bakery",
        "Reviews code on Fridays",
    }
    assert [t for t, _s in hits(mem, Scope.of("marco"), "Berlin")] == ["Lives in Berlin too"]
    assert [t for t, _s in hits(mem, Scope.for_agent("reviewer"), "Berlin")] == [
        "Lives in Berlin as an agent"
    ]
    assert len(hits(mem, Scope.of("sarah"), "Berlin", k=2)) == 2
    assert hits(mem, Scope.of("nobody"), "Berlin") == []


def test_dense_hits_see_every_change_after_a_cached_read(db_url: str, managers: list[MemoryManager]) -> None:
    """The owner's matrix is cached; an addition, a deletion and a changed text are each seen at once."""
    mem = MemoryManager(db=db_url, embedding_model=HashingEmbedder())
    managers.append(mem)
    berlin = mem.knowledge.add("Lives in Berlin", user_id="sarah")
    mem.knowledge.add("Likes pandas", user_id="sarah")
    sarah = Scope.of("sarah")
    assert [t for t, _ in hits(mem, sarah, "Berlin")] == ["Lives in Berlin", "Likes pandas"]
    mem.knowledge.add("Berlin is home", user_id="sarah")
    assert "Berlin is home" in [t for t, _ in hits(mem, sarah, "Berlin")]
    mem.update(berlin, "Lives in Lisbon", user_id="sarah")
    assert hits(mem, sarah, "Lisbon")[0][0] == "Lives in Lisbon"
    assert "Lives in Berlin" not in [t for t, _ in hits(mem, sarah, "Berlin")]
    mem.forget(berlin, user_id="sarah")
    assert "Lives in Lisbon" not in [t for t, _ in hits(mem, sarah, "Lisbon")]
    # Another manager's write (another process) is seen too: the check reads the database.
    other = MemoryManager(db=db_url, embedding_model=HashingEmbedder())
    managers.append(other)
    other.knowledge.add("Lisbon trip in May", user_id="sarah")
    assert hits(mem, sarah, "Lisbon")[0][0] == "Lisbon trip in May"


def test_an_expired_item_is_no_dense_hit(sqlite_url: str, managers: list[MemoryManager]) -> None:
    from datetime import UTC, datetime, timedelta

    from agentmem.testing import ManualClock

    clock = ManualClock(datetime(2026, 1, 1, tzinfo=UTC))
    mem = MemoryManager(db=sqlite_url, embedding_model=HashingEmbedder(), clock=clock)
    managers.append(mem)
    mem.knowledge.add("Lives in Berlin", user_id="sarah", expires_at=clock() + timedelta(days=1))
    mem.knowledge.add("Likes pandas", user_id="sarah")
    assert len(hits(mem, Scope.of("sarah"), "Berlin")) == 2
    clock.advance(timedelta(days=2))
    assert [t for t, _ in hits(mem, Scope.of("sarah"), "Berlin")] == ["Likes pandas"]


def test_reembed_after_a_model_change(db_url: str, managers: list[MemoryManager]) -> None:
    old = MemoryManager(db=db_url, embedding_model=HashingEmbedder(256))
    managers.append(old)
    old.knowledge.add_many(["Lives in Berlin", "Likes pandas"], user_id="sarah")
    old.knowledge.add("Has a cat", user_id="marco")
    new = MemoryManager(db=db_url, embedding_model=HashingEmbedder(128))
    managers.append(new)
    assert hits(new, Scope.of("sarah"), "Berlin") == []  # every item is pending for the new model
    assert new.reembed(user_id="sarah") == 2
    assert sorted(set(vectors(new).values())) == [
        "agentmem-testing-hashing-128",
        "agentmem-testing-hashing-256",
    ]
    assert new.reembed() == 1
    assert set(vectors(new).values()) == {"agentmem-testing-hashing-128"}
    assert hits(new, Scope.of("sarah"), "Berlin")[0][0] == "Lives in Berlin"
    assert new.reembed() == 0
    assert new.reembed(everything=True) == 3  # the same model again, e.g. after its server changed
    with pytest.raises(ConfigurationError, match="embedding_model"):
        MemoryManager(db=db_url).reembed()


def test_the_litellm_path_through_loopback_embeddings(db_url: str, managers: list[MemoryManager]) -> None:
    with LoopbackServer() as server:
        mem = MemoryManager(
            db=db_url,
            embedding_model="openai/test-embedding",
            embedding_options={"api_base": server.url, "api_key": "test-key"},
        )
        managers.append(mem)
        mem.knowledge.add_many(["Lives in Berlin", "Likes pandas"], user_id="sarah")
        assert len(server.embedding_requests) == 1
        assert server.embedding_requests[0]["model"] == "test-embedding"
        assert server.embedding_requests[0]["input"] == ["Lives in Berlin", "Likes pandas"]
        assert set(vectors(mem).values()) == {"openai/test-embedding"}
        assert hits(mem, Scope.of("sarah"), "Where does she live?")[0][0] == "Lives in Berlin"

        server.embedding_fault = Fault(503)
        mem.knowledge.add("Works at a bakery", user_id="sarah")  # stored; its vector pending
        assert len(vectors(mem)) == 2
        with pytest.raises(EmbeddingError, match="test-embedding"):
            mem._embedder.embed(["anything"])  # type: ignore[union-attr]
        server.embedding_fault = None
        assert mem.retry_pending(user_id="sarah").embedded == 1
        assert len(vectors(mem)) == 3


def test_cli_reembed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "test-key")  # as the command's help says: the usual variable
    url = f"sqlite:///{tmp_path / 'memory.db'}"
    with MemoryManager(db=url) as mem:  # written without an embedding model: all pending
        mem.knowledge.add_many(["Lives in Berlin", "Likes pandas"], user_id="sarah")
        mem.knowledge.add("Has a cat", user_id="marco")
    with LoopbackServer() as server:
        base = ["--db", url, "reembed", "--model", "openai/test-embedding", "--api-base", server.url]
        assert main([*base, "--user", "sarah"]) == 0
        assert capsys.readouterr().out == "embedded 2 items of sarah with openai/test-embedding\n"
        assert main(base) == 0
        assert capsys.readouterr().out == "embedded 1 items with openai/test-embedding\n"
        assert [r["input"] for r in server.embedding_requests] == [
            ["Lives in Berlin", "Likes pandas"],
            ["Has a cat"],
        ]


def test_without_an_embedding_model_nothing_is_embedded_and_numpy_is_not_imported(tmp_path: Path) -> None:
    script = f"""
import sys
from agentmem import MemoryManager
mem = MemoryManager(db="sqlite:///{tmp_path / "memory.db"}")
assert mem._embedder is None
mem.knowledge.add("Lives in Berlin", user_id="sarah")
mem.learn([{{"role": "user", "content": "I'm Sarah and I live in Berlin."}}], user_id="sarah")
mem.compile(user_id="sarah", query="Where does she live?")
mem.search("Berlin", user_id="sarah")
mem.retry_pending()
with mem._store.engine.connect() as conn:
    assert conn.exec_driver_sql("SELECT count(*) FROM agentmem_vectors").scalar_one() == 0
assert "numpy" not in sys.modules and "litellm" not in sys.modules, "imported without an embedding model"
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr


def test_bad_embedding_configuration_and_answers_are_clear_errors() -> None:
    with pytest.raises(ConfigurationError, match="embedding_options need"):
        MemoryManager(db="sqlite://", embedding_options={"api_base": "http://127.0.0.1:9"})
    with pytest.raises(ConfigurationError, match="model id or a function"):
        MemoryManager(db="sqlite://", embedding_model=42)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="non-empty"):
        Embedder(" ")
    with pytest.raises(ConfigurationError, match="at most 255"):
        Embedder("openai/" + "x" * 300)
    with pytest.raises(ConfigurationError, match="not a function"):
        Embedder(HashingEmbedder(), {"api_base": "http://127.0.0.1:9"})

    def answers(vectors: list[Any]) -> Embedder:
        def model(texts: Sequence[str]) -> list[Any]:
            return vectors

        return Embedder(model)

    with pytest.raises(EmbeddingError, match=r"1 vectors .* for 2 texts"):
        answers([[1.0, 0.0]]).embed(["a", "b"])
    with pytest.raises(EmbeddingError, match="equal-length"):
        answers([[1.0, 0.0], [1.0]]).embed(["a", "b"])
    with pytest.raises(EmbeddingError, match="not finite"):
        answers([[float("nan"), 1.0]]).embed(["a"])
    with pytest.raises(EmbeddingError, match="all-zero"):
        answers([[0.0, 0.0]]).embed(["a"])
    changing = iter([[[1.0, 0.0]], [[1.0, 0.0, 0.0]]])
    embedder = Embedder(lambda texts: next(changing))
    embedder.embed(["a"])
    with pytest.raises(EmbeddingError, match="changed its vectors' length from 2 to 3"):
        embedder.embed(["a"])
    unit = Embedder(lambda texts: [[3.0, 4.0]]).embed(["a"])
    assert unit.dtype.name == "float32"
    assert unit.tolist() == [[pytest.approx(0.6), pytest.approx(0.8)]]


def test_a_query_vector_of_another_length_is_refused(sqlite_url: str, managers: list[MemoryManager]) -> None:
    mem = MemoryManager(db=sqlite_url, embedding_model=HashingEmbedder())
    managers.append(mem)
    mem.knowledge.add("Lives in Berlin", user_id="sarah")
    with mem._store.engine.connect() as conn, pytest.raises(EmbeddingError, match="3 values"):
        mem._store.dense_hits(conn, Scope.of("sarah"), [1.0, 0.0, 0.0], 5)
    without = MemoryManager(db=sqlite_url)
    managers.append(without)
    with without._store.engine.connect() as conn, pytest.raises(ConfigurationError):
        without._store.dense_hits(conn, Scope.of("sarah"), [1.0], 5)


def test_learned_items_are_embedded_too(db_url: str, managers: list[MemoryManager]) -> None:
    embedder = HashingEmbedder()
    model = ScriptedModel([{"profile": {"name": "Sarah"}, "knowledge": [{"text": "Lives in Berlin"}]}])
    mem = MemoryManager(db=db_url, model=model, embedding_model=embedder)
    managers.append(mem)
    mem.learn([{"role": "user", "content": "I'm Sarah, I live in Berlin."}], user_id="sarah", agent_id="bot")
    assert len(embedder.calls) == 1
    assert sorted(embedder.calls[0]) == sorted(i.text for i in mem.get(user_id="sarah", agent_id="bot").items)
    assert hits(mem, Scope.of("sarah"), "Where does she live?")[0][0] == "Lives in Berlin"


def test_alearn_embeds_its_items(sqlite_url: str, managers: list[MemoryManager]) -> None:
    embedder = HashingEmbedder()
    model = ScriptedModel([{"knowledge": [{"text": "Lives in Berlin"}]}])
    mem = MemoryManager(db=sqlite_url, model=model, embedding_model=embedder)
    managers.append(mem)
    asyncio.run(mem.alearn([{"role": "user", "content": "I live in Berlin."}], user_id="sarah"))
    assert embedder.calls == [["Lives in Berlin"]]


def test_hashing_embedder_is_deterministic_unit_length_and_shares_word_parts() -> None:
    embedder = HashingEmbedder()
    first, again = embedder(["Where does she live?"]), HashingEmbedder()(["Where does she live?"])
    assert first == again
    assert len(first[0]) == 256
    assert sum(v * v for v in first[0]) == pytest.approx(1.0)
    assert sum(v * v for v in embedder.vector("")) == pytest.approx(1.0)  # no words: still a vector

    def cosine(a: str, b: str) -> float:
        return sum(x * y for x, y in zip(embedder.vector(a), embedder.vector(b), strict=True))

    assert cosine("Where does she live?", "Lives in Berlin") > cosine("Where does she live?", "Likes tea")
    assert cosine("She lives in Berlin", "Sarah lives in Berlin") > 0.5
    with pytest.raises(ValueError, match="dimensions"):
        HashingEmbedder(4)


def test_loopback_embeddings_endpoint_answers_in_openai_format() -> None:
    import json
    import urllib.error
    import urllib.request

    def post(url: str, body: object) -> tuple[int, Any]:
        request = urllib.request.Request(url, json.dumps(body).encode(), {"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=10) as reply:
                return reply.status, json.loads(reply.read())
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read())

    with LoopbackServer() as server:
        status, body = post(f"{server.url}/embeddings", {"model": "m", "input": ["a b", "c"]})
        assert status == 200
        assert [d["index"] for d in body["data"]] == [0, 1]
        assert body["data"][0]["embedding"] == HashingEmbedder().vector("a b")
        status, body = post(f"{server.url}/embeddings", {"model": "m", "input": "one text"})
        assert (status, len(body["data"])) == (200, 1)
        assert post(f"{server.url}/embeddings", {"model": "m", "input": [1, 2]})[0] == 400
        server.embedding_fault = Fault(429)
        assert post(f"{server.url}/embeddings", {"model": "m", "input": ["a"]})[0] == 429
        assert post(f"{server.url}/nothing", {})[0] == 404
        assert len(server.embedding_requests) == 4
    with LoopbackServer(embedder=lambda texts: 1 / 0) as broken:  # type: ignore[arg-type,return-value]
        status, body = post(f"{broken.url}/embeddings", {"model": "m", "input": ["a"]})
        assert status == 500
        assert "ZeroDivisionError" in body["error"]["message"]


def test_dense_for_embeds_the_query_once_and_degrades_to_none(
    sqlite_url: str, managers: list[MemoryManager], caplog: pytest.LogCaptureFixture
) -> None:
    flaky = Flaky()
    mem = MemoryManager(db=sqlite_url, embedding_model=flaky)
    managers.append(mem)
    mem.knowledge.add_many(["Lives in Berlin", "Likes pandas"], user_id="sarah")
    flaky.calls.clear()
    dense = mem._store.dense_for("Where does she live?")
    assert dense is not None
    assert flaky.calls == [["Where does she live?"]]
    with mem._store.engine.connect() as conn:
        assert len(list(dense(conn, Scope.of("sarah")))) == 2  # every vector of the owner, best first
        assert len(list(dense(conn, Scope.of("sarah")))) == 2  # as often as a read asks
    assert flaky.calls == [["Where does she live?"]]  # the query was embedded once
    assert mem._store.dense_for("Where does she live?") is not None
    assert len(flaky.calls) == 1  # a query asked again: its vector is kept (a template, a report)
    assert mem._store.dense_for(None) is None
    assert mem._store.dense_for("  ") is None
    flaky.down = True
    assert mem._store.dense_for("Where does he work?") is None  # the read ranks by words alone
    assert "ranking by its words alone" in caplog.text
    without = MemoryManager(db=sqlite_url)
    managers.append(without)
    assert without._store.dense_for("Where does she live?") is None
