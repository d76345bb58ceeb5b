"""The bodies of the two writes, a strategy's change and a per-symbol config, typed exactly as
strictly as the engine reads them (the vocabulary: ``strategies/``, docs/strategies.md).

So the OpenAPI document says what is accepted: a body that fits these types is one the
engine can run, and one that does not is refused here with the reason. The engine's own
parser still checks every change before it is stored (``queries/trading.py``); the
import-time check below keeps the names here equal to the engine's.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, get_args

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    WithJsonSchema,
    model_validator,
)

from strategies.definitions import (
    ATR_MULTIPLIER_MAX,
    ATR_MULTIPLIER_MIN,
    DAILY_LOSS_PCT_MAX,
    MAX_SMA_PERIOD,
    POSITIONS_MAX,
    RISK_PCT_MAX,
    SIGNAL_TYPES,
)
from strategies.footprint import (
    BAND_REFS,
    BIG_PRINT_WINDOW,
    MAX_BAND_K,
    MAX_STACK_ROWS,
    STACK_METRICS,
)
from strategies.model import KINDS
from strategies.rules import FOOTPRINT_TEXT, NUMERIC_METRICS, OPS, REFS, TEXT_METRICS

INT32_MAX = 2**31 - 1  # strategies.cooldown_seconds is an integer column
NO_NUL = r"^[^\x00]*$"  # PostgreSQL's jsonb cannot store "\u0000"


def _drop_default(schema: dict[str, Any]) -> None:
    schema.pop("default", None)


def optional(**constraints: Any) -> Any:
    """A key that may be left out but, when given, must have the field's type (no null)."""
    return Field(default=None, json_schema_extra=_drop_default, **constraints)


def bounded(low: float, high: float, *, low_open: bool = False, whole: bool = False) -> Any:
    """A number in [low, high] (or (low, high]) refused with the engine's wording."""
    bracket = "(" if low_open else "["

    def check(value: float) -> float:
        if not ((low < value) if low_open else (low <= value)) or value > high:
            raise ValueError(f"must be in {bracket}{low:g}, {high:.15g}], got {value!r}")
        return value

    schema: dict[str, Any] = {"type": "integer" if whole else "number", "maximum": high}
    schema["exclusiveMinimum" if low_open else "minimum"] = low
    if whole:
        whole_int = BeforeValidator(whole_number)
        return Annotated[int, whole_int, AfterValidator(check), WithJsonSchema(schema)]
    finite = Field(allow_inf_nan=False)
    return Annotated[float, finite, AfterValidator(check), WithJsonSchema(schema)]


