"""The ledger on both engines: SQLite files and a real PostgreSQL server.

Spend caps hold across processes, running totals always equal what the jobs commit, the schema
migrates on both engines, and a ledger written before versioning upgrades in place.
"""

from __future__ import annotations

import json
import os
import random
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from decimal import Decimal
from pathlib import Path

import anyio
import pytest

from kling_mcp.emulator import run_emulator
from kling_mcp.jobs import Caps, JobService
from kling_mcp.ledger import (
    TERMINAL,
    JobRecord,
    Ledger,
    LedgerUnavailable,
    SpendCapExceeded,
    check_ledger,
    start_of_utc_day,
)  # fmt: skip
from kling_mcp.ledger_engines import LATEST
from kling_mcp.settings import Settings

from .helpers import KEY, job_service, request

DAY = 86400.0
MICRO = Decimal("0.000001")


def job(task_uuid: str, reserve: str = "1", **kw: object) -> JobRecord:
    return JobRecord(task_uuid, "klingai:kling-video@3-standard", "text_to_video", "pending",
                     {"taskUUID": task_uuid, "prompt": "a fox"}, Decimal(reserve), 1, **kw)  # type: ignore[arg-type]  # fmt: skip


def run_sql(location: Path | str, sql: str) -> None:
    """A statement run behind the ledger's back, as another program would."""
    if isinstance(location, Path):
        with sqlite3.connect(location) as db:
            db.execute(sql)
    else:
        import psycopg

        with psycopg.connect(location, autocommit=True) as db:
            db.execute(sql)


def committed(record: JobRecord) -> Decimal:
    """What the README says a job commits against the caps."""
    if record.status == "rejected":
        return Decimal(0)
    if record.status in TERMINAL:
        if record.cost_usd is not None:
            return Decimal(str(record.cost_usd))
        return Decimal(0) if record.status == "failed" else record.reserve_usd
    return record.reserve_usd


def test_a_job_reads_back_as_written_and_updated(ledger_at: Path | str) -> None:
    ledger = Ledger(ledger_at)
    try:
        written = ledger.record_new(job("t-1", "0.896", estimate={"total": 0.896}))
        assert written.status == "pending" and written.created_at > 0
        results = [{"video_uuid": "v-1", "video_url": "https://x/v.mp4", "cost_usd": 0.5, "seed": 7}]
        done = ledger.update("t-1", status="success", results=results, cost_usd=0.5, progress=100,
                             finished_at=time.time())  # fmt: skip
        assert done is not None and done == ledger.get("t-1")
        assert (done.status, done.results, done.cost_usd, done.reserve_usd) == ("success", results, 0.5, Decimal("0.896"))
        assert done.payload == {"taskUUID": "t-1", "prompt": "a fox"} and done.estimate == {"total": 0.896}
        assert ledger.update("no-such-job", status="failed") is None
        with pytest.raises(ValueError, match="not ledger fields"):
            ledger.update("t-1", reserve_usd=0)
    finally:
        ledger.close()


def test_the_caps_count_running_jobs_at_their_estimate_and_finished_ones_at_their_cost(ledger_at: Path | str) -> None:
    ledger = Ledger(ledger_at)
    now = time.time()
    try:
        for n in range(4):
            ledger.record_new(job(f"t-{n}", "1"), daily_cap=Decimal("4"))
        with pytest.raises(SpendCapExceeded) as refused:
            ledger.record_new(job("t-4", "1"), daily_cap=Decimal("4"))
        assert "$4.000 of the $4.00 daily spend cap" in str(refused.value)
        # A refusal frees its reservation, a failure without a cost too, a success commits its real cost.
        ledger.update_many({"t-0": {"status": "rejected"}, "t-1": {"status": "failed"},
                            "t-2": {"status": "success", "cost_usd": 0.25}})  # fmt: skip
        assert ledger.committed_usd(start_of_utc_day(now)) == Decimal("1.25")
        ledger.check_caps(Decimal("2.75"), daily_cap=Decimal("4"), total_cap=None)
        with pytest.raises(SpendCapExceeded):
            ledger.check_caps(Decimal("2.750001"), daily_cap=Decimal("4"), total_cap=None)
        ledger.record_new(job("t-5", "2.75"), daily_cap=Decimal("4"))
        # Yesterday's jobs count against the total cap, not today's.
        ledger.record_new(job("old", "3"), now=now - DAY)
        ledger.record_new(job("t-6", "0"), daily_cap=Decimal("4"))
        with pytest.raises(SpendCapExceeded, match="total"):
            ledger.record_new(job("t-7", "0.01"), daily_cap=Decimal("100"), total_cap=Decimal("7"))
        assert ledger.get("t-7") is None and ledger.committed_usd() == Decimal("7")
    finally:
        ledger.close()


