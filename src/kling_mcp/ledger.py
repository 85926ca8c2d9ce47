"""The durable job ledger: every paid job, written before its request leaves the machine.

SQLite in WAL mode, so several processes (stdio sessions, the HTTP transport) can share
one file; the spend-cap check and the insert of a new job happen in one immediate
transaction, so two concurrent submissions cannot both squeeze under a cap.
The methods are synchronous and fast; async callers run them in a worker thread.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

JobStatus = Literal[
    "pending",  # written, request not yet answered
    "submitted",  # acknowledged by Runware
    "processing",
    "unknown",  # the submission's fate could not be established yet; it is looked up, never re-sent blindly
    "success",
    "partial",  # some results succeeded, some failed
    "failed",
    "rejected",  # refused by Runware before it started (nothing charged)
    "stalled",  # no terminal answer within the maximum age: no longer polled, still looked up on request
]
IN_FLIGHT: tuple[JobStatus, ...] = ("pending", "submitted", "processing", "unknown")
TERMINAL: tuple[JobStatus, ...] = ("success", "partial", "failed", "rejected")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    task_uuid      TEXT PRIMARY KEY,
    model          TEXT NOT NULL,
    tool           TEXT NOT NULL,
    status         TEXT NOT NULL,
    payload        TEXT NOT NULL,
    estimate       TEXT,
    reserve_usd    REAL NOT NULL,
    number_results INTEGER NOT NULL,
    results        TEXT NOT NULL DEFAULT '[]',
    cost_usd       REAL,
    errors         TEXT NOT NULL DEFAULT '[]',
    progress       INTEGER,
    created_at     REAL NOT NULL,
    submitted_at   REAL,
    updated_at     REAL NOT NULL,
    finished_at    REAL
);
CREATE INDEX IF NOT EXISTS jobs_created ON jobs(created_at);
CREATE INDEX IF NOT EXISTS jobs_status ON jobs(status);
DROP TABLE IF EXISTS media;  -- an earlier, never used, draft of uploads
CREATE TABLE IF NOT EXISTS uploads (
    sha256       TEXT NOT NULL,
    account      TEXT NOT NULL,  -- a one-way fingerprint of endpoint and key: media belong to an account
    kind         TEXT NOT NULL,
    mime         TEXT NOT NULL,
    media_uuid   TEXT NOT NULL,
    media_url    TEXT,
    size         INTEGER NOT NULL,
    source       TEXT,
    created_at   REAL NOT NULL,
    last_used_at REAL NOT NULL,
    PRIMARY KEY (sha256, account)
);
CREATE TABLE IF NOT EXISTS downloads (
    task_uuid  TEXT NOT NULL,
    video_uuid TEXT NOT NULL,
    path       TEXT NOT NULL,
    size       INTEGER NOT NULL,
    created_at REAL NOT NULL,
    PRIMARY KEY (task_uuid, video_uuid, path)
);
"""

# What a job commits against the spend caps: its real cost once known, its
# reservation while it may still be charged, nothing once refused.
_COMMITTED = """
SELECT COALESCE(SUM(CASE
    WHEN status = 'rejected' THEN 0
    WHEN status IN ('success', 'partial', 'failed') THEN COALESCE(cost_usd, CASE WHEN status = 'failed' THEN 0 ELSE reserve_usd END)
    ELSE reserve_usd END), 0)
FROM jobs WHERE created_at >= ?
"""

# How inline media (never stored) shows in a stored payload.
REDACTED_PREFIX = "<inline media, "
_SECRET_KEY = re.compile(r"api[_-]?key|authori[sz]ation|token|secret|password", re.IGNORECASE)


class LedgerUnavailable(Exception):
    """The data dir or the ledger in it cannot be used. One line: the path, what is wrong, the fix."""

    def __init__(self, path: Path, problem: str, fix: str) -> None:
        self.path, self.problem, self.fix = path, problem, fix
        super().__init__(f"The job ledger {path} cannot be used: {problem}. Fix: {fix}")

    def to_dict(self) -> dict[str, str]:
        return {"path": str(self.path), "problem": self.problem, "fix": self.fix}


class UnavailableLedger:
    """Stands in for a ledger that could not be opened: every use raises the same LedgerUnavailable.
    The server still starts, so listing models and dry runs work, and every paid or job tool answers
    with the one clear line instead of a traceback."""

    def __init__(self, error: LedgerUnavailable) -> None:
        self.error, self.path = error, error.path

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


