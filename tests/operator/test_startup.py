"""Starting as an operator does (docs/architecture.md, "Command line"): `python -m bot` with an
environment, against the Telegram, Discord and LLM emulators on 127.0.0.1 (an unused port for a
platform that is down). A wrong token, a platform that stays unreachable for STARTUP_TIMEOUT:
one line naming the setting, the exit status, no traceback, no secret. A running start says
which model answers; a slow model shows "thinking…" in the console."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from bot.settings import Settings
from testkit.emulators.discord_api import DiscordEmulator
from testkit.emulators.llm import Hang, LLMEmulator
from testkit.emulators.telegram_api import TelegramApiEmulator
from tests.operator.cli import ROOT, Outcome, run_bot

TG_TOKEN = "424242999:AAstartup-TELEGRAM-token-SECRET_0123456"
TG_OTHER = "424242999:AAstartup-another-token-SECRET_99999999"
DC_TOKEN = "OTAwMDAwMDAwMDAwMDAwMDAx.GSTART.startup-DISCORD-token-SECRET_012"
DC_OTHER = "OTAwMDAwMDAwMDAwMDAwMDAx.GSTART.startup-another-token-SECRET_999"
LLM_KEY = "sk-startup-LLM-key-SECRET-0123456789"
BUDGET = "2"  # STARTUP_TIMEOUT: seconds of retries before the one line
PROCESS_TIMEOUT = 30.0  # a cold start on a loaded machine; a run takes a few seconds


def unused_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def environment(tmp_path: Path, **extra: str) -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items() if not k.endswith(("_TOKEN", "_API_KEY", "_URL"))}
    return {
        **clean,
        "PYTHONPATH": str(ROOT),
        "DATABASE_URL": f"sqlite:///{tmp_path / 'bot.db'}",
        "QUOTES_BASE_URL": "http://127.0.0.1:9",  # nothing listens: no network
        # Only the failure's line (the offline model's and the retries' warnings are logged
        # below it); tests about the log ask for more.
        "LOG_LEVEL": "ERROR",
        **extra,
    }


async def spawn(tmp_path: Path, **env: str) -> asyncio.subprocess.Process:
    """`python -m bot` with only `env` as its configuration, its output captured."""
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        cwd=tmp_path,
        env=environment(tmp_path, **env),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )


async def run_async(tmp_path: Path, **env: str) -> Outcome:
    """`python -m bot` to its end, while this test's emulators keep answering."""
    proc = await spawn(tmp_path, **env)
    out, err = await asyncio.wait_for(proc.communicate(), PROCESS_TIMEOUT)
    assert proc.returncode is not None
    return Outcome(proc.returncode, out.decode(), err.decode())


def assert_clean(outcome: Outcome, *secrets: str) -> None:
    assert "Traceback" not in outcome.stderr, outcome.stderr
    assert "Unclosed" not in outcome.stderr, outcome.stderr
    for secret in secrets:
        assert not outcome.shows(secret), secret


# -- a malformed token: refused before any network call ------------------------------------------
@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("TELEGRAM_BOT_TOKEN", "garbage"),
        ("TELEGRAM_BOT_TOKEN", "bot123456:AAstartup-TELEGRAM-token-SECRET_0123456"),
        ("TELEGRAM_BOT_TOKEN", "123456:short"),
        ("DISCORD_BOT_TOKEN", "garbage"),
        ("DISCORD_BOT_TOKEN", f"Bot {DC_TOKEN}"),
    ],
)
def test_a_malformed_token_is_one_line_naming_it_and_exit_2(
    tmp_path: Path, name: str, value: str
) -> None:
    began = time.monotonic()
    outcome = run_bot(tmp_path, {name: value})
    line = outcome.one_line(2)
    assert line.startswith(f"Configuration error: {name} does not look like a bot token")
    assert_clean(outcome, value)
    assert time.monotonic() - began < 10  # no retries: it never reached the network


