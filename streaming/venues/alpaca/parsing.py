"""Alpaca market-data stream protocol (v2): frames, messages, error codes. Pure, no I/O.

Server frames are arrays of objects keyed by ``T`` (msgpack when the client sends
``Content-Type: application/msgpack``, as alpaca-py does, else JSON). Trade ``t`` is a
msgpack Timestamp on the msgpack wire, an RFC 3339 string in JSON and in the REST API.
"""

from __future__ import annotations

import contextlib
import json
import math
from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from enum import Enum
from typing import Any

import msgpack

from core.contracts import EQUITY_FEEDS, AssetType
from core.events import Quote, Trade, TradeAmendment
from storage.symbols import guess_asset_type, is_fx_pair, is_slash_pair, stored_symbol

DEFAULT_STREAM_URL = "wss://stream.data.alpaca.markets/v2/{feed}"
DEFAULT_CRYPTO_STREAM_URL = "wss://stream.data.alpaca.markets/v1beta3/crypto/us"
FEEDS = EQUITY_FEEDS
# the currencies Alpaca quotes crypto pairs in, longest first: `BTCUSDT` is BTC/USDT
CRYPTO_QUOTES = ("USDT", "USDC", "USD", "BTC")
# the taker side of a crypto print (``tks``); "-" (unknown) and anything else → None
TAKER_SIDES = {"B": 1, "S": -1}


def stream_url(feed: str, override: str | None) -> str:
    """The override as given (a test server or a proxy), else Alpaca's URL for the feed."""
    if override:
        return override
    return DEFAULT_STREAM_URL.format(feed=feed)


def crypto_stream_url(override: str | None) -> str:
    """The crypto stream: the override as given, else Alpaca's (``/v1beta3/crypto/us``)."""
    return override or DEFAULT_CRYPTO_STREAM_URL


# --- symbol names (docs/history.md) -------------------------------------------------------


def alpaca_symbol(symbol: str) -> str:
    """A stored pair as Alpaca writes it: the quote currency split off with a slash, the
    longest that leaves a base (``BTCUSD`` → ``BTC/USD``, ``BTCUSDT`` → ``BTC/USDT``,
    ``ETHBTC`` → ``ETH/BTC``, ``USDTUSD`` → ``USDT/USD``); a name with a slash as it is.
    Only for crypto pairs: a stock's name is Alpaca's as stored."""
    if "/" in symbol:
        return symbol
    for quote in CRYPTO_QUOTES:
        if symbol.endswith(quote) and len(symbol) > len(quote):
            return f"{symbol[: -len(quote)]}/{quote}"
    return symbol


def is_crypto_pair(written: str) -> bool:
    """Whether a symbol as the user wrote it is a crypto pair for Alpaca's crypto stream:
    written ``BASE/QUOTE`` (a currency pair aside), or a known crypto name (``BTCUSD``)."""
    upper = written.strip().upper()
    if is_slash_pair(upper):
        return not is_fx_pair(upper)
    return guess_asset_type(upper) is AssetType.CRYPTO


# --- client messages ----------------------------------------------------------------------


def auth_message(key: str, secret: str) -> bytes:
    return msgpack.packb({"action": "auth", "key": key, "secret": secret})


def subscribe_message(symbols: Sequence[str]) -> bytes:
    # quotes too: the ingest quote rule classifies aggressors from the bid/ask in force
    return msgpack.packb({"action": "subscribe", "trades": list(symbols), "quotes": list(symbols)})


# --- server frames ------------------------------------------------------------------------


def decode_frame(data: bytes | str) -> list[dict[str, Any]]:
    """A server frame as a list of message dicts; ValueError when it is not one."""
    try:
        decoded = json.loads(data) if isinstance(data, str) else msgpack.unpackb(data, raw=False)
    except Exception as exc:  # msgpack raises several unrelated types on garbage
        raise ValueError(f"undecodable frame: {type(exc).__name__}") from None
    if isinstance(decoded, dict):
        decoded = [decoded]
    if not isinstance(decoded, list):
        raise ValueError("frame is not an array of messages")
    return decoded


class ErrorAction(Enum):
    FATAL = "fatal"  # stop: retrying cannot help until a setting changes
    SLOT_BUSY = "slot_busy"  # 406: another session holds the stream slot; wait, retry
    RECONNECT = "reconnect"  # transient: reconnect with backoff
    IGNORE = "ignore"


