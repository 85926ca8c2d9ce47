"""The local Runware emulator, exercised over real loopback HTTP."""

from __future__ import annotations

import asyncio
import base64
import copy
import json
import socket
import struct
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from kling_mcp.emulator import Emulator, Fault, placeholder_mp4, run_emulator, run_emulator_in_thread

KEY = "test-key-7f3a"
EXAMPLES: list[dict[str, Any]] = json.loads(
    (Path(__file__).parent / "data" / "seed_examples.json").read_text(encoding="utf-8")
)


@pytest.fixture
async def emu() -> AsyncIterator[Emulator]:
    async with run_emulator(api_key=KEY, job_seconds=(0.2, 0.5), time_scale=1.0, seed=0) as emulator:
        yield emulator


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(headers={"Authorization": f"Bearer {KEY}"}, timeout=5) as c:
        yield c


def seed_task(index: int = 0, **overrides: Any) -> dict[str, Any]:
    """A request the service accepted, as kling-mcp will send it: async, with cost, fresh UUID."""
    task: dict[str, Any] = copy.deepcopy(EXAMPLES[index]["request"])
    task.update(taskUUID=str(uuid.uuid4()), deliveryMethod="async", includeCost=True)
    task.update(overrides)
    return task


def text_task(**overrides: Any) -> dict[str, Any]:
    task: dict[str, Any] = {
        "taskType": "videoInference",
        "taskUUID": str(uuid.uuid4()),
        "model": "klingai:kling-video@3-pro",
        "positivePrompt": "A lighthouse in a storm, waves breaking over the rocks.",
        "width": 1920,
        "height": 1080,
        "duration": 5,
        "deliveryMethod": "async",
        "includeCost": True,
    }
    task.update(overrides)
    return task


async def poll(client: httpx.AsyncClient, emu: Emulator, task_uuid: str) -> httpx.Response:
    return await client.post(emu.url, json=[{"taskType": "getResponse", "taskUUID": task_uuid}])