# -- Telegram -------------------------------------------------------------------------------------
async def test_a_token_telegram_rejects_is_one_line_naming_it(tmp_path: Path) -> None:
    async with TelegramApiEmulator(TG_OTHER) as tg:
        outcome = await run_async(
            tmp_path, TELEGRAM_BOT_TOKEN=TG_TOKEN, TELEGRAM_API_BASE=tg.base_url
        )
        assert [(c.method, c.status) for c in tg.calls] == [("getMe", 401)]
    line = outcome.one_line(2)
    assert line == (
        "Configuration error: TELEGRAM_BOT_TOKEN was rejected by the Telegram Bot API at "
        f"http://127.0.0.1:{tg.port} (Unauthorized)"
    )
    assert_clean(outcome, TG_TOKEN, TG_TOKEN.split(":")[1])


async def test_an_unreachable_bot_api_is_retried_for_startup_timeout_then_one_line(
    tmp_path: Path,
) -> None:
    port = unused_port()
    began = time.monotonic()
    outcome = await run_async(
        tmp_path,
        TELEGRAM_BOT_TOKEN=TG_TOKEN,
        TELEGRAM_API_BASE=f"http://127.0.0.1:{port}/bot",
        STARTUP_TIMEOUT=BUDGET,
    )
    took = time.monotonic() - began
    assert outcome.one_line(1) == (
        f"Cannot reach the Telegram Bot API at http://127.0.0.1:{port} (TELEGRAM_API_BASE) "
        "within 2s (STARTUP_TIMEOUT)"
    )
    assert_clean(outcome, TG_TOKEN)
    assert 2 <= took < 15


async def test_a_bot_api_that_never_answers_is_bounded_by_startup_timeout_too(
    tmp_path: Path,
) -> None:
    async with TelegramApiEmulator(TG_TOKEN) as tg:
        tg.hold("getMe")  # connects, never answers (the HTTP read timeout is 15 s)
        began = time.monotonic()
        outcome = await run_async(
            tmp_path,
            TELEGRAM_BOT_TOKEN=TG_TOKEN,
            TELEGRAM_API_BASE=tg.base_url,
            STARTUP_TIMEOUT=BUDGET,
        )
        took = time.monotonic() - began
        assert len(tg.holding) == 1
        tg.drop_held()
    assert outcome.one_line(1) == (
        f"Cannot reach the Telegram Bot API at http://127.0.0.1:{tg.port} (TELEGRAM_API_BASE) "
        "within 2s (STARTUP_TIMEOUT)"
    )
    assert_clean(outcome, TG_TOKEN)
    assert took < 12


async def test_the_retries_say_so_in_the_log(tmp_path: Path) -> None:
    port = unused_port()
    outcome = await run_async(
        tmp_path,
        TELEGRAM_BOT_TOKEN=TG_TOKEN,
        TELEGRAM_API_BASE=f"http://127.0.0.1:{port}",
        STARTUP_TIMEOUT="1",
        LOG_LEVEL="WARNING",
    )
    assert outcome.code == 1
    assert outcome.lines[-1].startswith("Cannot reach the Telegram Bot API")
    retries = [line for line in outcome.lines[:-1] if "unreachable" in line]
    assert retries and all("retrying in" in line for line in retries)
    assert_clean(outcome, TG_TOKEN, TG_TOKEN.split(":")[1])


async def started(
    tmp_path: Path, ready: Callable[[], bool], **env: str
) -> tuple[Outcome, asyncio.subprocess.Process]:
    """Start `python -m bot`, wait for `ready`, SIGTERM it: its output and the process."""
    proc = await spawn(tmp_path, **env)
    try:
        deadline = time.monotonic() + PROCESS_TIMEOUT
        while not ready():
            assert proc.returncode is None, "the bot exited before it was ready"
            assert time.monotonic() < deadline, "the bot did not get ready"
            await asyncio.sleep(0.02)
        proc.send_signal(signal.SIGTERM)
        out, err = await asyncio.wait_for(proc.communicate(), PROCESS_TIMEOUT)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode is not None
    return Outcome(proc.returncode, out.decode(), err.decode()), proc


