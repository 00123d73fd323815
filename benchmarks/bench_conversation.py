"""Calls and prompt tokens on one scripted conversation: what the salience gate saves, what a call costs.

A 44-turn conversation with one user (Mara, a data analyst), each turn marked in the script as memorable
(it discloses a fact, preference, plan or reaction: the scripted model stores exactly one fact for it) or
not (small talk, a request for help, a reaction that says nothing about her: 20 of 44 turns). Every turn
goes through ``learn()`` with a litellm model pointed at a loopback OpenAI-compatible server
(agentmem.testing.LoopbackServer), so the whole HTTP path runs, offline; the server is the scripted
model and answers at once.

Printed, with targets:
  - model calls per turn overall (<= 0.6) and on small-talk turns (0);
  - memorable turns the gate skipped (must be 0: a turn that states a fact is never skipped);
  - prompt tokens per call (cl100k, agentmem.tokens.default_counter) on the call made when 20 facts are
    stored (<= 1,000), broken down into instructions / schema / stored items / conversation;
  - agentmem's own time per learn, p50 over the turns that call the model, the model call (litellm +
    HTTP + server) excluded (<= 4 ms on SQLite); pooled over ``--rounds`` passes, each on a new file.

Whether the JSON Schema travels in the prompt or as ``response_format`` depends on whether litellm
credits the model with json_schema support; it does not know ``openai/bench-model``, so by default
the schema is in the prompt (JSON mode). ``--native`` claims support, so the schema goes as
``response_format`` (counted there).

Run: python benchmarks/bench_conversation.py [--native] [--rounds 3] [--show-prompt]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import statistics
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # before litellm is ever imported

from bench_learn import TimedModel, percentile  # the same timed litellm model and percentile

from agentmem import MemoryManager
from agentmem.testing import LoopbackServer
from agentmem.tokens import default_counter

CALLS_PER_TURN = 0.6
TOKENS_AT_20_FACTS = 1_000
OWN_MS = 4.0
STORED_FOR_TOKENS = 20

# (what the user says, the assistant's answer, the fact a model would store or None for small talk)
SCRIPT: list[tuple[str, str, str | None]] = [
    ("Hello!", "Hi! What can I do for you?", None),
    (
        "I'm Mara, a data analyst at a freight company in Hamburg.",
        "Nice to meet you, Mara.",
        "Is Mara, a data analyst at a freight company in Hamburg",
    ),
    (
        "Most of my work is Python, and our warehouse data lives in Snowflake.",
        "A common pairing.",
        "Works in Python with warehouse data in Snowflake",
    ),
    ("Can you show me a groupby example?", "df.group_by('route').agg(pl.col('kg').sum())", None),
    ("thanks, that helps", "Glad to help.", None),
    (
        "This quarter I'm building a demand forecast for our trucking routes.",
        "Sounds like a good project.",
        "Is building a demand forecast for trucking routes this quarter",
    ),
    ("How does exponential smoothing work?", "It weights recent observations more...", None),
    (
        "Please keep code snippets short; I read them on a small laptop screen.",
        "Will do.",
        "Wants short code snippets (small laptop screen)",
    ),
    ("ok great", "Anything else?", None),
    (
        "That groupby example was exactly what I needed.",
        "Great to hear.",
        "Found the groupby example exactly what she needed",
    ),
    ("Explain SHAP values briefly.", "SHAP splits a prediction into feature contributions...", None),
    (
        "Honestly, the SHAP explanation was too abstract for me.",
        "Let me try a concrete example.",
        "Found the SHAP explanation too abstract",
    ),
    (
        "I prefer Polars over pandas for anything above a few million rows.",
        "Noted.",
        "Prefers Polars over pandas for large data",
    ),
    ("What's the difference between MAPE and sMAPE?", "sMAPE divides by the mean of both...", None),
    (
        "My manager wants the forecast dashboard ready by the end of March.",
        "That's a tight but doable deadline.",
        "Forecast dashboard is due by the end of March",
    ),
    ("Give me an example of a rolling window feature.", "pl.col('kg').rolling_mean(7)", None),
    ("cool, thanks!", "You're welcome.", None),
    (
        "We schedule everything with Airflow 2.8.",
        "Good to know.",
        "Her team schedules jobs with Airflow 2.8",
    ),
    (
        "I'm presenting the model to our logistics leads next Thursday.",
        "Want help with the slides?",
        "Presents the model to the logistics leads next Thursday",
    ),
    ("Got it.", "Ping me any time.", None),
    (
        "I studied economics, not computer science.",
        "That helps me pitch explanations.",
        "Has an economics background, not computer science",
    ),
    ("Which is faster for joins, a hash join or a sort-merge join?", "Usually a hash join...", None),
    (
        "Our team is just me and two junior analysts.",
        "A small team, then.",
        "Works in a team of three: herself and two junior analysts",
    ),
    (
        "Next sprint I plan to try LightGBM instead of Prophet.",
        "LightGBM handles many series well.",
        "Plans to try LightGBM instead of Prophet next sprint",
    ),
    ("thanks a lot!", "Any time.", None),
    (
        "From now on, always include type hints in Python snippets.",
        "Will do.",
        "Wants type hints in every Python snippet",
    ),
    ("List three ways to detect outliers in a time series.", "IQR, rolling z-score, STL residuals.", None),
    (
        "The answer about weekly seasonality was spot on.",
        "Glad it landed.",
        "Liked the answer about weekly seasonality",
    ),
    ("makes sense, thanks", "Great.", None),
    (
        "We're moving the warehouse from Snowflake to BigQuery this summer.",
        "A big migration.",
        "Is moving the warehouse from Snowflake to BigQuery this summer",
    ),
    ("What does the closed argument of a rolling window do?", "It sets which ends are included...", None),
    (
        "My laptop is a MacBook Air with 8 GB of RAM, so memory is tight.",
        "Lazy frames will help.",
        "Has a MacBook Air with 8 GB of RAM",
    ),
    (
        "I'd rather get one recommended option than a list of five.",
        "Understood.",
        "Prefers one recommendation over a list of options",
    ),
    ("Summarize gradient boosting in two sentences.", "It adds trees that fix the last errors...", None),
    (
        "The last snippet didn't run: our Polars version is 0.20.",
        "Sorry, here is a 0.20 version.",
        "Uses Polars 0.20; a snippet for a newer version failed",
    ),
    ("good to know", "Indeed.", None),
    (
        "I'm vegetarian, by the way, in case you ever suggest team lunch spots.",
        "Noted.",
        "Is vegetarian",
    ),
    ("Can you write a function that fills missing dates in a series?", "def fill_dates(df): ...", None),
    (
        "I'm going on parental leave from mid-May for three months.",
        "Congratulations!",
        "Goes on parental leave from mid-May for three months",
    ),
    (
        "I can't stand long preambles, so put the code first.",
        "Code first, then.",
        "Wants the code first, no long preamble",
    ),
    ("What's a lag feature?", "A past value of the target used as input...", None),
    (
        "In September I start a part-time master's in statistics.",
        "Exciting!",
        "Starts a part-time master's in statistics in September",
    ),
    (
        "Our fiscal year starts in April, so quarterly forecasts follow that.",
        "I'll keep that in mind.",
        "Her company's fiscal year starts in April",
    ),
    ("That's all for today, bye for now!", "Bye, Mara!", None),
]


def scripted_reply(body: dict[str, Any]) -> dict[str, Any]:
    """The scripted model: one fact for the memorable turn in the prompt, nothing for small talk."""
    prompt = body["messages"][0]["content"]
    for user, _, fact in SCRIPT:
        if json.dumps(user, ensure_ascii=False) in prompt:
            return {"knowledge": [{"text": fact, "topics": ["mara"]}] if fact else []}
    return {}  # the warm-up turn


_STORED = re.compile(r"^(?:\d+\. |Stored )")  # an aliased stored item, or the heading over them


def breakdown(body: dict[str, Any], count: Any) -> dict[str, int]:
    """One request's tokens by part: the conversation block, stored items (aliased lines and their
    heading), the JSON Schema (its line in the prompt, or ``response_format``), and instructions (the
    rest, the closing user message included). Each part is counted as one text."""
    parts: dict[str, list[str]] = {"instructions": [], "schema": [], "stored items": [], "conversation": []}
    inside = False
    for line in body["messages"][0]["content"].splitlines():
        if line.startswith("<conversation>"):
            inside = True
        if inside:
            parts["conversation"].append(line)
        elif line.startswith("{") and '"properties"' in line:
            parts["schema"].append(line)
        elif _STORED.match(line):
            parts["stored items"].append(line)
        else:
            parts["instructions"].append(line)
        if line.startswith("</conversation>"):
            inside = False
    parts["instructions"] += [str(m["content"]) for m in body["messages"][1:]]
    response_format = body.get("response_format") or {}
    if response_format.get("type") == "json_schema":
        parts["schema"].append(json.dumps(response_format["json_schema"], separators=(",", ":")))
    return {name: count("\n".join(lines)) if lines else 0 for name, lines in parts.items()}


@dataclass
class Run:
    """What one pass through the script measured."""

    calls: int = 0
    talk_calls: int = 0
    let_through: list[str] = field(default_factory=list)
    missed: list[str] = field(default_factory=list)
    tokens: list[int] = field(default_factory=list)
    at_20: tuple[dict[str, int], dict[str, Any]] | None = None
    own_ms: list[float] = field(default_factory=list)  # per turn, in script order
    stored_facts: int = 0


def converse(native: bool, count: Any) -> Run:
    """The script through learn(), one turn at a time, on a new SQLite file."""
    run = Run()
    with tempfile.TemporaryDirectory() as tmp, LoopbackServer(scripted_reply) as server:
        model = TimedModel("openai/bench-model", {"api_base": server.url, "api_key": "bench"}, native=native)
        mem = MemoryManager(db=f"sqlite:///{Path(tmp) / 'bench.db'}", model=model)
        mem.learn([{"role": "user", "content": "I'm warming up the client."}], user_id="warmup")  # imports
        previous: list[dict[str, str]] = []
        for user, reply, fact in SCRIPT:
            answer = {"role": "assistant", "content": reply}
            messages = [*previous, {"role": "user", "content": user}, answer]
            previous = [answer]
            sent, model_before = len(server.requests), len(model.seconds)
            started = time.perf_counter()
            result = mem.learn(messages, user_id="mara", session_id="bench")
            wall = time.perf_counter() - started
            run.own_ms.append((wall - sum(model.seconds[model_before:])) * 1000)
            run.calls += result.usage.model_calls
            if fact is None:
                run.talk_calls += result.usage.model_calls
                if result.usage.model_calls:
                    run.let_through.append(user)
            elif result.usage.skipped is not None:
                run.missed.append(f"{user!r} ({result.usage.skipped})")
            for body in server.requests[sent:]:
                parts = breakdown(body, count)
                run.tokens.append(sum(parts.values()))
                stored = sum(1 for line in body["messages"][0]["content"].splitlines() if line[:1].isdigit())
                if run.at_20 is None and stored == STORED_FOR_TOKENS:
                    run.at_20 = (parts, body)
        run.stored_facts = len(mem.knowledge.list(user_id="mara"))
        mem.close()
    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--native", action="store_true", help="claim json_schema support for the model")
    parser.add_argument("--rounds", type=int, default=3, help="passes through the script, for the timings")
    parser.add_argument("--show-prompt", action="store_true", help="print the prompt sent at 20 facts")
    args = parser.parse_args()
    count = default_counter()
    runs = [converse(args.native, count) for _ in range(max(1, args.rounds))]
    run = runs[0]  # calls and tokens are the same in every pass; timings are pooled
    small_talk = sum(fact is None for _, _, fact in SCRIPT)
    turns, memorable = len(SCRIPT), len(SCRIPT) - small_talk
    path = "native json_schema (response_format)" if args.native else "JSON mode (schema in the prompt)"
    print("agentmem conversation benchmark: model calls and prompt tokens")
    print(f"  python {platform.python_version()}, {os.cpu_count()} CPUs; litellm over loopback HTTP; {path}")
    print(
        f"  turns: {turns}; memorable {memorable}, small talk {small_talk}; facts stored: {run.stored_facts}"
    )
    print(f"  model calls: {run.calls} = {run.calls / turns:.2f} per turn (target <= {CALLS_PER_TURN})")
    print(f"  model calls on small-talk turns: {run.talk_calls} (target 0)")
    for user in run.let_through:
        print(f"    let through: {user!r}")
    print(f"  memorable turns skipped by the gate: {len(run.missed)} (must be 0)")
    for miss in run.missed:
        print(f"    missed: {miss}")
    if run.tokens:
        mean, most = statistics.mean(run.tokens), max(run.tokens)
        print(f"  prompt tokens per call (cl100k): mean {mean:.0f}, max {most}; all calls {sum(run.tokens)}")
    if run.at_20 is not None:
        parts, body = run.at_20
        shares = ", ".join(f"{name} {n}" for name, n in parts.items())
        print(
            f"  at {STORED_FOR_TOKENS} stored facts: {sum(parts.values())} tokens "
            f"(target <= {TOKENS_AT_20_FACTS}): {shares}"
        )
        if args.show_prompt:
            print(body["messages"][0]["content"])
            if body.get("response_format"):
                print(json.dumps(body["response_format"]))
    # A learn that calls the model is the one with work to do; a skipped turn costs next to nothing.
    called = [ms for r in runs for ms, (_, _, fact) in zip(r.own_ms, SCRIPT, strict=True) if fact]
    every = [ms for r in runs for ms in r.own_ms]
    p50 = percentile(called, 50)
    print(
        f"  agentmem's own time per learn (model call excluded; {len(runs)} passes): p50 {p50:.2f} ms, "
        f"p95 {percentile(called, 95):.2f} ms on turns that call the model (target p50 <= {OWN_MS} ms); "
        f"p50 {percentile(every, 50):.2f} ms over all turns"
    )
    checks = {
        "calls per turn": run.calls / turns <= CALLS_PER_TURN,
        "no calls on small talk": run.talk_calls == 0,
        "no memorable turn skipped": not run.missed,
        f"tokens at {STORED_FOR_TOKENS} facts": run.at_20 is not None
        and sum(run.at_20[0].values()) <= TOKENS_AT_20_FACTS,
        "own time p50": p50 <= OWN_MS,
    }
    print("  " + "; ".join(f"{name}: {'PASS' if ok else 'MISS'}" for name, ok in checks.items()))


if __name__ == "__main__":
    main()