async def wait_done(client: httpx.AsyncClient, emu: Emulator, task_uuid: str, timeout: float = 3.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        body: dict[str, Any] = (await poll(client, emu, task_uuid)).json()
        items = body.get("data", [])
        if body.get("errors") or (items and all(i["status"] != "processing" for i in items)):
            return body
        await asyncio.sleep(0.03)
    raise AssertionError(f"task {task_uuid} still processing after {timeout} s")


# -- auth and validation ---------------------------------------------------------------


async def test_missing_or_wrong_key_is_401_without_echoing_the_key(emu: Emulator) -> None:
    task = text_task()
    async with httpx.AsyncClient() as anonymous:
        for headers in ({}, {"Authorization": "Bearer wrong-secret-123"}, {"Authorization": KEY}):
            response = await anonymous.post(emu.url, json=[task], headers=headers)
            assert response.status_code == 401
            assert response.json() == {"errors": [{
                "code": "invalidApiKey", "message": response.json()["errors"][0]["message"],
                "parameter": "apiKey", "taskType": "authentication",
            }]}  # fmt: skip
            assert "wrong-secret" not in response.text and KEY not in response.text
        assert (await anonymous.get(f"{emu.base_url}/_emulator/stats")).status_code == 401
    assert emu.stats.http_requests == 3
    assert emu.stats.submissions == {} and emu.stats.accepted == {}
    assert KEY not in repr(emu)


async def test_invalid_request_gets_runware_shaped_errors_and_starts_nothing(
    emu: Emulator, client: httpx.AsyncClient
) -> None:
    task = text_task(duration=99)
    response = await client.post(emu.url, json=[task])
    assert response.status_code == 400
    body = response.json()
    assert body["data"] == []
    [error] = body["errors"]
    assert error["code"] == "invalidParameter"
    assert error["parameter"] == "duration"
    assert error["taskUUID"] == task["taskUUID"] and error["taskType"] == "videoInference"
    assert error["allowedValues"] == {"min": 3, "max": 15}
    assert "Set 'duration'" in error["message"] and error["documentation"].startswith("https://")
    assert emu.stats.submissions[task["taskUUID"]] == 1 and emu.stats.accepted == {}
    assert (await poll(client, emu, task["taskUUID"])).json()["errors"][0]["code"] == "taskFailedOrNotFound"


async def test_every_violation_is_reported_and_async_delivery_is_required(
    emu: Emulator, client: httpx.AsyncClient
) -> None:
    task = text_task(duration=99, width=1000)
    del task["deliveryMethod"]
    errors = (await client.post(emu.url, json=[task])).json()["errors"]
    assert {e["parameter"] for e in errors} == {"duration", "width/height", "deliveryMethod"}
    assert next(e for e in errors if e["parameter"] == "deliveryMethod")["code"] == "invalidDeliveryMethod"
    sync = (await client.post(emu.url, json=[text_task(deliveryMethod="sync")])).json()["errors"]
    assert [(e["code"], e["parameter"], e["allowedValues"]) for e in sync] == [
        ("invalidParameter", "deliveryMethod", ["async"])
    ]


async def test_errors_are_scoped_per_task_in_a_shared_request(emu: Emulator, client: httpx.AsyncClient) -> None:
    good, bad = text_task(), text_task(model="klingai:kling-video@9-ultra")
    response = await client.post(emu.url, json=[good, bad, {"taskType": "imageInference", "taskUUID": "x"}])
    assert response.status_code == 200
    body = response.json()
    assert body["data"] == [{"taskType": "videoInference", "taskUUID": good["taskUUID"]}]
    assert [(e["code"], e["taskUUID"]) for e in body["errors"]] == [
        ("invalidParameter", bad["taskUUID"]),
        ("unsupportedTaskType", "x"),
    ]
    assert body["errors"][0]["parameter"] == "model"


async def test_malformed_bodies_are_refused(emu: Emulator, client: httpx.AsyncClient) -> None:
    for content in (b"{not json", b"[]", b'{"taskType": "getResponse"}'):
        response = await client.post(emu.url, content=content, headers={"Content-Type": "application/json"})
        assert response.status_code == 400
        assert response.json()["errors"][0]["parameter"] == "body"


# -- the job life cycle ------------------------------------------------------------------


async def test_seed_request_runs_to_a_downloadable_mp4_with_the_real_cost(
    emu: Emulator, client: httpx.AsyncClient
) -> None:
    task = seed_task(0)
    response = await client.post(emu.url, json=[task])
    assert response.status_code == 200
    assert response.json() == {"data": [{"taskType": "videoInference", "taskUUID": task["taskUUID"]}]}

    [first] = (await poll(client, emu, task["taskUUID"])).json()["data"]
    assert first["status"] == "processing" and 0 <= first["progress"] < 100

    [item] = (await wait_done(client, emu, task["taskUUID"]))["data"]
    assert item["status"] == "success"
    assert item["cost"] == EXAMPLES[0]["cost"] == 0.896
    assert isinstance(item["seed"], int)
    assert str(uuid.UUID(item["videoUUID"], version=4)) == item["videoUUID"]
    assert item["videoURL"] == f"{emu.base_url}/videos/{item['videoUUID']}.mp4"

    video = await client.get(item["videoURL"])
    assert video.status_code == 200 and video.headers["content-type"] == "video/mp4"
    assert video.content[4:8] == b"ftyp"
    kinds = [b.kind for b in parse_boxes(video.content)]
    assert kinds.index(b"moov") < kinds.index(b"mdat")  # playable while it downloads
    assert emu.stats.submissions[task["taskUUID"]] == 1


async def test_every_seed_example_in_one_request_costs_what_the_service_charged(
    client: httpx.AsyncClient,
) -> None:
    async with run_emulator(api_key=KEY, job_seconds=(0, 0), seed=1) as emu:
        tasks = [seed_task(i) for i in range(len(EXAMPLES))]
        acks = (await client.post(emu.url, json=tasks)).json()
        assert "errors" not in acks and len(acks["data"]) == len(EXAMPLES)
        polls = [{"taskType": "getResponse", "taskUUID": t["taskUUID"]} for t in tasks]
        items = (await client.post(emu.url, json=polls)).json()["data"]
    assert [i["status"] for i in items] == ["success"] * len(EXAMPLES)
    assert [i["taskUUID"] for i in items] == [t["taskUUID"] for t in tasks]
    assert [i["cost"] for i in items] == [e["cost"] for e in EXAMPLES]


async def test_no_cost_unless_asked(emu: Emulator, client: httpx.AsyncClient) -> None:
    task = text_task(includeCost=False)
    await client.post(emu.url, json=[task])
    [item] = (await wait_done(client, emu, task["taskUUID"]))["data"]
    assert item["status"] == "success" and "cost" not in item


async def test_several_results_finish_one_after_the_other(emu: Emulator, client: httpx.AsyncClient) -> None:
    task = text_task(numberResults=3, duration=10)
    await client.post(emu.url, json=[task])
    finished: dict[str, float] = {}
    mixed = False
    start = time.monotonic()
    while len(finished) < 3 and time.monotonic() - start < 3:
        items = (await poll(client, emu, task["taskUUID"])).json()["data"]
        assert len(items) == 3 and {i["taskUUID"] for i in items} == {task["taskUUID"]}
        statuses = {i["status"] for i in items}
        mixed |= statuses == {"success", "processing"}
        for item in items:
            if item["status"] == "success":
                finished.setdefault(item["videoUUID"], time.monotonic() - start)
                assert item["cost"] == 1.12  # one 10 s clip at $0.112/s, per result
        await asyncio.sleep(0.02)
    assert len(finished) == 3 and mixed
    times = sorted(finished.values())
    assert times[0] < times[1] < times[2] and times[0] > 0.15 and times[2] < 1.0


async def test_duplicate_task_uuid_is_refused_and_still_counted(emu: Emulator, client: httpx.AsyncClient) -> None:
    task = text_task()
    assert (await client.post(emu.url, json=[task])).status_code == 200
    again = await client.post(emu.url, json=[task])
    assert again.status_code == 400
    [error] = again.json()["errors"]
    assert (error["code"], error["taskUUID"], error["parameter"]) == ("duplicateTaskUUID", task["taskUUID"], "taskUUID")
    assert emu.stats.submissions[task["taskUUID"]] == 2
    assert emu.stats.accepted[task["taskUUID"]] == 1


async def test_get_response_of_an_unknown_task_is_task_not_found(emu: Emulator, client: httpx.AsyncClient) -> None:
    unknown = str(uuid.uuid4())
    response = await poll(client, emu, unknown)
    assert response.status_code == 400
    [error] = response.json()["errors"]
    assert {k: error[k] for k in ("code", "message", "taskUUID", "taskType")} == {
        "code": "taskFailedOrNotFound", "message": "The task failed or was not found.",
        "taskUUID": unknown, "taskType": "getResponse",
    }  # fmt: skip


async def test_video_urls_404_before_ready_and_after_ttl(client: httpx.AsyncClient) -> None:
    # ttl 60 s x 0.01 = 0.6 s of life; jobs take 0.1-0.2 s.
    async with run_emulator(api_key=KEY, job_seconds=(10, 20), time_scale=0.01, seed=2) as emu:
        task = text_task(ttl=60)
        await client.post(emu.url, json=[task])
        assert (await client.get(f"{emu.base_url}/videos/{uuid.uuid4()}.mp4")).status_code == 404
        [item] = (await wait_done(client, emu, task["taskUUID"]))["data"]
        assert (await client.get(item["videoURL"])).status_code == 200
        await asyncio.sleep(0.65)
        expired = await client.get(item["videoURL"])
        assert expired.status_code == 404 and expired.json()["error"] == "expired"
        assert "expired" in expired.json()["message"]


async def test_media_upload_and_download(emu: Emulator, client: httpx.AsyncClient) -> None:
    png = b"\x89PNG\r\n\x1a\n" + bytes(range(64))
    forms = {
        "data URI": "data:image/png;base64," + base64.b64encode(png).decode(),
        "raw base64": base64.b64encode(png).decode(),
    }
    for form, media in forms.items():
        task_uuid = str(uuid.uuid4())
        task = {"taskType": "mediaStorage", "taskUUID": task_uuid, "operation": "upload", "media": media}
        [stored] = (await client.post(emu.url, json=[task])).json()["data"]
        assert stored["taskType"] == "mediaStorage" and stored["taskUUID"] == task_uuid, form
        assert str(uuid.UUID(stored["mediaUUID"], version=4)) == stored["mediaUUID"]
        assert stored["mediaURL"] == f"{emu.base_url}/media/{stored['mediaUUID']}"
        download = await client.get(stored["mediaURL"])
        assert download.content == png and download.headers["content-type"] == "image/png", form

    url = "https://example.com/first-frame.jpg"
    task = {"taskType": "mediaStorage", "taskUUID": str(uuid.uuid4()), "operation": "upload", "media": url}
    [stored] = (await client.post(emu.url, json=[task])).json()["data"]
    redirect = await client.get(stored["mediaURL"])
    assert redirect.status_code == 307 and redirect.headers["location"] == url

    bad = {"taskType": "mediaStorage", "taskUUID": str(uuid.uuid4()), "operation": "upload", "media": "not base64!"}
    response = await client.post(emu.url, json=[bad])
    assert response.status_code == 400
    assert [(e["code"], e["parameter"]) for e in response.json()["errors"]] == [("invalidParameter", "media")]
    assert (await client.get(f"{emu.base_url}/media/{uuid.uuid4()}")).status_code == 404


# -- faults ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "status", "code"),
    [
        ("http_401", 401, "invalidApiKey"),
        ("http_402", 402, "insufficientCredits"),
        ("http_429", 429, "rateLimitExceeded"),
        ("http_500", 500, "internalServerError"),
        ("http_503", 503, "serviceUnavailable"),
        ("http_504", 504, "gatewayTimeout"),
    ],
)
async def test_http_faults_answer_instead_of_processing(
    emu: Emulator, client: httpx.AsyncClient, kind: str, status: int, code: str
) -> None:
    emu.add_fault(Fault(kind, retry_after=2))  # type: ignore[arg-type]
    task = text_task()
    response = await client.post(emu.url, json=[task])
    assert response.status_code == status
    assert response.json()["errors"][0]["code"] == code
    assert ("retry-after" in response.headers) == (kind == "http_429")
    if kind == "http_429":
        assert response.headers["retry-after"] == "2"
    assert emu.stats.submissions == {} and emu.stats.faults_fired == {kind: 1}
    assert (await poll(client, emu, task["taskUUID"])).json()["errors"][0]["code"] == "taskFailedOrNotFound"
    # times=1: the same task now goes through.
    assert (await client.post(emu.url, json=[task])).status_code == 200
    assert emu.stats.submissions[task["taskUUID"]] == 1


