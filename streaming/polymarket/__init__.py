"""Polymarket binary markets: Gamma discovery, CLOB market-channel books, YES/NO arbitrage."""
