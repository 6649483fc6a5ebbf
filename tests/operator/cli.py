"""`python -m bot` as an operator runs it: a subprocess with an environment, in a folder of its
own (no `.env` from the checkout), and what it printed."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True, slots=True)
class Outcome:
    code: int
    stdout: str
    stderr: str

    @property
    def lines(self) -> list[str]:
        """stderr's lines (what the operator reads when something is wrong)."""
        return self.stderr.strip().splitlines()

    def one_line(self, code: int) -> str:
        """The one stderr line of a failure with exit status `code` (asserted, with no
        traceback)."""
        assert self.code == code, (self.code, self.stderr)
        assert "Traceback" not in self.stderr, self.stderr
        assert len(self.lines) == 1, self.stderr
        return self.lines[0]

    def shows(self, secret: str) -> bool:
        return secret in self.stdout or secret in self.stderr


def run_bot(
    cwd: Path, env: dict[str, str], *args: str, stdin: str = "", timeout: float = 30
) -> Outcome:
    """`python -m bot ARGS` with `env` over a clean environment (no tokens, no keys)."""
    base = {k: v for k, v in os.environ.items() if not k.endswith(("_TOKEN", "_API_KEY", "_URL"))}
    base.pop("LOG_LEVEL", None)  # the default (INFO): what an operator sees
    base.update(PYTHONPATH=str(ROOT), **env)
    proc = subprocess.run(
        [sys.executable, "-m", "bot", *args],
        cwd=cwd,
        env=base,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    return Outcome(proc.returncode, proc.stdout, proc.stderr)
