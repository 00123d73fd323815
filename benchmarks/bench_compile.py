"""Benchmark: ``MemoryManager.compile`` against a plain sqlite3 read of the same rows.

For one user with 10 / 100 / 1,000 / 10,000 knowledge items, plus a full profile (every field of the
default ``Profile``), policies (the 4 scalar fields of ``Policies`` + 16 ``rules``: 20 policies, stored
as 20 items: each rule is an item of its own) and 200 feedback items, it measures:

- compile without a query, compile with a query, compile with a query and ``token_budget=800``;
- the baseline: the stdlib ``sqlite3`` module, on its own connection to the same file, running
  ``SELECT * FROM agentmem_items WHERE user_id=? AND agent_id IN ('', ?) AND valid_to IS NULL``
  (every live item of the scope, which is what compile reads) and ``fetchall()``.

Target: compile with a query at 1,000 items within 2x the raw read (issue 8: one indexed query plus
rendering).

Run:  python benchmarks/bench_compile.py [--quick] [--repeat N] [--sizes 10,100] [--chunk N]

Each size gets a fresh database file in a fresh temporary directory. Seeding is timed and printed but
is not part of the measurement. Measurements are interleaved (one call of each operation per round),
after a warm-up, with ``time.perf_counter_ns``.
"""

from __future__ import annotations

import argparse
import gc
import math
import os
import platform
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from importlib.metadata import version
from pathlib import Path
from typing import Any

from agentmem import LayerConfig, MemoryManager
from agentmem.text import words
from agentmem.tokens import default_counter, estimate_tokens

USER = "bench-user"
AGENT = "bench-agent"  # compile reads the shared memory plus this agent's: agent_id IN ('', AGENT)
QUERY = "data cleaning with pandas"
BUDGET = 800
TARGET_SIZE = 1_000
TARGET_RATIO = 2.0
FULL_SIZES = (10, 100, 1_000, 10_000)
QUICK_SIZES = (10, 100, 1_000)
N_FEEDBACK = 200
N_RULES = 16
BASELINE_SQL = "SELECT * FROM agentmem_items WHERE user_id = ? AND agent_id IN ('', ?) AND valid_to IS NULL"
COUNT_SQL = (
    "SELECT layer, count(*) FROM agentmem_items "
    "WHERE user_id = ? AND agent_id IN ('', ?) AND valid_to IS NULL GROUP BY layer"
)

# ---- synthetic data ------------------------------------------------------------------------------

