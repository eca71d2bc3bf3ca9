"""asyncio: poll_async, ``async for`` over a Poller, wait_async, cancellation,
against a real loopback Simulator.

Deterministic tests inject a fake clock shared with the simulator (the ``sim``
fixture). Those about the event loop not being blocked and about cancelling
a task run in real time, on purpose, with operations of well under a second.
Python 3.7 syntax: ``asyncio.run``, no ``asyncio.timeout`` nor TaskGroup.
"""

import asyncio
import gc
import json
import threading
import time
import uuid
import warnings

import pytest

import opstatus
from conftest import ConnectionCounter, FakeClock, gets, take  # noqa: F401
from opstatus import (
    OperationFailed,
    OperationNotFound,
    Poller,
    PollTimeout,
    RetryPolicy,
    Status,
    poll_async,
)

ENDLESS = {"queue_seconds": 0.0, "take_seconds": 1e7}
THREAD_BOUND = 3.0


###############################################################################
# Helpers
###############################################################################


def fake_time(clock, rand=0.5):
    return {"clock": clock, "sleep": clock.sleep, "random": lambda: rand, "plugins": False}


def dedupe(statuses):
    out = []
    for status in statuses:
        if not out or out[-1] is not status:
            out.append(status)
    return out


@pytest.fixture
def live_sim(request):
    """A simulator on the real clock, options by indirect parametrisation."""
    options = {"queue_seconds": 0.05, "take_seconds": 0.3}
    options.update(getattr(request, "param", None) or {})
    simulator = opstatus.Simulator(**options).start()
    simulator.counter = ConnectionCounter(simulator)
    base = threading.active_count()
    try:
        yield simulator
    finally:
        simulator.stop()
    # the default executor's threads and the simulator's are gone soon after
    deadline = time.monotonic() + THREAD_BOUND
    while threading.active_count() > base - 1:
        assert time.monotonic() < deadline, "threads left behind: %s" % sorted(
            t.name for t in threading.enumerate())
        time.sleep(0.01)


def quick(**extra):
    """Real-time poller options: polls 50 ms apart."""
    options = {"policy": RetryPolicy(floor=0.05, cap=0.1, jitter=0.0), "plugins": False}
    options.update(extra)
    return options


###############################################################################
# The loop is not blocked
###############################################################################


@pytest.mark.parametrize("live_sim", [{"queue_seconds": 0.05, "take_seconds": 1.5}],
                         indirect=True)
def test_poll_async_does_not_block_the_loop(live_sim):
    location = take(live_sim)
    live_sim.slow = 0.4  # each answer takes 400 ms: a blocking GET would stall the loop
    ticks = []

    async def ticker(stop):
        while not stop.is_set():
            ticks.append(time.monotonic())
            await asyncio.sleep(0.01)

    async def main():
        stop = asyncio.Event()
        task = asyncio.ensure_future(ticker(stop))
        try:
            # waits of 400 ms too: a blocking sleep would stall it as well
            return await poll_async(location, endpoint=live_sim.endpoint, key=live_sim.key,
                                    timeout=20,
                                    **quick(policy=RetryPolicy(floor=0.4, cap=0.4)))
        finally:
            stop.set()
            await task

    started = time.monotonic()
    status = asyncio.run(main())
    elapsed = time.monotonic() - started
    assert status.status is Status.SUCCEEDED
    requests = len(gets(live_sim))
    assert requests >= 3
    assert elapsed >= requests * 0.4
    # the ticker kept running all along: many ticks, no gap as long as a
    # request or a wait (the margins leave room for a loaded machine)
    assert len(ticks) >= 0.2 * elapsed / 0.01
    gaps = [b - a for a, b in zip(ticks, ticks[1:])]
    assert max(gaps) < 0.3, "the loop stalled for %.3f s" % max(gaps)
    assert ticks[0] - started < 0.3 and started + elapsed - ticks[-1] < 0.4


###############################################################################
# async for, wait_async, poll_async: outcomes (fake clock)
###############################################################################


def test_async_for_yields_not_started_running_succeeded(sim, fake_clock):
    location = take(sim)

    async def main():
        seen = []
        with Poller(location, endpoint=sim.endpoint, key=sim.key,
                    **fake_time(fake_clock)) as poller:
            async for status in poller:
                seen.append(status)
        return poller, seen

    poller, seen = asyncio.run(main())
    assert dedupe([s.status for s in seen]) == [Status.NOTSTARTED, Status.RUNNING,
                                                Status.SUCCEEDED]
    assert seen[-1] is poller.latest and poller.done
    assert len(seen) == poller.polls == len(gets(sim))
    assert fake_clock.slept >= 1.3  # queue 0.3 s + take 1.0 s, all of it fake


