"""The API's types: what each endpoint answers (``market``, ``trading``, ``backtests``), the
bodies of its two writes (``strategy_changes``) and what they share (``common``)."""
