"""Database layer: models, column types, engine and sessions."""
