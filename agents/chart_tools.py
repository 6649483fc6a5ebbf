"""The stock analyst's `show_chart` tool: a chart attached to the answer.

A tool result is text for the model; a picture cannot ride in it. So the tool draws the chart
(through the shared, cached `Charts`: a failure is told to the model, which then says so — no
prices, no chart) and returns an `attachment`. The runner copies this turn's attachments onto
the final event (`content["attachments"]`), and the core turns them into the reply's file; a
replayed turn gets the same picture from the stored final event.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from agents.agent import Tool, ToolContext
from agents.charts import DEFAULT_RANGE, RANGES, Charts
from agents.quotes import QuoteError
from agents.tools import note_recent_symbol

CHART_ATTACHMENT = "chart"


def chart_attachment(symbol: str, range_: str) -> dict[str, str]:
    """What the final event stores for a chart, and what the core reads back."""
    return {"kind": CHART_ATTACHMENT, "symbol": symbol, "range": range_}


def chart_tools(charts: Charts) -> tuple[Tool, ...]:
    async def show_chart(
        ctx: ToolContext, symbol: str, range: str = DEFAULT_RANGE
    ) -> Mapping[str, Any]:
        range_ = str(range).strip().lower() or DEFAULT_RANGE
        if range_ not in RANGES:
            return {"error": f"range must be one of {', '.join(RANGES)}"}
        try:
            chart = await charts.chart(str(symbol), range_)
        except QuoteError as exc:
            return {"error": str(exc)}
        series = chart.series
        note_recent_symbol(ctx, series.symbol)
        return {
            "chart": series.summary(),
            "attachment": chart_attachment(series.symbol, range_),
        }

    parameters = {
        "type": "object",
        "properties": {
            "symbol": {"type": "string", "description": "Ticker, e.g. NVDA"},
            "range": {"type": "string", "enum": list(RANGES), "description": "Time range"},
        },
        "required": ["symbol"],
    }
    return (
        Tool(
            "show_chart",
            "Draw a price chart of one ticker over a range; the picture is attached to your "
            "answer (say what it shows in one line, using the summary this tool returns).",
            show_chart,
            parameters,
        ),
    )


def attachments_of(results: list[Mapping[str, Any]]) -> list[dict[str, str]]:
    """The attachments among these tool results, in order, each once."""
    found: list[dict[str, str]] = []
    for result in results:
        attachment = result.get("attachment")
        if isinstance(attachment, dict) and attachment not in found:
            found.append(attachment)
    return found
