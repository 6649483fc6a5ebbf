"""A reply's text as Telegram messages: plain text plus `MessageEntity`s, never a parse mode.

The model's Markdown is read by adapters/markdown.py; its spans become entities with offsets and
lengths in UTF-16 code units (an emoji outside the BMP counts 2). Plain replies get no entities,
so text quoted from users stays literal. Nothing is parsed by Telegram, so nothing a model
writes can make a send fail with "can't parse entities".

A long text is cut where `split_message` cuts it (adapters/text.py: the one rule for length),
and each entity is cut with it, so every part is valid on its own. Telegram's nesting rules
(Bot API, "Formatting options"): entities overlap only by containment, and bold, italic,
strikethrough and links may not contain code or a code block, so those are cut around code
(except a link: code inside one loses its monospace instead).
"""

from __future__ import annotations

from dataclasses import dataclass

from telegram import MessageEntity

from adapters.markdown import Rich, Span, read
from adapters.text import TELEGRAM_LIMIT, split_ranges, utf16_len

_TYPES = {
    "bold": MessageEntity.BOLD,
    "heading": MessageEntity.BOLD,
    "italic": MessageEntity.ITALIC,
    "strike": MessageEntity.STRIKETHROUGH,
    "code": MessageEntity.CODE,
    "pre": MessageEntity.PRE,
    "link": MessageEntity.TEXT_LINK,
    "quote": MessageEntity.BLOCKQUOTE,
}
_CODE = ("code", "pre")


@dataclass(frozen=True, slots=True)
class Chunk:
    """One message: its text and the entities formatting it."""

    text: str
    entities: tuple[MessageEntity, ...] = ()


def chunks(text: str, *, markdown: bool = False, limit: int = TELEGRAM_LIMIT) -> list[Chunk]:
    """The messages `text` needs, each within `limit` UTF-16 units, entities cut with it."""
    rich = read(text) if markdown else Rich(text)
    if not rich.text.strip():
        rich = Rich("…")  # Telegram refuses an empty message
    return [
        Chunk(rich.text[start:end], _entities(rich.text[start:end], _clip(rich, start, end)))
        for start, end in split_ranges(rich.text, limit, utf16_len)
    ]


def _clip(rich: Rich, start: int, end: int) -> list[Span]:
    """The spans within text[start:end], relative to `start`, code-free where they must be."""
    clipped = [
        Span(s.kind, max(s.start, start) - start, min(s.end, end) - start, s.url, s.language)
        for s in rich.spans
        if s.start < end and s.end > start
    ]
    clipped = _links_over_code(clipped)
    code = [(s.start, s.end) for s in clipped if s.kind in _CODE]
    pieces = [piece for span in _outer_quotes(clipped) for piece in _around(span, code)]
    return sorted(pieces, key=lambda span: (span.start, -span.end))


def _links_over_code(spans: list[Span]) -> list[Span]:
    """Code inside a link is shown as the link's plain text (a link may not hold code): a
    working link matters more than the monospace."""
    links = [s for s in spans if s.kind == "link"]
    return [
        s
        for s in spans
        if s.kind != "code" or not any(k.start <= s.start and s.end <= k.end for k in links)
    ]


def _outer_quotes(spans: list[Span]) -> list[Span]:
    """Without quotes inside quotes: Telegram's blockquotes do not nest (the text stays)."""
    kept: list[Span] = []
    for span in sorted(spans, key=lambda s: (s.start, -s.end)):
        inside = any(q.start <= span.start and span.end <= q.end for q in kept if q.kind == "quote")
        if span.kind != "quote" or not inside:
            kept.append(span)
    return kept


def _around(span: Span, code: list[tuple[int, int]]) -> list[Span]:
    """`span` without the code inside it (a quote may hold code; code holds nothing else)."""
    if span.kind in _CODE or span.kind == "quote":
        return [span]
    pieces, at = [], span.start
    for start, end in sorted(code):
        if start >= span.end or end <= at:
            continue
        if start > at:
            pieces.append((at, start))
        at = max(at, end)
    if at < span.end:
        pieces.append((at, span.end))
    return [Span(span.kind, a, b, span.url, span.language) for a, b in pieces if a < b]


def _entities(text: str, spans: list[Span]) -> tuple[MessageEntity, ...]:
    return tuple(
        MessageEntity(
            _TYPES[span.kind],
            utf16_len(text[: span.start]),
            utf16_len(text[span.start : span.end]),
            url=span.url or None,
            language=span.language or None,
        )
        for span in spans
        if text[span.start : span.end].strip()
    )
