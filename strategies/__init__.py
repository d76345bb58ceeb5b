"""Strategies, evaluated the same way by the live engine and the backtester: the JSON format
of a ``strategies`` row (docs/strategies.md), the rule vocabulary, rising edges, the
snapshot the rules read, the pure trading gates and the order intent. Pure: no database,
Redis or network client (an import-linter contract holds it)."""
