"""Venue adapters, one package per venue, each with the same parts where the venue has them:

* ``data.py`` — the market-data client (a stream or a poller) as a ``Provider``;
* ``parsing.py`` — the venue's messages and answers into our events (pure, no I/O);
* ``rest.py`` — its REST client (history, discovery, a session);
* ``execution.py`` — its trading API, for the engine's orders.

Market calendars come from ``analytics.sessions`` for every venue (docs/providers.md).
"""
