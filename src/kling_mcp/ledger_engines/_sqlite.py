"""The embedded engine: one SQLite file in WAL mode, shared safely by several local processes.

A write transaction is ``BEGIN IMMEDIATE``: it holds SQLite's single writer lock from its first
statement, so a cap check and the insert it guards cannot interleave with another process's.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ._engine import Params, Row, Tx

BUSY_TIMEOUT_S = 15.0


def _dict_row(cursor: sqlite3.Cursor, values: tuple[Any, ...]) -> Row:
    return {column[0]: value for column, value in zip(cursor.description, values, strict=True)}


class _SqliteTx:
    __slots__ = ("_db",)

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def rows(self, sql: str, params: Params = ()) -> list[Row]:
        return self._db.execute(sql, params).fetchall()

    def row(self, sql: str, params: Params = ()) -> Row | None:
        return self._db.execute(sql, params).fetchone()  # type: ignore[no-any-return]

    def run(self, sql: str, params: Params = ()) -> int:
        return self._db.execute(sql, params).rowcount

    def run_many(self, sql: str, params: Sequence[Params]) -> None:
        self._db.executemany(sql, params)


class SqliteEngine:
    name = "sqlite"
    for_update = ""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        # One connection, used by one thread at a time: the ledger is called from worker threads.
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, timeout=BUSY_TIMEOUT_S, check_same_thread=False, isolation_level=None)
        self._db.row_factory = _dict_row
        with self._lock:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute(f"PRAGMA busy_timeout={int(BUSY_TIMEOUT_S * 1000)}")

    @contextmanager
    def transaction(self, *, write: bool) -> Iterator[_SqliteTx]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE" if write else "BEGIN")
            try:
                yield _SqliteTx(self._db)
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def has_table(self, tx: Tx, name: str) -> bool:
        return tx.row("SELECT 1 AS found FROM sqlite_master WHERE type = 'table' AND name = ?", (name,)) is not None

    def migration_lock(self, tx: Tx) -> None:
        """A write transaction already excludes every other writer of the file."""

    def describe(self) -> str:
        return f"SQLite file {self.path}"

    def server_version(self) -> str:
        return f"SQLite {sqlite3.sqlite_version}"

    def close(self) -> None:
        with self._lock:
            self._db.close()
