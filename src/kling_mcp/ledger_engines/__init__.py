"""The databases the ledger runs on: embedded SQLite (the default) or a shared PostgreSQL."""

from __future__ import annotations

from pathlib import Path

from ._engine import ChangeFeed, Engine, LedgerUnavailable, Row, Tx, chunks, expand
from ._migrations import LATEST, MIGRATIONS, TOTAL_PERIOD, Migration, migrate, schema_version, spend_period_of_day
from ._postgres import is_postgres_url
from ._sqlite import SqliteEngine


def open_engine(location: Path | str) -> Engine:
    """A ``postgresql://`` URL opens PostgreSQL; anything else is a SQLite file's path."""
    if is_postgres_url(location):
        from ._postgres import PostgresEngine

        return PostgresEngine(str(location))
    return SqliteEngine(Path(location))


__all__ = [
    "LATEST", "MIGRATIONS", "TOTAL_PERIOD", "ChangeFeed", "Engine", "LedgerUnavailable", "Migration", "Row", "Tx",
    "chunks", "expand", "is_postgres_url", "migrate", "open_engine", "schema_version", "spend_period_of_day",
]  # fmt: skip
