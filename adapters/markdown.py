"""The model's Markdown read once, for every adapter: plain text plus the spans that format it.

`read(markdown)` parses with markdown-it-py (CommonMark, raw HTML off, strikethrough on) and
lays the document out as chat text: paragraphs apart by a blank line, list items as "• item" or
"1. item", code blocks as their bare lines, headings and quotes as their text. What was
formatting becomes a `Span` over that text (in Python characters): bold, italic, strikethrough,
code, a code block with its language, a link with its URL, a heading, a quote. Telegram turns
the spans into message entities (adapters/telegram/entities.py), the console into plain-text
marks (`plain`). Discord needs none of this: it shows Markdown itself.

Half-written Markdown (a streamed preview) parses like any text: an unclosed `**` stays two
asterisks, an unclosed code fence runs to the end. Nothing here raises for any input.
"""

from __future__ import annotations

import functools
import logging
import unicodedata
from dataclasses import dataclass, field
from typing import Literal

from markdown_it import MarkdownIt
from markdown_it.token import Token

log = logging.getLogger(__name__)

Kind = Literal["bold", "italic", "strike", "code", "pre", "link", "heading", "quote"]

# Links a chat app opens; any other target (relative, javascript:, ...) stays plain text.
LINK_SCHEMES = ("http://", "https://", "mailto:", "tg://")
_BULLETS = ("•", "◦")  # by nesting depth, the last one repeated
_INLINE: dict[str, Kind] = {"strong": "bold", "em": "italic", "s": "strike", "link": "link"}


@dataclass(frozen=True, slots=True)
class Span:
    """`text[start:end]` is formatted as `kind`; `url` for a link, `language` for a code block."""

    kind: Kind
    start: int
    end: int
    url: str = ""
    language: str = ""


@dataclass(frozen=True, slots=True)
class Rich:
    """Text as a chat shows it, with its formatting spans (sorted by start, outer first)."""

    text: str
    spans: tuple[Span, ...] = ()


@functools.cache
def _parser() -> MarkdownIt:
    """One configured parser, built on first use and never changed after: building it costs
    more than reading a reply (0.4 ms against 0.25 ms), and `parse` keeps each reply's state in
    a state object of its own, so nothing of one reply reaches the next."""
    return MarkdownIt("commonmark", {"html": False}).enable(["strikethrough", "table"])


def read(markdown: str) -> Rich:
    """The chat text and formatting of `markdown`; on any surprise, the text as it is."""
    try:
        layout = _Layout()
        layout.blocks(_parser().parse(markdown))
        return _trimmed(layout.result())
    except Exception:  # a parser bug must cost the formatting, never the answer
        log.exception("markdown could not be read; sent as plain text")
        return Rich(markdown)


def plain(rich: Rich) -> str:
    """Readable plain text for a terminal: code blocks indented, quotes marked with "│ ",
    a link's URL after its text."""
    marks: list[tuple[int, int, str]] = []  # (position, order, text inserted there)
    for order, span in enumerate(rich.spans):
        if span.kind == "link" and span.url != rich.text[span.start : span.end]:
            marks.append((span.end, -order, f" ({span.url})"))
        elif span.kind in ("quote", "pre"):
            prefix = "│ " if span.kind == "quote" else "    "
            marks += [(at, order, prefix) for at in _line_starts(rich.text, span)]
    text, done = rich.text, 0
    pieces: list[str] = []
    for at, _, insert in sorted(marks):
        pieces += [text[done:at], insert]
        done = at
    return "".join([*pieces, text[done:]])


def _line_starts(text: str, span: Span) -> list[int]:
    starts = [span.start]
    at = text.find("\n", span.start, span.end)
    while at != -1:
        starts.append(at + 1)
        at = text.find("\n", at + 1, span.end)
    return starts


@dataclass
class _Open:
    kind: Kind
    start: int
    url: str = ""
    seq: int = 0  # opening order: of two spans over the same text, the first opened is outer


@dataclass
class _List:
    tight: bool
    number: int | None  # the next item's number; None for bullets
    started: bool = False  # an item was written: the next one is a list's own gap apart


