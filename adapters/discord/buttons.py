"""A reply's actions as Discord buttons (message components), and a press read back.

Buttons sit in action rows (at most 5 rows of 5); each one's `custom_id` (at most 100
characters) is the command with its tag, bound to the user the reply was for
(adapters/buttons.py). discord.py's own component dispatch is not used: the view is stopped
before it is sent, so discord.py only serialises it, and every press arrives as a
MESSAGE_COMPONENT interaction at the adapter's `on_interaction`, whoever pressed it.
"""

from __future__ import annotations

from collections.abc import Mapping

import discord

from adapters.buttons import NOT_FOR_YOU, ButtonKey, Pressed, rows
from bot.messages import Action

CUSTOM_ID_LIMIT = 100
LABEL_LIMIT = 80
PER_ROW = 5
MAX_ROWS = 5
__all__ = ["NOT_FOR_YOU", "Buttons", "pressed"]


class Buttons:
    """Views for the replies to one user: only that user's press runs anything."""

    def __init__(self, key: ButtonKey, user_id: str) -> None:
        self._key = key
        self._user_id = user_id

    def view(self, actions: tuple[Action, ...]) -> discord.ui.View | None:
        """The buttons for `actions` (None when there are none). Must be built in the loop."""
        buttons = self._key.buttons(
            actions, self._user_id, data_limit=CUSTOM_ID_LIMIT, label_limit=LABEL_LIMIT
        )
        if not buttons:
            return None
        view = discord.ui.View(timeout=None)
        for row, line in enumerate(rows(buttons, PER_ROW)[:MAX_ROWS]):
            for button in line:
                style = discord.ButtonStyle.secondary
                view.add_item(
                    discord.ui.Button(
                        label=button.label, custom_id=button.data, style=style, row=row
                    )
                )
        view.stop()  # sent as components only: presses reach on_interaction, not this view
        return view


def pressed(key: ButtonKey, interaction: discord.Interaction) -> Pressed:
    """What a button press runs: nothing for someone else's button (or not a button)."""
    data: Mapping[str, object] = interaction.data or {}
    custom_id = data.get("custom_id")
    if not isinstance(custom_id, str) or data.get("component_type") != 2:
        return Pressed(None, NOT_FOR_YOU)
    return key.press(custom_id, str(interaction.user.id))
