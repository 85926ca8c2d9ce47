"""The money path against every kind of answer Runware can give, through the emulator on loopback.

What a paying user needs: no job reported "rejected" that the provider billed; no live job ended by
an answer that does not name it; no call held past its deadline; the key nowhere; no folder made
outside the output folder; a broken data dir explained in one line.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from mcp import Client

from kling_mcp.emulator import Fault, run_emulator
from kling_mcp.files import DownloadProblem, VideoDownloads
from kling_mcp.ledger import Ledger, LedgerUnavailable
from kling_mcp.runware import CODES
from kling_mcp.server import create_server
from kling_mcp.settings import Settings

from .helpers import KEY, fast_client, job_service, request, usd

# Every call below must end within this many seconds of its own deadline, or the test fails.
SLACK = 5.0


@pytest.fixture
async def emu():
    async with run_emulator(api_key=KEY, job_seconds=(0.05, 0.15), seed=11) as emulator:
        yield emulator


def billed(emu: Any, task_uuid: str) -> float:
    return emu.billed().get(task_uuid, 0.0)


# -- submissions: only proof of refusal is a refusal ------------------------------------------------

# Answers to a submission that the emulator DID process (the job runs and is billed), but that do not
# say so in a readable way, or at all.
PROCESSED_BUT_ODD = [
    Fault("errors_not_list", task_type="videoInference"),  # HTTP 400 {"errors": "boom"}
    Fault("data_not_list", task_type="videoInference"),  # 200 {"data": 5}
    Fault("not_an_object", task_type="videoInference"),  # 200 ["ok"]
    Fault("stray_error", task_type="videoInference"),  # the acknowledgement beside errors naming no task
    Fault("malformed_json", task_type="videoInference"),
    Fault("drop_after_read", task_type="videoInference"),
    Fault("trickle", delay=0.3, task_type="videoInference"),  # one byte every 0.3 s: never a whole answer
]


@pytest.mark.parametrize("fault", PROCESSED_BUT_ODD, ids=lambda f: f.kind)
async def test_a_billed_job_is_never_reported_rejected(emu, tmp_path: Path, fault: Fault) -> None:
    emu.add_fault(fault)
    async with job_service(emu.url, tmp_path / "l.db", timeout=1.0) as jobs:
        with anyio.fail_after(1.0 * 4 + SLACK):
            job = await jobs.submit(request(), "text_to_video")
        assert job.status in ("submitted", "unknown"), job
        done, ended = await jobs.wait(job.task_uuid, 15)
    assert ended and done.status == "success", done
    assert emu.stats.accepted[job.task_uuid] == 1 and emu.stats.submissions[job.task_uuid] == 1
    assert usd(done.cost_usd) == usd(billed(emu, job.task_uuid)) > 0


# Answers after which the emulator did NOT process the submission: it must be sent again, once it is
# certain (from getTaskDetails) that Runware never received it, and billed once.
# With a complete answer, the record's "never arrived" is proof and the task is sent again at once; with a
# broken connection the request might still arrive, so the poller sends it again later, after a new look-up.
NOT_PROCESSED = [
    (Fault("http_429", retry_after=0.1, task_type="videoInference"), "submitted"),
    (Fault("http_503", task_type="videoInference"), "submitted"),
    (Fault("http_400_bare", task_type="videoInference"), "submitted"),
    (Fault("drop_before_read", task_type="videoInference"), "unknown"),
]


@pytest.mark.parametrize(("fault", "first"), NOT_PROCESSED, ids=lambda f: getattr(f, "kind", ""))
async def test_a_submission_never_received_is_sent_again_and_billed_once(
    emu, tmp_path: Path, fault: Fault, first: str
) -> None:
    emu.add_fault(fault)
    async with job_service(emu.url, tmp_path / "l.db") as jobs:
        jobs.resend_interval_s = 0.3
        job = await jobs.submit(request(), "text_to_video")
        assert job.status == first, job
        done, ended = await jobs.wait(job.task_uuid, 15)
    assert ended and done.status == "success"
    assert emu.stats.requests_by_task_type["getTaskDetails"] >= 1
    assert emu.stats.accepted[job.task_uuid] == 1
    assert usd(done.cost_usd) == usd(billed(emu, job.task_uuid))


async def test_a_429_storm_longer_than_the_submit_keeps_the_job_and_finishes_it(emu, tmp_path: Path) -> None:
    emu.add_fault(Fault("http_429", times=6, retry_after=0.05, task_type="videoInference"))
    async with job_service(emu.url, tmp_path / "l.db", submit_attempts=2) as jobs:
        jobs.resend_interval_s = 0.2
        job = await jobs.submit(request(), "text_to_video")
        assert job.status == "unknown"  # not "rejected": Runware never said no, it said "busy"
        assert "not paid for twice" in job.errors[-1]["next_step"]
        assert jobs.ledger.committed_usd() == job.reserve_usd  # still counted against the caps
        done, ended = await jobs.wait(job.task_uuid, 20)
    assert ended and done.status == "success", done
    assert done.errors == []  # the "fate unknown" note goes once the fate is known
    assert emu.stats.accepted[job.task_uuid] == 1


async def test_a_refusal_that_names_the_task_is_final_and_costs_nothing(emu, tmp_path: Path) -> None:
    emu.add_fault(Fault("http_402", task_type="videoInference"))
    async with job_service(emu.url, tmp_path / "l.db") as jobs:
        job = await jobs.submit(request(), "text_to_video")
        assert job.status == "rejected" and job.errors[0]["category"] == "balance"
        assert jobs.ledger.committed_usd() == 0
    assert emu.stats.accepted == {}


async def test_a_lost_answer_to_a_refused_task_is_read_from_runwares_record(emu) -> None:
    """Runware refused the task, but the answer was lost: its record (getTaskDetails) says it failed, with
    the provider's error, so nothing was charged and it is not sent again."""
    task = dict(request().payload)
    del task["deliveryMethod"]  # the emulator refuses this with invalidDeliveryMethod
    emu.add_fault(Fault("drop_after_read", task_type="videoInference"))
    async with fast_client(emu.url) as client:
        result = await client.submit(task)
    assert result.outcome == "failed"
    assert [e.code for e in result.errors] == ["invalidDeliveryMethod"]
    assert emu.stats.submissions[task["taskUUID"]] == 1 and emu.stats.accepted == {}


