"""When to poll a job next: after each model's render times as the ledger recorded them. Pure.

A Kling render takes 30-90 s; polling before the shortest is wasted, and the notice delay is
the time since the job ended, so polls come at a fixed share of the job's age once it may be
done (each poll then adds at most that share of the render time to the delay), closest around
the model's typical length and wider past its longest. A job's schedule is its own: a new
submission leaves the others' as they are.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping
from dataclasses import dataclass

# With no history for a model: Kling's published 30-90 s (typical 60).
DEFAULT_RENDER_S = (30.0, 90.0)
# Fewer render times than this are not yet a model's history.
MIN_SAMPLES = 5
# A recorded render time is when the end was noticed: never earlier than the first poll. So the first
# poll comes a little before the recorded shortest, and a model that got faster is found out, a step
# at a time, instead of the schedule confirming itself.
EARLIER_THAN_RECORDED = 0.8
# The gap between polls as a share of the job's age: around the typical length, elsewhere in
# the model's usual window, and past its longest (a slow job, polled less and less).
NEAR_TYPICAL_SHARE = 0.1
IN_WINDOW_SHARE = 0.2
LATE_SHARE = 0.25
# A job whose fate is open (pending, unknown) is looked at soon, then less and less often.
OPEN_FATE_SHARE = 0.5


@dataclass(frozen=True, slots=True)
class RenderWindow:
    shortest: float  # the model's typical shortest render (10th percentile)
    typical: float  # its median
    longest: float  # its 90th percentile

    @classmethod
    def default(cls, render_s: tuple[float, float] = DEFAULT_RENDER_S) -> RenderWindow:
        lo, hi = render_s
        return cls(lo, (lo + hi) / 2, hi)


def render_windows(samples: Mapping[str, list[float]], default: RenderWindow) -> dict[str, RenderWindow]:
    """Each model's window from its recorded render times; a model with too few keeps the default."""
    windows: dict[str, RenderWindow] = {}
    for model, seconds in samples.items():
        if len(seconds) < MIN_SAMPLES:
            continue
        deciles = statistics.quantiles(seconds, n=10, method="inclusive")
        windows[model] = RenderWindow(EARLIER_THAN_RECORDED * deciles[0], statistics.median(seconds), deciles[-1])
    return windows


def next_poll_in(age: float, window: RenderWindow, *, open_fate: bool, floor: float, cap: float) -> float:
    """Seconds from now to the next poll of a job ``age`` seconds after its acknowledgement (or its
    creation, while its fate is open), never under ``floor`` nor over ``cap``."""
    if open_fate:
        gap = OPEN_FATE_SHARE * age
    elif age < window.shortest:
        gap = window.shortest - age
    elif age > window.longest:
        gap = LATE_SHARE * age
    else:
        near = abs(age - window.typical) <= 0.25 * max(window.longest - window.shortest, 1e-9)
        gap = (NEAR_TYPICAL_SHARE if near else IN_WINDOW_SHARE) * age
    return min(max(gap, floor), cap)


def may_poll_early_by(age: float, window: RenderWindow, gap: float, *, open_fate: bool) -> float:
    """How much earlier than planned a job may be polled, in a request another job's poll sends anyway:
    half its gap once it may be done (no request is added, and it is noticed sooner); barely at all
    before the model's shortest render, when a poll cannot find it done."""
    if not open_fate and age < window.shortest:
        return 0.1 * gap
    return gap / 2
