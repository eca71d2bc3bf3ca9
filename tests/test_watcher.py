"""Watcher: many operations on a few threads, against a real loopback Simulator.

Most tests here run in real time on purpose (the point is real concurrency),
with short operations (at most about a second) and a quick policy, so that
the whole file stays within a few seconds. Each test checks that the threads
it started (the watcher's pool and the simulator's per-connection threads)
are gone shortly after the watcher ends.
"""

import threading
import time
import uuid

import pytest

import opstatus
from conftest import ConnectionCounter, FakeClock, gets, take  # noqa: F401
from opstatus import (
    OperationFailed,
    OperationNotFound,
    Outcome,
    Poller,
    PollCancelled,
    PollTimeout,
    RetryPolicy,
    Status,
    Watcher,
)

#: A policy for real-time tests: polls 50 ms apart, never more than 100 ms.
QUICK_POLICY = RetryPolicy(floor=0.05, cap=0.1, jitter=0.0)
#: Keyword arguments every real-time watcher gets.
LIVE = {"policy": QUICK_POLICY, "random": lambda: 0.0, "plugins": False}
#: How long threads may take to go away after a watcher ends.
THREAD_BOUND = 3.0


###############################################################################
# Helpers
###############################################################################


@pytest.fixture
def live_sim(request):
    """A simulator on the real clock (options via indirect parametrisation),
    with a :class:`ConnectionCounter` as ``sim.counter``."""
    options = {"queue_seconds": 0.0, "take_seconds": 0.0}
    options.update(getattr(request, "param", None) or {})
    simulator = opstatus.Simulator(**options).start()
    simulator.counter = ConnectionCounter(simulator)
    try:
        yield simulator
    finally:
        simulator.stop()


def start_ops(sim, count, *, seconds=0.0, fail=None, prefix="op"):
    """Start *count* takes on *sim* that last *seconds* (after the queue) and
    fail with *fail* (a message) if given; returns their locations."""
    sim.take_seconds, sim.fail = seconds, fail
    transport = opstatus.HTTPTransport()
    try:
        return [opstatus.take_snapshot(sim.endpoint, sim.key, object_type="PersonGroup",
                                       object_id="%s-%d" % (prefix, i),
                                       apply_scope=[sim.subscription], transport=transport,
                                       plugins=False)
                for i in range(count)]
    finally:
        transport.close()
        sim.fail = None


def unknown_ops(count):
    return ["/operations/%s" % uuid.uuid4() for _ in range(count)]


def settle_threads(baseline, bound=THREAD_BOUND):
    """Wait until the thread count is back to *baseline*; fail after *bound* s."""
    deadline = time.monotonic() + bound
    while threading.active_count() > baseline:
        if time.monotonic() > deadline:
            raise AssertionError("threads left behind: %s" % sorted(
                t.name for t in threading.enumerate()))
        time.sleep(0.01)


def idle_baseline(sim):
    """The thread count once the simulator's connection threads (from the
    takes) are gone."""
    deadline = time.monotonic() + THREAD_BOUND
    while sim.counter.open > 0:
        assert time.monotonic() < deadline, "simulator connections stay open"
        time.sleep(0.01)
    time.sleep(0.02)  # a handler thread ends just after shutdown_request
    return threading.active_count()


def watcher_threads():
    return sum(1 for t in threading.enumerate() if t.name.startswith("opstatus-watch"))


###############################################################################
# Many operations: every outcome once, of the right kind
###############################################################################


