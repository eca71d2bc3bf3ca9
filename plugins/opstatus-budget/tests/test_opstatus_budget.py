"""opstatus-budget on a fake clock: the bucket's arithmetic, then the budget
holding for pollers and a Watcher against the opstatus simulator. The clock,
the simulator (on it) and a fresh plugin manager (``pm``) are the core's
fixtures (tests/opstatus_testing.py)."""

import logging
import random
import socket
import threading

import pytest

import opstatus
import opstatus_budget
from opstatus_budget import PollBudget
from opstatus_testing import LoopbackServer, send_json, take


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


@pytest.mark.parametrize("retry_after", [7, 90])  # below the policy's cap (60 s), above it
def test_the_services_retry_after_paces_the_polls(sim, clock, pm, retry_after):
    # An ample budget keeps the core's own schedule, and with a Retry-After
    # on each running status that is the service's wait, not the policy's
    # (above the cap too, as the core allows a service).
    pm.register(PollBudget(100000, clock=clock), name="budget")
    for plugins in (pm, False):
        del clock.sleeps[:]
        url = sim.start_job("azure", seconds=300.0, queue_seconds=0.0, retry_after=retry_after)
        opstatus.poll(url, key=sim.key, vocabulary="azure", clock=clock, sleep=clock.sleep,
                      random=lambda: 0.0, plugins=plugins, timeout=3600)
        assert clock.sleeps and set(clock.sleeps) == {float(retry_after)}, plugins


def test_a_short_budget_waits_longer_than_the_services_retry_after(sim, clock, pm):
    pm.register(PollBudget(120, burst=1, clock=clock), name="budget")  # one per 30 s
    url = sim.start_job("azure", seconds=200.0, queue_seconds=0.0, retry_after=7)
    opstatus.poll(url, key=sim.key, vocabulary="azure", clock=clock, sleep=clock.sleep,
                  random=lambda: 0.0, plugins=pm, policy=opstatus.RetryPolicy(cap=600))
    assert clock.sleeps and min(clock.sleeps) >= 30.0 - 1e-9


def test_requests_are_counted_once_answered(clock, pm):
    budget = PollBudget(60, burst=1, clock=clock)
    pm.register(budget, name="budget")
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    url = "http://127.0.0.1:%d/face/v1.0/operations/op1" % probe.getsockname()[1]
    probe.close()  # nothing listens there: the request never reaches a service
    with pytest.raises(opstatus.NetworkError):
        opstatus.poll(url, clock=clock, sleep=clock.sleep, plugins=pm,
                      policy=opstatus.RetryPolicy(max_errors=0))
    assert budget.sent == 0 and budget.wait_time() == 0.0
    with LoopbackServer(send_json) as server:
        opstatus.poll(server.url(), clock=clock, sleep=clock.sleep, plugins=pm)
    assert budget.sent == 1


def test_an_answer_another_plugin_has_sent_again_is_counted_too(clock, pm):
    class Refresher:  # registered after the budget: pluggy asks it first
        @opstatus.hookimpl
        def opstatus_response_received(self, request, response):
            if response.status == 401:
                return True

    budget = PollBudget(3600, clock=clock)
    pm.register(budget, name="budget")
    pm.register(Refresher(), name="refresher")
    answers = iter([401, 200])
    with LoopbackServer(lambda handler: send_json(handler, next(answers))) as server:
        opstatus.poll(server.url(), clock=clock, sleep=clock.sleep, plugins=pm)
        assert len(server.seen) == 2
    assert budget.sent == 2


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
    monkeypatch.setattr(opstatus_budget, "_code_budget", opstatus_budget._UNSET)
    monkeypatch.setattr(opstatus_budget, "_env_budget", None)
    for name in ("OPSTATUS_BUDGET_PER_HOUR", "OPSTATUS_BUDGET_BURST", "OPSTATUS_BUDGET_JITTER"):
        monkeypatch.delenv(name, raising=False)