async def test_api_base_without_bot_works_and_the_start_says_which_model(tmp_path: Path) -> None:
    """TELEGRAM_API_BASE as a local Bot API server's address (no /bot): the token goes after
    /bot, not onto the port. With an LLM key the start logs the model and its endpoint."""
    async with TelegramApiEmulator(TG_TOKEN) as tg, LLMEmulator() as llm:
        outcome, _ = await started(
            tmp_path,
            lambda: bool(tg.calls_to("getUpdates")),
            TELEGRAM_BOT_TOKEN=TG_TOKEN,
            TELEGRAM_API_BASE=tg.base_url.removesuffix("/bot"),
            OPENAI_API_KEY=LLM_KEY,
            LLM_BASE_URL=llm.base_url,
            LLM_MODEL="test/model-a",
            LOG_LEVEL="INFO",
        )
    assert outcome.code == 0, outcome.stderr
    assert tg.calls[0].method == "getMe" and tg.calls[0].status == 200
    assert f"model: LLM test/model-a at {llm.base_url}" in outcome.stderr
    assert_clean(outcome, LLM_KEY, TG_TOKEN)


# -- Discord --------------------------------------------------------------------------------------
async def test_a_token_discord_rejects_is_one_line_naming_it(tmp_path: Path) -> None:
    async with DiscordEmulator() as dc:
        dc.expected_auth = f"Bot {DC_OTHER}"
        outcome = await run_async(
            tmp_path,
            DISCORD_BOT_TOKEN=DC_TOKEN,
            DISCORD_API_BASE=dc.api_base,
            DISCORD_GATEWAY_URL=dc.gateway_url,
        )
        assert [c.status for c in dc.calls] == [401]
    line = outcome.one_line(2)
    assert line == (
        "Configuration error: DISCORD_BOT_TOKEN was rejected by Discord (401 Unauthorized)"
    )
    assert_clean(outcome, DC_TOKEN)


async def test_an_unreachable_discord_api_is_one_line_after_startup_timeout(
    tmp_path: Path,
) -> None:
    port = unused_port()
    outcome = await run_async(
        tmp_path,
        DISCORD_BOT_TOKEN=DC_TOKEN,
        DISCORD_API_BASE=f"http://127.0.0.1:{port}/api/v10",
        DISCORD_GATEWAY_URL=f"ws://127.0.0.1:{port}/gateway",
        STARTUP_TIMEOUT=BUDGET,
    )
    assert outcome.one_line(1) == (
        f"Cannot reach the Discord API at http://127.0.0.1:{port} (DISCORD_API_BASE) "
        "within 2s (STARTUP_TIMEOUT)"
    )
    assert_clean(outcome, DC_TOKEN)


async def test_an_unreachable_discord_gateway_is_one_line_after_startup_timeout(
    tmp_path: Path,
) -> None:
    port = unused_port()
    async with DiscordEmulator() as dc:
        dc.expected_auth = f"Bot {DC_TOKEN}"
        outcome = await run_async(
            tmp_path,
            DISCORD_BOT_TOKEN=DC_TOKEN,
            DISCORD_API_BASE=dc.api_base,
            DISCORD_GATEWAY_URL=f"ws://127.0.0.1:{port}/gateway",
            STARTUP_TIMEOUT=BUDGET,
            LOG_LEVEL="WARNING",
        )
    assert outcome.code == 1, outcome.stderr
    assert outcome.lines[-1] == (
        f"Cannot reach the Discord gateway at ws://127.0.0.1:{port} (DISCORD_GATEWAY_URL) "
        "within 2s (STARTUP_TIMEOUT)"
    )
    # discord.py's reconnect attempts are logged as warnings of one line each.
    assert all("WARNING" in line or "unreachable" in line for line in outcome.lines[:-1])
    assert_clean(outcome, DC_TOKEN)