TOOLS = [
    "pandas", "polars", "NumPy", "scikit-learn", "PyTorch", "dbt", "Airflow", "Spark", "DuckDB",
    "PostgreSQL", "BigQuery", "Snowflake", "Jupyter", "FastAPI", "Docker", "Kubernetes", "Terraform",
    "Tableau", "Looker", "Excel", "R", "Dask", "Ray", "MLflow", "Prefect", "Kafka", "Redis",
    "Streamlit", "XGBoost", "LightGBM", "SQLite", "Metabase",
]  # fmt: skip
ACTIVITIES = [
    "cleaning", "deduplicating", "joining", "profiling", "validating", "aggregating", "resampling",
    "visualising", "labelling", "backfilling", "normalising", "imputing", "reshaping", "sampling",
]  # fmt: skip
DOMAINS = [
    "sales", "churn", "clickstream", "sensor", "payroll", "inventory", "shipping", "survey", "clinical",
    "marketing", "energy", "fraud", "weather", "pricing", "telemetry", "logistics", "census", "retail",
]  # fmt: skip
ARTIFACTS = [
    "dashboard", "pipeline", "forecast", "classifier", "report", "notebook", "scheduler", "warehouse",
    "backlog", "benchmark", "prototype", "playbook", "catalogue", "simulator",
]  # fmt: skip
ADJECTIVES = [
    "weekly", "nightly", "realtime", "quarterly", "experimental", "legacy", "regional", "internal",
    "customer-facing", "shared", "automated", "minimal",
]  # fmt: skip
TEAMS = [
    "finance", "growth", "platform", "research", "operations", "security", "product", "support",
    "analytics", "supply-chain", "risk", "design",
]  # fmt: skip
COMPANIES = [
    "Acme", "Globex", "Initech", "Umbrella", "Hooli", "Vandelay", "Stark", "Wayne", "Tyrell", "Cyberdyne",
    "Soylent", "Wonka", "Oscorp", "Aperture",
]  # fmt: skip
CITIES = [
    "Berlin", "Lisbon", "Toronto", "Nairobi", "Osaka", "Austin", "Warsaw", "Dublin", "Lyon", "Bogota",
    "Seoul", "Oslo", "Madrid", "Chennai",
]  # fmt: skip
COLLEAGUES = [
    "Priya", "Marco", "Aisha", "Tomasz", "Mei", "Lucas", "Fatima", "Jonas", "Chloe", "Kenji", "Amara",
    "Diego", "Ingrid", "Omar", "Sofia", "Rafael",
]  # fmt: skip
PROJECTS = [
    "Atlas", "Beacon", "Comet", "Dynamo", "Ember", "Falcon", "Granite", "Harbor", "Iris", "Juniper",
    "Kestrel", "Lumen", "Meridian", "Nimbus", "Orion", "Pioneer",
]  # fmt: skip
PROBLEMS = [
    "schema drift", "missing timestamps", "duplicate rows", "timezone bugs", "memory errors",
    "slow joins", "flaky tests", "encoding errors", "null spikes", "late arrivals", "skewed partitions",
    "stale caches",
]  # fmt: skip
EVENTS = ["launch", "audit", "offsite", "hackathon", "conference", "reorg", "deadline", "review"]
MONTHS = [
    "January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
    "November", "December",
]  # fmt: skip
YEARS = [str(y) for y in range(2016, 2026)]
WEEKDAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday"]
QUARTERS = ["Q1", "Q2", "Q3", "Q4"]

# Short templates (at most ~16 distinct words): a text differing from another in one slot then has a
# word-set Jaccard of at most about 0.88, under the knowledge layer's 0.9 near-duplicate threshold.
TEMPLATES: list[tuple[str, dict[str, list[str]]]] = [
    (
        "Built a {adj} {artifact} for the {team} team at {company} using {tool} and {tool2}",
        {"adj": ADJECTIVES, "artifact": ARTIFACTS, "team": TEAMS, "company": COMPANIES},
    ),
    (
        "Is migrating the {project} {artifact} from {tool} to {tool2} before the {quarter} {event}",
        {"project": PROJECTS, "artifact": ARTIFACTS, "quarter": QUARTERS, "event": EVENTS},
    ),
    (
        "Spends {weekday} mornings {activity} {domain} data in {tool} with {colleague}",
        {"weekday": WEEKDAYS, "activity": ACTIVITIES, "domain": DOMAINS, "colleague": COLLEAGUES},
    ),
    (
        "Fights {problem} when {activity} the {domain} dataset behind the {project} {artifact}",
        {
            "problem": PROBLEMS,
            "activity": ACTIVITIES,
            "domain": DOMAINS,
            "project": PROJECTS,
            "artifact": ARTIFACTS,
        },
    ),
    (
        "Presented the {domain} {artifact} at the {city} {event} in {month} {year}",
        {
            "domain": DOMAINS,
            "artifact": ARTIFACTS,
            "city": CITIES,
            "event": EVENTS,
            "month": MONTHS,
            "year": YEARS,
        },
    ),
    (
        "Prefers {tool} over {tool2} for {activity} {domain} records at {company}",
        {"activity": ACTIVITIES, "domain": DOMAINS, "company": COMPANIES},
    ),
    (
        "Pairs with {colleague} from {team} on {problem} in the {project} {artifact} since {year}",
        {
            "colleague": COLLEAGUES,
            "team": TEAMS,
            "problem": PROBLEMS,
            "project": PROJECTS,
            "artifact": ARTIFACTS,
            "year": YEARS,
        },
    ),
]

