"""Three `kling-mcp --http` instances sharing one PostgreSQL ledger, as behind a load balancer.

Each instance talks to its own emulator front-end; the three share one job store, so they are one
Runware that records which instance sent each request, and when. Needs PostgreSQL
(KLING_MCP_TEST_DATABASE_URL): skipped without it locally, failed without it in CI.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections import defaultdict
from contextlib import AsyncExitStack
from decimal import ROUND_FLOOR, Decimal
from pathlib import Path
from typing import Any

import anyio
from mcp import Client

from kling_mcp.core import prepare
from kling_mcp.emulator import Emulator, run_emulator
from kling_mcp.ledger import TERMINAL, Ledger
from kling_mcp.payload import VideoRequest

from .helpers import KEY

SCRIPT = Path(sys.executable).parent / "kling-mcp"
INSTANCES = 3
SUBMISSIONS = 60
ADMITTED = 40  # the daily cap is set to admit this many
LEASE_S = 3.0  # short leases, so that the dead instance's jobs are taken over within 4 s
ARGS = {"model": "klingai:kling-video@o3-standard", "prompt": "A fox runs through snow at dawn", "duration": 5,
        "aspect_ratio": "16:9"}  # fmt: skip


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _record_requests(emu: Emulator, name: str, log: list[tuple[float, str, dict[str, Any]]]) -> None:
    """Keep every task the emulator receives with its time and the instance that sent it."""
    record = emu.record

    def recording(body: Any) -> set[str]:
        now = time.monotonic()
        for task in body if isinstance(body, list) else [body]:
            if isinstance(task, dict):
                log.append((now, name, task))
        return record(body)

    emu.record = recording  # type: ignore[method-assign]


def _start(port: int, env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen([str(SCRIPT), "--http", "--port", str(port)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)  # fmt: skip


async def _until_serving(port: int, proc: subprocess.Popen[bytes]) -> None:
    with anyio.fail_after(30):
        while True:
            assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else "exited"
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                return
            except OSError:
                await anyio.sleep(0.1)


async def test_three_instances_share_caps_polls_and_a_dead_instances_jobs(postgres_url: str, tmp_path: Path) -> None:
    reserve = prepare(VideoRequest.model_validate({**ARGS, "model": "o3-standard"})).estimate.reserve  # type: ignore[union-attr]
    cap = (reserve * ADMITTED + reserve / 2).quantize(Decimal("0.01"), ROUND_FLOOR)
    requests: list[tuple[float, str, dict[str, Any]]] = []
    procs: list[subprocess.Popen[bytes]] = []
    async with AsyncExitStack() as stack:
        emulators = []
        for i in range(INSTANCES):
            emu = await stack.enter_async_context(run_emulator(
                api_key=KEY, job_seconds=(4.0, 8.0), seed=i + 1, store_path=tmp_path / "runware.sqlite3"))  # fmt: skip
            _record_requests(emu, f"instance-{i}", requests)
            emulators.append(emu)
        ports = [_free_port() for _ in range(INSTANCES)]
        for i, (emu, port) in enumerate(zip(emulators, ports, strict=True)):
            env = {
                "PATH": os.environ.get("PATH", ""), "RUNWARE_API_KEY": KEY, "RUNWARE_BASE_URL": emu.url,
                "KLING_MCP_DATABASE_URL": postgres_url, "KLING_MCP_DATA_DIR": str(tmp_path / f"data-{i}"),
                "KLING_MCP_OUTPUT_DIR": str(tmp_path / f"out-{i}"), "KLING_MCP_DAILY_CAP_USD": str(cap),
                "KLING_MCP_POLL_LEASE": str(LEASE_S), "KLING_MCP_POLL_INITIAL": "0.2", "KLING_MCP_POLL_MAX": "1.0",
            }  # fmt: skip
            procs.append(_start(port, env))
        try:
            for port, proc in zip(ports, procs, strict=True):
                await _until_serving(port, proc)
            clients = [await stack.enter_async_context(Client(f"http://127.0.0.1:{port}/mcp")) for port in ports]

            # 60 concurrent submissions, spread over the three instances.
            answers: list[tuple[int, dict[str, Any], bool]] = []

            async def submit(n: int) -> None:
                result = await clients[n % INSTANCES].call_tool("text_to_video", ARGS)
                answers.append((n % INSTANCES, result.structured_content or {}, bool(result.is_error)))

            with anyio.fail_after(60):
                async with anyio.create_task_group() as tg:
                    for n in range(SUBMISSIONS):
                        tg.start_soon(submit, n)
            accepted = [(i, a["task_id"]) for i, a, error in answers if not error]
            refused = [a for _, a, error in answers if error]
            assert len(accepted) == ADMITTED and len(refused) == SUBMISSIONS - ADMITTED
            assert all("spend cap" in str(a).lower() for a in refused)

            # kill -9 one instance with its jobs still rendering (4-8 s).
            await anyio.sleep(1.0)
            killed_at = time.monotonic()
            procs[0].send_signal(signal.SIGKILL)
            procs[0].wait(10)
            survivors = clients[1:]

            # Every accepted job, whichever instance took it, ends: waited for on the survivors.
            final: dict[str, dict[str, Any]] = {}

            async def wait(k: int, task_id: str) -> None:
                while True:
                    job = (await survivors[k % 2].call_tool(
                        "wait_for_video", {"task_id": task_id, "timeout_seconds": 20})).structured_content  # fmt: skip
                    assert job is not None
                    if not job.get("timed_out"):
                        final[task_id] = job
                        return

            with anyio.fail_after(60):
                async with anyio.create_task_group() as tg:
                    for k, (_, task_id) in enumerate(accepted):
                        tg.start_soon(wait, k, task_id)
            await stack.aclose()  # the clients, then the emulators
        finally:
            for proc in procs:
                if proc.poll() is None:
                    proc.terminate()
                    proc.wait(10)

    assert {t: j["status"] for t, j in final.items()} == {t: "success" for _, t in accepted}
    ledger = Ledger(postgres_url)
    try:
        jobs = ledger.get_many([t for _, t in accepted])
        assert all(job.status in TERMINAL for job in jobs.values()) and len(jobs) == ADMITTED
        assert ledger.committed_usd() <= cap  # the cap held across instances, with real costs in
    finally:
        ledger.close()

    sent: dict[str, int] = defaultdict(int)
    polled: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for at, instance, task in requests:
        if task.get("taskType") == "videoInference":
            sent[task["taskUUID"]] += 1
        elif task.get("taskType") == "getResponse":
            polled[task["taskUUID"]][instance].append(at)
    assert sent == {t: 1 for _, t in accepted}  # each task submitted once, by one instance
    killed_jobs = [t for i, t in accepted if i == 0]
    assert killed_jobs, "the killed instance had taken none of the submissions"
    taken_over = 0
    for task_id, by_instance in polled.items():
        spans = sorted((min(times), max(times), name) for name, times in by_instance.items())
        for (_, end, first), (start, _, second) in zip(spans, spans[1:]):
            # One poller at a time: another instance starts only after the first stopped, and only by
            # taking over the killed instance's lease.
            assert end < start and first == "instance-0", (task_id, spans)
            assert start >= killed_at, (task_id, spans)
            taken_over += 1
    assert taken_over > 0  # the dead instance's jobs were finished by the others
