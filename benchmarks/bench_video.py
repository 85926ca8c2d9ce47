"""The video layer and the emulator's renderer, on 1080p clips.

    python benchmarks/bench_video.py [--seconds 10] [--repeat 3]

Prints, as wall time and CPU time (CPU above wall means FFmpeg used more than one core):
- rendering a clip in the emulator (1080p, 24 fps, with sound) in MP4, MOV and WEBM, and serving
  it again from the cache;
- extracting the last frame of a clip (seek near the end, decode to the last frame), beside the
  first frame and beside decoding every frame, which is what a naive "last frame" costs;
- joining three clips by stream copy, and by re-encoding (one of the three at 720p forces it);
- a contact sheet of the three clips;
- what importing the server costs, and what PyAV would add if it were imported at start-up.
Medians of ``--repeat`` runs; every run uses a fresh output file.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from kling_mcp.emulator._render import plan_clip, render
from kling_mcp.video import contact_sheet, extract_frame, join, probe
from kling_mcp.video._av import load_av, open_video


def timed(run: Callable[[int], Any], repeat: int) -> tuple[float, float, Any]:
    """Median wall and CPU seconds of ``run(i)`` over ``repeat`` runs, and the last result."""
    walls, cpus = [], []
    result = None
    for i in range(repeat):
        wall, cpu = time.perf_counter(), time.process_time()
        result = run(i)
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    return statistics.median(walls), statistics.median(cpus), result


def show(label: str, wall: float, cpu: float, extra: str = "") -> None:
    print(f"  {label:<44} {wall * 1000:10.2f} ms wall {cpu * 1000:10.2f} ms CPU  {extra}")


def clip_task(seconds: int, fmt: str, width: int = 1920, height: int = 1080) -> dict[str, Any]:
    return {"taskUUID": str(uuid.uuid4()), "model": "klingai:kling-video@o3-pro", "duration": seconds,
            "width": width, "height": height, "outputFormat": fmt,
            "providerSettings": {"klingai": {"sound": True}}}  # fmt: skip


def no_media(_: str) -> None:
    return None


def decode_all(path: Path) -> int:
    with open_video(path) as (container, stream):
        return sum(1 for _ in container.decode(stream))


def import_seconds(statement: str, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        code = f"import time; t = time.perf_counter(); {statement}; print(time.perf_counter() - t)"
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
        times.append(float(out.stdout))
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    seconds, repeat = args.seconds, args.repeat
    load_av()  # the one-off cost of loading FFmpeg is reported below, not charged to the first run
    with tempfile.TemporaryDirectory(prefix="bench-video-") as scratch:
        folder = Path(scratch)
        cache = folder / "cache"
        print(f"Rendering a {seconds} s 1080p clip at 24 fps with sound (emulator, fresh each run):")
        for fmt in ("MP4", "MOV", "WEBM"):

            def fresh(_: int, fmt: str = fmt) -> Path:
                return render(plan_clip(clip_task(seconds, fmt), 0, seconds, no_media), cache)

            wall, cpu, path = timed(fresh, repeat)
            show(fmt, wall, cpu, f"{path.stat().st_size / 1e6:.1f} MB")
        plan = plan_clip(clip_task(seconds, "MP4"), 0, seconds, no_media)
        render(plan, cache)
        wall, cpu, _ = timed(lambda _: render(plan, cache), repeat)
        show("MP4 again, from the cache", wall, cpu)

        clips = [render(plan_clip(clip_task(seconds, "MP4"), 0, seconds, no_media), cache) for _ in range(3)]
        smaller = render(plan_clip(clip_task(seconds, "MP4", 1280, 720), 0, seconds, no_media), cache)
        clip = clips[0]
        print(f"\nFrames of a {seconds} s 1080p H.264 clip ({probe(clip).fps:g} fps, a keyframe every 2 s):")
        wall, cpu, info = timed(lambda i: extract_frame(clip, "last", folder / f"last{i}.png"), repeat)
        show("last frame (seek near the end)", wall, cpu, f"t = {info.time_s:.3f} s")
        wall, cpu, _ = timed(lambda i: extract_frame(clip, "first", folder / f"first{i}.png"), repeat)
        show("first frame", wall, cpu)
        wall, cpu, _ = timed(lambda i: extract_frame(clip, seconds / 2, folder / f"mid{i}.png"), repeat)
        show(f"frame at {seconds / 2:g} s", wall, cpu)
        wall, cpu, count = timed(lambda _: decode_all(clip), repeat)
        show("for comparison: decoding every frame", wall, cpu, f"{count} frames")

        print(f"\nJoining three {seconds} s clips with sound:")
        wall, cpu, copied = timed(lambda i: join(clips, folder / f"copy{i}.mp4"), repeat)
        show("stream copy (three 1080p clips)", wall, cpu, f"{copied.duration_s:g} s, reencoded={copied.reencoded}")
        mixed = [clips[0], smaller, clips[1]]
        wall, cpu, encoded = timed(lambda i: join(mixed, folder / f"encode{i}.mp4"), repeat)
        show("re-encode (1080p, 720p, 1080p -> 1080p)", wall, cpu,
             f"{encoded.duration_s:g} s, reencoded={encoded.reencoded}")  # fmt: skip
        wall, cpu, _ = timed(lambda i: contact_sheet(clips, folder / f"sheet{i}.png"), repeat)
        show("contact sheet of the three, 4 frames each", wall, cpu)

    print("\nStart-up (fresh interpreter each time):")
    server = import_seconds("import kling_mcp.server", repeat)
    pyav = import_seconds("import av", repeat)
    check = "import sys, kling_mcp.server; print('av' in sys.modules)"
    loaded = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True, check=True).stdout.strip()
    print(f"  import kling_mcp.server                       {server * 1000:10.2f} ms (loads PyAV: {loaded})")
    print(f"  import av (what a start-up import would add)  {pyav * 1000:10.2f} ms")


if __name__ == "__main__":
    main()