def test_wait_async_returns_the_final_status(sim, fake_clock):
    location = take(sim)

    async def main():
        poller = Poller(location, endpoint=sim.endpoint, key=sim.key, **fake_time(fake_clock))
        return poller, await poller.wait_async()

    poller, status = asyncio.run(main())
    assert status is poller.latest
    assert status.status is Status.SUCCEEDED
    assert status.snapshot_id in sim.snapshots
    assert fake_clock.sleeps and all(0.5 <= s <= 60 for s in fake_clock.sleeps)


def test_poll_async_returns_the_final_status(sim, fake_clock):
    location = take(sim)
    status = asyncio.run(poll_async(location, endpoint=sim.endpoint, key=sim.key,
                                    **fake_time(fake_clock)))
    assert status.succeeded
    assert status.snapshot_id in sim.snapshots


@pytest.mark.parametrize("sim", [{"fail": "Snapshot could not be taken."}], indirect=True)
def test_failed_operation_raises_operation_failed(sim, fake_clock):
    location = take(sim)
    with pytest.raises(OperationFailed) as info:
        asyncio.run(poll_async(location, endpoint=sim.endpoint, key=sim.key,
                               **fake_time(fake_clock)))
    assert info.value.status.status is Status.FAILED
    assert info.value.message == "Snapshot could not be taken."


def test_unknown_operation_raises_operation_not_found(sim, fake_clock):
    async def main():
        poller = Poller("/operations/%s" % uuid.uuid4(), endpoint=sim.endpoint, key=sim.key,
                        **fake_time(fake_clock))
        try:
            await poller.wait_async()
        finally:
            assert poller.polls == 1

    with pytest.raises(OperationNotFound) as info:
        asyncio.run(main())
    assert info.value.status == 404 and info.value.code == "OperationNotFound"
    assert fake_clock.sleeps == []  # not retried


@pytest.mark.parametrize("sim", [ENDLESS], indirect=True)
def test_timeout_raises_poll_timeout(sim, fake_clock):
    location = take(sim)
    with pytest.raises(PollTimeout) as info:
        asyncio.run(poll_async(location, endpoint=sim.endpoint, key=sim.key, timeout=30,
                               **fake_time(fake_clock)))
    assert info.value.timeout == 30
    assert info.value.last_status.status is Status.RUNNING
    assert 25 <= fake_clock.slept <= 30


###############################################################################
# Injected time: the same schedule as the synchronous poller
###############################################################################


@pytest.mark.parametrize("options", [{}, {"fail": "nope"}, {"take_seconds": 200.0}],
                         ids=["succeeds", "fails", "long"])
def test_async_schedule_equals_the_sync_schedule(options):
    def run(use_async):
        clock = FakeClock()
        with opstatus.Simulator(clock=clock, **options) as sim:
            location = take(sim)
            poller = Poller(location, endpoint=sim.endpoint, key=sim.key, **fake_time(clock))
            seen = []
            if use_async:
                async def main():
                    async for status in poller:
                        seen.append(status.status)
                try:
                    asyncio.run(main())
                except OperationFailed:
                    seen.append("raised")
                finally:
                    poller.close()
            else:
                try:
                    for status in poller:
                        seen.append(status.status)
                except OperationFailed:
                    seen.append("raised")
            return seen, clock.sleeps, poller.polls, len(gets(sim))

    sync, async_ = run(False), run(True)
    assert async_[0] == sync[0]
    assert async_[1] == pytest.approx(sync[1], abs=1e-4)
    assert async_[2:] == sync[2:]
    assert sync[2] == sync[3] >= 3


###############################################################################
# Cancelling the task (real time)
###############################################################################


@pytest.mark.parametrize("live_sim", [ENDLESS], indirect=True)
def test_cancelling_the_task_during_a_wait(live_sim):
    location = take(live_sim)

    async def main():
        with Poller(location, endpoint=live_sim.endpoint, key=live_sim.key,
                    **quick(policy=RetryPolicy(floor=2.0, cap=2.0))) as poller:
            task = asyncio.ensure_future(poller.wait_async())
            while not gets(live_sim):
                await asyncio.sleep(0.005)
            await asyncio.sleep(0.05)  # now in its 2 s wait
            cancelled_at = time.monotonic()
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            took = time.monotonic() - cancelled_at
            count = len(live_sim.requests)
            await asyncio.sleep(0.2)
            return poller, took, count

    poller, took, count = asyncio.run(main())
    assert took < 0.1
    assert poller.cancelled
    assert poller.polls == 1
    assert len(live_sim.requests) == count == 2  # the take and one poll
    assert live_sim.counter.wait_closed() == 0