# What an error code means for us and which setting a user must change (None: transient).
_ERRORS: dict[int, tuple[ErrorAction, str | None]] = {
    400: (ErrorAction.RECONNECT, None),  # invalid syntax: our message; a fresh session helps
    401: (ErrorAction.RECONNECT, None),  # not authenticated: re-run the handshake
    402: (ErrorAction.FATAL, "ALPACA_API_KEY and ALPACA_SECRET_KEY"),  # auth failed
    403: (ErrorAction.IGNORE, None),  # already authenticated
    404: (ErrorAction.RECONNECT, None),  # auth timeout
    405: (ErrorAction.FATAL, "SYMBOLS (fewer symbols: the plan's channel limit)"),
    406: (ErrorAction.SLOT_BUSY, None),  # connection limit exceeded
    407: (ErrorAction.RECONNECT, None),  # slow client
    408: (ErrorAction.FATAL, "ALPACA_STREAM_URL (v2 not enabled for this account)"),
    409: (ErrorAction.FATAL, "ALPACA_FEED (the plan does not include this feed; try iex)"),
    500: (ErrorAction.RECONNECT, None),
}


def classify_error(code: object) -> tuple[ErrorAction, str | None]:
    try:
        # whatever the frame carried: int() of anything else raises, handled below
        return _ERRORS.get(int(code), (ErrorAction.RECONNECT, None))  # type: ignore[call-overload]
    except (TypeError, ValueError):
        return ErrorAction.RECONNECT, None


def fatal_message(code: object, msg: object, setting: str, feed: str) -> str:
    return (
        f"Alpaca stream refused the session: {code} {msg!s} (feed {feed}). "
        f"Check {setting}; the stream stays stopped until the setting is fixed and ingest "
        "is restarted."
    )


# --- data messages ------------------------------------------------------------------------


def to_utc(value: object) -> datetime:
    """A msgpack Timestamp, RFC 3339 string or datetime as an aware UTC datetime."""
    if isinstance(value, msgpack.Timestamp):
        return value.to_datetime()
    if isinstance(value, str):
        parsed = datetime.fromisoformat(value)
        if parsed.tzinfo is None:
            raise ValueError("timestamp without a time zone")
        return parsed.astimezone(UTC)
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError("timestamp without a time zone")
        return value.astimezone(UTC)
    raise ValueError(f"timestamp of type {type(value).__name__}")


def _number(msg: Mapping[str, Any], key: str) -> float:
    value = msg.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{key} is not a number")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{key} is not finite")
    return value


def _symbol(msg: Mapping[str, Any]) -> str:
    """The message's symbol under its stored name (``BTC/USD`` → ``BTCUSD``)."""
    symbol = msg.get("S")
    if not isinstance(symbol, str) or not symbol:
        raise ValueError("S (symbol) missing")
    return stored_symbol(symbol)


def trade_id(exchange: object, raw_id: object) -> str:
    """Venue trade ids are unique per exchange, not across exchanges (SIP), hence the prefix."""
    if raw_id is None or isinstance(raw_id, bool) or not isinstance(raw_id, int | str):
        raise ValueError("i (trade id) missing")
    return f"{exchange}-{raw_id}" if exchange else str(raw_id)


def _conditions(msg: Mapping[str, Any], key: str) -> tuple[str, ...]:
    conditions = msg.get(key) or ()
    if not isinstance(conditions, list | tuple):
        raise ValueError(f"{key} (conditions) is not a list")
    return tuple(str(c) for c in conditions)


def parse_trade(msg: Mapping[str, Any], symbol: str | None = None) -> Trade:
    """A ``T: t`` stream message or a REST trade object (``symbol`` given) → Trade. A crypto
    print has no exchange or conditions but its taker side (``tks``): the venue's aggressor."""
    sym = stored_symbol(symbol) if symbol else _symbol(msg)
    exchange = msg.get("x")
    taker = msg.get("tks")
    return Trade(
        symbol=sym,
        ts=to_utc(msg.get("t")),
        price=_number(msg, "p"),
        size=_number(msg, "s"),
        trade_id=trade_id(exchange, msg.get("i")),
        exchange=str(exchange) if exchange else None,
        conditions=_conditions(msg, "c"),
        side=TAKER_SIDES.get(taker) if isinstance(taker, str) else None,
    )