def test_every_outcome_comes_out_once_with_its_index_and_error_type(live_sim):
    good = start_ops(live_sim, 200)
    failed = start_ops(live_sim, 5, fail="Snapshot could not be taken.", prefix="bad")
    unknown = unknown_ops(5)
    # interleave them, so that the index must really map back to the input
    locations = list(good)
    for n, loc in enumerate(failed + unknown):
        locations.insert(7 + 19 * n, loc)
    base = idle_baseline(live_sim)

    seen = []
    outcomes = []
    for outcome in Watcher(locations, endpoint=live_sim.endpoint, key=live_sim.key,
                           max_workers=8, timeout=30, on_status=lambda i, s: seen.append(i),
                           **LIVE):
        outcomes.append(outcome)

    assert len(outcomes) == len(locations) == 210
    assert sorted(o.index for o in outcomes) == list(range(210))
    for outcome in outcomes:
        assert isinstance(outcome, Outcome)
        loc = locations[outcome.index]
        assert outcome.location == loc
        if loc in failed:
            assert not outcome.ok
            assert isinstance(outcome.error, OperationFailed)
            assert outcome.error.status.status is Status.FAILED
            assert outcome.error.message == "Snapshot could not be taken."
            assert outcome.status is outcome.error.status
        elif loc in unknown:
            assert not outcome.ok
            assert isinstance(outcome.error, OperationNotFound)
            assert outcome.error.status == 404
            assert outcome.error.code == "OperationNotFound"
            assert outcome.status is None
        else:
            assert outcome.ok and outcome.error is None
            assert outcome.status.status is Status.SUCCEEDED
            assert outcome.status.resource_location.startswith("/snapshots/")
    # each known operation was polled once (they had all finished) and its
    # status handed to on_status once; an unknown one has no status
    assert sorted(seen) == sorted(i for i, loc in enumerate(locations) if loc not in unknown)
    assert len(gets(live_sim)) == 210
    settle_threads(base)


class _OwnTransport:
    """A transport of another kind than HTTPTransport: the Watcher runs its steps on
    threads."""

    def __init__(self):
        self.inner = opstatus.HTTPTransport()

    def send(self, request):
        return self.inner.send(request)


@pytest.mark.parametrize("kind", ["built-in", "own transport"])
@pytest.mark.parametrize("workers", [2, 8])
def test_threads_and_connections_stay_bounded_with_200_operations(live_sim, workers, kind):
    locations = start_ops(live_sim, 200)
    base = idle_baseline(live_sim)
    live_sim.counter.reset()
    peak = {"total": 0, "pool": 0, "open": 0}
    lock = threading.Lock()

    def sample(_index=None, _status=None):
        with lock:
            peak["total"] = max(peak["total"], threading.active_count() - base)
            peak["pool"] = max(peak["pool"], watcher_threads())
            peak["open"] = max(peak["open"], live_sim.counter.open)

    own = _OwnTransport() if kind == "own transport" else None
    outcomes = []
    for outcome in Watcher(locations, endpoint=live_sim.endpoint, key=live_sim.key,
                           max_workers=workers, on_status=sample, transport=own, **LIVE):
        sample()
        outcomes.append(outcome)
    if own is not None:
        own.inner.close()

    assert len(outcomes) == 200 and all(o.ok for o in outcomes)
    if own is None:  # every request on non-blocking connections, in the watching thread
        assert peak["pool"] == 0
    else:
        assert 1 <= peak["pool"] <= workers
    # connections are kept alive and shared: one per request under way at most (a
    # kept-alive one the server dropped may be replaced once)
    assert 1 <= live_sim.counter.accepted <= workers + 1
    # the client's pool (and a thread that times each call of a transport of another
    # kind) plus the simulator's thread per open connection
    threads = 0 if own is None else 2 * workers
    assert peak["total"] <= threads + peak["open"] + 2
    assert peak["total"] <= threads + workers + 3
    # the watcher closed its connections, so the simulator's threads end too
    settle_threads(base)
    assert live_sim.counter.open == 0


###############################################################################
# Order: as operations end; results() in input order
###############################################################################


def _mixed(sim, pairs=8, long_seconds=0.7):
    """Locations alternating long (index even) and quick (index odd)."""
    locations = []
    for n in range(pairs):
        locations += start_ops(sim, 1, seconds=long_seconds, prefix="long%d" % n)
        locations += start_ops(sim, 1, seconds=0.0, prefix="short%d" % n)
    return locations


def test_outcomes_come_out_as_operations_finish(live_sim):
    begun = time.monotonic()
    locations = _mixed(live_sim, long_seconds=1.5)
    base = idle_baseline(live_sim)
    started = time.monotonic()
    if started - begun > 0.8:
        pytest.skip("the machine is too slow: the long operations may end before the watch")
    order, when = [], {}
    for outcome in Watcher(locations, endpoint=live_sim.endpoint, key=live_sim.key,
                           max_workers=4, timeout=10, **LIVE):
        assert outcome.ok, outcome.error
        order.append(outcome.index)
        when[outcome.index] = time.monotonic() - started

    assert sorted(order) == list(range(16))
    shorts = [i for i in order if i % 2]
    longs = [i for i in order if not i % 2]
    # every quick one before any long one, although they alternate in the input
    assert order[:8] == shorts and order[8:] == longs
    assert max(when[i] for i in shorts) < 0.6
    assert min(when[i] for i in longs) >= 0.6  # they take 1.5 s from their start
    settle_threads(base)


