"""learn() time as the memory grows: agentmem's own time per learn at 100, 1k and 10k stored facts.

The model is a ScriptedModel (no network, no parsing of the prompt beyond the conversation): each learn
gets a reply of ``--changes`` knowledge entries, half new facts, half restating stored ones word for
word, so both the prompt read and the merge read (same key, similar words, the cap) run. Facts are seeded
with ``add_many`` into a knowledge layer whose cap is raised above the largest size.

Printed per backend and size: p50 and p95 of ``learn()`` wall time, and the ratio of p50 to the p50 at
the smallest size measured in the same run (flat cost: a ratio near 1).

Run: python benchmarks/bench_learn_size.py [--sizes 100 1000 10000] [--learns 30] [--backends sqlite postgres]
[--postgres URL]
(``--postgres`` defaults to $AGENTMEM_TEST_POSTGRES_URL; each run uses a new schema, dropped after).
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

from agentmem import MemoryManager
from agentmem.layers import KnowledgeLayer
from agentmem.testing import ScriptedModel

SYLLABLES = [
    "ka",
    "lo",
    "mi",
    "ne",
    "ru",
    "sa",
    "ti",
    "vo",
    "be",
    "da",
    "fe",
    "gu",
    "ho",
    "ji",
    "ku",
    "le",
    "ma",
    "no",
    "pe",
    "qui",
    "ra",
    "se",
    "to",
    "vu",
    "we",
    "xo",
    "ya",
    "ze",
]


def vocabulary(rng: random.Random, size: int) -> list[str]:
    words: set[str] = set()
    while len(words) < size:
        words.add("".join(rng.choice(SYLLABLES) for _ in range(rng.randint(2, 4))))
    return sorted(words)


def fact(rng: random.Random, vocab: list[str], i: int) -> str:
    return f"Works on {' '.join(rng.sample(vocab, 5))} project {i}"


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def measure(url: str, size: int, learns: int, changes: int) -> list[float]:
    rng = random.Random(size)
    vocab = vocabulary(rng, 3000)
    stored = [fact(rng, vocab, i) for i in range(size)]
    counter = iter(range(10**9))

    def reply(messages: list[dict[str, Any]]) -> dict[str, Any]:
        n = next(counter)
        new = [{"text": fact(rng, vocab, size + n * changes + k)} for k in range(changes - changes // 2)]
        again = [{"text": text} for text in rng.sample(stored, changes // 2)]
        return {"knowledge": new + again}

    mem = MemoryManager(
        db=url, model=ScriptedModel(reply), layers={"knowledge": KnowledgeLayer(max_items=200_000)}
    )
    try:
        knowledge = mem.layer("knowledge")
        for start in range(0, size, 2000):
            knowledge.add_many(stored[start : start + 2000], user_id="bench")
        seconds = []
        for i in range(learns + 3):
            said = f"Today I started on the {' '.join(rng.sample(vocab, 4))} project, number {i}."
            started = time.perf_counter()
            mem.learn([{"role": "user", "content": said}], user_id="bench")
            if i >= 3:  # the first learns warm caches and imports
                seconds.append(time.perf_counter() - started)
        return seconds
    finally:
        mem.close()


def postgres_schema(url: str) -> tuple[str, Any]:
    import psycopg

    admin = psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://"), autocommit=True)
    name = f"agentmem_bench_{uuid.uuid4().hex[:12]}"
    admin.execute(f'CREATE SCHEMA "{name}"')
    sep = "&" if "?" in url else "?"
    return f"{url}{sep}options=-csearch_path%3D{name}", (admin, name)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 1000, 10000])
    parser.add_argument("--learns", type=int, default=30)
    parser.add_argument("--changes", type=int, default=10)
    parser.add_argument("--postgres", default=os.environ.get("AGENTMEM_TEST_POSTGRES_URL"))
    parser.add_argument(
        "--backends", nargs="+", choices=["sqlite", "postgres"], default=["sqlite", "postgres"]
    )
    args = parser.parse_args()
    backends = [b for b in args.backends if b == "sqlite" or args.postgres]
    print(f"learn() with a scripted model, {args.changes} changes per reply, {args.learns} learns per size")
    for backend in backends:
        base = None
        for size in args.sizes:
            with tempfile.TemporaryDirectory() as tmp:
                if backend == "sqlite":
                    url, cleanup = f"sqlite:///{Path(tmp) / 'bench.db'}", None
                else:
                    url, cleanup = postgres_schema(args.postgres)
                try:
                    seconds = measure(url, size, args.learns, args.changes)
                finally:
                    if cleanup is not None:
                        admin, name = cleanup
                        admin.execute(f'DROP SCHEMA "{name}" CASCADE')
                        admin.close()
            p50, p95 = percentile(seconds, 50) * 1000, percentile(seconds, 95) * 1000
            base = base or p50
            mean = statistics.mean(seconds) * 1000
            print(
                f"  {backend:8} {size:>6} facts: learn p50 {p50:8.2f} ms  p95 {p95:8.2f} ms  "
                f"p50 / p50 at {args.sizes[0]}: {p50 / base:5.2f}x  (mean {mean:.2f})"
            )


if __name__ == "__main__":
    main()
