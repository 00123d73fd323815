"""Benchmark: cost per call as one user's memory grows, on SQLite and PostgreSQL, and under concurrency.

Measured through the public API (so it runs unchanged whatever the store does inside), per backend, for
one user at each of 10 / 100 / 1k / 10k / 100k stored facts:

- learn: ``mem.learn`` of a new one-turn conversation, with a scripted model (agentmem.testing's
  ScriptedModel, in process) that answers every extraction with one new fact at once. The time spent
  inside the model's ``generate`` is subtracted, so what is left is agentmem's own work: the salience
  gate, the reads for the prompt, rendering it, validating the reply, merging and the write. A scripted
  model rather than the offline extractor because the offline path builds no prompt and so skips the
  prompt's read of stored items, which is part of what grows with the memory.
- compile: ``mem.compile(query=QUERY, token_budget=1800)``.
- search: ``mem.search(QUERY, limit=10)``.

Each value is printed as p50 and p95, as a ratio to its own p50 at 100 facts, and as a ratio to a raw
indexed SELECT of the same rows: ``SELECT * FROM agentmem_items WHERE id IN (...)`` (the unique index on
``id``), through SQLAlchemy with the same URL and driver, on a connection held open, ``fetchall()``.
"The same rows" are, for compile, the items whose lines appear in its output; for search, its hits; for
learn, the stored facts its prompt shows the model. They are found once per size, before timing.

Targets (issue 10; ratios of p50s measured in this run): at 10k facts learn and compile(query) each at most
3x their value at 100 facts, at 100k at most 6x, on both backends; PostgreSQL compile(query) at 10k at
most 5x the raw SELECT of the rows it returns; 0 errors in the multi-process run.

Data: one database per backend (a temporary SQLite file; a fresh PostgreSQL schema, dropped at the end,
never ``public``) holding one user per size, so every size is read from the same table among the other
users' rows. Each user has a 3-field profile (set through the API) and N facts from word lists with a
fixed random seed; QUERY's words occur in a few percent of them (the share is printed). Facts are
inserted in bulk: ``add_many`` would merge each chunk against every stored fact, minutes at 100k. The
rows are built as the store's writer builds them (id, ``key_of``, ``first_value``, ``line``, an "add"
event each, the SQLite full-text row), and checked through the API before timing: re-adding a seeded
fact must return its id (found as a duplicate) and search must find it.

Timing: per size, one warm-up round, then rounds of learn, compile, search and the three raw SELECTs,
interleaved, until --repeat rounds or --budget seconds (at least 3 rounds). Slow sizes thus get fewer
samples, printed as n; with n < 20 the p95 is the largest sample. Each measured learn adds a fact.

Multi-process: --processes (4) processes x --users (50) users each (100 facts each), each process with
its own MemoryManager on one PostgreSQL schema; each runs learn, compile and search for each of its
users, --rounds times, in a shuffled order, after a warm-up of each op (on a user of its own) and a
common start. Printed: throughput (ops/s over the wall time of the whole run), p50/p95 per op kind, and
errors (any exception, by type).

Run:  python benchmarks/bench_scale.py [--quick] [--sizes 10,100,...] [--backends sqlite,postgres]
          [--postgres-url URL] [--repeat N] [--budget S] [--skip-multiprocess]
"""

from __future__ import annotations

import argparse
import math
import multiprocessing
import os
import platform
import random
import re
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from importlib.metadata import version
from pathlib import Path
from typing import Any

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # before litellm is ever imported

from sqlalchemy import Engine, bindparam, create_engine, text

from agentmem import LayerConfig, MemoryManager, ModelRequest, ModelResponse
from agentmem.store import search
from agentmem.store.rows import EVENTS, ITEMS
from agentmem.testing import ScriptedModel

