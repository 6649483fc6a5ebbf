"""Per-user fairness: one user sending faster than the bot answers cannot starve the others.

Two limits, both decided in memory per (platform, platform user id) so refusing costs no
database call: a token bucket (USER_RATE_LIMIT, e.g. 20 messages a minute) and a bound on how
many of one user's messages may wait for their turn at once (USER_QUEUE_LIMIT). A message past
either is refused; the first refusal of a burst asks for the user to be told (one notice, not
one per message). A burst is refusals less than `burst_gap` apart.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum

from bot.settings import RateLimit

Clock = Callable[[], float]
UserKey = tuple[str, str]  # (platform, platform_user_id)
BURST_GAP = 60.0  # seconds without a refusal that end a burst (the next refusal tells again)
_SWEEP_AT = 1024  # users remembered before idle ones are forgotten


class Verdict(Enum):
    ACCEPT = "accept"
    REFUSE = "refuse"  # refused, the user was already told in this burst
    REFUSE_AND_TELL = "refuse_and_tell"  # refused, the first of a burst


@dataclass(slots=True)
class _User:
    tokens: float
    updated: float
    waiting: int = 0
    last_refused: float | None = None


class Ticket:
    """An accepted message's place among its user's waiting messages; `release` (idempotent)
    when it holds its turn or ends."""

    def __init__(self, gate: FairnessGate | None, key: UserKey) -> None:
        self._gate = gate
        self._key = key

    def release(self) -> None:
        gate, self._gate = self._gate, None
        if gate is not None:
            gate._leave(self._key)


FREE = Ticket(None, ("", ""))  # for messages no limit applies to (admins, replays)


class FairnessGate:
    def __init__(
        self,
        rate: RateLimit | None,
        queue_limit: int | None,
        *,
        clock: Clock = time.monotonic,
        burst_gap: float = BURST_GAP,
    ) -> None:
        self._rate = rate
        self._queue_limit = queue_limit
        self._clock = clock
        self._burst_gap = burst_gap
        self._users: dict[UserKey, _User] = {}
        self._sweep_at = _SWEEP_AT

    def admit(self, key: UserKey) -> tuple[Verdict, Ticket]:
        """Decide now, without awaiting: accepting takes a token and a waiting place."""
        now = self._clock()
        user = self._user(key, now)
        if self._over(user):
            tell = user.last_refused is None or now - user.last_refused >= self._burst_gap
            user.last_refused = now
            return (Verdict.REFUSE_AND_TELL if tell else Verdict.REFUSE), FREE
        if self._rate is not None:
            user.tokens -= 1
        user.waiting += 1
        return Verdict.ACCEPT, Ticket(self, key)

    def waiting(self, key: UserKey) -> int:
        user = self._users.get(key)
        return user.waiting if user else 0

    @property
    def tracked(self) -> int:
        """Users remembered now (idle ones are forgotten as new ones come)."""
        return len(self._users)

    def _over(self, user: _User) -> bool:
        if self._queue_limit is not None and user.waiting >= self._queue_limit:
            return True
        return self._rate is not None and user.tokens < 1

    def _user(self, key: UserKey, now: float) -> _User:
        user = self._users.get(key)
        if user is None:
            if len(self._users) >= self._sweep_at:
                self._sweep(now)
            user = self._users[key] = _User(tokens=self._capacity, updated=now)
        elif self._rate is not None:
            refill = max(now - user.updated, 0.0) * self._rate.count / self._rate.per_seconds
            user.tokens = min(self._capacity, user.tokens + refill)
            user.updated = now
        return user

    @property
    def _capacity(self) -> float:
        return float(self._rate.count) if self._rate is not None else 0.0

    def _leave(self, key: UserKey) -> None:
        user = self._users.get(key)
        if user is not None:
            user.waiting -= 1

    def _sweep(self, now: float) -> None:
        """Forget users nothing is known about any more: none waiting, bucket refilled, burst
        over. Bounds the memory to the users active lately; amortised by doubling."""
        for key in [k for k, u in self._users.items() if self._idle(u, now)]:
            del self._users[key]
        self._sweep_at = max(_SWEEP_AT, 2 * len(self._users))

    def _idle(self, user: _User, now: float) -> bool:
        if user.waiting or (
            user.last_refused is not None and now - user.last_refused < self._burst_gap
        ):
            return False
        if self._rate is None:
            return True
        elapsed = max(now - user.updated, 0.0)
        return user.tokens + elapsed * self._rate.count / self._rate.per_seconds >= self._capacity
