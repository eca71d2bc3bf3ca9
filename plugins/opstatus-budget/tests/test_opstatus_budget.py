"""opstatus-budget on a fake clock: the bucket's arithmetic, then the budget
holding for pollers and a Watcher against the opstatus simulator."""

import logging
import random
import threading

import pytest

import opstatus
import opstatus_budget
from opstatus_budget import PollBudget


class FakeClock:
    def __init__(self, start=1000.0):
        self.now = float(start)
        self.sleeps = []
        self._lock = threading.Lock()

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        with self._lock:
            self.sleeps.append(seconds)
            self.now += seconds


@pytest.fixture
def clock():
    return FakeClock()


@pytest.fixture
def sim(clock):
    simulator = opstatus.Simulator(clock=clock, queue_seconds=0.3, take_seconds=1.0,
                                   require_objects=False).start()
    try:
        yield simulator
    finally:
        simulator.stop()


@pytest.fixture
def pm():
    return opstatus.make_plugin_manager()


class SendTimes:
    """Records the fake time of every request the core sends."""

    def __init__(self, clock):
        self.clock = clock
        self.times = []
        self._lock = threading.Lock()

    @opstatus.hookimpl(trylast=True)
    def opstatus_prepare_request(self, request):
        with self._lock:
            self.times.append((self.clock(), request.method))


def take(sim):
    return opstatus.take_snapshot(sim.endpoint, sim.key, object_type="PersonGroup",
                                  object_id="group1", apply_scope=[sim.subscription],
                                  plugins=False)


def most_in_a_window(times, window=3600.0):
    times = sorted(times)
    best, start = 0, 0
    for end in range(len(times)):
        while times[end] - times[start] >= window:
            start += 1
        best = max(best, end - start + 1)
    return best


###############################################################################
# The bucket
###############################################################################


def test_reservations_are_spaced_by_the_interval(clock):
    budget = PollBudget(60, burst=1, clock=clock)  # one a minute
    assert budget.interval == 60.0
    assert [budget.reserve("op%d" % i, 1.0) for i in range(5)] == [1, 61, 121, 181, 241]


def test_burst_goes_at_once_then_the_rate_holds(clock):
    budget = PollBudget(60, burst=3, clock=clock)
    assert [budget.reserve("op", 0.0) for _ in range(5)] == [0, 0, 0, 60, 120]


def test_an_ample_budget_keeps_the_policys_delay(clock):
    budget = PollBudget(3600, burst=5, clock=clock)
    for _ in range(10):
        assert budget.reserve("op", 2.0) == 2.0
        clock.sleep(2.0)
        budget.count("op")
    assert budget.overdrafts == 0 and budget.sent == 10


def test_budget_refills_with_time(clock):
    budget = PollBudget(60, burst=2, clock=clock)
    budget.count("a", "POST")
    budget.count("b", "POST")
    assert budget.wait_time() == 60.0
    clock.sleep(60)
    assert budget.wait_time() == 0.0
    clock.sleep(600)
    assert [budget.reserve("c", 0.0) for _ in range(3)] == [0, 0, 60]


def test_unreserved_requests_beyond_the_budget_are_overdrafts(clock):
    budget = PollBudget(60, burst=2, clock=clock)
    for url in ("a", "b", "c", "d"):
        budget.count(url)  # first polls: no hook came before them
    assert budget.sent == 4 and budget.overdrafts == 2
    assert budget.reserve("a", 0.0) == 180.0  # the overdraft is paid back after


def test_reserved_slots_are_used_once(clock):
    budget = PollBudget(60, burst=1, clock=clock)
    budget.reserve("op", 0.0)
    budget.count("op")  # uses the slot
    budget.count("op")  # none left: takes one now, beyond the budget
    assert budget.overdrafts == 1
    budget.reserve("other", 0.0)
    budget.count("other", "POST")  # a POST never uses a poll's slot
    assert budget.overdrafts == 2


@pytest.mark.parametrize("seed", range(5))
def test_never_more_than_the_budget_in_any_hour(clock, seed):
    rng = random.Random(seed)
    per_hour, burst = 120, 4
    budget = PollBudget(per_hour, burst=burst, clock=clock)
    slots = []
    for _ in range(1000):
        clock.sleep(rng.choice([0.0, 0.0, 1.0, 7.0, 45.0]))
        slots.append(clock() + budget.reserve("op%d" % rng.randrange(20), rng.uniform(0, 30)))
    assert most_in_a_window(slots) <= per_hour + burst
    assert sorted(slots)[-1] > clock() + 3600  # the budget did bind


