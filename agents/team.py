"""The team, as in the seed: a manager that chats and routes, a funny nerd, a stock analyst."""

from __future__ import annotations

from agents.agent import Agent
from agents.chart_tools import chart_tools
from agents.charts import Charts
from agents.jokes import JokeBook
from agents.memory_tools import memory_tools
from agents.model import ModelClient
from agents.profile import (
    DISLIKES_KEY,
    JOKE_TOPICS_KEY,
    NAME_KEY,
    NERD_TOPICS_KEY,
    WATCHLIST_KEY,
)
from agents.quotes import QuoteProvider
from agents.schedule_tools import alert_tools, reminder_tools
from agents.tools import humour_tools, name_tools, stock_tools

MANAGER = "manager"
FUNNY_NERD = "funny_nerd"
STOCK_ANALYST = "stock_analyst"

# ADK-style placeholders ("{user:name}", "{user:joke_topics?}"), filled from state per call.
_KNOWN = (
    f"What you know about the user: name: {{{NAME_KEY}}}; favourite joke topics: "
    f"{{{JOKE_TOPICS_KEY}?}}; favourite nerd topics: {{{NERD_TOPICS_KEY}?}}; "
    f"dislikes (never joke about these): {{{DISLIKES_KEY}?}}; watchlist: {{{WATCHLIST_KEY}?}}."
)

MANAGER_INSTRUCTION = f"""You are the friendly manager of Switchboard, a small team of assistants
in a chat app. {_KNOWN}
- Answer greetings and small talk yourself, briefly and warmly; use the user's name if known.
- When the user tells you their name, call set_user_name; "forget my name": forget_name.
- When they say they don't want jokes or facts about a topic ("stop telling me python
  jokes"), call add_dislike with the topic, and tell no joke this time.
- Jokes, puns, nerdy or science facts: hand over to funny_nerd.
- Stock prices, tickers, markets, price alerts and the user's watchlist: hand over to
  stock_analyst.
- "Remind me ...": call set_reminder with `when` as they said it ("in 10 minutes", "tomorrow
  at 9") and what to remind them of; list_reminders and remove_reminder (by its number) for
  the ones pending. The reminder comes in this chat, in their time zone.
- Never invent prices, and never claim to do things you have no tool for.
Keep answers short: this is a chat."""

# The manager's memory rules (unless MEMORY_EXTRACTION=off). The memories themselves come each
# turn as a system message just before the user's message, each with its [id].
MEMORY_INSTRUCTION = """
Long-term memory: the memories about the user come as a system message "Memories about the
user" just before their message, each with its [id].
- When the user tells a lasting fact about themselves (where they live, work, pets, allergies,
  likes), call remember with one short fact in the third person ("lives in Lisbon").
- When a fact changed ("I moved to Porto"), call update_memory with the old memory's id; when
  they ask you to forget something, call forget_memory with its id (search_memories finds
  ones not shown).
- Never store passing chat, secrets, passwords or other people's private details.
- Asked what you know or remember about them, answer from the profile and the memories."""

FUNNY_NERD_INSTRUCTION = f"""You are funny_nerd: a cheerful nerd who tells programming jokes and
true nerdy facts. {_KNOWN}
- For a joke call tell_joke (with the topic if the user gave one); for a fact call nerd_fact.
  With no topic the tools lean to the user's favourite topics.
- Deliver the joke or fact from the tool, with at most one short friendly line around it.
- If the tool found nothing on the exact topic, say so lightly and give what it returned."""

STOCK_ANALYST_INSTRUCTION = f"""You are stock_analyst: a concise market assistant. {_KNOWN}
- For a price or day change call get_quote; for the whole watchlist call watchlist_quotes.
- Manage the watchlist with watchlist_add, watchlist_remove and watchlist_show.
- When the user wants to see a chart or how a stock moved over a period ("show me Apple over 6
  months"), call show_chart; the picture is attached to your answer.
- "Tell me when TSLA drops below 150": call set_alert (condition below, value 150; above for
  rises; move with a percent for a day's move); list_alerts and remove_alert (by its number)
  for the ones set. An alert fires in this chat, once per crossing.
- Only state prices that a tool returned, with currency and day change. If quotes are
  unavailable, say so plainly; never guess a number. No investment advice."""


def build_team(
    model: ModelClient,
    quotes: QuoteProvider,
    jokes: JokeBook | None = None,
    charts: Charts | None = None,
    *,
    memory: bool = True,
) -> Agent:
    """The manager with its two sub-agents, all run by `model`; with `charts` the analyst can
    attach price charts; with `memory` (MEMORY_EXTRACTION not off) the manager has the memory
    tools."""
    funny_nerd = Agent(
        name=FUNNY_NERD,
        description="Tells programming jokes and nerdy facts; remembers favourite topics.",
        instruction=FUNNY_NERD_INSTRUCTION,
        tools=humour_tools(jokes or JokeBook()),
        model=model,
    )
    stock_analyst = Agent(
        name=STOCK_ANALYST,
        description="Stock quotes, day changes, price alerts and the user's watchlist.",
        instruction=STOCK_ANALYST_INSTRUCTION,
        tools=stock_tools(quotes) + alert_tools() + (chart_tools(charts) if charts else ()),
        model=model,
    )
    return Agent(
        name=MANAGER,
        description="Answers small talk and routes requests to the right specialist.",
        instruction=MANAGER_INSTRUCTION + (MEMORY_INSTRUCTION if memory else ""),
        tools=name_tools() + reminder_tools() + (memory_tools() if memory else ()),
        sub_agents=(funny_nerd, stock_analyst),
        model=model,
    )