def test_results_are_in_input_order(live_sim):
    locations = _mixed(live_sim, pairs=5, long_seconds=0.4)
    base = idle_baseline(live_sim)
    watcher = Watcher(locations, endpoint=live_sim.endpoint, key=live_sim.key,
                      max_workers=3, **LIVE)
    results = watcher.results()
    assert [o.index for o in results] == list(range(10))
    assert [o.location for o in results] == locations
    assert all(o.ok and o.status.succeeded for o in results)
    # the long ones needed more than one poll, so the order really differed
    assert all(p.polls > 1 for p in watcher.pollers[0::2])
    assert all(p.polls == 1 for p in watcher.pollers[1::2])
    settle_threads(base)


@pytest.mark.parametrize("live_sim", [{"queue_seconds": 0.05}], indirect=True)
def test_on_status_gets_the_index_and_every_status(live_sim):
    locations = start_ops(live_sim, 3, seconds=0.3) + start_ops(live_sim, 3, prefix="q")
    base = idle_baseline(live_sim)
    calls = []
    outcomes = {o.index: o for o in Watcher(locations, endpoint=live_sim.endpoint,
                                            key=live_sim.key, max_workers=2,
                                            on_status=lambda i, s: calls.append((i, s)),
                                            **LIVE)}
    assert sorted(outcomes) == list(range(6))
    for index in range(6):
        statuses = [s for i, s in calls if i == index]
        assert statuses, index
        assert statuses[-1] is outcomes[index].status  # the final one, as is
        assert statuses[-1].status is Status.SUCCEEDED
    slow = [[s.status for i, s in calls if i == index] for index in range(3)]
    for kinds in slow:
        assert kinds[-1] is Status.SUCCEEDED
        assert Status.RUNNING in kinds  # seen while running: more than one call
    # the quick ones: at most notStarted (the 50 ms queue), then succeeded
    assert all(sum(1 for i, _s in calls if i == index) <= 2 for index in (3, 4, 5))
    assert len(calls) == len(gets(live_sim))
    settle_threads(base)


###############################################################################
# One deadline; cancel; failures
###############################################################################


def test_one_deadline_for_all(live_sim):
    quick = start_ops(live_sim, 5, prefix="q")
    endless = start_ops(live_sim, 5, seconds=1e7, prefix="e")
    locations = [loc for pair in zip(endless, quick) for loc in pair]
    base = idle_baseline(live_sim)
    started = time.monotonic()
    outcomes = {}
    for outcome in Watcher(locations, endpoint=live_sim.endpoint, key=live_sim.key,
                           timeout=0.5, max_workers=4, **LIVE):
        outcomes[outcome.index] = (outcome, time.monotonic() - started)
    elapsed = time.monotonic() - started

    assert sorted(outcomes) == list(range(10))
    for index, (outcome, at) in outcomes.items():
        if index % 2:
            assert outcome.ok and at < 0.3
        else:
            assert isinstance(outcome.error, PollTimeout)
            assert outcome.error.timeout == 0.5
            assert outcome.error.last_status.status is Status.RUNNING
            assert outcome.status is outcome.error.last_status
            assert 0.35 <= at <= 1.0  # about the deadline, not before
    assert elapsed < 1.0
    # nothing is polled after the end
    count = len(live_sim.requests)
    time.sleep(0.15)
    assert len(live_sim.requests) == count
    settle_threads(base)


