"""Buttons bound to the user who got them: the data a platform carries back when one is pressed.

A reply's `Action` becomes a button whose data is `<tag><command>`: the command line it runs and
a tag, a short MAC of (the user the reply was for, the command) keyed by a secret the adapter
already has (derived from its bot token). A press is run only when the tag matches the user who
pressed: anyone else's press (someone in a shared chat pressing a button under another user's
answer, or hand-made data) is refused without running anything. Nothing is stored, so buttons
keep working across restarts.

A command too long for the platform's limit (Telegram's 64 bytes: e.g. an admin pager naming a
long event id) is kept here instead, under a random reference the button carries (`~ref`,
tagged the same way), for this run only: after a restart such a button says it has expired and
the reply's text still names the command to type.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from collections import OrderedDict
from dataclasses import dataclass

from bot.messages import Action

TAG_BYTES = 6  # 48 bits: guessing a tag means ~10^14 presses; the data stays short
TAG_CHARS = 8  # base64url of TAG_BYTES, unpadded
KEPT = "~"  # data `<tag>~<ref>`: the command is kept in memory under `ref`
KEEP_AT_MOST = 4096  # long commands remembered per adapter (the oldest are forgotten)
NOT_FOR_YOU = "This button is for someone else."
EXPIRED = "This button has expired: type its command instead."


@dataclass(frozen=True, slots=True)
class Button:
    """One action as a platform button: its label and the data a press carries back."""

    label: str
    data: str


@dataclass(frozen=True, slots=True)
class Pressed:
    """What a press does: run `command`, or nothing, telling the presser `refusal`."""

    command: str | None
    refusal: str = ""


class ButtonKey:
    """Signs actions for a user and reads presses back; one per adapter."""

    def __init__(self, token: str, *, keep_at_most: int = KEEP_AT_MOST) -> None:
        # Derived, so the token itself never keys anything visible.
        self._key = hashlib.sha256(b"switchboard buttons\n" + token.encode()).digest()
        self._kept: OrderedDict[str, str] = OrderedDict()  # ref -> a command too long to carry
        self._keep_at_most = keep_at_most

    def buttons(
        self, actions: tuple[Action, ...], user_id: str, *, data_limit: int, label_limit: int
    ) -> list[Button]:
        """The actions as buttons whose data is at most `data_limit` UTF-8 bytes."""
        return [
            Button(_cut(a.label, label_limit), self._data(user_id, a.command, data_limit))
            for a in actions
        ]

    def press(self, data: str, presser: str) -> Pressed:
        """What a press by `presser` runs: nothing unless the button was made for them."""
        tag, carried = data[:TAG_CHARS], data[TAG_CHARS:]
        if not carried.startswith(("/", KEPT)) or not hmac.compare_digest(
            tag, self._tag(presser, carried)
        ):
            return Pressed(None, NOT_FOR_YOU)
        if carried.startswith("/"):
            return Pressed(carried)
        command = self._kept.get(carried[len(KEPT) :])
        return Pressed(command) if command is not None else Pressed(None, EXPIRED)

    def _data(self, user_id: str, command: str, limit: int) -> str:
        data = self._tag(user_id, command) + command
        if len(data.encode()) <= limit:
            return data
        ref = secrets.token_urlsafe(9)  # 12 characters
        self._kept[ref] = command
        while len(self._kept) > self._keep_at_most:
            self._kept.popitem(last=False)
        return self._tag(user_id, KEPT + ref) + KEPT + ref

    def _tag(self, user_id: str, carried: str) -> str:
        mac = hmac.new(self._key, f"{user_id}\n{carried}".encode(), hashlib.sha256)
        return base64.urlsafe_b64encode(mac.digest()[:TAG_BYTES]).decode()


def _cut(label: str, limit: int) -> str:
    label = " ".join(label.split()) or "…"
    return label if len(label) <= limit else label[: limit - 1] + "…"


def rows(buttons: list[Button], per_row: int) -> list[list[Button]]:
    """Buttons laid out in rows of at most `per_row`."""
    return [buttons[i : i + per_row] for i in range(0, len(buttons), per_row)]
