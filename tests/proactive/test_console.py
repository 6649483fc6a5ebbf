"""The console chat (`python -m bot chat` as a real process): a reminder set in it is printed
when due, on a line of its own between the conversation's replies, while the chat goes on."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from testkit.helpers import wait_until
from tests.test_console import env_for


async def test_a_due_reminder_is_printed_between_replies(tmp_path: Path) -> None:
    pipe = asyncio.subprocess.PIPE
    proc = await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "bot", "chat", "--user", "ada"),
        cwd=tmp_path,
        env=env_for(tmp_path),
        stdin=pipe,
        stdout=pipe,
        stderr=pipe,
    )
    assert proc.stdin is not None and proc.stdout is not None
    out: list[str] = []

    async def read() -> None:
        assert proc.stdout is not None
        while line := await proc.stdout.readline():
            out.append(line.decode())

    reader = asyncio.create_task(read())
    try:
        proc.stdin.write(b"/remind in 2s stand up\n")
        await proc.stdin.drain()
        await wait_until(lambda: any("Reminder set" in line for line in out), timeout=30)
        await wait_until(lambda: any("Reminder: " in line for line in out), timeout=30)
        proc.stdin.write(b"/reminders\n")
        await proc.stdin.drain()
        await wait_until(lambda: any("No reminders" in line for line in out), timeout=30)
    finally:
        proc.stdin.close()
        await asyncio.wait_for(proc.wait(), 30)
        await reader
    assert 'bot> ⏰ Reminder: "stand up"\n' in out
    assert proc.returncode == 0