FEEDBACK_TARGETS = [
    "code examples", "answer length", "explanations", "SQL snippets", "plots", "error messages",
    "step-by-step guides", "summaries", "docstrings", "test suggestions",
]  # fmt: skip
FEEDBACK_POSITIVE = [
    "Liked the {tool} example for {activity} {domain} data",
    "Found the {tool} walkthrough of {problem} clear",
    "Appreciated the short answer about {activity} in {tool}",
]
FEEDBACK_NEGATIVE = [
    "Disliked the long {tool} answer on {problem}",
    "The {tool} snippet for {activity} {domain} data did not run",
    "Too much theory about {problem}, wanted {tool} code",
]


def _fill(template: str, slots: dict[str, list[str]], rng: random.Random) -> str:
    values = {name: rng.choice(options) for name, options in slots.items()}
    tool, tool2 = rng.sample(TOOLS, 2)
    return template.format(tool=tool, tool2=tool2, **values)


def knowledge_texts(rng: random.Random, seen: set[frozenset[str]]) -> Iterator[str]:
    """Endless varied fact texts; no two with the same word set (``seen`` is shared across calls)."""
    while True:
        template, slots = rng.choice(TEMPLATES)
        text = _fill(template, slots, rng)
        key = frozenset(words(text))
        if key not in seen:
            seen.add(key)
            yield text


def feedback_entries(n: int, rng: random.Random) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    seen: set[str] = set()
    while len(out) < n:
        sentiment = rng.choice(["positive", "negative", "neutral"])
        pool = FEEDBACK_NEGATIVE if sentiment == "negative" else FEEDBACK_POSITIVE
        slots = {"activity": ACTIVITIES, "domain": DOMAINS, "problem": PROBLEMS}
        text = _fill(rng.choice(pool), slots, rng)
        if text in seen:
            continue
        seen.add(text)
        out.append({"text": text, "sentiment": sentiment, "target": rng.choice(FEEDBACK_TARGETS)})
    return out


def seed_documents(mem: MemoryManager) -> None:
    mem.profile.update(
        user_id=USER,
        name="Sarah Lindqvist",
        role="senior data scientist",
        company="Acme Analytics",
        location="Berlin, Germany",
        languages=["English", "German", "Swedish"],
        expertise=["pandas", "scikit-learn", "time series forecasting", "SQL", "causal inference"],
    )
    mem.policies.update(
        user_id=USER,
        response_style="concise, with one worked example",
        tone="friendly but direct",
        language="English",
        format="code first, then a short explanation",
        rules=[
            "never use emojis",
            "prefer pandas over polars unless asked",
            "show type hints in Python code",
            "explain any regular expression you write",
            "cite the pandas version when behaviour changed",
            "do not apologise",
            "keep code blocks under 40 lines",
            "use SI units",
            "write dates as ISO 8601",
            "flag any step that loads the full dataset into memory",
            "suggest a test for every function",
            "avoid deprecated APIs",
            "mention the complexity of non-trivial algorithms",
            "ask before adding a new dependency",
            "use British spelling",
            "end with at most one follow-up question",
        ],
    )


def live_counts(path: Path) -> dict[str, int]:
    with sqlite3.connect(path) as conn:
        return dict(conn.execute(COUNT_SQL, (USER, AGENT)).fetchall())


