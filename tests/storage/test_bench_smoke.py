"""bench/store.py keeps working (tiny sizes; no timing is asserted: figures belong to bench/)."""

from __future__ import annotations

from pathlib import Path

from bench.store import Plan, bench


async def test_store_bench_runs_end_to_end(tmp_path: Path) -> None:
    plan = Plan(sizes=(0, 50), total=300, turns=3, users=4, turns_per_user=2, runs=1)
    lines: list[str] = []
    figures = await bench(f"sqlite:///{tmp_path / 'bench.db'}", plan, lines.append)
    assert set(figures["per_turn_ms"]) == {0, 50}
    assert figures["turns_per_s_1_user"] > 0 and figures["turns_per_s_concurrent"] > 0
    assert figures["peak_rss_mb"] > 0
    assert any("turns/s" in line for line in lines)