def test_running_totals_always_match_what_the_jobs_commit(ledger_at: Path | str) -> None:
    """Random submissions (today and on earlier days), updates and batch updates; then each cap
    admits exactly what the jobs leave, to the micro-dollar."""
    rng = random.Random(20261122)
    ledger = Ledger(ledger_at)
    now = time.time()
    ids: list[str] = []
    try:
        for n in range(80):
            if not ids or rng.random() < 0.4:
                created = now - rng.choice([0.0, 0.0, DAY, 3 * DAY])
                ids.append(ledger.record_new(job(f"t-{n}", str(rng.choice([0.42, 0.896, 1.5, 2.24]))), now=created).task_uuid)
                continue
            changes: dict[str, dict[str, object]] = {}
            for task_uuid in rng.sample(ids, k=min(len(ids), rng.choice([1, 1, 3, 8]))):
                status = rng.choice(["submitted", "processing", "unknown", "success", "partial", "failed", "rejected"])
                change: dict[str, object] = {"status": status}
                if status in ("success", "partial", "failed") and rng.random() < 0.6:
                    change["cost_usd"] = rng.choice([0.0, 0.3, 0.896, 1.792])
                changes[task_uuid] = change
            if len(changes) == 1:
                [(task_uuid, change)] = changes.items()
                ledger.update(task_uuid, **change)
            else:
                assert set(ledger.update_many(changes)) == set(changes)
        records = ledger.get_many(ids)
        assert set(records) == set(ids)
        today = start_of_utc_day(now)
        daily = sum((committed(r) for r in records.values() if r.created_at >= today), Decimal(0))
        total = sum((committed(r) for r in records.values()), Decimal(0))
        assert ledger.committed_usd(today) == daily and ledger.committed_usd() == total
        reserve = Decimal("0.5")
        ledger.check_caps(reserve, daily_cap=daily + reserve, total_cap=total + reserve)
        with pytest.raises(SpendCapExceeded, match="daily"):
            ledger.check_caps(reserve, daily_cap=daily + reserve - MICRO, total_cap=None)
        with pytest.raises(SpendCapExceeded, match="total"):
            ledger.record_new(job("last", "0.5"), total_cap=total + reserve - MICRO)
        ledger.record_new(job("last", "0.5"), daily_cap=daily + reserve, total_cap=total + reserve)
    finally:
        ledger.close()


def test_batch_reads_and_writes_cover_a_poll_tick(ledger_at: Path | str) -> None:
    ledger = Ledger(ledger_at)
    try:
        for n in range(700):  # more than one slice of an IN list
            ledger.record_new(job(f"t-{n:03d}", "0.1"))
        wanted = [f"t-{n:03d}" for n in range(0, 700, 2)] + ["missing"]
        assert sorted(ledger.get_many(wanted)) == sorted(wanted[:-1])
        changed = ledger.update_many({u: {"status": "processing", "progress": 40} for u in wanted})
        assert sorted(changed) == sorted(wanted[:-1])
        assert {(j.status, j.progress) for j in changed.values()} == {("processing", 40)}
        assert len(ledger.in_flight()) == 700 and ledger.get("t-001").status == "pending"  # type: ignore[union-attr]
        # Progress alone, the bulk of a tick: over one slice, an ended job left alone, a missing one ignored.
        ledger.update("t-000", status="success", finished_at=time.time(), progress=100)
        moved = ledger.update_many({u: {"progress": 70} for u in wanted}, keep_ended=True, states_only=True)
        assert sorted(moved) == sorted(wanted[1:-1])
        assert {(j.status, j.progress, json.dumps(j.payload)) for j in moved.values()} == {("processing", 70, "{}")}
        assert ledger.get("t-000").progress == 100 and ledger.get("t-002").progress == 70  # type: ignore[union-attr]
        full = ledger.update_many({"t-004": {"progress": 75}})
        assert full["t-004"].progress == 75 and full["t-004"].payload["taskUUID"] == "t-004"
    finally:
        ledger.close()


