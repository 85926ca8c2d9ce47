"""The embedded engine: one SQLite file in WAL mode, shared safely by several local processes.

A write transaction is ``BEGIN IMMEDIATE``: it holds SQLite's single writer lock from its first
statement, so a cap check and the insert it guards cannot interleave with another process's.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ._engine import LedgerUnavailable, Params, Row, Tx

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
        """Open (or create) the file. Raises LedgerUnavailable, never a bare OSError or sqlite3 error;
        a file that is not a valid ledger is left exactly as it is."""
        self.path = path
        _usable_folder(path)
        # One connection, used by one thread at a time: the ledger is called from worker threads.
        self._lock = threading.Lock()
        try:
            self._db = sqlite3.connect(path, timeout=BUSY_TIMEOUT_S, check_same_thread=False, isolation_level=None)
        except sqlite3.Error as exc:
            raise _unusable(path, exc) from None
        self._db.row_factory = _dict_row
        try:
            with self._lock:
                # Read before anything is written: a corrupt file fails here, untouched.
                self._db.execute("PRAGMA schema_version").fetchone()
                _into_wal(self._db)
                self._db.execute("PRAGMA synchronous=NORMAL")
                self._db.execute(f"PRAGMA busy_timeout={int(BUSY_TIMEOUT_S * 1000)}")
        except sqlite3.Error as exc:
            self._db.close()
            raise _unusable(path, exc) from None

    @contextmanager
    def transaction(self, *, write: bool, each_statement: bool = False) -> Iterator[_SqliteTx]:
        with self._lock:
            if each_statement:  # the connection commits each statement by itself
                yield _SqliteTx(self._db)
                return
            self._db.execute("BEGIN IMMEDIATE" if write else "BEGIN")
            try:
                yield _SqliteTx(self._db)
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def announce(self, tx: Tx, task_uuids: Sequence[str]) -> None:
        """Instances on one SQLite file read each other's changes from it: there is no one to tell."""

    def change_feed(self) -> None:
        return None

    def rows_table(self, types: Sequence[str], rows: Sequence[Sequence[Any]]) -> tuple[str, list[Any]]:
        marks = "(" + ", ".join("?" * len(types)) + ")"
        return f"(VALUES {', '.join([marks] * len(rows))}) AS v", [value for row in rows for value in row]

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


def _usable_folder(path: Path) -> None:
    folder = path.parent
    fix_dir = "set KLING_MCP_DATA_DIR to a folder you can write to"
    for part in (folder, *folder.parents):
        if part.exists() and not part.is_dir():
            raise LedgerUnavailable.at(path, f"{part} is a file, where a folder is needed", f"move that file away, or {fix_dir}")
        if part.exists():
            break
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise LedgerUnavailable.at(path, f"its folder {folder} cannot be created ({exc.strerror})", fix_dir) from None
    if path.exists() and not path.is_file():
        raise LedgerUnavailable.at(path, "it is not a file", f"move it away, or {fix_dir}")
    writable = os.access(path, os.R_OK | os.W_OK) if path.exists() else os.access(folder, os.W_OK | os.X_OK)
    if not writable:
        where = path if path.exists() else folder
        raise LedgerUnavailable.at(path, f"{where} is not writable by this user", f"fix its permissions, or {fix_dir}")


def _into_wal(db: sqlite3.Connection) -> None:
    """WAL mode. Switching a new file to it takes its exclusive lock without SQLite's busy handler, so
    instances opening a new ledger at once may find the lock taken (6 times in 300 tries of four at once):
    they wait for it, as for any other lock, up to the busy timeout."""
    deadline = time.monotonic() + BUSY_TIMEOUT_S
    while True:
        try:
            db.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.01)


def _unusable(path: Path, exc: sqlite3.Error) -> LedgerUnavailable:
    text = str(exc)
    if isinstance(exc, sqlite3.DatabaseError) and ("not a database" in text or "malformed" in text or "corrupt" in text):
        return LedgerUnavailable.at(
            path, f"the file is not a valid ledger ({text}); it was left untouched",
            f"move it aside (e.g. rename it to {path.name}.broken) and start again; kling-mcp then starts a new "
            "ledger, and the old file stays for you to inspect",
        )  # fmt: skip
    return LedgerUnavailable.at(path, f"SQLite could not open it ({text})",
                                "check the folder's permissions and free space, or set KLING_MCP_DATA_DIR elsewhere")  # fmt: skip
