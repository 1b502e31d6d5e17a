"""API keys, roles and tenant scoping."""