def test_progress_moves_only_where_no_one_wrote_since_it_was_seen(ledger_at: Path | str) -> None:
    ledger = Ledger(ledger_at)
    try:
        for n in range(600):  # more than one slice
            ledger.record_new(job(f"t-{n:03d}", "0.1"))
        seen = {u: j.updated_at for u, j in ledger.update_many(
            {f"t-{n:03d}": {"status": "processing", "progress": 10} for n in range(600)}).items()}  # fmt: skip
        ledger.update("t-001", progress=30)  # another instance's poll
        ledger.update("t-002", status="success", finished_at=time.time(), progress=100)  # a webhook, elsewhere
        ledger.record_new(job("t-pending", "0.1"))
        pending_seen = ledger.get("t-pending").updated_at  # type: ignore[union-attr]
        moved = ledger.advance_progress({**{u: (seen[u], 20) for u in seen}, "t-pending": (pending_seen, 20),
                                         "missing": (0.0, 20)})  # fmt: skip
        assert sorted(moved) == sorted(set(seen) - {"t-001", "t-002"})
        assert [ledger.get(u).progress for u in ("t-000", "t-001", "t-002", "t-599")] == [20, 30, 100, 20]  # type: ignore[union-attr]
        assert ledger.get("t-002").status == "success" and ledger.get("t-pending").progress != 20  # type: ignore[union-attr]
        # What it returns is what a next move must name: the row as written now.
        assert ledger.get("t-000").updated_at == moved["t-000"]  # type: ignore[union-attr]
        assert ledger.advance_progress({"t-000": (moved["t-000"], 40), "t-003": (seen["t-003"], 40)}).keys() == {"t-000"}
    finally:
        ledger.close()


def test_uploads_and_downloads_are_remembered(ledger_at: Path | str) -> None:
    ledger = Ledger(ledger_at)
    try:
        upload = dict(sha256="ab" * 32, account="acct", kind="image", mime="image/png", size=1234, source="/x.png")
        ledger.upload_put(**upload, media_uuid="m-1", media_url=None)
        ledger.upload_put(**upload, media_uuid="m-2", media_url="https://x/m-2.png")  # replaces the first
        found = ledger.upload_get("ab" * 32, "acct", fresher_than=time.time() - 60)
        assert found is not None and (found["media_uuid"], found["media_url"], found["size"]) == ("m-2", "https://x/m-2.png", 1234)
        assert ledger.upload_get("ab" * 32, "other", fresher_than=0) is None
        assert ledger.upload_get("ab" * 32, "acct", fresher_than=time.time() + 60) is None
        ledger.upload_used("ab" * 32, "acct")
        ledger.download_put("t-1", "v-1", "/out/a.mp4", 10)
        ledger.download_put("t-1", "v-1", "/out/a.mp4", 12)
        ledger.download_put("t-1", "v-2", "/out/b.mp4", 20)
        assert [(d["path"], d["size"]) for d in ledger.downloads("t-1")] == [("/out/a.mp4", 12), ("/out/b.mp4", 20)]
    finally:
        ledger.close()


CAP_WRITER = textwrap.dedent(
    """
    import sys
    from decimal import Decimal
    from pathlib import Path
    from kling_mcp.ledger import JobRecord, Ledger, SpendCapExceeded

    location, name = sys.argv[1], sys.argv[2]
    ledger = Ledger(location if location.startswith("postgresql://") else Path(location))
    print("ready", flush=True)
    sys.stdin.readline()  # every writer starts at once
    for i in range(20):
        task = JobRecord(f"{name}-{i}", "m", "t", "pending", {}, Decimal("1.25"), 1)
        try:
            ledger.record_new(task, daily_cap=Decimal("50"))
            print(task.task_uuid, flush=True)
        except SpendCapExceeded:
            pass
    ledger.close()
    """
)


