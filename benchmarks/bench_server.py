"""Benchmark: the REST server against the same calls made in process, with 16 concurrent clients.

Measured, per backend (SQLite always; PostgreSQL with --postgres-url), for two operations:

- context read: ``GET /v1/users/{u}/context?query=QUERY&token_budget=BUDGET`` over HTTP, next to
  ``mem.compile(user_id=u, query=QUERY, token_budget=BUDGET)`` in process;
- memory write: ``POST /v1/users/{u}/items`` with a new knowledge fact over HTTP, next to
  ``mem.knowledge.add(text, user_id=u, topics=[...])`` in process.

How: one database per backend (a temporary SQLite file; a fresh PostgreSQL schema, dropped at the end)
is seeded through the API with --users users of --facts facts each (word lists, fixed seed) and a
profile. A real ``agentmem serve`` subprocess serves that database on a free loopback port, with an admin
API key sent on every request (so the key check is part of what is measured). The in-process side is a
MemoryManager on the same database in this process. Each measurement runs --requests calls spread over
--clients threads (16), each thread with its own ``httpx.Client`` (keep-alive) or calling the shared
MemoryManager; users are picked round-robin. Every call is timed on its own (wall clock, from just
before the call to its answer); requests/s is calls over the wall time of the whole measurement. Each
measurement is preceded by a warm-up of one call per client. Order: in-process reads, HTTP reads,
in-process writes, HTTP writes (reads first, so both read the same data).

An error is any exception, or an HTTP answer other than 200 (reads) or 201 (writes); the count must be
0. The ratios (HTTP / in-process) are of requests/s and of p95: what serving over HTTP costs (JSON, the
key check, the loopback round trip, uvicorn) on this machine; the client threads share this process's
GIL with the in-process MemoryManager, not with the server.

Run:  python benchmarks/bench_server.py [--quick] [--requests N] [--clients 16] [--users N] [--facts N]
          [--postgres-url URL]
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # before litellm is ever imported

import httpx
from sqlalchemy import create_engine, text

from agentmem import MemoryManager
from agentmem.server.keys import ApiKeys

QUERY = "churn model pandas"
BUDGET = 1_000
WORDS = [
    "churn", "pandas", "telemetry", "pricing", "sensor", "retail", "Airflow", "DuckDB", "Spark",
    "dashboard", "forecast", "survey", "invoice", "Kafka", "Redis", "notebook", "pipeline", "Lisbon",
    "Berlin", "marathon", "guitar", "sourdough", "climbing",
]  # fmt: skip
READY_SECONDS = 60


@dataclass
class Measured:
    """One measurement: the latency of every call, the wall time of all of them, and the errors."""

    latencies: list[float]
    wall: float
    errors: int

    @property
    def rate(self) -> float:
        return len(self.latencies) / self.wall if self.wall else 0.0

    def percentile(self, p: float) -> float:
        ordered = sorted(self.latencies)
        if len(ordered) < 20:
            return ordered[-1]
        return statistics.quantiles(ordered, n=100, method="inclusive")[round(p) - 1]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def seed(mem: MemoryManager, users: int, facts: int) -> list[str]:
    """``users`` users with a profile and ``facts`` facts each, through the public API."""
    rng = random.Random(7)
    names = [f"user-{n:03d}" for n in range(users)]
    for user_id in names:
        mem.profile.update(user_id=user_id, name=user_id.title(), role="data scientist")
        entries = [
            {"text": f"Fact {i}: " + " ".join(rng.sample(WORDS, 6)), "topics": rng.sample(WORDS, 2)}
            for i in range(facts)
        ]
        for start in range(0, facts, 200):
            mem.knowledge.add_many(entries[start : start + 200], user_id=user_id)
    return names


def run(clients: int, requests: int, call: Callable[[int, int], bool]) -> Measured:
    """``requests`` calls of ``call(client_index, n)`` over ``clients`` threads (``n`` numbers the
    call; negative for the warm-up); ``call`` says whether it succeeded."""
    latencies: list[float] = []
    errors = 0
    lock = threading.Lock()
    counter = iter(range(requests))
    start = threading.Barrier(clients + 1)

    def worker(index: int) -> None:
        nonlocal errors
        mine: list[float] = []
        failed = 0
        try:
            call(index, -1 - index)  # warm-up: one call per client, not counted
        except Exception:
            failed += 1
        start.wait()
        while True:
            with lock:
                n = next(counter, None)
            if n is None:
                break
            began = time.perf_counter()
            try:
                ok = call(index, n)
            except Exception:
                ok = False
            mine.append(time.perf_counter() - began)
            failed += not ok
        with lock:
            latencies.extend(mine)
            errors += failed

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(clients)]
    for thread in threads:
        thread.start()
    start.wait()
    began = time.perf_counter()
    for thread in threads:
        thread.join()
    return Measured(latencies, time.perf_counter() - began, errors)


@contextmanager
def server(db_url: str) -> Iterator[str]:
    """A real ``agentmem serve`` on a free loopback port; its base URL."""
    port = free_port()
    env = {**os.environ, "NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost"}
    with tempfile.TemporaryFile() as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "agentmem.cli", "serve", "--db", db_url, "--port", str(port)],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
        )
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + READY_SECONDS
            while True:
                if proc.poll() is not None:
                    log.seek(0)
                    raise SystemExit(f"agentmem serve exited with {proc.returncode}:\n{log.read().decode()}")
                try:
                    if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline:
                    raise SystemExit(f"agentmem serve did not answer /healthz in {READY_SECONDS} s")
                time.sleep(0.1)
            yield base
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def new_fact(n: int) -> str:
    return f"Benchmark fact {n} {uuid.uuid4().hex[:8]}: " + " ".join(random.sample(WORDS, 4))


def bench_backend(name: str, db_url: str, args: argparse.Namespace) -> list[tuple[str, str, Measured]]:
    results: list[tuple[str, str, Measured]] = []
    with MemoryManager(db_url) as mem:
        users = seed(mem, args.users, args.facts)
        key = ApiKeys(mem).create(admin=True, label="bench_server").secret

        def user(n: int) -> str:
            return users[n % len(users)]

        def compile_in_process(_i: int, n: int) -> bool:
            mem.compile(user_id=user(n), query=QUERY, token_budget=BUDGET)
            return True

        def add_in_process(_i: int, n: int) -> bool:
            mem.knowledge.add(new_fact(n), user_id=user(n), topics=["bench"])
            return True

        with server(db_url) as base:
            http = [
                httpx.Client(base_url=f"{base}/v1", headers={"Authorization": f"Bearer {key}"}, timeout=60)
                for _ in range(args.clients)
            ]
            try:

                def read_over_http(i: int, n: int) -> bool:
                    answer = http[i].get(
                        f"/users/{user(n)}/context", params={"query": QUERY, "token_budget": BUDGET}
                    )
                    return answer.status_code == 200

                def write_over_http(i: int, n: int) -> bool:
                    body = {"layer": "knowledge", "text": new_fact(n), "topics": ["bench"]}
                    return http[i].post(f"/users/{user(n)}/items", json=body).status_code == 201

                for op, local, remote in (
                    ("context read", compile_in_process, read_over_http),
                    ("memory write", add_in_process, write_over_http),
                ):
                    results.append((op, "in-process", run(args.clients, args.requests, local)))
                    results.append((op, "HTTP", run(args.clients, args.requests, remote)))
            finally:
                for client in http:
                    client.close()
    print_table(name, results, args)
    return results


def print_table(name: str, results: list[tuple[str, str, Measured]], args: argparse.Namespace) -> None:
    print(
        f"{name}: {args.clients} concurrent clients, {args.requests} calls per row, "
        f"{args.users} users x {args.facts} facts"
    )
    print(f"  {'operation':<14}{'mode':<12}{'req/s':>10}{'p50 ms':>10}{'p95 ms':>10}{'errors':>8}")
    for op, mode, m in results:
        print(
            f"  {op:<14}{mode:<12}{m.rate:>10,.0f}{m.percentile(50) * 1000:>10.2f}"
            f"{m.percentile(95) * 1000:>10.2f}{m.errors:>8}"
        )
    for op in dict.fromkeys(op for op, _, _ in results):
        local = next(m for o, mode, m in results if o == op and mode == "in-process")
        remote = next(m for o, mode, m in results if o == op and mode == "HTTP")
        print(
            f"  {op}: HTTP / in-process  req/s x{remote.rate / local.rate:.2f}  "
            f"p95 x{remote.percentile(95) / local.percentile(95):.2f}"
        )
    print()


@contextmanager
def postgres_schema(url: str) -> Iterator[str]:
    """A fresh schema on the server at ``url`` (dropped at the end), as a URL whose search_path is it."""
    schema = f"bench_server_{uuid.uuid4().hex[:10]}"
    engine = create_engine(url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    sep = "&" if "?" in url else "?"
    try:
        yield f"{url}{sep}options=-csearch_path%3D{schema}"
    finally:
        with engine.connect() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        engine.dispose()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--quick", action="store_true", help="a small run (a smoke test of the benchmark)")
    parser.add_argument("--requests", type=int, help="calls per row (default 2000; --quick 200)")
    parser.add_argument("--clients", type=int, default=16, help="concurrent clients (default 16)")
    parser.add_argument("--users", type=int, help="users seeded (default 16; --quick 4)")
    parser.add_argument("--facts", type=int, help="facts per user (default 1000; --quick 50)")
    parser.add_argument("--postgres-url", help="also run on this PostgreSQL server (a fresh schema)")
    args = parser.parse_args(argv)
    args.requests = args.requests or (200 if args.quick else 2_000)
    args.users = args.users or (4 if args.quick else 16)
    args.facts = args.facts or (50 if args.quick else 1_000)
    if min(args.requests, args.clients, args.users, args.facts) < 1:
        parser.error("--requests, --clients, --users and --facts must be >= 1")

    print(
        f"agentmem {version('agentmem-layers')}, Python {platform.python_version()}, "
        f"{platform.system()} {platform.machine()}, {os.cpu_count()} CPUs; uvicorn {version('uvicorn')}, "
        f"httpx {version('httpx')}"
    )
    print(f"context: query={QUERY!r}, token_budget={BUDGET:,}\n")
    errors = 0
    with tempfile.TemporaryDirectory() as folder:
        sqlite_url = f"sqlite:///{Path(folder) / 'bench_server.db'}"
        errors += sum(m.errors for _, _, m in bench_backend("sqlite", sqlite_url, args))
    if args.postgres_url:
        with postgres_schema(args.postgres_url) as pg_url:
            errors += sum(m.errors for _, _, m in bench_backend("postgres", pg_url, args))
    print(f"{'PASS' if errors == 0 else 'FAIL'}  errors: {errors} (target 0)")
    return 0 if errors == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