async def test_a_submit_that_runs_out_of_time_returns_the_task_id_as_unknown(emu, tmp_path: Path) -> None:
    emu.add_fault(Fault("slow", delay=1.5, task_type="videoInference"))
    async with job_service(emu.url, tmp_path / "l.db", timeout=10.0) as jobs:
        jobs.submit_deadline_s = 0.7
        with anyio.fail_after(0.7 + SLACK):
            job = await jobs.submit(request(), "text_to_video")
        assert job.status == "unknown" and job.task_uuid
        assert "within 0.7 s" in job.errors[-1]["message"]
        done, ended = await jobs.wait(job.task_uuid, 20)
    assert ended and done.status == "success"
    assert emu.stats.accepted[job.task_uuid] == 1


async def test_the_submit_tool_answers_a_timed_out_submission_with_its_task_id_and_next_step(emu, tmp_path: Path) -> None:
    emu.add_fault(Fault("slow", delay=1.5, times=3, task_type="videoInference"))  # every try in time runs out
    settings = Settings(api_key=KEY, base_url=emu.url, data_dir=tmp_path / "data", output_dir=tmp_path / "out",
                        request_timeout_s=0.5, poll_initial_s=0.1, poll_max_s=0.3)  # fmt: skip
    arguments = {"model": "klingai:kling-video@o3-standard", "prompt": "A fox runs through snow", "duration": 5}
    async with Client(create_server(settings)) as client:
        with anyio.fail_after(2 * 0.5 + SLACK):
            result = await client.call_tool("text_to_video", arguments)
        job = result.structured_content
        assert not result.is_error and job["status"] == "unknown" and job["task_id"]
        assert "get_video_status" in job["next_step"] and "not paid for twice" in job["next_step"]
        status = await client.call_tool("wait_for_video", {"task_id": job["task_id"], "timeout_seconds": 15})
    assert status.structured_content["status"] == "success"
    assert emu.stats.accepted[job["task_id"]] == 1


async def test_status_calls_keep_their_deadline_against_a_trickling_server(emu, tmp_path: Path) -> None:
    settings = Settings(api_key=KEY, base_url=emu.url, data_dir=tmp_path / "data", output_dir=tmp_path / "out",
                        request_timeout_s=0.5, poll_initial_s=0.1, poll_max_s=0.3)  # fmt: skip
    arguments = {"model": "klingai:kling-video@o3-standard", "prompt": "A fox runs through snow", "duration": 5}
    async with Client(create_server(settings)) as client:
        job = (await client.call_tool("text_to_video", arguments)).structured_content
        emu.add_fault(Fault("trickle", delay=0.2, probability=1.0, task_type="getResponse"))
        with anyio.fail_after(0.5 + SLACK):
            status = await client.call_tool("get_video_status", {"task_ids": [job["task_id"]]})
        emu.clear_faults()
        done = await client.call_tool("wait_for_video", {"task_id": job["task_id"], "timeout_seconds": 15})
    assert not status.is_error and status.structured_content["jobs"][0]["status"] in ("submitted", "processing")
    assert done.structured_content["status"] == "success"