def test_concurrent_submissions_from_several_processes_never_commit_more_than_the_cap(ledger_at: Path | str) -> None:
    """Three processes, 20 submissions of $1.25 each, under a $50 daily cap that admits 40."""
    Ledger(ledger_at).close()  # created once, so every writer only races on the cap
    writers = [
        subprocess.Popen([sys.executable, "-c", CAP_WRITER, str(ledger_at), f"p{n}"], stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, text=True)  # fmt: skip
        for n in range(3)
    ]
    for writer in writers:
        assert writer.stdout is not None and writer.stdout.readline().strip() == "ready"
    for writer in writers:
        assert writer.stdin is not None
        writer.stdin.write("go\n")
        writer.stdin.flush()
    accepted = []
    for writer in writers:
        out, _ = writer.communicate(timeout=60)
        assert writer.returncode == 0
        accepted += out.split()
    assert len(accepted) == 40, "the cap admits exactly 40 of 60"
    ledger = Ledger(ledger_at)
    try:
        assert sorted(j.task_uuid for j in ledger.recent(100)) == sorted(accepted)
        assert ledger.committed_usd() == Decimal("50")
    finally:
        ledger.close()


def test_many_instances_opening_a_new_database_at_once_migrate_it_once(ledger_at: Path | str) -> None:
    opened: list[Ledger] = []
    errors: list[BaseException] = []

    def open_one() -> None:
        try:
            opened.append(Ledger(ledger_at))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=open_one) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and {ledger.schema_version for ledger in opened} == {LATEST}
    opened[0].record_new(job("t-1", "1"))
    assert all(ledger.get("t-1") is not None for ledger in opened)
    for ledger in opened:
        ledger.close()


def test_a_ledger_from_a_newer_kling_mcp_is_refused_clearly(ledger_at: Path | str) -> None:
    Ledger(ledger_at).close()
    run_sql(ledger_at, "INSERT INTO ledger_schema (version, applied_at) VALUES (99, 0)")
    with pytest.raises(LedgerUnavailable, match=f"schema version 99, newer than this kling-mcp knows \\({LATEST}\\)"):
        Ledger(ledger_at)


# The ledger as kling-mcp wrote it before its schema was versioned.
LEGACY_SCHEMA = """
CREATE TABLE jobs (task_uuid TEXT PRIMARY KEY, model TEXT NOT NULL, tool TEXT NOT NULL, status TEXT NOT NULL,
    payload TEXT NOT NULL, estimate TEXT, reserve_usd REAL NOT NULL, number_results INTEGER NOT NULL,
    results TEXT NOT NULL DEFAULT '[]', cost_usd REAL, errors TEXT NOT NULL DEFAULT '[]', progress INTEGER,
    created_at REAL NOT NULL, submitted_at REAL, updated_at REAL NOT NULL, finished_at REAL);
CREATE INDEX jobs_created ON jobs(created_at);
CREATE INDEX jobs_status ON jobs(status);
CREATE TABLE uploads (sha256 TEXT NOT NULL, account TEXT NOT NULL, kind TEXT NOT NULL, mime TEXT NOT NULL,
    media_uuid TEXT NOT NULL, media_url TEXT, size INTEGER NOT NULL, source TEXT, created_at REAL NOT NULL,
    last_used_at REAL NOT NULL, PRIMARY KEY (sha256, account));
CREATE TABLE downloads (task_uuid TEXT NOT NULL, video_uuid TEXT NOT NULL, path TEXT NOT NULL,
    size INTEGER NOT NULL, created_at REAL NOT NULL, PRIMARY KEY (task_uuid, video_uuid, path));
"""


