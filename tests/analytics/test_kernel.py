"""The compiled per-print kernel against the vectorised rules, and where it caches.

The kernel replaces numpy's classify → bin → bincount passes inside compute_session, so
it must give the same floats bit for bit (the pipeline tests pin compute_session's
output; these pin the kernel itself on inputs that exercise every precedence rule).
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import analytics.compiled
import analytics.pipeline
import analytics.print_kernel
import analytics.profile
import analytics.tick_input
from analytics.aggressor_side import SESSION_START, AggressorState, classify
from analytics.bins import bin_index
from analytics.nodes import NODE_FIELDS
from analytics.print_kernel import BAR_SUMS, fill_prints, fill_prints_py
from tests.support.paths import REPO

KERNEL_MODULES = (
    analytics.tick_input,
    analytics.print_kernel,
    analytics.profile,
)
PATHS = {"compiled": True, "numpy": False}  # what use_compiled answers for each path


def choose(monkeypatch: pytest.MonkeyPatch, path: str, *modules: object) -> None:
    for module in modules or KERNEL_MODULES:
        monkeypatch.setattr(module, "use_compiled", lambda items, c=PATHS[path]: c)


@pytest.fixture
def compiled(monkeypatch: pytest.MonkeyPatch) -> None:
    """Kernels compiled whatever the input size (small inputs take numpy otherwise)."""
    choose(monkeypatch, "compiled")


def zero_grids(rows: int, n_bins: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    shape = (rows, n_bins)
    return np.zeros(shape), np.zeros(shape), np.zeros(shape, dtype=np.int64)


def numpy_grids(price, size, side, bid, ask, starts, row_size, first_bin, n_bins, state):
    """The vectorised path: classify, bin, then one bincount per grid."""
    signs, after = classify(price, side, bid, ask, state)
    minute = np.repeat(np.arange(starts.size - 1), np.diff(starts))
    key = minute * n_bins + bin_index(price, row_size) - first_bin
    cells = (starts.size - 1) * n_bins
    volume = np.bincount(key, weights=size, minlength=cells)
    signed = np.bincount(key, weights=np.multiply(size, signs, dtype=np.float64), minlength=cells)
    count = np.bincount(key, minlength=cells)
    return volume, signed, count, after


def random_prints(rng: np.random.Generator, n: int, with_quotes: bool):
    price = np.round(100 + np.cumsum(rng.choice([-0.05, 0.0, 0.0, 0.05], n)), 2)
    size = rng.integers(1, 300, n) * rng.choice([1.0, 0.37], n)  # fractional sizes too
    side = bid = ask = None
    if with_quotes:
        side = np.where(rng.random(n) < 0.2, rng.choice([-1.0, 1.0, 0.0], n), np.nan)
        bid = np.where(rng.random(n) < 0.7, price - rng.choice([0.0, 0.05, 0.1], n), np.nan)
        ask = np.where(rng.random(n) < 0.7, price + rng.choice([-0.05, 0.0, 0.05], n), np.nan)
    cuts = np.sort(rng.integers(0, n + 1, 6))
    starts = np.concatenate([[0], cuts, [n]]).astype(np.int64)
    return price, size, side, bid, ask, starts


def assert_one_pass_matches_numpy(
    prints: tuple[np.ndarray, ...],
    starts: np.ndarray,
    row_size: float,
    first_bin: int,
    grids: tuple[np.ndarray, ...],
    state: AggressorState,
) -> None:
    """The print pass fills the grids and hands on the tick-rule state exactly as numpy does."""
    price, size, side, bid, ask = prints
    n_bins = grids[0].shape[1]
    after = fill_prints(
        *prints, starts, row_size, first_bin, grids, (state.last_price, state.last_sign)
    )
    volume, signed, count, expected = numpy_grids(
        price, size, side, bid, ask, starts, row_size, first_bin, n_bins, state
    )
    assert np.array_equal(grids[0].ravel(), volume)
    assert np.array_equal(grids[1].ravel(), signed)
    assert np.array_equal(grids[2].ravel(), count)
    assert AggressorState(*after) == expected


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("with_quotes", [False, True])
@pytest.mark.parametrize("state", [SESSION_START, AggressorState(100.0, -1)])
def test_kernel_matches_classify_and_bincount_bit_for_bit(
    with_quotes, state, path: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    choose(monkeypatch, path, analytics.print_kernel)
    rng = np.random.default_rng(11 if with_quotes else 5)
    price, size, side, bid, ask, starts = random_prints(rng, 20_000, with_quotes)
    row_size = 0.05
    bins = bin_index(price, row_size)
    first_bin, n_bins = int(bins.min()) - 2, int(bins.max() - bins.min()) + 5
    rows = starts.size - 1
    assert_one_pass_matches_numpy(
        (price, size, side, bid, ask), starts, row_size, first_bin, zero_grids(rows, n_bins), state
    )


@pytest.mark.usefixtures("compiled")
@pytest.mark.parametrize("flat_start", [False, True])
@pytest.mark.parametrize("state", [SESSION_START, AggressorState(100.0, -1)])
def test_kernel_split_over_threads_is_the_same_pass(
    flat_start: bool, state: AggressorState, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Minutes cut into parts, each from the tick-rule state before it, add what one pass adds.

    flat_start: no price change before the later parts, so their state comes from the
    state carried in (the backward scan reaches the first print).
    """
    monkeypatch.setattr(analytics.compiled, "SPLIT_MIN_ITEMS", 500)
    monkeypatch.setattr(analytics.compiled, "cores", lambda: 4)
    rng = np.random.default_rng(23)
    price, size, side, bid, ask, starts = random_prints(rng, 20_000, with_quotes=True)
    starts = np.linspace(0, price.size, 41).astype(np.int64)  # 40 minutes: 4 parts
    if flat_start:
        price[:15_000] = 100.0
    row_size = 0.05
    bins = bin_index(price, row_size)
    first_bin, n_bins = int(bins.min()), int(bins.max() - bins.min()) + 1
    assert len(analytics.print_kernel._minute_parts(starts)) == 4
    assert_one_pass_matches_numpy(
        (price, size, side, bid, ask),
        starts,
        row_size,
        first_bin,
        zero_grids(starts.size - 1, n_bins),
        state,
    )


