"""The usage ledger: interactions, usage records and their aggregates."""