def test_a_ledger_written_before_versioning_is_upgraded_in_place(tmp_path: Path) -> None:
    path = tmp_path / "jobs.sqlite3"
    now = time.time()
    legacy = [  # (task, status, reserve, cost, created)
        ("done-today", "success", 0.896, 0.5, now),
        ("running", "processing", 0.896, None, now),
        ("refused", "rejected", 5.0, None, now),
        ("failed", "failed", 2.0, None, now),
        ("done-before", "success", 3.0, 2.0, now - 2 * DAY),
    ]
    with sqlite3.connect(path) as db:
        db.executescript(LEGACY_SCHEMA)
        db.executemany(
            "INSERT INTO jobs (task_uuid, model, tool, status, payload, reserve_usd, number_results, cost_usd,"
            " created_at, updated_at) VALUES (?, 'm', 't', ?, ?, ?, 1, ?, ?, ?)",
            [(t, s, json.dumps({"taskUUID": t}), r, c, at, at) for t, s, r, c, at in legacy],
        )
        db.execute("INSERT INTO downloads VALUES ('done-today', 'v', '/out/v.mp4', 9, ?)", (now,))
    for _ in range(2):  # the second open finds nothing left to do
        ledger = Ledger(path)
        try:
            assert ledger.schema_version == LATEST
            assert ledger.get("done-today").cost_usd == 0.5 and ledger.downloads("done-today")[0]["size"] == 9  # type: ignore[union-attr]
            assert [j.task_uuid for j in ledger.in_flight()] == ["running"]
            assert ledger.committed_usd(start_of_utc_day(now)) == Decimal("1.396")
            assert ledger.committed_usd() == Decimal("3.396")
            ledger.check_caps(Decimal("0.604"), daily_cap=Decimal("2"), total_cap=Decimal("4"))
            with pytest.raises(SpendCapExceeded, match="total"):
                ledger.check_caps(Decimal("0.605"), daily_cap=None, total_cap=Decimal("4"))
        finally:
            ledger.close()
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT version FROM ledger_schema ORDER BY version").fetchall() == [(v,) for v in range(1, LATEST + 1)]


def test_an_unreachable_database_is_reported_without_its_password() -> None:
    pytest.importorskip("psycopg")
    with pytest.raises(LedgerUnavailable) as refused:
        Ledger("postgresql://kling:pw-SECRET-42@127.0.0.1:1/ledger")
    message = str(refused.value)
    assert "postgresql://kling@127.0.0.1:1/ledger" in message and "KLING_MCP_DATABASE_URL" in message
    assert "pw-SECRET-42" not in message


def test_a_wrong_password_is_reported_without_it(postgres_dsn: str) -> None:
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    wrong = make_conninfo(postgres_dsn, password="pw-WRONG-42")
    parts = conninfo_to_dict(wrong)
    url = f"postgresql://{parts.get('user')}:pw-WRONG-42@{parts.get('host', 'localhost')}:{parts.get('port', 5432)}/{parts.get('dbname')}"
    ok, lines = check_ledger(url)
    assert not ok and "NOT usable" in lines[0] and "pw-WRONG-42" not in "\n".join(lines)


def test_check_describes_the_database(postgres_url: str, tmp_path: Path) -> None:
    Ledger(postgres_url).record_new(job("t-1", "1"))
    env = {k: v for k, v in os.environ.items() if k != "RUNWARE_API_KEY"}
    env |= {"KLING_MCP_DATABASE_URL": postgres_url, "KLING_MCP_DATA_DIR": str(tmp_path / "data"),
            "KLING_MCP_OUTPUT_DIR": str(tmp_path / "out")}  # fmt: skip
    out = subprocess.run([sys.executable, "-m", "kling_mcp", "check"], env=env, capture_output=True, text=True,
                         timeout=60).stdout  # fmt: skip
    assert "job ledger: PostgreSQL postgresql://" in out
    assert f"schema version {LATEST} (current); 1 job(s), 1 in flight" in out
    from psycopg.conninfo import conninfo_to_dict

    password = conninfo_to_dict(postgres_url).get("password")
    assert not password or f":{password}@" not in out  # the user name may equal the password


