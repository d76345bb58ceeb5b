"""Profile metrics (docs/semantics.md): POC tie rule, value area single/dual, and the nodes
as metrics report them (the node rule itself: test_nodes.py).

The vectorised walk is checked against a literal step-by-step walk written from DESIGN's
words, on fixed vectors and on Hypothesis-generated profiles.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from analytics.bins import bin_index, bin_price, row_decimals
from analytics.profile import block_metrics, metrics_of
from tests.support.reference_rules import walk

TEXTBOOK = {
    110: 10,
    109: 50,
    108: 80,
    107: 90,
    106: 150,
    105: 70,
    104: 60,
    103: 20,
    102: 15,
    101: 10,
}


def textbook() -> np.ndarray:
    return np.array([TEXTBOOK[p] for p in range(101, 111)], dtype=float)


def test_textbook_value_area_single() -> None:
    m = metrics_of(textbook(), 101, 1.0)
    assert (m.poc, m.val, m.vah) == (106.0, 105.0, 108.0)
    assert m.total_volume == 555.0
    assert m.value_area_method == "single"


def test_dual_method_differs_from_single_on_textbook() -> None:
    # pairs from POC 106: above 107+108=170 beats below 105+104=130 (320); then below
    # 130 beats above 109+110=60 (450 >= 388.5): VA 104–108, one bin lower than single
    m = metrics_of(textbook(), 101, 1.0, "dual")
    assert (m.poc, m.val, m.vah) == (106.0, 104.0, 108.0)
    assert m.value_area_method == "dual"


def test_textbook_nodes() -> None:
    m = metrics_of(textbook(), 101, 1.0)
    # one hump: its peak is the one node, at the POC's row, reaching 105–108 (the smoothed
    # profile within half the peak's prominence of it); the thin tails (101, 102, 110),
    # LVNs by the rule this replaced, are no valleys: no higher volume lies beyond them
    assert m.lvns == []
    (hvn,) = m.hvns
    assert (hvn["price"], hvn["low"], hvn["high"]) == (106.0, 105.0, 108.0)
    # the higher of its two bases: the smoothed profile at its upper edge (110), 38.3
    assert hvn["prominence"] == pytest.approx(101.1111111 - 38.3333333)


def test_reference_v2_value_area_and_nodes() -> None:
    volumes = np.array([50, 100, 300, 500, 200, 100, 50], dtype=float)  # 99.97 … 100.03
    m = metrics_of(volumes, 9997, 0.01)
    assert (m.poc, m.val, m.vah, m.total_volume) == (100.0, 99.99, 100.01, 1300.0)
    # one hump again: its peak at 100.00 (the smoothed profile's highest row), no valley
    assert m.lvns == []
    assert [(n["price"], n["low"], n["high"]) for n in m.hvns] == [(100.0, 99.99, 100.01)]


def test_poc_tie_goes_to_the_middle_then_lower() -> None:
    # V1 levels 99.99:100, 100.00:400, 100.01:250, 100.02:400 — mid 100.005 → 100.00
    m = metrics_of(np.array([100, 400, 250, 400], dtype=float), 9999, 0.01)
    assert m.poc == 100.0
    # equal distance to the middle: the lower one
    m = metrics_of(np.array([5, 9, 1, 9, 5], dtype=float), 0, 1.0)
    assert m.poc == 1.0
    m = metrics_of(np.array([9, 1, 1, 1, 9], dtype=float), 0, 1.0)
    assert m.poc == 0.0
    m = metrics_of(np.array([9, 1, 9, 1, 1, 1, 9], dtype=float), 0, 1.0)
    assert m.poc == 2.0  # middle is 3: 2 is one away, 0 and 6 three away


def test_value_area_tie_goes_below_and_walks_empty_bins() -> None:
    # all equal: every comparison ties, so the walk goes down first
    m = metrics_of(np.full(11, 10.0), 0, 1.0)
    assert m.poc == 5.0
    assert (m.val, m.vah) == (0.0, 7.0)  # 6 below-or-POC bins (60) then 2 above: 80 >= 77
    # an empty bin is part of the profile and adds nothing when walked
    m = metrics_of(np.array([40, 0, 100, 0, 0, 45], dtype=float), 0, 1.0)
    assert m.poc == 2.0
    assert (m.val, m.vah) == (0.0, 2.0)  # 0 vs 0 → below (0), then 40 vs 0 → below: 140


def test_profile_trims_to_traded_range() -> None:
    m = metrics_of(np.array([0, 0, 5, 0, 7, 0], dtype=float), 100, 0.5)
    assert (m.poc, m.total_volume) == (52.0, 12.0)
    assert m.lvns == [] and m.hvns == []  # three rows, smoothed into one hump
    assert metrics_of(np.zeros(4), 0, 1.0) is None


def test_block_rows_with_own_ranges_match_one_by_one() -> None:
    rng = np.random.default_rng(3)
    rows, width = 40, 30
    volumes = np.zeros((rows, width))
    lo = rng.integers(0, 10, rows)
    hi = lo + rng.integers(0, 20, rows)
    for r in range(rows):
        volumes[r, lo[r] : hi[r] + 1] = rng.integers(0, 6, hi[r] - lo[r] + 1)
        volumes[r, lo[r]] = volumes[r, hi[r]] = 1 + rng.integers(0, 5)
    for method in ("single", "dual"):
        block = block_metrics(volumes, lo, hi, method)
        for r in range(rows):
            poc, val, vah = walk(list(volumes[r, lo[r] : hi[r] + 1]), method)
            assert (block.poc[r], block.val[r], block.vah[r]) == (
                lo[r] + poc,
                lo[r] + val,
                lo[r] + vah,
            ), (method, r)


@pytest.mark.parametrize("method", ["single", "dual"])
def test_wide_blocks_with_a_narrow_guess_still_walk_exactly(method: str) -> None:
    # wide rows take the sampled-guess path; rows 5 and 37 (not sampled) are flat and
    # need a much longer walk than the spiky sampled rows, so they must be walked again
    rng = np.random.default_rng(8)
    rows, width = 80, 600
    volumes = rng.integers(0, 3, (rows, width)).astype(float)
    volumes[:, 300] += 10_000.0
    volumes[:, 0] += 1
    volumes[:, -1] += 1
    volumes[5] = 10.0
    volumes[37, :] = rng.integers(40, 60, width)
    lo = np.zeros(rows, dtype=np.int64)
    hi = np.full(rows, width - 1, dtype=np.int64)
    block = block_metrics(volumes, lo, hi, method)
    for r in range(rows):
        assert (block.poc[r], block.val[r], block.vah[r]) == walk(list(volumes[r]), method), r


def test_unknown_method_is_rejected() -> None:
    with pytest.raises(ValueError, match="single"):
        metrics_of(textbook(), 101, 1.0, "triple")


profiles = st.lists(st.integers(0, 50), min_size=1, max_size=40).map(
    lambda v: [float(x) for x in [max(v[0], 1), *v[1:-1], max(v[-1], 1)]]
    if len(v) > 1
    else [float(max(v[0], 1))]
)


@settings(max_examples=300, deadline=None)
@given(profiles, st.sampled_from(["single", "dual"]))
def test_walk_matches_literal_rules(volumes: list[float], method: str) -> None:
    m = metrics_of(np.array(volumes), 0, 1.0, method)
    poc, val, vah = walk(volumes, method)
    assert (m.poc, m.val, m.vah) == (poc, val, vah)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.floats(0.0, 1e6, allow_nan=False, allow_subnormal=False), min_size=1, max_size=60),
    st.sampled_from(["single", "dual"]),
)
def test_value_area_holds_poc_and_seventy_percent(volumes: list[float], method: str) -> None:
    arr = np.array(volumes)
    m = metrics_of(arr, 0, 1.0, method)
    if m is None:
        assert arr.sum() == 0
        return
    assert m.val <= m.poc <= m.vah
    covered = arr[int(m.val) : int(m.vah) + 1].sum()
    assert covered >= 0.7 * arr.sum() * (1 - 1e-9)
    assert arr[int(m.poc)] == arr.max()
    for node in m.lvns + m.hvns:
        assert node["low"] <= node["price"] <= node["high"]


def test_bins_are_integer_indexes_rounded_to_nearest() -> None:
    prices = np.array([1666.2, 1666.22, 1666.2249, 1666.23, 100.0])
    assert bin_index(prices, 0.05).tolist() == [33324, 33324, 33324, 33325, 2000]
    assert bin_index(prices, 0.05).dtype == np.int64
    assert bin_price(np.array([33324]), 0.05).tolist() == [1666.2]  # not 1666.2000000000003
    assert [row_decimals(x) for x in (0.01, 0.05, 0.5, 1.0, 25.0, 0.0001)] == [2, 2, 1, 0, 0, 4]
    with pytest.raises(ValueError):
        bin_index(prices, 0.0)
