"""The poll schedule, the polling leases and the waiters' watch, against the emulator on loopback.

Times are compressed: the schedule's default render window is set to the emulator's job times,
as Kling's 30-90 s are in production.
"""

from __future__ import annotations

import time
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any

import anyio

from kling_mcp.emulator import Emulator, run_emulator
from kling_mcp.jobs import JobService
from kling_mcp._poll_schedule import RenderWindow, first_poll_at, is_probe
from kling_mcp.ledger import JobRecord, Ledger

from .helpers import KEY, job_service, request


def _polls_of(emu: Emulator) -> dict[str, list[float]]:
    """From now on, when each task is named in a getResponse."""
    polls: dict[str, list[float]] = {}
    record = emu.record

    def recording(body: Any) -> set[str]:
        for task in body if isinstance(body, list) else []:
            if isinstance(task, dict) and task.get("taskType") == "getResponse":
                polls.setdefault(task["taskUUID"], []).append(time.monotonic())
        return record(body)

    emu.record = recording  # type: ignore[method-assign]
    return polls


def service(url: str, location: Path | str, **kw: Any) -> AbstractAsyncContextManager[JobService]:
    options: dict[str, Any] = {"poll_initial_s": 0.05, "poll_max_s": 2.0, "default_render_s": (1.0, 2.0)} | kw
    return job_service(url, location, service_options=options)


async def test_a_lone_job_is_first_polled_near_the_shortest_render_and_costs_few_polls(
    ledger_at: Path | str,
) -> None:
    async with run_emulator(api_key=KEY, job_seconds=(1.0, 2.0), seed=3) as emu:
        polls = _polls_of(emu)
        async with service(emu.url, ledger_at) as jobs:
            sent = time.monotonic()
            job = await jobs.submit(request(), "text_to_video")
            done, ended = await jobs.wait(job.task_uuid, 10)
            noticed = time.monotonic()
    assert ended and done is not None and done.status == "success"
    times = polls[job.task_uuid]
    # Nothing asked before the model's shortest render (a probe, one job in 8, looks a little earlier).
    assert times[0] - sent >= 0.9 * first_poll_at(RenderWindow.default((1.0, 2.0)), probe=is_probe(job.task_uuid))
    assert len(times) <= 8  # the old schedule (2 s backing off to 10 s, compressed alike) took about 12
    rendered = max(r.finish_at for r in emu._jobs[job.task_uuid].results) - sent  # noqa: SLF001
    assert noticed - sent - rendered <= 0.2 * rendered + 0.2  # noticed soon after it ended
    # What the schedule learns from it: when it was last seen rendering (unknown if the first poll found it
    # ended), and when its end was noticed.
    ledger = Ledger(ledger_at)
    [sample] = ledger.render_samples()[done.model]
    ledger.close()
    assert (sample.seen_running_s is None) == (len(times) == 1)
    assert sample.seen_running_s is None or sample.seen_running_s < rendered <= sample.noticed_s


async def test_the_schedule_follows_a_models_recorded_render_times(ledger_at: Path | str) -> None:
    # The ledger's history: this model's last jobs took 0.3-0.4 s from acknowledgement to their end.
    ledger = Ledger(ledger_at)
    now = time.time()
    for n in range(6):
        past = _record(ledger, request())
        ledger.update(past.task_uuid, status="success", submitted_at=now - 5, finished_at=now - 5 + 0.3 + n / 50)
    ledger.close()
    async with run_emulator(api_key=KEY, job_seconds=(0.3, 0.4), seed=4) as emu:
        polls = _polls_of(emu)
        async with service(emu.url, ledger_at) as jobs:  # the default window says 1-2 s
            sent = time.monotonic()
            job = await jobs.submit(request(), "text_to_video")
            done, ended = await jobs.wait(job.task_uuid, 10)
            noticed = time.monotonic()
    assert ended and done is not None and done.status == "success"
    assert 0.15 <= polls[job.task_uuid][0] - sent < 0.5  # near the recorded shortest, well before the default's
    assert noticed - sent < 0.9


def _record(ledger: Ledger, prepared: Any) -> JobRecord:
    return ledger.record_new(JobRecord(
        task_uuid=prepared.payload["taskUUID"], model=prepared.payload["model"], tool="text_to_video",
        status="pending", payload=prepared.payload, reserve_usd=prepared.estimate.reserve, number_results=1,
    ))  # fmt: skip