# -- the console with a slow model ---------------------------------------------------------------
async def test_the_console_names_the_model_and_shows_thinking_while_it_hangs(
    tmp_path: Path,
) -> None:
    async with LLMEmulator() as llm:
        llm.script(Hang())
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bot",
            "chat",
            "--user",
            "ada",
            cwd=tmp_path,
            env=environment(
                tmp_path,
                OPENAI_API_KEY=LLM_KEY,
                LLM_BASE_URL=llm.base_url,
                LLM_MODEL="test/slow-model",
                LLM_TIMEOUT="3",
                LLM_MAX_RETRIES="0",
            ),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        assert proc.stdin is not None and proc.stdout is not None
        try:
            notice = (await asyncio.wait_for(proc.stdout.readline(), PROCESS_TIMEOUT)).decode()
            assert notice == f"(model: LLM test/slow-model at {llm.base_url})\n"
            await asyncio.wait_for(proc.stdout.readline(), PROCESS_TIMEOUT)  # "Chatting as…"
            proc.stdin.write(b"hello there\n")
            await proc.stdin.drain()
            asked = time.monotonic()
            thinking = "bot> thinking…".encode()
            shown = await asyncio.wait_for(proc.stdout.readexactly(len(thinking)), 5)
            waited = time.monotonic() - asked
            assert shown == thinking
            assert waited < 2.0  # the core says so after 0.5 s; the model is still silent
            assert len(llm.requests) == 1
            proc.stdin.close()
            out, err = await asyncio.wait_for(proc.communicate(), PROCESS_TIMEOUT)
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
    assert proc.returncode == 0, err.decode()
    rest = out.decode()
    # Not a terminal: the indicator stays on a line of its own, the answer follows.
    assert rest.startswith("\nbot> "), rest
    assert rest.rstrip().endswith("Bye!")
    assert LLM_KEY not in rest and LLM_KEY not in err.decode()


async def test_in_a_terminal_the_indicator_is_rubbed_out_by_the_answer(tmp_path: Path) -> None:
    """stdout a real terminal (a pseudo-terminal): "thinking…", then the line is cleared and
    the answer takes its place."""
    master, terminal = os.openpty()
    output = bytearray()
    ended = asyncio.Event()  # the terminal's other end closed: everything was read
    loop = asyncio.get_running_loop()

    def read() -> None:
        try:
            data = os.read(master, 4096)
        except OSError:  # EIO: no process holds the terminal any more
            data = b""
        if data:
            output.extend(data)
        else:
            loop.remove_reader(master)
            ended.set()

    loop.add_reader(master, read)
    try:
        async with LLMEmulator() as llm:
            llm.script(Hang())
            proc = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "bot",
                "chat",
                cwd=tmp_path,
                env=environment(
                    tmp_path,
                    OPENAI_API_KEY=LLM_KEY,
                    LLM_BASE_URL=llm.base_url,
                    LLM_TIMEOUT="2",
                    LLM_MAX_RETRIES="0",
                ),
                stdin=asyncio.subprocess.PIPE,
                stdout=terminal,
                stderr=asyncio.subprocess.DEVNULL,
            )
            os.close(terminal)
            assert proc.stdin is not None
            proc.stdin.write(b"hello there\n")
            proc.stdin.close()
            code = await asyncio.wait_for(proc.wait(), PROCESS_TIMEOUT)
            await asyncio.wait_for(ended.wait(), 5)
    finally:
        loop.remove_reader(master)
        os.close(master)
    assert code == 0
    shown = output.decode()
    thinking = shown.index("bot> thinking…")
    assert shown[thinking:].startswith("bot> thinking…\r\x1b[Kbot> "), shown


# -- the settings themselves ----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("given", "used"),
    [
        ("http://127.0.0.1:8081", "http://127.0.0.1:8081/bot"),
        ("http://127.0.0.1:8081/", "http://127.0.0.1:8081/bot"),
        ("http://127.0.0.1:8081/bot", "http://127.0.0.1:8081/bot"),
        ("https://api.telegram.org/bot/", "https://api.telegram.org/bot"),
    ],
)
def test_the_bot_api_base_ends_in_bot(given: str, used: str) -> None:
    env = {"TELEGRAM_BOT_TOKEN": TG_TOKEN, "TELEGRAM_API_BASE": given}
    assert Settings.from_env(env, dotenv_path=None).telegram_api_base == used


def test_startup_timeout_defaults_to_30_seconds_and_a_bad_one_is_one_line(tmp_path: Path) -> None:
    assert Settings.from_env({}, dotenv_path=None).startup_timeout == 30.0
    assert Settings.from_env({"STARTUP_TIMEOUT": "5"}, dotenv_path=None).startup_timeout == 5.0
    line = run_bot(tmp_path, {"STARTUP_TIMEOUT": "0"}).one_line(2)
    assert line == "Configuration error: STARTUP_TIMEOUT must be between 1 and 3600, got 0"
