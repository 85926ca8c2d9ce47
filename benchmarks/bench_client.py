"""The Runware client and job service against the emulator, with simulated 30-90 s jobs compressed 100x.

    python benchmarks/bench_client.py [--jobs 1 10 100]

For 1, 10 and 100 concurrent jobs it prints: HTTP requests per completed video, poll requests per
poller tick (target: 1, whatever the number of jobs), the delay between a job finishing at the
emulator and the client noticing (compressed time; the poll interval is compressed alike:
the schedule's 30-90 s window -> 0.3-0.9 s, 30 s cap -> 300 ms), and the peak RSS of the client process (target: 100
jobs under 150 MB). The client side runs in a subprocess of its own, so its RSS is its own; the
emulator runs here, in a thread.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from kling_mcp.emulator import run_emulator_in_thread  # noqa: E402

KEY = "bench-key"
SCALE = 0.01

CLIENT = textwrap.dedent(
    """
    import json, resource, sys, time
    import anyio
    from pathlib import Path
    from kling_mcp.core import prepare
    from kling_mcp.jobs import JobService
    from kling_mcp.ledger import Ledger
    from kling_mcp.payload import VideoRequest
    from kling_mcp.runware import RunwareClient

    URL, N, DB = sys.argv[1], int(sys.argv[2]), sys.argv[3]

    async def main():
        ledger = Ledger(Path(DB))
        client = RunwareClient({key!r}, URL)
        jobs = JobService(client, ledger, poll_initial_s=2.0 * {scale}, poll_max_s=30.0 * {scale},
                          default_render_s=(30.0 * {scale}, 90.0 * {scale}))
        request = VideoRequest(model="o3-standard", prompt="A fox runs through snow", aspect_ratio="16:9", duration=5)
        async with anyio.create_task_group() as tg:
            await jobs.start(tg)
            ids = [(await jobs.submit(prepare(request), "text_to_video")).task_uuid for _ in range(N)]
            async with anyio.create_task_group() as waits:
                for task_id in ids:
                    waits.start_soon(jobs.wait, task_id, 120)
            tg.cancel_scope.cancel()
        statuses = [ledger.get(i).status for i in ids]
        print(json.dumps({{
            "noticed": {{i: jobs.finished_at[i] for i in ids}},
            "requests": client.requests_sent, "polls": jobs.polls_sent, "ok": statuses.count("success"),
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        }}))
        await client.aclose()

    anyio.run(main)
    """
).format(key=KEY, scale=SCALE)


def run(n: int) -> dict[str, float]:
    with run_emulator_in_thread(api_key=KEY, job_seconds=(30, 90), time_scale=SCALE, seed=n) as emu:
        with tempfile.TemporaryDirectory() as tmp:
            out = subprocess.run([sys.executable, "-c", CLIENT, emu.url, str(n), f"{tmp}/l.db"],
                                 capture_output=True, text=True, check=True)  # fmt: skip
        report = json.loads(out.stdout)
        delays = []
        for task_id, noticed in report["noticed"].items():
            job = emu._jobs[task_id]  # the emulator's own record of when each result finished
            delays.append((noticed - max(r.finish_at for r in job.results)) * 1000)
        get_response = emu.stats.requests_by_task_type["getResponse"]
    return {
        "jobs": n,
        "completed": report["ok"],
        "http_requests": report["requests"],
        "requests_per_video": report["requests"] / max(report["ok"], 1),
        "poll_requests": get_response,
        "poller_ticks": report["polls"],
        "notice_delay_ms_median": statistics.median(delays),
        "notice_delay_ms_max": max(delays),
        "peak_rss_mb": report["peak_rss_mb"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, nargs="+", default=[1, 10, 100])
    counts = parser.parse_args().jobs
    print(f"{'jobs':>5} {'done':>5} {'HTTP req':>9} {'req/video':>10} {'poll req':>9} {'ticks':>6} "
          f"{'notice ms p50':>14} {'max':>7} {'peak RSS MB':>12}")  # fmt: skip
    for n in counts:
        r = run(n)
        print(f"{r['jobs']:>5} {r['completed']:>5} {r['http_requests']:>9} {r['requests_per_video']:>10.2f} "
              f"{r['poll_requests']:>9} {r['poller_ticks']:>6} {r['notice_delay_ms_median']:>14.1f} "
              f"{r['notice_delay_ms_max']:>7.1f} {r['peak_rss_mb']:>12.1f}")  # fmt: skip
    print("\nPoll requests per tick = poll req / ticks (target 1). In real time the notice delay scales by 100x "
          "(the poll cap is 30 s). Target: 100 jobs under 150 MB peak RSS.")


if __name__ == "__main__":
    main()
