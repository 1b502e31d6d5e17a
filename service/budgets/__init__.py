"""Budgets per tenant or user, threshold alerts and signed outgoing webhooks."""