async def test_faults_can_target_one_task_type_and_several_requests(emu: Emulator, client: httpx.AsyncClient) -> None:
    emu.add_fault(Fault("http_503", times=2, task_type="getResponse"))
    task = text_task()
    assert (await client.post(emu.url, json=[task])).status_code == 200
    assert [(await poll(client, emu, task["taskUUID"])).status_code for _ in range(3)] == [503, 503, 200]
    assert emu.faults == []
    assert emu.stats.requests_by_task_type == {"videoInference": 1, "getResponse": 3}


async def test_probability_faults_are_reproducible_with_a_seed(emu: Emulator, client: httpx.AsyncClient) -> None:
    async def pattern() -> list[int]:
        emu.add_fault(Fault("http_503", probability=0.5))
        return [(await poll(client, emu, str(uuid.uuid4()))).status_code for _ in range(16)]

    first = await pattern()
    emu.reset()
    assert await pattern() == first
    assert set(first) == {400, 503}  # fires some of the time, and stays armed
    emu.reset()
    emu.add_fault(Fault("http_503", probability=1.0, times=2))
    assert [(await poll(client, emu, str(uuid.uuid4()))).status_code for _ in range(3)] == [503, 503, 400]


async def test_slow_fault_delays_then_processes_even_if_the_client_gave_up(
    emu: Emulator, client: httpx.AsyncClient
) -> None:
    emu.add_fault(Fault("slow", delay=0.3))
    task = text_task()
    start = time.monotonic()
    assert (await client.post(emu.url, json=[task])).status_code == 200
    assert time.monotonic() - start >= 0.3

    emu.add_fault(Fault("slow", delay=0.3, task_type="videoInference"))
    lost = text_task()
    with pytest.raises(httpx.ReadTimeout):
        await client.post(emu.url, json=[lost], timeout=0.1)
    assert emu.stats.submissions[lost["taskUUID"]] == 0
    # The fate of a timed-out submission is unknown to the client: it does start.
    deadline = time.monotonic() + 2
    while not emu.stats.accepted[lost["taskUUID"]] and time.monotonic() < deadline:
        await asyncio.sleep(0.02)
    assert emu.stats.accepted[lost["taskUUID"]] == 1
    assert (await poll(client, emu, lost["taskUUID"])).status_code == 200


