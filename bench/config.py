"""What a benchmark run uses: scales, databases, paths, the dashboard's range."""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
DATA = BENCH / ".data"
RESULTS = BENCH / "results"

Dialect = Literal["postgresql", "sqlite"]
ScaleName = Literal["full", "medium", "small"]
DatasetName = Literal["zipf", "dense"]

# Bump when the generated data changes shape, so --reuse regenerates.
GENERATOR_VERSION = 2
SEED = 20_251_125

# The data ends here (UTC); the dashboard reads the 90 local days before it.
DATA_END = datetime(2026, 11, 20, tzinfo=UTC)
ZONE_NAME = "Europe/Copenhagen"
ZONE = ZoneInfo(ZONE_NAME)
DASHBOARD_DAYS = 90
LAST_LOCAL_DAY = date(2026, 11, 20)  # exclusive: the range ends at its midnight

# Where ingestion and webhook benchmarks write: a tenant of its own, so the
# tenants the dashboard reads never change between runs.
WRITES_TENANT = "bench-writes"
WRITES_USERS = 20
WRITES_INTERACTIONS = 200

SECTIONS = (
    "ingest",
    "webhooks",
    "dashboard",
    "postgraphile",
    "statements",
    "memory",
    "explain",
)
SERVER_SECTIONS = ("ingest", "webhooks", "dashboard", "postgraphile", "memory")


@dataclass(frozen=True)
class Scale:
    """How much data to generate, of which shape, and how long to measure."""

    name: ScaleName
    tenants: int
    users: int
    interactions: int
    records: int
    days: int
    ingest_records: int  # per method (API and hand-written)
    webhook_requests: int  # per mutation and way of authenticating
    dashboard_iterations: int
    dataset: DatasetName = "zipf"


# The dense data set: few tenants with few users each, and in every tenant one
# service account (user id `service-account-NN`) that owns this share of its
# usage; the others still have tens of thousands of records in the dashboard's
# range at 1M records.
DENSE_TENANTS = 4
DENSE_USERS = 16
SERVICE_ACCOUNT_SHARE = 0.5

_RECORDS = {"small": 100_000, "medium": 1_000_000, "full": 10_000_000}


def scale_for(
    dialect: Dialect, name: ScaleName, dataset: DatasetName = "zipf"
) -> Scale:
    """small 100k, medium 1M, full 10M records (SQLite: full is 1M)."""
    records = _RECORDS[name]
    if dialect == "sqlite" and name == "full":
        records = 1_000_000
    # Measurement lengths: short enough for a shared 2-core machine.
    ingest = {100_000: 8_000, 1_000_000: 20_000}.get(records, 100_000)
    webhooks = 300 if records < 10_000_000 else 1_000
    iterations = 20 if records < 10_000_000 else 30
    if dataset == "dense":
        return Scale(
            name,
            DENSE_TENANTS,
            DENSE_USERS,
            records // 10,
            records,
            400,
            ingest,
            webhooks,
            iterations,
            "dense",
        )
    users = 1_000 if records == 100_000 else 5_000
    return Scale(
        name, 50, users, records // 10, records, 400, ingest, webhooks, iterations
    )


def dashboard_range() -> tuple[datetime, datetime]:
    """90 local days ending at local midnight of LAST_LOCAL_DAY, as UTC instants."""
    first = LAST_LOCAL_DAY - timedelta(days=DASHBOARD_DAYS)
    start = datetime.combine(first, datetime.min.time(), tzinfo=ZONE)
    end = datetime.combine(LAST_LOCAL_DAY, datetime.min.time(), tzinfo=ZONE)
    return start.astimezone(UTC), end.astimezone(UTC)


def iso_local(instant: datetime) -> str:
    """An instant as Copenhagen local time with its offset (what a browser sends)."""
    return instant.astimezone(ZONE).isoformat()


@dataclass(frozen=True)
class Target:
    """Where a run's data lives."""

    dialect: Dialect
    scale: Scale
    pg_url: str  # server URL without a database name (PostgreSQL only)

    @property
    def key(self) -> str:
        """`postgresql-full`, `sqlite-small`, `postgresql-dense-medium`, ..."""
        if self.scale.dataset == "zipf":
            return f"{self.dialect}-{self.scale.name}"
        return f"{self.dialect}-{self.scale.dataset}-{self.scale.name}"

    @property
    def database_name(self) -> str:
        """The PostgreSQL database, or the SQLite file's stem."""
        if self.scale.dataset == "zipf" and self.scale.name != "medium":
            return "bench_ledger" if self.scale.name == "full" else "bench_ledger_small"
        return f"bench_ledger_{self.scale.dataset}_{self.scale.name}"

    @property
    def sqlite_path(self) -> Path:
        """The SQLite file."""
        return DATA / f"{self.database_name}.db"

    @property
    def url(self) -> str:
        """SQLAlchemy URL of the benchmark database (what DATABASE_URL gets)."""
        if self.dialect == "postgresql":
            return f"postgresql+asyncpg://{self.pg_url}/{self.database_name}"
        return f"sqlite+aiosqlite:///{self.sqlite_path}"

    @property
    def statements_url(self) -> str:
        """The small database for counting statements at 10 to 10,000 users."""
        if self.dialect == "postgresql":
            return f"postgresql+asyncpg://{self.pg_url}/bench_ledger_statements"
        return f"sqlite+aiosqlite:///{DATA / 'bench_ledger_statements.db'}"

    @property
    def meta_path(self) -> Path:
        """Sidecar describing the generated data (for --reuse)."""
        return DATA / f"{self.key}.meta.json"

    @property
    def results_path(self) -> Path:
        """bench/results/<database>-<scale>.json."""
        return RESULTS / f"{self.key}.json"


def default_pg_url() -> str:
    """user@host:port of the PostgreSQL server (BENCH_PG, default local trust)."""
    return os.environ.get("BENCH_PG", "postgres@127.0.0.1:5432")


def asyncpg_dsn(url: str) -> str:
    """A plain libpq/asyncpg DSN from a SQLAlchemy URL."""
    return url.replace("postgresql+asyncpg://", "postgresql://", 1)