DEFAULT_PG = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
FULL_SIZES = (10, 100, 1_000, 10_000, 100_000)
QUICK_SIZES = (10, 100)
BASE_SIZE = 100
QUERY = "Kestrel telemetry backfilling"
BUDGET = 1_800
SEARCH_LIMIT = 10
MAX_ITEMS = 1_000_000  # the knowledge cap (default 5,000) would expire most of a 100k memory
TARGETS = {10_000: 3.0, 100_000: 6.0}  # op p50 at size <= x * p50 at BASE_SIZE
PG_RAW_TARGET = (10_000, 5.0)  # PostgreSQL compile(query) p50 <= x * raw SELECT p50 at this size
RAW_SELECT = "SELECT * FROM agentmem_items WHERE id IN :ids"
RAW_SQL = text(RAW_SELECT).bindparams(bindparam("ids", expanding=True))
OPS = ("learn", "compile", "search")
GROWTH = "; targets: x@100 <= 3x at 10,000 facts, <= 6x at 100,000"
TABLE_TARGETS = {
    ("sqlite", "learn"): GROWTH,
    ("sqlite", "compile"): GROWTH,
    ("postgres", "learn"): GROWTH,
    ("postgres", "compile"): GROWTH + ", x raw <= 5x at 10,000",
}
LABELS = {
    "learn": "learn (model excluded)",
    "compile": f"compile(query, token_budget={BUDGET:,})",
    "search": f"search(query, limit={SEARCH_LIMIT})",
}

# ---- synthetic facts -----------------------------------------------------------------------------

TOOLS = [
    "pandas", "polars", "NumPy", "scikit-learn", "PyTorch", "dbt", "Airflow", "Spark", "DuckDB",
    "PostgreSQL", "BigQuery", "Snowflake", "Jupyter", "FastAPI", "Docker", "Kubernetes", "Terraform",
    "Tableau", "Looker", "Excel", "Dask", "Ray", "MLflow", "Prefect", "Kafka", "Redis", "Streamlit",
    "XGBoost", "LightGBM", "SQLite", "Metabase", "Flink",
]  # fmt: skip
SLOTS: dict[str, list[str]] = {
    "activity": [
        "cleaning", "deduplicating", "joining", "profiling", "validating", "aggregating", "resampling",
        "visualising", "labelling", "backfilling", "normalising", "imputing", "reshaping", "sampling",
    ],
    "domain": [
        "sales", "churn", "clickstream", "sensor", "payroll", "inventory", "shipping", "survey",
        "clinical", "marketing", "energy", "fraud", "weather", "pricing", "telemetry", "logistics",
        "census", "retail",
    ],
    "artifact": [
        "dashboard", "pipeline", "forecast", "classifier", "report", "notebook", "scheduler",
        "warehouse", "backlog", "benchmark", "prototype", "playbook", "catalogue", "simulator",
    ],
    "adj": [
        "weekly", "nightly", "realtime", "quarterly", "experimental", "legacy", "regional", "internal",
        "shared", "automated", "minimal", "audited",
    ],
    "team": [
        "finance", "growth", "platform", "research", "operations", "security", "product", "support",
        "analytics", "logistics", "risk", "design",
    ],
    "company": [
        "Acme", "Globex", "Initech", "Umbrella", "Hooli", "Vandelay", "Stark", "Wayne", "Tyrell",
        "Cyberdyne", "Soylent", "Wonka", "Oscorp", "Aperture",
    ],
    "city": [
        "Berlin", "Lisbon", "Toronto", "Nairobi", "Osaka", "Austin", "Warsaw", "Dublin", "Lyon",
        "Bogota", "Seoul", "Oslo", "Madrid", "Chennai",
    ],
    "colleague": [
        "Priya", "Marco", "Aisha", "Tomasz", "Mei", "Lucas", "Fatima", "Jonas", "Chloe", "Kenji",
        "Amara", "Diego", "Ingrid", "Omar", "Sofia", "Rafael",
    ],
    "project": [
        "Atlas", "Beacon", "Comet", "Dynamo", "Ember", "Falcon", "Granite", "Harbor", "Iris", "Juniper",
        "Kestrel", "Lumen", "Meridian", "Nimbus", "Orion", "Pioneer",
    ],
    "problem": [
        "schema drift", "missing timestamps", "duplicate rows", "timezone bugs", "memory errors",
        "slow joins", "flaky tests", "encoding errors", "null spikes", "late arrivals",
        "skewed partitions", "stale caches",
    ],
    "event": ["launch", "audit", "offsite", "hackathon", "conference", "reorg", "deadline", "review"],
    "month": [
        "January", "February", "March", "April", "May", "June", "July", "August", "September",
        "October", "November", "December",
    ],
    "year": [str(y) for y in range(2016, 2026)],
    "weekday": ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday"],
    "quarter": ["Q1", "Q2", "Q3", "Q4"],
}  # fmt: skip
TEMPLATES = [  # short: two facts differing in one slot stay under the 0.9 near-duplicate threshold
    "Built a {adj} {artifact} for the {team} team at {company} using {tool} and {tool2}",
    "Is migrating the {project} {artifact} from {tool} to {tool2} before the {quarter} {event}",
    "Spends {weekday} mornings {activity} {domain} data in {tool} with {colleague}",
    "Fights {problem} when {activity} the {domain} dataset behind the {project} {artifact}",
    "Presented the {domain} {artifact} at the {city} {event} in {month} {year}",
    "Prefers {tool} over {tool2} for {activity} {domain} records at {company}",
    "Pairs with {colleague} from {team} on {problem} in the {project} {artifact} since {year}",
    "Moved to {city} in {month} {year} to lead {domain} {activity} for {company}",
]
SLOT = re.compile(r"\{(\w+)\}")


