"""Real prints as the analytics read them: the ETH/USDT capture in tests/data with the
venue's aggressor side. Synthetic prints come from ``bench.synthetic.ticks``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

NAN = float("nan")


def eth_ticks(captures: Path) -> pd.DataFrame:
    raw = pd.read_csv(captures / "trades" / "ethusdt_1000_trades.csv")
    return pd.DataFrame(
        {
            "ts": pd.to_datetime(raw["timestamp"], unit="ms", utc=True),
            "price": raw["price"],
            "size": raw["amount"],
            "side": np.where(raw["side"] == "buy", 1.0, -1.0),
            "bid": NAN,
            "ask": NAN,
        }
    )
