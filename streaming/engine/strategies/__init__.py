"""Strategies from the ``strategies`` table: JSON definitions evaluated for all symbols at once.

A row of ``strategies`` has a ``definition`` (JSON) whose ``type`` is one of:

``price_above_sma`` (the simplest rule)
    ``{"type": "price_above_sma", "period": 20, "symbol": "AAPL", "signal": "BUY"}``:
    true while the latest close is above the mean of the last ``period`` closes.

``auction_market`` (Auction Market Theory: docs/semantics.md)
    Entry when the market state is IMBALANCE_UP with BUY flow or IMBALANCE_DOWN with SELL
    flow (or, with ``allow_balance_trades``, BALANCE with a score ≥ 80 and a flow
    direction), the aggression score is ≥ ``min_aggression_score`` and there is an ATR.
    Signal BUY for IMBALANCE_UP, SELL for IMBALANCE_DOWN, the flow direction for BALANCE.
    Parameters (``min_aggression_score``, ``atr_stop_multiplier``, ``atr_target_multiplier``,
    ``allow_balance_trades``) come from ``strategy_configs.parameters`` for the symbol, else
    the definition, else the settings (``MIN_AGGRESSION_SCORE``) and 1.5 / 3.0 / false.

``rules`` (the rule vocabulary: a strategy without code)
    ``{"type": "rules", "signal": "BUY", "symbols": ["AAPL", "MSFT"],
       "all": [{"metric": "price", "op": ">", "ref": "sma", "period": 20},
               {"metric": "market_state", "op": "==", "value": "IMBALANCE_UP"},
               {"metric": "aggression_score", "op": ">=", "value": 70},
               {"metric": "cvd_slope", "op": ">", "value": 0}],
       "any": []}``
    True when every condition of ``all`` holds and, if ``any`` is given, at least one of it.
    A condition compares a ``metric`` with an ``op`` (``>``, ``>=``, ``<``, ``<=``, ``==``,
    ``!=``) against either a constant ``value`` or a ``ref``:

    - numeric metrics: ``price`` (latest 1-minute close), ``aggression_score`` (0–100,
      ``analytics.aggressive_flow``), ``cvd_slope`` (CVD change per minute over the last five
      order-flow buckets), ``cvd_momentum``, ``buy_pressure``, ``sell_pressure`` (0–100),
      ``momentum_pct`` (percent change over 60 minutes), ``confidence`` (market state,
      0–100), ``atr`` (ATR 14);
    - text metrics (``==`` / ``!=`` with a ``value`` only): ``market_state`` (BALANCE,
      IMBALANCE_UP, IMBALANCE_DOWN, UNKNOWN), ``flow_direction`` (BUY, SELL, NEUTRAL);
    - refs: ``sma`` (needs ``period``), ``vwap`` (session VWAP), ``poc``, ``vah``, ``val``
      (session profile), ``composite_poc``, ``composite_vah``, ``composite_val``.

    A missing value (no candles, no profile yet) makes its condition false.

Every type also accepts: ``symbol`` or ``symbols`` (else the symbols with an enabled
``strategy_configs`` row for the strategy's name; a row with ``enabled = false`` always
excludes its symbol), ``signal`` (BUY or SELL, default BUY, not for ``auction_market``),
``trade`` (send the signal to the auto-trader, US equities only; default true for
``auction_market``, false otherwise) and ``atr_stop_multiplier`` /
``atr_target_multiplier`` for the bracket.

Trading keys are validated when a row is loaded (and by CHECK constraints in the
database, docs/trading-safety.md): ``atr_stop_multiplier`` / ``atr_target_multiplier`` in
[0.1, 20], ``risk_per_trade_pct`` in (0, 5], ``max_positions`` a whole number in
[1, 100], ``max_daily_loss_pct`` in (0, 50]. A definition outside them is skipped with the
reason; a ``strategy_configs`` row outside them disables its symbol for that strategy.
The risk per trade is the config row's ``risk_per_trade_pct``, else its parameters', else
the definition's, else ``RISK_PER_TRADE_PCT``; a strategy's open positions are capped by
the config row's ``max_positions``, else the definition's; the definition's
``max_daily_loss_pct`` applies when stricter than ``MAX_DAILY_LOSS_PCT`` (``TradeLimits``).

Signals fire on the rising edge of a strategy's condition per symbol (or when its signal
type changes), at most once per ``strategies.cooldown_seconds`` (``EdgeTracker``).

Modules: ``model`` (the dataclasses and kinds), ``rules`` (the rule vocabulary and one
condition's evaluation), ``definitions`` (loading and validating rows, trading-key bounds,
``trade_limits``), ``evaluation`` (which symbols a strategy targets and where it holds now)
and ``edges`` (``EdgeTracker``).
"""
