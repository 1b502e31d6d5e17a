"""Corti usage ledger: per-tenant, per-user, per-interaction credit accounting."""
