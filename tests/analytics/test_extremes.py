"""Initial balance and unfinished auctions (docs/semantics.md) on hand-built sessions."""

from __future__ import annotations

import numpy as np
import pandas as pd

from analytics.pipeline import compute_session
from analytics.sessions import session_bounds

OPEN, CLOSE = session_bounds("XNYS", "2024-03-11")  # 13:30–20:00 UTC


def ticks(
    prints: list[tuple[int, float, float, float]], open_: pd.Timestamp = OPEN
) -> pd.DataFrame:
    """(minute, price, size, venue side) prints."""
    return pd.DataFrame(
        {
            "ts": [
                open_ + pd.Timedelta(minutes=m, milliseconds=k) for k, (m, *_) in enumerate(prints)
            ],
            "price": [p[1] for p in prints],
            "size": [p[2] for p in prints],
            "side": [p[3] for p in prints],
        }
    )


def session_rows(frames) -> pd.DataFrame:
    metrics = frames.profile_metrics
    return metrics[metrics["horizon"] == "session"].set_index("bucket")


def test_initial_balance_is_the_first_hours_range_then_extensions() -> None:
    prints = [
        (0, 100.00, 1, 1),
        (30, 100.50, 1, 1),
        (59, 99.80, 1, -1),  # the IB: 99.80–100.50
        (60, 101.00, 1, 1),  # after the first hour: an extension up, the IB stays
        (90, 99.50, 1, -1),
    ]
    rows = session_rows(compute_session(ticks(prints), 0.01, OPEN, CLOSE))
    at = {m: rows.loc[OPEN + pd.Timedelta(minutes=m)] for m in (0, 30, 59, 60, 90)}
    assert (at[0].ib_low, at[0].ib_high) == (100.0, 100.0)  # forming: the rows so far
    assert (at[30].ib_low, at[30].ib_high) == (100.0, 100.5)
    assert (at[59].ib_low, at[59].ib_high) == (99.8, 100.5)
    assert (at[60].ib_low, at[60].ib_high) == (99.8, 100.5)
    assert (at[59].ib_extension_up, at[59].ib_extension_down) == (0.0, 0.0)
    assert (at[60].ib_extension_up, at[60].ib_extension_down) == (0.5, 0.0)
    assert (at[90].ib_extension_up, at[90].ib_extension_down) == (0.5, 0.3)
    # a minute's own profile has no initial balance
    one = compute_session(ticks(prints), 0.01, OPEN, CLOSE).profile_metrics
    assert one.loc[one["horizon"] == "1m", "ib_high"].isna().all()


def test_a_24_7_market_takes_the_first_hour_of_the_utc_day() -> None:
    day = pd.Timestamp("2024-03-11", tz="UTC")
    late = ticks([(600, 50.0, 1, 1), (601, 51.0, 1, 1)], open_=day)
    rows = session_rows(compute_session(late, 0.5, day, day + pd.Timedelta(days=1)))
    assert rows["ib_high"].isna().all()  # nothing traded 00:00–01:00 UTC: no IB
    early = ticks([(10, 50.0, 1, 1), (70, 52.0, 1, 1)], open_=day)
    rows = session_rows(compute_session(early, 0.5, day, day + pd.Timedelta(days=1)))
    assert (rows["ib_high"].iloc[-1], rows["ib_extension_up"].iloc[-1]) == (50.0, 2.0)


def test_unfinished_auction_at_a_bar_extreme_needs_both_sides() -> None:
    prints = [
        (0, 10.02, 3, 1),
        (0, 10.02, 1, -1),  # the high row traded both ways: unfinished
        (0, 10.00, 2, -1),  # the low row only sellers: finished
        (1, 10.05, 1, 1),
        (1, 10.04, 1, 1),
    ]
    frames = compute_session(ticks(prints), 0.01, OPEN, CLOSE)
    one = frames.profile_metrics[frames.profile_metrics["horizon"] == "1m"]
    assert one[["unfinished_high", "unfinished_low"]].values.tolist() == [
        [True, False],
        [False, False],
    ]
    # the session through minute 1: its high (10.05) only bought, its low (10.00) only sold
    rows = session_rows(frames)
    assert rows[["unfinished_high", "unfinished_low"]].values.tolist() == [
        [True, False],
        [False, False],
    ]


def test_a_session_extreme_counts_both_sides_over_every_minute() -> None:
    prints = [(0, 10.00, 1, 1), (0, 10.02, 1, 1), (3, 10.00, 1, -1), (3, 10.01, 1, 1)]
    rows = session_rows(compute_session(ticks(prints), 0.01, OPEN, CLOSE))
    # the low row: bought at minute 0, sold at minute 3 → unfinished from minute 3
    assert rows["unfinished_low"].tolist() == [False, False, False, True]
    assert not rows["unfinished_high"].any()


def test_candle_fallback_bars_never_make_an_unfinished_auction() -> None:
    candles = pd.DataFrame(
        {
            "ts": [OPEN],
            "open": [10.0],
            "high": [10.03],
            "low": [9.98],
            "close": [10.02],
            "volume": [60.0],
        }
    )
    empty = ticks([]).astype({"price": float, "size": float, "side": float})
    frames = compute_session(empty, 0.01, OPEN, CLOSE, candles=candles)
    metrics = frames.profile_metrics
    assert not metrics["unfinished_high"].any() and not metrics["unfinished_low"].any()
    assert (metrics.loc[metrics["horizon"] == "session", "ib_high"] == 10.03).all()
    assert np.isnan(frames.order_flow["max_delta"]).all()
