"""What names a user, for the admin commands on every platform and the shell.

One rule: a Discord mention `<@id>` / `<@!id>` names that Discord user; `@name` names the account
whose username (Telegram @username, Discord user name) that is now; `platform:id` names a user
on that platform; a bare number is our user id if there is one, else a Discord id (a snowflake);
anything else is our own user id. The Discord adapter turns a picked member into `discord:<id>`
text, so the member picker ends up here too.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

DISCORD_MENTION = re.compile(r"<@!?(\d+)>")
USERNAME = "@"  # UserRef.platform of a username: any platform


@dataclass(frozen=True)
class UserRef:
    """`platform` is None for our own user id (then `user_id` is that id)."""

    platform: str | None
    user_id: str


def user_ref_candidates(text: str) -> list[UserRef]:
    """Whom `text` may name, to be tried in this order (the first known one is meant)."""
    text = text.strip()
    mention = DISCORD_MENTION.fullmatch(text)
    if mention:
        return [UserRef("discord", mention.group(1))]
    if text.startswith("@") and len(text) > 1:
        return [UserRef(USERNAME, text[1:])]
    platform, sep, platform_id = text.partition(":")
    if sep and platform and platform_id:
        return [UserRef(platform.lower(), platform_id)]
    ours = [UserRef(None, text)] if text else []
    return [*ours, UserRef("discord", text)] if text.isdigit() else ours
