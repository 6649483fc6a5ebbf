"""The configuration contract (docs/architecture.md, "Configuration"): defaults, .env, and
errors that name the variable."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from bot.settings import DEFAULT_DATABASE_URL, Settings, SettingsError

ROOT = Path(__file__).resolve().parents[1]
TG_TOKEN = "123456789:AAsettings-token-shaped-like-a-real-one"


def test_defaults_with_an_empty_environment() -> None:
    s = Settings.from_env({}, dotenv_path=None)
    assert s.telegram_bot_token is None and s.discord_bot_token is None
    assert s.llm_api_key is None
    assert s.database_url == DEFAULT_DATABASE_URL
    assert s.admin_ids == frozenset()
    assert s.app_name == "Multi-Agent System"
    assert s.log_level == "INFO"
    assert s.telegram_mode == "polling"


def test_values_are_read_and_normalised() -> None:
    s = Settings.from_env(
        {
            "OPENAI_API_KEY": "sk-x",
            "LLM_BASE_URL": "http://127.0.0.1:11434/v1/",
            "ADMIN_IDS": "telegram:42, discord:7",
            "LOG_LEVEL": "debug",
            "DATABASE_URL": "postgresql://postgres@127.0.0.1/test",
        },
        dotenv_path=None,
    )
    assert s.llm_api_key == "sk-x"
    assert s.llm_base_url == "http://127.0.0.1:11434/v1"
    assert s.admin_ids == {"telegram:42", "discord:7"}
    assert "telegram:42" in s.admin_ids and "discord:42" not in s.admin_ids
    assert s.log_level == "DEBUG"


def test_memory_settings() -> None:
    assert Settings.from_env({}, dotenv_path=None).memory_extraction == "auto"
    assert Settings.from_env({}, dotenv_path=None).memory_prompt_chars == 1500
    env = {"MEMORY_EXTRACTION": "Tools", "MEMORY_PROMPT_CHARS": "900"}
    s = Settings.from_env(env, dotenv_path=None)
    assert (s.memory_extraction, s.memory_prompt_chars) == ("tools", 900)


def test_alert_poll_seconds() -> None:
    assert Settings.from_env({}, dotenv_path=None).alert_poll_seconds == 60
    assert Settings.from_env({"ALERT_POLL_SECONDS": "1"}, dotenv_path=None).alert_poll_seconds == 1


def test_memory_limit() -> None:
    assert Settings.from_env({}, dotenv_path=None).memory_limit == 200
    assert Settings.from_env({"MEMORY_LIMIT": "50"}, dotenv_path=None).memory_limit == 50


def test_dotenv_is_read_and_the_environment_wins(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("APP_NAME=from-dotenv\nLOG_LEVEL=WARNING\n")
    s = Settings.from_env({"LOG_LEVEL": "ERROR"}, dotenv_path=env_file)
    assert s.app_name == "from-dotenv"
    assert s.log_level == "ERROR"


def test_secrets_are_listed_and_never_in_repr() -> None:
    s = Settings.from_env(
        {"TELEGRAM_BOT_TOKEN": TG_TOKEN, "OPENROUTER_API_KEY": "sk-or"}, dotenv_path=None
    )
    assert set(s.secrets) == {TG_TOKEN, "sk-or"}
    assert TG_TOKEN not in repr(s) and "sk-or" not in repr(s)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("TELEGRAM_MODE", "carrier-pigeon"),
        ("DATABASE_URL", "mysql://x"),
        ("LOG_LEVEL", "LOUD"),
        ("PORT", "eighty"),
        ("PORT", "70000"),
        ("ADMIN_IDS", "42"),
        ("ADMIN_IDS", "irc:42"),
        ("LLM_BASE_URL", "openrouter.ai"),
        ("TELEGRAM_API_BASE", "ftp://x"),
        ("DISCORD_GATEWAY_URL", "http://x"),
        ("HISTORY_WINDOW", "0"),
        ("MEMORY_EXTRACTION", "sometimes"),
        ("MEMORY_PROMPT_CHARS", "lots"),
        ("MEMORY_PROMPT_CHARS", "50"),
        ("MEMORY_LIMIT", "many"),
        ("MEMORY_LIMIT", "0"),
        ("MEMORY_LIMIT", "100000"),
        ("COMPACT_AFTER", "often"),
        ("COMPACT_AFTER", "100"),
        ("ALERT_POLL_SECONDS", "0"),
        ("ALERT_POLL_SECONDS", "every minute"),
        ("OUTBOX_LEASE_SECONDS", "0"),
    ],
)
def test_a_bad_value_names_its_variable(name: str, value: str) -> None:
    with pytest.raises(SettingsError, match=name):
        Settings.from_env({name: value}, dotenv_path=None)


@pytest.mark.parametrize(
    "env",
    [
        {"DISCORD_SHARD_IDS": "0,1"},
        {"DISCORD_SHARD_IDS": "0,2", "DISCORD_SHARD_COUNT": "2"},
        {"DISCORD_SHARD_IDS": "x", "DISCORD_SHARD_COUNT": "2"},
    ],
)
def test_shard_ids_need_a_matching_count(env: dict[str, str]) -> None:
    with pytest.raises(SettingsError, match="DISCORD_SHARD_IDS"):
        Settings.from_env(env, dotenv_path=None)


def test_webhook_mode_needs_a_webhook_url() -> None:
    with pytest.raises(SettingsError, match="WEBHOOK_URL"):
        Settings.from_env(
            {"TELEGRAM_BOT_TOKEN": TG_TOKEN, "TELEGRAM_MODE": "webhook"}, dotenv_path=None
        )


def run_cli(tmp_path: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.endswith(("_TOKEN", "_API_KEY"))}
    clean.update(PYTHONPATH=str(ROOT), **env)
    return subprocess.run(
        [sys.executable, "-m", "bot", *args],
        cwd=tmp_path,
        env=clean,
        input="",
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize("args", [(), ("chat",), ("admin", "stats")])
def test_cli_settings_error_is_one_line_naming_the_variable(tmp_path: Path, args) -> None:
    proc = run_cli(tmp_path, {"LOG_LEVEL": "LOUD"}, *args)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "LOG_LEVEL" in lines[0]


def test_cli_reads_dotenv_in_the_working_directory(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("ADMIN_IDS=bogus\n")
    proc = run_cli(tmp_path, {}, "admin", "stats")
    assert proc.returncode == 2 and "ADMIN_IDS" in proc.stderr


@pytest.mark.parametrize("args", [("chat",), ("admin", "stats")])
def test_cli_unreachable_database_is_one_line_without_the_password(tmp_path: Path, args) -> None:
    url = "postgresql://postgres:s3cret-pw@127.0.0.1:1/nothing"  # nothing listens on port 1
    proc = run_cli(tmp_path, {"DATABASE_URL": url}, *args)
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr and "s3cret-pw" not in proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("Cannot open the database (DATABASE_URL)")


def test_compaction_defaults_follow_the_history_window() -> None:
    default = Settings.from_env({}, dotenv_path=None)
    assert (default.history_window, default.compact_after) == (100, 40)
    small = Settings.from_env({"HISTORY_WINDOW": "20"}, dotenv_path=None)
    assert small.compact_after == 10  # half the window: summarised before the cap cuts it
    off = Settings.from_env({"COMPACT_AFTER": "0"}, dotenv_path=None)
    assert off.compact_after == 0
