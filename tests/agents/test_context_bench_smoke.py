"""bench/context.py keeps working (a short conversation; no figure is asserted beyond its shape:
the figures belong to bench/)."""

from __future__ import annotations

from pathlib import Path

from bench.context import Plan, bench


async def test_context_bench_runs_end_to_end(tmp_path: Path) -> None:
    plan = Plan(turns=30, compact_after=8, window=20, memory_scale="")
    lines: list[str] = []
    figures = await bench(lambda name: f"sqlite:///{tmp_path / name}.db", plan, lines.append)
    assert set(figures["prompt_chars"]) == {10}
    assert figures["compactions"] >= 2  # the summariser ran through the emulator
    assert set(figures["prefix_share_between"]) == {"min", "median", "turns_at_90"}
    between, tooled = figures["prefix_share_between"], figures["prefix_share_between_with_tools"]
    assert tooled["min"] >= between["min"]  # the same tool definitions lead every prompt
    assert figures["recall"]["planted"] == 20
    assert 0 <= figures["recall"]["recalled"] <= 20
    assert any("recall" in line for line in lines)
    assert figures["memory_search"] is None  # skipped here: bench/memory_search.py's own test