async def test_drop_after_read_registers_the_job_but_breaks_the_connection(
    emu: Emulator, client: httpx.AsyncClient
) -> None:
    emu.add_fault(Fault("drop_after_read", task_type="videoInference"))
    task = text_task()
    with pytest.raises(httpx.TransportError) as caught:
        await client.post(emu.url, json=[task])
    assert isinstance(caught.value, httpx.RemoteProtocolError)
    assert emu.stats.submissions[task["taskUUID"]] == 1 and emu.stats.accepted[task["taskUUID"]] == 1
    [item] = (await poll(client, emu, task["taskUUID"])).json()["data"]
    assert item["status"] == "processing"
    # A blind resubmission is caught, and counted: the test suite's tripwire.
    assert (await client.post(emu.url, json=[task])).json()["errors"][0]["code"] == "duplicateTaskUUID"
    assert emu.stats.submissions[task["taskUUID"]] == 2


async def test_malformed_json_fault_processes_but_answers_garbage(emu: Emulator, client: httpx.AsyncClient) -> None:
    emu.add_fault(Fault("malformed_json"))
    task = text_task()
    response = await client.post(emu.url, json=[task])
    assert response.status_code == 200 and response.headers["content-type"] == "application/json"
    with pytest.raises(json.JSONDecodeError):
        response.json()
    assert emu.stats.accepted[task["taskUUID"]] == 1


