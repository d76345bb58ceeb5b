"""Whether the NYSE is in its regular session, from the ``exchange_calendars`` XNYS
calendar (loaded once, about half a second)."""

from __future__ import annotations

import functools
from datetime import datetime
from typing import Any


@functools.cache
def xnys_calendar() -> Any:
    import exchange_calendars as xc

    return xc.get_calendar("XNYS")


def xnys_open(now: datetime) -> bool:
    """Whether the NYSE is in its regular session (the silence watchdog only runs then)."""
    import pandas as pd

    try:
        return bool(xnys_calendar().is_open_on_minute(pd.Timestamp(now).floor("min")))
    except Exception:  # outside the calendar's range: watch rather than go blind
        return True
