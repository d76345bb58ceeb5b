"""The ground floor: typed settings, contracts (channels, tables, enums) and domain events.

Everything else imports from here; nothing here imports from any other package of the
project (the layers are written down in docs/architecture.md and checked by import-linter).
"""
