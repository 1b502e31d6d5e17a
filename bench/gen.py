"""Realistic usage data, generated with numpy and formatted for bulk loading.

The shape (all drawn from one seed, so every run generates the same data):

- tenant sizes follow a Zipf law (exponent 1.1): with 50 tenants the largest
  has about a quarter of all usage, the smallest a third of a percent;
- users per tenant are proportional to its size (at least 3); each user's
  activity is log-normal (sigma 1.2), so some users record a hundred times
  more than others; 30 % joined during the 400 days, 15 % stopped;
- interactions fall on days weighted by a growth trend (usage grows 2.5x over
  the period) and the weekday (weekends are quiet), at local Copenhagen hours
  with morning and afternoon peaks;
- an interaction has one or more usage records (log-normal, 10 on average):
  streams during it, transcripts and documents minutes to hours later, a few
  records days late; sources are 45 % STREAM, 25 % TRANSCRIPT, 30 % DOCUMENT;
- credits are log-normal per source with 9 decimals; 0.2 % of the records
  belong to interactions that were never registered.

The dense data set (`scale.dataset == "dense"`) has the same shape with a few
tenants of a few users each, and one service account per tenant (its first
user, `service-account-NN`, active over the whole period) owning
SERVICE_ACCOUNT_SHARE of the tenant's usage.

Records are sorted by `created_at`, so the table is physically in time order,
as it is when usage arrives as it happens. Ids are random UUIDs, as Corti's are.

Text is built column by column as fixed-width byte matrices (pad bytes are
NUL and are squeezed out at the end), which is what makes formatting 10M rows
take seconds rather than minutes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import numpy.typing as npt

from bench.config import DATA_END, SERVICE_ACCOUNT_SHARE, ZONE, Dialect, Scale

U8 = npt.NDArray[np.uint8]
I64 = npt.NDArray[np.int64]
I32 = npt.NDArray[np.int32]
I8 = npt.NDArray[np.int8]
F64 = npt.NDArray[np.float64]

DAY_US = 86_400_000_000
HOUR_US = 3_600_000_000
SECOND_US = 1_000_000
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

SOURCES = ("STREAM", "TRANSCRIPT", "DOCUMENT")
SOURCE_SHARES = (0.45, 0.25, 0.30)
# Median credits per record of each source, and the spread (log-normal sigma).
CREDIT_MEDIANS = (2.0, 1.0, 0.3)
CREDIT_SIGMAS = (0.8, 0.7, 0.5)
# Local hour-of-day profile: quiet nights, morning and afternoon peaks.
HOURS = np.array(
    [
        *(1, 1, 1, 1, 1, 2, 5, 20, 70, 100, 100, 90),  # 00:00 to 11:00
        *(55, 80, 90, 85, 60, 30, 15, 10, 8, 6, 4, 2),  # 12:00 to 23:00
    ],
    dtype=np.float64,
)
WEEKDAYS = np.array([1.0, 1.05, 1.05, 1.0, 0.9, 0.2, 0.1])  # Monday first
UNREGISTERED_SHARE = 0.002

_HEX = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)
_DIGITS2 = np.frombuffer(
    "".join(f"{i:02d}" for i in range(100)).encode(), dtype=np.uint8
).reshape(100, 2)
_DIGITS3 = np.frombuffer(
    "".join(f"{i:03d}" for i in range(1000)).encode(), dtype=np.uint8
).reshape(1000, 3)
_SOURCE_TABLE = np.frombuffer(
    b"".join(s.encode().ljust(10, b"\0") for s in SOURCES), dtype=np.uint8
).reshape(3, 10)
TAB, NEWLINE = 9, 10
PG_NULL = b"\\N"


def to_us(instant: datetime) -> int:
    """Microseconds since the epoch."""
    return (instant - EPOCH) // timedelta(microseconds=1)


def from_us(value: int) -> datetime:
    """The inverse of `to_us`."""
    return EPOCH + timedelta(microseconds=int(value))


def _allocate(total: int, shares: F64, minimum: int) -> I64:
    """Split `total` in proportion to `shares` (largest remainder), each >= minimum."""
    rest = total - minimum * len(shares)
    exact = shares / shares.sum() * rest
    counts = np.floor(exact).astype(np.int64)
    short = rest - int(counts.sum())
    counts[np.argsort(exact - counts)[::-1][:short]] += 1
    result: I64 = counts + minimum
    return result


def uuid_bytes(rng: np.random.Generator, n: int) -> U8:
    """n random version-4 UUIDs as raw bytes."""
    raw = rng.integers(0, 256, size=(n, 16), dtype=np.uint8)
    raw[:, 6] = (raw[:, 6] & 0x0F) | 0x40
    raw[:, 8] = (raw[:, 8] & 0x3F) | 0x80
    return raw


def hex_text(raw: U8) -> U8:
    """32 lowercase hex digits per row (SQLAlchemy's Uuid on SQLite)."""
    out = np.empty((raw.shape[0], 32), dtype=np.uint8)
    out[:, 0::2] = _HEX[raw >> 4]
    out[:, 1::2] = _HEX[raw & 0x0F]
    return out


def uuid_text(raw: U8) -> U8:
    """The 36-character 8-4-4-4-12 form per row."""
    digits = hex_text(raw)
    out = np.full((raw.shape[0], 36), ord("-"), dtype=np.uint8)
    for start, end, at in ((0, 8, 0), (8, 12, 9), (12, 16, 14), (16, 20, 19)):
        out[:, at : at + end - start] = digits[:, start:end]
    out[:, 24:36] = digits[:, 20:32]
    return out


def _digits(values: I64, groups: int) -> U8:
    """Zero-padded decimal digits, 3 per group, most significant first."""
    out = np.empty((values.shape[0], groups * 3), dtype=np.uint8)
    rest = values.copy()
    for group in range(groups - 1, -1, -1):
        out[:, group * 3 : group * 3 + 3] = _DIGITS3[rest % 1000]
        rest //= 1000
    return out


def timestamp_text(us: I64, dialect: Dialect) -> U8:
    """UTC instants as text: `2026-01-02T03:04:05.000006Z` (PostgreSQL) or
    `2026-01-02 03:04:05.000006` (SQLite, SQLAlchemy's stored form)."""
    days = us // DAY_US
    rem = us - days * DAY_US
    # Civil date from days since 1970-01-01 (H. Hinnant's algorithm).
    z = days + 719_468
    era = z // 146_097
    doe = z - era * 146_097
    yoe = (doe - doe // 1460 + doe // 36_524 - doe // 146_096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    day = doy - (153 * mp + 2) // 5 + 1
    month = np.where(mp < 10, mp + 3, mp - 9)
    year = yoe + era * 400 + (month <= 2)
    seconds = rem // SECOND_US
    micros = rem % SECOND_US
    width = 27 if dialect == "postgresql" else 26
    out = np.empty((us.shape[0], width), dtype=np.uint8)
    out[:, 0:2] = _DIGITS2[year // 100]
    out[:, 2:4] = _DIGITS2[year % 100]
    out[:, 4] = out[:, 7] = ord("-")
    out[:, 5:7] = _DIGITS2[month]
    out[:, 8:10] = _DIGITS2[day]
    out[:, 10] = ord("T") if dialect == "postgresql" else ord(" ")
    out[:, 11:13] = _DIGITS2[seconds // 3600]
    out[:, 13] = out[:, 16] = ord(":")
    out[:, 14:16] = _DIGITS2[seconds // 60 % 60]
    out[:, 17:19] = _DIGITS2[seconds % 60]
    out[:, 19] = ord(".")
    out[:, 20:23] = _DIGITS3[micros // 1000]
    out[:, 23:26] = _DIGITS3[micros % 1000]
    if dialect == "postgresql":
        out[:, 26] = ord("Z")
    return out


def credits_text(nano: I64, dialect: Dialect) -> U8:
    """Credits from integer nano-credits: `000000000002.500000000` on PostgreSQL
    (NUMERIC input), the 40-wide zero-padded form of service.db.types on SQLite."""
    whole = _digits(nano // 1_000_000_000, 4)
    fraction = _digits(nano % 1_000_000_000, 3)
    pad = 18 if dialect == "sqlite" else 0
    out = np.full((nano.shape[0], pad + 22), ord("0"), dtype=np.uint8)
    out[:, pad : pad + 12] = whole
    out[:, pad + 12] = ord(".")
    out[:, pad + 13 :] = fraction
    return out


def text_table(values: Sequence[str]) -> U8:
    """Strings as a NUL-padded byte matrix, one row each."""
    width = max(len(v) for v in values)
    return (
        np.array([v.encode() for v in values], dtype=f"S{width}")
        .view(np.uint8)
        .reshape(len(values), width)
    )


@dataclass
class Column:
    """One column of a chunk: a NUL-padded byte matrix and which rows are NULL."""

    text: U8
    null: npt.NDArray[np.bool_] | None = None


def copy_text(columns: Sequence[Column]) -> bytes:
    """PostgreSQL COPY text format (tab-separated, \\N for NULL)."""
    n = columns[0].text.shape[0]
    parts: list[U8] = []
    for index, column in enumerate(columns):
        text = column.text
        if column.null is not None and column.null.any():
            if text.shape[1] < len(PG_NULL):
                text = np.pad(text, ((0, 0), (0, len(PG_NULL) - text.shape[1])))
            text = text.copy()
            text[column.null] = 0
            text[column.null, : len(PG_NULL)] = np.frombuffer(PG_NULL, np.uint8)
        parts.append(text)
        separator = NEWLINE if index == len(columns) - 1 else TAB
        parts.append(np.full((n, 1), separator, dtype=np.uint8))
    flat = np.concatenate(parts, axis=1).ravel()
    data: bytes = flat[flat != 0].tobytes()
    return data


def python_rows(columns: Sequence[Column]) -> list[tuple[Any, ...]]:
    """Rows of str (None for NULL) for sqlite3's executemany."""
    lists: list[list[Any]] = []
    for column in columns:
        width = column.text.shape[1]
        strings = np.ascontiguousarray(column.text).view(f"S{width}").ravel()
        values = strings.astype(f"U{width}")
        if column.null is not None and column.null.any():
            objects = values.astype(object)
            objects[column.null] = None
            lists.append(objects.tolist())
        else:
            lists.append(values.tolist())
    return list(zip(*lists, strict=True))


@dataclass
class Dataset:
    """Every generated row, as arrays; see the module docstring for the shape."""

    seed: int
    start_us: int
    end_us: int
    tenant_ids: list[str]
    tenant_created: I64
    user_ids: list[str]
    user_tenant: I32
    user_created: I64
    inter_raw: U8
    inter_user: I32
    inter_tenant: I32
    inter_created: I64
    inter_last: I64  # newest record's created_at; -1: none
    inter_first: I64  # oldest record's created_at; -1: none
    unreg_raw: U8
    rec_inter: I32  # -1: an unregistered interaction (see rec_unreg)
    rec_unreg: I32
    rec_source: I8
    rec_nano: I64
    rec_created: I64
    rec_received: I64

    @property
    def records(self) -> int:
        """Number of usage records."""
        return int(self.rec_inter.shape[0])

    def record_tenant(self, lo: int = 0, hi: int | None = None) -> I32:
        """Tenant index of each record (-1: unregistered)."""
        inter = self.rec_inter[lo:hi]
        tenant: I32 = np.where(
            inter >= 0, self.inter_tenant[np.maximum(inter, 0)], -1
        ).astype(np.int32)
        return tenant

    # -- chunks -----------------------------------------------------------

    def usage_columns(
        self, names: Sequence[str], lo: int, hi: int, dialect: Dialect
    ) -> list[Column]:
        """usage_records rows [lo, hi) for the given columns."""
        rng = np.random.default_rng([self.seed, 1, lo])
        inter = self.rec_inter[lo:hi]
        registered = inter >= 0
        unregistered = ~registered
        owner = np.maximum(inter, 0)
        raw = np.where(
            registered[:, None],
            self.inter_raw[owner],
            self.unreg_raw[np.maximum(self.rec_unreg[lo:hi], 0)],
        )
        n = hi - lo
        builders: dict[str, Callable[[], Column]] = {
            "id": lambda: Column(
                uuid_text(uuid_bytes(rng, n))
                if dialect == "postgresql"
                else hex_text(uuid_bytes(rng, n))
            ),
            "source": lambda: Column(_SOURCE_TABLE[self.rec_source[lo:hi]]),
            "external_id": lambda: Column(uuid_text(uuid_bytes(rng, n))),
            "interaction_id": lambda: Column(uuid_text(raw)),
            "credits": lambda: Column(credits_text(self.rec_nano[lo:hi], dialect)),
            "created_at": lambda: Column(
                timestamp_text(self.rec_created[lo:hi], dialect)
            ),
            "received_at": lambda: Column(
                timestamp_text(self.rec_received[lo:hi], dialect)
            ),
            "tenant_id": lambda: Column(
                text_table(self.tenant_ids)[self.inter_tenant[owner]], unregistered
            ),
            "user_id": lambda: Column(
                text_table(self.user_ids)[self.inter_user[owner]], unregistered
            ),
        }
        return [builders[name]() for name in names]

    def interaction_columns(
        self, names: Sequence[str], lo: int, hi: int, dialect: Dialect
    ) -> list[Column]:
        """interactions rows [lo, hi)."""
        last = self.inter_last[lo:hi]
        builders: dict[str, Callable[[], Column]] = {
            "id": lambda: Column(uuid_text(self.inter_raw[lo:hi])),
            "tenant_id": lambda: Column(
                text_table(self.tenant_ids)[self.inter_tenant[lo:hi]]
            ),
            "user_id": lambda: Column(
                text_table(self.user_ids)[self.inter_user[lo:hi]]
            ),
            "created_at": lambda: Column(
                timestamp_text(self.inter_created[lo:hi], dialect)
            ),
            "updated_at": lambda: Column(
                timestamp_text(self.inter_created[lo:hi], dialect)
            ),
            "last_usage_at": lambda: Column(
                timestamp_text(np.maximum(last, 0), dialect), last < 0
            ),
            "first_usage_at": lambda: Column(
                timestamp_text(np.maximum(self.inter_first[lo:hi], 0), dialect),
                self.inter_first[lo:hi] < 0,
            ),
        }
        return [builders[name]() for name in names]

    def user_columns(self, names: Sequence[str], dialect: Dialect) -> list[Column]:
        """users rows."""
        builders: dict[str, Callable[[], Column]] = {
            "tenant_id": lambda: Column(text_table(self.tenant_ids)[self.user_tenant]),
            "id": lambda: Column(text_table(self.user_ids)),
            "created_at": lambda: Column(timestamp_text(self.user_created, dialect)),
        }
        return [builders[name]() for name in names]

    def tenant_columns(self, names: Sequence[str], dialect: Dialect) -> list[Column]:
        """tenants rows."""
        builders: dict[str, Callable[[], Column]] = {
            "id": lambda: Column(text_table(self.tenant_ids)),
            "created_at": lambda: Column(timestamp_text(self.tenant_created, dialect)),
        }
        return [builders[name]() for name in names]

    # -- what the data should answer ---------------------------------------

    def tenant_summary(self, start_us: int, end_us: int) -> list[dict[str, Any]]:
        """Per tenant: records, credits by source and active users in [start, end)."""
        tenants = len(self.tenant_ids)
        tenant = self.record_tenant()
        all_time = np.bincount(tenant[tenant >= 0], minlength=tenants)
        keep = (tenant >= 0) & (self.rec_created >= start_us)
        keep &= self.rec_created < end_us
        slot = tenant[keep].astype(np.int64) * 3 + self.rec_source[keep]
        counts = np.bincount(slot, minlength=tenants * 3).reshape(tenants, 3)
        flat_nano = np.zeros(tenants * 3, dtype=np.int64)
        np.add.at(flat_nano, slot, self.rec_nano[keep])
        nano = flat_nano.reshape(tenants, 3)
        pairs = np.unique(
            tenant[keep].astype(np.int64) * len(self.user_ids)
            + self.inter_user[self.rec_inter[keep]]
        )
        active = np.bincount(pairs // len(self.user_ids), minlength=tenants)
        members = np.bincount(self.user_tenant, minlength=tenants)
        return [
            {
                "tenant": tenant_id,
                "records": int(counts[t].sum()),
                "records_by_source": {
                    s: int(counts[t, c]) for c, s in enumerate(SOURCES)
                },
                "nano_by_source": {s: int(nano[t, c]) for c, s in enumerate(SOURCES)},
                "users_with_usage": int(active[t]),
                "users": int(members[t]),
                "records_all_time": int(all_time[t]),
            }
            for t, tenant_id in enumerate(self.tenant_ids)
        ]


def _utc_offsets(start_us: int, days: int) -> I64:
    """Copenhagen's UTC offset (microseconds) at noon of each day."""
    offsets = []
    for d in range(days):
        noon = from_us(start_us + d * DAY_US + 12 * HOUR_US)
        offset = noon.astimezone(ZONE).utcoffset()
        assert offset is not None
        offsets.append(offset // timedelta(microseconds=1))
    return np.array(offsets, dtype=np.int64)


def generate(scale: Scale, seed: int) -> Dataset:
    """All rows of a scale, deterministic for a seed."""
    rng = np.random.default_rng(seed)
    tenants, users, interactions = scale.tenants, scale.users, scale.interactions
    days = scale.days
    end_us = to_us(DATA_END)
    start_us = end_us - days * DAY_US

    # Tenants: Zipf sizes, in random id order.
    zipf = np.arange(1, tenants + 1, dtype=np.float64) ** -1.1
    tenant_share = (zipf / zipf.sum())[rng.permutation(tenants)]
    tenant_ids = [f"tenant-{t:03d}" for t in range(1, tenants + 1)]

    # Users: proportional to tenant size, log-normal activity, active spans.
    per_tenant = _allocate(users, tenant_share, minimum=3)
    user_tenant = np.repeat(np.arange(tenants, dtype=np.int32), per_tenant)
    activity = rng.lognormal(0.0, 1.2, users)
    tenant_activity = np.bincount(user_tenant, weights=activity, minlength=tenants)
    first_day = np.where(
        rng.random(users) < 0.7, 0, rng.integers(0, int(days * 0.9), users)
    )
    stops = rng.random(users) < 0.15
    last_day = np.where(
        stops,
        first_day + 30 + (rng.random(users) * (days - first_day - 30)).astype(int),
        days,
    )
    last_day = np.clip(last_day, first_day + 30, days)
    user_ids = [f"user-{u:05d}" for u in range(1, users + 1)]
    if scale.dataset == "dense":
        # The first user of each tenant is its service account.
        firsts = np.concatenate([[0], np.cumsum(per_tenant)[:-1]])
        others = tenant_activity - activity[firsts]
        activity[firsts] = others * SERVICE_ACCOUNT_SHARE / (1 - SERVICE_ACCOUNT_SHARE)
        tenant_activity = np.bincount(user_tenant, weights=activity, minlength=tenants)
        first_day[firsts] = 0
        last_day[firsts] = days
        for t, u in enumerate(firsts):
            user_ids[u] = f"service-account-{t + 1:02d}"
    user_created = (
        start_us
        + first_day * DAY_US
        - np.where(first_day == 0, rng.integers(0, 365, users), 0) * DAY_US
        - rng.integers(0, DAY_US, users)
    ).astype(np.int64)
    tenant_created = np.array(
        [user_created[user_tenant == t].min() for t in range(tenants)], dtype=np.int64
    )

    # Days: growth trend times weekday; CDF for sampling inside a user's span.
    day_index = np.arange(days)
    weekday = (start_us // DAY_US + day_index + 3) % 7  # 1970-01-01 was a Thursday
    day_weight = (1 + 1.5 * day_index / days) * WEEKDAYS[weekday]
    cdf = np.concatenate([[0.0], np.cumsum(day_weight) / day_weight.sum()])
    span = cdf[last_day] - cdf[first_day]
    rate = tenant_share[user_tenant] * activity / tenant_activity[user_tenant]
    user_weight = rate * span
    offsets = _utc_offsets(start_us, days)

    def instants(first: I64, last: I64) -> I64:
        """A local daytime-weighted instant per row within [first, last) days."""
        n = first.shape[0]
        u = cdf[first] + rng.random(n) * (cdf[last] - cdf[first])
        day = np.clip(np.searchsorted(cdf, u, side="right") - 1, 0, days - 1)
        hour = rng.choice(24, size=n, p=HOURS / HOURS.sum())
        within = rng.integers(0, HOUR_US, n)
        value: I64 = start_us + day * DAY_US + hour * HOUR_US + within - offsets[day]
        return value

    # Interactions, in time order.
    chosen = rng.choice(users, size=interactions, p=user_weight / user_weight.sum())
    inter_created = instants(first_day[chosen], last_day[chosen])
    order = np.argsort(inter_created, kind="stable")
    inter_user: I32 = chosen[order].astype(np.int32)
    inter_created = inter_created[order]
    inter_tenant = user_tenant[inter_user]
    inter_raw = uuid_bytes(rng, interactions)

    # Records of registered interactions: at least one each, log-normal lengths.
    unregistered = round(scale.records * UNREGISTERED_SHARE)
    registered = scale.records - unregistered
    assert registered >= interactions, "fewer records than interactions"
    length = rng.lognormal(0.0, 0.8, interactions)
    extra = rng.choice(
        interactions, size=registered - interactions, p=length / length.sum()
    )
    per_interaction = 1 + np.bincount(extra, minlength=interactions)
    rec_inter = np.repeat(np.arange(interactions, dtype=np.int32), per_interaction)
    del extra
    source = rng.choice(3, size=registered, p=SOURCE_SHARES).astype(np.int8)
    # Streams during the interaction, transcripts and documents after it.
    base = np.array([0.0, 300.0, 600.0])[source]
    spread = np.array([900.0, 600.0, 1800.0])[source]
    delay = (base + rng.exponential(1.0, registered) * spread) * SECOND_US
    late = rng.random(registered) < 0.015
    delay[late] += rng.uniform(3600, 72 * 3600, int(late.sum())) * SECOND_US
    created = inter_created[rec_inter] + delay.astype(np.int64)
    del delay, base, spread, late

    # Records whose interaction was never registered.
    pool = max(1, unregistered // 3)
    unreg_raw = uuid_bytes(rng, pool)
    unreg_created = instants(
        np.zeros(unregistered, dtype=np.int64), np.full(unregistered, days)
    )
    rec_inter = np.concatenate([rec_inter, np.full(unregistered, -1, np.int32)])
    rec_unreg = np.concatenate(
        [
            np.full(registered, -1, np.int32),
            rng.integers(0, pool, unregistered).astype(np.int32),
        ]
    )
    source = np.concatenate(
        [source, rng.choice(3, size=unregistered, p=SOURCE_SHARES).astype(np.int8)]
    )
    created = np.minimum(np.concatenate([created, unreg_created]), end_us - 1)
    total = scale.records
    medians = np.log(np.array(CREDIT_MEDIANS))[source]
    sigmas = np.array(CREDIT_SIGMAS)[source]
    credits = np.exp(medians + sigmas * rng.standard_normal(total))
    nano = np.clip(np.rint(credits * 1e9), 1, 10**15).astype(np.int64)
    del medians, sigmas, credits
    received = created + (rng.exponential(3.0, total) * SECOND_US).astype(np.int64)
    slow = rng.random(total) < 0.01
    received[slow] += (
        rng.uniform(3600, 48 * 3600, int(slow.sum())) * SECOND_US
    ).astype(np.int64)

    order = np.argsort(created, kind="stable")
    rec_inter = rec_inter[order]
    rec_unreg = rec_unreg[order]
    source = source[order]
    nano = nano[order]
    created = created[order]
    received = received[order]
    del order

    inter_last = np.full(interactions, -1, dtype=np.int64)
    has = rec_inter >= 0
    np.maximum.at(inter_last, rec_inter[has], created[has])
    inter_first = np.full(interactions, np.iinfo(np.int64).max, dtype=np.int64)
    np.minimum.at(inter_first, rec_inter[has], created[has])
    inter_first[inter_last < 0] = -1

    return Dataset(
        seed=seed,
        start_us=start_us,
        end_us=end_us,
        tenant_ids=tenant_ids,
        tenant_created=tenant_created,
        user_ids=user_ids,
        user_tenant=user_tenant,
        user_created=user_created,
        inter_raw=inter_raw,
        inter_user=inter_user,
        inter_tenant=inter_tenant,
        inter_created=inter_created,
        inter_last=inter_last,
        inter_first=inter_first,
        unreg_raw=unreg_raw,
        rec_inter=rec_inter,
        rec_unreg=rec_unreg,
        rec_source=source,
        rec_nano=nano,
        rec_created=created,
        rec_received=received,
    )