async def test_a_new_submission_does_not_reset_the_schedule_of_running_jobs(tmp_path: Path) -> None:
    async def first_polls(more: int) -> tuple[float, int]:
        """When a job is first polled after it was sent, and how often, with ``more`` sent during its render."""
        async with run_emulator(api_key=KEY, job_seconds=(2.0, 2.0), seed=5) as emu:
            polls = _polls_of(emu)
            async with service(emu.url, tmp_path / f"l{more}.db") as jobs:
                sent = time.monotonic()
                first = await jobs.submit(request(), "text_to_video")
                for _ in range(more):
                    await anyio.sleep(0.25)
                    await jobs.submit(request(), "text_to_video")
                assert (await jobs.wait(first.task_uuid, 10))[1]
            # A probe (one job in 8, by its taskUUID) looks earlier than the others, by design.
            expected = first_poll_at(RenderWindow.default((1.0, 2.0)), probe=is_probe(first.task_uuid))
            return (polls[first.task_uuid][0] - sent) / expected, len(polls[first.task_uuid])

    (alone_first, alone), (first, among_others) = await first_polls(0), await first_polls(6)
    # Each submission used to send the poller back to its shortest interval, polling every job at once.
    assert alone_first >= 0.85 and first >= 0.85, (alone_first, first)
    # Other jobs' polls may carry it along (in the same request, none added), more often; a schedule reset
    # by each submission would poll it at the floor, 0.05 s, some 18 times between 1.1 s and 2 s.
    assert among_others <= 2 * alone, (alone, among_others)


async def test_one_instance_polls_a_job_and_another_waits_for_it_through_the_ledger(ledger_at: Path | str) -> None:
    async with run_emulator(api_key=KEY, job_seconds=(0.5, 0.8), seed=6) as emu:
        async with service(emu.url, ledger_at) as first, service(emu.url, ledger_at) as second:
            job = await first.submit(request(), "text_to_video")
            done, ended = await second.wait(job.task_uuid, 10)
            finished = max(r.finish_at for r in emu._jobs[job.task_uuid].results)  # noqa: SLF001
            noticed = time.monotonic()
            status = (await second.refresh([job.task_uuid]))[job.task_uuid]
    assert ended and done is not None and done.status == "success" and status == done
    assert first.polls_sent >= 1 and second.polls_sent == 0  # the lease holder polls; the other only reads
    assert noticed - finished < 1.5  # learnt through the ledger watch, not a lease later


def test_a_lease_is_held_by_one_instance_until_its_heartbeat_stops(ledger_at: Path | str) -> None:
    ledger = Ledger(ledger_at)
    try:
        record = _record(ledger, request())
        now = time.time()
        assert [lease.task_uuid for lease in ledger.claim_polls("a", lease_s=10, now=now)] == [record.task_uuid]
        assert ledger.claim_polls("b", lease_s=10, now=now + 5) == []  # a's heartbeat is 5 s old: a keeps it
        assert len(ledger.claim_polls("a", lease_s=10, now=now + 9)) == 1  # a's heartbeat
        assert ledger.claim_polls("b", lease_s=10, now=now + 18) == []
        taken = ledger.claim_polls("b", lease_s=10, now=now + 20)  # a silent for 11 s: taken over
        assert [lease.task_uuid for lease in taken] == [record.task_uuid]
        assert ledger.claim_polls("a", lease_s=10, now=now + 21) == []  # a, back, does not get it back
        assert ledger.release_leases("b") == 1 and len(ledger.claim_polls("a", lease_s=10, now=now + 22)) == 1
        ledger.update(record.task_uuid, status="success", finished_at=now)
        assert ledger.claim_polls("a", lease_s=10, now=now + 23) == []  # an ended job is nobody's
    finally:
        ledger.close()