# -- polls: only an answer that names a job can end it ----------------------------------------------

STRAY_POLL_ANSWERS = [
    Fault("stray_error", times=4, task_type="getResponse"),
    Fault("http_400_bare", times=3, task_type="getResponse"),
    Fault("errors_not_list", times=3, task_type="getResponse"),
    Fault("data_not_list", times=3, task_type="getResponse"),
    Fault("not_an_object", times=3, task_type="getResponse"),
    Fault("trickle", delay=0.2, times=2, task_type="getResponse"),
    Fault("task_throttled", times=3, task_type="getResponse"),  # errors naming the job, about the poll
]


@pytest.mark.parametrize("fault", STRAY_POLL_ANSWERS, ids=lambda f: f.kind)
async def test_stray_or_transient_poll_answers_never_end_a_live_job(emu, tmp_path: Path, fault: Fault) -> None:
    async with job_service(emu.url, tmp_path / "l.db", timeout=1.0) as jobs:
        job = await jobs.submit(request(), "text_to_video")
        emu.add_fault(fault)
        done, ended = await jobs.wait(job.task_uuid, 20)
    assert emu.stats.faults_fired[fault.kind] >= 1
    assert ended and done.status == "success", done
    assert done.results and usd(done.cost_usd) == usd(billed(emu, job.task_uuid))


async def test_a_result_without_a_usable_video_fails_the_job_with_the_item(emu, tmp_path: Path) -> None:
    emu.add_fault(Fault("no_video"))
    async with job_service(emu.url, tmp_path / "l.db") as jobs:
        job = await jobs.submit(request(number_results=2), "text_to_video")
        done, ended = await jobs.wait(job.task_uuid, 10)
    assert ended and done.status == "failed" and done.results == []
    assert [e["code"] for e in done.errors] == ["noUsableVideo"] * 2  # each result once, however often polled
    assert all(e["item"]["status"] == "success" and "videoUUID" not in e["item"] for e in done.errors)
    assert usd(done.cost_usd) == usd(billed(emu, job.task_uuid)) == 2 * usd(0.896)  # billed all the same


async def test_failed_results_without_ids_are_counted_once_each(tmp_path: Path) -> None:
    async with run_emulator(api_key=KEY, job_seconds=(0.2, 1.2), seed=4) as emu:
        emu.add_fault(Fault("job_failure", error_form="item"))
        async with job_service(emu.url, tmp_path / "l.db") as jobs:
            job = await jobs.submit(request(number_results=3), "text_to_video")
            done, ended = await jobs.wait(job.task_uuid, 10)
            async with httpx.AsyncClient(headers={"Authorization": f"Bearer {KEY}"}) as http:
                answer = await http.post(emu.url, json=[{"taskType": "getResponse", "taskUUID": job.task_uuid}])
    assert ended and done.status == "failed" and len(done.errors) == 3
    # It ended only once every result had: a failure seen in several polls is one failure.
    assert [i["status"] for i in answer.json()["data"]] == ["error"] * 3


async def test_a_job_with_no_final_answer_becomes_stalled_and_is_looked_up_on_request(tmp_path: Path) -> None:
    async with run_emulator(api_key=KEY, job_seconds=(1.6, 1.6), seed=5) as emu:
        async with job_service(emu.url, tmp_path / "l.db") as jobs:
            jobs.stalled_after_s = 0.3
            job = await jobs.submit(request(), "text_to_video")
            stalled, ended = await jobs.wait(job.task_uuid, 5)
            assert not ended and stalled.status == "stalled"
            assert "looked up again on request" in stalled.errors[-1]["next_step"]
            assert jobs.ledger.committed_usd() == job.reserve_usd
            polls = emu.stats.requests_by_task_type["getResponse"]
            await anyio.sleep(0.6)
            assert emu.stats.requests_by_task_type["getResponse"] == polls  # no longer polled
            await anyio.sleep(1.0)  # the job has now ended at the emulator (1.6 s after it was sent)
            refreshed = (await jobs.refresh([job.task_uuid]))[job.task_uuid]
    assert refreshed.status == "success" and usd(refreshed.cost_usd) == usd(billed(emu, job.task_uuid))


