"""A symbol's footprint parameters (docs/semantics.md), with their defaults and their limits.

The one home of the defaults: a symbol without a ``footprint_config`` row, or with a null
column there, reads the default here. The table's check constraints refuse what
``FootprintConfig`` refuses, so a bad value never reaches the analytics; reading one anyway
(a constraint dropped by hand) raises ``ValueError`` naming the parameter, the symbol's
session is skipped and the run reports why.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields


@dataclass(frozen=True)
class FootprintConfig:
    """imbalance_ratio (R) and imbalance_min_volume (V_min): a diagonal imbalance needs
    ``volume >= max(V_min, R × the diagonal cell's opposite volume)``.
    big_print_sd (k) and big_print_minutes: a big print's size is at least k standard
    deviations above the mean print size of the previous ``big_print_minutes`` minutes.
    node_count (N), node_prominence and node_separation: at most N LVNs and N HVNs per
    profile, each with a prominence of at least ``node_prominence`` × the smoothed
    profile's POC volume and ``node_separation`` × the profile's rows apart from a
    stronger node of its kind.
    """

    imbalance_ratio: float = 3.0
    imbalance_min_volume: float = 0.0
    big_print_sd: float = 3.0
    big_print_minutes: int = 30
    node_count: int = 5
    node_prominence: float = 0.1
    node_separation: float = 0.05

    def __post_init__(self) -> None:
        for name, (accepts, rule) in RULES.items():
            value = getattr(self, name)
            whole = name not in INTEGER_FIELDS or (
                isinstance(value, int | float) and float(value).is_integer()
            )
            number = isinstance(value, int | float) and not isinstance(value, bool)
            if not (number and whole and math.isfinite(value) and accepts(value)):
                raise ValueError(f"footprint config: {name} {rule}, got {value!r}")
            if name in INTEGER_FIELDS:
                object.__setattr__(self, name, int(value))  # 15.0 from a driver is 15

    @classmethod
    def from_row(cls, row: Mapping[str, object]) -> FootprintConfig:
        """A config from a footprint_config row (or part of one): None means the default."""
        unknown = set(row) - set(FIELD_NAMES)
        if unknown:
            raise ValueError(f"footprint config: unknown parameters {sorted(unknown)}")
        given = {k: v for k, v in row.items() if v is not None}
        return cls(**given)  # type: ignore[arg-type]  # validated in __post_init__


# each parameter's accepted values, as the table's check constraints have them
RULES: dict[str, tuple[Callable[[float], bool], str]] = {
    "imbalance_ratio": (lambda v: v > 0, "must be > 0"),
    "imbalance_min_volume": (lambda v: v >= 0, "must be >= 0"),
    "big_print_sd": (lambda v: v > 0, "must be > 0"),
    "big_print_minutes": (lambda v: v >= 1, "must be a whole number >= 1"),
    "node_count": (lambda v: v >= 1, "must be a whole number >= 1"),
    "node_prominence": (lambda v: 0 < v <= 1, "must be in (0, 1]"),
    "node_separation": (lambda v: 0 <= v < 1, "must be in [0, 1)"),
}
FIELD_NAMES: tuple[str, ...] = tuple(f.name for f in fields(FootprintConfig))
INTEGER_FIELDS = frozenset({"big_print_minutes", "node_count"})
DEFAULT_CONFIG = FootprintConfig()
