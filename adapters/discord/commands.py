"""The core's commands as Discord application (slash) commands with typed options.

discord.py derives a command's options from its callback's signature, so each CommandSpec gets a
callback whose signature is built from the spec (str/int options, a "user" one as the member
picker, choices as Literal, optional ones defaulting to None). The interaction is handed back as
(interaction, spec, values); the adapter renders it into the one command line the core reads
("/watchlist add AAPL", a picked member as `discord:<id>`).
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Awaitable, Callable
from typing import Any, Literal, Optional

import discord
from discord import app_commands

from bot.messages import CommandOption, CommandSpec

log = logging.getLogger(__name__)

SlashHandler = Callable[[discord.Interaction, CommandSpec, dict[str, Any]], Awaitable[None]]
# What to offer while the user types an autocomplete option (the text typed so far).
Suggester = Callable[[discord.Interaction, str], Awaitable[list[str]]]

DESCRIPTION_LIMIT = 100  # Discord's limit for command and option descriptions
CHOICES_LIMIT = 25  # Discord's limit for autocomplete choices
# Admin commands are hidden from members without this permission in guild UIs (a hint only:
# server admins can change it under Integrations; the core checks ADMIN_IDS on every call).
ADMIN_DEFAULT_PERMISSIONS = discord.Permissions(manage_guild=True)
CONTEXTS = app_commands.AppCommandContext(guild=True, dm_channel=True, private_channel=False)
INSTALLS = app_commands.AppInstallationType(guild=True, user=False)


def command_line(spec: CommandSpec, values: dict[str, Any]) -> str:
    """'/history' + the given option values in the declared order (the core's positional form);
    a picked member becomes `discord:<id>`, which the core reads (bot/user_refs.py)."""
    parts = [f"/{spec.name}"]
    for option in spec.options:
        value = values.get(option.name)
        if isinstance(value, discord.abc.User):
            value = f"discord:{value.id}"
        if value is not None and str(value).strip():
            parts.append(" ".join(str(value).split()))
    return " ".join(parts)


def build_commands(
    specs: tuple[CommandSpec, ...], handler: SlashHandler, suggester: Suggester
) -> list[Any]:
    """One app_commands.Command per valid spec; an invalid one is logged and left out. Options
    marked `autocomplete` offer what `suggester` finds for the text typed so far."""
    commands: list[Any] = []
    for spec in specs:
        try:
            command = _command(spec, handler)
            for option in spec.options:
                if option.autocomplete:
                    command.autocomplete(option.name)(_autocomplete(suggester))
            commands.append(command)
        except (TypeError, ValueError) as exc:
            log.warning("command /%s cannot be a Discord slash command: %s", spec.name, exc)
    return commands


def _command(spec: CommandSpec, handler: SlashHandler) -> Any:
    # discord.py passes the interaction positionally; the options come by name.
    async def callback(interaction: discord.Interaction, /, **values: Any) -> None:
        await handler(interaction, spec, values)

    parameters = [
        inspect.Parameter(
            "interaction", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=discord.Interaction
        )
    ]
    parameters += [_parameter(option) for option in spec.options]
    callback.__signature__ = inspect.Signature(parameters)  # type: ignore[attr-defined]
    callback.__name__ = callback.__qualname__ = f"slash_{spec.name}"
    callback.__discord_app_commands_param_description__ = {  # type: ignore[attr-defined]
        o.name: _clip(o.description) for o in spec.options
    }
    if spec.admin:
        callback.__discord_app_commands_default_permissions__ = ADMIN_DEFAULT_PERMISSIONS  # type: ignore[attr-defined]
    return app_commands.Command(
        name=spec.name,
        description=_clip(spec.description),
        callback=callback,
        allowed_contexts=CONTEXTS,
        allowed_installs=INSTALLS,
    )


def _autocomplete(suggester: Suggester) -> Any:
    async def suggest(
        interaction: discord.Interaction, current: str
    ) -> list[app_commands.Choice[str]]:
        found = await suggester(interaction, current)
        return [app_commands.Choice(name=s, value=s) for s in found[:CHOICES_LIMIT]]

    return suggest


def _parameter(option: CommandOption) -> inspect.Parameter:
    annotation: Any = {"int": int, "user": discord.User}.get(option.type, str)
    if option.choices:
        annotation = Literal[option.choices]
    if option.required:
        default: Any = inspect.Parameter.empty
    else:
        annotation, default = Optional[annotation], None  # noqa: UP045 (a runtime typing object)
    return inspect.Parameter(
        option.name, inspect.Parameter.KEYWORD_ONLY, annotation=annotation, default=default
    )


def _clip(text: str) -> str:
    text = " ".join(text.split()) or "…"
    return text if len(text) <= DESCRIPTION_LIMIT else text[: DESCRIPTION_LIMIT - 1] + "…"
