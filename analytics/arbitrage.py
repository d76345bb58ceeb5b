"""Polymarket YES/NO and negRisk arbitrage maths (docs/semantics.md): pure functions, no I/O.

One source of truth for the streaming monitor, paper trading, the benchmark and the tests.

Conventions:
- prices are dollars per share in (0, 1); a winning share redeems at 1.00;
- an ask ladder is a sequence of ``(price, size)`` sorted best first (ascending price);
- the taker fee of one leg is ``rate × p × (1 − p)`` dollars per share (rate by category);
- ``min_edge`` is THE threshold: edge per share after fees, in dollars. An opportunity
  needs ``edge > min_edge`` (strict). It has no other meaning anywhere.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import NamedTuple

Ladder = Sequence[tuple[float, float]]

# a redeemed winning share is worth exactly one dollar
PAYOUT = 1.0
# prices are decimal ticks carried as floats: 1 − 0.99 is 0.010000000000000009, so an edge
# must beat the threshold by more than float noise to count (far below any tick or fee)
EPSILON = 1e-9


def clears(edge: float, min_edge: float) -> bool:
    """THE test: ``edge > min_edge`` (strict, robust to float noise)."""
    return edge - min_edge > EPSILON


def taker_fee(price: float, rate: float) -> float:
    """Taker fee per share of one leg bought (or sold) at ``price``."""
    return rate * price * (1.0 - price)


def fee_rate_for(category: str | None, rates: Mapping[str, float], default: float = 0.0) -> float:
    """Fee rate of a category (case-insensitive, ``None`` safe), else ``default``."""
    if category:
        key = category.strip().lower()
        for name, rate in rates.items():
            if name.strip().lower() == key:
                return float(rate)
    return float(default)


def pair_cost(yes_ask: float, no_ask: float, rate: float) -> float:
    """Cost of one YES + one NO share bought at the asks, fees included."""
    return yes_ask + no_ask + taker_fee(yes_ask, rate) + taker_fee(no_ask, rate)


def pair_edge(yes_ask: float, no_ask: float, rate: float) -> float:
    """Edge per equal-share pair: ``1 − (yes_ask + no_ask) − fees``."""
    return PAYOUT - pair_cost(yes_ask, no_ask, rate)


def spread(yes_ask: float, no_ask: float) -> float:
    """The 'spread': cost to buy one of each before fees."""
    return yes_ask + no_ask


def exit_value(yes_bid: float, no_bid: float, rate: float = 0.0) -> float:
    """What selling one pair realises now: the bids (never the asks), net of taker fees."""
    return yes_bid + no_bid - taker_fee(yes_bid, rate) - taker_fee(no_bid, rate)


@dataclass(frozen=True, slots=True)
class Fill:
    """Result of walking ask ladders with equal share counts on every leg."""

    shares: float = 0.0  # shares bought on EACH leg
    cost: float = 0.0  # Σ price × shares over legs (before fees)
    fees: float = 0.0  # Σ taker fees over legs
    worst_prices: tuple[float, ...] = ()  # deepest price touched on each leg

    @property
    def profit(self) -> float:
        """Locked profit at resolution: shares × 1 − cost − fees."""
        return self.shares * PAYOUT - self.cost - self.fees

    @property
    def edge(self) -> float:
        """Average edge per share over the filled size (0 when nothing fills)."""
        return self.profit / self.shares if self.shares > 0 else 0.0


def walk_asks(
    ladders: Sequence[Ladder],
    rate: float | Sequence[float],
    min_edge: float,
    max_shares: float = float("inf"),
) -> Fill:
    """Buy equal share counts of every leg while the MARGINAL edge stays ``> min_edge``.

    ``ladders`` holds one ask ladder per leg (2 for a YES/NO pair, n for a negRisk basket,
    each best first). The marginal edge at a step is ``1 − Σ pᵢ − Σ fee(pᵢ)`` at the
    current level of each leg; the step size is the smallest remaining size among them.
    """
    n = len(ladders)
    if n == 0 or any(len(ladder) == 0 for ladder in ladders):
        return Fill()
    rates = [float(rate)] * n if isinstance(rate, int | float) else [float(r) for r in rate]
    idx = [0] * n
    left = [float(ladder[0][1]) for ladder in ladders]
    shares = cost = fees = 0.0
    worst = [0.0] * n
    while shares < max_shares:
        prices = [float(ladders[i][idx[i]][0]) for i in range(n)]
        leg_fees = [taker_fee(prices[i], rates[i]) for i in range(n)]
        if not clears(PAYOUT - sum(prices) - sum(leg_fees), min_edge):
            break
        qty = min(min(left), max_shares - shares)
        if qty > 0:
            shares += qty
            cost += qty * sum(prices)
            fees += qty * sum(leg_fees)
            worst = prices
        exhausted = False
        for i in range(n):
            left[i] -= qty
            if left[i] <= 1e-12:
                idx[i] += 1
                if idx[i] >= len(ladders[i]):
                    exhausted = True
                else:
                    left[i] = float(ladders[i][idx[i]][1])
        if exhausted:
            break
    return Fill(shares=shares, cost=cost, fees=fees, worst_prices=tuple(worst))


class PairView(NamedTuple):
    """One binary market's quote at an instant (docs/semantics.md, Arbitrage).

    A NamedTuple: built on every book message, so construction cost matters."""

    yes_bid: float | None
    yes_ask: float | None
    no_bid: float | None
    no_ask: float | None
    spread: float | None  # yes_ask + no_ask
    edge: float | None  # 1 − spread − fees at the top of both asks
    executable_size: float  # equal shares fillable while the marginal edge > min_edge
    exit_value: float | None  # yes_bid + no_bid (net of fees)
    arbitrage: bool

    @property
    def yes_mid(self) -> float | None:
        return _mid(self.yes_bid, self.yes_ask)

    @property
    def no_mid(self) -> float | None:
        return _mid(self.no_bid, self.no_ask)


def _mid(bid: float | None, ask: float | None) -> float | None:
    if bid is None or ask is None:
        return None
    return (bid + ask) / 2.0


def evaluate_pair(
    yes_bid: float | None,
    yes_ask: float | None,
    no_bid: float | None,
    no_ask: float | None,
    rate: float,
    min_edge: float,
    yes_asks: Ladder | None = None,
    no_asks: Ladder | None = None,
    stale: bool = False,
) -> PairView:
    """Quote, edge and executable size of a YES/NO pair.

    The ladders are only walked when the top-of-book edge clears ``min_edge`` (the
    common case costs O(1)); no ladders means no executable size and no flag.
    A stale quote never flags an opportunity.
    """
    if yes_ask is None or no_ask is None:
        sp = edge = None
    else:
        sp = yes_ask + no_ask
        edge = pair_edge(yes_ask, no_ask, rate)
    size = 0.0
    if edge is not None and clears(edge, min_edge) and yes_asks and no_asks:
        size = walk_asks((yes_asks, no_asks), rate, min_edge).shares
    exit_ = None if yes_bid is None or no_bid is None else exit_value(yes_bid, no_bid, rate)
    flagged = (not stale) and edge is not None and clears(edge, min_edge) and size > 0
    return PairView(yes_bid, yes_ask, no_bid, no_ask, sp, edge, size, exit_, flagged)


@dataclass(frozen=True, slots=True)
class BasketView:
    """A negRisk event: buy one YES of every outcome; exactly one redeems at 1."""

    ask_sum: float | None  # Σ best YES asks
    edge: float | None  # 1 − Σ asks − Σ fees
    executable_size: float
    arbitrage: bool


def evaluate_basket(
    yes_asks: Sequence[Ladder | None],
    rates: float | Sequence[float],
    min_edge: float,
    augmented: bool = False,
    stale: bool = False,
) -> BasketView | None:
    """Σ YES asks across ALL outcomes of a negRisk event (ladders best first).

    Augmented events are skipped (``None``): their outcome list can still grow (an
    'Other' placeholder), so the basket does not cover every outcome. A missing ladder
    for any outcome means no basket quote (the set would not be complete).
    """
    if augmented or len(yes_asks) < 2:
        return None
    n = len(yes_asks)
    rate_list = [float(rates)] * n if isinstance(rates, int | float) else list(rates)
    if any(not ladder for ladder in yes_asks):
        return BasketView(None, None, 0.0, False)
    # every ladder is present and non-empty here (checked above); the type says Optional
    best = [float(ladder[0][0]) for ladder in yes_asks]  # type: ignore[index]
    ask_sum = sum(best)
    edge = PAYOUT - ask_sum - sum(taker_fee(p, r) for p, r in zip(best, rate_list, strict=True))
    size = 0.0
    if clears(edge, min_edge):
        # the same present ladders
        size = walk_asks(yes_asks, rate_list, min_edge).shares  # type: ignore[arg-type]
    return BasketView(ask_sum, edge, size, (not stale) and clears(edge, min_edge) and size > 0)


def pair_entry(
    yes_asks: Ladder, no_asks: Ladder, rate: float, min_edge: float, max_cost: float
) -> Fill:
    """The equal-share pair paper trading books: walk both asks, capped by a dollar budget.

    The cap is applied on shares (budget / average cost per share of the uncapped walk),
    so YES and NO counts stay equal; the capped walk buys the cheapest of those shares,
    whose average is no higher, so it stays within the budget.
    """
    full = walk_asks((yes_asks, no_asks), rate, min_edge)
    if full.shares <= 0:
        return full
    per_share = (full.cost + full.fees) / full.shares
    if full.cost + full.fees <= max_cost:
        return full
    cap = max_cost / max(per_share, 1e-9)
    return walk_asks((yes_asks, no_asks), rate, min_edge, max_shares=cap)


def mark_value(shares: float, yes_bid: float | None, no_bid: float | None, rate: float) -> float:
    """Value of an open pair position if sold now at the bids (0 if a side has no bid)."""
    if yes_bid is None or no_bid is None:
        return 0.0
    return shares * exit_value(yes_bid, no_bid, rate)


def settlement_value(yes_qty: float, no_qty: float, resolution: str | None) -> float:
    """Redemption value at resolution: each winning share pays 1 (equal pairs pay 1 each)."""
    outcome = (resolution or "").strip().lower()
    if outcome in {"yes", "up"}:
        return yes_qty * PAYOUT
    if outcome in {"no", "down"}:
        return no_qty * PAYOUT
    if outcome in {"50-50", "split"}:
        return 0.5 * (yes_qty + no_qty) * PAYOUT
    # unknown label: only the complete pairs are certain to redeem at 1
    return min(yes_qty, no_qty) * PAYOUT
