"""The real console chat (`python -m bot chat` as a subprocess) and the admin CLI."""

from __future__ import annotations

import asyncio
import io
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from adapters.console import ConsoleAdapter
from bot.app import open_app
from testkit.emulators.quotes import QuotesEmulator
from tests.core.conftest import make_settings

ROOT = Path(__file__).resolve().parents[1]
NO_NETWORK = "http://127.0.0.1:9"


def env_for(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.endswith(("_TOKEN", "_API_KEY")) and k not in ("DATABASE_URL", "ADMIN_IDS")
    }
    env.update(
        PYTHONPATH=str(ROOT),
        DATABASE_URL=f"sqlite:///{tmp_path / 'chat.db'}",
        QUOTES_BASE_URL=NO_NETWORK,
        LLM_BASE_URL=NO_NETWORK,
        **extra,
    )
    return env


def bot(tmp_path: Path, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bot", *args],
        cwd=tmp_path,
        env=env_for(tmp_path),
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_console_chat_remembers_across_a_restart(tmp_path: Path) -> None:
    first = bot(
        tmp_path,
        "chat",
        "--user",
        "ada",
        stdin="My name is Ada\nTell me a joke about Python\n/watchlist add AAPL\n",
    )
    assert first.returncode == 0, first.stderr
    out = first.stdout
    assert out.count("offline model") == 1  # announced once
    assert "Nice to meet you, Ada" in out
    assert "python" in out.lower() and "Added AAPL" in out
    assert out.rstrip().endswith("Bye!")
    assert "Traceback" not in first.stderr
    # A restart: a new process on the same database file.
    second = bot(tmp_path, "chat", "--user", "ada", stdin="/start\n/prefs\n")
    assert second.returncode == 0, second.stderr
    assert "Welcome back, Ada!" in second.stdout
    assert "Joke topics: python" in second.stdout
    assert "Watchlist: AAPL" in second.stdout
    # Another console user is somebody else.
    other = bot(tmp_path, "chat", "--user", "bob", stdin="/prefs\n")
    assert "Name: —" in other.stdout


def test_plain_python_m_bot_without_tokens_is_the_console(tmp_path: Path) -> None:
    proc = bot(tmp_path, stdin="Tell me a joke\n")
    assert proc.returncode == 0, proc.stderr
    assert "Chatting as" in proc.stdout and "bot> " in proc.stdout


def test_admin_cli_uses_the_same_commands(tmp_path: Path) -> None:
    bot(tmp_path, "chat", "--user", "ada", stdin="My name is Ada\nTell me a joke about cats\n")
    stats = bot(tmp_path, "admin", "stats")
    assert stats.returncode == 0 and "Users: 1" in stats.stdout and "funny_nerd" in stats.stdout
    history = bot(tmp_path, "admin", "history", "console:ada", "10")
    assert history.returncode == 0 and "user: My name is Ada" in history.stdout
    sessions = bot(tmp_path, "admin", "sessions")
    assert "console:console" in sessions.stdout and "2 turns" in sessions.stdout
    profile = bot(tmp_path, "admin", "user", "console:ada")
    assert "name: Ada" in profile.stdout
    out = tmp_path / "ada.json"
    assert bot(tmp_path, "admin", "export", "console:ada", "--out", str(out)).returncode == 0
    assert "Ada" in json.dumps(json.loads(out.read_text()))
    assert out.stat().st_mode & 0o077 == 0  # personal data: owner only
    bad = bot(tmp_path, "admin", "history", "console:ada", "many")
    assert bad.returncode == 2 and "usage: python -m bot admin history" in bad.stderr
    refused = bot(tmp_path, "admin", "forget", "console:ada")
    assert refused.returncode == 1 and "--yes" in refused.stderr
    assert bot(tmp_path, "admin", "forget", "console:ada", "--yes").returncode == 0
    gone = bot(tmp_path, "admin", "user", "console:ada")
    assert gone.returncode == 2 and "No such user" in gone.stderr


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
async def test_a_signal_stops_the_console_cleanly(tmp_path: Path, sig: signal.Signals) -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        "chat",
        "--user",
        "ada",
        cwd=tmp_path,
        env=env_for(tmp_path),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert proc.stdin is not None and proc.stdout is not None
    try:

        async def read_until(marker: str) -> str:
            seen = ""
            while marker not in seen:
                line = await proc.stdout.readline()
                assert line, f"output ended before {marker!r}: {seen!r}"
                seen += line.decode()
            return seen

        await asyncio.wait_for(read_until("Chatting as ada"), 30)
        proc.stdin.write(b"Tell me a joke about Go\n")
        await proc.stdin.drain()
        await asyncio.wait_for(read_until("bot> "), 30)
        proc.send_signal(sig)  # stdin still open: only the signal can end it
        rest = await asyncio.wait_for(proc.stdout.read(), 30)
        assert await asyncio.wait_for(proc.wait(), 30) == 0
        assert "Bye!" in rest.decode()
        assert b"Traceback" not in await proc.stderr.read()  # type: ignore[union-attr]
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


async def test_console_adapter_in_process_saves_exports(tmp_path: Path) -> None:
    settings = make_settings(f"sqlite:///{tmp_path / 'c.db'}")
    out = io.StringIO()
    stdin = io.StringIO("My name is Ada\n/export\n")
    async with open_app(settings) as app:
        console = ConsoleAdapter(app.core, "ada", stdin, out, notice="offline", export_dir=tmp_path)
        await console.start()
        await asyncio.wait_for(console.wait(), 30)
        await console.stop()  # idempotent after the end of input
    text = out.getvalue()
    assert text.startswith("(offline)\n")
    [saved] = exported_files(tmp_path)
    assert f"(saved to {saved})" in text
    assert "Ada" in saved.read_text()


async def test_console_saves_a_chart_and_prints_its_path(tmp_path: Path) -> None:
    async with QuotesEmulator() as quotes:
        settings = make_settings(f"sqlite:///{tmp_path / 'c.db'}", QUOTES_BASE_URL=quotes.base_url)
        out = io.StringIO()
        async with open_app(settings) as app:
            console = ConsoleAdapter(
                app.core, "ada", io.StringIO("/chart AAPL 5d\n"), out, export_dir=tmp_path
            )
            await console.start()
            await asyncio.wait_for(console.wait(), 30)
    saved = tmp_path / "AAPL-5d.png"
    assert f"(saved to {saved})" in out.getvalue()
    assert "AAPL 5d: 187.42 USD" in out.getvalue()
    assert saved.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")


def exported_files(folder: Path) -> list[Path]:
    return list(folder.glob("switchboard-export-*.json"))


async def test_console_answers_what_an_earlier_run_left_unanswered(tmp_path: Path) -> None:
    from bot.messages import Incoming

    settings = make_settings(f"sqlite:///{tmp_path / 'c.db'}")
    async with open_app(settings) as app:
        # An earlier run recorded these and stopped before answering.
        for user, text in (("ada", "Tell me a joke about Lisp"), ("bob", "Tell me a fact")):
            left = Incoming("console", user, "console", f"old-{user}", text, display_name=user)
            await app.core.accept(left)
        out = io.StringIO()
        console = ConsoleAdapter(app.core, "ada", io.StringIO(""), out)
        await console.start()
        await asyncio.wait_for(console.wait(), 30)
        assert "(answering from last time: Tell me a joke about Lisp)" in out.getvalue()
        assert "Tell me a fact" not in out.getvalue()  # bob's is bob's, for his next run
        assert [m.platform_user_id for m in await app.core.pending("console")] == ["bob"]


async def test_console_lists_a_replys_buttons_as_commands(tmp_path: Path) -> None:
    settings = make_settings(f"sqlite:///{tmp_path / 'c.db'}")
    out = io.StringIO()
    stdin = io.StringIO("/watchlist add AAPL\n/watchlist\n/watchlist remove AAPL\n")
    async with open_app(settings) as app:
        console = ConsoleAdapter(app.core, "ada", stdin, out, export_dir=tmp_path)
        await console.start()
        await asyncio.wait_for(console.wait(), 30)
    lines = out.getvalue().splitlines()
    shown = lines.index("bot> Your watchlist: AAPL")
    assert lines[shown + 1] == "     • Remove AAPL: /watchlist remove AAPL"
    assert "Removed AAPL" in "\n".join(lines[shown + 2 :])
