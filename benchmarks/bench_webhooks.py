"""Webhook mode against polling, with simulated 30-90 s Kling renders compressed 20x.

    python benchmarks/bench_webhooks.py [--jobs 1 10 50]

For N concurrent jobs, in each mode, it prints: the routine polls sent (getResponse requests; the goal
in webhook mode is 0), HTTP requests to Runware per video, webhook deliveries received, and the notice
delay (from a job's last result finishing at the emulator to the job service recording its end, in
compressed seconds and as a share of the render). The job service, the webhook receiver (served by
uvicorn on loopback, as ``kling-mcp --http`` serves it) and the emulator all run in this process; the
safety-net poll keeps its default, 120 s, compressed alike.
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

import anyio  # noqa: E402
import uvicorn  # noqa: E402

from kling_mcp.core import prepare  # noqa: E402
from kling_mcp.emulator import run_emulator  # noqa: E402
from kling_mcp.jobs import JobService  # noqa: E402
from kling_mcp.ledger import Ledger  # noqa: E402
from kling_mcp.payload import VideoRequest  # noqa: E402
from kling_mcp.runware import RunwareClient  # noqa: E402
from kling_mcp.settings import Settings  # noqa: E402
from kling_mcp.webhooks import WebhookIssuer, WebhookReceiver  # noqa: E402

KEY = "bench-key"
SCALE = 0.05
SAFETY_POLL_S = Settings.model_fields["safety_poll_s"].default


async def run(n: int, webhooks: bool, folder: Path) -> dict[str, float]:
    async with run_emulator(api_key=KEY, job_seconds=(30.0, 90.0), time_scale=SCALE, seed=n) as emu:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.bind(("127.0.0.1", 0))
        sock.listen(256)
        sock.setblocking(False)
        public_url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        ledger = Ledger(folder / f"bench-{n}-{webhooks}.sqlite3")
        client = RunwareClient(KEY, emu.url)
        # Compressed alike: the gaps, the safety net and the schedule's starting window (Kling's 30-90 s).
        jobs = JobService(client, ledger, poll_initial_s=2.0 * SCALE, poll_max_s=30.0 * SCALE,
                          default_render_s=(30.0 * SCALE, 90.0 * SCALE),
                          safety_poll_s=SAFETY_POLL_S * SCALE if webhooks else None)  # fmt: skip
        receiver = WebhookReceiver(lambda: jobs, None)
        server = uvicorn.Server(uvicorn.Config(receiver, lifespan="off", log_level="warning", loop="asyncio"))
        serving = asyncio.create_task(server.serve(sockets=[sock]))
        issuer = WebhookIssuer(public_url, ledger)
        request = VideoRequest(model="o3-standard", prompt="A fox runs through snow", aspect_ratio="16:9", duration=5)
        try:
            async with anyio.create_task_group() as tg:
                await jobs.start(tg)
                ids = []
                for _ in range(n):
                    prepared = prepare(request)
                    if webhooks:
                        prepared = replace(prepared, payload=await issuer.attach(prepared.payload))
                    ids.append((await jobs.submit(prepared, "text_to_video")).task_uuid)
                async with anyio.create_task_group() as waits:
                    for task_id in ids:
                        waits.start_soon(jobs.wait, task_id, 600)
                tg.cancel_scope.cancel()
            ok = sum(ledger.get(i).status == "success" for i in ids)  # type: ignore[union-attr]
            delays, shares = [], []
            for task_id in ids:
                job = emu._jobs[task_id]  # the emulator's own finish times, on the same monotonic clock
                ended = max(r.finish_at for r in job.results)
                delays.append(jobs.finished_at[task_id] - ended)
                shares.append(delays[-1] / (ended - job.submitted_at))
            return {
                "ok": ok, "routine_polls": emu.stats.requests_by_task_type["getResponse"],
                "requests_per_video": emu.stats.http_requests / n, "webhooks": receiver.stats.accepted,
                "delay_median": statistics.median(delays), "delay_max": max(delays), "share_max": max(shares),
            }  # fmt: skip
        finally:
            server.should_exit = True
            await serving
            sock.close()
            await client.aclose()
            ledger.close()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, nargs="+", default=[1, 10, 50])
    args = parser.parse_args()
    print(f"renders 30-90 s x {SCALE}; safety-net poll {SAFETY_POLL_S:g} s x {SCALE}; delays in compressed seconds")
    print(f"{'mode':9} {'jobs':>4} {'ok':>4} {'routine polls':>13} {'requests/video':>14} {'webhooks':>8} "
          f"{'delay median':>12} {'delay max':>9} {'max % of render':>15}")  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        for n in args.jobs:
            for webhooks in (True, False):
                started = time.monotonic()
                r = await run(n, webhooks, Path(tmp))
                print(f"{'webhooks' if webhooks else 'polling':9} {n:>4} {r['ok']:>4} {r['routine_polls']:>13} "
                      f"{r['requests_per_video']:>14.2f} {r['webhooks']:>8} {r['delay_median']:>12.3f} "
                      f"{r['delay_max']:>9.3f} {100 * r['share_max']:>14.1f}%  ({time.monotonic() - started:.1f} s)")  # fmt: skip
    print("goal: 0 routine polls in webhook mode")


if __name__ == "__main__":
    asyncio.run(main())
