"""The durable job ledger: every paid job, written before its request leaves the machine.

One interface, two engines (see ``ledger_engines``): an embedded SQLite file (the default;
several local processes share it in WAL mode), or a PostgreSQL database that several
kling-mcp instances share (``KLING_MCP_DATABASE_URL``). Every statement below is written once
and runs on both.

Spend caps are enforced from running totals (one per UTC day, one overall), which a submission
raises, and checks, in the same write transaction as the insert of its job: the check costs the
same whatever the ledger's size, and concurrent submissions from every process and instance
queue on those rows, so together they never commit more than a cap.
The methods are synchronous and fast; async callers run them in a worker thread.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import re
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any, Literal

from ._poll_schedule import RenderSample
from .ledger_engines import (
    TOTAL_PERIOD, ChangeFeed, LedgerUnavailable, Row, Tx, chunks, expand, migrate, open_engine, spend_period_of_day,
)  # fmt: skip

log = logging.getLogger("kling_mcp.ledger")

JobStatus = Literal[
    "pending",  # written, request not yet answered
    "submitted",  # acknowledged by Runware
    "processing",
    "unknown",  # the submission's fate could not be established yet; it is looked up, never re-sent blindly
    "success",
    "partial",  # some results succeeded, some failed
    "failed",
    "rejected",  # refused by Runware before it started (nothing charged)
    "planned",  # a storyboard's clip, its cost reserved, not sent yet (waits for its turn)
    "cancelled",  # a planned clip that will never be sent (nothing charged)
    "stalled",  # no terminal answer within the maximum age: no longer polled, still looked up on request
]
IN_FLIGHT: tuple[JobStatus, ...] = ("pending", "submitted", "processing", "unknown")
TERMINAL: tuple[JobStatus, ...] = ("success", "partial", "failed", "rejected", "cancelled")

_MICROS_PER_USD = Decimal(1_000_000)
# How inline media (never stored) shows in a stored payload.
REDACTED_PREFIX = "<inline media, "
# webhookURL carries the job's webhook secret; only its digest is kept (the webhooks table).
_SECRET_KEY = re.compile(r"api[_-]?key|authori[sz]ation|token|secret|password|webhook", re.IGNORECASE)


class UnavailableLedger:
    """Stands in for a ledger that could not be opened: every use raises the same LedgerUnavailable.
    The server still starts, so listing models and dry runs work, and every paid or job tool answers
    with the one clear line instead of a traceback."""

    def __init__(self, error: LedgerUnavailable) -> None:
        self.error, self.location = error, error.where

    def close(self) -> None:
        pass

    def __getattr__(self, name: str) -> Any:
        def refuse(*_args: Any, **_kwargs: Any) -> Any:
            raise self.error

        return refuse


class SpendCapExceeded(Exception):
    """A submission that would take committed spend over a configured cap. Nothing was sent."""

    def __init__(self, cap_name: str, cap: Decimal, committed: Decimal, request_cost: Decimal) -> None:
        self.cap_name, self.cap, self.committed, self.request_cost = cap_name, cap, committed, request_cost
        super().__init__(
            f"Refused: this request would cost up to ${request_cost:.3f}, and ${committed:.3f} of the "
            f"${cap:.2f} {cap_name} spend cap is already committed (finished jobs at their real cost, "
            f"running ones at their estimate). Nothing was submitted. Wait for the {cap_name} window to "
            f"reset, choose a cheaper request (shorter, fewer results, a Standard model), or raise "
            f"KLING_MCP_{cap_name.upper()}_CAP_USD."
        )


@dataclass(frozen=True, slots=True)
class JobRecord:
    task_uuid: str
    model: str
    tool: str
    status: JobStatus
    payload: dict[str, Any]
    reserve_usd: Decimal
    number_results: int
    estimate: dict[str, Any] | None = None
    results: list[dict[str, Any]] = field(default_factory=list)
    cost_usd: float | None = None
    errors: list[dict[str, Any]] = field(default_factory=list)
    progress: int | None = None
    created_at: float = 0.0
    submitted_at: float | None = None
    updated_at: float = 0.0
    finished_at: float | None = None

    @property
    def in_flight(self) -> bool:
        return self.status in IN_FLIGHT

    def to_dict(self) -> dict[str, Any]:
        return {
            "task_id": self.task_uuid,
            "model": self.model,
            "tool": self.tool,
            "status": self.status,
            "results": self.results,
            "cost_usd": self.cost_usd,
            "estimate": self.estimate,
            "errors": self.errors,
            "progress": self.progress,
            "created_at": _iso(self.created_at),
            "submitted_at": _iso(self.submitted_at),
            "finished_at": _iso(self.finished_at),
        }


def _iso(ts: float | None) -> str | None:
    return None if ts is None else datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds")


def redact_payload(value: Any) -> Any:
    """A payload as it may be stored: no credentials, and inline media replaced by its digest."""
    if isinstance(value, dict):
        return {k: redact_payload(v) for k, v in value.items() if not _SECRET_KEY.search(str(k))}
    if isinstance(value, list):
        return [redact_payload(v) for v in value]
    if isinstance(value, str) and (value.startswith("data:") or len(value) > 4096):
        digest = hashlib.sha256(value.encode()).hexdigest()[:16]
        return f"{REDACTED_PREFIX}{len(value)} characters, sha256 {digest}>"
    return value


def usd_to_micros(usd: Decimal, rounding: str = ROUND_HALF_UP) -> int:
    return int((usd * _MICROS_PER_USD).to_integral_value(rounding))


def micros_to_usd(micros: int) -> Decimal:
    return (Decimal(micros) / _MICROS_PER_USD).quantize(Decimal("0.000001"))


def committed_micros(status: str, cost_usd: float | None, reserve_micros: int) -> int:
    """What a job commits against the spend caps: its real cost once known, its reservation while
    it may still be charged, nothing once refused (or failed without a cost)."""
    if status in ("rejected", "cancelled"):
        return 0
    if status in ("success", "partial", "failed"):
        if cost_usd is not None:
            return usd_to_micros(Decimal(str(cost_usd)))
        return 0 if status == "failed" else reserve_micros
    return reserve_micros


def start_of_utc_day(now: float) -> float:
    day = datetime.fromtimestamp(now, UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return day.timestamp()


_UPDATABLE = frozenset(
    {"status", "results", "cost_usd", "errors", "progress", "submitted_at", "finished_at", "seen_running_s"}
)
_JOB_COLUMNS = (
    "task_uuid", "model", "tool", "status", "payload", "estimate", "reserve_usd", "number_results",
    "committed_micros", "created_at", "updated_at",
)  # fmt: skip
_INSERT_JOB = f"INSERT INTO jobs ({', '.join(_JOB_COLUMNS)}) VALUES ({expand(len(_JOB_COLUMNS))})"  # noqa: S608
# Raises a running total (created at zero) and reads it back, holding its row until the transaction
# ends: every submission that could take the same cap queues here, in key order.
_ADD_SPEND = (
    "INSERT INTO spend (period, committed_micros) VALUES (?, ?) ON CONFLICT (period) DO UPDATE"
    " SET committed_micros = spend.committed_micros + excluded.committed_micros RETURNING committed_micros"
)
_IN_FLIGHT_MARKS = expand(len(IN_FLIGHT))
# A storyboard still being made, or waiting on a retry (storyboard.ACTIVE): it has a maker, under a lease.
_ACTIVE_BOARDS = "'running', 'blocked', 'assembling'"
_STATE_COLUMNS = (
    "task_uuid, model, tool, status, reserve_usd, number_results, results, cost_usd, errors, progress, created_at,"
    " submitted_at, updated_at, finished_at"
)
# The caps' rule, per model, with what each status adds up to: for the spending report.
_BY_MODEL = """
SELECT model,
    COUNT(*) AS jobs,
    SUM(CASE WHEN status IN ('success', 'partial') THEN 1 ELSE 0 END) AS finished,
    SUM(CASE WHEN status IN ('failed', 'rejected') THEN 1 ELSE 0 END) AS failed,
    SUM(CASE WHEN status IN ('success', 'partial', 'failed', 'rejected') THEN 0 ELSE 1 END) AS running,
    COALESCE(SUM(CASE WHEN status IN ('success', 'partial', 'failed') THEN cost_usd END), 0) AS charged_usd,
    COALESCE(SUM(CASE WHEN status IN ('success', 'partial', 'failed', 'rejected') THEN 0 ELSE reserve_usd END), 0)
        AS reserved_usd
