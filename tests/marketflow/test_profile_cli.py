"""``marketflow profile`` against a real PostgreSQL with inserted ticks."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import psycopg
import pytest

from analytics.pipeline import compute_session
from analytics.profile import metrics_of
from core.settings import get_settings
from marketflow.cli import main
from tests.support.captures import eth_ticks


@pytest.fixture
def cli_db(db_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[str]:
    monkeypatch.setenv("DATABASE_URL", db_url)
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:9/0")  # resolved, never used here
    monkeypatch.setenv("MARKETFLOW_HOME", str(tmp_path / "home"))
    get_settings.cache_clear()
    yield db_url
    get_settings.cache_clear()


def insert_ticks(url: str, symbol: str, ticks: pd.DataFrame) -> int:
    with psycopg.connect(url, autocommit=True) as conn:
        symbol_id = conn.execute("select id from symbols where symbol = %s", (symbol,)).fetchone()[
            0
        ]
        days = ticks["ts"].dt.date
        conn.execute("select ensure_tick_partitions(%s, %s)", (days.min(), days.max()))
        side = ticks["side"] if "side" in ticks else pd.Series([None] * len(ticks))
        rows = [
            (
                symbol_id,
                ts.to_pydatetime(),
                f"t{i}",
                float(p),
                float(s),
                None if pd.isna(d) else int(d),
            )
            for i, (ts, p, s, d) in enumerate(
                zip(ticks["ts"], ticks["price"], ticks["size"], side, strict=True)
            )
        ]
        with conn.cursor() as cur:
            cur.executemany(
                "insert into ticks (symbol_id, ts, trade_id, price, size, side)"
                " values (%s, %s, %s, %s, %s, %s)",
                rows,
            )
    return symbol_id


def test_session_profile_of_real_eth_trades(cli_db: str, captures: Path, capsys) -> None:
    ticks = eth_ticks(captures)
    insert_ticks(cli_db, "ETHUSDT", ticks)
    assert main(["profile", "--symbol", "ethusdt", "--rows", "50"]) == 0
    out = capsys.readouterr().out
    day = pd.Timestamp("2023-02-02", tz="UTC")
    frames = compute_session(ticks, 0.05, day, day + pd.Timedelta(days=1))
    last = frames.profile_metrics[frames.profile_metrics.horizon == "session"].iloc[-1]
    assert "ETHUSDT · session profile · 24/7 (UTC) · 2023-02-02 00:00–24:00 UTC" in out
    assert f"POC {last.poc:.2f} · VA {last.val:.2f}–{last.vah:.2f} (single)" in out
    assert "trades 1,000" in out
    lines = out.splitlines()
    bins = [line for line in lines if "│" in line]
    assert len(bins) == 23  # every bin from the lowest to the highest, one line each
    assert float(bins[0].split()[0]) > float(bins[-1].split()[0])  # high prices on top
    poc_line = next(line for line in bins if "POC" in line)
    assert poc_line.strip().startswith(f"{last.poc:.2f}")
    assert "█" in poc_line
    at_1666_20 = next(line for line in bins if line.strip().startswith("1666.20"))
    assert "286.492" in at_1666_20 and "buy  31%" in at_1666_20  # 88.98 of 286.492
    if last.hvns:
        assert "HVNs:" in out
    # the nodes are the symbol's parameters': two of each by default, one with node_count 1
    assert [node_count(out, name) for name in ("HVNs:", "LVNs:")] == [2, 2]
    with psycopg.connect(cli_db, autocommit=True) as conn:
        conn.execute(
            "insert into footprint_config (symbol_id, node_count) "
            "select id, 1 from symbols where symbol = 'ETHUSDT'"
        )
    assert main(["profile", "--symbol", "ethusdt", "--rows", "50"]) == 0
    one = capsys.readouterr().out
    assert [node_count(one, name) for name in ("HVNs:", "LVNs:")] == [1, 1]


def node_count(out: str, name: str) -> int:
    """Nodes listed on the profile's "HVNs:" / "LVNs:" line: "price (low–high), …"."""
    return sum(line.count("(") for line in out.splitlines() if line.startswith(name))


