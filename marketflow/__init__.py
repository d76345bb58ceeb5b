"""marketflow: market data and order flow, orchestrated by Dagster."""

__version__ = "0.1.0"
