"""Local servers that speak each provider's real wire protocol (never mocks of our code)."""