def seed(path: Path, n_knowledge: int, chunk: int, rng_seed: int = 7) -> dict[str, Any]:
    """Create the user's memory in a new database at ``path``; return counts and timings."""
    rng = random.Random(rng_seed)
    started = time.perf_counter()
    mem = MemoryManager(f"sqlite:///{path}", layers={"knowledge": LayerConfig(max_items=20_000)})
    try:
        seed_documents(mem)
        fb = feedback_entries(N_FEEDBACK, rng)
        mem.feedback.add_many(fb, user_id=USER)
        texts = knowledge_texts(rng, set())
        submitted = 0
        for _ in range(10):  # top up whatever the near-duplicate check dropped
            missing = n_knowledge - live_counts(path).get("knowledge", 0)
            if missing <= 0:
                break
            for start in range(0, missing, chunk):
                batch = [
                    {"text": next(texts), "topics": [rng.choice(DOMAINS), rng.choice(TEAMS)]}
                    for _ in range(min(chunk, missing - start))
                ]
                mem.knowledge.add_many(batch, user_id=USER)
                submitted += len(batch)
    finally:
        mem.close()
    counts = live_counts(path)
    if counts.get("knowledge") != n_knowledge or counts.get("feedback") != N_FEEDBACK:
        raise SystemExit(f"seeding failed: wanted {n_knowledge} knowledge items, live counts are {counts}")
    return {"seconds": time.perf_counter() - started, "counts": counts, "submitted": submitted}


# ---- measurement ---------------------------------------------------------------------------------


