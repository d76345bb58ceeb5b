"""``marketflow replay``: the ETH/USDT capture through the ingest path, twice."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import numpy as np
import pandas as pd
import psycopg
import pytest

from core.settings import get_settings
from marketflow import cli
from streaming.ingest.config import PipelineConfig
from streaming.ingest.pipeline import IngestPipeline
from streaming.providers.base import ProviderError
from streaming.providers.replay import ReplayProvider, parse_timestamps, read_trades

pytestmark = pytest.mark.timeout(90)


def eth_file(captures: Path) -> Path:
    return captures / "trades" / "ethusdt_1000_trades.csv"


def stored(url: str, symbol: str) -> pd.DataFrame:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "select t.ts, t.trade_id, t.price, t.size, t.side from ticks t"
            " join symbols s on s.id = t.symbol_id where s.symbol = %s order by t.ts, t.seq",
            (symbol,),
        ).fetchall()
    return pd.DataFrame(rows, columns=["ts", "trade_id", "price", "size", "side"])


def test_timestamps_by_magnitude_and_iso() -> None:
    expect = 1_675_329_600_138_000_000
    for raw in ("1675329600.138", "1675329600138", "1675329600138000", str(expect)):
        assert parse_timestamps(pd.Series([raw]))[0] == expect
    iso = parse_timestamps(pd.Series(["2023-02-02 09:20:00.138000+00:00", "garbage"]))
    assert iso[0] == expect and iso[1] == -1
    naive = parse_timestamps(pd.Series(["2023-02-02T09:20:00.138"]))
    assert naive[0] == expect  # naive ISO means UTC


def test_reader_needs_a_symbol(captures: Path, tmp_path: Path) -> None:
    with pytest.raises(ProviderError, match="--symbol"):
        read_trades(eth_file(captures), None)
    frame = read_trades(eth_file(captures), "ethusdt")
    assert len(frame) == 1000 and set(frame["side"]) == {1, -1}
    with pytest.raises(ProviderError, match="unknown market"):
        ReplayProvider(eth_file(captures), symbol="ETHUSDT", market="NYSE")
    bad = tmp_path / "bad.csv"
    bad.write_text("when,price\n1,2\n")
    with pytest.raises(ProviderError, match="ts"):
        read_trades(bad, "X")


def test_eth_replay_stores_1000_ticks_with_sides_and_is_idempotent(
    db_url: str, redis_url: str, captures: Path, tmp_path: Path
) -> None:
    cfg = PipelineConfig(source="replay", spool_dir=tmp_path / "spool", flush_rows=300)

    async def replay() -> IngestPipeline:
        provider = ReplayProvider(eth_file(captures), symbol="ETHUSDT", market="24/7", chunk=256)
        pipe = IngestPipeline(db_url, redis_url, cfg)
        await pipe.run(provider)
        return pipe

    first = asyncio.run(asyncio.wait_for(replay(), 30))
    assert first.counters.stored == 1000 and first.counters.duplicates == 0
    ticks = stored(db_url, "ETHUSDT")
    assert len(ticks) == 1000
    raw = pd.read_csv(eth_file(captures))
    assert sorted(ticks["trade_id"]) == sorted(raw["id"].astype(str))
    side = ticks.set_index("trade_id")["side"]
    want = raw.set_index(raw["id"].astype(str))["side"].map({"buy": 1, "sell": -1})
    assert (side.sort_index() == want.sort_index()).all()
    # the file's facts (data/README.md), 0.05 bins: at 1666.20 sellers 197.512, buyers 88.98
    at = ticks[np.round(ticks["price"] / 0.05) == round(1666.20 / 0.05)]
    assert at.loc[at["side"] == -1, "size"].sum() == pytest.approx(197.512)
    assert at.loc[at["side"] == 1, "size"].sum() == pytest.approx(88.98)
    with psycopg.connect(db_url) as conn:
        market, tz, asset = conn.execute(
            "select market, timezone, asset_type from symbols where symbol = 'ETHUSDT'"
        ).fetchone()
        assert (market, tz, asset) == ("24/7", "UTC", "crypto")
        candles_before = conn.execute(
            "select ts, open, high, low, close, volume, trade_count from candles_1m c"
            " join symbols s on s.id = c.symbol_id where s.symbol = 'ETHUSDT' order by ts"
        ).fetchall()
    # 09:20:00.138 … 09:23:27.493 → four minutes; volume is conserved
    assert len(candles_before) == 4
    assert sum(c[5] for c in candles_before) == pytest.approx(raw["amount"].sum())
    assert sum(c[6] for c in candles_before) == 1000
    assert candles_before[0][1] == pytest.approx(1666.8)  # first print of the file

    second = asyncio.run(asyncio.wait_for(replay(), 30))
    assert second.counters.stored == 0 and second.counters.duplicates == 1000
    assert len(stored(db_url, "ETHUSDT")) == 1000
    with psycopg.connect(db_url) as conn:
        candles_after = conn.execute(
            "select ts, open, high, low, close, volume, trade_count from candles_1m c"
            " join symbols s on s.id = c.symbol_id where s.symbol = 'ETHUSDT' order by ts"
        ).fetchall()
    assert [c[:5] for c in candles_after] == [c[:5] for c in candles_before]
    assert [c[5] for c in candles_after] == pytest.approx([c[5] for c in candles_before])


def test_replay_command_new_symbol_24_7(
    db_url: str,
    redis_url: str,
    captures: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # the first 200 rows as Parquet under a symbol nobody seeded, ISO timestamps
    raw = pd.read_csv(eth_file(captures)).head(200)
    frame = pd.DataFrame(
        {"ts": raw["date"], "symbol": "SOLUSDT", "price": raw["price"],
         "size": raw["amount"], "side": raw["side"], "trade_id": raw["id"]}
    )  # fmt: skip
    path = tmp_path / "sol.parquet"
    frame.to_parquet(path)
    monkeypatch.setenv("DATABASE_URL", db_url)
    monkeypatch.setenv("REDIS_URL", redis_url)
    monkeypatch.setenv("MARKETFLOW_HOME", str(tmp_path / "home"))
    get_settings.cache_clear()
    try:
        assert cli.main(["replay", str(path), "--market", "24/7", "--fast"]) == 0
        assert cli.main(["replay", str(path), "--market", "24/7"]) == 0
    finally:
        get_settings.cache_clear()
    err = capsys.readouterr().err
    assert "200 stored" in err and "200 duplicates" in err
    assert len(stored(db_url, "SOLUSDT")) == 200
    with psycopg.connect(db_url) as conn:
        row = conn.execute(
            "select market, timezone, asset_type, provider from symbols where symbol = 'SOLUSDT'"
        ).fetchone()
    assert row == ("24/7", "UTC", "crypto", "replay")


def test_recorded_speed_paces_the_replay(db_url: str, captures: Path, tmp_path: Path) -> None:
    # the first 300 prints span ~50 s of trading; at 200× that is ~0.25 s of wall time
    raw = pd.read_csv(eth_file(captures)).head(300)
    path = tmp_path / "eth300.csv"
    raw.to_csv(path, index=False)
    span_s = (raw["timestamp"].max() - raw["timestamp"].min()) / 1000.0
    cfg = PipelineConfig(source="replay", spool_dir=tmp_path / "spool", flush_ms=20)

    async def replay() -> tuple[float, IngestPipeline]:
        provider = ReplayProvider(path, symbol="ETHUSDT", speed=200.0)
        pipe = IngestPipeline(db_url, None, cfg)
        await pipe.start(provider)
        t0 = time.monotonic()
        await pipe.run(provider)
        return time.monotonic() - t0, pipe

    elapsed, pipe = asyncio.run(asyncio.wait_for(replay(), 30))
    assert pipe.counters.stored == 300
    assert elapsed >= 0.8 * span_s / 200.0
