"""Benchmark: ``Store.dense_hits``, the scan of one owner's vectors, at 5,000 facts of 384 dimensions.

One user holds ``--facts`` knowledge items (embedded at write time by a function returning random
vectors), another user as many (so the scan reads one owner's rows of a shared table). Measured, each
over ``--repeat`` calls after a warm-up:

- ``first``: a new manager's first dense_hits (reads every vector of the owner);
- ``cached``: later calls (one index-only check of the owner's (count, largest id), the scoring, and a
  liveness check of the best hits);
- ``after write``: a call after one more fact was written (reads only the row added).

Target (issue 11): ``cached`` at 5,000 x 384 on SQLite within ~5 ms.

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


def random_embedder(dims: int) -> Callable[[Sequence[str]], list[list[float]]]:
    rng = np.random.default_rng(0)

    def embed(texts: Sequence[str]) -> list[list[float]]:
        return [list(v) for v in rng.standard_normal((len(texts), dims))]

    embed.name = f"random-{dims}"  # type: ignore[attr-defined]
    return embed


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
        embed = random_embedder(args.dims)
        with MemoryManager(db=url, embedding_model=embed) as mem:
            for user in ("bench", "other"):
                mem.delete_user(user)
                start = time.perf_counter()
                for first in range(0, args.facts, 500):
                    texts = [
                        f"fact {i} about topic {i % 97}" for i in range(first, min(first + 500, args.facts))
                    ]
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
            for user in ("bench", "other"):
                mem.delete_user(user)


if __name__ == "__main__":
    main()
