"""compute_session end to end: real ETH/USDT trades, reference vectors, horizons, CVD."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from analytics.aggressor_side import AggressorState
from analytics.composite import composite_metrics
from analytics.pipeline import (
    ORDER_FLOW_COLUMNS,
    PROFILE_METRICS_COLUMNS,
    VOLUME_PROFILE_COLUMNS,
    compute_session,
)
from analytics.profile import metrics_of
from tests.support.captures import eth_ticks

NAN = float("nan")


OPEN = pd.Timestamp("2024-03-11 13:30", tz="UTC")
CLOSE = pd.Timestamp("2024-03-11 20:00", tz="UTC")


def make_ticks(rows: list[tuple[str, float, float]], **columns: list[float]) -> pd.DataFrame:
    """rows: (UTC time 'HH:MM:SS' on 2024-03-11, price, size)."""
    frame = pd.DataFrame(
        {
            "ts": pd.to_datetime([f"2024-03-11 {t}" for t, _, _ in rows], utc=True),
            "price": [p for _, p, _ in rows],
            "size": [s for _, _, s in rows],
            "side": NAN,
            "bid": NAN,
            "ask": NAN,
        }
    )
    for name, values in columns.items():
        frame[name] = values
    return frame


def test_real_eth_trades_with_venue_side(captures: Path) -> None:
    ticks = eth_ticks(captures)
    day = pd.Timestamp("2023-02-02", tz="UTC")
    frames = compute_session(ticks, 0.05, day, day + pd.Timedelta(days=1))
    profile = frames.session_profile.set_index("price_level")
    assert len(profile) == 23  # README: 0.05 bins → 23 bins
    at_1666_20 = profile.loc[1666.2]
    assert at_1666_20.sell_volume == pytest.approx(197.512)
    assert at_1666_20.buy_volume == pytest.approx(88.98)
    assert at_1666_20.buy_volume - at_1666_20.sell_volume == pytest.approx(-108.532)
    at_1667_30 = profile.loc[1667.3]
    assert at_1667_30.sell_volume == pytest.approx(50.659)
    assert at_1667_30.buy_volume == pytest.approx(108.21)
    # every print is in exactly one minute and one bin
    assert frames.volume_profile.total_volume.sum() == pytest.approx(ticks["size"].sum())
    assert frames.volume_profile.trade_count.sum() == len(ticks)
    assert frames.order_flow.trade_count.sum() == len(ticks)
    assert frames.rejected == {}
    flow_delta = frames.order_flow.delta.sum()
    signed = (ticks["size"] * ticks["side"]).sum()
    assert flow_delta == pytest.approx(signed)
    assert frames.order_flow.cvd.iloc[-1] == pytest.approx(signed)
    # the last session row is the whole day's profile
    last = frames.profile_metrics[frames.profile_metrics.horizon == "session"].iloc[-1]
    whole = metrics_of(
        frames.session_profile.total_volume.to_numpy(),
        round(frames.session_profile.price_level.iloc[0] / 0.05),
        0.05,
    )
    assert (last.poc, last.val, last.vah) == (whole.poc, whole.val, whole.vah)
    assert last.total_volume == pytest.approx(ticks["size"].sum())


def test_reference_v1_one_minute_under_design_rules() -> None:
    ticks = make_ticks(
        [
            ("14:00:01", 100.00, 100),
            ("14:00:02", 100.01, 200),
            ("14:00:03", 100.01, 50),
            ("14:00:04", 100.00, 300),
            ("14:00:05", 99.99, 100),
            ("14:00:06", 100.02, 400),
        ]
    )
    frames = compute_session(ticks, 0.01, OPEN, CLOSE, cvd_total_before=1000.0)
    vp = frames.volume_profile.set_index("price_level")
    # zero tick at 100.01 continues the uptick (no half split): buy 250, not 225
    assert vp.loc[
        100.00, ["total_volume", "buy_volume", "sell_volume", "trade_count"]
    ].tolist() == [
        400,
        50,
        350,
        2,
    ]
    assert vp.loc[100.01, ["total_volume", "buy_volume", "sell_volume"]].tolist() == [250, 250, 0]
    assert vp.loc[99.99, ["total_volume", "buy_volume", "sell_volume"]].tolist() == [100, 0, 100]
    assert vp.loc[100.02, ["total_volume", "buy_volume", "sell_volume"]].tolist() == [400, 400, 0]
    m1 = frames.profile_metrics[frames.profile_metrics.horizon == "1m"].iloc[0]
    assert m1.bucket == pd.Timestamp("2024-03-11 14:00", tz="UTC")
    assert (m1.poc, m1.val, m1.vah, m1.total_volume) == (100.0, 100.0, 100.02, 1150.0)
    assert m1.lvns == [] and m1.hvns == []
    flow = frames.order_flow.set_index("bucket").loc[pd.Timestamp("2024-03-11 14:00", tz="UTC")]
    assert (flow.buy_volume, flow.sell_volume, flow.delta) == (700, 450, 250)
    assert flow.buy_pressure == pytest.approx(60.869565, abs=1e-6)
    assert flow.sell_pressure == pytest.approx(39.130435, abs=1e-6)
    assert flow.cvd == 250 and flow.cvd_total == 1250


def test_frames_have_the_schema_columns() -> None:
    frames = compute_session(make_ticks([("14:00:01", 10.0, 1.0)]), 0.01, OPEN, CLOSE)
    assert tuple(frames.volume_profile.columns) == VOLUME_PROFILE_COLUMNS
    assert tuple(frames.profile_metrics.columns) == PROFILE_METRICS_COLUMNS
    assert tuple(frames.order_flow.columns) == ORDER_FLOW_COLUMNS
    assert str(frames.order_flow.bucket.dtype) == "datetime64[ns, UTC]"
    assert frames.profile_metrics.session_date.tolist() == [date(2024, 3, 11)] * 2
    empty = compute_session(make_ticks([]), 0.01, OPEN, CLOSE)
    assert empty.volume_profile.empty and empty.order_flow.empty
    assert tuple(empty.profile_metrics.columns) == PROFILE_METRICS_COLUMNS


def test_tick_rule_continues_across_a_minute_boundary() -> None:
    ticks = make_ticks(
        [("14:00:50", 100.00, 10), ("14:00:55", 100.01, 20), ("14:01:05", 100.01, 30)]
    )
    frames = compute_session(ticks, 0.01, OPEN, CLOSE)
    flow = frames.order_flow.set_index("bucket")
    first = flow.loc[pd.Timestamp("2024-03-11 14:00", tz="UTC")]
    second = flow.loc[pd.Timestamp("2024-03-11 14:01", tz="UTC")]
    assert (first.buy_volume, first.sell_volume) == (25, 5)  # first print split 5/5
    assert (second.buy_volume, second.sell_volume) == (30, 0)  # zero tick keeps "up"
    assert frames.aggressor_state == AggressorState(100.01, 1)
    # a later window continues from the state, whatever minute it starts in
    later = compute_session(
        make_ticks([("14:02:00", 100.01, 4)]),
        0.01,
        OPEN,
        CLOSE,
        aggressor_state=frames.aggressor_state,
    )
    assert later.order_flow.buy_volume.sum() == 4


def test_cvd_resets_at_session_start_and_cvd_total_continues() -> None:
    day1 = compute_session(
        make_ticks([("14:00:00", 50.0, 1), ("14:00:01", 50.5, 8), ("14:05:00", 50.0, 3)]),
        0.5,
        OPEN,
        CLOSE,
        cvd_total_before=-7.0,
    )
    of1 = day1.order_flow
    assert of1.bucket.iloc[0] == OPEN  # rows start at the session open
    assert of1.bucket.iloc[-1] == pd.Timestamp("2024-03-11 14:05", tz="UTC")
    assert of1.delta.tolist()[:30] == [0.0] * 30  # quiet minutes: no flow
    assert of1.buy_pressure.iloc[0] == 50 and of1.sell_pressure.iloc[0] == 50
    assert of1.cvd.iloc[-1] == pytest.approx(0 + 8 - 3)
    assert of1.cvd_total.iloc[-1] == pytest.approx(-7 + 5)
    assert (of1.cvd.diff().iloc[1:] == of1.delta.iloc[1:]).all()  # continuity

    open2 = pd.Timestamp("2024-03-12 13:30", tz="UTC")
    ticks2 = make_ticks([("14:00:00", 50.0, 2)])
    ticks2["ts"] = pd.to_datetime(["2024-03-12 13:30:10"], utc=True)
    day2 = compute_session(
        ticks2,
        0.5,
        open2,
        open2 + pd.Timedelta(hours=6.5),
        cvd_total_before=float(of1.cvd_total.iloc[-1]),
    )
    of2 = day2.order_flow
    # first print of the new session splits (no reference): delta 0; cvd restarts
    assert of2.cvd.iloc[0] == 0
    assert of2.cvd_total.iloc[0] == pytest.approx(-2.0)


def test_session_horizon_is_the_running_profile() -> None:
    rng = np.random.default_rng(11)
    n = 3000
    seconds = np.sort(rng.integers(0, 45 * 60, n))
    prices = 100 + np.cumsum(rng.choice([-0.01, 0, 0.01], n))
    ticks = pd.DataFrame(
        {
            "ts": OPEN + pd.to_timedelta(seconds, unit="s"),
            "price": prices,
            "size": rng.integers(1, 20, n).astype(float),
        }
    )
    for method in ("single", "dual"):
        frames = compute_session(ticks, 0.01, OPEN, CLOSE, method=method)
        session = frames.profile_metrics[frames.profile_metrics.horizon == "session"]
        assert len(session) == 45  # one row per minute from the first traded minute
        for minute in (0, 7, 30, 44):
            cutoff = OPEN + pd.Timedelta(minutes=minute + 1)
            seen = ticks[ticks.ts < cutoff]
            bins = np.round(seen.price.to_numpy() / 0.01).astype(np.int64)
            dense = np.bincount(bins - bins.min(), weights=seen["size"])
            expected = metrics_of(dense, int(bins.min()), 0.01, method)
            row = session.iloc[minute]
            assert row.bucket == cutoff - pd.Timedelta(minutes=1)
            assert (row.poc, row.val, row.vah) == (expected.poc, expected.val, expected.vah)
            assert row.total_volume == pytest.approx(expected.total_volume)
            assert row.lvns == expected.lvns and row.hvns == expected.hvns
            assert row.value_area_method == method


def test_bad_and_out_of_session_ticks_are_counted_and_skipped() -> None:
    ticks = make_ticks(
        [
            ("13:29:59", 10.0, 1),  # before the open
            ("14:00:00", 10.0, 1),
            ("14:00:01", NAN, 1),
            ("14:00:02", 10.0, -5),
            ("14:00:03", -1.0, 1),
            ("20:00:00", 10.0, 1),  # the close is exclusive
            ("14:00:04", 10.5, 2),  # out of order: sorted, not lost
        ]
    )
    frames = compute_session(ticks, 0.5, OPEN, CLOSE)
    assert frames.rejected == {"outside_session": 2, "bad_price": 2, "bad_size": 1}
    assert frames.order_flow.trade_count.sum() == 2
    assert frames.order_flow.buy_volume.sum() == 0.5 + 2


def test_absurd_profile_width_fails_loudly() -> None:
    ticks = make_ticks([("14:00:00", 100.0, 1), ("14:00:01", 100_000.0, 1)])
    with pytest.raises(ValueError, match="row_size is too small"):
        compute_session(ticks, 0.01, OPEN, CLOSE)


def test_candle_fallback_fills_minutes_without_ticks() -> None:
    ticks = make_ticks([("14:00:00", 100.0, 10)])
    candles = pd.DataFrame(
        {
            "ts": pd.to_datetime(["2024-03-11 14:00", "2024-03-11 14:01"], utc=True),
            "open": [100.0, 100.0],
            "high": [100.05, 100.05],
            "low": [99.98, 99.98],
            "close": [99.99, 99.99],
            "volume": [999.0, 5000.0],
        }
    )
    frames = compute_session(ticks, 0.01, OPEN, CLOSE, candles=candles)
    flow = frames.order_flow.set_index("bucket")
    # 14:00 has a tick: its candle is ignored; 14:01 has none: the bar is spread
    assert flow.loc[pd.Timestamp("2024-03-11 14:00", tz="UTC")].trade_count == 1
    second = flow.loc[pd.Timestamp("2024-03-11 14:01", tz="UTC")]
    assert second.buy_volume + second.sell_volume == pytest.approx(5000)
    assert (second.buy_pressure, second.sell_pressure) == pytest.approx((40, 60))
    assert second.trade_count == 0
    vp = frames.volume_profile[
        frames.volume_profile.bucket == pd.Timestamp("2024-03-11 14:01", tz="UTC")
    ]
    assert len(vp) == 8 and vp.total_volume.sum() == pytest.approx(5000)


def test_composite_uses_the_last_five_sessions() -> None:
    rows = []
    for k in range(6):
        day = date(2024, 3, 4 + k)
        rows.append((day, 90.0, 10_000.0 if k == 0 else 1.0))  # only the oldest is heavy
        rows += [(day, 100.0, 50.0), (day, 100.5, 20.0), (day, 99.5, 10.0)]
    profiles = pd.DataFrame(rows, columns=["session_date", "price_level", "total_volume"])
    composite = composite_metrics(profiles, 0.5)
    row = composite.iloc[0]
    assert row.horizon == "composite"
    assert row.session_date == date(2024, 3, 9)
    assert row.poc == 100.0 and row.total_volume == 5 * 81.0
    assert row.bucket == pd.Timestamp("2024-03-09", tz="UTC")
    assert composite_metrics(profiles, 0.5, sessions=6).iloc[0].poc == 90.0
    assert composite_metrics(profiles.iloc[:0], 0.5).empty


tick_rows = st.lists(
    st.tuples(
        st.integers(0, 6 * 3600),  # seconds after the open
        st.integers(1900, 2100),  # price in quarter ticks
        st.floats(0.001, 500, allow_nan=False),
        st.sampled_from([NAN, 1.0, -1.0]),
    ),
    min_size=1,
    max_size=120,
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tick_rows, st.sampled_from(["single", "dual"]))
def test_properties_volume_conserved_and_value_area_valid(rows, method) -> None:
    ticks = pd.DataFrame(
        {
            "ts": OPEN + pd.to_timedelta([r[0] for r in rows], unit="s"),
            "price": [r[1] * 0.05 for r in rows],
            "size": [r[2] for r in rows],
            "side": [r[3] for r in rows],
        }
    )
    frames = compute_session(ticks, 0.05, OPEN, CLOSE, method=method)
    total = ticks["size"].sum()
    vp = frames.volume_profile
    assert vp.total_volume.sum() == pytest.approx(total)
    assert np.allclose(vp.buy_volume + vp.sell_volume, vp.total_volume)
    assert (vp.buy_volume >= -1e-9).all() and (vp.sell_volume >= -1e-9).all()
    assert frames.order_flow.delta.sum() == pytest.approx(
        vp.buy_volume.sum() - vp.sell_volume.sum(), abs=1e-6
    )
    for _, m in frames.profile_metrics.iterrows():
        assert m.val <= m.poc <= m.vah
    last = frames.profile_metrics[frames.profile_metrics.horizon == "session"].iloc[-1]
    sp = frames.session_profile
    inside = sp[(sp.price_level >= last.val) & (sp.price_level <= last.vah)]
    assert inside.total_volume.sum() >= 0.7 * total * (1 - 1e-9)
    assert last.total_volume == pytest.approx(total)


def test_blocked_processing_gives_the_same_frames(monkeypatch: pytest.MonkeyPatch) -> None:
    """Wide sessions are cut into blocks of minutes (and metric rows): same answer."""
    import analytics.profile
    import analytics.session_grid

    rng = np.random.default_rng(5)
    n = 4000
    ticks = pd.DataFrame(
        {
            "ts": OPEN + pd.to_timedelta(np.sort(rng.integers(0, 90 * 60, n)), unit="s"),
            "price": 50 + np.cumsum(rng.choice([-0.5, 0, 0.5], n)),
            "size": rng.integers(1, 9, n).astype(float),
            "side": rng.choice([NAN, 1.0, -1.0], n),
        }
    )
    candles = pd.DataFrame(
        {
            "ts": [OPEN + pd.Timedelta(minutes=100)],
            "open": [50.0],
            "high": [52.0],
            "low": [49.0],
            "close": [51.0],
            "volume": [77.0],
        }
    )
    whole = compute_session(ticks, 0.5, OPEN, CLOSE, candles=candles, cvd_total_before=3.0)
    monkeypatch.setattr(analytics.session_grid, "GRID_CELLS", 200)
    monkeypatch.setattr(analytics.profile, "BLOCK_CELLS", 300)
    blocked = compute_session(ticks, 0.5, OPEN, CLOSE, candles=candles, cvd_total_before=3.0)
    pd.testing.assert_frame_equal(whole.volume_profile, blocked.volume_profile)
    pd.testing.assert_frame_equal(whole.order_flow, blocked.order_flow)
    pd.testing.assert_frame_equal(whole.profile_metrics, blocked.profile_metrics)
    pd.testing.assert_frame_equal(whole.session_profile, blocked.session_profile)
    assert whole.order_flow.bucket.iloc[-1] == OPEN + pd.Timedelta(minutes=100)
    assert whole.session_profile.total_volume.sum() == pytest.approx(ticks["size"].sum() + 77)
