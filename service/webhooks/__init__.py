"""Outgoing webhooks: endpoint URLs, Standard Webhooks signatures, delivery."""