@pytest.mark.parametrize("live_sim", [ENDLESS], indirect=True)
def test_cancelling_the_task_during_a_request(live_sim):
    location = take(live_sim)
    live_sim.slow = 0.3

    async def main():
        with Poller(location, endpoint=live_sim.endpoint, key=live_sim.key,
                    **quick()) as poller:
            task = asyncio.ensure_future(poller.wait_async())
            while not gets(live_sim):  # the GET reached the simulator, which dawdles
                await asyncio.sleep(0.005)
            cancelled_at = time.monotonic()
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            took = time.monotonic() - cancelled_at
            count = len(live_sim.requests)
            await asyncio.sleep(0.5)  # the request in flight ends meanwhile
            return poller, took, count

    poller, took, count = asyncio.run(main())
    assert took < 0.1  # not held until the answer comes
    assert poller.cancelled
    # the one request in flight was let finish; nothing after it
    assert len(live_sim.requests) == count == 2
    assert poller.polls == 1
    assert live_sim.counter.wait_closed() == 0


@pytest.mark.parametrize("live_sim", [ENDLESS], indirect=True)
def test_cancelling_poll_async_during_a_request_leaks_no_connection(live_sim):
    location = take(live_sim)
    live_sim.slow = 0.3

    async def main():
        task = asyncio.ensure_future(poll_async(location, endpoint=live_sim.endpoint,
                                                key=live_sim.key, **quick()))
        while not gets(live_sim):
            await asyncio.sleep(0.005)
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            pass
        await asyncio.sleep(0.5)  # the request in flight ends meanwhile

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        asyncio.run(main())
        still_open = live_sim.counter.wait_closed(0.5)
        gc.collect()
    leaks = [str(w.message) for w in caught if issubclass(w.category, ResourceWarning)]
    assert (still_open, leaks) == (0, [])


###############################################################################
# Connections after async iteration
###############################################################################


def test_wait_async_closes_its_connection(sim, fake_clock):
    sim.counter = ConnectionCounter(sim)
    location = take(sim)
    poller = Poller(location, endpoint=sim.endpoint, key=sim.key, **fake_time(fake_clock))
    asyncio.run(poller.wait_async())
    assert sim.counter.accepted == 2  # the take's, and one for all the polls
    assert poller.polls >= 3
    assert sim.counter.wait_closed() == 0


def test_async_for_closes_its_connection_like_for(sim, fake_clock):
    sim.counter = ConnectionCounter(sim)
    location = take(sim)
    assert sim.counter.wait_closed() == 0  # the take's connection

    # the control: a plain for loop closes it
    poller = Poller(location, endpoint=sim.endpoint, key=sim.key, **fake_time(fake_clock))
    for _status in poller:
        pass
    assert sim.counter.wait_closed() == 0

    poller = Poller(location, endpoint=sim.endpoint, key=sim.key, **fake_time(fake_clock))

    async def main():
        async for _status in poller:
            pass

    try:
        asyncio.run(main())
        assert poller.done
        assert sim.counter.wait_closed(0.3) == 0
    finally:
        poller.close()  # so that the leak, if any, warns no later test


###############################################################################
# Several operations at once
###############################################################################


@pytest.mark.parametrize("live_sim", [{"queue_seconds": 0.05, "take_seconds": 0.0}],
                         indirect=True)
def test_several_operations_with_gather(live_sim):
    durations = [0.6, 0.2, 0.4, 0.3, 0.5]
    locations = []
    for n, seconds in enumerate(durations):
        live_sim.take_seconds = seconds
        locations.append(take(live_sim, "op%d" % n))
    live_sim.fail = "boom"
    locations.append(take(live_sim, "bad"))
    live_sim.fail = None
    locations.append("/operations/%s" % uuid.uuid4())
    finished = {}

    async def one(index, location):
        try:
            return await poll_async(location, endpoint=live_sim.endpoint, key=live_sim.key,
                                    timeout=10, **quick())
        finally:
            finished[index] = time.monotonic()

    async def main():
        return await asyncio.gather(*(one(i, loc) for i, loc in enumerate(locations)),
                                    return_exceptions=True)

    started = time.monotonic()
    results = asyncio.run(main())
    elapsed = time.monotonic() - started
    assert [r.status for r in results[:5]] == [Status.SUCCEEDED] * 5
    assert isinstance(results[5], OperationFailed)
    assert isinstance(results[6], OperationNotFound)
    # concurrently: about the longest one, far below the sum (2 s)
    assert elapsed < 1.3
    # and each ended on its own schedule: the 0.2 s one before the 0.6 s one
    assert finished[1] < finished[3] < finished[0]
    assert finished[6] - started < 0.3  # the 404 did not wait for the others


