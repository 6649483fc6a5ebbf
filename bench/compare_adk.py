"""Switchboard's SQLite store vs Google ADK's SqliteSessionService on the same chat-turn workload
(ADK as pinned in bench/requirements-adk.txt; the report names the version it measured).

    python bench/compare_adk.py [--adk-python PATH] [--quick]

A turn: load the session (ours: state + last 20 events; ADK: as its Runner does by default —
every event — and, for a fair second column, with num_recent_events=20), append the user event,
append the reply with a state delta. Sessions of 10, 1k and 10k events; then 100 concurrent
users. ADK runs in its own virtualenv (created at .bench/adk-venv from
bench/requirements-adk.txt unless --adk-python names an interpreter that has google-adk), as a
subprocess (bench/adk_worker.py); ratios compare figures measured in the same run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.store import chat_turn, fill
from storage import open_store

ROOT = Path(__file__).resolve().parent.parent
APP = "bench"


def adk_python(given: str | None) -> str:
    if given:
        return given
    venv = ROOT / ".bench" / "adk-venv"
    py = venv / "bin" / "python"
    if not py.exists():
        print(f"creating {venv} with google-adk (once)...", file=sys.stderr)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run(
            [
                str(py),
                "-m",
                "pip",
                "install",
                "-q",
                "--disable-pip-version-check",
                "-r",
                str(ROOT / "bench" / "requirements-adk.txt"),
            ],
            check=True,
        )
    return str(py)


async def ours(
    db_dir: Path, sizes: list[int], turns: int, runs: int, users: int, user_turns: int
) -> dict:
    per_turn: dict[str, float] = {}
    async with await open_store(f"sqlite:///{db_dir / 'ours.db'}") as store:
        for size in sizes:
            session = await store.create_session(APP, f"u{size}", f"s{size}")
            await fill(store, session, size)
            samples = []
            for _ in range(runs):
                start = time.perf_counter()
                for i in range(turns):
                    await chat_turn(store, APP, f"u{size}", f"s{size}", i)
                samples.append((time.perf_counter() - start) / turns)
            per_turn[str(size)] = statistics.median(samples)
    async with await open_store(f"sqlite:///{db_dir / 'ours_conc.db'}") as store:
        for u in range(users):
            await store.create_session(APP, f"c{u}", f"c{u}")

        async def loop(u: int) -> None:
            for i in range(user_turns):
                await chat_turn(store, APP, f"c{u}", f"c{u}", i)

        start = time.perf_counter()
        await asyncio.gather(*(loop(u) for u in range(users)))
        conc = users * user_turns / (time.perf_counter() - start)
    return {"per_turn_s": per_turn, "concurrent_turns_per_s": conc}


def adk_version(py: str) -> str:
    """The google-adk version installed for `py`: a comparison names what it measured."""
    code = "import importlib.metadata as m; print(m.version('google-adk'))"
    done = subprocess.run([py, "-c", code], capture_output=True, text=True, check=True)
    return done.stdout.strip()


def adk(py: str, db_dir: Path, args: argparse.Namespace, recent: int | None) -> dict:
    sub = db_dir / f"adk-{recent}"
    sub.mkdir()
    cmd = [
        py,
        str(ROOT / "bench" / "adk_worker.py"),
        "--dir",
        str(sub),
        "--sizes",
        args.sizes,
        "--turns",
        str(args.adk_turns),
        "--runs",
        str(args.runs),
        "--users",
        str(args.users),
        "--user-turns",
        str(args.user_turns),
    ]
    if recent is not None:
        cmd += ["--recent", str(recent)]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:  # show why, instead of a bare CalledProcessError
        sys.stderr.write(done.stderr)
        raise SystemExit(f"the ADK worker failed (exit {done.returncode})")
    return json.loads(done.stdout)


def report(sizes: list[str], o: dict, a_all: dict, a_20: dict, version: str) -> None:
    print(
        f"Google ADK {version}: 'ADK' loads every event (its Runner's default), 'ADK(20)' only"
        " the last 20 (GetSessionConfig(num_recent_events=20), its opt-in)"
    )
    print(
        f"{'events':>8} {'ours ms':>9} {'ADK ms':>9} {'ratio':>8} {'ADK(20) ms':>11} {'ratio':>7}"
    )
    for s in sizes:
        us, them, them20 = o["per_turn_s"][s], a_all["per_turn_s"][s], a_20["per_turn_s"][s]
        print(
            f"{s:>8} {us * 1e3:9.3f} {them * 1e3:9.3f} {them / us:7.1f}x"
            f" {them20 * 1e3:11.3f} {them20 / us:6.1f}x"
        )
    oc, ac, ac20 = (x["concurrent_turns_per_s"] for x in (o, a_all, a_20))
    print(
        f"100 concurrent users: ours {oc:,.0f} turns/s, ADK {ac:,.0f} turns/s "
        f"({oc / ac:.1f}x), ADK(20) {ac20:,.0f} turns/s ({oc / ac20:.1f}x)"
    )
    for label, a in (("ADK", a_all), ("ADK(20)", a_20)):
        if a.get("concurrent_failed_turns"):
            print(
                f"  {label}: {a['concurrent_failed_turns']} turns failed with 'database is locked'"
                " (not counted in its turns/s)"
            )
    base = o["per_turn_s"][sizes[0]]
    print("ours flat: " + ", ".join(f"{s}: {o['per_turn_s'][s] / base:.2f}x" for s in sizes))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--adk-python", help="an interpreter with google-adk installed")
    ap.add_argument("--sizes", default="10,1000,10000")
    ap.add_argument("--turns", type=int, default=200, help="turns per run (ours)")
    ap.add_argument("--adk-turns", type=int, default=20, help="turns per run (ADK)")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--users", type=int, default=100)
    ap.add_argument("--user-turns", type=int, default=10)
    ap.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
    args = ap.parse_args()
    if args.quick:
        args.sizes, args.turns, args.adk_turns, args.runs, args.user_turns = "10,1000", 20, 3, 1, 2
    py = adk_python(args.adk_python)
    sizes = args.sizes.split(",")
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        o = asyncio.run(
            ours(d, [int(s) for s in sizes], args.turns, args.runs, args.users, args.user_turns)
        )
        a_all = adk(py, d, args, None)
        a_20 = adk(py, d, args, 20)
    report(sizes, o, a_all, a_20, adk_version(py))


if __name__ == "__main__":
    main()