FROM jobs WHERE created_at >= ? GROUP BY model ORDER BY model
"""


@dataclass(frozen=True, slots=True)
class PollLease:
    """An in-flight job an instance holds the polling lease of: what its poll schedule needs."""

    task_uuid: str
    model: str
    status: JobStatus
    created_at: float
    submitted_at: float | None


@dataclass(frozen=True, slots=True)
class LedgerInfo:
    """What `kling-mcp check` reports about the ledger."""

    location: str
    server: str
    schema_version: int
    jobs: int
    in_flight: int


class Ledger:
    """The job ledger at ``location``: a SQLite file's path, or a ``postgresql://`` URL."""

    def __init__(self, location: Path | str) -> None:
        self._engine = open_engine(location)
        try:
            self.schema_version = migrate(self._engine)
        except BaseException:
            self._engine.close()
            raise
        self.location = self._engine.describe()
        log.debug("Job ledger: %s, schema version %d", self.location, self.schema_version)

    @property
    def engine(self) -> str:
        """``sqlite`` or ``postgresql``."""
        return self._engine.name

    def close(self) -> None:
        self._engine.close()

    def change_feed(self) -> ChangeFeed | None:
        """The jobs any instance changes (other than their progress), as each change commits: PostgreSQL's
        LISTEN/NOTIFY. None on SQLite, whose instances share one machine and read each other's changes."""
        return self._engine.change_feed()

    def info(self) -> LedgerInfo:
        with self._engine.transaction(write=False) as tx:
            jobs = tx.row("SELECT COUNT(*) AS n FROM jobs")
            live = tx.row(f"SELECT COUNT(*) AS n FROM jobs WHERE status IN ({_IN_FLIGHT_MARKS})", IN_FLIGHT)  # noqa: S608
        return LedgerInfo(
            self.location, self._engine.server_version(), self.schema_version,
            int(jobs["n"]) if jobs else 0, int(live["n"]) if live else 0,
        )  # fmt: skip

    # -- jobs -----------------------------------------------------------------------------

    def record_new(
        self,
        job: JobRecord,
        *,
        daily_cap: Decimal | None = None,
        total_cap: Decimal | None = None,
        now: float | None = None,
    ) -> JobRecord:
        """Write a new job, as pending, if its reservation fits under the caps; else raise
        SpendCapExceeded with nothing written."""
        return self._insert([job], "pending", daily_cap, total_cap, now)[0]

    def record_planned(
        self,
        jobs: list[JobRecord],
        *,
        daily_cap: Decimal | None = None,
        total_cap: Decimal | None = None,
        storyboard: tuple[str, str, dict[str, Any]] | None = None,
        now: float | None = None,
    ) -> list[JobRecord]:
        """Write jobs as planned (a storyboard's clips, sent later, once each), all or none: their
        reservations together must fit under the caps. With ``storyboard`` (id, status, data), the
        storyboard is written in the same transaction."""
        return self._insert(jobs, "planned", daily_cap, total_cap, now, storyboard)

    def _insert(
        self, jobs: list[JobRecord], status: JobStatus, daily_cap: Decimal | None, total_cap: Decimal | None,
        now: float | None, storyboard: tuple[str, str, dict[str, Any]] | None = None,
    ) -> list[JobRecord]:  # fmt: skip
        now = time.time() if now is None else now
        rows = [replace(j, status=status, created_at=now, updated_at=now, payload=redact_payload(j.payload)) for j in jobs]
        reserves = [usd_to_micros(j.reserve_usd, ROUND_CEILING) for j in rows]
        reserve = sum(reserves)
        day = spend_period_of_day(now)
        with self._engine.transaction(write=True) as tx:
            totals = _add_spend(tx, {day: reserve, TOTAL_PERIOD: reserve}, keep_zero=True)
            for cap_name, cap, period in (("daily", daily_cap, day), ("total", total_cap, TOTAL_PERIOD)):
                if cap is not None and totals[period] > usd_to_micros(cap, ROUND_FLOOR):
                    # Raising rolls the transaction back: the totals are as they were.
                    raise SpendCapExceeded(cap_name, cap, micros_to_usd(totals[period] - reserve), micros_to_usd(reserve))
            for job, micros in zip(rows, reserves, strict=True):
                tx.run(
                    _INSERT_JOB,
                    (
                        job.task_uuid, job.model, job.tool, job.status, json.dumps(job.payload),
                        json.dumps(job.estimate) if job.estimate is not None else None,
                        float(job.reserve_usd), job.number_results, micros, job.created_at, job.updated_at,
                    ),
                )  # fmt: skip
            if storyboard is not None:
                board_id, board_status, data = storyboard
                # Its updated_at is the record's own, which a conditional save names (storyboard_save).
                tx.run("INSERT INTO storyboards (id, status, data, created_at, updated_at) VALUES (?, ?, ?, ?, ?)",
                       (board_id, board_status, json.dumps(data), now, data.get("updated_at") or now))  # fmt: skip
        return rows

    def promote_planned(self, job: JobRecord) -> bool:
        """A planned job made pending, with the payload it is sent with: True once, for the one caller
        that may send it; False if it was not planned (sent, or cancelled, by another process)."""
        with self._engine.transaction(write=True) as tx:
            row = tx.row(
                "UPDATE jobs SET status = 'pending', payload = ?, estimate = ?, updated_at = ?"
                " WHERE task_uuid = ? AND status = 'planned' RETURNING task_uuid",
                (json.dumps(redact_payload(job.payload)), json.dumps(job.estimate) if job.estimate else None,
                 time.time(), job.task_uuid),
            )  # fmt: skip
        return row is not None

    def cancel_planned(self, task_uuids: Iterable[str]) -> list[str]:
        """Planned jobs that will never be sent: cancelled, their reservation released. The others
        (sent already, or finished) are left as they are. Returns the ones cancelled."""
        wanted = sorted(set(task_uuids))
        now, cancelled = time.time(), []
        with self._engine.transaction(write=True) as tx:
            spend: dict[str, int] = defaultdict(int)
            for part in chunks(wanted):
                rows = tx.rows(
                    "SELECT task_uuid, committed_micros, created_at FROM jobs WHERE status = 'planned' AND task_uuid"
                    f" IN ({expand(len(part))}) ORDER BY task_uuid{self._engine.for_update}",  # noqa: S608
                    part,
                )  # fmt: skip
                for row in rows:
                    tx.run("UPDATE jobs SET status = 'cancelled', committed_micros = 0, finished_at = ?, updated_at = ?"
                           " WHERE task_uuid = ?", (now, now, row["task_uuid"]))  # fmt: skip
                    spend[spend_period_of_day(row["created_at"])] -= int(row["committed_micros"])
                    spend[TOTAL_PERIOD] -= int(row["committed_micros"])
                    cancelled.append(row["task_uuid"])
            _add_spend(tx, spend)
        return cancelled

    # -- storyboards ------------------------------------------------------------------------

    def storyboard_create(
        self, board_id: str, data: dict[str, Any], jobs: list[JobRecord], *,
        daily_cap: Decimal | None = None, total_cap: Decimal | None = None,
    ) -> None:  # fmt: skip
        """A storyboard and its clips' planned jobs, written together once their total fits the caps."""
        self.record_planned(jobs, daily_cap=daily_cap, total_cap=total_cap,
                            storyboard=(board_id, str(data["status"]), data))  # fmt: skip

    def storyboard_get(self, board_id: str) -> dict[str, Any] | None:
        with self._engine.transaction(write=False) as tx:
            row = tx.row("SELECT data FROM storyboards WHERE id = ?", (board_id,))
        return json.loads(row["data"]) if row else None

    def storyboard_save(self, board_id: str, data: dict[str, Any], *, if_updated_at: float | None = None) -> bool:
        """Write a storyboard (its ``updated_at`` is the record's own). With ``if_updated_at``, only if no one
        saved it since it was read at that version: False, and nothing written, if someone did."""
        sql = "UPDATE storyboards SET status = ?, data = ?, updated_at = ? WHERE id = ?"
        params: tuple[Any, ...] = (str(data["status"]), json.dumps(data), float(data["updated_at"]), board_id)
        if if_updated_at is not None:
            sql, params = sql + " AND updated_at = ?", (*params, if_updated_at)
        with self._engine.transaction(write=True) as tx:
            return tx.run(sql, params) == 1

    def claim_storyboards(self, owner: str, *, lease_s: float, now: float | None = None) -> list[dict[str, Any]]:
        """The active storyboards ``owner`` makes from now on, oldest first, its heartbeat renewed on each: those
        it made already, those no one makes, and those whose maker has been silent for ``lease_s`` (taken over).
        One statement, so that no two instances come away with the same storyboard."""
        now = time.time() if now is None else now
        with self._engine.transaction(write=False) as tx:
            if tx.row(f"SELECT 1 AS found FROM storyboards WHERE status IN ({_ACTIVE_BOARDS}) LIMIT 1") is None:  # noqa: S608
                return []  # the usual case: no write lock taken every tick for nothing
        with self._engine.transaction(write=True) as tx:
            rows = tx.rows(
                f"UPDATE storyboards SET runner = ?, runner_heartbeat = ? WHERE status IN ({_ACTIVE_BOARDS})"  # noqa: S608
                " AND (runner IS NULL OR runner = ? OR runner_heartbeat < ?) RETURNING data, created_at",
                (owner, now, owner, now - lease_s),
            )  # fmt: skip
        return [json.loads(r["data"]) for r in sorted(rows, key=lambda r: r["created_at"])]

    def check_caps(self, reserve: Decimal, *, daily_cap: Decimal | None, total_cap: Decimal | None) -> None:
        """Raise SpendCapExceeded if a job reserving this much would not fit now. Advisory (the
        binding check is the one in record_new); it lets work before a submission be skipped."""
        day = spend_period_of_day(time.time())
        with self._engine.transaction(write=False) as tx:
            rows = tx.rows("SELECT period, committed_micros FROM spend WHERE period IN (?, ?)", (day, TOTAL_PERIOD))
        totals = {r["period"]: int(r["committed_micros"]) for r in rows}
        needed = usd_to_micros(reserve, ROUND_CEILING)
        for cap_name, cap, period in (("daily", daily_cap, day), ("total", total_cap, TOTAL_PERIOD)):
            committed = totals.get(period, 0)
            if cap is not None and committed + needed > usd_to_micros(cap, ROUND_FLOOR):
                raise SpendCapExceeded(cap_name, cap, micros_to_usd(committed), reserve)

    def update(self, task_uuid: str, **changes: Any) -> JobRecord | None:
        """Change some fields of a job; lists and dicts are stored as JSON. The job as it is
        afterwards, or None if the ledger has no such job."""
        return self.update_many({task_uuid: changes}).get(task_uuid)

    def update_many(
        self, changes: Mapping[str, Mapping[str, Any]], *, keep_ended: bool = False, states_only: bool = False
    ) -> dict[str, JobRecord]:
        """Change several jobs in one transaction (a poll tick's worth); the changed jobs as they
        are afterwards. Jobs the ledger does not have are left out. With ``keep_ended``, so are jobs
        that have ended by the time their row is locked: what Runware says can then no longer change
        them, even when it was merged from an older read (a poll here racing a webhook applied by
        another instance). With ``states_only``, the jobs come back as ``poll_states`` reads them (no
        payload nor estimate: a tick's worth of them is not parsed again)."""
        for asked in changes.values():
            unknown = set(asked) - _UPDATABLE
            if unknown:
                raise ValueError(f"not ledger fields: {sorted(unknown)}")
        now = time.time()
        returning = _STATE_COLUMNS if states_only else "*"
        wanted = sorted(changes)  # rows are locked in key order, so concurrent batches cannot deadlock
        updated: dict[str, JobRecord] = {}
        with self._engine.transaction(write=True) as tx:
            current: dict[str, Row] = {}
            for part in chunks(wanted):
                for row in tx.rows(
                    "SELECT task_uuid, status, cost_usd, reserve_usd, committed_micros, created_at FROM jobs"
                    f" WHERE task_uuid IN ({expand(len(part))}) ORDER BY task_uuid{self._engine.for_update}",  # noqa: S608
                    part,
                ):
                    current[row["task_uuid"]] = row
            spend: dict[str, int] = defaultdict(int)
            progressed: list[tuple[str, int]] = []
            announced: list[str] = []  # changed in more than progress: waiters elsewhere are told
            for task_uuid in wanted:
                before = current.get(task_uuid)
                if before is None or (keep_ended and before["status"] in TERMINAL):
                    continue
                fields: dict[str, Any] = {**changes[task_uuid], "updated_at": now}
                after_fields = before | fields
                committed = committed_micros(
                    after_fields["status"],
                    after_fields["cost_usd"],
                    usd_to_micros(Decimal(str(before["reserve_usd"])), ROUND_CEILING),
                )
                if committed != before["committed_micros"]:
                    fields["committed_micros"] = committed
                    delta = committed - int(before["committed_micros"])
                    spend[spend_period_of_day(before["created_at"])] += delta
                    spend[TOTAL_PERIOD] += delta
                if fields.keys() == {"progress", "updated_at"}:
                    progressed.append((task_uuid, fields["progress"]))
                    continue
                columns = ", ".join(f"{name} = ?" for name in fields)
                values = [json.dumps(v) if isinstance(v, (list, dict)) else v for v in fields.values()]
                after = tx.row(f"UPDATE jobs SET {columns} WHERE task_uuid = ? RETURNING {returning}",  # noqa: S608
                               (*values, task_uuid))  # fmt: skip
                if after is not None:
                    updated[task_uuid] = _job_state(after) if states_only else _job(after)
                    announced.append(task_uuid)
            # Most of a tick: jobs whose progress alone moved. One statement per slice, not a round trip per job.
            for part in chunks(progressed):
                given, params = self._engine.rows_table(("text", "bigint"), part)
                rows = tx.rows(
                    f"UPDATE jobs SET progress = v.column2, updated_at = ? FROM {given} WHERE jobs.task_uuid = v.column1"
                    f" RETURNING {returning}", (now, *params),
                )  # fmt: skip  # noqa: S608
                for after in rows:
                    updated[after["task_uuid"]] = _job_state(after) if states_only else _job(after)
            _add_spend(tx, spend)
            self._engine.announce(tx, announced)
        return updated

    def advance_progress(self, moves: Mapping[str, tuple[float, int]]) -> dict[str, float]:
        """Move the progress of jobs still rendering, given as {task_uuid: (updated_at as last seen, progress)},
        in one statement per slice and without reading them first: each row moves only if it is still processing
        and no one has written it since (its ``updated_at`` is the one seen). {task_uuid: updated_at now} of the
        jobs moved; one left out was written elsewhere meanwhile, and its answer must be merged into a fresh
        read. Progress does not touch spending, so nothing else needs locking, and each slice of rows (each row,
        indeed) may commit by itself."""
        now = time.time()
        moved: dict[str, float] = {}
        with self._engine.transaction(write=True, each_statement=True) as tx:
            for part in chunks(sorted(moves)):
                given, params = self._engine.rows_table(
                    ("text", "bigint", "double precision"), [(u, moves[u][1], moves[u][0]) for u in part]
                )
                rows = tx.rows(
                    f"UPDATE jobs SET progress = v.column2, updated_at = ? FROM {given} WHERE jobs.task_uuid ="
                    " v.column1 AND jobs.updated_at = v.column3 AND jobs.status = 'processing' RETURNING jobs.task_uuid",
                    (now, *params),
                )  # fmt: skip  # noqa: S608
                moved.update((row["task_uuid"], now) for row in rows)
        return moved

    def get(self, task_uuid: str) -> JobRecord | None:
        with self._engine.transaction(write=False) as tx:
            row = tx.row("SELECT * FROM jobs WHERE task_uuid = ?", (task_uuid,))
        return _job(row) if row else None

    def get_many(self, task_uuids: Iterable[str]) -> dict[str, JobRecord]:
        """Several jobs in one read (a poll tick's worth); those the ledger does not have are left out."""
        return self._read_many(task_uuids, "*", _job)

    def poll_states(self, task_uuids: Iterable[str]) -> dict[str, JobRecord]:
        """Several jobs as a poll tick merges Runware's answers into them: every field but the payload and
        the estimate (left empty; read the job with ``get`` where they are needed), so that a tick over
        hundreds of jobs does not decode their requests."""
        return self._read_many(task_uuids, _STATE_COLUMNS, _job_state)

    def _read_many(
        self, task_uuids: Iterable[str], columns: str, record: Callable[[Row], JobRecord]
    ) -> dict[str, JobRecord]:  # fmt: skip
        found: dict[str, JobRecord] = {}
        with self._engine.transaction(write=False) as tx:
            for part in chunks(sorted(set(task_uuids))):
                for row in tx.rows(f"SELECT {columns} FROM jobs WHERE task_uuid IN ({expand(len(part))})", part):  # noqa: S608
                    found[row["task_uuid"]] = record(row)
        return found

    def recent(self, limit: int = 20) -> list[JobRecord]:
        with self._engine.transaction(write=False) as tx:
            rows = tx.rows("SELECT * FROM jobs ORDER BY created_at DESC LIMIT ?", (limit,))
        return [_job(r) for r in rows]

    def in_flight(self) -> list[JobRecord]:
        with self._engine.transaction(write=False) as tx:
            rows = tx.rows(
                f"SELECT * FROM jobs WHERE status IN ({_IN_FLIGHT_MARKS}) ORDER BY created_at", IN_FLIGHT  # noqa: S608
            )
        return [_job(r) for r in rows]

    def committed_usd(self, since: float = 0.0) -> Decimal:
        """What jobs created since ``since`` commit against the caps (see ``committed_micros``).
        From the running totals when ``since`` is 0 or the start of a UTC day (what the caps and the
        budget ask, on every submission): the cost does not grow with the ledger."""
        with self._engine.transaction(write=False) as tx:
            if since <= 0:
                row = tx.row("SELECT COALESCE(SUM(committed_micros), 0) AS micros FROM spend WHERE period = ?",
                             (TOTAL_PERIOD,))  # fmt: skip
            elif since == start_of_utc_day(since):
                # 'day:YYYY-MM-DD' keys sort by date; ';' is the character after ':'.
                row = tx.row("SELECT COALESCE(SUM(committed_micros), 0) AS micros FROM spend WHERE period >= ?"
                             " AND period < 'day;'", (spend_period_of_day(since),))  # fmt: skip
            else:
                row = tx.row("SELECT COALESCE(SUM(committed_micros), 0) AS micros FROM jobs WHERE created_at >= ?",
                             (since,))  # fmt: skip
        return micros_to_usd(int(row["micros"]) if row else 0)

    def spend_by_model(self, since: float = 0.0) -> list[dict[str, Any]]:
        """Per model since ``since``: jobs by outcome, what was charged, what running jobs reserve."""
        with self._engine.transaction(write=False) as tx:
            rows = tx.rows(_BY_MODEL, (since,))
        # PostgreSQL sums integers as NUMERIC: every engine answers ints and floats alike.
        return [{"model": r["model"], **{k: int(r[k]) for k in ("jobs", "finished", "failed", "running")},
                 "charged_usd": float(r["charged_usd"]), "reserved_usd": float(r["reserved_usd"])} for r in rows]  # fmt: skip

    # -- polling leases ----------------------------------------------------------------------

    def claim_polls(
        self, owner: str, *, lease_s: float, only: Iterable[str] | None = None, now: float | None = None
    ) -> list[PollLease]:
        """The in-flight jobs ``owner`` polls from now on, its heartbeat renewed on each: those it
        held already, those nobody holds, and those whose holder has sent no heartbeat for
        ``lease_s`` (a dead instance's: taken over). One statement per slice of jobs, so two
        instances can never both come away holding the same job. ``only`` limits the claim to
        those jobs."""
        now = time.time() if now is None else now
        expired = now - lease_s
        claimed: list[PollLease] = []
        claim = (
            "UPDATE jobs SET poll_owner = ?, poll_heartbeat = ?"
            f" WHERE status IN ({_IN_FLIGHT_MARKS}) AND (poll_owner IS NULL OR poll_owner = ? OR poll_heartbeat < ?)"
        )  # noqa: S608
        returning = " RETURNING task_uuid, model, status, created_at, submitted_at"
        taken = None
        with self._engine.transaction(write=True) as tx:
            if only is None:
                # Only the heartbeat's claim of every job says what it took over. A submission's claim of its own
                # job reads no other: on PostgreSQL, a look-up by status also meets, until VACUUM, the index
                # entries every finished job left behind, so it would grow with the ledger.
                taken = tx.row(
                    f"SELECT COUNT(*) AS n FROM jobs WHERE status IN ({_IN_FLIGHT_MARKS}) AND poll_owner IS NOT NULL"  # noqa: S608
                    " AND poll_owner <> ? AND poll_heartbeat < ?", (*IN_FLIGHT, owner, expired),
                )  # fmt: skip
                rows = tx.rows(claim + returning, (owner, now, *IN_FLIGHT, owner, expired))
            else:
                rows = []
                for part in chunks(sorted(set(only))):
                    rows += tx.rows(f"{claim} AND task_uuid IN ({expand(len(part))}){returning}",
                                    (owner, now, *IN_FLIGHT, owner, expired, *part))  # fmt: skip
            for row in rows:
                claimed.append(PollLease(row["task_uuid"], row["model"], row["status"], row["created_at"],
                                         row["submitted_at"]))  # fmt: skip
        if taken and int(taken["n"]):
            log.warning("Taking over %d job(s) from an instance silent for over %g s", int(taken["n"]), lease_s)
        return claimed

    def lease_owners(self) -> list[str]:
        """The instances that hold leases: of jobs in flight, or of storyboards being made."""
        with self._engine.transaction(write=False) as tx:
            rows = tx.rows(f"SELECT DISTINCT poll_owner AS owner FROM jobs WHERE status IN ({_IN_FLIGHT_MARKS})"  # noqa: S608
                           " AND poll_owner IS NOT NULL", IN_FLIGHT)  # fmt: skip
            rows += tx.rows(f"SELECT DISTINCT runner AS owner FROM storyboards WHERE status IN ({_ACTIVE_BOARDS})"  # noqa: S608
                            " AND runner IS NOT NULL")  # fmt: skip
        return sorted({r["owner"] for r in rows})

    def release_leases(self, owner: str) -> int:
        """Give up every lease ``owner`` holds, of jobs and of storyboards (a clean shutdown, or a process found
        dead), so that others take its work at once: how many."""
        with self._engine.transaction(write=True) as tx:
            jobs = tx.run("UPDATE jobs SET poll_owner = NULL, poll_heartbeat = NULL WHERE poll_owner = ?", (owner,))
            boards = tx.run("UPDATE storyboards SET runner = NULL, runner_heartbeat = NULL WHERE runner = ?", (owner,))
        return jobs + boards

    def render_samples(self, limit: int = 2000) -> dict[str, list[RenderSample]]:
        """Per model, what its latest successful jobs showed of their render time: when each was last
        seen rendering and when its end was noticed, after its acknowledgement (the poll schedule
        follows these)."""
        with self._engine.transaction(write=False) as tx:
            rows = tx.rows(
                "SELECT task_uuid, model, finished_at - submitted_at AS seconds, seen_running_s FROM jobs"
                " WHERE finished_at IS NOT NULL AND status = 'success' AND submitted_at IS NOT NULL"
                " ORDER BY finished_at DESC LIMIT ?", (limit,),
            )  # fmt: skip
        found: dict[str, list[RenderSample]] = defaultdict(list)
        for row in rows:
            if row["seconds"] is not None and row["seconds"] >= 0:
                found[row["model"]].append(RenderSample(row["task_uuid"], float(row["seconds"]), row["seen_running_s"]))
        return dict(found)

    # -- media uploads and downloads ----------------------------------------------------

    def upload_get(self, sha256: str, account: str, *, fresher_than: float) -> dict[str, Any] | None:
        """An earlier upload of the same content to the same account, if used since ``fresher_than``."""
        with self._engine.transaction(write=False) as tx:
            return tx.row(
                "SELECT * FROM uploads WHERE sha256 = ? AND account = ? AND last_used_at >= ?",
                (sha256, account, fresher_than),
            )

    def upload_put(
        self, *, sha256: str, account: str, kind: str, mime: str, media_uuid: str, media_url: str | None,
        size: int, source: str,
    ) -> None:  # fmt: skip
        now = time.time()
        with self._engine.transaction(write=True) as tx:
            tx.run(
                "INSERT INTO uploads (sha256, account, kind, mime, media_uuid, media_url, size, source, created_at,"
                " last_used_at) VALUES (?,?,?,?,?,?,?,?,?,?) ON CONFLICT (sha256, account) DO UPDATE SET"
                " kind = excluded.kind, mime = excluded.mime, media_uuid = excluded.media_uuid,"
                " media_url = excluded.media_url, size = excluded.size, source = excluded.source,"
                " created_at = excluded.created_at, last_used_at = excluded.last_used_at",
                (sha256, account, kind, mime, media_uuid, media_url, size, source, now, now),
            )

    def upload_used(self, sha256: str, account: str) -> None:
        with self._engine.transaction(write=True) as tx:
            tx.run("UPDATE uploads SET last_used_at = ? WHERE sha256 = ? AND account = ?", (time.time(), sha256, account))

    def download_put(self, task_uuid: str, video_uuid: str, path: str, size: int) -> None:
        with self._engine.transaction(write=True) as tx:
            tx.run(
                "INSERT INTO downloads (task_uuid, video_uuid, path, size, created_at) VALUES (?,?,?,?,?)"
                " ON CONFLICT (task_uuid, video_uuid, path) DO UPDATE SET size = excluded.size,"
                " created_at = excluded.created_at",
                (task_uuid, video_uuid, path, size, time.time()),
            )

    # -- webhook secrets ------------------------------------------------------------------

    def webhook_secret_put(self, task_uuid: str, secret: str) -> None:
        """Keep the digest of the secret a job's webhook calls must carry (never the secret itself)."""
        with self._engine.transaction(write=True) as tx:
            tx.run(
                "INSERT INTO webhooks (task_uuid, secret_sha256, created_at) VALUES (?, ?, ?) ON CONFLICT (task_uuid)"
                " DO UPDATE SET secret_sha256 = excluded.secret_sha256, created_at = excluded.created_at",
                (task_uuid, _sha256(secret), time.time()),
            )

    def webhook_secret_matches(self, task_uuid: str, secret: str) -> bool:
        """Whether ``secret`` is the one issued for this job's webhook (False for a job without one)."""
        with self._engine.transaction(write=False) as tx:
            row = tx.row("SELECT secret_sha256 FROM webhooks WHERE task_uuid = ?", (task_uuid,))
        return row is not None and hmac.compare_digest(row["secret_sha256"], _sha256(secret))

    def downloads(self, task_uuid: str) -> list[dict[str, Any]]:
        with self._engine.transaction(write=False) as tx:
            return tx.rows("SELECT * FROM downloads WHERE task_uuid = ? ORDER BY created_at", (task_uuid,))


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _add_spend(tx: Tx, deltas: Mapping[str, int], *, keep_zero: bool = False) -> dict[str, int]:
    """Add to running totals, in key order; the totals afterwards."""
    totals: dict[str, int] = {}
    for period in sorted(deltas):
        if deltas[period] or keep_zero:
            row = tx.row(_ADD_SPEND, (period, deltas[period]))
            assert row is not None
            totals[period] = int(row["committed_micros"])
    return totals