def whole_number(value: Any) -> Any:
    """JSON Schema counts 3.0 as an integer: take it as 3 (the engine and the columns want
    an int); anything else is left to the strict integer check."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


Multiplier = bounded(ATR_MULTIPLIER_MIN, ATR_MULTIPLIER_MAX)
RiskPct = bounded(0, RISK_PCT_MAX, low_open=True)
DailyLossPct = bounded(0, DAILY_LOSS_PCT_MAX, low_open=True)
Positions = bounded(1, POSITIONS_MAX, whole=True)
Period = bounded(1, MAX_SMA_PERIOD, whole=True)
StackRows = bounded(1, MAX_STACK_ROWS, whole=True)
BandK = bounded(0, MAX_BAND_K, low_open=True)
BigPrintSeconds = bounded(1, int(BIG_PRINT_WINDOW.total_seconds()), whole=True)
Cooldown = bounded(0, INT32_MAX, whole=True)
Text = Annotated[str, Field(max_length=200, pattern=NO_NUL)]
# a key the engine does not read keeps a plain value (a number, text, true/false or null)
Scalar = Annotated[str, Field(max_length=2000, pattern=NO_NUL)] | int | float | bool | None

Metric = Literal[
    "price",
    "aggression_score",
    "cvd_slope",
    "cvd_momentum",
    "buy_pressure",
    "sell_pressure",
    "momentum_pct",
    "confidence",
    "atr",
]
StackMetric = Literal["stacked_buy_imbalance", "stacked_sell_imbalance"]
Op = Literal[">", ">=", "<", "<=", "==", "!="]
Ref = Literal[
    "vwap",
    "poc",
    "vah",
    "val",
    "composite_poc",
    "composite_vah",
    "composite_val",
    "session_vwap",
    "ib_high",
    "ib_low",
]
BandRef = Literal["vwap_upper", "vwap_lower"]
IbBreak = Literal["ABOVE", "BELOW", "INSIDE"]
BigPrintSide = Literal["BUY", "SELL", "ANY"]
MarketState = Literal["UNKNOWN", "BALANCE", "IMBALANCE_UP", "IMBALANCE_DOWN"]
FlowDirection = Literal["NEUTRAL", "BUY", "SELL"]
Kind = Literal["price_above_sma", "auction_market", "rules"]
Signal = Literal["BUY", "SELL"]

STRICT = ConfigDict(strict=True, extra="forbid")
OPEN = ConfigDict(
    strict=True, extra="allow", json_schema_extra={"propertyNames": {"pattern": NO_NUL}}
)


class ValueCondition(BaseModel):
    model_config = STRICT
    metric: Metric
    op: Op
    value: Annotated[float, Field(allow_inf_nan=False)]


class RefCondition(BaseModel):
    model_config = STRICT
    metric: Metric
    op: Op
    ref: Ref


class SmaCondition(BaseModel):
    model_config = STRICT
    metric: Metric
    op: Op
    ref: Literal["sma"]
    period: Period  # type: ignore[valid-type]


class StackCondition(BaseModel):
    """The longest recent stacked imbalance of a side against a number of rows."""

    model_config = STRICT
    metric: StackMetric
    op: Op
    value: StackRows  # type: ignore[valid-type]


class BandCondition(BaseModel):
    """Price against the session VWAP ± k·sd (k standard deviations)."""

    model_config = STRICT
    metric: Metric
    op: Op
    ref: BandRef
    k: BandK  # type: ignore[valid-type]


class IbBreakCondition(BaseModel):
    model_config = STRICT
    metric: Literal["ib_break"]
    op: Literal["==", "!="]
    value: IbBreak


class BigPrintCondition(BaseModel):
    """A big print on a side within the last ``seconds`` (60 when absent)."""

    model_config = STRICT
    metric: Literal["big_print"]
    op: Literal["==", "!="]
    value: BigPrintSide
    seconds: BigPrintSeconds = optional()  # type: ignore[valid-type]


class MarketStateCondition(BaseModel):
    model_config = STRICT
    metric: Literal["market_state"]
    op: Literal["==", "!="]
    value: MarketState


class FlowDirectionCondition(BaseModel):
    model_config = STRICT
    metric: Literal["flow_direction"]
    op: Literal["==", "!="]
    value: FlowDirection


def condition_kind(raw: Any) -> str | None:
    """Which of the condition shapes ``raw`` claims to be (the engine's own order)."""
    if isinstance(raw, BaseModel):
        raw = raw.model_dump()
    if not isinstance(raw, dict):
        return None
    metric = raw.get("metric")
    if isinstance(metric, str) and (metric in TEXT_METRICS or metric in FOOTPRINT_TEXT):
        return f"{metric}_condition"
    if isinstance(metric, str) and metric in STACK_METRICS:
        return "stack_condition"
    if "ref" in raw:
        ref = raw["ref"]
        if ref == "sma":
            return "sma_condition"
        return "band_condition" if isinstance(ref, str) and ref in BAND_REFS else "ref_condition"
    return "value_condition"


Condition = Annotated[
    Annotated[ValueCondition, Tag("value_condition")]
    | Annotated[RefCondition, Tag("ref_condition")]
    | Annotated[SmaCondition, Tag("sma_condition")]
    | Annotated[BandCondition, Tag("band_condition")]
    | Annotated[StackCondition, Tag("stack_condition")]
    | Annotated[IbBreakCondition, Tag("ib_break_condition")]
    | Annotated[BigPrintCondition, Tag("big_print_condition")]
    | Annotated[MarketStateCondition, Tag("market_state_condition")]
    | Annotated[FlowDirectionCondition, Tag("flow_direction_condition")],
    Discriminator(condition_kind),
]
CONDITION_TAGS = frozenset(
    f"{kind}_condition"
    for kind in ("value", "ref", "sma", "band", "stack", *TEXT_METRICS, *FOOTPRINT_TEXT)
)


class TradingKeys(BaseModel):
    """The keys the trader reads, in the bounds of docs/trading-safety.md."""

    model_config = OPEN
    __pydantic_extra__: dict[str, Scalar]

    atr_stop_multiplier: Multiplier | None = optional()  # type: ignore[valid-type]
    atr_target_multiplier: Multiplier | None = optional()  # type: ignore[valid-type]
    risk_per_trade_pct: RiskPct | None = optional()  # type: ignore[valid-type]
    max_positions: Positions | None = optional()  # type: ignore[valid-type]
    max_daily_loss_pct: DailyLossPct | None = optional()  # type: ignore[valid-type]

    @model_validator(mode="before")
    @classmethod
    def _keys_without_nul(cls, data: Any) -> Any:
        if isinstance(data, dict) and any("\x00" in str(key) for key in data):
            raise ValueError("a key may not contain the NUL character")
        return data


class Parameters(TradingKeys):
    """A config's ``parameters``: the trading keys and any strategy parameter
    (``min_aggression_score``, ``allow_balance_trades``, …)."""


class DefinitionBase(TradingKeys):
    symbol: Text = optional()
    symbols: list[Text] = optional(max_length=500)
    signal: Signal = optional()
    trade: bool = optional()


class SmaDefinition(DefinitionBase):
    """True while the latest close is above the mean of the last ``period`` closes."""

    type: Literal["price_above_sma"]
    period: Period = optional()  # type: ignore[valid-type]


class AuctionDefinition(DefinitionBase):
    """Auction Market Theory entries (docs/semantics.md)."""

    type: Literal["auction_market"]
    min_aggression_score: Annotated[float, Field(allow_inf_nan=False)] = optional()
    allow_balance_trades: bool = optional()


class RulesDefinition(DefinitionBase):
    """Every condition of ``all`` and, when given, one of ``any``; at least one is given."""

    model_config = ConfigDict(
        json_schema_extra={
            "propertyNames": {"pattern": NO_NUL},
            "anyOf": [
                {"required": ["all"], "properties": {"all": {"minItems": 1}}},
                {"required": ["any"], "properties": {"any": {"minItems": 1}}},
            ],
        }
    )

    type: Literal["rules"]
    all: list[Condition] = optional(max_length=50)
    any: list[Condition] = optional(max_length=50)

    @model_validator(mode="after")
    def _some_condition(self) -> RulesDefinition:
        if not (self.all or self.any):
            raise ValueError("rules need a non-empty list in all or any")
        return self


Definition = Annotated[
    SmaDefinition | AuctionDefinition | RulesDefinition, Field(discriminator="type")
]


class StrategyChange(BaseModel):
    """``PATCH /api/strategies/{id}``: the keys given replace the stored ones."""

    model_config = STRICT
    active: bool = optional()
    cooldown_seconds: Cooldown = optional()  # type: ignore[valid-type]
    definition: Definition = optional()


class ConfigChange(BaseModel):
    """``PUT /api/strategies/{id}/configs/{symbol}``: the whole row (absent keys: enabled,
    no parameters, the strategy's own risk and position limits)."""

    model_config = STRICT
    enabled: bool = optional()
    parameters: Parameters = optional()
    risk_per_trade_pct: RiskPct | None = optional()  # type: ignore[valid-type]
    max_positions: Positions | None = optional()  # type: ignore[valid-type]


def _names(literal: Any) -> set[Any]:
    """The values of a Literal, or of a union of Literals."""
    return {v for arg in get_args(literal) for v in (_names(arg) if get_args(arg) else {arg})}


def _same(literal: Any, engine: Any, what: str) -> None:
    if _names(literal) != set(engine):
        raise AssertionError(f"the API's {what} differ from the engine's: update {__name__}")


_same(Metric | StackMetric, NUMERIC_METRICS, "metrics")
_same(StackMetric, STACK_METRICS, "stacked-imbalance metrics")
_same(Op, OPS, "operators")
_same(Ref | BandRef, REFS, "refs")
_same(BandRef, BAND_REFS, "VWAP band refs")
_same(IbBreak, FOOTPRINT_TEXT["ib_break"], "initial-balance breaks")
_same(BigPrintSide, FOOTPRINT_TEXT["big_print"], "big-print sides")
_same(MarketState, TEXT_METRICS["market_state"], "market states")
_same(FlowDirection, TEXT_METRICS["flow_direction"], "flow directions")
_same(Kind, KINDS, "strategy types")
_same(Signal, SIGNAL_TYPES, "signal types")
DEFINITION_TAGS = frozenset(KINDS)
