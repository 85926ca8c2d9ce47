"""What the ledger needs from a database: transactions that run shared SQL, whatever the engine.

The ledger's statements are written once, with ``?`` placeholders, in the SQL that SQLite and
PostgreSQL share (upserts with ``ON CONFLICT``, ``RETURNING``, ``DOUBLE PRECISION``/``BIGINT``
columns). An engine translates the placeholders and supplies the few clauses that differ
(row locks, the lock that serialises migrations).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from typing import Any, Protocol

Row = dict[str, Any]
Params = Sequence[Any]


class LedgerUnavailable(Exception):
    """The ledger's database cannot be opened or used. The message says where, what is wrong and
    the fix, and never carries a password. ``problem`` and ``fix`` are given apart when known."""

    def __init__(self, message: str, *, where: str | None = None, problem: str | None = None,
                 fix: str | None = None) -> None:  # fmt: skip
        super().__init__(message)
        self.where, self.problem, self.fix = where, problem, fix

    @classmethod
    def at(cls, path: Any, problem: str, fix: str) -> LedgerUnavailable:
        return cls(f"The job ledger {path} cannot be used: {problem}. Fix: {fix}", where=str(path), problem=problem,
                   fix=fix)  # fmt: skip

    def to_dict(self) -> dict[str, str]:
        return {k: v for k, v in (("path", self.where), ("problem", self.problem), ("fix", self.fix)) if v}


class Tx(Protocol):
    """One transaction. Statements use ``?`` placeholders."""

    def rows(self, sql: str, params: Params = ()) -> list[Row]: ...

    def row(self, sql: str, params: Params = ()) -> Row | None: ...

    def run(self, sql: str, params: Params = ()) -> int:
        """Run a statement; the number of rows it changed."""
        ...

    def run_many(self, sql: str, params: Sequence[Params]) -> None: ...


class ChangeFeed(Protocol):
    async def follow(self, heard: Callable[[list[str]], None], live: Callable[[bool], None]) -> None:
        """Call ``heard`` with the task ids of each change announced, until cancelled; ``live`` says whether the
        feed is listening (changes announced while it is not are not heard)."""
        ...


class Engine(Protocol):
    name: str  # "sqlite" or "postgresql"
    # Appended to a SELECT that reads rows the transaction will change: PostgreSQL locks them;
    # SQLite's write transactions already hold the whole database.
    for_update: str

    def transaction(self, *, write: bool, each_statement: bool = False) -> AbstractContextManager[Tx]:
        """A transaction; ``write`` ones exclude every other writer of the same rows until they end. With
        ``each_statement``, every statement commits by itself: for writes that need not stand or fall together."""
        ...

    def has_table(self, tx: Tx, name: str) -> bool:
        """Whether the ledger's schema holds this table (each engine keeps its own catalogue)."""
        ...

    def announce(self, tx: Tx, task_uuids: Sequence[str]) -> None:
        """Tell every instance following the ledger's changes (``change_feed``), once this transaction commits,
        that these jobs changed."""
        ...

    def change_feed(self) -> ChangeFeed | None:
        """What other instances change, as they commit; None where the engine cannot tell (SQLite)."""
        ...

    def rows_table(self, types: Sequence[str], rows: Sequence[Sequence[Any]]) -> tuple[str, list[Any]]:
        """Rows given as parameters, to join a batch of changes against: a FROM item named ``v`` with
        columns ``column1``... of these SQL types, and its parameters."""
        ...

    def migration_lock(self, tx: Tx) -> None:
        """Serialise schema migrations across every process opening the same database."""
        ...

    def describe(self) -> str:
        """Where the ledger lives, safe to print (no password)."""
        ...

    def server_version(self) -> str: ...

    def close(self) -> None: ...


def expand(marks: int) -> str:
    """``?,?,?`` for an ``IN (...)`` list of this many values."""
    return ",".join("?" * marks)


def chunks(values: Sequence[Any], size: int = 500) -> Iterator[Sequence[Any]]:
    """Long ``IN`` lists are sent in slices, under every engine's limit on bound parameters."""
    for start in range(0, len(values), size):
        yield values[start : start + size]
