"""benchmarks/bench_locomo.py on a small conversation in LOCOMO's format, written here (never the real
data): its parsing, storing, baselines and recall counting, and its command line."""

from __future__ import annotations

import importlib.util
import inspect
import json
import sys
import zipfile
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from agentmem import MemoryManager

SCRIPT = Path(__file__).parent.parent / "benchmarks" / "bench_locomo.py"
SMALL = 60  # tokens: the element and two or three lines, of the 9 stored


def load_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_locomo", SCRIPT)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_locomo"] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


bench = load_script()

FILLER = [
    "I spent the weekend repainting the garden fence a pale shade of green.",
    "My cousin visited and we cooked a huge pot of lentil soup together.",
    "The train to work was late again, so I read a novel on the platform.",
    "We adopted a grey cat from the shelter and named her Pebble.",
    "I have been practising my serve at the tennis club every Thursday.",
    "The bakery on the corner finally reopened after the renovation.",
]


def turn(speaker: str, dia_id: str, text: str, **extra: Any) -> dict[str, Any]:
    return {"speaker": speaker, "dia_id": dia_id, "text": text, **extra}


def conversation() -> dict[str, Any]:
    """Three sessions: a turn about a kestrel orchestra in the oldest, a shared photo in the second, and
    in the newest a repeat of the first turn (same speaker, same words) and the festival turn."""
    s1 = [turn("Ada" if i % 2 else "Ben", f"D1:{i + 1}", text) for i, text in enumerate(FILLER[:3])]
    s1.append(turn("Ada", "D1:4", "Our kestrel orchestra tunes the theremin before every rehearsal."))
    s2 = [turn("Ben" if i % 2 else "Ada", f"D2:{i + 1}", text) for i, text in enumerate(FILLER[3:])]
    s2.append(
        turn(
            "Ben", "D2:4", "Look what I found at the flea market!", blip_caption="a photo of a brass compass"
        )
    )
    s3 = [
        turn("Ben", "D3:1", FILLER[0]),
        turn("Ben", "D3:2", "See you at the harbour festival next Saturday."),
    ]
    return {
        "speaker_a": "Ada",
        "speaker_b": "Ben",
        "session_1_date_time": "1:56 pm on 8 May, 2023",
        "session_1": s1,
        "session_2_date_time": "10:04 am on 19 June, 2023",
        "session_2": s2,
        "session_3_date_time": "7:30 pm on 2 August, 2023",
        "session_3": s3,
        "session_4_date_time": "9:00 am on 3 August, 2023",  # a date with no turns, as in the real data
        "qa": [
            {
                "question": "Which instrument does the kestrel orchestra tune?",
                "evidence": ["D1:4"],
                "category": 1,
            },
            {
                "question": "What did Ben buy at the flea market?",
                "evidence": ["D2:4", "D9:99"],
                "category": 4,
            },
            {"question": "When is the festival?", "evidence": ["D3:2"], "category": 2},
            {"question": "What is the name of the dog?", "evidence": [], "category": 5},
            {"question": "Who fixed the bicycle?", "evidence": ["D 7"], "category": 3},
        ],
    }


@pytest.fixture
def data(tmp_path: Path) -> Path:
    path = tmp_path / "locomo.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("data/one.json", json.dumps(conversation()))
    return path


def test_parsing_keeps_answerable_questions_with_known_evidence(data: Path) -> None:
    [conv] = bench.load_conversations(data)
    assert [s.name for s in conv.sessions] == ["session_1", "session_2", "session_3"]
    assert conv.sessions[0].at.isoformat() == "2023-05-08T13:56:00+00:00"
    photo = conv.sessions[1].turns[-1].text
    assert photo == "Ben: Look what I found at the flea market! [shares a photo: a photo of a brass compass]"
    # category 5 left out; an evidence id naming no turn dropped and counted; a question left with
    # none skipped
    assert [q.evidence for q in conv.questions] == [("D1:4",), ("D2:4",), ("D3:2",)]
    assert conv.dropped_evidence == 2


def test_a_repeated_turn_maps_to_the_item_holding_it(data: Path, tmp_path: Path) -> None:
    [conv] = bench.load_conversations(data)
    stored = bench.store(conv, tmp_path / "conv.db", None)
    try:
        assert stored.item_of["D3:1"] == stored.item_of["D1:1"]  # the same text, stored once
        assert len(set(stored.item_of.values())) == len(stored.item_of) - 1
        items = stored.mem.get(user_id=stored.user).items
        assert {i.text for i in items if i.id == stored.item_of["D1:4"]} == {conv.sessions[0].turns[3].text}
    finally:
        stored.mem.close()


def test_baselines_rank_fit_and_render_as_compile_does(data: Path, tmp_path: Path) -> None:
    [conv] = bench.load_conversations(data)
    stored = bench.store(conv, tmp_path / "conv.db", None)
    try:
        baselines = bench.Baselines(stored)
        newest = baselines.recency("anything", SMALL)
        lines = newest.splitlines()
        assert lines[0] == "<user_knowledge>"
        assert lines[-1] == "</user_knowledge>"
        assert "2023-08-02: Ben: See you at the harbour festival next Saturday." in lines[1]
        assert 3 <= len(lines) < 2 + 9  # the element and at least one line, never all 9
        assert stored.mem.count_tokens(newest) <= SMALL
        best = baselines.bm25_context("Which instrument does the kestrel orchestra tune?", SMALL)
        assert best.splitlines()[1] == (
            "- 2023-05-08: Ada: Our kestrel orchestra tunes the theremin before every rehearsal."
        )
        assert stored.mem.count_tokens(best) <= SMALL
        assert baselines.recency("anything", 1) == ""  # not even the element fits
    finally:
        stored.mem.close()


