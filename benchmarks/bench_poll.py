"""The poller: what a tick costs, and how many requests a video takes and how late its end is noticed.

    python benchmarks/bench_poll.py [--ticks 100 500] [--jobs 1 10 50] [--database-url postgresql://...]

1. Tick time with 100 and 500 jobs in flight: one poll request for them all, the ledger read in one
   batch, every job's progress written in one transaction; against a bare POST of the same body to
   the same emulator, run in a process of its own (goal: at most 3x). On SQLite, and on PostgreSQL when a URL is given (or
   KLING_MCP_TEST_DATABASE_URL is set; a schema of its own is created and dropped).
2. Requests per video (the submission included) and the notice delay, for 1, 10 and 50 jobs
   submitted together, render times 30-90 s compressed 20x, no render history in the ledger
   (the schedule's defaults: Kling's 30-90 s). Goals: a lone job at most 4 requests, its notice
   delay at most 10% of its render time; 50 jobs at most 1.2 requests per video.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import anyio
import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from kling_mcp.core import prepare  # noqa: E402
from kling_mcp.emulator import run_emulator_in_thread  # noqa: E402
from kling_mcp.jobs import JobService  # noqa: E402
from kling_mcp.ledger import Ledger  # noqa: E402
from kling_mcp.payload import VideoRequest  # noqa: E402
from kling_mcp.runware import RunwareClient  # noqa: E402

KEY = "bench-key"
SCALE = 0.05
LONE_RUNS = 8
REQUEST = VideoRequest(model="o3-standard", prompt="A fox runs through snow", aspect_ratio="16:9", duration=5)


async def _submit_many(jobs: JobService, n: int) -> list[str]:
    ids: list[str] = []

    async def one() -> None:
        ids.append((await jobs.submit(prepare(REQUEST), "text_to_video")).task_uuid)

    async with anyio.create_task_group() as tg:
        for _ in range(n):
            tg.start_soon(one)
    return ids


async def _tick_times(url: str, location: Path | str, n: int, rounds: int = 15) -> tuple[float, float]:
    """Median milliseconds of a poller tick over ``n`` running jobs, and of a bare POST of its body."""
    ledger = Ledger(location)
    client = RunwareClient(KEY, url)
    jobs = JobService(client, ledger, poll_initial_s=3600, poll_max_s=3600)  # the bench drives the ticks
    try:
        async with anyio.create_task_group() as tg:
            await jobs.start(tg)
            ids = sorted(await _submit_many(jobs, n))
            body = [{"taskType": "getResponse", "taskUUID": i} for i in ids]
            ticks, posts = [], []
            async with httpx.AsyncClient(headers={"Authorization": f"Bearer {KEY}"}, timeout=30) as http:
                for _ in range(rounds):
                    started = time.perf_counter()
                    await jobs._poll_once(ids)  # noqa: SLF001 - one tick, as the poll loop runs it
                    ticks.append(time.perf_counter() - started)
                    started = time.perf_counter()
                    (await http.post(url, json=body)).raise_for_status()
                    posts.append(time.perf_counter() - started)
            tg.cancel_scope.cancel()
    finally:
        await client.aclose()
        ledger.close()
    return statistics.median(ticks) * 1000, statistics.median(posts) * 1000


async def _requests_and_delay(url: str, db: Path, n: int) -> dict[str, float]:
    ledger = Ledger(db)
    client = RunwareClient(KEY, url)
    # Every duration compressed alike: the shortest gap 2 s, the longest 30 s, the default window 30-90 s.
    jobs = JobService(client, ledger, poll_initial_s=2.0 * SCALE, poll_max_s=30.0 * SCALE,
                      default_render_s=(30.0 * SCALE, 90.0 * SCALE))  # fmt: skip
    try:
        async with anyio.create_task_group() as tg:
            await jobs.start(tg)
            ids = await _submit_many(jobs, n)
            async with anyio.create_task_group() as waits:
                for task_id in ids:
                    waits.start_soon(jobs.wait, task_id, 120)
            tg.cancel_scope.cancel()
        done = [i for i in ids if ledger.get(i).status == "success"]  # type: ignore[union-attr]
    finally:
        await client.aclose()
        ledger.close()
    return {"ids": ids, "done": len(done), "requests": client.requests_sent, "finished_at": jobs.finished_at}  # type: ignore[dict-item]


def _tick_table(counts: list[int], database_url: str | None) -> None:
    print("Tick time (median of 15) vs a bare POST of the same getResponse body:")
    print(f"{'engine':>11} {'jobs':>5} {'tick ms':>8} {'POST ms':>8} {'ratio':>6}")
    engines: list[tuple[str, str | None]] = [("sqlite", None)] + ([("postgresql", database_url)] if database_url else [])
    for engine, dsn in engines:
        for n in counts:
            with _emulator_process() as url, tempfile.TemporaryDirectory() as tmp:
                schema = None
                if dsn is None:
                    location: Path | str = Path(tmp) / "l.db"
                else:
                    location, schema = _fresh_schema(dsn)
                try:
                    tick, post = anyio.run(_tick_times, url, location, n)
                finally:
                    if schema is not None:
                        _drop_schema(dsn, schema)  # type: ignore[arg-type]
            print(f"{engine:>11} {n:>5} {tick:>8.1f} {post:>8.1f} {tick / post:>6.2f}")


@contextlib.contextmanager
def _emulator_process() -> Iterator[str]:
    """The emulator in a process of its own (`kling-mcp emulator`), so that it does not share this one's CPU
    time: a tick and a bare POST are both measured against the same server. Jobs run for 30-90 s."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "kling_mcp", "emulator", "--port", str(port), "--api-key", KEY,
                             "--time-scale", "1"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError("the emulator did not start") from None
                time.sleep(0.05)
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        proc.terminate()
        proc.wait(10)


