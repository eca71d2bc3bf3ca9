"""The wall clock jumping mid-poll changes nothing: the poller keeps its
schedule and deadline on a monotonic clock (adversarial scenario 13)."""

import random
import time

import pytest

import opstatus
from conftest import FakeClock

freezegun = pytest.importorskip("freezegun")


def _run(jump_seconds, timeout):
    """Poll an operation of 40 s on a shared fake clock; move the wall clock
    by *jump_seconds* at the second status seen. Returns (sleeps, outcome)."""
    clock = FakeClock(start=50.0)
    with freezegun.freeze_time("2030-01-01T00:00:00Z") as frozen:
        with opstatus.Simulator(clock=clock, queue_seconds=1.0, take_seconds=40.0) as sim:
            location = opstatus.take_snapshot(sim.endpoint, sim.key, object_type="PersonGroup",
                                              object_id="g", apply_scope=[sim.subscription])
            seen = []

            def on_status(status):
                seen.append(status.status)
                if len(seen) == 2 and jump_seconds:
                    before = time.time()
                    frozen.tick(jump_seconds)
                    assert abs(time.time() - before - jump_seconds) < 1  # it did jump

            try:
                final = opstatus.poll(location, endpoint=sim.endpoint, key=sim.key,
                                      timeout=timeout, clock=clock, sleep=clock.sleep,
                                      random=random.Random(7).random, on_status=on_status,
                                      plugins=False)
                outcome = final.status.value
            except opstatus.PollTimeout:
                outcome = "timeout"
    return clock.sleeps, outcome


@pytest.mark.parametrize("jump", [3600, -3600])
def test_wall_clock_jump_changes_no_poll(jump):
    baseline = _run(0, timeout=600)
    jumped = _run(jump, timeout=600)
    assert baseline[1] == "succeeded"
    assert jumped == baseline


@pytest.mark.parametrize("jump", [3600, -3600])
def test_wall_clock_jump_keeps_the_deadline(jump):
    baseline = _run(0, timeout=20)
    jumped = _run(jump, timeout=20)
    assert baseline[1] == "timeout"
    assert jumped == baseline
    assert sum(jumped[0]) <= 20