def percentile(samples: list[int], pct: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(samples)
    return float(ordered[max(0, math.ceil(pct / 100 * len(ordered)) - 1)])


def run_interleaved(ops: dict[str, Callable[[], object]], repeat: int, warmup: int) -> dict[str, list[int]]:
    for _ in range(warmup):
        for fn in ops.values():
            fn()
    samples: dict[str, list[int]] = {name: [] for name in ops}
    clock = time.perf_counter_ns
    for _ in range(repeat):
        for name, fn in ops.items():
            t0 = clock()
            fn()
            samples[name].append(clock() - t0)
    return samples


def bench_size(path: Path, repeat: int) -> dict[str, Any]:
    mem = MemoryManager(f"sqlite:///{path}", layers={"knowledge": LayerConfig(max_items=20_000)})
    raw = sqlite3.connect(path)
    try:
        ops: dict[str, Callable[[], object]] = {
            "baseline": lambda: raw.execute(BASELINE_SQL, (USER, AGENT)).fetchall(),
            "compile": lambda: mem.compile(user_id=USER, agent_id=AGENT),
            "query": lambda: mem.compile(user_id=USER, agent_id=AGENT, query=QUERY),
            "budget": lambda: mem.compile(user_id=USER, agent_id=AGENT, query=QUERY, token_budget=BUDGET),
        }
        rows = len(raw.execute(BASELINE_SQL, (USER, AGENT)).fetchall())
        outputs = {name: str(fn()) for name, fn in ops.items() if name != "baseline"}
        gc.collect()
        samples = run_interleaved(ops, repeat, warmup=max(3, repeat // 10))
    finally:
        raw.close()
        mem.close()
    stats = {name: (statistics.median(s), percentile(s, 95)) for name, s in samples.items()}
    count = default_counter()
    return {
        "rows": rows,
        "stats": stats,
        "chars": {name: len(text) for name, text in outputs.items()},
        "budget_tokens": count(outputs["budget"]),
    }


# ---- report --------------------------------------------------------------------------------------


def ms(ns: float) -> str:
    return f"{ns / 1e6:.3f}"


def machine_info() -> list[str]:
    counter = default_counter()
    tokens = "estimate (cl100k not found)" if counter is estimate_tokens else "cl100k (offline)"
    return [
        f"python      {platform.python_implementation()} {sys.version.split()[0]} ({platform.platform()})",
        f"sqlite      {sqlite3.sqlite_version} (stdlib sqlite3 module)",
        f"cpu         {os.cpu_count()} logical CPUs, {platform.machine()}",
        f"sqlalchemy  {version('sqlalchemy')}, sqlmodel {version('sqlmodel')}",
        f"tokens      {tokens}",
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="smoke mode: sizes 10/100/1,000, few repeats")
    parser.add_argument("--repeat", type=int, default=None, help="measured calls per operation and size")
    parser.add_argument("--sizes", default=None, help="comma-separated knowledge sizes, e.g. 10,1000")
    parser.add_argument("--chunk", type=int, default=2_000, help="knowledge entries per add_many call")
    args = parser.parse_args(argv)
    repeat = args.repeat or (15 if args.quick else 200)
    sizes = (
        tuple(int(s) for s in args.sizes.split(","))
        if args.sizes
        else (QUICK_SIZES if args.quick else FULL_SIZES)
    )
    if repeat < 1 or args.chunk < 1 or any(s < 1 for s in sizes):
        parser.error("--repeat, --chunk and sizes must be positive")

    print("agentmem compile benchmark" + (" (quick)" if args.quick else ""))
    for line in machine_info():
        print("  " + line)
    print(f"  data        per size: N knowledge + {N_FEEDBACK} feedback + full profile (6 fields, 6 items)")
    print(f"              + policies: 4 scalar fields + {N_RULES} rules = 20 policies (20 items)")
    print(f"  query       {QUERY!r}; budget {BUDGET} tokens; {repeat} measured calls per operation")
    print(f"  baseline    {BASELINE_SQL}  -> fetchall()")
    print()

    results: dict[int, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="agentmem-bench-") as tmp:
        for size in sizes:
            path = Path(tmp) / f"knowledge_{size}.db"
            seeded = seed(path, size, chunk=min(args.chunk, max(50, size // 4)))
            counts = ", ".join(f"{k} {v}" for k, v in sorted(seeded["counts"].items()))
            print(
                f"seeded {size:>6,} knowledge items in {seeded['seconds']:7.2f} s "
                f"({seeded['submitted']:,} submitted; live: {counts})",
                flush=True,
            )
            results[size] = bench_size(path, repeat) | {"seed_seconds": seeded["seconds"]}

    print()
    print("times in ms; ratio = compile-with-query p50 / baseline p50")
    header = (
        f"{'knowledge':>9} {'rows':>6} | {'baseline':>8} {'p95':>7} | {'compile':>8} {'p95':>7} | "
        f"{'+query':>8} {'p95':>7} | {'+budget':>8} {'p95':>7} | {'ratio':>6}"
    )
    print(header)
    print("-" * len(header))
    for size, r in results.items():
        s = r["stats"]
        ratio = s["query"][0] / s["baseline"][0]
        print(
            f"{size:>9,} {r['rows']:>6,} | {ms(s['baseline'][0]):>8} {ms(s['baseline'][1]):>7} | "
            f"{ms(s['compile'][0]):>8} {ms(s['compile'][1]):>7} | "
            f"{ms(s['query'][0]):>8} {ms(s['query'][1]):>7} | "
            f"{ms(s['budget'][0]):>8} {ms(s['budget'][1]):>7} | {ratio:>5.1f}x"
        )
    print()
    for size, r in results.items():
        c = r["chars"]
        print(
            f"output at {size:>6,}: {c['compile']:,} chars (no query), {c['query']:,} chars (query), "
            f"{c['budget']:,} chars / {r['budget_tokens']} tokens (budget {BUDGET})"
        )
    print(f"seeding total: {sum(r['seed_seconds'] for r in results.values()):.2f} s (not measured)")
    print()
    print(f"target: compile with a query at {TARGET_SIZE:,} items within {TARGET_RATIO:g}x the raw read")
    if TARGET_SIZE in results:
        s = results[TARGET_SIZE]["stats"]
        ratio = s["query"][0] / s["baseline"][0]
        verdict = "PASS" if ratio <= TARGET_RATIO else "MISS"
        print(
            f"{verdict}: {ms(s['query'][0])} ms vs {ms(s['baseline'][0])} ms = {ratio:.1f}x "
            f"(limit {TARGET_RATIO:g}x)"
        )
        return 0
    print(f"n/a: {TARGET_SIZE:,} is not among the measured sizes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