def _fresh_schema(dsn: str) -> tuple[str, str]:
    import psycopg

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from tests.ledger_locations import with_schema

    schema = f"bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(dsn, autocommit=True) as admin:
        admin.execute(f'CREATE SCHEMA "{schema}"')
    return with_schema(dsn, schema), schema


def _drop_schema(dsn: str, schema: str) -> None:
    import psycopg

    with psycopg.connect(dsn, autocommit=True) as admin:
        admin.execute(f'DROP SCHEMA "{schema}" CASCADE')


def _requests_table(counts: list[int]) -> None:
    print("\nRequests per video and notice delay, render times 30-90 s compressed 20x (delays in uncompressed s);")
    print(f"a lone job is run {LONE_RUNS} times, each with its own render time:")
    print(f"{'jobs':>5} {'done':>5} {'req/video':>10} {'delay s p50':>12} {'max':>6} {'delay/render p50':>17} {'max':>6}")
    for n in counts:
        done = requests = 0
        delays, shares = [], []
        for seed in range(LONE_RUNS if n == 1 else 1):
            with run_emulator_in_thread(api_key=KEY, job_seconds=(30, 90), time_scale=SCALE, seed=n * 100 + seed) as emu:
                with tempfile.TemporaryDirectory() as tmp:
                    report = anyio.run(_requests_and_delay, emu.url, Path(tmp) / "l.db", n)
                done, requests = done + report["done"], requests + report["requests"]
                for task_id in report["ids"]:
                    job = emu._jobs[task_id]  # noqa: SLF001 - the emulator's own record of when it finished
                    finished = max(r.finish_at for r in job.results)
                    delay = report["finished_at"][task_id] - finished
                    delays.append(delay / SCALE)
                    shares.append(delay / (finished - job.submitted_at))
        print(f"{n:>5} {done:>5} {requests / max(done, 1):>10.2f} {statistics.median(delays):>12.1f} "
              f"{max(delays):>6.1f} {statistics.median(shares):>16.0%} {max(shares):>6.0%}")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ticks", type=int, nargs="*", default=[100, 500])
    parser.add_argument("--jobs", type=int, nargs="*", default=[1, 10, 50])
    parser.add_argument("--database-url", default=os.environ.get("KLING_MCP_TEST_DATABASE_URL") or None)
    args = parser.parse_args()
    if args.ticks:
        _tick_table(args.ticks, args.database_url)
    if args.jobs:
        _requests_table(args.jobs)
    print("\nGoals: tick at most 3x the POST; a lone job at most 4 requests and a delay at most 10% of its render; "
          "50 jobs at most 1.2 requests per video.")  # fmt: skip


if __name__ == "__main__":
    main()
