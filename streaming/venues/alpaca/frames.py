"""One frame of an Alpaca stream → the events ingest reads (docs/providers.md).

Trades (``t``), quotes (``q``) and, on the stock stream, corrections (``c``) and
cancels/errors (``x``), which come with every trade subscription. A message that cannot be
read is counted in ``rejects`` as ``malformed_<kind>`` and skipped; an error frame goes to
``on_error`` (which raises to end the session or the provider); anything else (bars,
statuses, control frames) is ignored.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, MutableMapping
from typing import Any

from core.events import Quote, Rejects, Trade, TradeAmendment
from streaming.venues.alpaca import parsing

log = logging.getLogger(__name__)

StreamItem = Trade | Quote | TradeAmendment

# message kind → (parser, counter of the ones read, name in the reject reason)
PARSERS: dict[str, tuple[Callable[[Mapping[str, Any]], StreamItem], str, str]] = {
    "t": (parsing.parse_trade, "trades_received", "trade"),
    "q": (parsing.parse_quote, "quotes", "quote"),
    "c": (parsing.parse_correction, "corrections", "correction"),
    "x": (parsing.parse_cancel, "cancels", "cancel"),
}


def read_frame(
    raw: bytes | str,
    counters: MutableMapping[str, float],
    rejects: Rejects,
    on_error: Callable[[dict[str, Any]], None],
) -> list[StreamItem]:
    """The events of one frame, in the frame's order."""
    try:
        messages = parsing.decode_frame(raw)
    except ValueError:
        rejects.add("malformed_frame", raw[:200])
        return []
    events: list[StreamItem] = []
    for msg in messages:
        if not isinstance(msg, dict):
            rejects.add("malformed_message", msg)
            continue
        kind = msg.get("T")
        if kind == "error":
            on_error(msg)
            continue
        if kind == "subscription":
            log.info(
                "alpaca_ws: subscribed trades=%s quotes=%s corrections=%s cancels=%s",
                msg.get("trades"),
                msg.get("quotes"),
                msg.get("corrections"),
                msg.get("cancelErrors"),
            )
            continue
        if not isinstance(kind, str) or kind not in PARSERS:
            continue  # bars, statuses, success: not subscribed by us
        parse, counter, name = PARSERS[kind]
        try:
            event = parse(msg)
        except (ValueError, TypeError, OverflowError) as exc:
            rejects.add(f"malformed_{name}", msg)
            log.debug("alpaca_ws: skipped %s: %s", kind, exc)
            continue
        counters[counter] += 1
        events.append(event)
    return events
