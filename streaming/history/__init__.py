"""History from the venue: the day backfill behind `tick_history` and `marketflow backfill`."""
