"""`python -m bot` (and `switchboard`): the bot, the console chat, and the admin commands from a
shell (docs/architecture.md, "Command line").

python -m bot                       every adapter whose token is set; else the console chat
python -m bot chat [--user NAME]    the console chat
python -m bot admin history USER [LIMIT] [BEFORE] | sessions [PAGE] | stats | user USER
                  | export USER [--out FILE [--force]] | forget USER --yes
                  | migrate-sqlite-to-postgres SRC DST
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

from bot.settings import Settings, SettingsError

PROG = "python -m bot"
MIGRATE = "migrate-sqlite-to-postgres"
# The chat command's arguments, in its order, from the shell's (bot/admin_commands.py).
COMMAND_ARGS = {
    "history": ("user", "limit", "before"),
    "sessions": ("page",),
    "user": ("user",),
    "forget": ("user",),
}


class _Parser(argparse.ArgumentParser):
    """Argument errors in one line, like every other refusal of the command line (exit 2)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: {message} (usage: {_usage(self)})\n")


def _usage(parser: argparse.ArgumentParser) -> str:
    return parser.format_usage().strip().removeprefix("usage: ")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog=PROG,
        description="Switchboard: a multi-agent chat bot with memory. With no command: run "
        "every adapter whose token is set (Telegram, Discord), else the console chat. "
        "Configuration comes from the environment and .env.",
    )
    sub = parser.add_subparsers(dest="command")
    chat = sub.add_parser("chat", help="chat in the terminal")
    chat.add_argument("--user", help="who you are in the chat (default: your login name)")
    admin = sub.add_parser("admin", help="admin commands")
    cmds = admin.add_subparsers(dest="admin_command", required=True)
    history = cmds.add_parser("history", help="a user's events, newest last")
    history.add_argument("user", metavar="USER", help="user id or platform:id")
    history.add_argument("limit", nargs="?", metavar="LIMIT", help="how many (default 20)")
    history.add_argument("before", nargs="?", metavar="BEFORE", help="older than this event id")
    sessions = cmds.add_parser("sessions", help="sessions by last activity")
    sessions.add_argument("page", nargs="?", metavar="PAGE", help="page number, from 1")
    stats = cmds.add_parser("stats", help="totals")
    user = cmds.add_parser("user", help="a user's profile and preferences")
    user.add_argument("user", help="user id or platform:id")
    export = cmds.add_parser("export", help="a user's data as JSON")
    export.add_argument("user", help="user id or platform:id")
    export.add_argument("--out", metavar="FILE", help="write to this file (default: stdout)")
    export.add_argument("--force", action="store_true", help="replace FILE if it exists")
    forget = cmds.add_parser("forget", help="erase a user's data")
    forget.add_argument("user", help="user id or platform:id")
    forget.add_argument("--yes", action="store_true", help="really erase")
    migrate = cmds.add_parser(MIGRATE, help="copy a SQLite database into PostgreSQL")
    migrate.add_argument("src", help="sqlite:///path")
    migrate.add_argument("dst", help="postgresql://...")
    for command in (history, sessions, stats, user, forget):  # said again after a UsageError
        command.set_defaults(usage=_usage(command))
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = Settings.from_env()
    except SettingsError as exc:
        print(f"Configuration error: {exc}", file=sys.stderr)
        return 2
    from bot.app import StartupError

    try:
        if args.command == "admin":
            return asyncio.run(admin_main(settings, args))
        from bot.app import run

        return asyncio.run(run(settings, console=args.command == "chat" or None, user=_user(args)))
    except KeyboardInterrupt:  # Ctrl-C before the signal handlers were installed
        return 130
    except StartupError as exc:  # e.g. the database is down: one clear line, no traceback
        print(exc, file=sys.stderr)
        return 1
    except SettingsError as exc:  # e.g. a platform rejected its token
        print(f"Configuration error: {exc}", file=sys.stderr)
        return 2


