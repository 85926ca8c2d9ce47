"""When to poll a job next: after each model's render times as the ledger recorded them. Pure.

The notice delay is the time between a job's end and the poll that finds it ended. A poll that
comes SHARE of the job's age after the last one that saw it running keeps that delay under SHARE
of the render, however long it was. So polls go geometric, by (1 + SHARE), from the earliest
moment the model may have finished: its shortest render. The first poll is not at the shortest
itself but SHARE after it: a job that ended right at the shortest is still noticed within SHARE
of its render, and the one poll saved is most of what a lone job costs. Past the model's longest,
the gaps widen (a slow job, polled less and less). A job's schedule is its own: a new submission
leaves the others' as they are.

What a finished job teaches is an interval: it was seen running at one age, and ended by the
next. Most jobs end before their first poll, so that interval says little of how early a model
can finish; and a schedule learnt only from them would never find out that a model got faster.
So one job in PROBE_EVERY (by its taskUUID, the same on every instance and restart) is a probe:
its polls start well before the shortest, and the shortest is learnt from the probes.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

# With no history for a model: Kling's published 30-90 s.
DEFAULT_RENDER_S = (30.0, 90.0)
# Fewer render times than this (probes, for the shortest) are not yet a model's history.
MIN_SAMPLES = 5
# Each poll at most this share of the job's age after the last one that saw it running: the notice
# delay is then under 16% of the render, and about half that typically (the goal is 10%).
SHARE = 0.16
FIRST_SHARE = 0.1
# Past the model's longest render: a slow job, polled less and less.
LATE_SHARE = 0.25
# A job whose fate is open (pending, unknown) is looked at soon, then less and less often.
OPEN_FATE_SHARE = 0.5
# One job in this many is a probe, first polled at PROBE_START of the model's shortest render.
PROBE_EVERY = 8
PROBE_START = 0.85
# A job found ended at its first poll ended some time before: taken as about half a gap earlier.
ENDED_BEFORE_FIRST_LOOK = 1 / (1 + SHARE) ** 0.5


def is_probe(task_uuid: str) -> bool:
    """Whether this job looks early (its taskUUID is a random uuid4: one in PROBE_EVERY is)."""
    digits = task_uuid.replace("-", "")[-4:]
    try:
        return int(digits, 16) % PROBE_EVERY == 0
    except ValueError:
        return False


@dataclass(frozen=True, slots=True)
class RenderSample:
    """What the ledger knows of one finished job's render: when it was last seen running and when its
    end was noticed, in seconds after its acknowledgement."""

    task_uuid: str
    noticed_s: float
    seen_running_s: float | None = None

    @property
    def seconds(self) -> float:
        """The best estimate of its render time: the middle of the interval it ended in."""
        if self.seen_running_s is None or self.seen_running_s <= 0:
            return self.noticed_s * ENDED_BEFORE_FIRST_LOOK
        return (min(self.seen_running_s, self.noticed_s) + self.noticed_s) / 2


@dataclass(frozen=True, slots=True)
class RenderWindow:
    shortest: float  # the model's typical shortest render (10th percentile)
    longest: float  # its 90th percentile
    learnt: bool = False  # from the model's own jobs, not Kling's published times

    @classmethod
    def default(cls, render_s: tuple[float, float] = DEFAULT_RENDER_S) -> RenderWindow:
        lo, hi = render_s
        return cls(lo, hi)


def render_windows(samples: Mapping[str, Iterable[RenderSample]], default: RenderWindow) -> dict[str, RenderWindow]:
    """Each model's window from its finished jobs; a model with too few keeps the default. The shortest
    comes from the probes once there are enough of them (an unbiased sample, seen from early on)."""
    windows: dict[str, RenderWindow] = {}
    for model, found in samples.items():
        found = list(found)
        if len(found) < MIN_SAMPLES:
            continue
        deciles = _deciles([s.seconds for s in found])
        probes = [s.seconds for s in found if is_probe(s.task_uuid)]
        shortest = _deciles(probes)[0] if len(probes) >= MIN_SAMPLES else deciles[0]
        # Probes and all jobs are two samples: the shortest is kept no later than the median of all.
        windows[model] = RenderWindow(min(shortest, deciles[4]), max(deciles[-1], deciles[4]), learnt=True)
    return windows


def _deciles(values: list[float]) -> list[float]:
    """The 10th to 90th percentiles, and the median at [4]."""
    return statistics.quantiles(values, n=10, method="inclusive")


def first_poll_at(window: RenderWindow, *, probe: bool) -> float:
    return window.shortest * (PROBE_START if probe else 1 + FIRST_SHARE)


def next_poll_in(
    age: float, window: RenderWindow, *, open_fate: bool, floor: float, cap: float, probe: bool = False
) -> float:
    """Seconds from now to the next poll of a job ``age`` seconds after its acknowledgement (or its
    creation, while its fate is open), just seen running (or just sent); never under ``floor``, and, once
    it may be done, never over ``cap``."""
    first = first_poll_at(window, probe=probe)
    if not window.learnt:
        # Published times are not this setup's record (the emulator renders in seconds): the cap bounds them.
        first = min(first, cap)
    if open_fate:
        gap = OPEN_FATE_SHARE * age
    elif first - age >= max(floor, SHARE * age):
        # (A look within a gap of the first poll, riding along another job's, stands for it.)
        # A model's record says nothing ends before its shortest: the cap (the longest gap once a job may be
        # done) does not apply.
        return max(first - age, floor)
    elif age > window.longest:
        gap = LATE_SHARE * age
    else:
        gap = SHARE * age
    return min(max(gap, floor), cap)


def may_poll_early_by(age: float, window: RenderWindow, gap: float, *, open_fate: bool) -> float:
    """How much earlier than planned a job may be polled, in a request another job's poll sends anyway:
    up to half its gap, but not before the model's shortest render, when a poll could not find it done
    (no request is added, and it is noticed sooner)."""
    if open_fate:
        return gap / 2
    return min(gap / 2, max(0.1 * gap, age + gap - window.shortest))
