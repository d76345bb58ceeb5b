"""The market database: schema (Alembic, ``storage/migrations``) and the I/O every process
shares.

- ``migrate``: ``upgrade(url)`` / ``downgrade(url, rev)`` in-process (``marketflow migrate``).
- ``db``: URL normalisation, long-lived connections, a small pool.
- ``tick_rows`` (pure) and ``tick_writer``: validated ``Trade`` batches → ``ticks`` by binary
  COPY, idempotent on (symbol_id, ts, trade_id).
- ``symbols``: symbol → id, cached, created on first use.
- ``candles``: ``merge_candles`` (stream increments) and ``replace_candles`` (reconciled).
- ``queries``: tick columns, latest candles, ingest progress, ``ingest_rejects``.
"""