def test_many_threads_never_share_a_slot(clock):
    budget = PollBudget(3600, burst=1, clock=clock)
    slots = []
    lock = threading.Lock()
    barrier = threading.Barrier(8)

    def worker(n):
        barrier.wait()
        for i in range(50):
            slot = budget.reserve("op%d-%d" % (n, i), 0.0)
            with lock:
                slots.append(slot)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert sorted(slots) == [float(i) for i in range(400)]


@pytest.mark.parametrize("kwargs", [
    {"per_hour": 0}, {"per_hour": -5}, {"per_hour": float("nan")}, {"per_hour": "60"},
    {"per_hour": True}, {"per_hour": 60, "burst": 0.5}, {"per_hour": 60, "jitter": "full"},
])
def test_bad_settings_are_refused(kwargs):
    with pytest.raises(ValueError):
        PollBudget(**kwargs)


def test_default_burst_is_a_minutes_worth():
    assert PollBudget(600).burst == 10
    assert PollBudget(30).burst == 1


###############################################################################
# With pollers and the simulator
###############################################################################


def test_a_short_budget_stretches_one_poll(sim, clock, pm):
    sim.take_seconds = 200.0
    budget = PollBudget(120, burst=1, clock=clock)
    pm.register(budget, name="budget")
    sends = SendTimes(clock)
    pm.register(sends, name="sends")
    poller = opstatus.Poller(take(sim), endpoint=sim.endpoint, key=sim.key, clock=clock,
                             sleep=clock.sleep, random=lambda: 0.0, plugins=pm,
                             policy=opstatus.RetryPolicy(cap=600))
    assert poller.wait().status is opstatus.Status.SUCCEEDED
    gaps = [b[0] - a[0] for a, b in zip(sends.times, sends.times[1:])]
    assert gaps and min(gaps) >= 30.0 - 1e-9  # 120 an hour: one per 30 s
    assert budget.sent == len(sends.times) and budget.overdrafts == 0
    # Without the budget the same operation is polled far more often.
    assert poller.polls <= 200 / 30 + 2


def test_an_ample_budget_leaves_the_schedule_alone(sim, clock, pm):
    pm.register(PollBudget(100000, clock=clock), name="budget")
    opstatus.poll(take(sim), endpoint=sim.endpoint, key=sim.key, clock=clock,
                  sleep=clock.sleep, random=lambda: 0.0, plugins=pm)
    with_budget = list(clock.sleeps)
    del clock.sleeps[:]
    opstatus.poll(take(sim), endpoint=sim.endpoint, key=sim.key, clock=clock,
                  sleep=clock.sleep, random=lambda: 0.0, plugins=False)
    assert with_budget == clock.sleeps


def test_a_watcher_of_many_operations_stays_within_the_budget(sim, clock, pm):
    sim.take_seconds = 300.0
    per_hour, burst = 240, 6
    budget = PollBudget(per_hour, burst=burst, clock=clock)
    pm.register(budget, name="budget")
    sends = SendTimes(clock)
    pm.register(sends, name="sends")
    locations = [take(sim) for _ in range(6)]
    start = clock()
    outcomes = opstatus.Watcher(locations, endpoint=sim.endpoint, key=sim.key, clock=clock,
                                sleep=clock.sleep, random=lambda: 0.0, plugins=pm,
                                policy=opstatus.RetryPolicy(cap=3600), max_workers=3,
                                timeout=7200).results()
    assert all(o.ok for o in outcomes)
    times = [t for t, method in sends.times if method == "GET"]
    interval = 3600.0 / per_hour
    # First polls start while the others already hold reserved slots: those
    # the budget could not delay are overdrafts, paid back by later waits.
    assert budget.overdrafts <= 3  # the operations started after the first 3 workers
    for window in (60.0, 300.0, 3600.0):
        assert most_in_a_window(times, window) <= window / interval + burst + budget.overdrafts
    steady = sorted(t for t in times if t >= start + 60.0)
    assert len(steady) > 10
    assert min(b - a for a, b in zip(steady, steady[1:])) >= interval - 1e-9


def test_the_cap_limits_the_budget_and_says_so(sim, clock, pm, caplog):
    sim.take_seconds = 200.0
    pm.register(PollBudget(10, burst=1, clock=clock), name="budget")  # one per 6 minutes
    with caplog.at_level(logging.WARNING, logger="opstatus.budget"):
        opstatus.poll(take(sim), endpoint=sim.endpoint, key=sim.key, clock=clock,
                      sleep=clock.sleep, random=lambda: 0.0, plugins=pm)  # cap: 60 s
    assert max(clock.sleeps) == 60.0
    assert caplog.text.count("raise RetryPolicy.cap") == 1


