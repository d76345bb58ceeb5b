"""Long-running asyncio processes: providers, ingest, engine, web (the dashboard); no Dagster."""