@pytest.mark.parametrize("live_sim", [{"take_seconds": 1e7}], indirect=True)
def test_cancel_from_another_thread(live_sim):
    locations = start_ops(live_sim, 30, seconds=1e7)
    base = idle_baseline(live_sim)
    polled, all_polled = set(), threading.Event()

    def on_step(index, step):
        polled.add(index)
        if len(polled) == len(locations):
            all_polled.set()
    watcher = Watcher(locations, endpoint=live_sim.endpoint, key=live_sim.key,
                      max_workers=8, on_step=on_step, **LIVE)
    cancelled_at = []

    def cancel():  # once each operation has been polled (a loaded machine takes its time)
        all_polled.wait(10)
        time.sleep(0.05)
        cancelled_at.append(time.monotonic())
        watcher.cancel()

    canceller = threading.Thread(target=cancel)
    canceller.start()
    try:
        outcomes = list(watcher)
    finally:
        all_polled.set()
        canceller.join()
    ended = time.monotonic()

    assert cancelled_at, "the watch ended before the cancel"
    assert ended - cancelled_at[0] < 0.25  # promptly
    assert sorted(o.index for o in outcomes) == list(range(30))
    for outcome in outcomes:
        assert isinstance(outcome.error, PollCancelled)
        assert outcome.error.last_status.status is Status.RUNNING  # polled before
    assert all(p.cancelled for p in watcher.pollers)
    # no request reaches the simulator once the watch has ended
    count = len(live_sim.requests)
    time.sleep(0.2)
    assert len(live_sim.requests) == count
    settle_threads(base)


def test_cancel_from_on_status(live_sim):
    locations = start_ops(live_sim, 40, seconds=1e7)
    base = idle_baseline(live_sim)
    lock = threading.Lock()
    calls = []
    workers = 4

    def on_status(index, status):
        with lock:
            calls.append(index)
            if len(calls) == 10:
                watcher.cancel()

    watcher = Watcher(locations, endpoint=live_sim.endpoint, key=live_sim.key,
                      max_workers=workers, on_status=on_status, **LIVE)
    started = time.monotonic()
    outcomes = list(watcher)
    assert time.monotonic() - started < 1.0
    assert sorted(o.index for o in outcomes) == list(range(40))
    assert all(isinstance(o.error, PollCancelled) for o in outcomes)
    # at most the requests already in flight on the other workers follow
    assert 10 <= len(gets(live_sim)) <= 10 + workers - 1
    count = len(live_sim.requests)
    time.sleep(0.15)
    assert len(live_sim.requests) == count
    settle_threads(base)


def test_closing_the_iteration_early_stops_everything(live_sim):
    locations = start_ops(live_sim, 2, prefix="q") + start_ops(live_sim, 20, seconds=1e7)
    base = idle_baseline(live_sim)
    watcher = Watcher(locations, endpoint=live_sim.endpoint, key=live_sim.key,
                      max_workers=4, **LIVE)
    iterator = iter(watcher)
    first = next(iterator)
    assert first.ok
    iterator.close()
    assert all(p.cancelled for p in watcher.pollers)
    count = len(live_sim.requests)
    time.sleep(0.15)
    assert len(live_sim.requests) == count
    settle_threads(base)


def test_a_failure_of_one_does_not_stop_the_others(live_sim):
    failed = start_ops(live_sim, 1, fail="boom", prefix="f")
    locations = unknown_ops(1) + failed + start_ops(live_sim, 4, seconds=0.2) \
        + start_ops(live_sim, 4, prefix="q")
    base = idle_baseline(live_sim)

    def on_status(index, status):
        if index == 3:
            raise RuntimeError("a bug in a callback")

    outcomes = {o.index: o for o in Watcher(locations, endpoint=live_sim.endpoint,
                                            key=live_sim.key, max_workers=2,
                                            on_status=on_status, **LIVE)}
    assert sorted(outcomes) == list(range(10))
    assert isinstance(outcomes[0].error, OperationNotFound)
    assert isinstance(outcomes[1].error, OperationFailed)
    assert isinstance(outcomes[3].error, RuntimeError)
    for index in (2, 4, 5, 6, 7, 8, 9):
        assert outcomes[index].ok, outcomes[index].error
        assert outcomes[index].status.succeeded
    settle_threads(base)


###############################################################################
# max_rate
###############################################################################


def _max_in_window(times, window=1.0):
    times = sorted(times)
    best, start = 0, 0
    for end in range(len(times)):
        while times[end] - times[start] >= window:
            start += 1
        best = max(best, end - start + 1)
    return best


