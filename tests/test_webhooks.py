"""Webhooks: served over HTTP with a public URL, jobs end by Runware's deliveries, not by polls.

Everything runs for real on loopback: the server's HTTP app (cli.http_app, with the receiver beside
/mcp) under uvicorn, an MCP client over streamable HTTP, and the emulator, which POSTs each finished
result to the task's webhookURL (and can drop, duplicate or delay those calls).
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import sqlite3
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
import uvicorn
from mcp import Client

from kling_mcp.cli import http_app
from kling_mcp.emulator import Emulator, Fault, run_emulator
from kling_mcp.ledger import Ledger
from kling_mcp.runware import scrub
from kling_mcp.server import create_server
from kling_mcp.settings import Settings

KEY = "rw-test-SECRET-0123456789abcdef"
TOKEN = "http-token-0123456789"
FOX = {"model": "o3-standard", "prompt": "A fox runs through snow at dawn", "duration": 5}


@dataclass
class Served:
    url: str  # the server's base URL, which is also its public URL
    settings: Settings

    def hook(self, task: dict[str, Any]) -> tuple[str, str]:
        """A submitted task's webhook address and the secret in it."""
        address = task["webhookURL"]
        return address.split("?")[0], parse_qs(urlsplit(address).query)["token"][0]


@asynccontextmanager
async def serving(emu: Emulator, tmp_path: Path, token: str | None = None, **settings_kw: Any) -> AsyncIterator[Served]:
    """kling-mcp's HTTP app on a loopback port, with that port's URL as its public URL."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    sock.setblocking(False)
    base = f"http://127.0.0.1:{sock.getsockname()[1]}"
    settings = Settings(api_key=KEY, base_url=emu.url, data_dir=tmp_path / "data", output_dir=tmp_path / "videos",
                        public_url=base, confirm_above_usd=100, **settings_kw)  # fmt: skip
    app = http_app(create_server(settings), "127.0.0.1", token, [urlsplit(base).netloc], webhooks=True)
    server = uvicorn.Server(uvicorn.Config(app, lifespan="on", log_level="warning", loop="asyncio"))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        while not server.started:
            assert not task.done(), "the server did not start"
            await asyncio.sleep(0.01)
        yield Served(base, settings)
    finally:
        server.should_exit = True
        await task
        sock.close()


def submitted(emu: Emulator) -> list[dict[str, Any]]:
    return [t for t in emu.stats.tasks if isinstance(t, dict) and t.get("taskType") == "videoInference"]


async def test_a_job_ends_by_webhook_with_no_routine_poll_and_its_secret_is_kept_nowhere(
    tmp_path: Path, ledger_at: Path | str
) -> None:
    database = {"database_url": ledger_at} if isinstance(ledger_at, str) else {}
    async with run_emulator(api_key=KEY, job_seconds=(0.3, 0.5), seed=1) as emu:
        async with serving(emu, tmp_path, safety_poll_s=60, **database) as served:
            async with Client(f"{served.url}/mcp") as client:
                job = (await client.call_tool("text_to_video", FOX)).structured_content
                done = (await client.call_tool("wait_for_video", {"task_id": job["task_id"], "timeout_seconds": 20})
                        ).structured_content  # fmt: skip
    assert done["status"] == "success" and done["results"][0]["video_url"].endswith(".mp4")
    assert done["cost_usd"] == emu.billed()[job["task_id"]]
    # The result came by webhook: not one getResponse was sent, and the delivery was answered 2xx.
    assert emu.stats.requests_by_task_type["getResponse"] == 0
    assert emu.stats.webhooks_delivered == {job["task_id"]: 1}
    [task] = submitted(emu)
    address, secret = served.hook(task)
    assert address == f"{served.url}/runware/webhook/{job['task_id']}" and secret.startswith("kmwh_")
    # The secret is in no answer, nor in the ledger, whose stored request has no webhookURL at all.
    assert secret not in repr(job) + repr(done)
    location = ledger_at if isinstance(ledger_at, str) else served.settings.ledger_path
    ledger = Ledger(location)
    try:
        record = ledger.get(job["task_id"])
        assert record is not None and "webhookURL" not in record.payload
        assert ledger.webhook_secret_matches(job["task_id"], secret)
    finally:
        ledger.close()
    if isinstance(location, Path):
        with sqlite3.connect(location) as db:
            dump = "\n".join(db.iterdump())
        assert secret not in dump and job["task_id"] in dump
    # Echoed back in a provider's message, it is masked like the API key.
    assert secret not in scrub(f"webhookURL {task['webhookURL']} is not reachable")


async def test_forged_or_unreadable_webhook_calls_are_refused_and_change_nothing(tmp_path: Path) -> None:
    async with run_emulator(api_key=KEY, job_seconds=(60, 60), seed=2) as emu:
        async with serving(emu, tmp_path, token=TOKEN, safety_poll_s=60) as served:
            mine, other = await _submit_two(served)
            [task_a, task_b] = submitted(emu)
            address_a, secret_a = served.hook(task_a)
            _, secret_b = served.hook(task_b)
            win = {"taskType": "videoInference", "taskUUID": mine, "status": "success", "cost": 0.01,
                   "videoUUID": "0b5c5a7e-5d0d-4e0b-8d8e-3f1e2b9d0c11", "videoURL": "https://evil.example/v.mp4"}  # fmt: skip
            async with httpx.AsyncClient() as http:
                calls = {
                    "no secret": await http.post(address_a, json={"data": [win]}),
                    "wrong secret": await http.post(address_a, params={"token": "kmwh_guess"}, json={"data": [win]}),
                    "another task's secret": await http.post(address_a, params={"token": secret_b}, json={"data": [win]}),
                    "the secret on another task's address": await http.post(
                        address_a.replace(mine, other), params={"token": secret_a}, json={"data": [win | {"taskUUID": other}]}),
                    "not JSON": await http.post(address_a, params={"token": secret_a}, content=b"{\"data\": [{"),
                    "names another task": await http.post(
                        address_a, params={"token": secret_a}, json={"data": [win | {"taskUUID": other}]}),
                    "names no task": await http.post(address_a, params={"token": secret_a}, json={"data": [{"status": "success"}]}),
                    "not a delivery": await http.post(address_a, params={"token": secret_a}, json=[1, 2]),
                    "a GET": await http.get(address_a, params={"token": secret_a}),
                    "a foreign Host": await http.post(address_a, params={"token": secret_a}, json={"data": [win]},
                                                      headers={"Host": "evil.example"}),
                    "/mcp without the token": await http.post(f"{served.url}/mcp", json={}),
                }  # fmt: skip
            ledger = Ledger(served.settings.ledger_path)
            try:
                jobs = [ledger.get(mine), ledger.get(other)]
            finally:
                ledger.close()
    statuses = {name: response.status_code for name, response in calls.items()}
    assert statuses == {
        "no secret": 404, "wrong secret": 404, "another task's secret": 404, "the secret on another task's address": 404,
        "not JSON": 400, "names another task": 400, "names no task": 400, "not a delivery": 400,
        "a GET": 405, "a foreign Host": 421, "/mcp without the token": 401,
    }  # fmt: skip
    # Refusals carry no secret back, and both jobs are as Runware left them: running, nothing charged.
    assert all(secret_a not in r.text and secret_b not in r.text for r in calls.values())
    for job in jobs:
        assert job is not None and job.status == "submitted" and job.results == [] and job.cost_usd is None


async def _submit_two(served: Served) -> tuple[str, str]:
    """Two jobs submitted through the MCP endpoint (the bearer token is sent as clients do)."""
    async with httpx.AsyncClient(headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30) as http:
        ids = [await _call_text_to_video(http, served.url) for _ in range(2)]
    return ids[0], ids[1]


async def _call_text_to_video(http: httpx.AsyncClient, base: str) -> str:
    """One tools/call over plain streamable HTTP (the SDK's client cannot send a bearer token by URL alone)."""
    headers = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}
    init = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "test", "version": "1"}}}  # fmt: skip
    answer = await http.post(f"{base}/mcp", json=init, headers=headers)
    assert answer.status_code == 200, answer.text
    session = {"Mcp-Session-Id": answer.headers["mcp-session-id"]} if "mcp-session-id" in answer.headers else {}
    await http.post(f"{base}/mcp", json={"jsonrpc": "2.0", "method": "notifications/initialized"}, headers=headers | session)
    call = {"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "text_to_video", "arguments": FOX}}
    answer = await http.post(f"{base}/mcp", json=call, headers=headers | session)
    assert answer.status_code == 200, answer.text
    text = answer.text
    body = json.loads(text[text.index("{"):text.rindex("}") + 1]) if "data:" in text else answer.json()
    return body["result"]["structuredContent"]["task_id"]


async def test_a_duplicated_webhook_is_harmless(tmp_path: Path) -> None:
    async with run_emulator(api_key=KEY, job_seconds=(0.3, 0.5), seed=3) as emu:
        emu.add_fault(Fault("webhook_duplicate"))
        async with serving(emu, tmp_path, safety_poll_s=60) as served:
            async with Client(f"{served.url}/mcp") as client:
                job = (await client.call_tool("text_to_video", FOX | {"number_results": 2})).structured_content
                done = (await client.call_tool("wait_for_video", {"task_id": job["task_id"], "timeout_seconds": 20})
                        ).structured_content  # fmt: skip
                await asyncio.sleep(0.3)  # let the second copy land too
                again = (await client.call_tool("get_video_status", {"task_ids": [job["task_id"]]})).structured_content
    assert emu.stats.faults_fired["webhook_duplicate"] == 1
    assert emu.stats.webhooks_delivered[job["task_id"]] == 3  # two results, the first delivered twice
    assert done["status"] == "success" and len(done["results"]) == 2
    # Each result once, and the cost charged once per result, however many times it was delivered.
    assert done["cost_usd"] == emu.billed()[job["task_id"]]
    assert again["jobs"][0]["results"] == done["results"] and again["jobs"][0]["cost_usd"] == done["cost_usd"]
    assert emu.stats.requests_by_task_type["getResponse"] <= 1  # get_video_status may look once, on request


async def test_a_dropped_webhook_is_caught_by_the_safety_net_poll(tmp_path: Path) -> None:
    async with run_emulator(api_key=KEY, job_seconds=(0.2, 0.3), seed=4) as emu:
        emu.add_fault(Fault("webhook_drop"))
        async with serving(emu, tmp_path, safety_poll_s=1.5) as served:
            async with Client(f"{served.url}/mcp") as client:
                job = (await client.call_tool("text_to_video", FOX)).structured_content
                done = (await client.call_tool("wait_for_video", {"task_id": job["task_id"], "timeout_seconds": 20})
                        ).structured_content  # fmt: skip
    assert emu.stats.faults_fired["webhook_drop"] == 1 and emu.stats.webhook_posts == {}
    assert done["status"] == "success" and done["cost_usd"] == emu.billed()[job["task_id"]]
    # Found by the slow safety net: one getResponse, however short the render.
    assert emu.stats.requests_by_task_type["getResponse"] == 1


def test_a_public_url_needs_a_token_and_must_be_http(tmp_path: Path) -> None:
    env = {**os.environ, "KLING_MCP_DATA_DIR": str(tmp_path), "KLING_MCP_PUBLIC_URL": "https://kling.example.com"}
    env.pop("KLING_MCP_HTTP_TOKEN", None)
    open_to_all = subprocess.run([sys.executable, "-m", "kling_mcp", "--http", "--port", "1"], env=env,
                                 capture_output=True, text=True, timeout=30)  # fmt: skip
    assert open_to_all.returncode == 2 and "kling.example.com without a bearer token" in open_to_all.stderr
    with pytest.raises(ValueError, match="KLING_MCP_PUBLIC_URL must be the http"):
        Settings(public_url="ftp://kling.example.com")
    assert Settings(public_url=" https://kling.example.com/ ").public_url == "https://kling.example.com"


async def test_a_refusal_delivered_by_webhook_ends_the_job_as_failed_with_nothing_charged(tmp_path: Path) -> None:
    async with run_emulator(api_key=KEY, job_seconds=(0.2, 0.3), seed=5) as emu:
        emu.add_fault(Fault("content_policy"))  # reported as an error naming the task, beside no result
        async with serving(emu, tmp_path, safety_poll_s=60) as served:
            async with Client(f"{served.url}/mcp") as client:
                job = (await client.call_tool("text_to_video", FOX)).structured_content
                done = (await client.call_tool("wait_for_video", {"task_id": job["task_id"], "timeout_seconds": 20})
                        ).structured_content  # fmt: skip
    assert emu.stats.requests_by_task_type["getResponse"] == 0 and emu.stats.webhooks_delivered == {job["task_id"]: 1}
    assert done["status"] == "failed" and done["results"] == [] and not done["cost_usd"]
    assert done["errors"][0]["category"] == "content_policy" and job["task_id"] not in emu.billed()
