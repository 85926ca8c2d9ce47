"""The shared engine: PostgreSQL through psycopg 3 and its connection pool.

Several kling-mcp instances use one database. Transactions run at READ COMMITTED; the spend cap
is atomic because a submission's ``UPDATE ... RETURNING`` of the running totals takes their row
locks and reads the latest committed values, so concurrent submissions from every instance
queue on those rows, one at a time. Rows are always locked in one order (jobs, then totals by
key), so transactions cannot deadlock.

psycopg is an optional dependency (``pip install 'kling-mcp[postgres]'``), imported only when a
PostgreSQL URL is configured.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import anyio

from ._engine import LedgerUnavailable, Params, Row, Tx

if TYPE_CHECKING:
    import psycopg

CONNECT_TIMEOUT_S = 10
# Every exchange with the database has a deadline: waiting for a pooled connection, each
# statement, each lock, and a transaction left idle by a stuck client.
POOL_WAIT_S = 15.0
SESSION_SETTINGS = (
    "SET statement_timeout = '15s'",
    "SET lock_timeout = '15s'",
    "SET idle_in_transaction_session_timeout = '60s'",
)
POOL_MAX = 8
# Migrations of every instance queue on this transaction-level advisory lock ("kling" in ASCII).
MIGRATION_LOCK_KEY = 0x6B6C696E67
# A NOTIFY payload holds under 8,000 bytes: task ids are sent this many characters at a time.
NOTIFY_PAYLOAD_CHARS = 7000
# The change feed's connection is checked this often when nothing is heard, and made again this long after
# it failed (twice as long after each failure in a row, up to the last).
FEED_KEEPALIVE_S = 20.0
FEED_RECONNECT_S = (2.0, 60.0)

log = logging.getLogger("kling_mcp.ledger")


@functools.lru_cache(maxsize=1024)
def _placeholders(sql: str) -> str:
    """``?`` placeholders in psycopg's style. The ledger's SQL holds no ``?`` or ``%`` in literals."""
    return sql.replace("%", "%%").replace("?", "%s")


def is_postgres_url(location: object) -> bool:
    return isinstance(location, str) and location.startswith(("postgresql://", "postgres://"))


def safe_location(url: str) -> str:
    """The URL without its password, for messages and logs."""
    from psycopg.conninfo import conninfo_to_dict

    try:
        parts = conninfo_to_dict(url)
    except Exception:  # noqa: BLE001 - an unparsable URL is described without repeating it
        return "PostgreSQL (an unreadable KLING_MCP_DATABASE_URL)"
    host, port = parts.get("host") or "localhost", parts.get("port") or "5432"
    user = f"{parts['user']}@" if parts.get("user") else ""
    return f"postgresql://{user}{host}:{port}/{parts.get('dbname') or ''}"


def _without_password(message: str, url: str) -> str:
    from psycopg.conninfo import conninfo_to_dict

    try:
        password = conninfo_to_dict(url).get("password")
    except Exception:  # noqa: BLE001
        password = None
    return message.replace(str(password), "***") if password else message


class _PostgresTx:
    __slots__ = ("_cursor",)

    def __init__(self, cursor: psycopg.Cursor[Row]) -> None:
        self._cursor = cursor

    def rows(self, sql: str, params: Params = ()) -> list[Row]:
        return self._cursor.execute(_placeholders(sql), params).fetchall()

    def row(self, sql: str, params: Params = ()) -> Row | None:
        return self._cursor.execute(_placeholders(sql), params).fetchone()

    def run(self, sql: str, params: Params = ()) -> int:
        return self._cursor.execute(_placeholders(sql), params).rowcount

    def run_many(self, sql: str, params: Sequence[Params]) -> None:
        if params:
            self._cursor.executemany(_placeholders(sql), params)


def _configure(connection: psycopg.Connection[Any]) -> None:
    for statement in SESSION_SETTINGS:
        connection.execute(statement)
    connection.commit()


class PostgresEngine:
    name = "postgresql"
    for_update = " FOR UPDATE"

    def __init__(self, url: str, *, max_connections: int = POOL_MAX) -> None:
        try:
            import psycopg
            from psycopg.rows import dict_row
            from psycopg_pool import ConnectionPool
        except ImportError as exc:
            raise LedgerUnavailable(
                "KLING_MCP_DATABASE_URL points at PostgreSQL, but psycopg is not installed. "
                "Install it with: pip install 'kling-mcp[postgres]'"
            ) from exc
        self._url, self._where = url, safe_location(url)
        # A direct first connection gives a clear reason (wrong password, no such database,
        # server down) at once; the pool would only retry until its timeout.
        try:
            with psycopg.connect(url, connect_timeout=CONNECT_TIMEOUT_S) as probe:
                self._version = str(probe.execute("SHOW server_version").fetchone()[0])  # type: ignore[index]
                schema = str(probe.execute("SELECT current_schema()").fetchone()[0])  # type: ignore[index]
        except psycopg.Error as exc:
            reason = _without_password(str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__, url)
            raise LedgerUnavailable(
                f"Cannot open the ledger at {self._where}: {reason}. Check KLING_MCP_DATABASE_URL (host, port, "
                "database, user and password) and that the PostgreSQL server is running and reachable."
            ) from None
        self._pool = ConnectionPool(
            url,
            min_size=1,
            max_size=max_connections,
            kwargs={"row_factory": dict_row, "connect_timeout": CONNECT_TIMEOUT_S},
            configure=_configure,
            # A connection the server dropped (restart, failover) is replaced before use.
            check=ConnectionPool.check_connection,
            timeout=POOL_WAIT_S,
            name="kling-mcp-ledger",
            open=False,
        )
        self._pool.open(wait=True, timeout=POOL_WAIT_S)
        # Notifications go to every listener of the database; one channel per schema keeps ledgers apart.
        self.channel = "kling_mcp_jobs_" + hashlib.sha256(schema.encode()).hexdigest()[:16]

    def announce(self, tx: Tx, task_uuids: Sequence[str]) -> None:
        payloads: list[list[str]] = [[]]
        length = 0
        for task_uuid in task_uuids:
            if payloads[-1] and length + 1 + len(task_uuid) > NOTIFY_PAYLOAD_CHARS:
                payloads.append([])
                length = 0
            payloads[-1].append(task_uuid)
            length += 1 + len(task_uuid)
        for payload in payloads:
            if payload:  # sent when the transaction commits
                tx.run("SELECT pg_notify(?, ?)", (self.channel, ",".join(payload)))

    def change_feed(self) -> PostgresChangeFeed | None:
        if sys.platform == "win32":
            return None  # psycopg's async connections need a selector event loop, not Windows' default
        return PostgresChangeFeed(self._url, self._where, self.channel)

    @contextmanager
    def transaction(self, *, write: bool, each_statement: bool = False) -> Iterator[_PostgresTx]:
        import psycopg
        from psycopg_pool import PoolTimeout

        # The pool commits when the block ends normally and rolls back when it raises.
        try:
            with self._pool.connection() as connection:
                # Without BEGIN and COMMIT: one round trip per statement, not three.
                connection.autocommit = each_statement
                try:
                    with connection.cursor() as cursor:
                        yield _PostgresTx(cursor)
                finally:
                    if each_statement and not connection.closed:
                        connection.autocommit = False  # as the pool hands it to the next user
        except (psycopg.OperationalError, PoolTimeout) as exc:  # down, unreachable, or past a deadline
            reason = _without_password(str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__,
                                       self._url)  # fmt: skip
            raise LedgerUnavailable(
                f"The ledger at {self._where} did not answer: {reason}. "
                "Check that the PostgreSQL server is running and reachable, then try again."
            ) from None

    def rows_table(self, types: Sequence[str], rows: Sequence[Sequence[Any]]) -> tuple[str, list[Any]]:
        # One array per column, not a VALUES list: three parameters bind faster than 1,500, and the statement's
        # text is the same whatever the number of rows, so the server parses and plans it once.
        arrays = ", ".join(f"?::{sql_type}[]" for sql_type in types)
        names = ", ".join(f"column{i}" for i in range(1, len(types) + 1))
        return f"unnest({arrays}) AS v({names})", [list(column) for column in zip(*rows, strict=True)]

    def has_table(self, tx: Tx, name: str) -> bool:
        row = tx.row("SELECT to_regclass(?) IS NOT NULL AS found", (name,))  # in the connection's search_path
        return bool(row and row["found"])

    def migration_lock(self, tx: Tx) -> None:
        tx.row("SELECT pg_advisory_xact_lock(?)", (MIGRATION_LOCK_KEY,))

    def describe(self) -> str:
        return f"PostgreSQL {self._where}"

    def server_version(self) -> str:
        return f"PostgreSQL {self._version}"

    def close(self) -> None:
        self._pool.close()


class PostgresChangeFeed:
    """The jobs other instances change, as they commit: LISTEN on the ledger's channel, over a connection
    of its own (outside the pool), made again whenever it fails."""

    def __init__(self, url: str, where: str, channel: str) -> None:
        self._url, self._where, self._channel = url, where, channel

    async def follow(self, heard: Callable[[list[str]], None], live: Callable[[bool], None]) -> None:
        """Call ``heard`` with the task ids of every change announced, until cancelled; ``live`` says whether
        the feed is listening (changes announced while it was not are not heard: the caller reads them)."""
        import psycopg

        pause = FEED_RECONNECT_S[0]
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(
                    self._url, autocommit=True, connect_timeout=CONNECT_TIMEOUT_S
                ) as connection:
                    with anyio.fail_after(CONNECT_TIMEOUT_S):
                        await connection.execute(f'LISTEN "{self._channel}"')
                    live(True)
                    pause = FEED_RECONNECT_S[0]
                    while True:
                        async for note in connection.notifies(timeout=FEED_KEEPALIVE_S):
                            heard(note.payload.split(","))
                        with anyio.fail_after(CONNECT_TIMEOUT_S):  # a connection silently gone is found here
                            await connection.execute("SELECT 1")
            except (psycopg.Error, OSError, TimeoutError) as exc:
                reason = _without_password(str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__,
                                           self._url)  # fmt: skip
                log.warning("Listening for job changes at %s failed (%s); trying again in %g s, and reading other "
                            "instances' changes from the ledger meanwhile", self._where, reason, pause)  # fmt: skip
            finally:
                live(False)
            await anyio.sleep(pause)
            pause = min(2 * pause, FEED_RECONNECT_S[1])
