"""bench/alerts.py keeps working (tiny sizes; no timing is asserted: figures belong to bench/)."""

from __future__ import annotations

import argparse

import pytest

from bench.alerts import run


async def test_alerts_bench_runs_on_either_backend(
    any_db_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    args = argparse.Namespace(users=40, alerts_per_user=5, tickers=20, polls=2, database=any_db_url)
    await run(args)
    out = capsys.readouterr().out
    assert out.count("20 quote requests for 20 distinct tickers") == 2
    assert "idle tick" in out and "sent " in out