# -- deadlines ---------------------------------------------------------------------------------------


async def test_a_trickling_download_is_stopped_at_its_deadline(emu, tmp_path: Path) -> None:
    async with job_service(emu.url, tmp_path / "l.db") as jobs:
        job = await jobs.submit(request(), "text_to_video")
        done, _ = await jobs.wait(job.task_uuid, 10)
        emu.add_fault(Fault("trickle", delay=0.05, task_type="download"))
        downloads = VideoDownloads(tmp_path / "out", jobs.ledger, deadline=1.5)
        try:
            with anyio.fail_after(1.5 + SLACK), pytest.raises(DownloadProblem) as stopped:
                await downloads.save(done)
        finally:
            await downloads.aclose()
    assert stopped.value.kind == "timeout" and "call download_video again" in stopped.value.extra["next_step"].lower()
    assert list((tmp_path / "out").iterdir()) == []  # nothing half-written left behind


# -- secrets -----------------------------------------------------------------------------------------


async def test_the_key_echoed_into_every_error_field_reaches_no_result_log_or_file(
    emu, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("DEBUG")
    emu.add_fault(Fault("echo_key", probability=1.0))
    emu.add_fault(Fault("http_429", retry_after=0.05, task_type="videoInference"))
    emu.add_fault(Fault("http_402", task_type="videoInference"))
    emu.add_fault(Fault("job_failure"))
    emu.add_fault(Fault("content_policy"))
    emu.add_fault(Fault("stray_error", times=2, task_type="getResponse"))
    settings = Settings(api_key=KEY, base_url=emu.url, data_dir=tmp_path / "data", output_dir=tmp_path / "out",
                        poll_initial_s=0.1, poll_max_s=0.3)  # fmt: skip
    texts: list[str] = []
    arguments = {"model": "klingai:kling-video@o3-standard", "prompt": "A fox runs through snow", "duration": 5}
    async with Client(create_server(settings)) as client:
        results = [await client.call_tool("text_to_video", arguments) for _ in range(4)]
        for result in results:
            texts.append(result.model_dump_json())
            task_id = (result.structured_content or {}).get("task_id") or (
                (result.structured_content or {}).get("job") or {}).get("task_id")  # fmt: skip
            if task_id:
                texts.append((await client.call_tool("wait_for_video", {"task_id": task_id, "timeout_seconds": 10})
                              ).model_dump_json())  # fmt: skip
                texts.append((await client.call_tool("get_video_status", {"task_ids": [task_id]})).model_dump_json())
        texts.append(json.dumps([r.model_dump(mode="json") for r in (await client.read_resource("kling://jobs")).contents]))
    assert emu.stats.faults_fired["echo_key"] > 5  # the emulator really did echo it, many times
    assert any("rejected" in t for t in texts) and any('"failed"' in t for t in texts)
    texts += [r.getMessage() for r in caplog.records]
    assert KEY not in "\n".join(texts)
    for path in tmp_path.rglob("*"):
        if path.is_file():
            assert KEY.encode() not in path.read_bytes(), path
    with sqlite3.connect(tmp_path / "data" / "jobs.sqlite3") as db:
        rows = db.execute("SELECT * FROM jobs").fetchall()
    assert rows and KEY not in repr(rows)


# -- files ---------------------------------------------------------------------------------------


async def test_no_folder_is_made_outside_the_output_folder(emu, tmp_path: Path) -> None:
    out, elsewhere = tmp_path / "out", tmp_path / "elsewhere"
    out.mkdir()
    elsewhere.mkdir()
    (out / "link").symlink_to(elsewhere)
    async with job_service(emu.url, tmp_path / "l.db") as jobs:
        job = await jobs.submit(request(), "text_to_video")
        done, _ = await jobs.wait(job.task_uuid, 10)
        downloads = VideoDownloads(out, jobs.ledger)
        try:
            with pytest.raises(DownloadProblem) as refused:
                await downloads.save(done, subfolder="link/deep/er")
            saved = await downloads.save(done, subfolder="inside/deep")
        finally:
            await downloads.aclose()
    assert refused.value.kind == "bad_subfolder" and "outside" in refused.value.message
    assert list(elsewhere.iterdir()) == []  # not even an empty folder
    assert saved[0].path.parent == out / "inside" / "deep" and saved[0].path.read_bytes()[4:8] == b"ftyp"


# -- the data dir --------------------------------------------------------------------------------


def test_a_corrupt_ledger_is_explained_and_never_touched(tmp_path: Path) -> None:
    path = tmp_path / "jobs.sqlite3"
    garbage = b"this is not a database, but someone's only copy of their job history" * 100
    path.write_bytes(garbage)
    with pytest.raises(LedgerUnavailable) as broken:
        Ledger(path)
    line = str(broken.value)
    assert "\n" not in line and str(path) in line and "not a valid ledger" in line and "rename it" in line
    assert path.read_bytes() == garbage
    assert sorted(p.name for p in tmp_path.iterdir()) == ["jobs.sqlite3"]  # no -wal, no new file beside it


def test_a_file_in_the_way_of_the_data_dir_is_explained(tmp_path: Path) -> None:
    (tmp_path / "blocker").write_text("a file, not a folder")
    with pytest.raises(LedgerUnavailable) as broken:
        Ledger(tmp_path / "blocker" / "data" / "jobs.sqlite3")
    assert "blocker is a file" in str(broken.value) and "KLING_MCP_DATA_DIR" in str(broken.value)


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write anywhere")
def test_an_unwritable_data_dir_is_explained(tmp_path: Path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    with pytest.raises(LedgerUnavailable) as broken:
        Ledger(locked / "jobs.sqlite3")
    assert "not writable" in str(broken.value)


def test_check_says_what_is_wrong_with_the_data_dir_in_one_line(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "jobs.sqlite3").write_bytes(b"garbage" * 200)
    env = {**os.environ, "KLING_MCP_DATA_DIR": str(tmp_path / "data"), "KLING_MCP_OUTPUT_DIR": str(tmp_path / "out")}
    env.pop("RUNWARE_API_KEY", None)
    done = subprocess.run([sys.executable, "-m", "kling_mcp", "check"], env=env, capture_output=True, text=True, check=False,
                          timeout=60)  # fmt: skip
    assert done.returncode == 1 and "Traceback" not in done.stderr + done.stdout
    [line] = [ln for ln in done.stdout.splitlines() if "jobs.sqlite3" in ln]
    assert "not a valid ledger" in line and "Fix:" in line


async def test_tools_answer_a_broken_ledger_with_a_structured_error(emu, tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "jobs.sqlite3").write_bytes(b"garbage" * 200)
    settings = Settings(api_key=KEY, base_url=emu.url, data_dir=tmp_path / "data", output_dir=tmp_path / "out")
    async with Client(create_server(settings)) as client:
        models = await client.call_tool("list_models", {"model": "o3-pro"})
        submitted = await client.call_tool("text_to_video", {"model": "klingai:kling-video@o3-standard", "prompt": "A fox runs", "duration": 5})
        status = await client.call_tool("get_video_status", {"task_ids": ["00000000-0000-4000-8000-000000000000"]})
    assert not models.is_error
    for result in (submitted, status):
        assert result.is_error and result.structured_content["error"] == "ledger_unavailable"
        assert result.structured_content["path"].endswith("jobs.sqlite3") and result.structured_content["fix"]
    assert emu.stats.requests_by_task_type["videoInference"] == 0


# -- the protocol -------------------------------------------------------------------------------


def test_a_request_line_that_is_not_json_rpc_gets_a_parse_error_and_the_server_keeps_serving(tmp_path: Path) -> None:
    initialize = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}}  # fmt: skip
    lines = b"\xff\xfe\x80 not utf-8\n" + b'{"jsonrpc": "2.0", "id": 3, "method": \n' + b'{"id": 4}\n'
    lines += json.dumps(initialize).encode() + b"\n"
    env = {**os.environ, "KLING_MCP_DATA_DIR": str(tmp_path / "d"), "KLING_MCP_OUTPUT_DIR": str(tmp_path / "o")}
    proc = subprocess.Popen([sys.executable, "-m", "kling_mcp"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, env=env)  # fmt: skip
    try:
        assert proc.stdin is not None and proc.stdout is not None
        proc.stdin.write(lines)
        proc.stdin.flush()
        answers = [json.loads(proc.stdout.readline()) for _ in range(4)]
    finally:
        proc.kill()
        proc.wait()
    assert [(a.get("id"), a.get("error", {}).get("code")) for a in answers] == [
        (None, -32700), (None, -32700), (4, -32600), (1, None)
    ]
    assert answers[3]["result"]["serverInfo"]["name"] == "kling-mcp"


# -- the code table ------------------------------------------------------------------------------


async def test_every_code_the_emulator_speaks_has_a_meaning_and_a_source(emu) -> None:
    codes: set[str] = set()
    async with httpx.AsyncClient(headers={"Authorization": f"Bearer {KEY}"}) as http:
        for kind in ("http_402", "http_429", "http_500", "http_503", "http_504"):
            emu.add_fault(Fault(kind))
            codes |= {e["code"] for e in (await http.post(emu.url, json=[{"taskType": "getResponse"}])).json()["errors"]}
        answer = await http.post(emu.url, json=[{"taskType": "getResponse", "taskUUID": "x"},
                                                {"taskType": "getTaskDetails", "taskUUID": "x"},
                                                {"taskType": "nothing"}, {"taskType": "videoInference"}])  # fmt: skip
        codes |= {e["code"] for e in answer.json()["errors"]}
        codes |= {e["code"] for e in (await http.post(emu.url, headers={"Authorization": "Bearer no"}, json=[])).json()["errors"]}
    assert {"taskFailedOrNotFound", "taskNotFound", "invalidApiKey", "rateLimitExceeded"} <= codes
    unknown = {c for c in codes if c not in CODES}
    assert not unknown, f"codes the emulator speaks with no meaning in the table: {unknown}"
    assert all(CODES[c].source for c in codes)


def test_a_file_with_another_hard_link_is_refused_with_its_own_reason(tmp_path: Path) -> None:
    from kling_mcp.emulator import placeholder_png
    from kling_mcp.files import FileRefused, Sandbox

    root, outside = tmp_path / "Pictures", tmp_path / "secret"
    root.mkdir()
    outside.mkdir()
    (outside / "private.png").write_bytes(placeholder_png())
    os.link(outside / "private.png", root / "innocent.png")
    (root / "own.png").write_bytes(placeholder_png())
    sandbox = Sandbox([root])
    with pytest.raises(FileRefused) as refused:
        sandbox.check(str(root / "innocent.png"), "image")
    assert refused.value.reason == "hard_linked" and "2 hard links" in refused.value.message
    assert "copy" in refused.value.fix.lower()
    assert sandbox.check(str(root / "own.png"), "image").size == len(placeholder_png())


@pytest.mark.parametrize(
    ("status", "body", "outcome"),
    [
        (400, {"errors": ["boom"]}, "unknown"),  # a 4xx without a code proves nothing
        (400, {"errors": [{"code": "somethingNew", "taskUUID": "T"}]}, "unknown"),  # nor an unknown code
        (400, {"errors": [{"code": "invalidParameter"}, {"code": "invalidWidth", "taskUUID": "other"}]}, "unknown"),
        (200, {"data": [{"taskUUID": "T"}], "errors": [{"code": "invalidApiKey"}]}, "accepted"),
        (500, {"errors": [{"code": "invalidParameter", "taskUUID": "T"}]}, "rejected"),  # named, with a refusal code
        (401, {"errors": [{"code": "invalidApiKey", "taskType": "authentication"}]}, "rejected"),
        (400, {"errors": [{"code": "duplicateTaskUUID", "taskUUID": "T"}]}, "accepted"),
        (200, {"data": {"taskUUID": "T"}}, "unknown"),
    ],
)
def test_only_an_answer_that_proves_it_is_read_as_a_refusal(status: int, body: Any, outcome: str) -> None:
    from kling_mcp.runware._client import _Answer, _read_submission

    assert _read_submission(_Answer(status, body, httpx.Headers()), "T").outcome == outcome


def test_an_answer_skips_scrubbing_only_when_no_secret_could_be_in_it() -> None:
    from kling_mcp.runware._secrets import may_hold_secret, register_secret

    register_secret("sk-abcdef123456")
    assert may_hold_secret('{"data": [{"error": {"message": "Bearer sk-abcdef123456"}}]}')
    spelt = '{"message": "Bearer sk-\\u0061bcdef123456"}'  # JSON may spell any character as \u escape
    assert json.loads(spelt)["message"].endswith("sk-abcdef123456") and may_hold_secret(spelt)
    assert may_hold_secret('{"message": "secret kmwh_3fa9"}')  # a webhook secret, never registered
    assert not may_hold_secret('{"data": [{"taskUUID": "x", "status": "processing", "progress": 40}]}')
    register_secret("a/b-secret-with-a-slash")  # JSON may write "/" as "\/": never ruled out verbatim
    assert may_hold_secret('{"data": []}')
