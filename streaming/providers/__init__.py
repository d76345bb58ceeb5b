"""Market-data providers: the interface every source implements (``base``), and the sources
that are not a venue: the demo market, replay of recorded trades and the router that runs
several at once. Each venue's own data client lives in ``streaming/venues/<venue>/``."""
