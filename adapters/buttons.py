"""Buttons bound to the user who got them: the data a platform carries back when one is pressed.

A reply's `Action` becomes a button whose data is `<tag><command>`: the command line it runs and
a tag, a short MAC of (the user the reply was for, the command) keyed by a secret the adapter
already has (derived from its bot token). A press is run only when the tag matches the user who
pressed: anyone else's press (someone in a shared chat pressing a button under another user's
answer, or hand-made data) is refused without running anything. Nothing is stored, so buttons
keep working across restarts. A command too long for the platform's limit gets no button (its
reply still names it in the text).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
from collections.abc import Iterator
from dataclasses import dataclass

from bot.messages import Action

log = logging.getLogger(__name__)

TAG_BYTES = 6  # 48 bits: guessing a tag means ~10^14 presses; the data stays short
TAG_CHARS = 8  # base64url of TAG_BYTES, unpadded


@dataclass(frozen=True, slots=True)
class Button:
    """One action as a platform button: its label and the data a press carries back."""

    label: str
    data: str


class ButtonKey:
    """Signs actions for a user and reads presses back; one per adapter."""

    def __init__(self, token: str) -> None:
        # Derived, so the token itself never keys anything visible.
        self._key = hashlib.sha256(b"switchboard buttons\n" + token.encode()).digest()

    def buttons(
        self, actions: tuple[Action, ...], user_id: str, *, data_limit: int, label_limit: int
    ) -> list[Button]:
        """The actions that fit the platform (data at most `data_limit` UTF-8 bytes)."""
        return list(self._fitting(actions, user_id, data_limit, label_limit))

    def _fitting(
        self, actions: tuple[Action, ...], user_id: str, data_limit: int, label_limit: int
    ) -> Iterator[Button]:
        for action in actions:
            data = self._tag(user_id, action.command) + action.command
            if len(data.encode()) > data_limit:
                log.info("button %r left out: its command is too long", action.label)
                continue
            yield Button(_cut(action.label, label_limit), data)

    def command(self, data: str, presser: str) -> str | None:
        """The command a press by `presser` runs, or None: not their button (or not ours)."""
        tag, command = data[:TAG_CHARS], data[TAG_CHARS:]
        if not command.startswith("/"):
            return None
        return command if hmac.compare_digest(tag, self._tag(presser, command)) else None

    def _tag(self, user_id: str, command: str) -> str:
        mac = hmac.new(self._key, f"{user_id}\n{command}".encode(), hashlib.sha256)
        return base64.urlsafe_b64encode(mac.digest()[:TAG_BYTES]).decode()


def _cut(label: str, limit: int) -> str:
    label = " ".join(label.split()) or "…"
    return label if len(label) <= limit else label[: limit - 1] + "…"


def rows(buttons: list[Button], per_row: int) -> list[list[Button]]:
    """Buttons laid out in rows of at most `per_row`."""
    return [buttons[i : i + per_row] for i in range(0, len(buttons), per_row)]
