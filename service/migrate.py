"""Run Alembic migrations from code (`python -m service migrate`)."""

from __future__ import annotations

from pathlib import Path

from alembic.config import Config

from alembic import command

ROOT = Path(__file__).resolve().parent.parent


def scripts_dir() -> Path:
    """alembic/ of the checkout, or of the working folder (installed package)."""
    for candidate in (ROOT / "alembic", Path.cwd() / "alembic"):
        if (candidate / "env.py").exists():
            return candidate
    raise FileNotFoundError(
        "alembic/ not found next to the package or in the working folder"
    )


def alembic_config(database_url: str) -> Config:
    """An Alembic config pointing at our scripts and the given database."""
    config = Config()
    config.set_main_option("script_location", str(scripts_dir()))
    config.attributes["database_url"] = database_url
    return config


def upgrade(database_url: str, revision: str = "head") -> None:
    """Apply migrations up to `revision`."""
    command.upgrade(alembic_config(database_url), revision)


def check(database_url: str) -> None:
    """Fail if the models differ from the migrations."""
    command.check(alembic_config(database_url))
