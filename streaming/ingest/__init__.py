"""The ingest path: provider events → PostgreSQL (ticks, candles_1m) and Redis.

See docs/architecture.md and docs/ingest.md.

``pipeline.IngestPipeline`` is the core; ``candles`` builds 1-minute candles on a wall-clock
timer; ``publish`` sends live updates; ``spool`` keeps rows safe while PostgreSQL is away.
"""