async def test_with_webhooks_an_acknowledged_job_ends_by_its_delivery_without_routine_polls(tmp_path: Path) -> None:
    from kling_mcp.emulator._jobs import poll as items_of
    from kling_mcp.runware import TaskUpdate

    async with run_emulator(api_key=KEY, job_seconds=(0.3, 0.3), seed=8) as emu:
        polls = _polls_of(emu)
        async with service(emu.url, tmp_path / "l.db", safety_poll_s=60.0) as jobs:
            job = await jobs.submit(request(), "text_to_video")
            waiting = anyio.Event()
            ended: list[Any] = []

            async def wait() -> None:
                waiting.set()
                ended.append(await jobs.wait(job.task_uuid, 10))

            async with anyio.create_task_group() as tg:
                tg.start_soon(wait)
                await waiting.wait()
                await anyio.sleep(1.5)  # ended at the emulator long since: no poll came for it
                assert job.task_uuid not in polls
                # What Runware's webhook delivers: the same items a poll would return.
                items, _ = items_of(emu._jobs[job.task_uuid], now=time.monotonic() + 3600, base_url=emu.url)  # noqa: SLF001
                record = await jobs.apply_update(job.task_uuid, TaskUpdate(items=items))
    assert record is not None and record.status == "success" and record.results
    (done, finished) = ended[0]
    assert finished and done == record
    assert job.task_uuid not in polls  # no routine poll: the delivery ended it


async def test_a_tick_moves_rendering_jobs_without_reading_them_and_never_over_another_instances_write(
    ledger_at: Path | str,
) -> None:
    async with run_emulator(api_key=KEY, job_seconds=(4.0, 4.0), seed=9) as emu:
        polls = _polls_of(emu)
        async with service(emu.url, ledger_at, poll_max_s=0.15, default_render_s=(0.05, 0.1)) as jobs:
            sent = [await jobs.submit(request(), "text_to_video") for _ in range(3)]
            ids = {job.task_uuid for job in sent}
            read: list[str] = []
            reads = jobs.ledger.poll_states
            jobs.ledger.poll_states = lambda wanted: read.extend(wanted) or reads(wanted)  # type: ignore[method-assign]
            with anyio.fail_after(5):
                while {j.status for j in jobs.ledger.get_many(ids).values()} != {"processing"}:
                    await anyio.sleep(0.05)
            await anyio.sleep(0.3)
            read.clear()
            before = {u: j.progress for u, j in jobs.ledger.get_many(ids).items()}
            await anyio.sleep(1.0)
            after = jobs.ledger.get_many(ids)
            # Polled all along, their progress written as the emulator reports it, and not one read back.
            assert all(after[u].progress > before[u] for u in ids), (before, after)
            assert not set(read) & ids, read
            # Another instance ends one (a webhook delivered there): this one's next look at it reads it afresh.
            ended = sent[0].task_uuid
            other = Ledger(ledger_at)
            try:
                other.update(ended, status="success", finished_at=time.time(), progress=100,
                             results=[{"video_uuid": "v-1", "video_url": "https://x/v.mp4", "cost_usd": 0.1}])  # fmt: skip
            finally:
                other.close()
            polled_then = len(polls[ended])
            await anyio.sleep(1.0)
            job = jobs.ledger.get(ended)
    assert job is not None and job.status == "success" and job.progress == 100 and len(job.results) == 1
    assert ended in read and ended not in jobs.polled_here
    assert len(polls[ended]) <= polled_then + 1  # looked at once more at most, then left to the instance that ended it


async def test_on_postgresql_a_waiter_elsewhere_is_told_of_an_end_as_it_commits(postgres_url: str, postgres_dsn: str) -> None:
    import psycopg

    async with run_emulator(api_key=KEY, job_seconds=(0.6, 0.6), seed=10) as emu:
        # The other instance's safety read of the ledger comes every 30 s: only the change feed can tell it sooner.
        async with service(emu.url, postgres_url) as poller, service(emu.url, postgres_url, watch_interval_s=30.0) as waiter:
            with anyio.fail_after(5):
                while not waiter._listening:  # noqa: SLF001 - the feed connects in the background
                    await anyio.sleep(0.02)
            job = await poller.submit(request(), "text_to_video")
            done, ended = await waiter.wait(job.task_uuid, 10)
            told_after = time.monotonic() - poller.finished_at[job.task_uuid]
            assert ended and done is not None and done.status == "success" and told_after < 0.5, told_after

            # Its listening connection dropped (a database restart, a proxy's idle timeout): an end written while
            # no one listened is still learnt, once the feed is back.
            second = await poller.submit(request(), "text_to_video")
            listen = f'LISTEN "{waiter.ledger._engine.channel}"'  # noqa: SLF001 - this ledger's listeners alone
            with psycopg.connect(postgres_dsn, autocommit=True) as admin:
                ended = admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query = %s",
                                      (listen,)).fetchall()  # fmt: skip
            assert ended
            done, ended = await waiter.wait(second.task_uuid, 10)
    assert ended and done is not None and done.status == "success"
