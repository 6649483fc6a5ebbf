"""Text helpers every adapter shares: platform length units and splitting long replies."""

from __future__ import annotations

from collections.abc import Callable

TELEGRAM_LIMIT = 4096  # UTF-16 code units
DISCORD_LIMIT = 2000  # characters

# Preferred cut points, best first: paragraph, line, sentence, word.
_BOUNDARIES = ("\n\n", "\n", ". ", "! ", "? ", " ")


def utf16_len(text: str) -> int:
    """Length in UTF-16 code units, the unit Telegram counts in (an emoji may count 2)."""
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


def _fitting_prefix(text: str, limit: int, measure: Callable[[str], int]) -> int:
    """The largest n such that measure(text[:n]) <= limit (binary search; measure is monotone)."""
    low, high = 0, min(len(text), limit)
    while low < high:
        mid = (low + high + 1) // 2
        if measure(text[:mid]) <= limit:
            low = mid
        else:
            high = mid - 1
    return low


def split_message(text: str, limit: int, measure: Callable[[str], int] = len) -> list[str]:
    """Split `text` into chunks of at most `limit` units on the most sensible boundary.

    A boundary is only used if it keeps at least half a chunk, so a stray early newline does
    not produce tiny messages; with none, the text is cut hard. Whitespace at the cut goes.
    """
    return [text[start:end] for start, end in split_ranges(text, limit, measure)]


def split_ranges(
    text: str, limit: int, measure: Callable[[str], int] = len
) -> list[tuple[int, int]]:
    """Where `split_message` cuts: each chunk as (start, end) in `text`, so formatting over the
    text (Telegram's entities) can be cut at the same places."""
    if limit <= 0:
        raise ValueError("limit must be positive")
    ranges: list[tuple[int, int]] = []
    at = 0  # where the rest begins
    while measure(text[at:]) > limit:
        rest = text[at:]
        cut = _best_cut(rest[: _fitting_prefix(rest, limit, measure)])
        end = at + len(rest[:cut].rstrip())
        if end > at:
            ranges.append((at, end))
        at += cut + len(rest[cut:]) - len(rest[cut:].lstrip())
    if text[at:].strip() or not ranges:
        ranges.append((at, len(text)))
    return ranges


def _best_cut(window: str) -> int:
    for sep in _BOUNDARIES:
        at = window.rfind(sep)
        if at >= len(window) // 2:
            return at + len(sep)
    return max(len(window), 1)
