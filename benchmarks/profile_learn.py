"""Where a learn's own time goes: learns through an in-process model that answers at once, so all the
time measured is agentmem's. Prints the CPU time of the calling thread per learn (steadier than wall
time on a shared machine), and with --profile the functions that cost most (cProfile, cumulative).

bench_learn.py measures the same learns through litellm and HTTP; this one isolates agentmem.

Run: python benchmarks/profile_learn.py [--turns 200] [--native] [--profile 40 [--save FILE]]
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import pstats
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

sys.path.insert(0, str(Path(__file__).parent))
from bench_learn import SCRIPT

from agentmem import MemoryManager, ModelRequest, ModelResponse


class InstantModel:
    """Answers each extraction request with one fact: the last thing the user said."""

    def __init__(self, native: bool) -> None:
        self.native = native

    def supports_json_schema(self) -> bool:
        return self.native

    async def generate(self, request: ModelRequest) -> ModelResponse:
        said = re.findall(r"^\[user\] (.+)$", str(request.messages[0]["content"]), flags=re.MULTILINE)
        fact = {"text": f"Said: {(said[-1] if said else '').rstrip('.!?')}", "topics": ["bench"]}
        return ModelResponse(json.dumps({"knowledge": [fact]}), prompt_tokens=100, completion_tokens=20)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--turns", type=int, default=200)
    parser.add_argument("--native", action="store_true", help="the model takes a JSON Schema response_format")
    parser.add_argument("--profile", type=int, default=0, metavar="N", help="print the top N functions")
    parser.add_argument("--save", metavar="FILE", help="with --profile: also write the profile (pstats)")
    args = parser.parse_args()
    profile = cProfile.Profile()
    cpu_ms: list[float] = []
    with tempfile.TemporaryDirectory() as tmp:
        mem = MemoryManager(db=f"sqlite:///{Path(tmp) / 'profile.db'}", model=InstantModel(args.native))
        mem.learn(
            [{"role": "user", "content": "I'm warming up: my key is sk-abcdefghijklmnopqrstuvwx."}],
            user_id="w",
        )
        previous: list[dict[str, str]] = []
        for i in range(args.turns):
            user, reply = SCRIPT[i % len(SCRIPT)]
            answer = {"role": "assistant", "content": reply}
            said = (
                f"{user} (turn {i})" if not user.endswith("!") and len(user) > 12 else user
            )  # as bench_learn
            messages = [*previous, {"role": "user", "content": said}, answer]
            previous = [answer]
            started = time.thread_time()
            if args.profile:
                profile.enable()
            result = mem.learn(messages, user_id="dana", session_id="bench")
            if args.profile:
                profile.disable()
            if result.usage.model_calls:
                cpu_ms.append((time.thread_time() - started) * 1000)
        mem.close()
    ordered = sorted(cpu_ms)
    print(
        f"{len(cpu_ms)} learns with a model call (of {args.turns} turns): calling thread's CPU per learn "
        f"p50 {statistics.median(ordered):.2f} ms, p95 {ordered[int(0.95 * (len(ordered) - 1))]:.2f} ms"
        + (" (profiled: slower)" if args.profile else "")
    )
    if args.profile:
        pstats.Stats(profile).sort_stats("cumulative").print_stats(args.profile)
    if args.save:
        profile.dump_stats(args.save)


if __name__ == "__main__":
    main()
