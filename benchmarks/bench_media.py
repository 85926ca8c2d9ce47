"""Local media: checking a file (sniff + SHA-256) and uploading it streamed, against the emulator.

    python benchmarks/bench_media.py [--mb 50]

Prints the time to check a file of the given size (the sandbox reads and hashes it whole), the
time and throughput of its streamed upload (base64 in a JSON body, as Runware's mediaStorage
takes it), the peak RSS the upload added to the uploading process (target: far below the file's
size, since the file is never held whole), and the cost of a second use of the same content
(a ledger look-up, nothing sent). The uploader runs in a subprocess of its own so its RSS is its
own; the emulator runs here, in a thread.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from kling_mcp.emulator import placeholder_mp4, run_emulator_in_thread  # noqa: E402

KEY = "bench-key"

UPLOADER = textwrap.dedent(
    """
    import json, resource, sys, time
    import anyio
    from pathlib import Path
    from kling_mcp.files import MediaUploads, Sandbox, SizeLimits
    from kling_mcp.ledger import Ledger
    from kling_mcp.runware import RunwareClient

    url, key, folder, name = sys.argv[1:5]
    def rss_mb():
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    async def main():
        sandbox = Sandbox([Path(folder)], SizeLimits(video=10**10))
        ledger = Ledger(Path(folder) / "ledger.sqlite3")
        async with RunwareClient(key, url, timeout=120) as client:
            uploads = MediaUploads(client, ledger)
            t0 = time.perf_counter()
            local = sandbox.check(str(Path(folder) / name), "video")
            checked = time.perf_counter() - t0
            before = rss_mb()
            t0 = time.perf_counter()
            first = await uploads.store(local)
            uploaded = time.perf_counter() - t0
            after = rss_mb()
            t0 = time.perf_counter()
            second = await uploads.store(sandbox.check(str(Path(folder) / name), "video"))
            again = time.perf_counter() - t0
        ledger.close()
        print(json.dumps({"check_s": checked, "upload_s": uploaded, "rss_before_mb": before, "rss_peak_mb": after,
                          "second_s": again, "reused": second.reused, "same_uuid": first.media_uuid == second.media_uuid,
                          "uploads_sent": uploads.uploads_sent}))

    anyio.run(main)
    """
)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mb", type=int, default=50, help="size of the video file, in MB (default 50)")
    args = parser.parse_args()
    size = args.mb * 1_000_000
    with tempfile.TemporaryDirectory() as tmp, run_emulator_in_thread(api_key=KEY) as emulator:
        clip = Path(tmp) / "source.mp4"
        with clip.open("wb") as handle:
            handle.write(placeholder_mp4())
            chunk = bytes(range(256)) * 4096
            while handle.tell() < size:
                handle.write(chunk[: size - handle.tell()])
        out = subprocess.run(
            [sys.executable, "-c", UPLOADER, emulator.url, KEY, tmp, clip.name],
            check=True, capture_output=True, text=True,
        ).stdout  # fmt: skip
        result = json.loads(out)
        [task] = [t for t in emulator.stats.tasks if t.get("taskType") == "mediaStorage"]
        intact = task["media"].startswith("data:video/mp4;base64,") and len(task["media"].split(",", 1)[1]) == 4 * ((size + 2) // 3)
    added = result["rss_peak_mb"] - result["rss_before_mb"]
    print(f"file: {args.mb} MB video")
    print(f"check (realpath, stat, sniff, SHA-256 of the whole file): {result['check_s'] * 1000:.0f} ms "
          f"({args.mb / result['check_s']:.0f} MB/s)")  # fmt: skip
    print(f"streamed upload to the emulator on loopback: {result['upload_s']:.2f} s ({args.mb / result['upload_s']:.0f} MB/s), "
          f"body intact: {intact}")  # fmt: skip
    print(f"peak RSS of the uploading process: {result['rss_peak_mb']:.1f} MB, of which the upload added {added:.1f} MB "
          f"(file {args.mb} MB, base64 body {args.mb * 4 / 3:.0f} MB) -> {'OK' if added < args.mb / 4 else 'HIGH'}")  # fmt: skip
    print(f"second use of the same content: {result['second_s'] * 1000:.1f} ms (check + ledger look-up), "
          f"reused: {result['reused']}, same UUID: {result['same_uuid']}, uploads sent: {result['uploads_sent']}")


if __name__ == "__main__":
    main()
