"""Chaos run: the demo feed's sequence accounting, the checks (each able to fail), the fault
schedule, the soak bound, and the short forms of `marketflow chaos` end to end."""

from __future__ import annotations

import asyncio
import itertools
import json
import re
import subprocess
import sys
import textwrap
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest

from core.events import Trade
from marketflow.chaos.faults import CYCLE, MIN_SPACING_S, RECOVERY_S, WARMUP_S, schedule
from marketflow.chaos.soak import (
    CONN_SLACK,
    DAGSTER_DB,
    MARKET_DB,
    TICKS,
    Sample,
    judge,
    start_end,
)
from marketflow.chaos.verify import (
    altered_ticks,
    candle_mismatches,
    count_ticks,
    tick_accounting,
)
from streaming.providers.base import TradeBatch
from streaming.providers.demo import NS, DemoProvider, run_prints
from streaming.providers.demo_run import (
    LEDGER_FILE,
    RunLog,
    merge,
    read_ledger,
    request_disconnect,
)
from tests.support.paths import REPO

REPORT = re.compile(
    r"^chaos: faults (\d+), ticks emitted (\d+), stored (\d+), lost (\d+), duplicated (\d+), "
    r"candle mismatches (\d+), orphans (\d+)$"
)


def test_merge_ranges() -> None:
    assert merge([(5, 9), (0, 3), (3, 4), (8, 12), (20, 20)]) == [(0, 4), (5, 12)]


def test_run_log_writes_what_was_taken_and_reads_back(tmp_path: Path) -> None:
    log = RunLog(tmp_path, "abc")
    log.took("AAPL", 0, 5)
    log.took("AAPL", 5, 9)  # contiguous: one range
    log.took("BTCUSD", 0, 2)
    log.write()
    log.write()  # nothing pending: no line
    log.took("AAPL", 20, 22)
    log.close()
    lines = (tmp_path / LEDGER_FILE).read_text().splitlines()
    assert len(lines) == 2 and json.loads(lines[0])["ranges"] == {"AAPL": [0, 9], "BTCUSD": [0, 2]}
    with open(tmp_path / LEDGER_FILE, "a") as fh:
        fh.write('{"pid": 1, "tag": "abc", "ranges": {"AAPL": [9')  # torn by a kill
    tags, emitted = read_ledger(tmp_path / LEDGER_FILE)
    assert tags == {"abc"} and emitted == {"AAPL": [(0, 9), (20, 22)], "BTCUSD": [(0, 2)]}


