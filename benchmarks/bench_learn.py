"""learn() cost per turn: model calls, prompt tokens, and agentmem's own time.

A scripted 50-turn conversation goes through ``learn()`` with a litellm model pointed at a loopback
OpenAI-compatible server (agentmem.testing.LoopbackServer), so the whole HTTP path runs, offline.
The server answers every extraction request with a plausible JSON reply at once (delay 0), so what is
measured is the client side; the model call itself (litellm + HTTP + server) is timed separately and
subtracted to give agentmem's own time per learn.

Targets: at most 1 model call per turn, 0 for turns the salience gate skips; agentmem's own time per
learn under 5% of a 500 ms model call (25 ms).

Run: python benchmarks/bench_learn.py [--turns 50]
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # before litellm is ever imported

from agentmem import LiteLLMModel, MemoryManager, ModelRequest, ModelResponse
from agentmem.testing import LoopbackServer
from agentmem.tokens import default_counter

MODEL_CALL_MS = 500.0
TARGET_SHARE = 0.05

SCRIPT = [  # (user, assistant) pairs; cycled and numbered to reach the requested length
    ("Hi, I'm Dana, a platform engineer at Northwind.", "Hi Dana! How can I help?"),
    ("I'm migrating our CI from Jenkins to GitHub Actions.", "Good move. Which part first?"),
    ("ok", "Let me know."),
    ("How do I cache pip downloads in a workflow?", "Use actions/cache keyed on requirements.txt."),
    ("That was perfect, thanks!", "Glad it helped."),
    ("Keep answers short, please.", "Will do."),
    ("My goal is to cut build times below 10 minutes.", "Caching and parallel jobs will help most."),
    ("thanks!", "Any time."),
    ("What's the weather like in Paris today?", "I can't check live weather."),
    ("I live in Rotterdam and I speak Dutch and English.", "Noted."),
]


class TimedModel(LiteLLMModel):
    """The real litellm model, with the time spent inside each call recorded."""

    def __init__(self, *args: Any, native: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.native = native  # take the JSON Schema natively, as models litellm knows to do
        self.seconds: list[float] = []

    def supports_json_schema(self) -> bool:
        return self.native or super().supports_json_schema()

    async def generate(self, request: ModelRequest) -> ModelResponse:
        started = time.perf_counter()
        try:
            return await super().generate(request)
        finally:
            self.seconds.append(time.perf_counter() - started)


def extraction_reply(body: dict[str, Any]) -> dict[str, Any]:
    """A plausible model answer: the last user line of the conversation as a fact about the user."""
    prompt = body["messages"][0]["content"]
    said = re.findall(r"^\[user\] (.+)$", prompt, flags=re.MULTILINE)
    last = said[-1] if said else ""
    return {"knowledge": [{"text": f"Said: {last.rstrip('.!?')}", "topics": ["bench"]}]}


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--turns", type=int, default=50)
    args = parser.parse_args()
    count = default_counter()
    turns = [
        (f"{user} (turn {i})" if not user.endswith("!") and len(user) > 12 else user, reply)
        for i, (user, reply) in ((i, SCRIPT[i % len(SCRIPT)]) for i in range(args.turns))
    ]
    with tempfile.TemporaryDirectory() as tmp, LoopbackServer(extraction_reply) as server:
        model = TimedModel("openai/bench-model", {"api_base": server.url, "api_key": "bench"})
        mem = MemoryManager(db=f"sqlite:///{Path(tmp) / 'bench.db'}", model=model)
        mem.learn([{"role": "user", "content": "I'm warming up the client."}], user_id="warmup")  # imports
        calls_per_turn, skipped, own_ms, client_ms, tokens = [], 0, [], [], []
        previous: list[dict[str, str]] = []
        for user, reply in turns:
            answer = {"role": "assistant", "content": reply}
            messages = [*previous, {"role": "user", "content": user}, answer]
            previous = [answer]
            sent, model_before, server_before = (
                len(server.requests),
                len(model.seconds),
                server.handler_seconds,
            )
            started = time.perf_counter()
            result = mem.learn(messages, user_id="dana", session_id="bench")
            wall = time.perf_counter() - started
            in_model = sum(model.seconds[model_before:])
            calls_per_turn.append(result.usage.model_calls)
            skipped += result.usage.skipped is not None
            if result.usage.model_calls:
                own_ms.append((wall - in_model) * 1000)
                client_ms.append((in_model - (server.handler_seconds - server_before)) * 1000)
                for body in server.requests[sent:]:
                    tokens.append(sum(count(str(m.get("content") or "")) for m in body["messages"]))
        mem.close()

    print("agentmem learn() benchmark")
    print(
        f"  python {platform.python_version()}, {os.cpu_count()} CPUs; model via litellm over loopback HTTP"
    )
    print(f"  turns: {len(turns)}; skipped by the salience gate: {skipped} (model calls on them: 0)")
    print(f"  model calls: total {sum(calls_per_turn)}, max per turn {max(calls_per_turn)}")
    first, last = tokens[:10], tokens[-10:]
    print(
        f"  prompt tokens per call (cl100k): mean {statistics.mean(tokens):.0f}, "
        f"p95 {percentile(tokens, 95):.0f}, max {max(tokens)}; "
        f"first 10 calls {statistics.mean(first):.0f}, last 10 {statistics.mean(last):.0f}"
    )
    print(
        f"  agentmem's own time per learn: p50 {percentile(own_ms, 50):.2f} ms, "
        f"p95 {percentile(own_ms, 95):.2f} ms  "
        f"(litellm client + HTTP, excluded: p50 {percentile(client_ms, 50):.2f} ms)"
    )
    budget = MODEL_CALL_MS * TARGET_SHARE
    p50 = percentile(own_ms, 50)
    verdict = "PASS" if max(calls_per_turn) <= 1 and p50 < budget else "MISS"
    print(
        f"target: <= 1 call per turn, 0 when skipped; own time < {budget:.0f} ms "
        f"({TARGET_SHARE:.0%} of a {MODEL_CALL_MS:.0f} ms call)"
    )
    print(
        f"{verdict}: {max(calls_per_turn)} call(s) max per turn; own time p50 {p50:.2f} ms = "
        f"{p50 / MODEL_CALL_MS:.1%} of {MODEL_CALL_MS:.0f} ms"
    )


if __name__ == "__main__":
    main()