def parse_correction(msg: Mapping[str, Any]) -> TradeAmendment:
    """A ``T: c`` message: the print ``oi`` (price ``op``, size ``os``, conditions ``oc``)
    was wrong and is ``ci`` (``cp``, ``cs``, ``cc``); ids are per exchange, as for trades."""
    exchange = msg.get("x")
    return TradeAmendment(
        symbol=_symbol(msg),
        ts=to_utc(msg.get("t")),
        kind="correction",
        trade_id=trade_id(exchange, msg.get("oi")),
        price=_number(msg, "op"),
        size=_number(msg, "os"),
        conditions=_conditions(msg, "oc"),
        corrected_trade_id=trade_id(exchange, msg.get("ci")),
        corrected_price=_number(msg, "cp"),
        corrected_size=_number(msg, "cs"),
        corrected_conditions=_conditions(msg, "cc"),
        exchange=str(exchange) if exchange else None,
        tape=str(msg["z"]) if msg.get("z") else None,
    )


CANCEL_ACTIONS = {"C": "cancel", "E": "error"}


def parse_cancel(msg: Mapping[str, Any]) -> TradeAmendment:
    """A ``T: x`` message: the print ``i`` was cancelled (``a: C``) or an error (``E``)."""
    action = msg.get("a")
    if action not in CANCEL_ACTIONS:
        raise ValueError(f"a (action) {action!r} is neither C nor E")
    exchange = msg.get("x")
    return TradeAmendment(
        symbol=_symbol(msg),
        ts=to_utc(msg.get("t")),
        kind=CANCEL_ACTIONS[action],
        trade_id=trade_id(exchange, msg.get("i")),
        price=_number(msg, "p"),
        size=_number(msg, "s"),
        exchange=str(exchange) if exchange else None,
        tape=str(msg["z"]) if msg.get("z") else None,
    )


def parse_quote(msg: Mapping[str, Any]) -> Quote:
    return Quote(
        symbol=_symbol(msg),
        ts=to_utc(msg.get("t")),
        bid=_number(msg, "bp"),
        ask=_number(msg, "ap"),
        bid_size=_number(msg, "bs") if "bs" in msg else 0.0,
        ask_size=_number(msg, "as") if "as" in msg else 0.0,
    )


def rest_trades(payload: Mapping[str, Any]) -> Iterable[tuple[str, Mapping[str, Any]]]:
    """(symbol, trade object) pairs of a ``/v2/stocks/trades`` or ``/v1beta3/crypto/us/trades``
    answer (raw alpaca-py data)."""
    for symbol, items in payload.items():
        if isinstance(items, list):
            for item in items:
                yield symbol, item


# --- exactly once -------------------------------------------------------------------------


class TradeDeduper:
    """Remembers recently emitted trade keys so the gap fill and the live stream, which
    overlap on purpose, emit each print once.

    Keys older than ``retention_s`` behind the newest print are forgotten, except while a
    gap fill is pending: ``hold(since)`` keeps every key from ``since`` on until
    ``release(since)``, however long the outage was (the overlap window before the drop is
    exactly where the gap fill repeats prints already streamed). ``max_keys`` bounds memory
    whatever happens."""

    def __init__(self, retention_s: float = 60.0, max_keys: int = 1_000_000) -> None:
        self.retention_s = retention_s
        self.max_keys = max_keys
        self._keys: OrderedDict[tuple[str, str], float] = OrderedDict()
        self._newest = float("-inf")
        self._holds: list[float] = []
        self.duplicates = 0

    def first_time(self, trade: Trade) -> bool:
        """True (and remembered) the first time a (symbol, trade_id) is seen."""
        key = (trade.symbol, trade.trade_id or "")
        if key in self._keys:
            self.duplicates += 1
            return False
        ts = trade.ts.timestamp()
        self._keys[key] = ts
        self._newest = max(self._newest, ts)
        if len(self._keys) > self.max_keys or len(self._keys) % 4096 == 0:
            self._prune()
        return True

    def hold(self, since: datetime) -> None:
        self._holds.append(since.timestamp())

    def release(self, since: datetime) -> None:
        with contextlib.suppress(ValueError):
            self._holds.remove(since.timestamp())

    def _prune(self) -> None:
        horizon = min([self._newest - self.retention_s, *self._holds])
        # insertion order is roughly time order: drop from the front while old
        while self._keys:
            _key, ts = next(iter(self._keys.items()))
            if ts >= horizon and len(self._keys) <= self.max_keys:
                break
            self._keys.popitem(last=False)

    def __len__(self) -> int:
        return len(self._keys)


def describe_error(exc: BaseException) -> str:
    """An exception for the log: its text, else its type, at most 200 characters."""
    text = str(exc) or type(exc).__name__
    return text[:200]
