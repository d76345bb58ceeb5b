"""Synthetic market data the benchmarks and the tests share, so a workload is written once:
``ticks`` makes trade prints (one session's random walk, or many symbols' sessions) and
stores them; ``history`` makes the stored tables a backtest reads (candles, profile levels,
order flow)."""