@dataclass
class _Layout:
    """Walks markdown-it's token stream, writing the text and noting the spans."""

    parts: list[str] = field(default_factory=list)
    length: int = 0
    spans: list[tuple[Span, int]] = field(default_factory=list)  # with their opening order
    open: list[_Open] = field(default_factory=list)
    opened: int = 0
    lists: list[_List] = field(default_factory=list)
    mark: int = 0  # where the current container's content began: no gap before its first block
    tail: str = ""  # the last characters written (enough to count trailing newlines)
    table: list[list[str]] | None = None  # the rows of the table being read, cell by cell

    def result(self) -> Rich:
        ordered = sorted(self.spans, key=lambda item: (item[0].start, -item[0].end, item[1]))
        return Rich("".join(self.parts), tuple(span for span, _ in ordered))

    # -- blocks ------------------------------------------------------------------------------
    def blocks(self, tokens: list[Token]) -> None:
        for index, token in enumerate(tokens):
            if token.type in ("bullet_list_open", "ordered_list_open"):
                self._list(token, _tight(tokens, index))
            handler = getattr(self, f"_b_{token.type}", None)
            if handler is not None:
                handler(token)

    def _b_paragraph_open(self, token: Token) -> None:
        self._gap()

    def _b_heading_open(self, token: Token) -> None:
        self._gap()
        self._open("heading")

    def _b_heading_close(self, token: Token) -> None:
        self._close("heading")

    def _b_inline(self, token: Token) -> None:
        if self.table is not None:
            self.table[-1].append(_cell(token))
            return
        for child in token.children or ():
            self._inline(child)

    def _b_table_open(self, token: Token) -> None:
        self.table = []

    def _b_tr_open(self, token: Token) -> None:
        if self.table is not None:
            self.table.append([])

    def _b_table_close(self, token: Token) -> None:
        """A table as a code block with its columns lined up: chats have no tables, and in a
        monospaced block the columns still read as columns."""
        rows, self.table = self.table or [], None
        self._code("\n".join(_table_lines(rows)), "")

    def _b_fence(self, token: Token) -> None:
        self._code(token.content, token.info.split()[0] if token.info.strip() else "")

    def _b_code_block(self, token: Token) -> None:
        self._code(token.content, "")

    def _b_hr(self, token: Token) -> None:
        self._gap()
        self._write("———")

    def _b_blockquote_open(self, token: Token) -> None:
        self._gap()
        self._open("quote")
        self.mark = self.length

    def _b_blockquote_close(self, token: Token) -> None:
        self._close("quote")

    def _list(self, token: Token, tight: bool) -> None:
        ordered = token.type == "ordered_list_open"
        start = int(token.attrs.get("start", 1)) if ordered else None
        self.lists.append(_List(tight=tight, number=start))

    def _b_bullet_list_close(self, token: Token) -> None:
        self.lists.pop()

    _b_ordered_list_close = _b_bullet_list_close

    def _b_list_item_open(self, token: Token) -> None:
        current = self.lists[-1]
        self._gap(inside=current.started)
        current.started = True
        depth = len(self.lists)
        if current.number is None:
            marker = _BULLETS[min(depth, len(_BULLETS)) - 1]
        else:
            marker, current.number = f"{current.number}.", current.number + 1
        self._write("  " * (depth - 1) + marker + " ")
        self.mark = self.length

    def _code(self, content: str, language: str) -> None:
        self._gap()
        self._open("pre")
        self._write(content.rstrip("\n"))
        self._close("pre", language=language)

    def _gap(self, *, inside: bool = True) -> None:
        """Blocks are a blank line apart; items of a tight list, one newline. A list's first
        item is as far from what precedes the list as any block of the enclosing list."""
        if self.length == self.mark:
            return
        enclosing = self.lists if inside else self.lists[:-1]
        want = 1 if enclosing and enclosing[-1].tight else 2
        have = len(self.tail) - len(self.tail.rstrip("\n"))
        self._write("\n" * max(0, want - have))

    # -- inline ------------------------------------------------------------------------------
    def _inline(self, token: Token) -> None:
        kind, _, edge = token.type.rpartition("_")
        if edge == "open" and kind in _INLINE:
            self._open(_INLINE[kind], url=str(token.attrs.get("href", "")))
        elif edge == "close" and kind in _INLINE:
            self._close(_INLINE[kind])
        elif token.type in ("softbreak", "hardbreak"):
            self._write("\n")
        elif token.type == "code_inline":
            self._open("code")
            self._write(token.content)
            self._close("code")
        elif token.type == "image":
            self._open("link", url=str(token.attrs.get("src", "")))
            self._write(token.content or "image")
            self._close("link")
        else:
            self._write(token.content)

    # -- writing -----------------------------------------------------------------------------
    def _write(self, text: str) -> None:
        if text:
            self.parts.append(text)
            self.length += len(text)
            self.tail = (self.tail + text)[-4:]

    def _open(self, kind: Kind, *, url: str = "") -> None:
        self.opened += 1
        self.open.append(_Open(kind, self.length, url, self.opened))

    def _close(self, kind: Kind, *, language: str = "") -> None:
        while self.open:
            opened = self.open.pop()
            if opened.kind == kind:
                self._span(opened, language)
                return

    def _span(self, opened: _Open, language: str) -> None:
        if self.length <= opened.start:
            return  # nothing to format (e.g. "****")
        if opened.kind == "link" and not opened.url.lower().startswith(LINK_SCHEMES):
            return
        span = Span(opened.kind, opened.start, self.length, opened.url, language)
        self.spans.append((span, opened.seq))


def _cell(token: Token) -> str:
    """A table cell's text, without its formatting (a code block holds no formatting)."""
    kinds = ("text", "code_inline", "image")
    return "".join(c.content for c in token.children or () if c.type in kinds).strip()


def _table_lines(rows: list[list[str]]) -> list[str]:
    columns = max((len(row) for row in rows), default=0)
    rows = [row + [""] * (columns - len(row)) for row in rows]
    widths = [max(_width(row[n]) for row in rows) for n in range(columns)]
    lines = [
        " | ".join(c + " " * (w - _width(c)) for c, w in zip(row, widths, strict=True)).rstrip()
        for row in rows
    ]
    if len(lines) > 1:  # the header row, then a rule under it
        lines.insert(1, "-+-".join("-" * w for w in widths))
    return lines


def _width(text: str) -> int:
    """Columns a monospaced font gives `text`: wide (CJK, emoji) characters take two."""
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def _tight(tokens: list[Token], index: int) -> bool:
    """markdown-it marks a tight list by hiding its items' paragraphs: look at its first one."""
    level = tokens[index].level + 2  # list -> item -> paragraph
    for token in tokens[index + 1 :]:
        if token.type == "paragraph_open" and token.level == level:
            return token.hidden
        if token.level < tokens[index].level + 1:
            break
    return True


def _trimmed(rich: Rich) -> Rich:
    """Without leading or trailing whitespace (chats drop it), spans moved and clipped."""
    head = len(rich.text) - len(rich.text.lstrip())
    text = rich.text.strip()
    spans = []
    for span in rich.spans:
        start, end = max(span.start - head, 0), min(span.end - head, len(text))
        if end > start:
            spans.append(Span(span.kind, start, end, span.url, span.language))
    return Rich(text, tuple(spans))