def test_installed_plugin_does_nothing_unless_configured(unconfigured, sim, clock, pm):
    pm.register(opstatus_budget, name="opstatus-budget")
    pm.check_pending()
    opstatus.poll(take(sim), endpoint=sim.endpoint, key=sim.key, clock=clock,
                  sleep=clock.sleep, random=lambda: 0.0, plugins=pm)
    assert opstatus_budget._budget() is None
    assert set(clock.sleeps) == {0.5}  # the policy's own schedule


def test_installed_plugin_reads_the_environment(unconfigured, monkeypatch, sim, clock, pm):
    monkeypatch.setenv("OPSTATUS_BUDGET_PER_HOUR", "120")
    monkeypatch.setenv("OPSTATUS_BUDGET_BURST", "1")
    monkeypatch.setenv("OPSTATUS_BUDGET_JITTER", "decorrelated")
    pm.register(opstatus_budget, name="opstatus-budget")
    opstatus.poll(take(sim), endpoint=sim.endpoint, key=sim.key, clock=clock,
                  sleep=clock.sleep, random=lambda: 0.0, plugins=pm,
                  policy=opstatus.RetryPolicy(cap=600))
    budget = opstatus_budget._budget()
    assert (budget.per_hour, budget.burst, budget.jitter) == (120, 1, "decorrelated")
    assert min(clock.sleeps) >= 29.0  # the budget runs on the real monotonic clock here


def test_the_environment_is_read_when_the_plugin_joins_a_manager(unconfigured, monkeypatch):
    monkeypatch.setenv("OPSTATUS_BUDGET_PER_HOUR", "120")
    assert opstatus_budget._budget() is None  # not at import, not at first use
    opstatus.make_plugin_manager().register(opstatus_budget, name="opstatus-budget")
    assert opstatus_budget._budget().per_hour == 120
    monkeypatch.setenv("OPSTATUS_BUDGET_PER_HOUR", "600")
    assert opstatus_budget._budget().per_hour == 120  # once, at registration


def test_configure_from_code(unconfigured, monkeypatch):
    budget = opstatus_budget.configure(3600, burst=2)
    assert opstatus_budget._budget() is budget and budget.interval == 1.0
    # The code's budget wins over the environment, read by a manager made later.
    monkeypatch.setenv("OPSTATUS_BUDGET_PER_HOUR", "60")
    opstatus.make_plugin_manager().register(opstatus_budget, name="opstatus-budget")
    assert opstatus_budget._budget() is budget
    assert opstatus_budget.configure(None) is None and opstatus_budget._budget() is None
    with pytest.raises(ValueError, match="numbers"):
        opstatus_budget._from_environment({"OPSTATUS_BUDGET_PER_HOUR": "lots"})


@pytest.mark.parametrize("variable, value", [
    ("OPSTATUS_BUDGET_PER_HOUR", "lots"), ("OPSTATUS_BUDGET_PER_HOUR", "-5"),
    ("OPSTATUS_BUDGET_JITTER", "full"),
])
def test_a_bad_environment_refuses_the_plugin(unconfigured, monkeypatch, variable, value):
    monkeypatch.setenv("OPSTATUS_BUDGET_PER_HOUR", "120")
    monkeypatch.setenv(variable, value)
    pm = opstatus.make_plugin_manager()
    with pytest.raises(opstatus.PluginError, match="opstatus-budget.*OPSTATUS_BUDGET_"):
        pm.register(opstatus_budget, name="opstatus-budget")
    assert opstatus_budget._budget() is None
    assert pm.get_plugin("opstatus-budget") is None  # not left half-registered


def test_a_bad_environment_stops_the_installed_plugins_manager(unconfigured, monkeypatch):
    monkeypatch.delenv("OPSTATUS_DISABLE_PLUGIN_AUTOLOAD", raising=False)
    monkeypatch.delenv("OPSTATUS_DISABLED_PLUGINS", raising=False)
    monkeypatch.setenv("OPSTATUS_BUDGET_PER_HOUR", "lots")
    with pytest.raises(opstatus.PluginError, match="OPSTATUS_BUDGET_PER_HOUR"):
        opstatus.make_plugin_manager(autoload=True)
    monkeypatch.setenv("OPSTATUS_DISABLED_PLUGINS", "opstatus-budget")  # the way out
    assert opstatus.make_plugin_manager(autoload=True).get_plugin("opstatus-budget") is None
