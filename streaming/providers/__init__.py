"""Market-data providers: one module per PROVIDER value, each exposing ``build``.

The interface and the registry are in ``streaming.providers.base``.
"""
