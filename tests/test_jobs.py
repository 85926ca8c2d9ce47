"""The Runware client and job lifecycle against the emulator over real loopback HTTP."""

from __future__ import annotations

import os
import sys
import textwrap
import threading
from decimal import Decimal
from pathlib import Path

import httpx
import pytest

from kling_mcp.emulator import Fault, run_emulator
from kling_mcp.jobs import Caps, MissingApiKey
from kling_mcp.ledger import JobRecord, Ledger, SpendCapExceeded

from .helpers import KEY, job_service, request, usd



@pytest.fixture
async def emu():
    async with run_emulator(api_key=KEY, job_seconds=(0.2, 0.5), seed=7) as emulator:
        yield emulator


async def test_a_job_runs_to_success_with_the_estimated_cost(emu, ledger_at: Path | str) -> None:
    async with job_service(emu.url, ledger_at) as jobs:
        prepared = request()
        job = await jobs.submit(prepared, "text_to_video")
        assert job.status == "submitted"
        done, ended = await jobs.wait(job.task_uuid, 10)
    assert ended and done is not None and done.status == "success"
    assert usd(done.cost_usd) == prepared.estimate.total == Decimal("0.896")
    [result] = done.results
    async with httpx.AsyncClient() as http:
        assert (await http.get(result["video_url"])).content[4:8] == b"ftyp"
    assert emu.stats.accepted[job.task_uuid] == 1


async def test_several_results_are_merged_as_they_finish(emu, ledger_at: Path | str) -> None:
    async with job_service(emu.url, ledger_at) as jobs:
        job = await jobs.submit(request(number_results=3), "text_to_video")
        done, _ = await jobs.wait(job.task_uuid, 10)
    assert done.status == "success" and len(done.results) == 3
    assert len({r["video_uuid"] for r in done.results}) == 3
    assert usd(done.cost_usd) == Decimal("0.896") * 3


SUBMIT_FAULTS = [
    Fault("http_429", retry_after=0.2, task_type="videoInference"),
    Fault("http_500", task_type="videoInference"),
    Fault("http_503", task_type="videoInference"),
    Fault("http_504", task_type="videoInference"),
    Fault("drop_after_read", task_type="videoInference"),
    Fault("malformed_json", task_type="videoInference"),
    Fault("slow", delay=0.5, task_type="videoInference"),
    Fault("http_503", times=3, task_type="getResponse"),
    Fault("drop_after_read", times=2, task_type="getResponse"),
    Fault("malformed_json", times=2, task_type="getResponse"),
]


@pytest.mark.parametrize("fault", SUBMIT_FAULTS, ids=lambda f: f"{f.kind}-{f.task_type}")
async def test_transient_faults_lose_nothing_and_never_double_submit(emu, tmp_path: Path, fault: Fault) -> None:
    emu.add_fault(fault)
    async with job_service(emu.url, tmp_path / "l.db") as jobs:
        job = await jobs.submit(request(), "text_to_video")
        assert job.status in ("submitted", "unknown")
        done, ended = await jobs.wait(job.task_uuid, 15)
    assert ended and done.status == "success", done
    assert emu.stats.submissions[job.task_uuid] == 1, "a paid task reached the service twice"
    assert emu.stats.accepted[job.task_uuid] == 1


async def test_a_timeout_after_sending_returns_the_job_and_charges_once(emu, ledger_at: Path | str) -> None:
    emu.add_fault(Fault("slow", delay=1.5, task_type="videoInference"))
    async with job_service(emu.url, ledger_at, timeout=0.5) as jobs:
        job = await jobs.submit(request(), "text_to_video")
        assert job.task_uuid  # the caller always gets the id
        done, ended = await jobs.wait(job.task_uuid, 15)
    assert ended and done.status == "success"
    assert emu.stats.accepted[job.task_uuid] == 1


@pytest.mark.parametrize(("kind", "category"), [("http_401", "auth"), ("http_402", "balance")])
async def test_auth_and_balance_refusals_are_final_and_clear(emu, ledger_at: Path | str, kind: str, category: str) -> None:
    emu.add_fault(Fault(kind))
    async with job_service(emu.url, ledger_at) as jobs:
        job = await jobs.submit(request(), "text_to_video")
    assert job.status == "rejected"
    assert job.errors[0]["category"] == category and job.errors[0]["next_step"]
    assert emu.stats.accepted[job.task_uuid] == 0


@pytest.mark.parametrize(("kind", "category"), [("job_failure", "provider_failure"), ("content_policy", "content_policy")])
async def test_failed_jobs_end_with_the_providers_reason(emu, ledger_at: Path | str, kind: str, category: str) -> None:
    emu.add_fault(Fault(kind))
    async with job_service(emu.url, ledger_at) as jobs:
        job = await jobs.submit(request(), "text_to_video")
        done, ended = await jobs.wait(job.task_uuid, 10)
    assert ended and done.status == "failed"
    assert done.errors[0]["category"] == category and done.errors[0]["message"]