def _json(text: str) -> Any:
    # Most jobs' results and errors are empty, and a tick reads hundreds of jobs: those skip the decoder.
    if text == "[]":
        return []
    return {} if text == "{}" else json.loads(text)


def _job_state(row: Row) -> JobRecord:
    """A job read as a poll tick reads it (``_STATE_COLUMNS``): its payload and estimate left empty."""
    return _job(row | {"payload": "{}", "estimate": None})


def _job(row: Row) -> JobRecord:
    return JobRecord(
        task_uuid=row["task_uuid"],
        model=row["model"],
        tool=row["tool"],
        status=row["status"],
        payload=_json(row["payload"]),
        estimate=_json(row["estimate"]) if row["estimate"] else None,
        reserve_usd=Decimal(str(row["reserve_usd"])),
        number_results=row["number_results"],
        results=_json(row["results"]),
        cost_usd=row["cost_usd"],
        errors=_json(row["errors"]),
        progress=row["progress"],
        created_at=row["created_at"],
        submitted_at=row["submitted_at"],
        updated_at=row["updated_at"],
        finished_at=row["finished_at"],
    )




def check_ledger(location: Path | str) -> tuple[bool, list[str]]:
    """Open the ledger as the server would (migrating it), and say what is there: for
    `kling-mcp check`. Whether it is usable, and lines to print (never a password)."""
    try:
        ledger = Ledger(location)
    except LedgerUnavailable as exc:
        return False, [f"job ledger: NOT usable. {exc}"]
    try:
        info = ledger.info()
    finally:
        ledger.close()
    return True, [
        f"job ledger: {info.location} ({info.server})",
        f"  schema version {info.schema_version} (current); {info.jobs} job(s), {info.in_flight} in flight",
    ]


__all__ = [
    "IN_FLIGHT", "TERMINAL", "JobRecord", "JobStatus", "Ledger", "LedgerInfo", "LedgerUnavailable", "PollLease",
    "SpendCapExceeded", "UnavailableLedger", "check_ledger", "committed_micros", "redact_payload", "start_of_utc_day",
]  # fmt: skip