class Facts:
    """Endless distinct fact texts (no two with the same words) with two topics each, from a seed."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.seen: set[frozenset[str]] = set()

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return self

    def __next__(self) -> dict[str, Any]:
        while True:
            template = self.rng.choice(TEMPLATES)
            tool, tool2 = self.rng.sample(TOOLS, 2)
            values = {name: self.rng.choice(SLOTS[name]) for name in SLOT.findall(template) if name in SLOTS}
            fact = template.format(tool=tool, tool2=tool2, **values)
            words = frozenset(fact.casefold().split())
            if words not in self.seen:
                self.seen.add(words)
                topics = [values.get("domain") or self.rng.choice(SLOTS["domain"]), self.rng.choice(TOOLS)]
                return {"text": fact, "topics": [t.casefold() for t in topics]}


def matches_query(fact: str) -> bool:
    """Whether a fact shares a word with QUERY (what full-text search can match, stemming aside)."""
    return bool(set(QUERY.casefold().split()) & set(fact.casefold().split()))


# ---- the model ---------------------------------------------------------------------------------------


class TimedModel(ScriptedModel):
    """A scripted model answering each extraction with ``next_fact``, its time inside ``generate`` kept."""

    def __init__(self) -> None:
        super().__init__(lambda _messages: {"knowledge": [self.next_fact]})
        self.next_fact: dict[str, Any] = {}
        self.seconds = 0.0

    async def generate(self, request: ModelRequest) -> ModelResponse:
        started = time.perf_counter()
        try:
            return await super().generate(request)
        finally:
            self.seconds += time.perf_counter() - started


def learn_once(mem: MemoryManager, model: TimedModel, user: str, fact: dict[str, Any]) -> float:
    """One learn of a new turn disclosing ``fact``; seconds spent outside the model."""
    model.next_fact = fact
    in_model = model.seconds
    started = time.perf_counter()
    result = mem.learn([{"role": "user", "content": f"Something about me: {fact['text']}."}], user_id=user)
    wall = time.perf_counter() - started
    if result.usage.model_calls != 1:
        raise SystemExit(
            f"learn made {result.usage.model_calls} model calls (skipped: {result.usage.skipped})"
        )
    return wall - (model.seconds - in_model)


# ---- databases -------------------------------------------------------------------------------------


@contextmanager
def postgres_schema(base_url: str, prefix: str) -> Iterator[str]:
    """A URL whose search path is a new schema, dropped on exit."""
    import psycopg

    name = f"agentmem_{prefix}_{uuid.uuid4().hex[:12]}"
    plain = base_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(plain, autocommit=True) as admin:
        admin.execute(f'CREATE SCHEMA "{name}"')
        try:
            sep = "&" if "?" in base_url else "?"
            yield f"{base_url}{sep}options=-csearch_path%3D{name}"
        finally:
            admin.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')


@contextmanager
def database(backend: str, pg_url: str, prefix: str) -> Iterator[str]:
    if backend == "postgres":
        with postgres_schema(pg_url, prefix) as url:
            yield url
    else:
        with tempfile.TemporaryDirectory(prefix="agentmem-scale-") as tmp:
            yield f"sqlite:///{Path(tmp) / 'bench.db'}"


def manager(url: str, model: TimedModel | None = None) -> MemoryManager:
    return MemoryManager(url, model=model, layers={"knowledge": LayerConfig(max_items=MAX_ITEMS)})


def seed_user(mem: MemoryManager, engine: Engine, user: str, facts: Sequence[dict[str, Any]]) -> None:
    """A profile through the API, then ``facts`` inserted in bulk as the store's writer would write them:
    shared memory (agent ""), source "manual", one "add" event each, created over the past two years."""
    mem.profile.update(user_id=user, name=f"Sam {user}", role="data engineer", company="Globex")
    layer = mem.layers["knowledge"]
    rng = random.Random(user)
    now = datetime.now(UTC)
    items, events = [], []
    for fact in facts:
        value = layer.first_value(dict(fact))
        at = now - timedelta(days=730 * rng.random(), seconds=rng.random())
        item_id = "m_" + uuid.uuid4().hex[:24]
        key = layer.key_of(value)
        items.append(
            {
                "id": item_id,
                "user_id": user,
                "agent_id": "",
                "session_id": None,
                "layer": "knowledge",
                "key": key,
                "value": value,
                "text": value["text"],
                "line": layer.line(value, 1, at),
                "source": "manual",
                "confidence": 1.0,
                "count": 1,
                "explicit": True,
                "meta": {},
                "created_at": at,
                "updated_at": at,
            }
        )
        common = {k: items[-1][k] for k in ("user_id", "agent_id", "session_id", "layer", "key", "source")}
        events.append(
            {
                **common,
                "item_id": item_id,
                "op": "add",
                "old": None,
                "new": value,
                "reason": None,
                "created_at": at,
                "observed_at": None,
            }
        )
    events.sort(key=lambda e: e["created_at"])  # event ids in time order, as they would have been written
    with engine.begin() as conn:
        for start in range(0, len(items), 5_000):
            conn.execute(ITEMS.insert(), items[start : start + 5_000])
            conn.execute(EVENTS.insert(), events[start : start + 5_000])
        # The word index, as the writer keeps it (SQLite's FTS5 rows, PostgreSQL's words arrays).
        search.index_items(conn, user, [(item["id"], item["text"], item["value"]) for item in items])
    if facts:  # the rows must be real items to the read and merge paths
        # The newest fact: search ranks each term's newest matches (search.RANK_POOL), and every word of
        # these templated facts recurs in thousands of others, so an older one may rank below the third.
        probe = facts[-1]
        found = [hit.item.text for hit in mem.search(probe["text"], user_id=user, limit=3)]
        again = mem.knowledge.add_many([dict(probe)], user_id=user)
        seeded = next(i["id"] for i in items if i["text"] == probe["text"])
        if probe["text"] not in found or again != [seeded]:
            raise SystemExit(
                f"seeding check failed for {user}: search found {found}, re-adding returned {again} "
                f"(seeded id {seeded}); the bulk rows no longer match what the store writes"
            )


# ---- measurement -----------------------------------------------------------------------------------


def percentile(samples: Sequence[float], pct: float) -> float:
    """Nearest rank."""
    ordered = sorted(samples)
    return ordered[max(0, math.ceil(pct / 100 * len(ordered)) - 1)]


def ids_shown(prompt: str, texts: dict[str, str]) -> list[str]:
    """Ids of the stored facts an extraction prompt lists ("N. text" lines)."""
    return [texts[m] for m in re.findall(r"^\d+\. (.+)$", prompt, flags=re.MULTILINE) if m in texts]


def bench_size(
    mem: MemoryManager, model: TimedModel, raw: Engine, user: str, facts: Facts, repeat: int, budget: float
) -> dict[str, Any]:
    """Warm-up, find the rows each call uses, then interleaved rounds; samples in seconds."""
    learn_seconds = learn_once(mem, model, user, next(facts))  # warm-up (also what the prompt shows)
    mem.compile(user_id=user, query=QUERY, token_budget=BUDGET)
    with raw.connect() as conn:
        live = conn.execute(
            text("SELECT id, text, line FROM agentmem_items WHERE user_id = :u AND valid_to IS NULL"),
            {"u": user},
        ).all()
    output = mem.compile(user_id=user, query=QUERY, token_budget=BUDGET)
    rows = {
        "learn": ids_shown(model.requests[-1].messages[0]["content"], {r.text: r.id for r in live}),
        "compile": [r.id for r in live if f"- {r.line}\n" in output],
        "search": [h.item.id for h in mem.search(QUERY, user_id=user, limit=SEARCH_LIMIT)],
    }
    samples: dict[str, list[float]] = {name: [] for name in (*OPS, *(f"raw {op}" for op in OPS))}
    with raw.connect() as conn:
        calls: dict[str, Callable[[], object]] = {
            "compile": lambda: mem.compile(user_id=user, query=QUERY, token_budget=BUDGET),
            "search": lambda: mem.search(QUERY, user_id=user, limit=SEARCH_LIMIT),
        }
        for op in OPS:
            ids = rows[op] or ["none"]
            calls[f"raw {op}"] = lambda ids=ids: conn.execute(RAW_SQL, {"ids": ids}).fetchall()
        for fn in calls.values():
            fn()
        clock = time.perf_counter
        started = clock()
        rounds = 0
        while rounds < repeat and (rounds < 3 or clock() - started < budget):
            samples["learn"].append(learn_once(mem, model, user, next(facts)))
            for name, fn in calls.items():
                t0 = clock()
                fn()
                samples[name].append(clock() - t0)
            rounds += 1
    return {"samples": samples, "rows": {op: len(ids) for op, ids in rows.items()}, "warmup": learn_seconds}


def bench_backend(backend: str, url: str, sizes: Sequence[int], args: argparse.Namespace) -> dict[int, Any]:
    model = TimedModel()
    mem = manager(url, model)
    raw = create_engine(url)
    facts = Facts(seed=7)
    results: dict[int, Any] = {}
    try:
        started = time.perf_counter()
        share = []
        for size in sizes:
            batch = [next(facts) for _ in range(size)]
            share += [matches_query(f["text"]) for f in batch]
            seed_user(mem, raw, f"user-{size}", batch)
        if backend == "postgres":  # what autovacuum does after a bulk load; SQLite has no such daemon
            with raw.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                conn.exec_driver_sql("VACUUM ANALYZE")
        print(
            f"{backend}: seeded {sum(sizes):,} facts for {len(sizes)} users in "
            f"{time.perf_counter() - started:.1f} s; {sum(share) / max(1, len(share)):.1%} of them share a "
            f"word with the query",
            flush=True,
        )
        for size in sizes:
            started = time.perf_counter()
            results[size] = bench_size(mem, model, raw, f"user-{size}", facts, args.repeat, args.budget)
            n = len(results[size]["samples"]["learn"])
            print(f"  {size:>7,} facts: {n} rounds in {time.perf_counter() - started:.1f} s", flush=True)
    finally:
        raw.dispose()
        mem.close()
    return results


# ---- multi-process -------------------------------------------------------------------------------


def run_op(mem: MemoryManager, model: TimedModel, op: str, user: str, facts: Facts) -> None:
    if op == "learn":
        model.next_fact = next(facts)
        turn = {"role": "user", "content": f"Something about me: {model.next_fact['text']}."}
        mem.learn([turn], user_id=user)
    elif op == "compile":
        mem.compile(user_id=user, query=QUERY, token_budget=BUDGET)
    else:
        mem.search(QUERY, user_id=user, limit=SEARCH_LIMIT)


def mp_worker(url: str, users: list[str], rounds: int, seed: int, start: Any, out: Any) -> None:
    """One process: its own manager; learn, compile and search for each user, shuffled, timed."""
    latencies: dict[str, list[float]] = {op: [] for op in OPS}
    errors: list[str] = []
    facts = Facts(seed=seed)
    began = ended = time.time()
    plan = [(op, user) for user in users for op in OPS for _ in range(rounds)]
    random.Random(seed).shuffle(plan)
    model = TimedModel()
    try:
        mem = manager(url, model)
        # Warm, as a server is: imports, the token counter, the first connection (on a user of its own).
        for op in OPS:
            run_op(mem, model, op, f"{users[0]}-warmup", facts)
    except Exception as exc:
        errors.append(f"start: {type(exc).__name__}: {exc}")
        start.wait(timeout=600)
        out.put({"latencies": latencies, "errors": errors, "began": began, "ended": ended})
        return
    start.wait(timeout=600)
    began = time.time()
    for op, user in plan:
        t0 = time.perf_counter()
        try:
            run_op(mem, model, op, user, facts)
        except Exception as exc:
            errors.append(f"{op}: {type(exc).__name__}: {exc}")
            continue
        latencies[op].append(time.perf_counter() - t0)
    ended = time.time()
    mem.close()
    out.put({"latencies": latencies, "errors": errors, "began": began, "ended": ended})


def bench_multiprocess(
    pg_url: str, processes: int, users: int, facts_each: int, rounds: int
) -> dict[str, Any]:
    with postgres_schema(pg_url, "mp") as url:
        mem = manager(url)
        raw = create_engine(url)
        facts = Facts(seed=11)
        names = [[f"mp-{p}-{u}" for u in range(users)] for p in range(processes)]
        try:
            for name in (n for group in names for n in group):
                seed_user(mem, raw, name, [next(facts) for _ in range(facts_each)])
        finally:
            raw.dispose()
            mem.close()
        ctx = multiprocessing.get_context("spawn")  # no engine or lock inherited from this process
        start, out = ctx.Barrier(processes), ctx.Queue()
        workers = [
            ctx.Process(target=mp_worker, args=(url, names[p], rounds, 100 + p, start, out))
            for p in range(processes)
        ]
        for w in workers:
            w.start()
        reports = [out.get(timeout=1_800) for _ in workers]
        for w in workers:
            w.join()
    exits = [w.exitcode for w in workers if w.exitcode]
    latencies = {op: [s for r in reports for s in r["latencies"][op]] for op in OPS}
    errors = [e for r in reports for e in r["errors"]] + [f"process exit code {c}" for c in exits]
    wall = max(r["ended"] for r in reports) - min(r["began"] for r in reports)
    return {"latencies": latencies, "errors": errors, "wall": wall}


# ---- report -----------------------------------------------------------------------------------------


def ms(seconds: float) -> str:
    return f"{seconds * 1000:,.2f}"


def print_backend(backend: str, results: dict[int, Any]) -> dict[str, dict[int, float]]:
    """The three tables of a backend; returns p50 per op and size (and of the raw SELECTs)."""
    names = next(iter(results.values()))["samples"]
    p50 = {
        name: {size: statistics.median(r["samples"][name]) for size, r in results.items()} for name in names
    }
    for op in OPS:
        print()
        print(f"{backend}: {LABELS[op]}, ms" + TABLE_TARGETS.get((backend, op), ""))
        header = (
            f"{'facts':>8} | {'p50':>9} {'p95':>9} | {'x@100':>7} | {'raw p50':>8} {'x raw':>7} "
            f"{'rows':>5} | {'n':>3}"
        )
        print(header)
        print("-" * len(header))
        for size, r in results.items():
            s, base = r["samples"][op], p50[op].get(BASE_SIZE)
            raw = p50[f"raw {op}"][size]
            vs_base = f"{p50[op][size] / base:.1f}x" if base else "n/a"
            print(
                f"{size:>8,} | {ms(p50[op][size]):>9} {ms(percentile(s, 95)):>9} | {vs_base:>7} | "
                f"{ms(raw):>8} {p50[op][size] / raw:6.0f}x {r['rows'][op]:>5} | {len(s):>3}"
            )
    return p50


def target_lines(p50s: dict[str, dict[str, dict[int, float]]]) -> list[str]:
    lines = []
    for backend, p50 in p50s.items():
        for op in ("learn", "compile"):
            for size, limit in TARGETS.items():
                if size in p50[op] and BASE_SIZE in p50[op]:
                    ratio = p50[op][size] / p50[op][BASE_SIZE]
                    verdict = "PASS" if ratio <= limit else "MISS"
                    lines.append(
                        f"  {verdict}  {backend} {op} at {size:,} facts = {ratio:.1f}x its value at "
                        f"{BASE_SIZE} (target <= {limit:g}x)"
                    )
        size, limit = PG_RAW_TARGET
        if backend == "postgres" and size in p50["compile"]:
            ratio = p50["compile"][size] / p50["raw compile"][size]
            verdict = "PASS" if ratio <= limit else "MISS"
            lines.append(
                f"  {verdict}  postgres compile(query) at {size:,} facts = {ratio:.1f}x the raw SELECT of "
                f"its rows (target <= {limit:g}x)"
            )
    return lines


def print_multiprocess(mp: dict[str, Any], processes: int, users: int, facts_each: int, rounds: int) -> None:
    ops = sum(len(v) for v in mp["latencies"].values())
    print()
    print(
        f"postgres multi-process: {processes} processes x {users} users ({facts_each} facts each), "
        f"learn + compile + search per user x {rounds} round(s), shuffled"
    )
    print(f"  throughput {ops / mp['wall']:,.1f} ops/s ({ops:,} ops in {mp['wall']:.1f} s)")
    for op in OPS:
        s = mp["latencies"][op]
        if s:
            p50, p95 = ms(statistics.median(s)), ms(percentile(s, 95))
            print(f"  {op:<8} n {len(s):>5}  p50 {p50:>9} ms  p95 {p95:>9} ms")
    print(f"  errors {len(mp['errors'])} (target 0)")
    for error in sorted(set(mp["errors"]))[:10]:
        print(f"    {mp['errors'].count(error)} x {error[:300]}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument(
        "--quick", action="store_true", help="smoke run: sizes 10,100, few rounds, tiny MP run"
    )
    parser.add_argument(
        "--sizes", default=None, help="comma-separated facts per user (default 10,...,100000)"
    )
    parser.add_argument("--backends", default="sqlite,postgres", help="comma-separated: sqlite, postgres")
    parser.add_argument("--postgres-url", default=os.environ.get("AGENTMEM_BENCH_POSTGRES_URL", DEFAULT_PG))
    parser.add_argument("--repeat", type=int, default=None, help="most measured rounds per size (default 30)")
    parser.add_argument("--budget", type=float, default=None, help="seconds of rounds per size (default 20)")
    parser.add_argument("--skip-multiprocess", action="store_true")
    parser.add_argument("--processes", type=int, default=None, help="multi-process run: processes (4)")
    parser.add_argument("--users", type=int, default=None, help="multi-process run: users per process (50)")
    parser.add_argument("--rounds", type=int, default=None, help="multi-process run: rounds per user (2)")
    args = parser.parse_args(argv)
    quick = args.quick
    sizes = (
        tuple(int(s) for s in args.sizes.split(",")) if args.sizes else QUICK_SIZES if quick else FULL_SIZES
    )
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    args.repeat = args.repeat or (3 if quick else 30)
    args.budget = args.budget if args.budget is not None else (2.0 if quick else 20.0)
    processes = args.processes or 4
    users = args.users or (2 if quick else 50)
    rounds = args.rounds or (1 if quick else 2)
    facts_each = 10 if quick else BASE_SIZE
    if any(b not in ("sqlite", "postgres") for b in backends) or not backends:
        parser.error("--backends takes sqlite and/or postgres")
    if args.repeat < 1 or args.budget < 0 or min(sizes) < 1 or min(processes, users, rounds) < 1:
        parser.error("--repeat, --budget, sizes, --processes, --users and --rounds must be positive")

    print("agentmem scale benchmark" + (" (quick)" if quick else ""))
    print(f"  python {platform.python_version()} ({platform.platform()}), {os.cpu_count()} CPUs")
    print(f"  load average at start {os.getloadavg()[0]:.2f} (other work on the machine skews the figures)")
    print(f"  sqlalchemy {version('sqlalchemy')}, agentmem {version('agentmem-layers')}")
    print(f"  sizes {', '.join(f'{s:,}' for s in sizes)} facts per user; query {QUERY!r}")
    print(f"  rounds per size: up to {args.repeat}, or {args.budget:g} s (at least 3) after 1 warm-up")
    print(f"  raw SELECT: {RAW_SELECT}  (the rows each call returned or showed)")
    print(flush=True)

    p50s = {}
    for backend in backends:
        with database(backend, args.postgres_url, "scale") as url:
            results = bench_backend(backend, url, sizes, args)
        p50s[backend] = print_backend(backend, results)
        print(flush=True)

    mp = None
    if not args.skip_multiprocess:
        mp = bench_multiprocess(args.postgres_url, processes, users, facts_each, rounds)
        print_multiprocess(mp, processes, users, facts_each, rounds)

    print()
    print(
        "targets (issue 10), on p50s of this run; 'x@100' is p50 / p50 at 100 facts, 'x raw' p50 / raw p50:"
    )
    for line in target_lines(p50s):
        print(line)
    if mp is not None:
        verdict = "PASS" if not mp["errors"] else "MISS"
        print(f"  {verdict}  multi-process errors: {len(mp['errors'])} (target 0)")
    print(f"load average at the end {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
