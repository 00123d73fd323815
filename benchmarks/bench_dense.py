"""Benchmark: ``Store.dense_hits``, the scan of one owner's vectors, at 5,000 facts of 384 dimensions.

One user holds ``--facts`` knowledge items (embedded at write time by a function returning random
vectors), another user as many (so the scan reads one owner's rows of a shared table). Measured, each
over ``--repeat`` calls after a warm-up:

- ``first``: a new manager's first dense_hits (reads every vector of the owner);
- ``cached``: later calls (one index-only check of the owner's (count, largest id), the scoring, and a
  liveness check of the best hits);
- ``after write``: a call after one more fact was written (reads only the row added);
- ``compile``: ``compile(query, token_budget=1800)`` of that user with semantic search on (the query's
  embedding call timed apart and left out) and off (a manager without a model, same database), in
  alternation: p50, p95 and their ratio.

Targets (issue 11): ``cached`` at 5,000 x 384 on SQLite within ~5 ms; compile's p95 with semantic search
on within 20 ms on SQLite, the embedding call excluded.

Run:  python benchmarks/bench_dense.py [--db URL] [--facts N] [--dims D] [--repeat N]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from agentmem import MemoryManager
from agentmem.scope import Scope


class RandomEmbedder:
    """Random vectors (their ranking is not the point here), with the seconds spent in its calls."""

    def __init__(self, dims: int) -> None:
        self.rng = np.random.default_rng(0)
        self.dims = dims
        self.name = f"random-{dims}"
        self.seconds = 0.0

    def __call__(self, texts: Sequence[str]) -> list[list[float]]:
        start = time.perf_counter()
        vectors = [list(v) for v in self.rng.standard_normal((len(texts), self.dims))]
        self.seconds += time.perf_counter() - start
        return vectors


WORDS = [
    f"{a}{b}{c}"
    for a in ("ka", "lo", "mi", "ne", "su")
    for b in ("ra", "te", "vo", "xi")
    for c in "bdgkmprst"
]


def fact(rng: np.random.Generator, i: int) -> str:
    """A fact of 6 to 12 words of a 180-word vocabulary, and its number (so no two are the same)."""
    return " ".join(rng.choice(WORDS, int(rng.integers(6, 13)))) + f" number {i}"


def timed(call: Callable[[], object], repeat: int) -> list[float]:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        call()
        times.append((time.perf_counter() - start) * 1e3)
    return times


def show(label: str, times: list[float]) -> None:
    print(
        f"  {label:<12} median {statistics.median(times):7.2f} ms   min {min(times):7.2f} ms   n={len(times)}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--db", help="database URL (default: a new SQLite file)")
    parser.add_argument("--facts", type=int, default=5000)
    parser.add_argument("--dims", type=int, default=384)
    parser.add_argument("--repeat", type=int, default=100)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = args.db or f"sqlite:///{Path(tmp) / 'dense.db'}"
        embed = RandomEmbedder(args.dims)
        rng = np.random.default_rng(2)
        with MemoryManager(db=url, embedding_model=embed) as mem:
            for user in ("bench", "other"):
                mem.delete_user(user)
                start = time.perf_counter()
                for first in range(0, args.facts, 500):
                    texts = [fact(rng, i) for i in range(first, min(first + 500, args.facts))]
                    mem.knowledge.add_many(texts, user_id=user)
                print(
                    f"{user}: {args.facts} facts written and embedded in {time.perf_counter() - start:.1f} s"
                )
        query = np.random.default_rng(1).standard_normal(args.dims)
        scope = Scope.of("bench")
        print(f"dense_hits, {args.facts} x {args.dims}, k=20, {url.split(':', 1)[0]}:")
        firsts = []
        for _ in range(5):
            with MemoryManager(db=url, embedding_model=embed) as fresh, fresh._store.engine.connect() as conn:
                firsts += timed(lambda: fresh._store.dense_hits(conn, scope, query, 20), 1)
        show("first", firsts)
        with MemoryManager(db=url, embedding_model=embed) as mem:
            store = mem._store
            with store.engine.connect() as conn:
                store.dense_hits(conn, scope, query, 20)
                show("cached", timed(lambda: store.dense_hits(conn, scope, query, 20), args.repeat))
            after = []
            for i in range(20):
                mem.knowledge.add(f"one more fact {i}", user_id="bench")
                with store.engine.connect() as conn:
                    after += timed(lambda: store.dense_hits(conn, scope, query, 20), 1)
            show("after write", after)
            compile_times(mem, MemoryManager(db=url), embed, args.repeat)
            for user in ("bench", "other"):
                mem.delete_user(user)


def compile_times(
    semantic: MemoryManager, lexical: MemoryManager, embed: RandomEmbedder, repeat: int
) -> None:
    """compile(query, token_budget=1800) with semantic search on and off, alternately."""
    rng = np.random.default_rng(3)
    queries = [" ".join(rng.choice(WORDS, 5)) for _ in range(repeat)]
    times: dict[str, list[float]] = {"on": [], "off": []}
    with lexical:
        for query in queries[:5]:  # warm-up
            semantic.compile(user_id="bench", query=query, token_budget=1800)
            lexical.compile(user_id="bench", query=query, token_budget=1800)
        for query in queries:
            before = embed.seconds
            start = time.perf_counter()
            semantic.compile(user_id="bench", query=query, token_budget=1800)
            times["on"].append((time.perf_counter() - start - (embed.seconds - before)) * 1e3)
            start = time.perf_counter()
            lexical.compile(user_id="bench", query=query, token_budget=1800)
            times["off"].append((time.perf_counter() - start) * 1e3)
    print("compile(query, token_budget=1800), the query's embedding call excluded:")
    for name, label in (("off", "words only"), ("on", "+ meaning")):
        p95 = statistics.quantiles(times[name], n=20)[-1]
        print(f"  {label:<12} p50 {statistics.median(times[name]):7.2f} ms   p95 {p95:7.2f} ms")
    ratio = statistics.median(times["on"]) / statistics.median(times["off"])
    p95 = statistics.quantiles(times["on"], n=20)[-1]
    print(f"  semantic search on / off, p50: {ratio:.2f}x")
    print(f"  {'PASS' if p95 <= 20 else 'MISS'}: p95 with semantic search {p95:.2f} ms (target <= 20 ms)")


if __name__ == "__main__":
    main()