@pytest.mark.usefixtures("compiled")
def test_uncompiled_source_is_the_same_kernel() -> None:
    rng = np.random.default_rng(2)
    price, size, side, bid, ask, starts = random_prints(rng, 2_000, with_quotes=True)
    bins = bin_index(price, 0.05)
    first_bin, n_bins = int(bins.min()), int(bins.max() - bins.min()) + 1
    rows = starts.size - 1
    outputs = []
    for run in ("compiled", "python"):
        grids = zero_grids(rows, n_bins)
        if run == "compiled":
            state = fill_prints(
                price, size, side, bid, ask, starts, 0.05, first_bin, grids, (np.nan, 0)
            )
        else:
            volume, signed, count = (g.reshape(-1) for g in grids)
            state = fill_prints_py(
                price,
                size,
                side,
                bid,
                ask,
                starts,
                20.0,
                first_bin,
                n_bins,
                volume,
                signed,
                count,
                np.full((rows, BAR_SUMS), np.nan),
                np.nan,
                0,
                np.zeros(0, np.int64),  # checked already: no times to check
            )
            assert state[2] is False  # nothing checked, nothing failed
            state = state[:2]
        outputs.append((grids, state))
    (compiled_grids, compiled_state), (python_grids, python_state) = outputs
    assert all(np.array_equal(a, b) for a, b in zip(compiled_grids, python_grids, strict=True))
    assert compiled_state == python_state


RUN_KERNEL = textwrap.dedent(
    """
    import numpy as np
    import analytics.print_kernel
    from analytics.print_kernel import fill_prints
    analytics.print_kernel.use_compiled = lambda items: True  # whatever the size
    grids = (np.zeros((1, 3)), np.zeros((1, 3)), np.zeros((1, 3), dtype=np.int64))
    price = np.array([1.0, 1.1, 1.1, 1.0])
    state = fill_prints(price, np.ones(4), None, None, None, np.array([0, 4]), 0.1, 10,
                        grids, (float("nan"), 0))
    print(grids[0].tolist(), grids[1].tolist(), state)
    """
)
EXPECTED = "[[2.0, 2.0, 0.0]] [[-1.0, 2.0, 0.0]] (1.0, -1)"


