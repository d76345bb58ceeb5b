"""Long-running asyncio processes: providers, ingest, engine, relay. No Dagster imports."""
