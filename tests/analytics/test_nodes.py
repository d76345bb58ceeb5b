"""Low- and high-volume nodes (docs/semantics.md): valleys and peaks of the smoothed
profile with a minimum prominence and separation, at most N of each kind.

Hand-built profiles pin each part of the rule; a literal step-by-step version written from
the docs (tests/support/reference_rules.py) is compared on generated profiles; and the
real captures in tests/data pin how many nodes a session profile carries (the rule this
replaced flagged every run of thin or thick bins: dozens on a fine-rowed profile).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from analytics.footprint_config import FootprintConfig
from analytics.nodes import node_rule, profile_nodes, smoothed
from analytics.pipeline import compute_session
from analytics.profile import metrics_of
from analytics.sessions import session_bounds
from tests.support.captures import eth_ticks
from tests.support.reference_rules import literal_nodes, literal_smooth

TWO_HUMPS = [1, 4, 9, 12, 9, 4, 2, 2, 3, 8, 14, 8, 3, 1]


def kinds(nodes: list[dict]) -> list[float]:
    return [node["price"] for node in nodes]


def test_a_valley_between_two_peaks() -> None:
    m = metrics_of(np.array(TWO_HUMPS, dtype=float), 0, 1.0)
    assert kinds(m.lvns) == [7.0] and kinds(m.hvns) == [3.0, 10.0]
    # the valley reaches from 5 to 8 (within half its prominence of its bottom); its
    # prominence is the lower neighbouring peak's height above it, on the smoothed profile
    (valley,) = m.lvns
    assert (valley["low"], valley["high"]) == (5.0, 8.0)
    smooth = smoothed(np.array(TWO_HUMPS, dtype=float))
    assert valley["prominence"] == pytest.approx(min(smooth[3], smooth[10]) - smooth[7])
    assert m.hvns[1]["prominence"] == pytest.approx(smooth[10] - smooth[7])


def test_a_single_hump_has_its_peak_and_no_valley() -> None:
    # the textbook profile (POC 106): its thin tails are not valleys (the old rule's LVNs)
    volumes = np.array([10, 15, 20, 60, 70, 150, 90, 80, 50, 10], dtype=float)
    m = metrics_of(volumes, 101, 1.0)
    assert m.lvns == []
    assert [(n["price"], n["low"], n["high"]) for n in m.hvns] == [(106.0, 105.0, 108.0)]


def test_edges_and_monotone_profiles_have_no_nodes() -> None:
    assert profile_nodes(np.arange(1.0, 30.0)) == []
    assert profile_nodes(np.array([5.0, 1.0])) == []  # under three bins: none
    # a peak at the profile's edge is no node: nodes are interior
    assert [n[0] for n in profile_nodes(np.array([9.0, 5, 3, 2, 1, 1, 1]))] == []


def test_an_empty_gap_is_a_valley_at_its_middle() -> None:
    volumes = np.array([5, 8, 9, 8, 0, 0, 0, 0, 0, 0, 0, 8, 9, 8, 5], dtype=float)
    (lvn, *_hvns) = profile_nodes(volumes)
    assert lvn[0] == 0 and lvn[1] == 7  # the flat bottom's middle
    # the smoothed gap's sides rise to 7.39: the bins within half that of the bottom (0)
    assert (lvn[2], lvn[3]) == (4, 10)


def test_prominence_is_relative_to_the_smoothed_poc() -> None:
    # a shallow dip on a broad hump: 3.3 deep on the smoothed profile, whose POC is 65.6
    volumes = np.array([1, 5, 20, 40, 60, 70, 70, 60, 60, 60, 70, 70, 60, 40, 20, 5, 1.0])
    assert [n for n in profile_nodes(volumes, (5, 0.1, 0.05)) if n[0] == 0] == []
    shallow = [n for n in profile_nodes(volumes, (5, 0.05, 0.05)) if n[0] == 0]
    assert [n[1] for n in shallow] == [8]
    assert shallow[0][4] == pytest.approx(smoothed(volumes)[6] - smoothed(volumes)[8])


def test_at_most_n_of_each_kind_the_most_prominent() -> None:
    heights = [3, 9, 5, 14, 7, 11]  # six humps, valleys between
    volumes = np.array([0.5] + [v for h in heights for v in (1, 1, h, h, h, 1, 1)] + [0.5])
    every = profile_nodes(volumes, (10, 0.01, 0.0))
    assert sum(1 for n in every if n[0] == 1) == 6
    two = [n for n in profile_nodes(volumes, (2, 0.01, 0.0)) if n[0] == 1]
    proms = sorted((n[4] for n in every if n[0] == 1), reverse=True)
    assert sorted(n[4] for n in two) == sorted(proms[:2])
    assert [n[1] for n in two] == sorted(n[1] for n in two)  # reported by price


def test_separation_drops_the_weaker_of_two_close_nodes() -> None:
    # two valleys 6 rows apart in a 21-row profile
    volumes = np.array([9.0] * 6 + [2, 2, 2, 6, 6, 6, 1, 1, 1] + [9] * 6)
    close = [n for n in profile_nodes(volumes, (5, 0.01, 0.0)) if n[0] == 0]
    assert [n[1] for n in close] == [7, 13]
    # 0.35 × 21 rows: 7 rows apart at least, so the weaker one goes
    apart = [n for n in profile_nodes(volumes, (5, 0.01, 0.35)) if n[0] == 0]
    assert [n[1] for n in apart] == [13] and apart[0][4] == max(n[4] for n in close)
    assert [n[1] for n in profile_nodes(volumes, (5, 0.01, 0.3)) if n[0] == 0] == [7, 13]


def test_the_smoothing_window_scales_with_the_profile() -> None:
    # the same two humps drawn with ten times the rows: the same nodes, ten times apart
    coarse = np.array(TWO_HUMPS * 1, dtype=float)
    fine = np.repeat(np.array(TWO_HUMPS, dtype=float), 10)
    coarse_nodes = [(n[0], n[1]) for n in profile_nodes(coarse)]
    fine_nodes = [(n[0], round(n[1] / 10)) for n in profile_nodes(fine)]
    assert fine_nodes == coarse_nodes
    assert len(profile_nodes(fine)) == 3


def test_the_rule_reads_its_parameters_from_the_symbols_config() -> None:
    rule = node_rule(FootprintConfig(node_count=1, node_prominence=0.5, node_separation=0.1))
    assert rule == (1, 0.5, 0.1)


profiles = st.lists(
    st.sampled_from([0.0, 0.5, 1.0, 2.0, 3.0, 5.0, 8.0, 13.0]), min_size=1, max_size=200
)


@settings(max_examples=200, deadline=None)
@given(profiles, st.sampled_from([0.01, 0.1, 0.3]), st.sampled_from([0.0, 0.05, 0.2]))
def test_nodes_equal_the_literal_rule(volumes: list[float], prominence: float, gap: float):
    got = profile_nodes(np.array(volumes), (3, prominence, gap))
    want = literal_nodes(volumes, 3, prominence, gap)
    assert np.allclose(smoothed(np.array(volumes)), literal_smooth(volumes), rtol=1e-12)
    kind_names = ("LVN", "HVN")
    assert [(kind_names[n[0]], *n[1:4]) for n in got] == [n[:4] for n in want]
    assert np.allclose([n[4] for n in got], [n[4] for n in want], rtol=1e-9, atol=1e-12)


# --- nodes per session profile on the real captures ---------------------------------------


def session_node_counts(frames) -> list[tuple[int, int]]:
    rows = frames.profile_metrics[frames.profile_metrics["horizon"] == "session"]
    return [(len(lvns), len(hvns)) for lvns, hvns in zip(rows["lvns"], rows["hvns"], strict=True)]


def msft_bars(captures: Path) -> pd.DataFrame:
    raw = json.loads(
        (captures / "alphavantage" / "time_series_intraday_1min_msft.json").read_text()
    )
    rows = [
        {
            "ts": pd.Timestamp(stamp, tz="US/Eastern").tz_convert("UTC"),
            **{
                k: float(bar[f"{i}. {k}"])
                for i, k in enumerate(("open", "high", "low", "close", "volume"), 1)
            },
        }
        for stamp, bar in raw["Time Series (1min)"].items()
    ]
    return pd.DataFrame(rows).sort_values("ts", ignore_index=True)


def test_nodes_per_session_profile_on_the_captures(captures: Path) -> None:
    """What a trader sees: a handful of nodes per profile. The rule this replaced gave, on
    the same profiles (last session profile, LVN/HVN): ETH/USDT at 0.05 2/3, at 0.01 21/13;
    MSFT's bars 2/3."""
    ticks = eth_ticks(captures)
    day = ticks["ts"].iloc[0].normalize()
    close = day + pd.Timedelta(days=1)
    eth_05 = session_node_counts(compute_session(ticks, 0.05, day, close))
    eth_01 = session_node_counts(compute_session(ticks, 0.01, day, close))
    assert eth_05 == [(1, 0), (0, 0), (1, 1), (2, 2)]  # (LVNs, HVNs) minute by minute
    # 1,000 prints over 123 rows: a rugged profile, capped at five of each
    assert eth_01 == [(3, 2), (4, 4), (5, 5), (5, 5)]
    bars = msft_bars(captures)
    open_, close = session_bounds("XNYS", bars["ts"].iloc[0].date())
    no_ticks = pd.DataFrame(
        {"ts": pd.Series([], dtype="datetime64[ns, UTC]"), "price": [], "size": []}
    )
    msft = session_node_counts(compute_session(no_ticks, 0.01, open_, close, candles=bars))
    assert len(msft) == 100 and msft[-1] == (3, 4) and max(max(c) for c in msft) == 4
