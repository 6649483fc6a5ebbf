"""bench/store.py and bench/memory_search.py keep working (tiny sizes; no timing is asserted:
figures belong to bench/)."""

from __future__ import annotations

from pathlib import Path

from bench.memory_search import USER, Scale, measure
from bench.store import Plan, bench
from storage import Store


async def test_store_bench_runs_end_to_end(tmp_path: Path) -> None:
    plan = Plan(sizes=(0, 50), total=300, turns=3, users=4, turns_per_user=2, runs=1)
    lines: list[str] = []
    figures = await bench(f"sqlite:///{tmp_path / 'bench.db'}", plan, lines.append)
    assert set(figures["per_turn_ms"]) == {0, 50}
    assert figures["turns_per_s_1_user"] > 0 and figures["turns_per_s_concurrent"] > 0
    assert figures["peak_rss_mb"] > 0
    assert any("turns/s" in line for line in lines)


async def test_memory_search_bench_runs_on_either_backend(store: Store) -> None:
    lines: list[str] = []
    figures = await measure(store, Scale(user_memories=30, total=250, calls=5), lines.append)
    assert figures["recall_returns"] >= 4 and figures["matching"]["median_ms"] > 0
    assert figures["no_match"]["p95_ms"] > 0
    assert any("per call" in line for line in lines)
    assert len(await store.memories(figures["app"], USER)) == 30
    again = await measure(store, Scale(30, 250, 5), lines.append, app=figures["app"])
    assert again["app"] == figures["app"]  # measured on the rows already there
