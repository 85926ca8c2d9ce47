"""The poll schedule's rules, on their own (pure: no emulator, no clock): what a job's polls cost and how late
its end is noticed, with and without a model's history, and how that history is learnt."""

from __future__ import annotations

import random
import statistics
import uuid

import pytest

from hypothesis import given
from hypothesis import strategies as st

from kling_mcp._poll_schedule import (
    FIRST_SHARE, LATE_SHARE, PROBE_EVERY, SHARE, RenderSample, RenderWindow, is_probe,
    may_poll_early_by, next_poll_in, render_windows,
)  # fmt: skip

FLOOR, CAP = 2.0, 30.0


def follow(window: RenderWindow, render_s: float, *, probe: bool = False) -> tuple[int, float, float | None]:
    """One job's polls until one finds it ended: how many, when its end was noticed, and when it was
    last seen running (seconds after its acknowledgement)."""
    age, polls, seen = 0.0, 0, None
    while True:
        age += next_poll_in(age, window, open_fate=False, floor=FLOOR, cap=CAP, probe=probe)
        polls += 1
        if age >= render_s:
            return polls, age, seen
        seen = age


def test_with_no_history_the_first_poll_comes_just_after_klings_shortest_30_seconds() -> None:
    window = RenderWindow.default()
    assert (window.shortest, window.longest) == (30.0, 90.0)
    assert next_poll_in(0.0, window, open_fate=False, floor=FLOOR, cap=60) == pytest.approx(30.0 * (1 + FIRST_SHARE))
    # Published times are not this setup's record: the cap bounds the first wait (30 s by default).
    assert next_poll_in(0.0, window, open_fate=False, floor=FLOOR, cap=CAP) == CAP
    assert next_poll_in(0.0, RenderWindow.default((1.0, 2.0)), open_fate=False, floor=0.05, cap=0.3) == 0.3
    # A probe looks before the shortest; so the model's history learns when it is faster than thought.
    assert next_poll_in(0.0, window, open_fate=False, floor=FLOOR, cap=CAP, probe=True) < 30.0
    assert next_poll_in(60.0, window, open_fate=False, floor=FLOOR, cap=CAP) == SHARE * 60.0
    assert next_poll_in(600.0, window, open_fate=False, floor=FLOOR, cap=CAP) == CAP  # a slow job: at most the cap
    # A job whose submission's fate is open is looked at soon, whatever the model.
    assert next_poll_in(4.0, window, open_fate=True, floor=FLOOR, cap=CAP) == FLOOR


def test_a_model_recorded_slower_than_the_cap_is_not_polled_before_its_shortest_render() -> None:
    window = RenderWindow(100.0, 150.0, learnt=True)
    assert next_poll_in(0.0, window, open_fate=False, floor=FLOOR, cap=CAP) == pytest.approx(110.0)  # not 30, 60, 90...


@given(
    shortest=st.floats(1.0, 300.0), spread=st.floats(1.0, 4.0), where=st.floats(0.0, 1.0), probe=st.booleans(),
)
def test_a_job_ending_within_its_models_window_is_noticed_within_share_of_its_render(
    shortest: float, spread: float, where: float, probe: bool
) -> None:
    window = RenderWindow(shortest, shortest * spread)
    render_s = shortest + where * (window.longest - shortest)
    _, noticed, _ = follow(window, render_s, probe=probe)
    assert noticed - render_s <= max(SHARE * render_s, FLOOR) + 1e-9


@given(shortest=st.floats(1.0, 300.0), render_s=st.floats(1.0, 2000.0))
def test_a_job_ending_after_its_models_longest_is_noticed_within_the_late_share_or_the_cap(
    shortest: float, render_s: float
) -> None:
    window = RenderWindow(shortest, 2 * shortest)
    _, noticed, _ = follow(window, max(render_s, window.longest))
    assert noticed - max(render_s, window.longest) <= max(min(LATE_SHARE * noticed, CAP), FLOOR, SHARE * noticed)


def test_riding_along_another_jobs_poll_never_comes_before_the_model_may_be_done() -> None:
    window = RenderWindow(40.0, 80.0)
    gap = next_poll_in(0.0, window, open_fate=False, floor=FLOOR, cap=CAP)
    assert gap - may_poll_early_by(0.0, window, gap, open_fate=False) >= 0.9 * gap  # barely earlier
    later = next_poll_in(60.0, window, open_fate=False, floor=FLOOR, cap=CAP)
    assert may_poll_early_by(60.0, window, later, open_fate=False) == later / 2  # by now, half its gap


def test_one_job_in_probe_every_is_a_probe_the_same_everywhere() -> None:
    ids = [str(uuid.UUID(int=random.Random(n).getrandbits(128), version=4)) for n in range(4000)]
    share = sum(map(is_probe, ids)) / len(ids)
    assert abs(share - 1 / PROBE_EVERY) < 0.02
    assert [is_probe(i) for i in ids[:50]] == [is_probe(i.upper()) for i in ids[:50]]  # a spelling of the same id
    assert is_probe("not-a-uuid") is False


def _lone_jobs(typical_s: float, spread: float, count: int, rng: random.Random, history: list[RenderSample]) -> tuple[list[int], list[float]]:
    """Jobs of one model, one at a time, each scheduled from the history so far and adding to it: the
    requests each took (its submission and its polls) and its notice delay as a share of its render."""
    requests, shares = [], []
    for _ in range(count):
        window = render_windows({"m": history[-200:]}, RenderWindow.default()).get("m", RenderWindow.default())
        task_uuid = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        render_s = typical_s * rng.uniform(1 - spread, 1 + spread)
        polls, noticed, seen = follow(window, render_s, probe=is_probe(task_uuid))
        history.append(RenderSample(task_uuid, noticed, seen))
        requests.append(1 + polls)
        shares.append((noticed - render_s) / render_s)
    return requests, shares


def test_with_a_models_history_a_lone_job_costs_at_most_4_requests_and_is_noticed_within_10_percent() -> None:
    rng = random.Random(7)
    for typical_s in (30.0, 60.0, 90.0):
        history: list[RenderSample] = []
        _lone_jobs(typical_s, 0.15, 60, rng, history)  # the model's history, built as it would be
        requests, shares = _lone_jobs(typical_s, 0.15, 200, rng, history)
        assert statistics.mean(requests) <= 4, typical_s
        assert statistics.median(shares) <= 0.10, typical_s
        # Without the history the same jobs cost more, or are noticed later: Kling's whole 30-90 s is covered.
        renders = [typical_s * rng.uniform(0.85, 1.15) for _ in range(200)]
        followed = [follow(RenderWindow.default(), r) for r in renders]
        without = statistics.mean(1 + polls for polls, _, _ in followed)
        late = statistics.median((noticed - r) / r for (_, noticed, _), r in zip(followed, renders, strict=True))
        assert statistics.mean(requests) < without or statistics.median(shares) < late, typical_s


def test_a_model_that_got_faster_is_found_out_by_its_probes() -> None:
    rng = random.Random(11)
    history: list[RenderSample] = []
    _lone_jobs(60.0, 0.15, 200, rng, history)
    before = render_windows({"m": history[-200:]}, RenderWindow.default())["m"]
    assert 0.8 * 51 <= before.shortest <= 1.1 * 54  # the 10th percentile of 51-69 s is 52.8 s
    _, shares = _lone_jobs(35.0, 0.15, 150, rng, history)  # now 30-40 s: every job ends before the first poll
    after = render_windows({"m": history[-200:]}, RenderWindow.default())["m"]
    assert after.shortest <= 35.0
    assert statistics.median(shares[-50:]) <= 0.10  # noticed on time again
