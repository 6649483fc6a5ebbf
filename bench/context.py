"""Context benchmark (issue 14): what a long conversation costs each prompt, with compaction.

    python bench/context.py [--turns N] [--compact-after N] [--window N] [--json]

A scripted conversation (1,000 turns by default) through the runner (agents.runner.Runner, the
real team and its after-turn jobs, run after each turn as the core runs them) with the real
openai SDK against the OpenAI-compatible emulator (testkit/emulators/llm.py), on a fresh SQLite
file: the emulator answers each turn with a chat line and each summariser call with a summary
of a realistic size (the LLM summariser: compaction makes real model calls). Printed:

  * prompt characters of each turn's first model call (the JSON of its messages; the tool
    schemas, the same every call, left out) at turns 10, 100 and 1,000: flat, not growing;
  * the share of each turn's prompt that is a byte-identical prefix of the previous turn's
    prompt: its minimum and median over the turns between compactions (what providers' prompt
    caches reuse), of the messages alone and with the tool definitions before them (as
    providers render a request for their caches), and over the turns right after one;
  * recall of 20 facts planted across a conversation as long, with the offline model: each
    fact told once ("remember that my ... is ..."), then asked for at the end;
  * the memory search cost per turn (bench/memory_search.py's `measure`, when it is there).
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import inspect
import json
import random
import statistics
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from agents import JokeBook, ModelClient, OfflineModel, QuoteProvider, build_team
from agents.compaction import SUMMARISER_INSTRUCTION, Compaction, ModelSummariser, OfflineSummariser
from agents.openai_model import OpenAIModel
from agents.runner import Runner
from storage import Store, open_store
from testkit.emulators.llm import LLMEmulator, Say

APP = "bench-context"
USER, SESSION = "u1", "telegram:1"
MARKS = (10, 100, 1000)
TOPICS = ("the weather", "my garden", "a film I saw", "work", "the weekend", "a book", "cooking")
# 20 facts, each told once at its turn and asked for at the end (offline model: its phrasing).
FACTS = tuple(
    (thing, value)
    for thing, value in (
        ("dog's name", "Pixel"),
        ("favourite colour", "teal"),
        ("car", "a red Fiat"),
        ("birthday", "March 3rd"),
        ("hometown", "Porto"),
        ("favourite food", "ramen"),
        ("sister's name", "Ines"),
        ("employer", "Acme Robotics"),
        ("favourite band", "Radiohead"),
        ("shoe size", "42"),
        ("cat's name", "Miso"),
        ("favourite book", "Dune"),
        ("phone brand", "Fairphone"),
        ("gym", "Iron Temple"),
        ("favourite drink", "mint tea"),
        ("bike", "a blue Brompton"),
        ("favourite city", "Kyoto"),
        ("partner's name", "Sam"),
        ("boss's name", "Dana"),
        ("favourite sport", "climbing"),
    )
)


@dataclass(frozen=True)
class Plan:
    turns: int = 1000
    compact_after: int = 40
    window: int = 100
    memory_scale: str = "FULL"  # bench/memory_search.py's scale: FULL, QUICK, or "" (skip)


def user_line(i: int, rng: random.Random) -> str:
    topic = rng.choice(TOPICS)
    return f"Message {i}: let me tell you a little about {topic}, it has been on my mind today."


def chat_answer(body: dict[str, Any]) -> Say:
    """The emulator's answer: a summary for the summariser, else a chat line."""
    messages = body["messages"]
    if messages and messages[0].get("content") == SUMMARISER_INSTRUCTION:
        return Say("The user has been chatting about everyday things. " * 12, prompt_tokens=900)
    n = sum(1 for m in messages if m.get("role") == "user")
    return Say(f"That sounds good. Thanks for telling me ({n}). Anything else on your mind?")


def common_prefix(a: str, b: str) -> int:
    """Length of the longest common prefix (binary search over slices: compared in C)."""
    low, high = 0, min(len(a), len(b))
    while low < high:
        mid = (low + high + 1) // 2
        if a[:mid] == b[:mid]:
            low = mid
        else:
            high = mid - 1
    return low


