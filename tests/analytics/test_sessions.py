"""Market sessions from exchange calendars (docs/semantics.md) and naked POCs."""

from __future__ import annotations

from datetime import date

import pandas as pd
import pytest

from analytics.composite import naked_pocs
from analytics.sessions import (
    UnknownMarketError,
    market_timezone,
    session_bounds,
    sessions_between,
)


def utc(text: str) -> pd.Timestamp:
    return pd.Timestamp(text, tz="UTC")


@pytest.mark.parametrize(
    ("day", "open_", "close"),
    [
        ("2024-03-08", "2024-03-08 14:30", "2024-03-08 21:00"),  # EST, before the DST switch
        ("2024-03-11", "2024-03-11 13:30", "2024-03-11 20:00"),  # EDT, after it
        ("2024-11-01", "2024-11-01 13:30", "2024-11-01 20:00"),  # EDT, before the fall back
        ("2024-11-04", "2024-11-04 14:30", "2024-11-04 21:00"),  # EST, after it
        ("2024-11-29", "2024-11-29 14:30", "2024-11-29 18:00"),  # day after Thanksgiving 13:00
        ("2024-07-03", "2024-07-03 13:30", "2024-07-03 17:00"),  # early close 13:00 EDT
    ],
)
def test_xnys_sessions_in_utc(day: str, open_: str, close: str) -> None:
    assert session_bounds("XNYS", date.fromisoformat(day)) == (utc(open_), utc(close))


def test_xnys_closed_days() -> None:
    assert session_bounds("XNYS", date(2024, 7, 4)) is None  # Independence Day
    assert session_bounds("XNYS", date(2024, 12, 25)) is None
    assert session_bounds("XNYS", date(2024, 3, 9)) is None  # Saturday
    assert sessions_between("XNYS", date(2024, 7, 1), date(2024, 7, 8)) == [
        date(2024, 7, 1),
        date(2024, 7, 2),
        date(2024, 7, 3),
        date(2024, 7, 5),
        date(2024, 7, 8),
    ]


def test_xlon_sessions() -> None:
    assert session_bounds("XLON", date(2024, 1, 15)) == (
        utc("2024-01-15 08:00"),
        utc("2024-01-15 16:30"),
    )
    assert session_bounds("XLON", date(2024, 7, 1)) == (  # BST: 08:00 London = 07:00 UTC
        utc("2024-07-01 07:00"),
        utc("2024-07-01 15:30"),
    )
    assert session_bounds("XLON", date(2024, 3, 29)) is None  # Good Friday
    assert session_bounds("XLON", date(2024, 12, 24))[1] == utc("2024-12-24 12:30")
    assert market_timezone("XLON") == "Europe/London"


def test_always_open_market_is_the_utc_day() -> None:
    assert session_bounds("24/7", date(2024, 7, 6)) == (
        utc("2024-07-06 00:00"),
        utc("2024-07-07 00:00"),
    )
    assert session_bounds("24/7", "2024-12-25") == (utc("2024-12-25"), utc("2024-12-26"))
    assert market_timezone("24/7") == "UTC"
    assert market_timezone("XNYS") == "America/New_York"


def test_unknown_market_and_out_of_range_day() -> None:
    with pytest.raises(UnknownMarketError, match="XNYS"):
        session_bounds("XTKS", date(2024, 1, 4))
    with pytest.raises(ValueError, match="outside"):
        session_bounds("XNYS", date(1990, 1, 2))


def test_naked_pocs_until_traded_through_by_a_later_session() -> None:
    prior = pd.DataFrame(
        {
            "session_date": [date(2024, 3, 11), date(2024, 3, 12), date(2024, 3, 13)],
            "poc": [100.0, 105.0, 101.02],
        }
    )
    ranges = pd.DataFrame(
        {
            "session_date": [
                date(2024, 3, 11),
                date(2024, 3, 12),
                date(2024, 3, 12),
                date(2024, 3, 13),
                date(2024, 3, 14),
            ],
            "bucket": [
                utc("2024-03-11 15:00"),
                utc("2024-03-12 14:00"),
                utc("2024-03-12 14:01"),
                utc("2024-03-13 14:00"),
                utc("2024-03-14 14:00"),
            ],
            "low": [99.0, 101.0, 99.5, 103.0, 101.021],
            "high": [101.0, 102.0, 100.5, 104.0, 101.5],
        }
    )
    result = naked_pocs(prior, ranges)
    # 100 (3/11): its own session does not count; first touched on 3/12 at 14:01
    assert result.touched_at.tolist()[0] == utc("2024-03-12 14:01")
    assert pd.isna(result.touched_at.iloc[1])  # 105 never traded again: naked
    assert pd.isna(result.touched_at.iloc[2])  # 101.02 < low 101.021 by price …
    by_bin = naked_pocs(prior, ranges, row_size=0.01)
    assert by_bin.touched_at.iloc[2] == utc("2024-03-14 14:00")  # … but inside the same bin
    assert naked_pocs(prior.iloc[:0], ranges).empty
