"""Bulk exports of usage (CSV and NDJSON), streamed from the database."""