def test_disconnect_control(tmp_path: Path) -> None:
    log = RunLog(tmp_path, "t")
    assert not log.disconnected(10 * NS)
    request_disconnect(tmp_path, 2.0)
    assert not log.disconnected(10 * NS + 1)  # looked less than a second ago
    assert log.disconnected(11 * NS)
    assert log.disconnected(12 * NS + NS // 2) and not log.disconnected(13 * NS + 1)
    assert log.disconnects == 1 and not any(tmp_path.iterdir())  # the request was consumed


async def _take(
    provider: DemoProvider, seconds: float, prices: dict[tuple[str, int], float] | None = None
) -> list[tuple[str, str]]:
    """The (symbol, trade_id) the provider emitted in ``seconds``; prices by sequence."""
    ids: list[tuple[str, str]] = []
    seen = prices if prices is not None else {}

    async def consume() -> None:
        async for event in provider.stream():
            if isinstance(event, Trade):
                pairs = [(str(event.trade_id), event.price)]
            elif isinstance(event, TradeBatch) and event.trade_id is not None:
                pairs = [
                    (str(t), float(p)) for t, p in zip(event.trade_id, event.price, strict=True)
                ]
            else:
                continue
            for trade_id, price in pairs:
                ids.append((event.symbol, trade_id))
                seen[(event.symbol, int(trade_id.rsplit("-", 1)[1]))] = price

    task = asyncio.create_task(consume())
    await asyncio.sleep(seconds)
    provider.stop()
    await task
    return ids


def test_replayable_demo_resends_the_same_trades_and_resumes_after_a_drop(
    tmp_path: Path,
) -> None:
    start = time.time_ns() - 3 * NS

    def provider() -> DemoProvider:
        symbols = ["BTCUSD", "AAPL"]
        return DemoProvider(symbols, rate=20, start_ns=start, run_dir=tmp_path, shaped=False)

    first = asyncio.run(_take(provider(), 0.6))
    again = provider()  # a restarted ingest: the same ids from the run's start on
    request_disconnect(tmp_path, 1.0)
    prices: dict[tuple[str, int], float] = {}
    second = asyncio.run(_take(again, 1.8, prices))
    assert again.counters["disconnects"] == 1
    assert first and set(first) <= set(second) and len(set(second)) == len(second)
    tags, emitted = read_ledger(tmp_path / LEDGER_FILE)
    assert tags == {format(start // NS, "x")}
    by_symbol: dict[str, list[int]] = {}
    for symbol, trade_id in second:
        by_symbol.setdefault(symbol, []).append(int(trade_id.rsplit("-", 1)[1]))
    for symbol, seqs in by_symbol.items():  # no gap across the drop, ledger matches
        assert seqs == list(range(len(seqs)))
        assert emitted[symbol] == [(0, len(seqs))]
        # the checker regenerates the same prints from seed, rate and start alone
        path = run_prints(symbol, rate=20, seed=7, start_ns=start, count=len(seqs))
        assert path.ts_ns.size == len(seqs)
        assert [prices[(symbol, n)] for n in seqs] == path.price.tolist()


def test_count_ticks() -> None:
    emitted = {"A": [(0, 5), (7, 9)], "B": [(0, 3)]}
    stored = [("A", f"t-{n}") for n in (0, 1, 2, 3, 4, 4, 7, 11)]
    stored += [("B", "t-0"), ("B", "t-2"), ("B", "x-1"), ("C", "t-0")]
    c = count_ticks(emitted, {"t"}, stored)
    # A: 7 emitted, 6 of them stored (8 missing), 4 twice, 11 never emitted;
    # B: 3 emitted, 1 lost; "x-1" is another run's id; C's 0 was never emitted
    assert (c.emitted, c.stored, c.lost, c.duplicated) == (10, 10, 2, 1)
    assert (c.unexpected, c.foreign) == (2, 1)


def test_fault_schedule_covers_every_kind_spaced_inside_the_window() -> None:
    plan = schedule(2)
    assert {p.kind for p in plan} == set(CYCLE) and len(plan) == len(CYCLE) == 9
    assert {"both-down", "spool-full", "ingest-in-outage"} <= set(CYCLE)  # overlapping ones
    times = [p.at for p in plan]
    assert times[0] == WARMUP_S and times[-1] < 120 - RECOVERY_S
    assert all(b - a >= MIN_SPACING_S for a, b in itertools.pairwise(times))
    assert schedule(0.5) == []


def test_long_run_spaces_postgres_crashes_so_its_backoff_resets() -> None:
    """A long run crashes PostgreSQL about a minute apart: `up`'s restart backoff for a
    server resets after 30 s of running, so each outage stays short instead of climbing."""
    plan = schedule(60)
    assert len(plan) == 120 and [p.kind for p in plan[:9]] == list(CYCLE)
    crashes = [p.at for p in plan if p.kind in ("postgres", "ingest-in-outage", "both-down",
                                                 "spool-full")]  # fmt: skip
    assert min(b - a for a, b in itertools.pairwise(crashes)) > 55
    assert plan[-1].at < 3600 - RECOVERY_S


LEDGER_DISK_FULL = textwrap.dedent(
    """
    import json, resource, sys
    from pathlib import Path
    from streaming.providers.demo_run import LEDGER_FILE, RunLog, read_ledger

    run = Path(sys.argv[1])
    hard = resource.getrlimit(resource.RLIMIT_FSIZE)[1]
    log = RunLog(run, "t")
    log.took("A", 0, 5)
    log.write()
    size = (run / LEDGER_FILE).stat().st_size
    resource.setrlimit(resource.RLIMIT_FSIZE, (size, hard))  # the disk is full
    log.took("A", 5, 9)
    log.write()
    log.took("A", 20, 22)  # not contiguous: the refused line must not be lost
    log.write()
    full = {"failures": log.write_failures, "size": (run / LEDGER_FILE).stat().st_size}
    resource.setrlimit(resource.RLIMIT_FSIZE, (hard, hard))  # space again
    log.took("B", 0, 1)
    log.close()
    _, emitted = read_ledger(run / LEDGER_FILE)
    print(json.dumps({**full, "before": size, "emitted": emitted}))
    """
)


def test_ledger_keeps_what_a_full_disk_refused(tmp_path: Path) -> None:
    """The spool-full fault fills the disk for the whole ingest process, ledger included:
    a refused line is cut back off and written with the next, never torn or dropped."""
    out = subprocess.run(
        [sys.executable, "-c", LEDGER_DISK_FULL, str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
    )
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["failures"] == 2 and result["size"] == result["before"]
    assert result["emitted"] == {"A": [[0, 9], [20, 22]], "B": [[0, 1]]}


def _samples(series: list[float], connections: list[float]) -> list[Sample]:
    return [
        Sample(float(i), {"rss.ingest": v, "pg.connections": c})
        for i, (v, c) in enumerate(zip(series, connections, strict=True))
    ]


def test_soak_bound() -> None:
    mib = 1024.0 * 1024.0
    steady = judge(_samples([50 * mib, 80 * mib, 82 * mib, 81 * mib, 83 * mib], [3, 5, 5, 6, 5]))
    assert steady and all(v.holds for v in steady)
    leaking = judge(
        _samples([50 * mib, 80 * mib, 100 * mib, 120 * mib, 140 * mib], [3, 5, 5, 6, 5])
    )
    assert [v.series for v in leaking if not v.holds] == ["rss.ingest"]
    climbing = judge(_samples([80 * mib] * 5, [3, 4, 4, 5, 5 + CONN_SLACK + 1]))
    assert [v.series for v in climbing if not v.holds] == ["pg.connections"]
    assert judge(_samples([1.0], [1.0])) == []  # too few to judge


def test_soak_bounds_on_the_databases() -> None:
    mib = 1024.0 * 1024.0

    def run(market: list[float], ticks: list[float], dagster: list[float]) -> dict[str, bool]:
        samples = [
            Sample(60.0 * i, {MARKET_DB: m, TICKS: t, DAGSTER_DB: d})
            for i, (m, t, d) in enumerate(zip(market, ticks, dagster, strict=True))
        ]
        return {v.series: v.holds for v in judge(samples)}

    ticks = [0.0, 1000.0, 2000.0, 3000.0, 4000.0, 5000.0]
    grows_with_data = [10 * mib + 300 * t for t in ticks]
    steady = [20 * mib + 0.5 * mib * i for i in range(6)]  # 30 MiB an hour, level
    assert run(grows_with_data, ticks, steady) == {
        f"{MARKET_DB}/tick": True,
        f"{DAGSTER_DB}/h": True,
    }
    bloated = [10 * mib + 4000 * t for t in ticks]  # far more than a tick's row and indexes
    accelerating = [20 * mib, 20 * mib, 20 * mib, 21 * mib, 25 * mib, 32 * mib]
    assert run(bloated, ticks, accelerating) == {
        f"{MARKET_DB}/tick": False,
        f"{DAGSTER_DB}/h": False,
    }
    three = [Sample(0.0, {TICKS: 1.0}), Sample(1, {TICKS: 2.0}), Sample(2, {TICKS: 7.0})]
    assert start_end(three) == [(TICKS, 2.0, 7.0)]  # the warm-up sample is dropped


def _insert_ticks(conn: psycopg.Connection, rows: list[tuple[int, datetime, str, float]]) -> None:
    for symbol_id, ts, trade_id, price in rows:
        conn.execute(
            "insert into ticks (symbol_id, ts, trade_id, price, size) values (%s, %s, %s, %s, 1)",
            (symbol_id, ts, trade_id, price),
        )


def test_stored_checks_find_loss_and_candle_mismatch(db_url: str, tmp_path: Path) -> None:
    minute = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=5)
    log = RunLog(tmp_path, "r")
    log.took("ZZZ", 0, 4)
    log.close()
    with psycopg.connect(db_url) as conn:
        row = conn.execute(
            "insert into symbols (symbol, asset_type, market, timezone) "
            "values ('ZZZ', 'crypto', '24/7', 'UTC') returning id"
        ).fetchone()
        assert row is not None
        sid = row[0]
        ticks = [(sid, minute + timedelta(seconds=s), f"r-{s}", 10.0 + s) for s in range(3)]
        _insert_ticks(conn, ticks)
        conn.execute(
            "insert into candles_1m (symbol_id, ts, open, high, low, close, volume, trade_count) "
            "values (%s, %s, 10, 12, 10, 12, 3, 3)",
            (sid, minute),
        )
        counted = tick_accounting(conn, tmp_path / LEDGER_FILE)
        assert (counted.emitted, counted.stored, counted.lost, counted.duplicated) == (4, 3, 1, 0)
        assert candle_mismatches(conn) == 0
        conn.execute("update candles_1m set close = 11.5")
        assert candle_mismatches(conn) == 1
        conn.execute("update candles_1m set close = 12")
        _insert_ticks(conn, [(sid, minute + timedelta(minutes=1), "r-3", 9.0)])  # no candle
        assert candle_mismatches(conn) == 1


def _chaos(*args: str, timeout: float) -> tuple[int, str, str]:
    """(exit code, stdout, both streams for failure messages)."""
    result = subprocess.run(
        [sys.executable, "-m", "marketflow.cli", "chaos", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    return result.returncode, result.stdout, result.stdout + result.stderr


@pytest.mark.slow
@pytest.mark.integration
@pytest.mark.timeout(300)
def test_chaos_two_minutes() -> None:
    code, out, both = _chaos("--minutes", "2", timeout=280)
    lines = [line for line in out.splitlines() if line.startswith("chaos: ")]
    assert len(lines) == 1, both[-4000:]
    match = REPORT.match(lines[0])
    assert match is not None, lines[0]
    faults, emitted, stored, lost, duplicated, candles, orphans = map(int, match.groups())
    assert code == 0, both[-4000:]
    assert faults == 9 and emitted > 1000 and stored == emitted
    assert (lost, duplicated, candles, orphans) == (0, 0, 0, 0)
    assert out.rstrip().splitlines()[-1] == lines[0]  # the report is the last line


@pytest.mark.slow
@pytest.mark.integration
@pytest.mark.timeout(240)
def test_soak_short_form() -> None:
    code, out, both = _chaos(
        "--soak", "--no-dagster", "--minutes", "1", "--sample-seconds", "15", timeout=220
    )
    assert code == 0, both[-4000:]
    assert "soak rss.ingest:" in out and "soak pg.connections:" in out
    assert "soak redis.used_memory:" in out and "soak db.market_bytes/tick:" in out
    assert re.search(r"soak start -> end ticks.stored: \d+ -> \d+", out), out
    assert out.rstrip().splitlines()[-1].startswith("chaos: faults 0, ")


def test_profile_check_catches_a_stale_or_altered_row(db_url: str) -> None:
    from marketflow.chaos.verify import (
        materialize_profiles,
        profile_mismatches,
        sensor_write_from,
    )

    now = datetime.now(UTC)
    day = now.replace(hour=0, minute=0, second=0, microsecond=0)
    end = day + timedelta(days=1)
    first = max(day, now - timedelta(minutes=40))
    with psycopg.connect(db_url) as conn:
        row = conn.execute(
            "insert into symbols (symbol, asset_type, market, timezone, row_size) "
            "values ('ZZZ', 'crypto', '24/7', 'UTC', 0.5) returning id"
        ).fetchone()
        assert row is not None
        sid = row[0]
        _insert_ticks(
            conn,
            [
                (sid, first + timedelta(seconds=7 * i), f"r-{i}", 100.0 + (i % 9))
                for i in range(300)
            ],
        )
    cursor = materialize_profiles(db_url, day, None)
    assert profile_mismatches(db_url, day, end) == {
        "volume_profile": 0,
        "profile_metrics": 0,
        "order_flow": 0,
        "footprint_imbalances": 0,
        "session_vwap": 0,
        "big_prints": 0,
    }
    # a late print in an early minute: the sensor's incremental run must repair it
    with psycopg.connect(db_url) as conn:
        _insert_ticks(conn, [(sid, first + timedelta(seconds=30), "late", 120.0)])
    assert sum(profile_mismatches(db_url, day, end).values()) > 0  # stale rows are seen
    write_from = sensor_write_from(db_url, cursor)
    assert write_from is not None and write_from <= first + timedelta(seconds=30)
    materialize_profiles(db_url, day, write_from)
    assert sum(profile_mismatches(db_url, day, end).values()) == 0
    with psycopg.connect(db_url) as conn:
        conn.execute(
            "update order_flow set delta = delta + 1 "
            "where bucket = (select min(bucket) from order_flow)"
        )
    assert profile_mismatches(db_url, day, end)["order_flow"] == 2  # one row each way
    with psycopg.connect(db_url) as conn:  # the footprint tables are compared too
        conn.execute(
            "update session_vwap set vwap = vwap + 1 "
            "where bucket = (select min(bucket) from session_vwap)"
        )
    assert profile_mismatches(db_url, day, end)["session_vwap"] == 2


def test_altered_ticks_sees_a_changed_print(db_url: str) -> None:
    start = (time.time_ns() // NS - 60) * NS
    tag = format(start // NS, "x")
    path = run_prints("ZZZ", rate=5, seed=3, start_ns=start, count=50)
    with psycopg.connect(db_url) as conn:
        row = conn.execute(
            "insert into symbols (symbol, asset_type, market, timezone) "
            "values ('ZZZ', 'crypto', '24/7', 'UTC') returning id"
        ).fetchone()
        assert row is not None
        for n in range(50):
            conn.execute(
                "insert into ticks (symbol_id, ts, trade_id, price, size) "
                "values (%s, to_timestamp(%s::double precision / 1e9), %s, %s, %s)",
                (row[0], int(path.ts_ns[n]), f"{tag}-{n}", path.price[n], path.size[n]),
            )
        assert altered_ticks(conn, rate=5, seed=3, start_ns=start) == 0
        assert altered_ticks(conn, rate=5, seed=4, start_ns=start) > 40  # another path
        conn.execute("update ticks set price = price + 0.1 where trade_id = %s", (f"{tag}-7",))
        assert altered_ticks(conn, rate=5, seed=3, start_ns=start) == 1