def test_bm25_scores_rare_terms_higher_and_ignores_unknown_words() -> None:
    scores = bench.BM25(["the cat sat", "the dog sat", "the cat and the cat"]).scores("Cat! zebra")
    assert scores[1] == 0.0
    assert scores[2] > scores[0] > 0.0  # more occurrences win, within the saturation of k1
    assert bench.BM25([]).scores("cat") == []


def test_recall_counts_evidence_turns_per_variant_and_budget(data: Path, tmp_path: Path) -> None:
    [conv] = bench.load_conversations(data)
    tally = bench.Tally()
    bench.evaluate(conv, [SMALL, 2_000], tally, tmp_path)
    assert (tally.questions, tally.evidence, tally.dropped_evidence) == (3, 3, 2)
    # each evidence turn is the only one with its question's rarer words; the festival turn is the newest
    assert tally.hits["bm25"][SMALL] == tally.hits["lexical"][SMALL] == 3
    assert 1 <= tally.hits["recency"][SMALL] < 3  # the festival turn, never the kestrel one: the oldest
    for variant in ("recency", "bm25", "lexical"):
        assert tally.hits[variant][2_000] == 3  # everything fits
        assert tally.recall(variant, 2_000) == 1.0
    assert len(tally.compile_ms["lexical"][SMALL]) == 3


def test_an_item_text_inside_a_longer_line_is_not_recalled() -> None:
    lines = ["<user_knowledge>", "- 2023-05-08: Ada: Yes! And more.", "- 2023-05-09: Ben: a &lt;b&gt;"]
    context = "\n".join([*lines, "</user_knowledge>"])
    texts = bench.recalled_texts(context)
    assert "Ada: Yes! And more." in texts
    assert "Ben: a &lt;b&gt;" in texts
    assert "Ada: Yes!" not in texts


def test_command_line_prints_json_and_a_table(data: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert bench.main(["--data", str(data), "--budgets", f"{SMALL},2000", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert (result["questions"], result["evidence_turns"], result["budgets"]) == (3, 3, [SMALL, 2_000])
    assert set(result["recall"]) == {"recency", "bm25", "lexical"}
    assert result["recall"]["lexical"]["2000"] == 1.0
    assert (
        result["compile_ms"]["lexical"][str(SMALL)]["p95"]
        >= result["compile_ms"]["lexical"][str(SMALL)]["p50"]
    )
    assert bench.main(["--data", str(data), "--conversations", "1"]) == 0
    table = capsys.readouterr().out
    assert "1 conversation(s), 3 questions (categories 1-4), 3 evidence turns" in table
    assert "PASS  agentmem lexical at 1,800: 1.000 (target >= 0.70)" in table  # all 9 items fit
    assert "  agentmem lexical" in table
    assert "  plain BM25" in table
    assert "  recency (newest first)" in table


def test_missing_data_fails_with_a_message(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert bench.main(["--data", str(tmp_path / "none.zip")]) == 2
    assert "LOCOMO data not found at" in capsys.readouterr().err


def word_vectors(texts: Sequence[str]) -> list[list[float]]:
    """A stand-in embedding: which of 64 buckets each lowercase word falls in (deterministic)."""
    vectors = []
    for text in texts:
        vector = [0.0] * 64
        for word in bench.tokens(text):
            vector[sum(map(ord, word)) % 64] += 1.0
        vectors.append(vector)
    return vectors


def test_hybrid_variant_runs_when_agentmem_takes_an_embedding_model(data: Path, tmp_path: Path) -> None:
    [conv] = bench.load_conversations(data)
    tally = bench.Tally()
    if "embedding_model" not in inspect.signature(MemoryManager).parameters:
        with pytest.raises(bench.BenchError, match=r"no MemoryManager\(embedding_model=\.\.\.\)"):
            bench.check_embeddings_supported()
        with pytest.raises(bench.BenchError, match="the hybrid variant needs it"):
            bench.evaluate(conv, [2_000], tally, tmp_path, word_vectors)
        return
    embedder = bench.TimedEmbedder(word_vectors)
    bench.evaluate(conv, [2_000], tally, tmp_path, embedder)
    assert tally.hits["hybrid"][2_000] == 3
    assert embedder.calls > 0
    assert embedder.texts > 0


def test_dense_baselines_rank_by_the_vectors_given(data: Path, tmp_path: Path) -> None:
    [conv] = bench.load_conversations(data)
    stored = bench.store(conv, tmp_path / "conv.db", None)
    try:
        embedder = bench.TimedEmbedder(word_vectors)
        baselines = bench.Baselines(stored, embedder.vectors)
        assert embedder.calls == 0  # the baselines' own embedding is not counted as agentmem's
        kestrel = "- 2023-05-08: Ada: Our kestrel orchestra tunes the theremin before every rehearsal."
        for context in (
            baselines.dense_context("kestrel orchestra theremin", SMALL),
            baselines.bm25_dense_context("kestrel orchestra theremin", SMALL),
        ):
            assert context.splitlines()[1] == kestrel
            assert stored.mem.count_tokens(context) <= SMALL
        tally = bench.Tally()
        bench.count_recall(conv, [SMALL], tally, {"lexical": stored}, None)
        assert "dense" not in tally.hits  # no embedding model: no dense baselines
    finally:
        stored.mem.close()