def test_retries_are_spaced_by_the_budget(sim, clock, pm):
    budget = PollBudget(60, burst=1, clock=clock)
    pm.register(budget, name="budget")
    location = take(sim)
    sim.server_errors = 2
    opstatus.poll(location, endpoint=sim.endpoint, key=sim.key, clock=clock,
                  sleep=clock.sleep, random=lambda: 0.0, plugins=pm,
                  policy=opstatus.RetryPolicy(cap=600))
    assert clock.sleeps[:2] == [60.0, 60.0]


def test_decorrelated_jitter_grows_within_bounds(sim, clock, pm):
    draws = [1.0, 1.0, 0.0]
    budget = PollBudget(100000, clock=clock, jitter="decorrelated",
                        random=lambda: draws.pop(0) if draws else 0.0)
    pm.register(budget, name="budget")
    location = take(sim)
    sim.server_errors = 3
    policy = opstatus.RetryPolicy(error_base=2.0, floor=0.5, cap=100)
    opstatus.poll(location, endpoint=sim.endpoint, key=sim.key, clock=clock,
                  sleep=clock.sleep, random=lambda: 0.0, plugins=pm, policy=policy)
    # 2 + 1.0 * (3*2 - 2) = 6; 2 + 1.0 * (3*6 - 2) = 18; then 2 + 0 = 2.
    assert clock.sleeps[:3] == [6.0, 18.0, 2.0]


def test_server_retry_after_is_a_minimum(sim, clock, pm):
    pm.register(PollBudget(100000, clock=clock), name="budget")
    location = take(sim)
    sim.rate_limit, sim.rate_limit_retry_after = 1, "9"
    opstatus.poll(location, endpoint=sim.endpoint, key=sim.key, clock=clock,
                  sleep=clock.sleep, random=lambda: 0.0, plugins=pm)
    assert clock.sleeps[0] == 9.0


def test_errors_the_policy_would_not_retry_are_left_to_it(sim, clock, pm):
    pm.register(PollBudget(100000, clock=clock), name="budget")
    with pytest.raises(opstatus.OperationNotFound):
        opstatus.poll("/operations/00000000-0000-0000-0000-000000000000",
                      endpoint=sim.endpoint, key=sim.key, clock=clock, sleep=clock.sleep,
                      plugins=pm)
    assert clock.sleeps == []
    assert [m for m, _ in sim.requests] == ["GET"]


###############################################################################
# The installed plugin
###############################################################################


@pytest.fixture
def unconfigured(monkeypatch):
    monkeypatch.setattr(opstatus_budget, "_DEFAULT", None)
    monkeypatch.setattr(opstatus_budget, "_CONFIGURED", False)
    for name in ("OPSTATUS_BUDGET_PER_HOUR", "OPSTATUS_BUDGET_BURST", "OPSTATUS_BUDGET_JITTER"):
        monkeypatch.delenv(name, raising=False)


def test_installed_plugin_does_nothing_unless_configured(unconfigured, sim, clock, pm):
    pm.register(opstatus_budget, name="opstatus-budget")
    pm.check_pending()
    opstatus.poll(take(sim), endpoint=sim.endpoint, key=sim.key, clock=clock,
                  sleep=clock.sleep, random=lambda: 0.0, plugins=pm)
    assert opstatus_budget._DEFAULT is None
    assert set(clock.sleeps) == {0.5}  # the policy's own schedule


def test_installed_plugin_reads_the_environment(unconfigured, monkeypatch, sim, clock, pm):
    monkeypatch.setenv("OPSTATUS_BUDGET_PER_HOUR", "120")
    monkeypatch.setenv("OPSTATUS_BUDGET_BURST", "1")
    monkeypatch.setenv("OPSTATUS_BUDGET_JITTER", "decorrelated")
    pm.register(opstatus_budget, name="opstatus-budget")
    opstatus.poll(take(sim), endpoint=sim.endpoint, key=sim.key, clock=clock,
                  sleep=clock.sleep, random=lambda: 0.0, plugins=pm,
                  policy=opstatus.RetryPolicy(cap=600))
    budget = opstatus_budget._DEFAULT
    assert (budget.per_hour, budget.burst, budget.jitter) == (120, 1, "decorrelated")
    assert min(clock.sleeps) >= 29.0  # the budget runs on the real monotonic clock here


def test_configure_from_code(unconfigured):
    budget = opstatus_budget.configure(3600, burst=2)
    assert opstatus_budget._budget() is budget and budget.interval == 1.0
    assert opstatus_budget.configure(None) is None and opstatus_budget._budget() is None
    with pytest.raises(ValueError, match="numbers"):
        opstatus_budget._from_environment({"OPSTATUS_BUDGET_PER_HOUR": "lots"})
