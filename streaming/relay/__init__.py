"""Redis → browser relay and the live dashboard (``marketflow web``)."""

from streaming.relay.server import Relay, RelayConfigError

__all__ = ["Relay", "RelayConfigError"]
