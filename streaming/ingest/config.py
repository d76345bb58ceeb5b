"""How one ingest pipeline runs (``PipelineConfig``): flush cadence, buffer sizes, the
validation window, writer connections, the stop budget and the plausibility band."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from core.settings import STOP_TIMEOUT_S

if TYPE_CHECKING:
    from core.settings import Settings

# of the stop budget, what is left after the shutdown's database attempts and spills for the
# provider to stop reading and the process to exit
EXIT_MARGIN_S = 2.0


@dataclass
class PipelineConfig:
    source: str = "ingest"
    flush_ms: int = 200
    flush_rows: int = 50_000
    memory_rows: int = 1_000_000
    max_age_s: float = 2 * 86_400.0
    max_ahead_s: float = 300.0
    candle_grace_s: float = 2.0
    publish_interval_s: float = 0.02
    spool_dir: Path = Path(".marketflow/spool")
    log_interval_s: float = 60.0
    rejects_interval_s: float = 10.0
    retry_max_s: float = 10.0
    connect_timeout_s: int = 3
    writers: int = 2  # COPY connections used for large chunks
    # from SIGTERM: then what PostgreSQL did not take goes to the spool
    shutdown_timeout_s: float = STOP_TIMEOUT_S - EXIT_MARGIN_S
    price_band: float = 0.5  # 0: no plausibility band
    price_band_confirm: int = 5

    @classmethod
    def from_settings(cls, settings: Settings, source: str) -> PipelineConfig:
        return cls(
            source=source,
            flush_ms=settings.ingest_flush_ms,
            flush_rows=settings.ingest_flush_rows,
            memory_rows=settings.ingest_memory_rows,
            max_age_s=settings.ingest_max_age_s,
            max_ahead_s=settings.ingest_max_ahead_s,
            candle_grace_s=settings.candle_grace_s,
            publish_interval_s=settings.publish_interval_ms / 1000.0,
            spool_dir=settings.state_dir / "spool",
            price_band=settings.ingest_price_band,
            price_band_confirm=settings.ingest_price_band_confirm,
        )