def run_kernel(tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("NUMBA_")}
    environ.update(env, PYTHONPATH=str(REPO))
    return subprocess.run(
        [sys.executable, "-c", RUN_KERNEL],
        cwd=tmp_path,
        env=environ,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_compiled_code_is_cached_under_marketflow_home(tmp_path: Path) -> None:
    home = tmp_path / "home"
    first = run_kernel(tmp_path, MARKETFLOW_HOME=str(home))
    assert first.returncode == 0, first.stderr
    assert first.stdout.strip() == EXPECTED
    cached = list((home / "numba-cache").rglob("*.nbi"))
    assert any("fill_prints_py" in path.name for path in cached)
    again = run_kernel(tmp_path, MARKETFLOW_HOME=str(home))  # loads the cached code
    assert again.returncode == 0 and again.stdout.strip() == EXPECTED, again.stderr


def test_kernel_still_runs_when_no_cache_location_is_writable(tmp_path: Path) -> None:
    # a home that cannot be created (a file is in the way) and numba's own locators all
    # refusing, as on a read-only installation without a writable home directory
    (tmp_path / "blocked").write_text("")
    result = run_kernel(
        tmp_path,
        MARKETFLOW_HOME=str(tmp_path / "blocked" / "home"),
        NUMBA_CACHE_LOCATOR_CLASSES="IPythonCacheLocator",  # only for notebook cells
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == EXPECTED
    assert "numba cache unavailable" in result.stderr


def random_block(seed: int, rows: int, width: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Profiles with fractional volumes (sums that depend on their order), empty bins,
    ties for the POC, one-bin rows and runs touching the range's edges."""
    rng = np.random.default_rng(seed)
    volumes = rng.gamma(0.5, 30.0, (rows, width)) * (rng.random((rows, width)) < 0.7)
    volumes[::9] = np.round(volumes[::9] / 10.0)  # small integers: many equal bins
    lo = rng.integers(0, width // 2, rows)
    hi = np.maximum(lo, rng.integers(width // 3, width, rows))
    hi[:5] = lo[:5]  # one-bin profiles
    cols = np.arange(width)[None, :]
    volumes[(cols < lo[:, None]) | (cols > hi[:, None])] = 0.0
    volumes[np.arange(rows), lo] += 1.0
    volumes[np.arange(rows), hi] += 1.0
    return volumes, lo, hi


def same_metrics(got, want) -> None:
    assert np.array_equal(got.total, want.total)  # bit for bit
    for name in ("poc", "val", "vah"):
        assert np.array_equal(getattr(got, name), getattr(want, name)), name
    for kind in ("lvns", "hvns"):
        for field in NODE_FIELDS:
            got_field = getattr(getattr(got, kind), field)
            assert np.array_equal(got_field, getattr(getattr(want, kind), field)), (kind, field)


@pytest.mark.parametrize("method", ["single", "dual"])
def test_profile_kernel_equals_its_source_and_the_numpy_form(
    method: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """POC, value area, total and nodes of a block: compiled, uncompiled source and numpy
    agree exactly (prominences bit for bit)."""
    from analytics.node_kernel import node_rows, node_rows_py
    from analytics.profile import block_metrics
    from analytics.profile_kernel import profile_rows, profile_rows_py

    volumes, lo, hi = random_block(5, 300, 70)
    blocks = {}
    for path in PATHS:
        choose(monkeypatch, path, analytics.profile)
        blocks[path] = block_metrics(volumes, lo, hi, method, (5, 0.05, 0.05))
    same_metrics(blocks["compiled"], blocks["numpy"])
    assert blocks["numpy"].lvns.row.size > 100 and blocks["numpy"].hvns.row.size > 100

    rows = np.arange(300)
    out, total = np.empty((300, 3), np.int64), np.empty(300)
    per = 2 if method == "dual" else 1
    profile_rows_py(volumes.ravel(), 70, rows, lo, hi, np.zeros(0), lo, hi, per, out, total)
    compiled_total, compiled_out = profile_rows(volumes, rows, lo, hi, per == 2)
    assert np.array_equal(total, compiled_total) and np.array_equal(out, compiled_out)

    nodes, prominence = np.empty((3000, 5), np.int64), np.empty(3000)
    n_out = np.zeros(1, np.int64)
    scratch = (np.empty((2, 70)), np.empty((2, 70), np.int64), np.empty((2, 70)))
    node_args = (volumes.ravel(), 70, rows, lo, hi, np.zeros(0), lo, hi, 0, 5, 0.05, 0.05)
    node_rows_py(*node_args, nodes, prominence, n_out, *scratch)
    compiled_nodes, compiled_prominence = node_rows(volumes, rows, lo, hi, (5, 0.05, 0.05))
    assert np.array_equal(nodes[: n_out[0]], compiled_nodes)
    assert np.array_equal(prominence[: n_out[0]], compiled_prominence)


@pytest.mark.parametrize("method", ["single", "dual"])
def test_running_profiles_are_the_same_on_both_paths(
    method: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The session's running profile: the compiled pass adds each minute's traded range to
    one vector, numpy lays the running profiles out as a grid; same metrics and sums."""
    from analytics.grid_frames import _row_ranges
    from analytics.profile import running_metrics

    volumes, _, _ = random_block(8, 120, 90)
    volumes[:7] = 0.0  # minutes before the first trade
    volumes[40:43] = 0.0  # quiet minutes inside the session
    lo, hi = _row_ranges(volumes > 0)
    before = (np.zeros(90), 90, -1)
    results = {}
    for path in PATHS:
        choose(monkeypatch, path, analytics.profile)
        first_half = running_metrics(volumes[:60], lo[:60], hi[:60], before, method)
        second_half = running_metrics(volumes[60:], lo[60:], hi[60:], first_half[2], method)
        results[path] = (first_half, second_half)
    for got, want in zip(results["compiled"], results["numpy"], strict=True):
        same_metrics(got[0], want[0])
        assert got[1] == want[1]
        assert np.array_equal(got[2][0], want[2][0]) and got[2][1:] == want[2][1:]
    assert results["numpy"][0][1] == 7 and results["numpy"][1][1] == 0


@pytest.mark.parametrize("method", ["single", "dual"])
def test_compute_session_is_the_same_on_both_paths(
    method: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import pandas as pd

    from analytics.pipeline import compute_session
    from bench.synthetic.ticks import SESSION_MINUTES, SESSION_OPEN, walk_ticks

    ticks = walk_ticks(40_000, seed=9)
    ticks["size"] *= 0.37  # fractional sizes: sums that depend on their order
    ticks.loc[::7, "side"] = 1.0
    ticks.loc[::5, "bid"] = ticks["price"] - 0.01
    ticks.loc[[3, 900], "price"] = [np.nan, -1.0]  # bad rows, counted on both paths
    ticks.loc[[11, 2_000], "size"] = [0.0, np.inf]
    ticks = ticks.iloc[[*range(1, 30_000), 0, *range(30_000, len(ticks))]]  # out of order
    monkeypatch.setattr(analytics.compiled, "SPLIT_MIN_ITEMS", 1_000)  # checks split over parts
    close = SESSION_OPEN + pd.Timedelta(minutes=SESSION_MINUTES)
    frames = {}
    for path in PATHS:
        choose(monkeypatch, path)
        frames[path] = compute_session(ticks, 0.01, SESSION_OPEN, close, method=method)
    for name in ("volume_profile", "profile_metrics", "order_flow", "session_profile"):
        pd.testing.assert_frame_equal(
            getattr(frames["compiled"], name), getattr(frames["numpy"], name), check_exact=True
        )
    assert frames["compiled"].aggressor_state == frames["numpy"].aggressor_state
    assert (
        frames["compiled"].rejected
        == frames["numpy"].rejected
        == {
            "bad_price": 2,
            "bad_size": 2,
        }
    )


BAD_VALUES = [np.nan, np.inf, -np.inf, 0.0, -0.0, -1.0]


@pytest.mark.parametrize("bad", [*BAD_VALUES, 5e-324])  # the last is valid: subnormal > 0
@pytest.mark.parametrize("at", [0, 249, 250, 999])  # parts start at 0, 250, 500, 750
def test_compiled_price_check_agrees_with_numpy(
    bad: float, at: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    from analytics.print_kernel import price_range

    monkeypatch.setattr(analytics.compiled, "SPLIT_MIN_ITEMS", 100)
    monkeypatch.setattr(analytics.compiled, "cores", lambda: 4)
    price = np.random.default_rng(at).uniform(1.0, 2.0, 1_000)
    price[at] = bad
    valid = bad == 5e-324
    assert price_range(price) == ((price.min(), price.max()) if valid else None)
    assert price_range(price[:0]) is None and price_range(np.ones(1)) == (1.0, 1.0)


def _fault(ticks: pd.DataFrame, fault: str, at: int) -> None:
    """One bad row at ``at`` (the last for "late outside")."""
    ts = ticks["ts"].copy()
    if fault == "bad size":
        ticks.loc[at, "size"] = np.inf
    elif fault == "zero size":
        ticks.loc[at, "size"] = 0.0
    elif fault == "bad price":
        ticks.loc[at, "price"] = np.nan
    elif fault == "time back":  # one nanosecond before the print before it
        ts.iloc[at] = ts.iloc[at - 1] - pd.Timedelta(1, "ns")
    elif fault == "swapped":  # two prints of different minutes trade places
        ts.iloc[at], ts.iloc[at - 1] = ts.iloc[at - 1] + pd.Timedelta(minutes=3), ts.iloc[at]
    elif fault == "late outside":  # a pre-open print arriving last
        ts.iloc[-1] = ts.iloc[0] - pd.Timedelta(hours=1)
    elif fault == "after close":  # a print after the close, then the session's last one
        ts.iloc[-2] = ts.iloc[-1] + pd.Timedelta(hours=12)
    ticks["ts"] = ts


FAULTS = [
    "bad size",
    "zero size",
    "bad price",
    "time back",
    "swapped",
    "late outside",
    "after close",
]


@pytest.mark.parametrize("fault", FAULTS)
@pytest.mark.parametrize("at", [1, 4_999, 5_000, 9_990])  # parts start near 2.5 k, 5 k, 7.5 k
def test_faults_the_print_pass_finds_give_the_checked_result(
    fault: str, at: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A large input reads its columns once: its order and sizes are checked by the print
    pass itself. Whatever it meets (a bad size, a time out of order inside the session or
    outside it, next to a part boundary or not), the result and the counts are those of
    checking every print first."""
    from analytics.pipeline import compute_session
    from bench.synthetic.ticks import SESSION_MINUTES, SESSION_OPEN, walk_ticks

    monkeypatch.setattr(analytics.compiled, "SPLIT_MIN_ITEMS", 1_000)
    monkeypatch.setattr(analytics.compiled, "cores", lambda: 4)
    ticks = walk_ticks(10_000, seed=at)[["ts", "price", "size"]]
    _fault(ticks, fault, at)
    close = SESSION_OPEN + pd.Timedelta(minutes=SESSION_MINUTES)
    prepared: list[bool] = []
    prepare = analytics.pipeline.prepare_ticks

    def spy(*args, **kwargs):
        arrays = prepare(*args, **kwargs)
        prepared.append(arrays.unchecked)
        return arrays

    monkeypatch.setattr(analytics.pipeline, "prepare_ticks", spy)
    frames, preparations = {}, {}
    for path in PATHS:
        choose(monkeypatch, path)
        prepared.clear()
        frames[path] = compute_session(ticks, 0.01, SESSION_OPEN, close)
        preparations[path] = list(prepared)
    # the print pass met the fault and the ticks were prepared again, checked; a bad price,
    # or a time out of order outside the session, is caught before any print is added
    found_by_pass = fault not in ("bad price", "after close")
    assert preparations == {
        "compiled": [True, False] if found_by_pass else [False],
        "numpy": [False],
    }
    for name in ("volume_profile", "profile_metrics", "order_flow", "session_profile"):
        pd.testing.assert_frame_equal(
            getattr(frames["compiled"], name), getattr(frames["numpy"], name), check_exact=True
        )
    assert frames["compiled"].rejected == frames["numpy"].rejected
    expected = {"bad size": "bad_size", "zero size": "bad_size", "bad price": "bad_price"}
    if fault in expected:
        assert frames["numpy"].rejected == {expected[fault]: 1}
    elif fault in ("late outside", "after close"):
        assert frames["numpy"].rejected == {"outside_session": 1}
    else:  # sorted again; a print moved past the close is outside the session
        assert set(frames["numpy"].rejected) <= {"outside_session"}