def _user(args: argparse.Namespace) -> str | None:
    return getattr(args, "user", None)


async def admin_main(settings: Settings, args: argparse.Namespace) -> int:
    """The admin commands, through the same code as the chat commands."""
    from bot.admin_commands import AdminCommands, UsageError
    from bot.app import open_database, terminal_log_level
    from bot.commands import ParsedCommand
    from bot.logging_setup import setup_logging
    from bot.private_files import DestinationError, DestinationExists, destination

    setup_logging(terminal_log_level(settings), settings.secrets, fmt=settings.log_format)
    name = args.admin_command
    if name == MIGRATE:
        return await migrate(args.src, args.dst)
    if name == "forget" and not args.yes:
        print(f"This erases every row about {args.user}. Run again with --yes.", file=sys.stderr)
        return 1
    out = None
    if name == "export" and args.out is not None:
        try:  # before the database opens: a wrong path costs nothing and is not audited
            out = destination(args.out, replace=args.force)
        except DestinationError as exc:
            hint = " (--force replaces it)" if isinstance(exc, DestinationExists) else ""
            print(f"Cannot write {args.out}: {exc}{hint}", file=sys.stderr)
            return 2
    actor = f"shell:{_login()}"
    async with await open_database(settings.database_url, settings.memory_limit) as store:
        admin = AdminCommands(store, settings.app_name, invoke=f"{PROG} admin ")
        try:
            if name == "export":
                data = await admin.export(actor, args.user)
                return _write_export(data, out, replace=args.force)
            cmd_args = tuple(
                value for key in COMMAND_ARGS.get(name, ()) if (value := getattr(args, key))
            )
            print(await admin.execute(actor, ParsedCommand(name, cmd_args), None))
            return 0
        except UsageError as exc:
            message = str(exc)
            if message.startswith("Usage: /"):  # the chat's syntax: say the shell's instead
                message = f"{PROG} admin {name}: wrong arguments (usage: {args.usage})"
            print(message, file=sys.stderr)
            return 2


def _write_export(data: dict, out: Path | None, *, replace: bool) -> int:
    from bot.private_files import write_private

    text = json.dumps(data, ensure_ascii=False, indent=2, default=str)
    if out is None:
        print(text)
        return 0
    try:
        # Personal data: owner only, from the start.
        write_private(out, (text + "\n").encode(), replace=replace)
    except OSError as exc:
        print(f"Cannot write {out}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    print(f"wrote {out}", file=sys.stderr)
    return 0


async def migrate(src: str, dst: str) -> int:
    from tqdm import tqdm

    from storage import StoreError
    from storage.transfer import copy_store
    from storage.urls import UrlError
    from storage.urls import check as check_url

    if not src.startswith("sqlite:") or not dst.startswith(("postgresql:", "postgres:")):
        print(f"Usage: {PROG} admin {MIGRATE} sqlite:///PATH postgresql://...", file=sys.stderr)
        return 2
    for name, url in (("SRC", src), ("DST", dst)):
        try:
            check_url(url)  # before anything opens: the driver would quote a misplaced password
        except UrlError as exc:
            print(f"Cannot migrate: {name}: {exc}", file=sys.stderr)
            return 2
    with tqdm(unit="row", desc="copying", file=sys.stderr) as bar:

        def progress(done: int, total: int) -> None:
            bar.total = total
            bar.update(done - bar.n)

        try:
            report = await copy_store(src, dst, progress)
        except ValueError as exc:  # a missing source, a wrong destination
            bar.leave = False
            print(f"Cannot migrate: {exc}", file=sys.stderr)
            return 2
        except StoreError as exc:  # an unreachable server; the message hides the password
            bar.leave = False
            print(f"Cannot migrate: {exc}", file=sys.stderr)
            return 1
    print(report.summary())
    return 0


def _login() -> str:
    try:
        return getpass.getuser()
    except Exception:
        return "unknown"


if __name__ == "__main__":
    sys.exit(main())