async def test_job_failure_ends_the_job_in_an_error_item(emu: Emulator, client: httpx.AsyncClient) -> None:
    emu.add_fault(Fault("job_failure"))
    emu.add_fault(Fault("job_failure", code="timeoutProvider"))
    failed, timed_out, fine = text_task(numberResults=2), text_task(), text_task()
    assert (await client.post(emu.url, json=[failed, timed_out, fine])).status_code == 200

    body = await wait_done(client, emu, failed["taskUUID"])
    assert "errors" not in body
    assert [i["error"] for i in body["data"]] == [
        {"code": "providerError", "message": "The provider failed to generate the video."}
    ] * 2
    assert {i["status"] for i in body["data"]} == {"error"} and "videoURL" not in body["data"][0]
    [item] = (await wait_done(client, emu, timed_out["taskUUID"]))["data"]
    assert item["error"]["code"] == "timeoutProvider"
    assert (await wait_done(client, emu, fine["taskUUID"]))["data"][0]["status"] == "success"


async def test_content_policy_failure_comes_in_the_envelope(emu: Emulator, client: httpx.AsyncClient) -> None:
    emu.add_fault(Fault("content_policy"))
    emu.add_fault(Fault("content_policy", error_form="item"))
    enveloped, itemised = text_task(), text_task()
    await client.post(emu.url, json=[enveloped])
    await client.post(emu.url, json=[itemised])

    body = await wait_done(client, emu, enveloped["taskUUID"])
    assert body["data"] == []
    [error] = body["errors"]
    assert (error["code"], error["taskUUID"]) == ("contentModerated", enveloped["taskUUID"])
    assert "content policy" in error["message"]
    [item] = (await wait_done(client, emu, itemised["taskUUID"]))["data"]
    assert (item["status"], item["error"]["code"]) == ("error", "contentModerated")


