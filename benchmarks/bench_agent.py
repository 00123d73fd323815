"""Does automatic learning slow the reply? Agent.run latency with update_memory_on_run on and off.

The agent and the memory both call a litellm model pointed at a loopback OpenAI-compatible server
that takes 300 ms per request (a chat reply, or an extraction). With automatic learning on, every run
also starts a background extraction; the reply must not wait for it. Runs alternate between the two
agents so machine noise hits both alike; the users pause briefly between turns, as people do, and
once with no pause at all (learning then overlaps the next reply).

Target: p50 reply latency with learning on within 5% of learning off.

Run: python benchmarks/bench_agent.py [--runs 20] [--delay 0.3]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # before litellm is ever imported

from agentmem import Agent, MemoryManager
from agentmem.testing import LoopbackServer

TARGET = 0.05
TURNS = [
    "Hi, I'm Noor, a data engineer at Contoso.",
    "I'm building a streaming pipeline with Kafka.",
    "How do I make the consumer idempotent?",
    "That was perfect, thanks!",
    "Keep answers short, please.",
    "What about exactly-once delivery?",
]


def reply(body: dict[str, Any]) -> Any:
    """Extraction requests get JSON (a new fact each time); chat requests get a short answer."""
    if body.get("response_format"):
        return {
            "knowledge": [{"text": f"Streaming pipeline detail number {len(body['messages'][0]['content'])}"}]
        }
    return "Use a deduplication key per message and commit offsets after processing."


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def measure(
    runs: int, pause: float, delay: float, tmp: Path, label: str
) -> tuple[dict[str, list[float]], str]:
    latencies: dict[str, list[float]] = {"off": [], "on": []}
    learned = {}
    with LoopbackServer(reply, delay=delay) as server:
        options = {"api_base": server.url, "api_key": "bench"}
        agents = {}
        for mode in latencies:
            memory = MemoryManager(
                db=f"sqlite:///{tmp / f'{label}-{mode}.db'}",
                model="openai/bench-model",
                model_options=options,
                update_memory_on_run=mode == "on",
            )
            agents[mode] = Agent("openai/bench-model", memory=memory, model_options=options)
        for mode, agent in agents.items():  # warm-up: imports, connections, first compile
            agent.run("Hello!", user_id=f"warmup-{mode}")
            agent.wait_for_memory()
        session = {mode: f"{label}-{mode}" for mode in agents}
        for i in range(runs):
            for mode, agent in agents.items():
                started = time.perf_counter()
                # Numbered, so no turn repeats an input already learned (that would skip extraction).
                message = f"{TURNS[i % len(TURNS)]} (turn {i})"
                agent.run(message, user_id=f"noor-{mode}", session_id=session[mode])
                latencies[mode].append((time.perf_counter() - started) * 1000)
                time.sleep(pause)
        for mode, agent in agents.items():
            agent.wait_for_memory()
            agent.close()
            assert agent.memory is not None
            learned[mode] = len(agent.memory.get(user_id=f"noor-{mode}").items)
            agent.memory.close()
        requests = len(server.requests)
    # Proof the "on" agent really learned while being measured, and the "off" one did not.
    return latencies, f"items learned: off {learned['off']}, on {learned['on']}; requests served {requests}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--delay", type=float, default=0.3)
    args = parser.parse_args()
    print("agentmem Agent.run latency, automatic learning off vs on")
    print(
        f"  python {platform.python_version()}, {os.cpu_count()} CPUs; model delay {args.delay * 1000:.0f} ms"
    )
    verdicts = []
    with tempfile.TemporaryDirectory() as tmp:
        for label, pause in (("pause 0.5 s", 0.5), ("no pause", 0.0)):
            latencies, learned = measure(args.runs, pause, args.delay, Path(tmp), label.replace(" ", "-"))
            off, on = (statistics.median(latencies[m]) for m in ("off", "on"))
            ratio = on / off - 1
            verdicts.append((label, ratio))
            print(
                f"  {label:<12} off: p50 {off:7.1f} ms  p95 {percentile(latencies['off'], 95):7.1f} ms | "
                f"on: p50 {on:7.1f} ms  p95 {percentile(latencies['on'], 95):7.1f} ms | p50 {ratio:+.1%}"
            )
            print(f"  {'':<12} {learned}")
    label, ratio = verdicts[0]
    verdict = "PASS" if ratio <= TARGET else "MISS"
    print(f"target: learning on within {TARGET:.0%} of off (p50, users pausing between turns)")
    print(f"{verdict}: {ratio:+.1%} ({label}); with no pause at all: {verdicts[1][1]:+.1%}")


if __name__ == "__main__":
    main()