def prefix_share(previous: str, current: str) -> float:
    return common_prefix(previous, current) / len(current)


async def prompts_run(url: str, plan: Plan, log: Callable[[str], None]) -> dict[str, Any]:
    rng = random.Random(7)
    async with (
        LLMEmulator() as llm,
        await open_store(url) as store,
        QuoteProvider("http://127.0.0.1:9") as quotes,
    ):
        model = OpenAIModel(
            api_key="sk-bench", base_url=llm.base_url, model="bench/model", max_retries=0
        )
        try:
            runner = runner_for(store, model, quotes, ModelSummariser(model), plan)
            llm.script(*[chat_answer] * (plan.turns * 3))
            sizes: list[int] = []
            shares: list[float] = []
            with_tools: list[float] = []
            after: list[float] = []
            previous, previous_tools, compacted = "", "", False
            for i in range(1, plan.turns + 1):
                first = len(llm.requests)
                await turn(runner, user_line(i, rng), f"t{i}")
                body = llm.requests[first].body
                prompt = json.dumps(body["messages"], ensure_ascii=False)
                # As providers render it for their caches: the tool definitions, then messages.
                tooled = json.dumps(body.get("tools", []), ensure_ascii=False) + prompt
                sizes.append(len(prompt))
                if previous and compacted:
                    after.append(prefix_share(previous, prompt))
                elif previous:
                    shares.append(prefix_share(previous, prompt))
                    with_tools.append(prefix_share(previous_tools, tooled))
                compacted = any(_is_summary(r.body) for r in llm.requests[first + 1 :])
                previous, previous_tools = prompt, tooled
                if i in MARKS:
                    log(f"  turn {i:>5}: {len(prompt):>7,} prompt characters")
        finally:
            await model.aclose()
    return {
        "prompt_chars": {t: sizes[t - 1] for t in MARKS if t <= len(sizes)},
        "prompt_chars_max": max(sizes),
        "compactions": len(after),
        "prefix_share_between": _spread(shares),
        "prefix_share_between_with_tools": _spread(with_tools),
        "prefix_share_after_compaction": _spread(after),
    }


def _is_summary(body: dict[str, Any]) -> bool:
    return body["messages"][0].get("content") == SUMMARISER_INSTRUCTION


def _spread(values: list[float]) -> dict[str, float]:
    if not values:
        return {}
    return {
        "min": round(min(values), 3),
        "median": round(statistics.median(values), 3),
        "turns_at_90": round(sum(v >= 0.9 for v in values) / len(values), 3),
    }


def runner_for(
    store: Store, model: ModelClient, quotes: QuoteProvider, summariser: Any, plan: Plan
) -> Runner:
    team = build_team(model, quotes, JokeBook(random.Random(7)))
    # COMPACT_AFTER=0, as in the app: no compaction, the window slides (for comparison).
    jobs = [Compaction(store, summariser, after=plan.compact_after)] if plan.compact_after else []
    return Runner(store, team, app_name=APP, history_window=plan.window, after_turn=jobs)


async def turn(runner: Runner, text: str, invocation_id: str) -> str:
    final = ""
    async for event in runner.run_async(USER, SESSION, text, invocation_id=invocation_id):
        if event.final:
            final = event.text
    await runner.after_turn(USER, SESSION, invocation_id)
    return final


