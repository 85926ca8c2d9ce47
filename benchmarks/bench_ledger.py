"""Submit latency against the size of the ledger, on SQLite and on PostgreSQL.

    python benchmarks/bench_ledger.py [--past 0 10000 50000] [--submissions 200]
                                      [--database-url postgresql://...]

For each engine, the ledger is filled with past jobs (all created today, finished, with a real
cost: the worst case for a spend cap summed over a time window), and at each size it times:
- "ledger": what one submission asks of the ledger (the day's and the total committed spend, for
  the budget shown with the estimate; the advisory cap check; the insert, with the binding cap
  check in its write transaction; the update to "submitted");
- "submit": JobService.check_caps + JobService.submit, as a tool call runs them, against the
  emulator on loopback (HTTP included), with a daily and a total cap set.
The goal: at most 1.2x the empty ledger at 10k and 50k past jobs. PostgreSQL runs when a URL is
given (or KLING_MCP_TEST_DATABASE_URL is set), in a schema of its own that is dropped afterwards.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import uuid
from decimal import Decimal
from pathlib import Path

import anyio

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from kling_mcp.emulator import run_emulator_in_thread  # noqa: E402
from kling_mcp.jobs import Caps, JobService  # noqa: E402
from kling_mcp.ledger import JobRecord, Ledger, start_of_utc_day  # noqa: E402
from kling_mcp.runware import RunwareClient  # noqa: E402
from tests.helpers import request  # noqa: E402
from tests.ledger_locations import with_schema  # noqa: E402

KEY = "bench-key"
CAPS = Caps(daily_usd=Decimal("1000000"), total_usd=Decimal("10000000"))
FILL_BATCH = 1000


def fill(ledger: Ledger, upto: int, have: int) -> int:
    """Past jobs until the ledger holds ``upto``: each recorded, then finished at its real cost."""
    start = time.time() - 3600  # earlier today (or just after midnight): today's window holds them all
    while have < upto:
        batch = [f"past-{n}" for n in range(have, min(upto, have + FILL_BATCH))]
        for n, task_uuid in enumerate(batch):
            job = JobRecord(task_uuid, "klingai:kling-video@3-standard", "text_to_video", "pending",
                            {"taskUUID": task_uuid, "prompt": "past"}, Decimal("0.896"), 1)  # fmt: skip
            ledger.record_new(job, now=max(start, time.time() - 3600 + n * 1e-3))
        ledger.update_many({u: {"status": "success", "cost_usd": 0.896, "finished_at": time.time()} for u in batch})
        have += len(batch)
    return have


def ledger_submission(ledger: Ledger) -> float:
    """What one submission asks of the ledger; seconds."""
    task_uuid = str(uuid.uuid4())
    job = JobRecord(task_uuid, "m", "text_to_video", "pending", {"taskUUID": task_uuid}, Decimal("0.896"), 1)
    began = time.perf_counter()
    ledger.committed_usd(start_of_utc_day(time.time()))  # the budget shown with every estimate
    ledger.committed_usd(0.0)
    ledger.check_caps(job.reserve_usd, daily_cap=CAPS.daily_usd, total_cap=CAPS.total_usd)
    ledger.record_new(job, daily_cap=CAPS.daily_usd, total_cap=CAPS.total_usd)
    ledger.update(task_uuid, status="submitted", submitted_at=time.time())
    return time.perf_counter() - began


def time_in_turns(ledgers: tuple[Ledger, Ledger], url: str, count: int) -> dict[str, list[float]]:
    """Ledger work and whole submissions, one on each ledger in turn (the order alternating), so
    that both meet the same moment's load on a shared machine."""
    timings: dict[str, list[float]] = {"ledger 0": [], "ledger N": [], "submit 0": [], "submit N": []}

    async def run() -> None:
        async with RunwareClient(KEY, url) as client:
            services = [JobService(client, ledger, caps=CAPS) for ledger in ledgers]  # no poller: submissions only
            for n in range(count):
                order = (0, 1) if n % 2 == 0 else (1, 0)
                for k in order:
                    label = "0N"[k]
                    timings[f"ledger {label}"].append(await anyio.to_thread.run_sync(ledger_submission, ledgers[k]))
                for k in order:
                    prepared = request()
                    began = time.perf_counter()
                    await services[k].check_caps(prepared)
                    job = await services[k].submit(prepared, "text_to_video")
                    timings[f"submit {'0N'[k]}"].append(time.perf_counter() - began)
                    assert job.status == "submitted", job

    anyio.run(run)
    return timings


def bench_engine(name: str, empty_at: Path | str, filled_at: Path | str, sizes: list[int], count: int) -> None:
    """The filled ledger is timed in turns with an empty one; the ratio is filled over empty."""
    ledgers = (Ledger(empty_at), Ledger(filled_at))
    have = 0
    try:
        for size in sizes:
            began = time.perf_counter()
            have = fill(ledgers[1], size, have)
            filled_in = time.perf_counter() - began
            with run_emulator_in_thread(api_key=KEY) as emu:  # a fresh one: its own state does not grow
                time_in_turns(ledgers, emu.url, 20)  # warm caches, the pool and the HTTP client
                samples = time_in_turns(ledgers, emu.url, count)
            have += 2 * (count + 20)
            ms = {k: statistics.median(v) * 1000 for k, v in samples.items()}
            print(f"{name:<11} {size:>7} {ms['ledger N']:>10.3f} {ms['ledger N'] / ms['ledger 0']:>6.2f}x "
                  f"{ms['submit N']:>10.3f} {ms['submit N'] / ms['submit 0']:>6.2f}x"
                  f"   (empty: {ms['ledger 0']:.3f} / {ms['submit 0']:.3f} ms; filled in {filled_in:.1f} s)",
                  flush=True)  # fmt: skip
    finally:
        for ledger in ledgers:
            ledger.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--past", type=int, nargs="+", default=[0, 10_000, 50_000])
    parser.add_argument("--submissions", type=int, default=200)
    parser.add_argument("--database-url", default=os.environ.get("KLING_MCP_TEST_DATABASE_URL"))
    args = parser.parse_args()
    print(f"{'engine':<11} {'past':>7} {'ledger ms':>10} {'':>7} {'submit ms':>10} {'':>7}   (medians of "
          f"{args.submissions}; ratios to an empty ledger timed in turns)")  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        bench_engine("sqlite", Path(tmp) / "empty.sqlite3", Path(tmp) / "filled.sqlite3", args.past, args.submissions)
        if not args.database_url:
            print("postgresql  skipped: pass --database-url or set KLING_MCP_TEST_DATABASE_URL")
            return
        import psycopg

        schemas = [f"bench_{uuid.uuid4().hex[:8]}" for _ in range(2)]
        with psycopg.connect(args.database_url, autocommit=True) as admin:
            for schema in schemas:
                admin.execute(f'CREATE SCHEMA "{schema}"')
        try:
            empty_at, filled_at = (with_schema(args.database_url, schema) for schema in schemas)
            bench_engine("postgresql", empty_at, filled_at, args.past, args.submissions)
        finally:
            with psycopg.connect(args.database_url, autocommit=True) as admin:
                for schema in schemas:
                    admin.execute(f'DROP SCHEMA "{schema}" CASCADE')
    print("\nGoal: at most 1.2x the empty ledger at every size. Past jobs are all from today, finished at $0.896.")


if __name__ == "__main__":
    main()
