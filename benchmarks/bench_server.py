"""The MCP server over stdio: start-up, dry-run round trip, and tools/list size.

    python benchmarks/bench_server.py [--starts 10] [--calls 300]

Prints: the time from spawning `python -m kling_mcp` to its initialize response, next to a bare
MCPServer hello-world started the same way (target: at most 150 ms more); the p50/p99 of a
dry-run tools/call round trip (target: p50 at most 5 ms); and the size in bytes of the tools/list
response (target: at most 24 KB).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any

HELLO = (
    "from mcp.server.mcpserver import MCPServer\n"
    "server = MCPServer('hello')\n"
    "@server.tool()\n"
    "def hello(name: str) -> str:\n"
    "    return 'hi ' + name\n"
    "server.run()\n"
)
INIT = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
    "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "bench", "version": "1"}}}  # fmt: skip
DRY_RUN = {"model": "klingai:kling-video@o3-standard", "prompt": "A fox runs through snow at dawn", "duration": 8,
           "sound": True, "dry_run": True}  # fmt: skip


class Peer:
    def __init__(self, argv: list[str], env: dict[str, str]) -> None:
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env)
        self.next_id = 1

    def send(self, message: dict[str, Any]) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(message).encode() + b"\n")
        self.proc.stdin.flush()

    def request(self, method: str, params: dict[str, Any]) -> tuple[dict[str, Any], int]:
        self.next_id += 1
        self.send({"jsonrpc": "2.0", "id": self.next_id, "method": method, "params": params})
        assert self.proc.stdout is not None
        while True:
            line = self.proc.stdout.readline()
            message = json.loads(line)
            if message.get("id") == self.next_id:
                return message, len(line)

    def close(self) -> None:
        self.proc.kill()
        self.proc.wait()


def time_to_initialize(argv: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    peer = Peer(argv, env)
    peer.send(INIT)
    assert peer.proc.stdout is not None
    json.loads(peer.proc.stdout.readline())
    elapsed = time.perf_counter() - start
    peer.close()
    return elapsed * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--starts", type=int, default=10)
    parser.add_argument("--calls", type=int, default=300)
    args = parser.parse_args()
    data_dir = tempfile.mkdtemp()
    env = {**os.environ, "KLING_MCP_DATA_DIR": data_dir}
    env.pop("RUNWARE_API_KEY", None)
    kling = [sys.executable, "-m", "kling_mcp"]
    hello = [sys.executable, "-c", HELLO]
    time_to_initialize(kling, env), time_to_initialize(hello, env)  # warm the file cache
    kling_ms = [time_to_initialize(kling, env) for _ in range(args.starts)]
    hello_ms = [time_to_initialize(hello, env) for _ in range(args.starts)]
    k, h = statistics.median(kling_ms), statistics.median(hello_ms)
    print(f"spawn -> initialize response (median of {args.starts}): kling-mcp {k:.0f} ms, bare MCPServer {h:.0f} ms, "
          f"difference {k - h:+.0f} ms (target <= 150 ms) -> {'OK' if k - h <= 150 else 'OVER TARGET'}")  # fmt: skip

    peer = Peer(kling, env)
    peer.send(INIT)
    assert peer.proc.stdout is not None
    peer.proc.stdout.readline()
    peer.send({"jsonrpc": "2.0", "method": "notifications/initialized"})
    listing, size = peer.request("tools/list", {})
    for _ in range(20):
        peer.request("tools/call", {"name": "text_to_video", "arguments": DRY_RUN})
    rtts = []
    for _ in range(args.calls):
        start = time.perf_counter()
        reply, _ = peer.request("tools/call", {"name": "text_to_video", "arguments": DRY_RUN})
        rtts.append((time.perf_counter() - start) * 1000)
        assert reply["result"]["structuredContent"]["status"] == "dry_run"
    peer.close()
    rtts.sort()
    p50, p99 = statistics.median(rtts), rtts[int(len(rtts) * 0.99)]
    print(f"dry-run tools/call round trip over stdio ({args.calls} calls): p50 {p50:.2f} ms, p99 {p99:.2f} ms "
          f"(target p50 <= 5 ms) -> {'OK' if p50 <= 5 else 'OVER TARGET'}")  # fmt: skip
    print(f"tools/list response: {size} bytes for {len(listing['result']['tools'])} tools (target <= 24576) -> "
          f"{'OK' if size <= 24576 else 'OVER TARGET'}")  # fmt: skip


if __name__ == "__main__":
    main()
