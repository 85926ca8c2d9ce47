"""Where a persistent emulator keeps its jobs and uploads: one SQLite file that several
emulators (in several processes) share.

The emulator reaches its state through three mappings (jobs by task UUID, jobs by result
video UUID, uploads by media UUID). In memory they are plain dicts; here they are views of
tables, so a job accepted by one process is polled, and its video served, by any other
that opens the same file, also after the first has exited.

Records are stored as JSON, rebuilt from the dataclasses' own type hints: a field added
to ``Job`` or ``Result`` is kept without a change here, as long as its values are JSON
(or dataclasses and tuples of them).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import sqlite3
import threading
import time
import types
import typing
from collections.abc import Iterator, MutableMapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from ._jobs import Job

T = TypeVar("T")
log = logging.getLogger(__name__)

# Runware deletes media 30 days after its last use; a simulated store forgets jobs and uploads
# after as long, so that a data folder used for months does not keep every placeholder for ever.
RETENTION_S = 30 * 24 * 3600


@dataclass(frozen=True, slots=True)
class Media:
    """One upload: its bytes, or the URL it was uploaded from (never fetched)."""

    content: bytes | None
    url: str | None
    content_type: str


_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    task_uuid  TEXT PRIMARY KEY,
    record     TEXT NOT NULL,        -- the Job, as JSON
    created_at REAL NOT NULL         -- wall clock, for retention
);
CREATE TABLE IF NOT EXISTS videos (
    video_uuid TEXT PRIMARY KEY,
    task_uuid  TEXT NOT NULL REFERENCES jobs (task_uuid) ON DELETE CASCADE
);
CREATE TABLE IF NOT EXISTS media (
    media_uuid   TEXT PRIMARY KEY,
    content      BLOB,               -- the uploaded bytes, or NULL for a URL upload
    url          TEXT,
    content_type TEXT NOT NULL,
    created_at   REAL NOT NULL
);
"""


class EmulatorStore:
    """The shared SQLite file. Thread-safe; each write is one autocommitted statement."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        # Autocommit: there is no multi-statement transaction to protect, and readers in
        # other processes then see each write as soon as it is made.
        self._db = sqlite3.connect(path, timeout=10.0, isolation_level=None, check_same_thread=False)
        self._lock = threading.Lock()
        with self._lock:
            self._db.execute("PRAGMA journal_mode=WAL")  # readers never block the writer, across processes
            self._db.execute("PRAGMA foreign_keys=ON")
            self._db.executescript(_SCHEMA)
            expired = time.time() - RETENTION_S
            self._db.execute("DELETE FROM jobs WHERE created_at < ?", (expired,))  # their videos go with them
            self._db.execute("DELETE FROM media WHERE created_at < ?", (expired,))
        self.path = path

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def clear(self) -> None:
        with self._lock:
            self._db.executescript("DELETE FROM videos; DELETE FROM jobs; DELETE FROM media;")

    def execute(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            return self._db.execute(sql, params).fetchall()

    def tables(self) -> tuple[MutableMapping[str, Job], MutableMapping[str, Job], MutableMapping[str, Media]]:
        """The emulator's three mappings over this file: jobs by task UUID, jobs by result video
        UUID, uploads by media UUID."""
        return _Jobs(self), _Videos(self), _Media(self)


class _Table(MutableMapping[str, T]):
    """A mapping over one table keyed by a UUID column."""

    table: str
    key: str

    def __init__(self, store: EmulatorStore) -> None:
        self._store = store

    def __iter__(self) -> Iterator[str]:
        return iter([row[0] for row in self._store.execute(f"SELECT {self.key} FROM {self.table}")])

    def __len__(self) -> int:
        return int(self._store.execute(f"SELECT COUNT(*) FROM {self.table}")[0][0])

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and bool(
            self._store.execute(f"SELECT 1 FROM {self.table} WHERE {self.key} = ?", (key,))
        )

    def __delitem__(self, key: str) -> None:
        if key not in self:
            raise KeyError(key)
        self._store.execute(f"DELETE FROM {self.table} WHERE {self.key} = ?", (key,))


def _job(rows: list[tuple[Any, ...]], key: str) -> Job:
    if not rows:
        raise KeyError(key)
    try:
        return decode(Job, json.loads(rows[0][0]))
    except (TypeError, ValueError, KeyError) as exc:
        # Written by a version whose Job had other fields: gone, as Runware forgets an old task.
        log.warning("Emulator store: job record for %s is unreadable (%s); treating it as gone.", key, exc)
        raise KeyError(key) from None


class _Jobs(_Table[Job]):
    table, key = "jobs", "task_uuid"

    def __getitem__(self, task_uuid: str) -> Job:
        return _job(self._store.execute("SELECT record FROM jobs WHERE task_uuid = ?", (task_uuid,)), task_uuid)

    def __setitem__(self, task_uuid: str, job: Job) -> None:
        self._store.execute(
            "INSERT OR REPLACE INTO jobs (task_uuid, record, created_at) VALUES (?, ?, ?)",
            (task_uuid, json.dumps(encode(job)), time.time()),
        )


class _Videos(_Table[Job]):
    """Result video UUID -> the job that made it (the job itself lives in ``jobs``)."""

    table, key = "videos", "video_uuid"

    def __getitem__(self, video_uuid: str) -> Job:
        sql = "SELECT jobs.record FROM videos JOIN jobs USING (task_uuid) WHERE videos.video_uuid = ?"
        return _job(self._store.execute(sql, (video_uuid,)), video_uuid)

    def __setitem__(self, video_uuid: str, job: Job) -> None:
        self._store.execute(
            "INSERT OR REPLACE INTO videos (video_uuid, task_uuid) VALUES (?, ?)", (video_uuid, job.task_uuid)
        )


class _Media(_Table[Media]):
    table, key = "media", "media_uuid"

    def __getitem__(self, media_uuid: str) -> Media:
        rows = self._store.execute("SELECT content, url, content_type FROM media WHERE media_uuid = ?", (media_uuid,))
        if not rows:
            raise KeyError(media_uuid)
        content, url, content_type = rows[0]
        return Media(content, url, content_type)

    def __setitem__(self, media_uuid: str, media: Media) -> None:
        self._store.execute(
            "INSERT OR REPLACE INTO media (media_uuid, content, url, content_type, created_at) VALUES (?, ?, ?, ?, ?)",
            (media_uuid, media.content, media.url, media.content_type, time.time()),
        )


# -- records as JSON ----------------------------------------------------------------


def encode(value: Any) -> Any:
    """A dataclass record as JSON-ready data (tuples become lists)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: encode(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, (list, tuple)):
        return [encode(v) for v in value]
    if isinstance(value, dict):
        return {k: encode(v) for k, v in value.items()}
    return value


def decode(cls: type[T], data: dict[str, Any]) -> T:
    """The inverse of :func:`encode`, guided by ``cls``'s type hints."""
    hints = typing.get_type_hints(cls)
    fields = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    return cls(**{name: _decode_as(hints[name], value) for name, value in data.items() if name in fields})


def _decode_as(hint: Any, value: Any) -> Any:
    if value is None:
        return None
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        records = [a for a in typing.get_args(hint) if isinstance(a, type) and dataclasses.is_dataclass(a)]
        return decode(records[0], value) if records and isinstance(value, dict) else value
    if origin is tuple:
        args = typing.get_args(hint)
        item_hints = [args[0]] * len(value) if len(args) == 2 and args[1] is Ellipsis else list(args)
        return tuple(_decode_as(h, v) for h, v in zip(item_hints, value, strict=True))
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        return decode(hint, value)
    return value