def test_equity_times_in_new_york_and_1m_minute(cli_db: str, capsys) -> None:
    rng = np.random.default_rng(4)
    n = 600
    seconds = np.sort(rng.integers(0, 20 * 60, n))
    ticks = pd.DataFrame(
        {
            "ts": pd.Timestamp("2024-03-11 13:30", tz="UTC") + pd.to_timedelta(seconds, "s"),
            "price": 170 + np.cumsum(rng.choice([-0.01, 0, 0.01], n)),
            "size": rng.integers(1, 300, n).astype(float),
        }
    )
    insert_ticks(cli_db, "AAPL", ticks)
    assert main(["profile", "--symbol", "AAPL", "--date", "2024-03-11"]) == 0
    out = capsys.readouterr().out
    # 13:30 UTC in March after the DST switch is 09:30 EDT
    assert "2024-03-11 09:30–16:00 EDT, up to 09:50" in out

    assert (
        main(
            [
                "profile",
                "--symbol",
                "AAPL",
                "--date",
                "2024-03-11",
                "--horizon",
                "1m",
                "--minute",
                "09:35",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "minute 09:35" in out
    minute = ticks[
        (ticks.ts >= pd.Timestamp("2024-03-11 13:35", tz="UTC"))
        & (ticks.ts < pd.Timestamp("2024-03-11 13:36", tz="UTC"))
    ]
    bins = np.round(minute.price.to_numpy() / 0.01).astype(int)
    expected = metrics_of(np.bincount(bins - bins.min(), weights=minute["size"]), bins.min(), 0.01)
    assert f"POC {expected.poc:.2f} · VA {expected.val:.2f}–{expected.vah:.2f}" in out
    assert f"trades {len(minute)}" in out

    assert main(["profile", "--symbol", "AAPL", "--date", "2024-07-04"]) == 1
    assert "no session on 2024-07-04" in capsys.readouterr().out
    assert main(["profile", "--symbol", "NOPE"]) == 1
    assert "unknown symbol" in capsys.readouterr().out


def test_composite_and_stored_source(cli_db: str, capsys) -> None:
    days = ["2024-03-08", "2024-03-11", "2024-03-12"]  # a Friday, then Monday, Tuesday
    frames_by_day = {}
    all_ticks = []
    for k, day in enumerate(days):
        start = pd.Timestamp(f"{day} 14:30", tz="UTC")
        ticks = pd.DataFrame(
            {
                "ts": [start + pd.Timedelta(seconds=s) for s in (0, 10, 20, 70)],
                "price": [50.0 + k, 50.5 + k, 50.5 + k, 51.0 + k],
                "size": [10.0, 30.0, 5.0, 1.0],
            }
        )
        all_ticks.append(ticks)
    symbol_id = insert_ticks(cli_db, "MSFT", pd.concat(all_ticks, ignore_index=True))
    assert main(["profile", "--symbol", "MSFT", "--horizon", "composite", "--sessions", "3"]) == 0
    out = capsys.readouterr().out
    assert "3 sessions 2024-03-08 … 2024-03-12" in out
    # composite bins 50.00 … 53.00: the heaviest is 50.5+k summed… each day 35 at a
    # different price, so the tie goes to the one nearest the middle (51.50)
    assert "POC 51.50" in out

    # stored rows (what the assets write) give the same session profile as the ticks
    for day, ticks in zip(days, all_ticks, strict=True):
        start = pd.Timestamp(day, tz="UTC")
        frames_by_day[day] = compute_session(
            ticks, 0.01, start + pd.Timedelta(hours=13), start + pd.Timedelta(hours=21)
        )
    with psycopg.connect(cli_db, autocommit=True) as conn, conn.cursor() as cur:
        vp = frames_by_day["2024-03-12"].volume_profile
        cur.executemany(
            "insert into volume_profile (symbol_id, bucket, price_level, total_volume,"
            " buy_volume, sell_volume, trade_count) values (%s, %s, %s, %s, %s, %s, %s)",
            [
                (
                    symbol_id,
                    r.bucket.to_pydatetime(),
                    r.price_level,
                    r.total_volume,
                    r.buy_volume,
                    r.sell_volume,
                    int(r.trade_count),
                )
                for r in vp.itertuples()
            ],
        )
    assert main(["profile", "--symbol", "MSFT", "--source", "stored"]) == 0
    stored = capsys.readouterr().out
    assert main(["profile", "--symbol", "MSFT"]) == 0
    computed = capsys.readouterr().out
    assert stored == computed
    assert "POC 52.50" in computed


def test_default_day_is_the_utc_day_whatever_the_server_timezone(cli_db: str, capsys) -> None:
    """The default session is the UTC day of the last tick; a server (or database) whose
    TimeZone is not UTC returns timestamptz in that zone, and its local date is another
    day for a 24/7 market's late-evening prints."""
    ts = pd.to_datetime(["2023-02-03 01:00:00", "2023-02-03 01:00:05"], utc=True)
    ticks = pd.DataFrame({"ts": ts, "price": [1600.0, 1600.05], "size": [1.0, 2.0]})
    insert_ticks(cli_db, "ETHUSDT", ticks)
    with psycopg.connect(cli_db, autocommit=True) as conn:
        name = conn.execute("select current_database()").fetchone()[0]
        conn.execute(f"alter database \"{name}\" set timezone to 'America/New_York'")
    assert main(["profile", "--symbol", "ETHUSDT"]) == 0
    out = capsys.readouterr().out
    assert "2023-02-03 00:00–24:00 UTC" in out  # not 2023-02-02, New York's date
    assert "trades 2" in out


def test_default_day_after_an_after_hours_print_is_that_market_day(cli_db: str, capsys) -> None:
    """Friday 19:30 New York is Saturday 00:30 UTC: the default session is the market's
    date of the last print (Friday), not the UTC date (a Saturday without a session)."""
    ts = pd.to_datetime(["2024-03-08 15:00:00", "2024-03-08 15:00:30", "2024-03-09 00:30:00"])
    ticks = pd.DataFrame({"ts": ts.tz_localize("UTC"), "price": [50.0, 50.1, 50.2], "size": 1.0})
    insert_ticks(cli_db, "AAPL", ticks)
    assert main(["profile", "--symbol", "AAPL"]) == 0
    out = capsys.readouterr().out
    assert "2024-03-08 09:30–16:00 EST" in out
    assert "trades 2" in out  # the after-hours print is outside the session