async def test_control_endpoints(emu: Emulator, client: httpx.AsyncClient) -> None:
    faults = f"{emu.base_url}/_emulator/faults"
    async with httpx.AsyncClient() as anonymous:
        assert (await anonymous.post(faults, json={"kind": "http_500"})).status_code == 401
    assert emu.faults == []

    added = await client.post(faults, json=[{"kind": "http_429", "retry_after": 0.5}, {"kind": "slow", "delay": 0}])
    assert added.status_code == 200 and [f["kind"] for f in added.json()["faults"]] == ["http_429", "slow"]
    limited = await poll(client, emu, str(uuid.uuid4()))
    assert limited.status_code == 429 and limited.headers["retry-after"] == "0.5"

    stats = (await client.get(f"{emu.base_url}/_emulator/stats")).json()
    assert stats["http_requests"] == 1 and stats["faults_fired"] == {"http_429": 1, "slow": 1}
    assert stats["faults"] == [] and stats["tasks"][0]["taskType"] == "getResponse"

    await client.post(faults, json={"kind": "http_503", "times": 5})
    assert (await client.delete(faults)).json() == {"faults": []}
    refused = await client.post(faults, json={"kind": "meteor_strike"})
    assert refused.status_code == 400 and "meteor_strike" in refused.json()["message"]
    assert (await client.post(faults, json={"kind": "slow", "wait": 1})).status_code == 400

    assert (await client.post(f"{emu.base_url}/_emulator/reset")).status_code == 200
    assert emu.stats.http_requests == 0 and emu.stats.tasks == []


# -- running -----------------------------------------------------------------------------


async def test_starts_fast_and_stops_cleanly(client: httpx.AsyncClient) -> None:
    start = time.monotonic()
    async with run_emulator(api_key=KEY) as emu:
        assert time.monotonic() - start < 0.5
        assert emu.url.startswith("http://127.0.0.1:") and emu.url == f"{emu.base_url}/v1"
        port = int(emu.base_url.rsplit(":", 1)[1])
        emu.add_fault(Fault("slow", delay=30))
        stuck = asyncio.create_task(client.post(emu.url, json=[text_task()]))
        await asyncio.sleep(0.05)
        stop = time.monotonic()
    assert time.monotonic() - stop < 1.0  # a pending slow request does not hold up the shutdown
    assert (await stuck).status_code == 503
    assert emu.stats.submissions == {}
    assert asyncio.all_tasks() == {asyncio.current_task()}
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()


def test_threaded_runner_for_sync_callers() -> None:
    with run_emulator_in_thread(api_key=KEY, job_seconds=(0, 0)) as emu:
        with httpx.Client(headers={"Authorization": f"Bearer {KEY}"}) as c:
            task = text_task()
            assert c.post(emu.url, json=[task]).status_code == 200
            [item] = c.post(emu.url, json=[{"taskType": "getResponse", "taskUUID": task["taskUUID"]}]).json()["data"]
            assert item["status"] == "success"
            assert c.get(item["videoURL"]).content[4:8] == b"ftyp"
        assert emu.stats.accepted[task["taskUUID"]] == 1


def test_serve_in_a_subprocess_takes_faults_over_http_and_keeps_stdout_clean() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    code = f"from kling_mcp.emulator import serve; serve(port={port}, api_key={KEY!r}, time_scale=0.001)"
    process = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{port}"
    try:
        with httpx.Client(headers={"Authorization": f"Bearer {KEY}"}, timeout=2) as c:
            deadline = time.monotonic() + 10
            while True:
                try:
                    c.get(f"{base}/_emulator/stats")
                    break
                except httpx.TransportError:
                    assert process.poll() is None and time.monotonic() < deadline, "the emulator did not start"
                    time.sleep(0.05)
            assert c.post(f"{base}/_emulator/faults", json={"kind": "http_504"}).status_code == 200
            assert c.post(f"{base}/v1", json=[text_task()]).status_code == 504
            assert c.post(f"{base}/v1", json=[text_task()]).status_code == 200
            stats = c.get(f"{base}/_emulator/stats").json()
            assert stats["faults_fired"] == {"http_504": 1} and len(stats["accepted"]) == 1
    finally:
        process.terminate()
        stdout, stderr = process.communicate(timeout=10)
    assert stdout == b""
    assert b"Runware emulator" in stderr and KEY.encode() not in stderr


# -- the placeholder video ---------------------------------------------------------------


