"""Test settings come first, before any service import reads the environment."""

from __future__ import annotations

import os

os.environ.setdefault("LOG_LEVEL", "WARNING")

pytest_plugins = [
    "tests.fixtures.database",
    "tests.fixtures.app",
    "tests.fixtures.corti",
]
