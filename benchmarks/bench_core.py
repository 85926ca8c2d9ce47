"""Time to check and build each seed example (the pure core), median and p99.

    python benchmarks/bench_core.py [--rounds N]

Prints one line per example and a summary. Target: median <= 50 us per request.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from kling_mcp.core import prepare  # noqa: E402
from kling_mcp.payload import VideoRequest  # noqa: E402
from tests.seed_cases import CASES, EXAMPLES, example_id, resolve  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2000)
    rounds = parser.parse_args().rounds
    all_times: list[float] = []
    print(f"{'example':<58} {'median us':>10} {'p99 us':>10}")
    for example in EXAMPLES:
        _tool, args = CASES[example_id(example)]
        request = VideoRequest.model_validate(resolve(args, example["request"]))
        for _ in range(50):
            prepare(request)  # warm-up
        times = []
        for _ in range(rounds):
            start = time.perf_counter_ns()
            prepare(request)
            times.append((time.perf_counter_ns() - start) / 1000)
        times.sort()
        all_times.extend(times)
        title = f"{example['request']['model'].split('@')[1]}: {example['title']}"[:58]
        print(f"{title:<58} {statistics.median(times):>10.1f} {times[int(len(times) * 0.99)]:>10.1f}")
    all_times.sort()
    median, p99 = statistics.median(all_times), all_times[int(len(all_times) * 0.99)]
    print(f"\nall {len(EXAMPLES)} examples x {rounds} rounds: median {median:.1f} us, p99 {p99:.1f} us "
          f"(target: median <= 50 us) -> {'OK' if median <= 50 else 'OVER TARGET'}")  # fmt: skip


if __name__ == "__main__":
    main()
