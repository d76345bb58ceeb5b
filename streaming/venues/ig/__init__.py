"""IG Level 1: the polling client (``data``), its REST session (``rest``) and market
snapshots into prints and quotes (``parsing``)."""
