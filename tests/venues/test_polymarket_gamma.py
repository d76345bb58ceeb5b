"""Gamma discovery: parsing the real market object, pagination, upserts into the real DB."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime, timedelta

import httpx
import psycopg
import pytest

from core.events import Rejects
from streaming.polymarket.discovery import discover
from streaming.venues.polymarket.parsing import parse_market, parse_markets, symbol_for
from tests.support.polymarket_fakes import GammaServer, capture

RATES = {"crypto": 0.0624}
REAL = capture("gamma_market")
UP, DOWN = json.loads(REAL["clobTokenIds"])


def variant(i: int, **changes: object) -> dict:
    raw = copy.deepcopy(REAL)
    raw.update(conditionId=f"0x{i:064x}", slug=f"market-{i}", question=f"Question {i}?")
    raw.update(clobTokenIds=json.dumps([f"{i}01", f"{i}02"]))
    raw.update(changes)
    return raw


def test_parse_real_market_matches_tokens_to_outcomes():
    m = parse_market(REAL, RATES)
    assert m.market_id == REAL["conditionId"]
    assert (m.yes_outcome, m.no_outcome) == ("Up", "Down")
    assert (m.yes_token_id, m.no_token_id) == (UP, DOWN)
    assert m.category == "crypto" and m.fee_rate == pytest.approx(0.0624)
    assert m.status == "active" and not m.neg_risk and m.event_id == "260654"
    assert m.tick_size == 0.01 and m.end_date.isoformat() == "2026-03-12T09:25:00+00:00"
    assert m.symbol == "PM:btc-updown-5m-1773307200"


def test_parse_by_label_not_position():
    swapped = variant(1, outcomes=json.dumps(["No", "Yes"]))
    m = parse_market(swapped, RATES)
    assert (m.yes_token_id, m.no_token_id) == ("102", "101")
    fees_off = parse_market(variant(2, feesEnabled=False), RATES)
    assert fees_off.fee_rate == 0.0
    resolved = parse_market(
        variant(3, closed=True, outcomePrices='["0", "1"]', outcomes='["Yes", "No"]'), RATES
    )
    assert (resolved.status, resolved.resolution) == ("resolved", "no")
    rejects = Rejects("t")
    bad = [
        variant(4, outcomes='["A", "B", "C"]', clobTokenIds='["1", "2", "3"]'),
        variant(5, clobTokenIds=None),
        variant(6, outcomes="not json"),
        "junk",
        variant(7, category=None, feeType=None),
    ]
    parsed = parse_markets(bad, RATES, rejects=rejects)
    assert [p.market_id for p in parsed] == [f"0x{7:064x}"]  # no category is fine
    assert parsed[0].category is None and parsed[0].fee_rate == 0.0
    assert rejects.counts == {
        "not_binary": 1,
        "missing_clob_token_ids": 1,
        "bad_outcomes": 1,
        "not_an_object": 1,
    }
    assert symbol_for(None, "0xabcdef0123456789") == "PM:abcdef0123"


def test_naive_end_dates_are_utc_and_garbage_ones_counted_rejects():
    """Gamma dates without an offset are UTC (they were dropped, so the market was never
    checked for expiry); a value that is no date at all skips the market, counted."""
    naive = parse_market(variant(1, endDate="2026-03-12T09:25:00"), RATES)
    assert naive.end_date == datetime(2026, 3, 12, 9, 25, tzinfo=UTC)
    bare = parse_market(variant(2, endDate="2026-03-12"), RATES)
    assert bare.end_date == datetime(2026, 3, 12, tzinfo=UTC)
    offset = parse_market(variant(3, endDate="2026-03-12T04:25:00-05:00"), RATES)
    assert offset.end_date == naive.end_date and offset.end_date.utcoffset() == timedelta(0)
    assert parse_market(variant(4, endDate=None), RATES).end_date is None
    assert parse_market(variant(5, endDate="", end_date=None), RATES).end_date is None
    rejects = Rejects("t")
    parsed = parse_markets(
        [
            variant(6, endDate="next tuesday"),
            variant(7, endDate="2026-13-45T00:00:00"),
            variant(8, endDate=1773307200),
            variant(9, endDate="2026-03-12T09:25:00"),
        ],
        RATES,
        rejects=rejects,
    )
    assert [p.market_id for p in parsed] == [f"0x{9:064x}"]
    assert rejects.counts == {"bad_end_date": 3}
    assert rejects.samples["bad_end_date"]


def test_discovery_stores_a_naive_end_date_as_utc(db_url):
    markets = [variant(1, endDate="2026-03-12T09:25:00")]
    with GammaServer(markets) as gamma, httpx.Client() as client, psycopg.connect(db_url) as conn:
        result = discover(conn, client, gamma.url, RATES, page_size=10)
        assert result.rejects.total == 0 and len(result.written) == 1
        (end,) = conn.execute(
            "select end_date from binary_markets where market_id = %s", (f"0x{1:064x}",)
        ).fetchone()
    assert end == datetime(2026, 3, 12, 9, 25, tzinfo=UTC)


def test_discover_paginates_upserts_groups_and_marks_resolved(db_url):
    neg = {"negRisk": True}
    event = [dict(REAL["events"][0], id="ev-1", slug="who-wins", negRiskAugmented=False)]
    aug_event = [dict(REAL["events"][0], id="ev-2", slug="other", negRiskAugmented=True)]
    markets = [
        REAL,
        variant(1, outcomes=json.dumps(["No", "Yes"])),
        variant(2, category="Politics", feeType=None, events=event, **neg),
        variant(3, category="Politics", feeType=None, events=event, **neg),
        variant(4, events=aug_event, **neg),
        variant(5, outcomes='["A", "B", "C"]', clobTokenIds='["1", "2", "3"]'),
        # same slug as the real market: must not collide on its symbol
        variant(6, slug=REAL["slug"]),
    ]
    with GammaServer(markets) as gamma, httpx.Client() as client, psycopg.connect(db_url) as conn:
        result = discover(conn, client, gamma.url, RATES, page_size=2)
        pages = [q for q in gamma.requests if "offset" in q]
        assert [q["offset"][0] for q in pages] == ["0", "2", "4", "6"]
        assert pages[0]["active"] == ["true"] and pages[0]["closed"] == ["false"]
        assert len(result.written) == 6 and result.rejects.counts == {"not_binary": 1}
        rows = conn.execute(
            "select m.market_id, s.symbol, s.asset_type, m.yes_token_id, m.no_token_id,"
            " m.event_id, m.neg_risk, m.augmented, m.status, m.fee_rate"
            " from binary_markets m join symbols s on s.id = m.symbol_id order by m.id"
        ).fetchall()
        by_id = {r[0]: r for r in rows}
        assert len({r[1] for r in rows}) == 6  # collision-free symbols
        assert all(r[2] == "binary_option" for r in rows)
        assert by_id[REAL["conditionId"]][1] == "PM:btc-updown-5m-1773307200"
        assert by_id[f"0x{6:064x}"][1].startswith("PM:btc-updown-5m-1773307200-")
        assert by_id[f"0x{1:064x}"][3:5] == ("102", "101")
        grouped = [r for r in rows if r[5] == "ev-1"]
        assert len(grouped) == 2 and all(r[6] and not r[7] for r in grouped)
        assert all(r[9] == 0.0 for r in grouped)  # politics: fee-free
        assert by_id[f"0x{4:064x}"][7]  # augmented flagged

        # the category filter (case-insensitive) keeps only those
        filtered = discover(conn, client, gamma.url, RATES, category="POLITICS", page_size=50)
        assert {m.market_id for m in filtered.markets} == {f"0x{2:064x}", f"0x{3:064x}"}

        # market 2 resolves NO and leaves the active listing; a re-run marks it
        markets[2] = variant(
            2,
            category="Politics",
            feeType=None,
            events=event,
            closed=True,
            outcomePrices='["0", "1"]',
            **neg,
        )
        again = discover(conn, client, gamma.url, RATES, page_size=50)
        assert again.refreshed == 1
        assert any("condition_ids" in q for q in gamma.requests)
        status = conn.execute(
            "select m.status, m.resolution, s.active from binary_markets m"
            " join symbols s on s.id = m.symbol_id where m.market_id = %s",
            (f"0x{2:064x}",),
        ).fetchone()
        assert status == ("resolved", "no", False)
        assert conn.execute("select count(*) from binary_markets").fetchone()[0] == 6


def test_cli_markets_discovers_and_prints(db_url, redis_url, monkeypatch, capsys):
    from core.settings import get_settings
    from marketflow.cli import main

    with GammaServer([REAL, variant(1, outcomes=json.dumps(["No", "Yes"]))]) as gamma:
        monkeypatch.setenv("DATABASE_URL", db_url)
        monkeypatch.setenv("REDIS_URL", redis_url)
        monkeypatch.setenv("POLYMARKET_GAMMA_URL", gamma.url)
        get_settings.cache_clear()
        try:
            assert main(["polymarket", "markets", "--category", "crypto", "--limit", "5"]) == 0
        finally:
            get_settings.cache_clear()
    out = capsys.readouterr().out
    assert "PM:btc-updown-5m-1773307200" in out and "Bitcoin Up or Down" in out
    assert "2 markets stored" in out
    assert count_markets(db_url) == 2


def count_markets(db_url: str) -> int:
    with psycopg.connect(db_url) as conn:
        return conn.execute("select count(*) from binary_markets").fetchone()[0]


def test_partial_neg_risk_event_is_completed_from_events(db_url):
    parent = dict(REAL["events"][0], id="ev-9", slug="winner", negRisk=True, negRiskAugmented=False)
    listed = variant(20, negRisk=True, events=[parent], category="politics")
    others = [
        {k: v for k, v in variant(i, negRisk=True, category="politics").items() if k != "events"}
        for i in (21, 22)
    ]
    closed = {
        k: v
        for k, v in variant(
            23, negRisk=True, closed=True, outcomePrices='["0", "1"]', outcomes='["Yes", "No"]'
        ).items()
        if k != "events"
    }
    event = dict(parent, markets=[listed, *others, closed])
    with (
        GammaServer([listed], events=[event]) as gamma,
        httpx.Client() as client,
        psycopg.connect(db_url) as conn,
    ):
        result = discover(conn, client, gamma.url, RATES, limit=1)
        assert any("id" in q and q["id"] == ["ev-9"] for q in gamma.requests)
        assert len(result.written) == 4
        rows = conn.execute(
            "select market_id, event_id, neg_risk, status from binary_markets"
            " where event_id = 'ev-9' order by market_id"
        ).fetchall()
    assert [r[0] for r in rows] == [f"0x{i:064x}" for i in (20, 21, 22, 23)]
    assert all(r[2] for r in rows)
    assert [r[3] for r in rows] == ["active", "active", "active", "resolved"]


def test_a_server_ignoring_offset_cannot_page_forever():
    """Found in review: pagination only stopped on a short page, so a server (or proxy)
    that ignored ``offset`` made discovery loop forever, growing the list without bound."""
    from streaming.venues.polymarket.rest import fetch_markets

    markets = [variant(i) for i in range(5)]
    with GammaServer(markets, ignore_offset=True) as gamma, httpx.Client() as client:
        got = fetch_markets(client, gamma.url, page_size=2)
    assert [m["conditionId"] for m in got] == [markets[0]["conditionId"], markets[1]["conditionId"]]
    assert len(gamma.requests) == 2  # the repeated page is recognised and paging stops