def start_of_utc_day(now: float) -> float:
    day = datetime.fromtimestamp(now, UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return day.timestamp()


class Ledger:
    def __init__(self, path: Path) -> None:
        """Open (or create) the ledger. Raises LedgerUnavailable, never a bare OSError or sqlite3 error;
        a file that is not a valid ledger is left exactly as it is."""
        self.path = path
        _usable_folder(path)
        self._lock = threading.Lock()
        try:
            self._db = sqlite3.connect(path, timeout=15.0, check_same_thread=False, isolation_level=None)
        except sqlite3.Error as exc:
            raise _unusable(path, exc) from None
        self._db.row_factory = sqlite3.Row
        try:
            with self._lock:
                # Read before anything is written: a corrupt file fails here, untouched.
                self._db.execute("PRAGMA schema_version").fetchone()
                self._db.execute("PRAGMA journal_mode=WAL")
                self._db.execute("PRAGMA synchronous=NORMAL")
                self._db.execute("PRAGMA busy_timeout=15000")
                self._db.executescript(_SCHEMA)
        except sqlite3.Error as exc:
            self._db.close()
            raise _unusable(path, exc) from None

    def close(self) -> None:
        with self._lock:
            self._db.close()

    @contextmanager
    def _transaction(self, immediate: bool = False) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE" if immediate else "BEGIN")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    # -- jobs -----------------------------------------------------------------------------

    def record_new(
        self,
        job: JobRecord,
        *,
        daily_cap: Decimal | None = None,
        total_cap: Decimal | None = None,
        now: float | None = None,
    ) -> JobRecord:
        """Write a new job, as pending, if its reservation fits under the caps; else raise."""
        now = time.time() if now is None else now
        job = replace(job, status="pending", created_at=now, updated_at=now, payload=redact_payload(job.payload))
        with self._transaction(immediate=True) as db:
            _check_caps(db, job.reserve_usd, daily_cap, total_cap, now)
            db.execute(
                "INSERT INTO jobs (task_uuid, model, tool, status, payload, estimate, reserve_usd, number_results,"
                " created_at, updated_at) VALUES (?,?,?,?,?,?,?,?,?,?)",
                (
                    job.task_uuid, job.model, job.tool, job.status, json.dumps(job.payload),
                    json.dumps(job.estimate) if job.estimate is not None else None,
                    float(job.reserve_usd), job.number_results, job.created_at, job.updated_at,
                ),
            )  # fmt: skip
        return job

    def check_caps(self, reserve: Decimal, *, daily_cap: Decimal | None, total_cap: Decimal | None) -> None:
        """Raise SpendCapExceeded if a job reserving this much would not fit now. Advisory (the
        binding check is the one in record_new); it lets work before a submission be skipped."""
        with self._lock:
            _check_caps(self._db, reserve, daily_cap, total_cap, time.time())

    def update(self, task_uuid: str, **changes: Any) -> JobRecord | None:
        """Change some fields of a job; lists and dicts are stored as JSON."""
        allowed = {"status", "results", "cost_usd", "errors", "progress", "submitted_at", "finished_at"}
        unknown = set(changes) - allowed
        if unknown:
            raise ValueError(f"not ledger fields: {sorted(unknown)}")
        changes["updated_at"] = time.time()
        columns = ", ".join(f"{k} = ?" for k in changes)
        values = [json.dumps(v) if isinstance(v, (list, dict)) else v for v in changes.values()]
        with self._transaction() as db:
            db.execute(f"UPDATE jobs SET {columns} WHERE task_uuid = ?", (*values, task_uuid))  # noqa: S608
        return self.get(task_uuid)

    def get(self, task_uuid: str) -> JobRecord | None:
        with self._lock:
            row = self._db.execute("SELECT * FROM jobs WHERE task_uuid = ?", (task_uuid,)).fetchone()
        return _job(row) if row else None

    def recent(self, limit: int = 20) -> list[JobRecord]:
        with self._lock:
            rows = self._db.execute("SELECT * FROM jobs ORDER BY created_at DESC LIMIT ?", (limit,)).fetchall()
        return [_job(r) for r in rows]

    def in_flight(self) -> list[JobRecord]:
        marks = ",".join("?" * len(IN_FLIGHT))
        with self._lock:
            rows = self._db.execute(
                f"SELECT * FROM jobs WHERE status IN ({marks}) ORDER BY created_at", IN_FLIGHT  # noqa: S608
            ).fetchall()
        return [_job(r) for r in rows]

    def committed_usd(self, since: float = 0.0) -> Decimal:
        with self._lock:
            value = self._db.execute(_COMMITTED, (since,)).fetchone()[0]
        return Decimal(str(value)).quantize(Decimal("0.000001"))

    # -- media uploads and downloads ----------------------------------------------------

    def upload_get(self, sha256: str, account: str, *, fresher_than: float) -> dict[str, Any] | None:
        """An earlier upload of the same content to the same account, if used since ``fresher_than``."""
        with self._lock:
            row = self._db.execute(
                "SELECT * FROM uploads WHERE sha256 = ? AND account = ? AND last_used_at >= ?",
                (sha256, account, fresher_than),
            ).fetchone()
        return dict(row) if row else None

    def upload_put(
        self, *, sha256: str, account: str, kind: str, mime: str, media_uuid: str, media_url: str | None,
        size: int, source: str,
    ) -> None:  # fmt: skip
        now = time.time()
        with self._transaction() as db:
            db.execute(
                "INSERT OR REPLACE INTO uploads VALUES (?,?,?,?,?,?,?,?,?,?)",
                (sha256, account, kind, mime, media_uuid, media_url, size, source, now, now),
            )

    def upload_used(self, sha256: str, account: str) -> None:
        with self._transaction() as db:
            db.execute("UPDATE uploads SET last_used_at = ? WHERE sha256 = ? AND account = ?", (time.time(), sha256, account))

    def download_put(self, task_uuid: str, video_uuid: str, path: str, size: int) -> None:
        with self._transaction() as db:
            db.execute(
                "INSERT OR REPLACE INTO downloads VALUES (?,?,?,?,?)", (task_uuid, video_uuid, path, size, time.time())
            )

    def downloads(self, task_uuid: str) -> list[dict[str, Any]]:
        with self._lock:
            rows = self._db.execute(
                "SELECT * FROM downloads WHERE task_uuid = ? ORDER BY created_at", (task_uuid,)
            ).fetchall()
        return [dict(r) for r in rows]


def _usable_folder(path: Path) -> None:
    folder = path.parent
    fix_dir = "set KLING_MCP_DATA_DIR to a folder you can write to"
    for part in (folder, *folder.parents):
        if part.exists() and not part.is_dir():
            raise LedgerUnavailable(path, f"{part} is a file, where a folder is needed", f"move that file away, or {fix_dir}")
        if part.exists():
            break
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise LedgerUnavailable(path, f"its folder {folder} cannot be created ({exc.strerror})", fix_dir) from None
    if path.exists() and not path.is_file():
        raise LedgerUnavailable(path, "it is not a file", f"move it away, or {fix_dir}")
    writable = os.access(path, os.R_OK | os.W_OK) if path.exists() else os.access(folder, os.W_OK | os.X_OK)
    if not writable:
        where = path if path.exists() else folder
        raise LedgerUnavailable(path, f"{where} is not writable by this user", f"fix its permissions, or {fix_dir}")


def _unusable(path: Path, exc: sqlite3.Error) -> LedgerUnavailable:
    text = str(exc)
    if isinstance(exc, sqlite3.DatabaseError) and ("not a database" in text or "malformed" in text or "corrupt" in text):
        return LedgerUnavailable(
            path, f"the file is not a valid ledger ({text}); it was left untouched",
            f"move it aside (e.g. rename it to {path.name}.broken) and start again; kling-mcp then starts a new "
            "ledger, and the old file stays for you to inspect",
        )  # fmt: skip
    return LedgerUnavailable(path, f"SQLite could not open it ({text})",
                             "check the folder's permissions and free space, or set KLING_MCP_DATA_DIR elsewhere")  # fmt: skip


def _check_caps(db: sqlite3.Connection, reserve: Decimal, daily: Decimal | None, total: Decimal | None, now: float) -> None:
    for cap_name, cap, since in (("daily", daily, start_of_utc_day(now)), ("total", total, 0.0)):
        if cap is None:
            continue
        committed = Decimal(str(db.execute(_COMMITTED, (since,)).fetchone()[0])).quantize(Decimal("0.000001"))
        if committed + reserve > cap:
            raise SpendCapExceeded(cap_name, cap, committed, reserve)


def _job(row: sqlite3.Row) -> JobRecord:
    return JobRecord(
        task_uuid=row["task_uuid"],
        model=row["model"],
        tool=row["tool"],
        status=row["status"],
        payload=json.loads(row["payload"]),
        estimate=json.loads(row["estimate"]) if row["estimate"] else None,
        reserve_usd=Decimal(str(row["reserve_usd"])),
        number_results=row["number_results"],
        results=json.loads(row["results"]),
        cost_usd=row["cost_usd"],
        errors=json.loads(row["errors"]),
        progress=row["progress"],
        created_at=row["created_at"],
        submitted_at=row["submitted_at"],
        updated_at=row["updated_at"],
        finished_at=row["finished_at"],
    )