def test_the_database_setting_takes_only_a_postgresql_url(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("KLING_MCP_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("KLING_MCP_DATABASE_URL", raising=False)
    assert Settings().ledger_location == tmp_path / "jobs.sqlite3"
    monkeypatch.setenv("KLING_MCP_DATABASE_URL", "postgresql://u:p@db.internal/kling")
    settings = Settings()
    assert settings.ledger_location == "postgresql://u:p@db.internal/kling" and "u:p@" not in repr(settings)
    monkeypatch.setenv("KLING_MCP_DATABASE_URL", "/var/lib/jobs.sqlite3")
    with pytest.raises(ValueError, match="must be a postgresql://"):
        Settings()


def test_a_server_whose_database_cannot_be_reached_exits_with_one_clear_line(tmp_path: Path) -> None:
    pytest.importorskip("psycopg")
    env = os.environ | {"KLING_MCP_DATABASE_URL": "postgresql://kling:pw-SECRET-42@127.0.0.1:1/ledger",
                        "KLING_MCP_DATA_DIR": str(tmp_path)}  # fmt: skip
    run = subprocess.run([sys.executable, "-m", "kling_mcp"], env=env, stdin=subprocess.DEVNULL,
                         capture_output=True, text=True, timeout=60)  # fmt: skip
    assert run.returncode == 2 and run.stdout == ""
    [line] = run.stderr.strip().splitlines()
    assert line.startswith("kling-mcp: Cannot open the ledger at postgresql://kling@127.0.0.1:1/ledger: ")
    assert "Check KLING_MCP_DATABASE_URL" in line and "pw-SECRET-42" not in line


def test_spending_by_model_and_committed_spend_read_alike_on_both_engines(ledger_at: Path | str) -> None:
    ledger = Ledger(ledger_at)
    now = time.time()
    today = start_of_utc_day(now)
    try:
        for n, (model, status, cost) in enumerate([("a", "success", 0.5), ("a", "failed", None), ("a", "pending", None),
                                                   ("b", "rejected", None), ("b", "partial", 0.25)]):  # fmt: skip
            ledger.record_new(JobRecord(f"t-{n}", model, "t", "pending", {}, Decimal("1.5"), 1), now=now)
            if status != "pending":
                ledger.update(f"t-{n}", status=status, cost_usd=cost)
        ledger.record_new(JobRecord("old", "a", "t", "pending", {}, Decimal("2"), 1), now=today - DAY)
        assert ledger.spend_by_model(today) == [
            {"model": "a", "jobs": 3, "finished": 1, "failed": 1, "running": 1, "charged_usd": 0.5, "reserved_usd": 1.5},
            {"model": "b", "jobs": 2, "finished": 1, "failed": 1, "running": 0, "charged_usd": 0.25, "reserved_usd": 0.0},
        ]
        # Today, from its start (running totals), and from a moment within it (a window over the jobs).
        assert ledger.committed_usd(today) == ledger.committed_usd(today + 1) == Decimal("2.25")
        assert ledger.committed_usd(today - DAY) == ledger.committed_usd() == Decimal("4.25")
        assert ledger.committed_usd(today + DAY) == Decimal(0)
    finally:
        ledger.close()


def test_a_ledger_outlives_the_database_dropping_its_connections(postgres_url: str, postgres_dsn: str) -> None:
    """As after a server restart or a failover: the next call gets a fresh connection."""
    import psycopg

    name = f"kling-test-{os.getpid()}-{time.monotonic_ns()}"  # so that only this ledger's connections are dropped
    ledger = Ledger(f"{postgres_url}&application_name={name}")
    try:
        ledger.record_new(job("before", "1"))
        with psycopg.connect(postgres_dsn, autocommit=True) as admin:
            dropped = admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = %s", (name,)
            ).fetchall()
        assert dropped
        ledger.record_new(job("after", "1"))
        assert ledger.get("before") is not None and ledger.committed_usd() == Decimal("2")
    finally:
        ledger.close()


async def test_fifty_concurrent_submissions_through_two_services_on_one_ledger(ledger_at: Path | str) -> None:
    """Two job services (two instances' worth of connections) share a ledger; 50 submissions at once,
    under a daily cap that admits 30: 30 are sent, each once, and the other 20 are refused unsent."""
    cap = Caps(daily_usd=Decimal("0.896") * 30)
    sent: list[str] = []
    refused: list[SpendCapExceeded] = []
    async with run_emulator(api_key=KEY, job_seconds=(30, 30)) as emu:
        async with job_service(emu.url, ledger_at, caps=cap) as one, job_service(emu.url, ledger_at, caps=cap) as two:

            async def submit(service: JobService) -> None:
                try:
                    sent.append((await service.submit(request(), "text_to_video")).task_uuid)
                except SpendCapExceeded as exc:
                    refused.append(exc)

            async with anyio.create_task_group() as tg:
                for n in range(50):
                    tg.start_soon(submit, (one, two)[n % 2])
            assert one.ledger.committed_usd(start_of_utc_day(time.time())) == Decimal("0.896") * 30
        assert len(sent) == 30 and len(refused) == 20
        assert dict(emu.stats.submissions) == {task_uuid: 1 for task_uuid in sent}


def test_an_ended_job_is_not_changed_by_an_answer_merged_from_an_older_read(ledger_at: Path | str) -> None:
    ledger = Ledger(ledger_at)
    try:
        ledger.record_new(job("ended", "0.42"))
        ledger.update("ended", status="success", cost_usd=0.42, results=[{"video_uuid": "v", "video_url": "u"}])
        # Another instance's poll read the job while it was still processing, and now writes what it merged.
        stale = ledger.update_many({"ended": {"status": "failed", "cost_usd": 0.0}}, keep_ended=True)
        after = ledger.get("ended")
    finally:
        ledger.close()
    assert stale == {} and after is not None and after.status == "success" and after.cost_usd == 0.42


def test_one_instance_makes_each_storyboard_until_it_falls_silent(ledger_at: Path | str) -> None:
    ledger = Ledger(ledger_at)
    try:
        assert ledger.claim_storyboards("a", lease_s=10) == []  # none active: nothing claimed, nothing written
        for name, at in (("sb-old", 100.0), ("sb-new", 200.0)):
            ledger.storyboard_create(name, {"id": name, "status": "running", "updated_at": at}, [job(f"{name}-0", "0.1")])
        now = time.time()
        assert [b["id"] for b in ledger.claim_storyboards("a", lease_s=10, now=now)] == ["sb-old", "sb-new"]
        assert ledger.claim_storyboards("b", lease_s=10, now=now + 5) == []  # a's, and a is alive
        assert len(ledger.claim_storyboards("a", lease_s=10, now=now + 9)) == 2  # renewed
        assert ledger.claim_storyboards("b", lease_s=10, now=now + 15) == []
        assert "a" in ledger.lease_owners()
        assert [b["id"] for b in ledger.claim_storyboards("b", lease_s=10, now=now + 20)] == ["sb-old", "sb-new"]
        # A clean shutdown gives them up at once; a storyboard that ended has no maker.
        assert ledger.release_leases("b") == 2
        ledger.storyboard_save("sb-old", {"id": "sb-old", "status": "done", "updated_at": 300.0})
        assert [b["id"] for b in ledger.claim_storyboards("a", lease_s=10, now=now + 21)] == ["sb-new"]
        # A save names the version it was read at: one made since (a retry, a cancel) is not overwritten.
        newer = {"id": "sb-new", "status": "cancelled", "updated_at": 400.0}
        assert ledger.storyboard_save("sb-new", newer, if_updated_at=200.0)
        assert not ledger.storyboard_save("sb-new", {"id": "sb-new", "status": "running", "updated_at": 401.0},
                                          if_updated_at=200.0)  # fmt: skip
        assert ledger.storyboard_get("sb-new") == newer
    finally:
        ledger.close()


def test_postgresql_announces_each_change_but_progress_to_every_listener(postgres_url: str) -> None:
    import psycopg

    ledger = Ledger(postgres_url)
    try:
        ids = [f"t-{n:03d}-{'x' * 30}" for n in range(300)]  # more than one NOTIFY payload's worth
        for task_uuid in ids:
            ledger.record_new(job(task_uuid, "0.1"))
        with psycopg.connect(postgres_url, autocommit=True) as listener:
            listener.execute(f'LISTEN "{ledger._engine.channel}"')  # noqa: SLF001
            seen = {u: j.updated_at for u, j in ledger.update_many({u: {"status": "processing"} for u in ids}).items()}
            ledger.advance_progress({u: (seen[u], 50) for u in ids})  # progress alone: no one is told
            ledger.update(ids[0], status="success", finished_at=time.time())
            heard = [n.payload.split(",") for n in listener.notifies(timeout=1.0)]
    finally:
        ledger.close()
    assert all(len(",".join(p)) < 8000 for p in heard) and len(heard) >= 3
    assert sorted(u for p in heard for u in p) == sorted([*ids, ids[0]])
