"""200 submissions against an emulator that injects a random mix of faults: when everything settles,
the ledger's truth must equal the emulator's (what it billed, what it never received)."""

from __future__ import annotations

from collections import Counter
from decimal import Decimal
from pathlib import Path

import anyio
import pytest

from kling_mcp.emulator import Fault, run_emulator
from kling_mcp.ledger import TERMINAL

from .helpers import KEY, job_service, request

SUBMISSIONS = 200
AT_ONCE = 25
DEADLINE = 1.0  # the client's overall deadline per exchange: "slow" and "trickle" exceed it
STORM_AFTER_SUBMITTING = 3.0

FAULT_MIX = [
    # Submissions: dropped before and after they were read, capacity storms, odd 200 shapes.
    Fault("drop_before_read", probability=0.05, task_type="videoInference"),
    Fault("drop_after_read", probability=0.05, task_type="videoInference"),
    Fault("http_429", probability=0.10, retry_after=0.05, task_type="videoInference"),
    Fault("errors_not_list", probability=0.04, task_type="videoInference"),
    Fault("data_not_list", probability=0.03, task_type="videoInference"),
    Fault("stray_error", probability=0.05, task_type="videoInference"),
    # Polls and look-ups: stray errors naming no task, bare 400s, unreadable answers.
    Fault("stray_error", probability=0.10, task_type="getResponse"),
    Fault("http_400_bare", probability=0.03, task_type="getResponse"),
    Fault("task_throttled", probability=0.05, task_type="getResponse"),
    # Anything: 5xx storms, cut-off JSON, slow and trickling answers.
    Fault("http_503", probability=0.05),
    Fault("http_500", probability=0.03),
    Fault("not_an_object", probability=0.02),
    Fault("malformed_json", probability=0.03),
    Fault("slow", probability=0.03, delay=1.5),
    Fault("trickle", probability=0.02, delay=0.05),
    # How accepted jobs end.
    Fault("job_failure", probability=0.05),
    Fault("content_policy", probability=0.03),
    Fault("no_video", probability=0.03),
]


@pytest.mark.filterwarnings("ignore")
async def test_the_ledger_agrees_with_the_emulator_after_200_submissions_under_random_faults(tmp_path: Path) -> None:
    async with run_emulator(api_key=KEY, job_seconds=(0.1, 0.4), seed=2026) as emu:
        for fault in FAULT_MIX:
            emu.add_fault(fault)
        # Two tries per submit, so that some submissions stay "unknown" and the poller must settle them.
        async with job_service(emu.url, tmp_path / "ledger.db", timeout=DEADLINE, retry_timeout=30.0,
                               submit_attempts=2) as jobs:  # fmt: skip
            jobs.resend_interval_s = 0.5
            limiter = anyio.CapacityLimiter(AT_ONCE)
            first_answers: Counter[str] = Counter()
            task_uuids: list[str] = []

            async def submit_one(index: int) -> None:
                async with limiter:
                    with anyio.fail_after(jobs.submit_deadline_s + 5):  # no submission held past its deadline
                        job = await jobs.submit(request(number_results=1 + index % 2), "text_to_video")
                task_uuids.append(job.task_uuid)
                first_answers[job.status] += 1

            with anyio.fail_after(120):
                async with anyio.create_task_group() as tg:
                    for i in range(SUBMISSIONS):
                        tg.start_soon(submit_one, i)
            await anyio.sleep(STORM_AFTER_SUBMITTING)  # the poller works through the storm too
            fired = Counter(emu.stats.faults_fired)
            # The storm passes (as storms do); everything still open must now settle by itself.
            emu.clear_faults()
            with anyio.fail_after(90):
                for task_uuid in task_uuids:
                    _, ended = await jobs.wait(task_uuid, 60)
                    assert ended, jobs.ledger.get(task_uuid)
            ledger = {u: jobs.ledger.get(u) for u in task_uuids}
            committed = jobs.ledger.committed_usd()
            resends = jobs.resends
        billed = emu.billed()
        stats = emu.stats

    outcomes: Counter[str] = Counter(j.status for j in ledger.values())
    cost_by_status: dict[str, Decimal] = {}
    for job in ledger.values():
        cost_by_status[job.status] = cost_by_status.get(job.status, Decimal(0)) + Decimal(str(job.cost_usd or 0))
    print(f"\nfaults fired during the run ({sum(fired.values())}):")
    for kind, count in sorted(fired.items(), key=lambda kv: -kv[1]):
        print(f"  {kind:<18} {count:>5}")
    print("first answer to each submit:", dict(first_answers))
    print(f"{'final status':<14} {'jobs':>5} {'ledger $':>10}")
    for status, count in sorted(outcomes.items()):
        print(f"{status:<14} {count:>5} {cost_by_status[status]:>10.3f}")
    print(f"re-sent after Runware's record showed them never received: {resends}; HTTP requests: {stats.http_requests}; "
          f"billed by the emulator: ${sum(billed.values()):.3f} for {len(billed)} jobs; ledger committed: ${committed}")

    assert len(ledger) == SUBMISSIONS and all(j is not None and j.status in TERMINAL for j in ledger.values())
    # No task was accepted (so billed) twice.
    assert all(count == 1 for count in stats.accepted.values()), [u for u, c in stats.accepted.items() if c > 1]
    # Every task the emulator billed is in the ledger at its billed cost, and never as "rejected".
    for task_uuid, cost in billed.items():
        job = ledger[task_uuid]
        assert job.status != "rejected" and abs((job.cost_usd or 0) - cost) < 1e-6, (job, cost)
    # Every job the emulator never received was re-sent (and so received) or ended as not received.
    never_received = [u for u in task_uuids if u not in stats.accepted]
    assert all(ledger[u].status == "rejected" and not ledger[u].cost_usd for u in never_received)
    # Nothing charged that was not billed, nothing billed that is not charged.
    assert committed == Decimal(str(round(sum(billed.values()), 6))).quantize(Decimal("0.000001"))
    # The storm really was a storm, of the kinds that matter most (rarer ones may miss a run).
    assert {"drop_before_read", "drop_after_read", "http_429", "stray_error", "slow", "http_503"} <= set(fired)
    assert first_answers["unknown"] > 0 and resends > 0 and outcomes["success"] > SUBMISSIONS // 2
