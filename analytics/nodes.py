"""Low- and high-volume nodes of a profile (docs/semantics.md): the numpy form of the rule.

A node is a valley (LVN) or a peak (HVN) of the profile smoothed by a centred moving
average applied twice, whose half-width is one bin per ``SMOOTHING_DIVISOR`` bins of the
profile, with a prominence of at least a share of the smoothed profile's POC volume; at
most ``count`` of each kind are kept, strongest first, each at least a share of the
profile's rows away from a stronger one of its kind. Large blocks of profiles go to the
compiled pass of ``analytics.node_kernel``, which documents the rule's arithmetic step
by step; this form performs the same float operations, so both give the same nodes and
prominences.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from analytics.footprint_config import DEFAULT_CONFIG, FootprintConfig
from analytics.node_kernel import HVN, LVN, separation_bins, smoothing_half_width

# (count, prominence, separation) as the kernel takes them
NodeRule = tuple[int, float, float]


def node_rule(config: FootprintConfig = DEFAULT_CONFIG) -> NodeRule:
    return (config.node_count, config.node_prominence, config.node_separation)


DEFAULT_RULE = node_rule()


@dataclass(frozen=True)
class Nodes:
    """Nodes of a block of profiles, in profile order then by bin: the profile (row),
    the node's bin (centre), the first and last bin of its extent, its prominence."""

    row: np.ndarray
    centre: np.ndarray
    start: np.ndarray
    end: np.ndarray
    prominence: np.ndarray

    @classmethod
    def empty(cls) -> Nodes:
        none = np.zeros(0, dtype=np.int64)
        return cls(none, none, none, none, np.zeros(0))

    @classmethod
    def concat(cls, parts: list[Nodes]) -> Nodes:
        if not parts:
            return cls.empty()
        return cls(*(np.concatenate([getattr(p, f) for p in parts]) for f in NODE_FIELDS))

    def select(self, keep: np.ndarray, row_shift: int = 0) -> Nodes:
        return Nodes(
            self.row[keep] - row_shift,
            self.centre[keep],
            self.start[keep],
            self.end[keep],
            self.prominence[keep],
        )


NODE_FIELDS = ("row", "centre", "start", "end", "prominence")


def smoothed(volumes: np.ndarray) -> np.ndarray:
    """The profile's centred moving average applied twice (windows cut at the edges)."""
    n = volumes.shape[0]
    h = smoothing_half_width(n)
    index = np.arange(n)
    left, right = np.maximum(index - h, 0), np.minimum(index + h, n - 1)
    out = volumes
    for _ in range(2):
        prefix = np.cumsum(out)  # added one by one from the lowest bin, as the kernel
        below = np.where(left > 0, prefix[np.maximum(left - 1, 0)], 0.0)
        out = (prefix[right] - below) * (1.0 / (right - left + 1))
    return out


def profile_nodes(volumes: np.ndarray, rule: NodeRule = DEFAULT_RULE) -> list[tuple]:
    """(kind, centre, low, high, prominence) of one profile's nodes, bins counted from its
    lowest; LVNs then HVNs, each by bin. Profiles under three bins have none."""
    count, prominence, separation = rule
    volumes = np.asarray(volumes, dtype=np.float64)
    n = volumes.shape[0]
    if n < 3:
        return []
    smooth = smoothed(volumes)
    need = prominence * smooth.max()
    gap = separation_bins(separation, n)
    found: list[tuple] = []
    for kind in (LVN, HVN):
        # a valley is a peak of the negated profile (negation is exact)
        values = smooth if kind == HVN else -smooth
        centres, proms = _peaks(values, need)
        kept: list[tuple] = []
        for c in np.lexsort((centres, -proms)).tolist():
            if len(kept) == count:
                break
            centre, prom = int(centres[c]), float(proms[c])
            if any(abs(other[1] - centre) < gap for other in kept):
                continue
            reach = values[centre] - prom * 0.5
            below = np.flatnonzero(values[:centre] < reach)
            above = np.flatnonzero(values[centre + 1 :] < reach)
            low = int(below[-1]) + 1 if below.size else 0
            high = centre + int(above[0]) if above.size else n - 1
            kept.append((kind, centre, low, high, prom))
        found += sorted(kept, key=lambda node: node[1])
    return found


def _peaks(values: np.ndarray, need: float) -> tuple[np.ndarray, np.ndarray]:
    """Centres and prominences of the interior peaks (runs of equal values) of at least
    ``need``."""
    n = values.shape[0]
    starts = np.flatnonzero(np.concatenate([[True], values[1:] != values[:-1]]))
    ends = np.concatenate([starts[1:] - 1, [n - 1]])
    inner = (starts > 0) & (ends < n - 1)
    starts, ends = starts[inner], ends[inner]
    top = values[starts]
    peak = (values[starts - 1] < top) & (values[ends + 1] < top)
    centres, proms = [], []
    for i, j in zip(starts[peak].tolist(), ends[peak].tolist(), strict=True):
        x = values[i]
        higher = np.flatnonzero(values[:i] > x)
        left_base = values[(int(higher[-1]) + 1 if higher.size else 0) : i].min()
        higher = np.flatnonzero(values[j + 1 :] > x)
        right_base = values[j + 1 : j + 1 + (int(higher[0]) if higher.size else n)].min()
        prom = x - max(left_base, right_base)
        if prom >= need:
            centres.append((i + j) // 2)
            proms.append(prom)
    return np.array(centres, dtype=np.int64), np.array(proms, dtype=np.float64)


def block_nodes(
    volumes: np.ndarray,
    lo: np.ndarray,
    hi: np.ndarray,
    rule: NodeRule = DEFAULT_RULE,
    first: int = 0,
) -> tuple[Nodes, Nodes]:
    """(LVNs, HVNs) of each row's profile over its columns [lo, hi], rows first..;
    columns are the block's."""
    parts: dict[int, list[list[int | float]]] = {LVN: [], HVN: []}
    for k in range(first, volumes.shape[0]):
        a, b = int(lo[k]), int(hi[k])
        for kind, centre, low, high, prom in profile_nodes(volumes[k, a : b + 1], rule):
            parts[kind].append([k, a + centre, a + low, a + high, prom])
    return _nodes(parts[LVN]), _nodes(parts[HVN])


def _nodes(rows: list[list[int | float]]) -> Nodes:
    if not rows:
        return Nodes.empty()
    table = np.array(rows, dtype=np.float64)
    ints = table[:, :4].astype(np.int64)
    return Nodes(ints[:, 0], ints[:, 1], ints[:, 2], ints[:, 3], table[:, 4].copy())


def from_kernel(out: np.ndarray, prominence: np.ndarray) -> tuple[Nodes, Nodes]:
    """(LVNs, HVNs) from the kernel's (kind, k, centre, low, high) rows."""
    kinds = []
    for kind in (LVN, HVN):
        keep = out[:, 0] == kind
        picked = out[keep]
        kinds.append(
            Nodes(
                picked[:, 1].copy(),
                picked[:, 2].copy(),
                picked[:, 3].copy(),
                picked[:, 4].copy(),
                prominence[keep].copy(),
            )
        )
    return kinds[0], kinds[1]
