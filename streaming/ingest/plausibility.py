"""Plausibility band: a print far from its symbol's recent prices is a counted reject.

A print is plausible when its price lies within ``band`` of the symbol's reference price,
symmetrically in ratio: ``ref / (1 + band) ≤ price ≤ ref × (1 + band)`` (``band`` = 0.5,
the default, accepts 133.33–300 around 200: no real move between two prints goes that far,
while a shifted decimal or an absurd print does). The reference is the last plausible
price. Seeding: the pipeline seeds every symbol from its last stored candle close
(``seed``); a symbol with no stored price takes its first print (one print) or, for a
batch, the median of the batch's first ``confirm`` prints.

A real jump (a halt reopening, a replay of an older period) must not be lost: prints
outside the band are *held*, not stored. When ``confirm`` held prints in a row agree with
each other (all within the band of their median) they are a new level: they are released
in order and the reference moves. A plausible print arriving first ends the run: the held
prints are rejected (``implausible_price``). A batch is judged per block of
``BLOCK`` prints; a block of at least ``confirm`` prints whose median is outside the band
moves the reference to that median first (the block's majority is the confirmation); the
out-of-band prints of a smaller block go through ``offer`` one by one, so small batches
confirm a level across batches like single prints do.
docs/ingest.md describes the settings.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Generic, TypeVar

import numpy as np
import numpy.typing as npt

IMPLAUSIBLE = "implausible_price"
BLOCK = 512  # batch prints judged against one reference

T = TypeVar("T")


@dataclass
class _Held(Generic[T]):
    prices: list[float] = field(default_factory=list)
    items: list[T] = field(default_factory=list)


class PriceBand(Generic[T]):
    def __init__(self, band: float, confirm: int) -> None:
        if not band > 0 or confirm < 1:
            raise ValueError("the plausibility band needs band > 0 and confirm ≥ 1")
        self.band = band
        self.confirm = confirm
        self._hi = math.log1p(band)
        self.ref: dict[str, float] = {}
        self._held: dict[str, _Held[T]] = {}

    def inside(self, price: float, ref: float) -> bool:
        return abs(math.log(price / ref)) <= self._hi

    def seed(self, prices: Mapping[str, float]) -> None:
        """References from stored prices, for symbols that have none yet."""
        for symbol, price in prices.items():
            if symbol not in self.ref and math.isfinite(price) and price > 0:
                self.ref[symbol] = float(price)

    # --- one print at a time ----------------------------------------------------------
    def offer(self, symbol: str, price: float, item: T) -> tuple[list[T], list[T]]:
        """Judge one (finite, positive) print: (items to store now, in order; rejected)."""
        ref = self.ref.get(symbol)
        if ref is None:
            self.ref[symbol] = price
            return [item], []
        held = self._held.get(symbol)
        if self.inside(price, ref):
            self.ref[symbol] = price
            rejected = held.items if held else []
            self._held.pop(symbol, None)
            return [item], rejected
        if held is None:
            held = self._held[symbol] = _Held()
        held.prices.append(price)
        held.items.append(item)
        rejected = []
        if len(held.prices) > self.confirm:  # scattered prints: the oldest gives up its place
            held.prices.pop(0)
            rejected.append(held.items.pop(0))
        if len(held.prices) == self.confirm:
            mid = float(np.median(held.prices))
            if all(self.inside(p, mid) for p in held.prices):
                self.ref[symbol] = held.prices[-1]
                del self._held[symbol]
                return held.items, rejected
        return [], rejected

    def held(self) -> int:
        return sum(len(h.items) for h in self._held.values())

    def drain(self) -> list[T]:
        """Give up every held print (unconfirmed at shutdown): they are rejected."""
        out = [item for h in self._held.values() for item in h.items]
        self._held.clear()
        return out

    # --- a batch of one symbol --------------------------------------------------------
    def judge_batch(
        self, symbol: str, price: npt.NDArray[np.float64]
    ) -> tuple[npt.NDArray[np.bool_], npt.NDArray[np.bool_]]:
        """(keep, defer) masks for a batch's (finite, positive) prices, in order; moves the
        reference. ``defer``: out of band in a block too small to confirm a level on its
        own; the caller offers those prints one by one (``offer``), where they are held."""
        n = price.shape[0]
        keep = np.zeros(n, bool)
        defer = np.zeros(n, bool)
        if n == 0:
            return keep, defer
        ref: float | None = self.ref.get(symbol)
        logp = np.log(price)
        for start in range(0, n, BLOCK):
            block = logp[start : start + BLOCK]
            if ref is None:
                ref = float(np.median(price[start : start + min(self.confirm, block.shape[0])]))
            lref = math.log(ref)
            ok = np.abs(block - lref) <= self._hi
            if not ok.all() and block.shape[0] >= self.confirm:
                mid = float(np.median(block))  # only when something is out: rare
                if abs(mid - lref) > self._hi:
                    lref = mid
                    ok = np.abs(block - lref) <= self._hi
            elif not ok.all():
                defer[start : start + block.shape[0]] = ~ok
            keep[start : start + block.shape[0]] = ok
            kept = np.flatnonzero(ok)
            ref = float(price[start + kept[-1]]) if kept.size else math.exp(lref)
        if ref is not None:
            self.ref[symbol] = ref
        return keep, defer
