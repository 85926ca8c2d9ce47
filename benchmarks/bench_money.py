"""The money path under faults, against the emulator on loopback.

    python benchmarks/bench_money.py [--jobs 200]

Prints, for the same submissions without faults and under the chaos test's random fault mix: wall
time, HTTP requests per job, getTaskDetails look-ups, re-sends, and whether the ledger agrees with
what the emulator billed. Then how long a call takes against a server that trickles its answer one
byte at a time, next to the deadline it must keep (submit, poll, download).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections import Counter
from decimal import Decimal
from pathlib import Path

import anyio

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from kling_mcp.emulator import Fault, run_emulator  # noqa: E402
from kling_mcp.files import DownloadProblem, VideoDownloads  # noqa: E402
from tests.helpers import KEY, job_service, request  # noqa: E402
from tests.test_chaos import FAULT_MIX  # noqa: E402


async def run(jobs_count: int, faults: bool, folder: Path) -> dict[str, object]:
    async with run_emulator(api_key=KEY, job_seconds=(0.1, 0.4), seed=7) as emu:
        if faults:
            for fault in FAULT_MIX:
                emu.add_fault(fault)
        started = time.perf_counter()
        async with job_service(emu.url, folder / f"ledger-{faults}.db", timeout=1.0, retry_timeout=30.0,
                               submit_attempts=2) as jobs:  # fmt: skip
            jobs.resend_interval_s = 0.5
            limiter = anyio.CapacityLimiter(25)
            ids: list[str] = []

            async def one(i: int) -> None:
                async with limiter:
                    ids.append((await jobs.submit(request(number_results=1 + i % 2), "text_to_video")).task_uuid)

            async with anyio.create_task_group() as tg:
                for i in range(jobs_count):
                    tg.start_soon(one, i)
            emu.clear_faults()
            for task_uuid in ids:
                await jobs.wait(task_uuid, 60)
            elapsed = time.perf_counter() - started
            statuses = Counter(jobs.ledger.get(u).status for u in ids)  # type: ignore[union-attr]
            committed, resends = jobs.ledger.committed_usd(), jobs.resends
        billed = Decimal(str(round(sum(emu.billed().values()), 6))).quantize(Decimal("0.000001"))
        return {
            "elapsed": elapsed, "requests": emu.stats.http_requests, "lookups": emu.stats.requests_by_task_type["getTaskDetails"],
            "resends": resends, "faults": sum(emu.stats.faults_fired.values()), "statuses": dict(statuses),
            "agrees": committed == billed and all(c == 1 for c in emu.stats.accepted.values()),
        }  # fmt: skip


async def deadlines(folder: Path) -> list[tuple[str, float, float]]:
    rows = []
    async with run_emulator(api_key=KEY, job_seconds=(0.1, 0.2), seed=1) as emu:
        async with job_service(emu.url, folder / "deadlines.db", timeout=2.0) as jobs:
            emu.add_fault(Fault("trickle", delay=0.5, task_type="videoInference"))
            jobs.submit_deadline_s = 3.0
            t = time.perf_counter()
            job = await jobs.submit(request(), "text_to_video")
            rows.append((f"submit: trickled answer cut ({job.status})", time.perf_counter() - t, jobs.submit_deadline_s))
            done, _ = await jobs.wait(job.task_uuid, 30)
            emu.add_fault(Fault("trickle", delay=0.5, task_type="getResponse"))
            t = time.perf_counter()
            try:
                await jobs.client.poll([job.task_uuid])
            except Exception as exc:  # the deadline fired, as it must; retries are bounded too
                rows.append((f"one poll attempt ({type(exc).__name__})", time.perf_counter() - t, jobs.client.deadline))
            else:
                rows.append(("poll: trickled try cut, then a retry", time.perf_counter() - t, jobs.client.deadline))
            emu.clear_faults()
            emu.add_fault(Fault("trickle", delay=0.05, task_type="download"))
            downloads = VideoDownloads(folder / "out", jobs.ledger, deadline=3.0)
            t = time.perf_counter()
            try:
                await downloads.save(done)  # type: ignore[arg-type]
                rows.append(("download (finished)", time.perf_counter() - t, downloads.deadline))
            except DownloadProblem as exc:
                rows.append((f"download ({exc.kind})", time.perf_counter() - t, downloads.deadline))
            finally:
                await downloads.aclose()
    return rows


async def main(jobs_count: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        print(f"{jobs_count} submissions (1-2 results each), 25 at a time, jobs of 0.1-0.4 s, client deadline 1 s")
        print(f"{'run':<12} {'wall s':>7} {'HTTP req/job':>13} {'look-ups':>9} {'re-sends':>9} {'faults':>7}  agrees  statuses")
        for faults in (False, True):
            r = await run(jobs_count, faults, folder)
            print(f"{'fault mix' if faults else 'no faults':<12} {r['elapsed']:>7.2f} {r['requests'] / jobs_count:>13.2f} "  # type: ignore[operator]
                  f"{r['lookups']:>9} {r['resends']:>9} {r['faults']:>7}  {str(r['agrees']):<6}  {r['statuses']}")  # fmt: skip
        print("\nagainst a server that trickles one byte at a time:")
        print(f"{'call':<40} {'took s':>7} {'deadline s':>11}")
        for label, took, deadline in await deadlines(folder):
            print(f"{label:<40} {took:>7.2f} {deadline:>11.1f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=200)
    anyio.run(main, parser.parse_args().jobs)