async def test_a_wrong_key_is_reported_as_auth(emu, tmp_path: Path) -> None:
    async with job_service(emu.url, tmp_path / "l.db", key="wrong-key") as jobs:
        job = await jobs.submit(request(), "text_to_video")
    assert job.status == "rejected" and job.errors[0]["category"] == "auth"


async def test_no_key_means_nothing_is_recorded_or_sent(emu, ledger_at: Path | str) -> None:
    async with job_service(emu.url, ledger_at, key=None) as jobs:
        with pytest.raises(MissingApiKey, match="RUNWARE_API_KEY"):
            await jobs.submit(request(), "text_to_video")
        assert jobs.ledger.recent() == []
    assert emu.stats.http_requests == 0


async def test_all_jobs_are_polled_in_one_request_per_tick(emu, ledger_at: Path | str) -> None:
    async with job_service(emu.url, ledger_at) as jobs:
        submitted = [await jobs.submit(request(), "text_to_video") for _ in range(8)]
        for job in submitted:
            done, _ = await jobs.wait(job.task_uuid, 10)
            assert done.status == "success"
        polls = jobs.polls_sent
    assert emu.stats.requests_by_task_type["getResponse"] == polls
    get_response_tasks = sum(1 for t in emu.stats.tasks if isinstance(t, dict) and t.get("taskType") == "getResponse")
    assert get_response_tasks > polls  # several jobs per request


async def test_spend_cap_refuses_before_sending_and_says_why(emu, ledger_at: Path | str) -> None:
    async with job_service(emu.url, ledger_at, caps=Caps(daily_usd=Decimal("1.50"))) as jobs:
        first = await jobs.submit(request(), "text_to_video")
        with pytest.raises(SpendCapExceeded) as refused:
            await jobs.submit(request(), "text_to_video")
    message = str(refused.value)
    assert "$1.50" in message and "$0.896" in message and "daily" in message
    assert list(emu.stats.accepted) == [first.task_uuid]


def test_concurrent_writers_respect_the_cap_and_lose_nothing(ledger_at: Path | str) -> None:
    path = ledger_at
    ledgers = [Ledger(path) for _ in range(4)]
    accepted, refused = [], []

    def writer(ledger: Ledger, n: int) -> None:
        for i in range(25):
            job = JobRecord(f"{n}-{i}", "m", "t", "pending", {}, Decimal("1"), 1)
            try:
                ledger.record_new(job, total_cap=Decimal("60"))
                accepted.append(job.task_uuid)
            except SpendCapExceeded:
                refused.append(job.task_uuid)

    threads = [threading.Thread(target=writer, args=(ledger, n)) for n, ledger in enumerate(ledgers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(accepted) == 60 and len(refused) == 40
    assert {j.task_uuid for j in Ledger(path).recent(1000)} == set(accepted)


RESUME_SCRIPT = textwrap.dedent(
    """
    import anyio, sys
    from pathlib import Path
    sys.path.insert(0, {tests!r})
    from helpers import job_service, request

    async def main():
        location = {db!r}
        async with job_service({url!r}, location if location.startswith("postgresql://") else Path(location)) as jobs:
            job = await jobs.submit(request(), "text_to_video")
            print(job.task_uuid, flush=True)
        # the process ends here, with the job still rendering

    anyio.run(main)
    """
)


async def test_a_new_process_on_the_same_ledger_finishes_the_job(emu, ledger_at: Path | str) -> None:
    emu_slow = emu  # jobs take 0.2-0.5 s; the first process exits long before
    db = ledger_at
    script = RESUME_SCRIPT.format(tests=str(Path(__file__).parent), url=emu_slow.url, db=str(db))
    proc = await __import__("anyio").run_process([sys.executable, "-c", script], env={**os.environ})
    task_uuid = proc.stdout.decode().strip()
    assert Ledger(db).get(task_uuid).status in ("submitted", "processing")
    async with job_service(emu.url, db) as jobs:
        done, ended = await jobs.wait(task_uuid, 10)
    assert ended and done.status == "success" and done.results
    assert emu.stats.accepted[task_uuid] == 1


async def test_the_api_key_never_appears_anywhere(
    emu, ledger_at: Path | str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("DEBUG")
    emu.add_fault(Fault("http_500", task_type="videoInference"))
    emu.add_fault(Fault("job_failure"))
    async with job_service(emu.url, ledger_at) as jobs:
        failing = await jobs.submit(request(), "text_to_video")
        ok = await jobs.submit(request(), "text_to_video")
        texts = [repr(await jobs.wait(j.task_uuid, 10)) for j in (failing, ok)]
        texts.append(repr(jobs.client.__dict__.get("base_url")))
        texts.append(repr(jobs.ledger.recent(100)))
    texts += [r.getMessage() for r in caplog.records]
    assert KEY not in "\n".join(texts)
    for f in tmp_path.rglob("*"):
        assert f.is_dir() or KEY.encode() not in f.read_bytes(), f