@pytest.mark.parametrize("rate", [None, 20])
def test_max_rate_bounds_the_request_rate(live_sim, rate):
    # The long ones run 2 s: polled often enough for 20 requests even on a
    # loaded machine (1 s gave 19 in a CI run).
    locations = start_ops(live_sim, 10, prefix="q") + start_ops(live_sim, 5, seconds=2.0)
    base = idle_baseline(live_sim)
    live_sim.requests[:] = []
    times = []
    lock = threading.Lock()

    def on_status(index, status):
        with lock:
            times.append(time.monotonic())

    started = time.monotonic()
    outcomes = list(Watcher(locations, endpoint=live_sim.endpoint, key=live_sim.key,
                            max_workers=8, max_rate=rate, on_status=on_status, **LIVE))
    elapsed = time.monotonic() - started
    assert len(outcomes) == 15 and all(o.ok for o in outcomes)
    requests = len(gets(live_sim))
    assert requests == len(times) >= 20  # the long ones were polled several times
    if rate is None:
        # the control: without a cap the same work bursts
        assert _max_in_window(times) > 30
    else:
        assert requests <= rate * elapsed + 2
        assert elapsed >= (requests - 2) / rate
        assert _max_in_window(times) <= rate + 2
    settle_threads(base)


def test_max_rate_does_not_hold_timeouts_past_the_deadline(live_sim):
    locations = start_ops(live_sim, 12, seconds=1e7)
    base = idle_baseline(live_sim)
    live_sim.requests[:] = []
    started = time.monotonic()
    outcomes = []
    try:
        for outcome in Watcher(locations, endpoint=live_sim.endpoint, key=live_sim.key,
                               timeout=0.3, max_rate=10, **LIVE):
            outcomes.append((outcome, time.monotonic() - started))
        assert len(outcomes) == 12
        assert all(isinstance(o.error, PollTimeout) for o, _at in outcomes)
        assert len(gets(live_sim)) <= 10 * 0.3 + 2  # the rate held
        # one deadline for all: every outcome is out shortly after it
        assert max(at for _o, at in outcomes) < 0.3 + 0.4
    finally:
        settle_threads(base)


def test_transient_errors_are_retried_per_operation(live_sim):
    locations = start_ops(live_sim, 10)
    base = idle_baseline(live_sim)
    live_sim.requests[:] = []
    live_sim.server_errors = 4
    live_sim.rate_limit = 3
    live_sim.rate_limit_retry_after = "0"
    watcher = Watcher(locations, endpoint=live_sim.endpoint, key=live_sim.key,
                      max_workers=4, timeout=10, **LIVE)
    outcomes = list(watcher)
    assert len(outcomes) == 10 and all(o.ok for o in outcomes)
    assert len(gets(live_sim)) == 10 + 4 + 3
    assert sum(p.errors for p in watcher.pollers) == 4 + 3
    settle_threads(base)


@pytest.mark.parametrize("workers", [0, -1, 65, 1.5, 8.0, True, "8", None])
def test_invalid_max_workers_is_refused(workers):
    with pytest.raises(ValueError, match="max_workers"):
        Watcher(["https://example.invalid/operations/x"], max_workers=workers, plugins=False)


@pytest.mark.parametrize("rate", [0, -1, -0.5, float("inf"), float("nan"), True, "20"])
def test_invalid_max_rate_is_refused(rate):
    with pytest.raises(ValueError, match="max_rate"):
        Watcher(["https://example.invalid/operations/x"], max_rate=rate, plugins=False)


@pytest.mark.parametrize("workers, rate", [(1, None), (64, 0.001), (8, 1), (8, 12.5)])
def test_valid_limits_are_accepted(workers, rate):
    watcher = Watcher(["https://example.invalid/operations/x"], max_workers=workers,
                      max_rate=rate, plugins=False)
    assert watcher.max_workers == workers and watcher.max_rate == rate
    watcher.pollers[0].close()