def coroutines_awaiting(task):
    """How many coroutines deep *task* waits (its own, and each one it awaits)."""
    coro, depth = task._coro, 0  # Task.get_coro() from 3.8 on
    while hasattr(coro, "cr_await"):
        coro, depth = coro.cr_await, depth + 1
    return depth


async def drain(poller):
    async for _status in poller:
        pass


@pytest.mark.parametrize("live_sim", [ENDLESS], indirect=True)
@pytest.mark.parametrize("how", ["poll_async", "async for"])
def test_polls_waiting_for_their_next_poll_share_one_timer(live_sim, how):
    # 10,000 polls at once: each waits for its time as one future, not with a timer (and a
    # copy of the context) of its own; cancelling them all ends them at once
    locations = [take(live_sim, "op%d" % n) for n in range(20)]
    options = dict(endpoint=live_sim.endpoint, key=live_sim.key, timeout=30,
                   **quick(policy=RetryPolicy(floor=5.0, cap=5.0)))

    shared = opstatus.HTTPTransport()  # async for: one mux for the pollers that share it

    async def main():
        loop = asyncio.get_event_loop()
        tasks = [asyncio.ensure_future(
            poll_async(location, **options) if how == "poll_async"
            else drain(Poller(location, transport=shared, **options))) for location in locations]
        while len(gets(live_sim)) < len(locations):
            await asyncio.sleep(0.005)
        await asyncio.sleep(0.05)  # all of them in their 5 s wait
        timers = [h for h in loop._scheduled if not h._cancelled]
        frames = {coroutines_awaiting(task) for task in tasks}
        for task in tasks:
            task.cancel()
        started = time.monotonic()
        results = await asyncio.gather(*tasks, return_exceptions=True)
        return timers, frames, results, time.monotonic() - started

    with shared:
        timers, frames, results, took = asyncio.run(main())
    assert 1 <= len(timers) <= 2, timers  # the mux's alarm, and perhaps its watchdog
    if how == "poll_async":
        assert frames == {1}  # poll_async's own: no coroutine under it while it waits
    assert all(isinstance(r, asyncio.CancelledError) for r in results)
    assert took < 0.5
    assert len(gets(live_sim)) == len(locations)  # one poll each, none after the cancel


def test_poll_async_follows_a_poller_as_it_is(sim, fake_clock):
    location = take(sim)
    with Poller(location, endpoint=sim.endpoint, key=sim.key, **fake_time(fake_clock)) as poller:
        with pytest.raises(TypeError):
            asyncio.run(poll_async(poller, timeout=5))  # its settings are its own
        assert poller.polls == 0
        assert asyncio.run(poll_async(poller)).succeeded
        assert poller.done and poller.polls >= 1


def test_polls_running_at_once_keep_one_copy_of_their_equal_settings():
    # poll_async's pollers join one pool: its connections, and one copy of the headers, origin
    # and hooks they have in common (10,000 polls at once: memory per operation).
    pool = opstatus._SharedPool()
    clients = [opstatus._Client("https://face.example", "k" * 32, None, False, None, None, None,
                                10.0, 1024, False) for _ in range(3)]
    other = opstatus._Client("https://face.example", "x" * 32, None, False, None, None, None,
                             10.0, 1024, False)
    joined = [pool.join(client) for client in clients + [other]]
    first = clients[0]
    # the same in every setting: one client for all of them; another key: its own
    assert joined == [first, first, first, other]
    assert all(c.transport is first.transport for c in clients + [other])
    assert all(c.headers is first.headers and c.origin is first.origin for c in clients)
    assert other.headers is not first.headers and other.headers[opstatus.KEY_HEADER] == "x" * 32
    for _client in clients + [other]:
        pool.release()
    assert pool._first is None and pool._users == 0


