"""The ledger's schema, as a numbered list of migrations that runs on every engine.

Each migration is SQL both engines accept (``DOUBLE PRECISION`` and ``BIGINT`` columns, which
SQLite stores as REAL and INTEGER), then any PostgreSQL alone runs (storage settings SQLite has
no counterpart of), optionally followed by a data step in Python. Opening a
ledger applies, in one transaction under a lock every process honours, the migrations its
database has not seen yet; a ledger written before versioning (version 0, where migration 1's
``IF NOT EXISTS`` finds the tables already there) is upgraded in place.

A new table, or a column such as a polling lease's owner and heartbeat, is one more entry at
the end. Never edit an entry that has shipped: ledgers in the field have already applied it.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from ._engine import Engine, LedgerUnavailable, Tx


def spend_period_of_day(ts: float) -> str:
    """The running-total key of the UTC day a timestamp falls in."""
    return "day:" + datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d")


TOTAL_PERIOD = "total"


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    summary: str
    statements: tuple[str, ...]
    data: Callable[[Tx], None] | None = None
    postgresql_only: tuple[str, ...] = ()


def _spend_totals_from_jobs(tx: Tx) -> None:
    """Running totals for the jobs already in the ledger: one per UTC day, and one overall."""
    totals: dict[str, int] = defaultdict(int)
    for job in tx.rows("SELECT created_at, committed_micros FROM jobs WHERE committed_micros <> 0"):
        totals[spend_period_of_day(job["created_at"])] += job["committed_micros"]
        totals[TOTAL_PERIOD] += job["committed_micros"]
    tx.run_many("INSERT INTO spend (period, committed_micros) VALUES (?, ?)", sorted(totals.items()))


MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "jobs, uploads and downloads",
        (
            """CREATE TABLE IF NOT EXISTS jobs (
                task_uuid      TEXT PRIMARY KEY,
                model          TEXT NOT NULL,
                tool           TEXT NOT NULL,
                status         TEXT NOT NULL,
                payload        TEXT NOT NULL,
                estimate       TEXT,
                reserve_usd    DOUBLE PRECISION NOT NULL,
                number_results INTEGER NOT NULL,
                results        TEXT NOT NULL DEFAULT '[]',
                cost_usd       DOUBLE PRECISION,
                errors         TEXT NOT NULL DEFAULT '[]',
                progress       INTEGER,
                created_at     DOUBLE PRECISION NOT NULL,
                submitted_at   DOUBLE PRECISION,
                updated_at     DOUBLE PRECISION NOT NULL,
                finished_at    DOUBLE PRECISION
            )""",
            "CREATE INDEX IF NOT EXISTS jobs_created ON jobs(created_at)",
            "CREATE INDEX IF NOT EXISTS jobs_status ON jobs(status)",
            "DROP TABLE IF EXISTS media",  # an earlier, never used, draft of uploads
            """CREATE TABLE IF NOT EXISTS uploads (
                sha256       TEXT NOT NULL,
                account      TEXT NOT NULL,  -- a one-way fingerprint of endpoint and key
                kind         TEXT NOT NULL,
                mime         TEXT NOT NULL,
                media_uuid   TEXT NOT NULL,
                media_url    TEXT,
                size         BIGINT NOT NULL,
                source       TEXT,
                created_at   DOUBLE PRECISION NOT NULL,
                last_used_at DOUBLE PRECISION NOT NULL,
                PRIMARY KEY (sha256, account)
            )""",
            """CREATE TABLE IF NOT EXISTS downloads (
                task_uuid  TEXT NOT NULL,
                video_uuid TEXT NOT NULL,
                path       TEXT NOT NULL,
                size       BIGINT NOT NULL,
                created_at DOUBLE PRECISION NOT NULL,
                PRIMARY KEY (task_uuid, video_uuid, path)
            )""",
        ),
    ),
    Migration(
        2,
        "running spend totals, so the cap check costs the same whatever the ledger's size",
        (
            # What each job commits against the caps, in whole micro-dollars (exact sums):
            # the rule as it stood when this migration was written; the ledger keeps it since.
            "ALTER TABLE jobs ADD COLUMN committed_micros BIGINT NOT NULL DEFAULT 0",
            """UPDATE jobs SET committed_micros = CAST(ROUND(1000000 * (CASE
                WHEN status = 'rejected' THEN 0
                WHEN status IN ('success', 'partial', 'failed')
                    THEN COALESCE(cost_usd, CASE WHEN status = 'failed' THEN 0 ELSE reserve_usd END)
                ELSE reserve_usd END)) AS BIGINT)""",
            # One row per UTC day ('day:2026-11-22') and one overall ('total').
            "CREATE TABLE spend (period TEXT PRIMARY KEY, committed_micros BIGINT NOT NULL)",
        ),
        _spend_totals_from_jobs,
    ),
    Migration(
        3,
        "storyboards: a whole plan, its clips each pointing at the job that makes it",
        (
            """CREATE TABLE storyboards (
                id         TEXT PRIMARY KEY,
                status     TEXT NOT NULL,
                data       TEXT NOT NULL,
                created_at DOUBLE PRECISION NOT NULL,
                updated_at DOUBLE PRECISION NOT NULL
            )""",
            "CREATE INDEX storyboards_status ON storyboards (status)",
        ),
    ),
    Migration(
        4,
        "webhook secrets: one per job sent with a webhookURL, kept only as a SHA-256 digest",
        (
            """CREATE TABLE webhooks (
                task_uuid     TEXT PRIMARY KEY,
                secret_sha256 TEXT NOT NULL,
                created_at    DOUBLE PRECISION NOT NULL
            )""",
        ),
    ),
    Migration(
        5,
        "polling leases: the instance that polls each in-flight job, and its last heartbeat",
        (
            "ALTER TABLE jobs ADD COLUMN poll_owner TEXT",
            "ALTER TABLE jobs ADD COLUMN poll_heartbeat DOUBLE PRECISION",
            # The poll schedule reads the latest render times of each model.
            "CREATE INDEX jobs_finished ON jobs (finished_at)",
        ),
    ),
    Migration(
        6,
        "render times: how long after its acknowledgement each finished job was last seen still rendering",
        ("ALTER TABLE jobs ADD COLUMN seen_running_s DOUBLE PRECISION",),
    ),
    Migration(
        7,
        "room in each page of jobs, so that a poll tick's progress writes stay in place",
        (),
        # A tick rewrites the row of every job whose progress moved. With free space on the page, PostgreSQL
        # writes the new version beside the old and leaves the four indexes alone (a HOT update): 500 jobs'
        # progress took 9.3 ms in full pages, 4.5 ms at 70%. The table grows by about 40%. New pages only:
        # rows already written are old jobs, not rewritten any more.
        postgresql_only=("ALTER TABLE jobs SET (fillfactor = 70)",),
    ),
    Migration(
        8,
        "storyboard makers: the instance that makes each storyboard, and its last heartbeat",
        (
            "ALTER TABLE storyboards ADD COLUMN runner TEXT",
            "ALTER TABLE storyboards ADD COLUMN runner_heartbeat DOUBLE PRECISION",
        ),
    ),
)
LATEST = MIGRATIONS[-1].version


_SCHEMA_TABLE = (
    "CREATE TABLE IF NOT EXISTS ledger_schema (version INTEGER PRIMARY KEY, applied_at DOUBLE PRECISION NOT NULL)"
)


def schema_version(tx: Tx) -> int:
    row = tx.row("SELECT MAX(version) AS version FROM ledger_schema")
    return int(row["version"]) if row and row["version"] is not None else 0


def migrate(engine: Engine) -> int:
    """Bring the database to the latest schema; the version it is at afterwards. A ledger that is
    already current is only read: opening it takes no write lock."""
    with engine.transaction(write=False) as tx:
        current = schema_version(tx) if engine.has_table(tx, "ledger_schema") else 0
    if current < LATEST:
        with engine.transaction(write=True) as tx:
            engine.migration_lock(tx)
            # Created, or found as another instance committed it meanwhile (statements after the
            # lock see what committed before it was granted).
            tx.run(_SCHEMA_TABLE)
            current = schema_version(tx)
            for migration in MIGRATIONS[current:]:
                only_here = migration.postgresql_only if engine.name == "postgresql" else ()
                for statement in migration.statements + only_here:
                    tx.run(statement)
                if migration.data is not None:
                    migration.data(tx)
                tx.run("INSERT INTO ledger_schema (version, applied_at) VALUES (?, ?)", (migration.version, time.time()))
                current = migration.version
    if current > LATEST:
        raise LedgerUnavailable(
            f"The ledger at {engine.describe()} has schema version {current}, newer than this kling-mcp "
            f"knows ({LATEST}): a newer kling-mcp has upgraded it. Upgrade this installation too."
        )
    return current
