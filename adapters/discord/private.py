"""Private replies to messages in shared Discord channels: they go to the author's DMs.

A reply marked private (a link code, an export, admin output) may only reach a place where the
asking user alone sees it. In a guild channel that is a DM to the message's author; the channel
gets a short note instead, and when the DM is impossible (the user's privacy settings refuse it),
a note that says so — never the content. Slash commands need none of this: their answers in a
guild are ephemeral.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

import discord

from adapters.discord.buttons import Buttons
from adapters.discord.delivery import (
    ChannelReplies,
    Undeliverable,
    earlier_replies,
    refusals_are_final,
)
from bot.messages import Reply

log = logging.getLogger(__name__)

SENT = "I've sent you the answer in a direct message: it is for your eyes only."
NO_DM = (
    "That answer is for your eyes only, and I can't send you a direct message. Allow direct "
    "messages from this server's members, or use the slash command: only you see its answer."
)
DM_TAG = "d"  # the DM's nonces: Discord checks a nonce per author, not per channel

OpenDM = Callable[[], Awaitable[discord.abc.Messageable]]


class DirectReplies:
    """adapters.discord.delivery.PrivateRoute by DM: the DM channel is opened on the first private
    reply, and its parts are remembered across attempts like the channel's."""

    def __init__(
        self, open_dm: OpenDM, message_id: str, me: int, buttons: Buttons | None = None
    ) -> None:
        self._open_dm = open_dm
        self._buttons = buttons  # the answer's buttons go with it into the DM
        self._message_id = message_id
        self._me = me
        self._replies: ChannelReplies | None = None

    def begin(self) -> None:
        if self._replies is not None:
            self._replies.begin()

    async def send(self, reply: Reply) -> str:
        try:
            replies = self._replies or await self._open()
            await replies.final(reply)
        except Undeliverable as exc:
            log.info("discord: private reply to %s not sent (no DM: %s)", self._message_id, exc)
            return NO_DM
        return SENT

    async def _open(self) -> ChannelReplies:
        with refusals_are_final():
            channel = await self._open_dm()
        # Snowflakes order by time across channels: the DM's messages after the user's
        # message are the ones a run before a restart may have sent.
        earlier = earlier_replies(channel, self._message_id, self._me)
        self._replies = ChannelReplies(
            channel, self._message_id, tag=DM_TAG, earlier=earlier, buttons=self._buttons
        )
        return self._replies