def test_an_event_loop_sends_at_most_8_requests_of_its_polls_at_once():
    # 10,000 polls at once must not put 10,000 work items in the executor: they queue at the
    # loop's gate. A roomy executor, so that only the gate can hold them back; a transport
    # of its own kind, so that the requests run in the executor.
    import concurrent.futures
    lock, counts = threading.Lock(), {"now": 0, "peak": 0}
    body = json.dumps({"status": "succeeded", "createdTime": "2021-06-08T22:28:33Z",
                       "lastActionTime": "2021-06-08T22:28:34Z"}).encode()

    class Slow:
        def send(self, request):
            with lock:
                counts["now"] += 1
                counts["peak"] = max(counts["peak"], counts["now"])
            time.sleep(0.02)
            with lock:
                counts["now"] -= 1
            return opstatus.Response(200, {"content-type": "application/json"}, body)

    pollers = [Poller("https://example.invalid/operations/%d" % i, plugins=False,
                      transport=Slow()) for i in range(30)]

    async def drain(poller):
        async for _status in poller:
            pass

    async def main():
        asyncio.get_event_loop().set_default_executor(
            concurrent.futures.ThreadPoolExecutor(max_workers=32))
        await asyncio.gather(*(drain(p) for p in pollers))
    asyncio.run(main())
    assert 2 <= counts["peak"] <= opstatus._ASYNC_REQUESTS
    assert all(p.latest.succeeded for p in pollers)


def test_the_gate_goes_with_its_event_loop():
    import weakref
    refs = []

    async def main():
        loop = asyncio.get_event_loop()
        refs.append(weakref.ref(loop))
        gate = opstatus._async_gate(loop)
        assert opstatus._async_gate(loop) is gate

        async def through():
            async with gate:
                await asyncio.sleep(0)
        # more than it lets through: waiters bind the semaphore to the loop (3.10+)
        await asyncio.gather(*(through() for _ in range(3 * opstatus._ASYNC_REQUESTS)))
    asyncio.run(main())
    for _ in range(3):  # PyPy's collector frees the loop on its second pass
        gc.collect()
    assert refs[0]() is None


def test_a_loop_that_takes_no_attribute_gets_no_gate():
    # An event loop written in C (uvloop) may refuse the gate's attribute: polls then go
    # to the executor ungated, as before the gate, rather than failing.
    async def through():
        gate = opstatus._async_gate(object())  # in a running loop, as poll_async asks
        assert not isinstance(gate, asyncio.Semaphore)
        async with gate:
            return "through"
    assert asyncio.run(through()) == "through"


def test_a_loop_that_cannot_watch_sockets_polls_in_its_executor(live_sim):
    # Windows' proactor loop has no add_reader: the requests run in the executor instead.
    class NoReaders(asyncio.SelectorEventLoop):
        add_reader = asyncio.AbstractEventLoop.add_reader

    threads = set()
    location = take(live_sim)

    async def main():
        return await opstatus.poll_async(location, endpoint=live_sim.endpoint,
                                         key=live_sim.key, timeout=30, on_status=lambda s:
                                         threads.add(threading.current_thread().name),
                                         **quick())

    loop = NoReaders()
    try:
        final = loop.run_until_complete(main())
    finally:
        loop.close()
    assert final.succeeded
    assert threads and threading.main_thread().name not in threads


def test_a_poll_cancelled_just_after_it_was_given_a_turn_hands_the_turn_on():
    # Turns bound an event loop's requests under way; one given to a poll that is cancelled
    # before it runs must go to the next waiter (or back), or the loop loses a turn for good.
    class NoRequests:
        def step_requests(self):
            return iter(())

    async def main():
        loop = asyncio.get_event_loop()
        mux = opstatus._LoopMux(opstatus.HTTPTransport(), loop)
        mux.turns = opstatus._ASYNC_REQUESTS  # every turn taken
        first = asyncio.ensure_future(mux.step(NoRequests()))
        second = asyncio.ensure_future(mux.step(NoRequests()))
        await asyncio.sleep(0)  # both wait for a turn
        mux._pass_turn()  # a step ended: its turn goes to the first waiter...
        first.cancel()  # ...which is cancelled before it runs
        with pytest.raises(asyncio.CancelledError):
            await first
        # it got the turn the first could not use, and gave it back (a lost turn: no end)
        await asyncio.wait_for(second, 5)
        return mux.turns

    assert asyncio.run(main()) == opstatus._ASYNC_REQUESTS - 1