async def recall_run(url: str, plan: Plan) -> dict[str, Any]:
    """The offline model and its memory: facts told across the conversation, asked at the end."""
    rng = random.Random(11)
    every = max(plan.turns // len(FACTS), 1)
    async with await open_store(url) as store, QuoteProvider("http://127.0.0.1:9") as quotes:
        runner = runner_for(store, OfflineModel(), quotes, OfflineSummariser(), plan)
        told = 0
        for i in range(1, plan.turns + 1):
            if i % every == 0 and told < len(FACTS):
                thing, value = FACTS[told]
                await turn(runner, f"Remember that my {thing} is {value}.", f"r{i}")
                told += 1
            else:
                await turn(runner, user_line(i, rng), f"r{i}")
        recalled = 0
        for k, (thing, value) in enumerate(FACTS[:told]):
            answer = await turn(runner, f"What is my {thing}?", f"q{k}")
            recalled += value.lower() in answer.lower()
    return {"recalled": recalled, "planted": told}


async def memory_search(url: str, plan: Plan) -> dict[str, Any] | None:
    """bench/memory_search.py's figures (one recall per turn: 10,000 memories of the user,
    1,000,000 in the database at FULL scale), when that benchmark is there."""
    if not plan.memory_scale or importlib.util.find_spec("bench.memory_search") is None:
        return None
    try:
        module = importlib.import_module("bench.memory_search")
    except ImportError:  # there, but not runnable with this tree
        return None
    measure, scale = getattr(module, "measure", None), getattr(module, plan.memory_scale, None)
    if measure is None or scale is None:
        return None
    figures = measure(url, scale, lambda line: None)
    return dict(await figures if inspect.isawaitable(figures) else figures)


async def bench(url_of: Callable[[str], str], plan: Plan, log: Callable[[str], None]) -> dict:
    log(f"{plan.turns:,} turns, COMPACT_AFTER {plan.compact_after}, HISTORY_WINDOW {plan.window}")
    figures: dict[str, Any] = {"plan": plan.__dict__}
    figures.update(await prompts_run(url_of("prompts"), plan, log))
    between, after = figures["prefix_share_between"], figures["prefix_share_after_compaction"]
    log(f"  largest prompt: {figures['prompt_chars_max']:,} characters")
    log("  share of a prompt that is the previous one's prefix, between compactions:")
    log(f"    messages only: {_share_line(between)}")
    tooled = figures["prefix_share_between_with_tools"]
    log(f"    tool definitions + messages: {_share_line(tooled)}")
    log(f"  right after a compaction ({figures['compactions']}): min {after.get('min')}")
    figures["recall"] = await recall_run(url_of("recall"), plan)
    recall = figures["recall"]
    log(f"  recall (offline model): {recall['recalled']}/{recall['planted']} facts")
    search = figures["memory_search"] = await memory_search(url_of("memories"), plan)
    log(f"  memory search per turn: {_search_line(search) if search else 'n/a'}")
    return figures


def _share_line(spread: dict[str, float]) -> str:
    return (
        f"min {spread.get('min')}, median {spread.get('median')},"
        f" >= 0.9 in {spread.get('turns_at_90', 0):.0%} of turns"
    )


def _search_line(figures: dict[str, Any]) -> str:
    hit, miss = figures.get("matching", {}), figures.get("no_match", {})
    return (
        f"median {hit.get('median_ms')} ms (p95 {hit.get('p95_ms')}) for a matching message,"
        f" {miss.get('median_ms')} ms for one matching nothing;"
        f" {figures.get('user_memories', 0):,} memories of the user,"
        f" {figures.get('total_memories', 0):,} in the database ({figures.get('backend')})"
    )


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--turns", type=int, default=1000)
    ap.add_argument("--compact-after", type=int, default=40)
    ap.add_argument("--window", type=int, default=100)
    ap.add_argument(
        "--memory-scale",
        default="FULL",
        help="bench/memory_search.py's FULL (1M memories, minutes to fill) or QUICK; '' skips",
    )
    ap.add_argument("--json", action="store_true", help="print the figures as JSON at the end")
    args = ap.parse_args()
    plan = Plan(args.turns, args.compact_after, args.window, args.memory_scale)
    with tempfile.TemporaryDirectory() as tmp:
        figures = asyncio.run(bench(lambda name: f"sqlite:///{tmp}/{name}.db", plan, print))
    if args.json:
        print(json.dumps(figures, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
