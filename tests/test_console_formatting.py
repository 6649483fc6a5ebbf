"""The console shows the model's Markdown as readable plain text (bullets, indented code, a
link's URL after it, no asterisks), streamed a whole paragraph at a time so nothing printed has
to be taken back; command replies are printed as they are. The real core, and the real OpenAI
client streaming from the LLM emulator."""

from __future__ import annotations

import asyncio
import io
from pathlib import Path

from adapters.console import BOT_PREFIX, ConsoleAdapter
from bot.app import open_app
from testkit.emulators.llm import LLMEmulator, Say
from tests.core.conftest import make_settings

ANSWER = (
    "**Tips** for *you*:\n\n- one `x`\n- two [docs](https://d.example)\n\n"
    "```py\nprint(1)\n```\n\n> quoted"
)
SHOWN = [
    "bot> Tips for you:",
    "",
    "     • one x",
    "     • two docs (https://d.example)",
    "",
    "         print(1)",
    "",
    "     │ quoted",
]


async def _chat(tmp_path: Path, llm: LLMEmulator, lines: str) -> str:
    settings = make_settings(
        f"sqlite:///{tmp_path / 'c.db'}",
        OPENROUTER_API_KEY="sk-or-test-key",
        LLM_BASE_URL=llm.base_url,
        LLM_MODEL="test/model",
    )
    out = io.StringIO()
    async with open_app(settings) as app:
        console = ConsoleAdapter(app.core, "ada", io.StringIO(lines), out, export_dir=tmp_path)
        await console.start()
        await asyncio.wait_for(console.wait(), 30)
    return out.getvalue()


async def test_a_markdown_answer_is_readable_plain_text(tmp_path: Path) -> None:
    async with LLMEmulator() as llm:
        llm.script(Say(ANSWER))
        shown = await _chat(tmp_path, llm, "some tips please\n")
    lines = [line.rstrip() for line in shown.splitlines()]
    start = lines.index(SHOWN[0])
    assert lines[start : start + len(SHOWN)] == SHOWN
    assert "*" not in shown and "`" not in shown
    assert shown.count("Tips for you") == 1  # streamed once, never printed again


async def test_a_command_reply_quoting_the_user_is_printed_as_it_is(tmp_path: Path) -> None:
    async with LLMEmulator() as llm:
        shown = await _chat(tmp_path, llm, "/**bold**_x_\n")
    assert f"{BOT_PREFIX}I don't know /**bold**_x_." in shown
