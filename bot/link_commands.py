"""/link, /link CODE [confirm], /link list and /unlink: joining accounts explicitly and whole.

`/link` gives a one-time code; `/link CODE` on another account only says what would happen (which
account joins which, what moves) and the code stays valid; `/link CODE confirm` joins the two
users in one transaction (every identity of the redeemer's user moves). The redeeming chat is
told directly; every other identity of the joined account finds a notice at its next message in
a private place (the core answers only in the chat a message came from). Wrong codes are audited
and limited per identity, so codes cannot be guessed at speed. Everything here is private.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncGenerator, Mapping, Sequence
from typing import Any

from agents.profile import FORGET_KEY, SESSION_POINTER_PREFIX
from bot.messages import ChatKind, Incoming, Reply
from storage import Identity, Store
from storage.types import USER_PREFIX

log = logging.getLogger(__name__)

LINK_CODE_TTL = 600
FAILED_LINK = "/link failed"  # audit command of a wrong code; counted for the limit
MAX_FAILED_LINKS = 5  # per identity ...
FAILED_LINK_WINDOW = 600.0  # ... in this many seconds
PLATFORM_NAMES = {"telegram": "Telegram", "discord": "Discord", "console": "Console"}

LINK_USAGE = (
    "Usage: /link (get a code), /link CODE (see what linking does), /link CODE confirm "
    "(link), /link list (linked accounts)"
)
UNLINK_USAGE = "Usage: /unlink PLATFORM (e.g. /unlink discord); /link list shows your accounts"
WRONG_CODE = (
    "That code is unknown, used or expired. Get a new one with /link on your other account."
)
TOO_MANY = "Too many wrong link codes. Please wait a few minutes, then try again."
ALREADY = "This account is already linked to that one."


def private_place(incoming: Incoming) -> bool:
    """Only the asking user sees the answer: a private chat, or an ephemeral interaction."""
    return incoming.chat_kind is ChatKind.PRIVATE or bool(incoming.extra.get("ephemeral"))


def platform_name(platform: str) -> str:
    return PLATFORM_NAMES.get(platform, platform.capitalize())


def describe(identity: Identity) -> str:
    who = identity.display_name or f"id {identity.platform_user_id}"
    return f"{platform_name(identity.platform)} ({who})"


def describe_all(identities: Sequence[Identity]) -> str:
    names = [describe(i) for i in identities]
    return names[0] if len(names) < 2 else ", ".join(names[:-1]) + " and " + names[-1]


def account(identities: Sequence[Identity]) -> str:
    """'Telegram (Ada) account' / 'Telegram (Ada) and Discord (ann) accounts'."""
    return f"{describe_all(identities)} account{'s' if len(identities) > 1 else ''}"


def preferences(state: Mapping[str, Any]) -> dict[str, Any]:
    """The `user:` state a detached identity keeps: preferences, not which session each chat is
    in (those sessions stay behind) nor a pending /forgetme."""
    return {
        k: v
        for k, v in state.items()
        if k.startswith(USER_PREFIX)
        and not k.startswith(SESSION_POINTER_PREFIX)
        and k != FORGET_KEY
    }


def private(text: str) -> list[Reply]:
    return [Reply(text, private=True)]


class LinkCommands:
    """The link commands of one app; UserCommands hands them the parsed arguments."""

    def __init__(self, store: Store, app_name: str) -> None:
        self._store = store
        self._app = app_name

    async def link(self, user_id: str, incoming: Incoming, args: tuple[str, ...]) -> list[Reply]:
        words = [a.lower() for a in args]
        if not args:
            return await self._new_code(user_id)
        if words == ["list"]:
            return await self._list(user_id, incoming)
        if len(args) == 1:
            return await self._preview(user_id, incoming, args[0])
        if len(args) == 2 and words[1] == "confirm":
            return await self._confirm(user_id, incoming, args[0])
        return private(LINK_USAGE)

    async def _new_code(self, user_id: str) -> list[Reply]:
        code = await self._store.create_link_code(user_id, ttl_seconds=LINK_CODE_TTL)
        return private(
            f"Your link code: {code}\nOn your other account (Telegram or Discord), send "
            f"/link {code} to me within {LINK_CODE_TTL // 60} minutes: I'll say what linking "
            "does and ask you to confirm. Both accounts then share one memory."
        )

    async def _preview(self, user_id: str, incoming: Incoming, code: str) -> list[Reply]:
        if await self._throttled(incoming):
            return private(TOO_MANY)
        target = await self._store.peek_link_code(code)
        if target is None:
            return await self._wrong_code(incoming)
        if target == user_id:
            return private(ALREADY)
        mine = await self._identities(user_id, incoming)
        theirs = await self._store.identities(target)
        moving = "its" if len(mine) == 1 else "their"
        return private(
            f"Your {account(mine)} will join your {account(theirs)}: {moving} preferences "
            "and history move there (where both have a preference, the one already there is "
            f"kept), and from then on they share one memory. To go ahead, send /link {code} "
            f"confirm before the code expires ({LINK_CODE_TTL // 60} minutes after it was "
            "made). Otherwise nothing changes."
        )

    async def _confirm(self, user_id: str, incoming: Incoming, code: str) -> list[Reply]:
        if await self._throttled(incoming):
            return private(TOO_MANY)
        me = describe(self._identity(user_id, incoming))
        notice = (
            f"A new account was linked to yours: {me}. It shares your memory now. /link list "
            f"shows every linked account; /unlink {incoming.platform} detaches it."
        )
        target = await self._store.redeem_link_code(
            code, incoming.platform, incoming.platform_user_id, notice=notice
        )
        if target is None:
            return await self._wrong_code(incoming)
        if target == user_id:
            return private(ALREADY)
        await self._store.audit(self._actor(incoming), "/link")
        joined = await self._store.identities(target)
        return private(
            f"Linked! {describe_all(joined)} now share one memory: preferences, watchlist and "
            "history. The other accounts are told at their next private message to me. "
            "/link list shows them; /unlink PLATFORM detaches one."
        )

    async def _list(self, user_id: str, incoming: Incoming) -> list[Reply]:
        mine = await self._identities(user_id, incoming)
        if len(mine) < 2:
            return private("This account is not linked to any other. /link gives you a code.")
        lines = ["Linked accounts (one memory):"]
        for identity in mine:
            here = self._is_current(identity, incoming)
            lines.append(f"• {describe(identity)}{' — this one' if here else ''}")
        lines.append("/unlink PLATFORM detaches one; it keeps a copy of your preferences.")
        return private("\n".join(lines))

    async def unlink(
        self,
        user_id: str,
        incoming: Incoming,
        args: tuple[str, ...],
        state: Mapping[str, Any],
    ) -> list[Reply]:
        """`state`: the asking session's merged state (a detached identity keeps its prefs)."""
        if len(args) != 1:
            return private(UNLINK_USAGE)
        platform = args[0].lower()
        mine = await self._identities(user_id, incoming)
        matches = [i for i in mine if i.platform == platform]
        if len(mine) < 2:
            return private("This account is not linked to any other: nothing to unlink.")
        if not matches:
            return private(f"No {platform_name(platform)} account is linked. See /link list.")
        current = [i for i in matches if self._is_current(i, incoming)]
        if len(matches) > 1 and not current:
            return private(
                f"Several {platform_name(platform)} accounts are linked: send /unlink "
                f"{platform} from the one to detach."
            )
        chosen = (current or matches)[0]
        return await self._detach(chosen, user_id, incoming, mine, preferences(state))

    async def _detach(
        self,
        chosen: Identity,
        user_id: str,
        incoming: Incoming,
        mine: list[Identity],
        prefs: dict[str, Any],
    ) -> list[Reply]:
        rest = [i for i in mine if i != chosen]
        here = self._is_current(chosen, incoming)
        notice = (
            ""
            if here
            else (
                f"This account was detached from your {account(rest)} (asked from "
                f"{describe(self._identity(user_id, incoming))}). It keeps a copy of your "
                "preferences; the history stays with the other account."
            )
        )
        detached = await self._store.detach_identity(
            self._app, chosen.platform, chosen.platform_user_id, prefs, notice
        )
        if detached is None:  # detached meanwhile (another message, another worker)
            return private("Nothing to unlink any more. See /link list.")
        if here:
            return private(
                f"Done: this {platform_name(chosen.platform)} account is on its own now, with a "
                f"copy of your preferences. The history stays with your {account(rest)}."
            )
        return private(
            f"Done: {describe(chosen)} is detached. It keeps a copy of your preferences; the "
            "history stays here."
        )

    async def notices(self, user_id: str, incoming: Incoming) -> AsyncGenerator[Reply, None]:
        """Notices left for this identity (e.g. an account linked from elsewhere), shown in a
        private place only, and forgotten once the adapter came back (i.e. sent them)."""
        if not private_place(incoming):
            return
        waiting = await self._store.notices(incoming.platform, incoming.platform_user_id)
        for notice in waiting:
            yield Reply(notice.text, private=True)
        if waiting:
            await self._store.drop_notices(
                incoming.platform, incoming.platform_user_id, waiting[-1].id
            )

    # -- helpers -------------------------------------------------------------------------------
    async def _throttled(self, incoming: Incoming) -> bool:
        since = time.time() - FAILED_LINK_WINDOW
        failed = await self._store.audit_count(self._actor(incoming), FAILED_LINK, since)
        if failed < MAX_FAILED_LINKS:
            return False
        log.info("/link refused on %s: %d wrong codes recently", incoming.platform, failed)
        await self._store.audit(self._actor(incoming), "/link refused")
        return True

    async def _wrong_code(self, incoming: Incoming) -> list[Reply]:
        log.info("/link: a wrong code on %s", incoming.platform)
        await self._store.audit(self._actor(incoming), FAILED_LINK)
        return private(WRONG_CODE)

    async def _identities(self, user_id: str, incoming: Incoming) -> list[Identity]:
        return await self._store.identities(user_id) or [self._identity(user_id, incoming)]

    @staticmethod
    def _identity(user_id: str, incoming: Incoming) -> Identity:
        return Identity(
            incoming.platform, incoming.platform_user_id, user_id, incoming.display_name
        )

    @staticmethod
    def _is_current(identity: Identity, incoming: Incoming) -> bool:
        return (identity.platform, identity.platform_user_id) == (
            incoming.platform,
            incoming.platform_user_id,
        )

    @staticmethod
    def _actor(incoming: Incoming) -> str:
        return f"{incoming.platform}:{incoming.platform_user_id}"