class Box:
    def __init__(self, kind: bytes, offset: int, data: bytes, children: list[Box]) -> None:
        self.kind, self.offset, self.data, self.children = kind, offset, data, children

    def find(self, *path: bytes) -> Box:
        box = self
        for kind in path:
            box = next(b for b in box.children if b.kind == kind)
        return box


_CONTAINERS = {b"moov", b"trak", b"mdia", b"minf", b"dinf", b"stbl"}


def parse_boxes(data: bytes, offset: int = 0, end: int | None = None) -> list[Box]:
    end = len(data) if end is None else end
    boxes = []
    while offset < end:
        size, kind = struct.unpack(">I4s", data[offset : offset + 8])
        assert size >= 8 and offset + size <= end, f"box {kind!r} at {offset} overruns its parent"
        children = parse_boxes(data, offset + 8, offset + size) if kind in _CONTAINERS else []
        boxes.append(Box(kind, offset, data[offset + 8 : offset + size], children))
        offset += size
    assert offset == end
    return boxes


class BitReader:
    def __init__(self, data: bytes) -> None:
        self.bits = "".join(f"{b:08b}" for b in data.replace(b"\x00\x00\x03", b"\x00\x00"))
        self.pos = 0

    def u(self, n: int) -> int:
        value = int(self.bits[self.pos : self.pos + n], 2)
        self.pos += n
        return value

    def ue(self) -> int:
        zeros = 0
        while self.bits[self.pos] == "0":
            zeros += 1
            self.pos += 1
        return self.u(zeros + 1) - 1


def test_placeholder_mp4_is_a_deterministic_well_formed_h264_mp4() -> None:
    data = placeholder_mp4()
    assert data == placeholder_mp4() and 1000 < len(data) < 20_000
    root = Box(b"", 0, data, parse_boxes(data))
    ftyp, moov, mdat = root.children
    assert ftyp.data[:4] == b"isom" and b"avc1" in ftyp.data
    stbl = root.find(b"moov", b"trak", b"mdia", b"minf", b"stbl")
    for path in ((b"mvhd",), (b"trak", b"tkhd"), (b"trak", b"mdia", b"mdhd"), (b"trak", b"mdia", b"hdlr"),
                 (b"trak", b"mdia", b"minf", b"vmhd"), (b"trak", b"mdia", b"minf", b"dinf", b"dref")):  # fmt: skip
        moov.find(*path)
    assert root.find(b"moov", b"trak", b"mdia", b"hdlr").data[8:12] == b"vide"
    assert {b.kind for b in stbl.children} >= {b"stsd", b"stts", b"stsc", b"stsz", b"stco"}

    # The sample table points at exactly the bytes in mdat.
    sample_size = struct.unpack(">IIII", stbl.find(b"stsz").data[:16])[3]
    chunk_offset = struct.unpack(">III", stbl.find(b"stco").data[:12])[2]
    assert chunk_offset == mdat.offset + 8 and sample_size == len(mdat.data)
    nal_length = struct.unpack(">I", mdat.data[:4])[0]
    assert nal_length == len(mdat.data) - 4 and mdat.data[4] & 0x1F == 5  # one IDR slice

    # The sample entry carries an SPS that describes the frame the track header announces.
    stsd = stbl.find(b"stsd").data
    assert stsd[12:16] == b"avc1"
    width, height = struct.unpack(">HH", stsd[8 + 8 + 24 : 8 + 8 + 28])
    avcc = stsd[stsd.index(b"avcC") + 4 :]
    sps_length = struct.unpack(">H", avcc[6:8])[0]
    sps = avcc[8 : 8 + sps_length]
    assert sps[0] & 0x1F == 7 and sps[1] == 66  # Baseline
    bits = BitReader(sps[4:])
    assert [bits.ue(), bits.ue(), bits.ue(), bits.ue(), bits.u(1)] == [0, 0, 2, 1, 0]
    assert ((bits.ue() + 1) * 16, (bits.ue() + 1) * 16) == (width, height) == (64, 64)
    tkhd = root.find(b"moov", b"trak", b"tkhd").data
    assert struct.unpack(">II", tkhd[-8:]) == (64 << 16, 64 << 16)