def test_the_pollers_of_a_watcher_are_light(monkeypatch):
    # Thousands of pollers: no per-poller __dict__, no per-poller transport (they all send
    # through the first one's), no lock or condition until a poller waits by itself.
    made = []
    real_init = opstatus.HTTPTransport.__init__

    def counting_init(self, *args, **kwargs):
        made.append(self)
        real_init(self, *args, **kwargs)
    monkeypatch.setattr(opstatus.HTTPTransport, "__init__", counting_init)
    locations = ["https://example.invalid/operations/%d" % i for i in range(50)]
    watcher = Watcher(locations, plugins=False)
    assert len(made) == 1
    assert all(p._client.transport is made[0] for p in watcher.pollers)
    assert not any(hasattr(p, "__dict__") for p in watcher.pollers)
    assert all(p._cancelled is None for p in watcher.pollers)  # a flag only once needed
    first = watcher.pollers[0]._client
    assert all(p._client.headers is first.headers and p._client.origin is first.origin
               and p._client.scrub is first.scrub for p in watcher.pollers)
    watcher.pollers[0].close()


def test_a_cancel_flag_set_while_it_is_being_waited_on_is_never_missed():
    for _ in range(300):
        flag = opstatus._Flag()
        setter = threading.Thread(target=flag.set)
        setter.start()
        assert flag.wait(5.0) is True
        setter.join()
        assert flag.is_set() and flag.wait(0) is True


###############################################################################
# Injected time: deterministic
###############################################################################


def _solo_polls(seconds):
    """The polls one Poller alone makes of an operation of *seconds*."""
    clock = FakeClock()
    with opstatus.Simulator(clock=clock, queue_seconds=0.3) as sim:
        (location,) = start_ops(sim, 1, seconds=seconds)
        poller = Poller(location, endpoint=sim.endpoint, key=sim.key, clock=clock,
                        sleep=clock.sleep, random=lambda: 0.5, plugins=False)
        poller.wait()
        return poller.polls


def test_fake_clock_makes_a_watch_deterministic():
    base = threading.active_count()

    def run():
        clock = FakeClock()
        with opstatus.Simulator(clock=clock, queue_seconds=0.3) as sim:
            locations = start_ops(sim, 3, seconds=2.0) + start_ops(sim, 3, seconds=20.0,
                                                                   prefix="l")
            started = clock()
            watcher = Watcher(locations, endpoint=sim.endpoint, key=sim.key, clock=clock,
                              sleep=clock.sleep, max_workers=1, random=lambda: 0.5,
                              plugins=False)
            outcomes = [(o.index, o.status.status, clock() - started) for o in watcher]
            polls = [p.polls for p in watcher.pollers]
            assert sum(polls) == len(gets(sim))
            return outcomes, clock.sleeps, polls

    (outcomes, sleeps, polls), (outcomes2, sleeps2, polls2) = run(), run()
    # the same run twice (up to the simulator's 100 ns timestamps, which
    # depend on the real wall clock it maps the fake one to)
    assert [o[:2] for o in outcomes] == [o[:2] for o in outcomes2]
    assert [o[2] for o in outcomes] == pytest.approx([o[2] for o in outcomes2], abs=1e-4)
    assert sleeps == pytest.approx(sleeps2, abs=1e-4)
    assert polls == polls2
    assert sorted(i for i, _s, _t in outcomes) == [0, 1, 2, 3, 4, 5]
    assert [i for i, _s, _t in outcomes][3:] == [3, 4, 5]
    assert all(s is Status.SUCCEEDED for _i, s, _t in outcomes)
    assert all(2.3 <= t < 4.0 for _i, _s, t in outcomes[:3])
    assert all(20.3 <= t < 26.0 for _i, _s, t in outcomes[3:])
    assert sleeps and all(s > 0 for s in sleeps)
    # each operation kept its own schedule: as many polls as a poller alone
    assert polls == [_solo_polls(2.0)] * 3 + [_solo_polls(20.0)] * 3
    settle_threads(base)


def test_fake_clock_deadline():
    base = threading.active_count()
    clock = FakeClock()
    with opstatus.Simulator(clock=clock, queue_seconds=0.0, take_seconds=1e7) as sim:
        locations = start_ops(sim, 4, seconds=1e7)
        started = clock()
        outcomes = list(Watcher(locations, endpoint=sim.endpoint, key=sim.key, timeout=30,
                                clock=clock, sleep=clock.sleep, random=lambda: 0.5,
                                plugins=False))
    assert sorted(o.index for o in outcomes) == [0, 1, 2, 3]
    assert all(isinstance(o.error, PollTimeout) for o in outcomes)
    assert clock() - started <= 30.0 + 1e-6
    assert clock() - started >= 29.0
    settle_threads(base)
