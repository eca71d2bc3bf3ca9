"""Poller.step(): the one public way every driver polls (iteration, wait,
Watcher, asyncio, the command line); the bound on an address that never
answered; the WARNING after a minute of errors."""

import logging
import socket

import pytest

import opstatus
from conftest import FakeClock, fake_time, take


def request_steps(poller):
    """Pollers driven by step() alone are closed by the test's end."""
    _open.append(poller)


_open = []


@pytest.fixture(autouse=True)
def _close_pollers():
    yield
    while _open:
        _open.pop().close()


def _refused_endpoint():
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()  # nothing listens there now
    return "http://127.0.0.1:%d" % port


def test_step_says_what_it_saw_and_when_to_come_back(sim, fake_clock):
    sim.add_object("PersonGroup", "pg")
    location = take(sim)
    poller = opstatus.Poller(location, endpoint=sim.endpoint, key=sim.key, plugins=False,
                             **fake_time(fake_clock))
    request_steps(poller)
    steps = []
    while True:
        step = poller.step()
        steps.append(step)
        if step.done:
            break
        assert step.status is not None and not step.status.is_terminal
        assert step.error is None and 0.5 <= step.delay <= 60
        fake_clock.advance(step.delay)  # the caller waits, not the poller
    assert steps[-1].status.succeeded and steps[-1].error is None and steps[-1].delay == 0
    assert poller.polls == len(steps)
    assert fake_clock.sleeps == []  # step() itself never sleeps
    assert poller.step() == steps[-1]  # once done, it says so again without a request
    assert poller.polls == len(steps)


def test_step_hands_a_failure_back_without_raising(sim, fake_clock):
    sim.add_object("PersonGroup", "pg")
    sim.fail = "the group is locked"
    location = take(sim)
    poller = opstatus.Poller(location, endpoint=sim.endpoint, key=sim.key, plugins=False,
                             **fake_time(fake_clock))
    request_steps(poller)
    step = poller.step()
    while not step.done:
        fake_clock.advance(step.delay)
        step = poller.step()
    assert isinstance(step.error, opstatus.OperationFailed)
    assert step.status.failed and step.error.status == step.status


def test_step_reports_a_transient_error_and_its_wait(sim, fake_clock):
    sim.add_object("PersonGroup", "pg")
    location = take(sim)
    sim.server_errors = 1
    poller = opstatus.Poller(location, endpoint=sim.endpoint, key=sim.key, plugins=False,
                             **fake_time(fake_clock, 1.0))
    request_steps(poller)
    step = poller.step()
    assert step.status is None and isinstance(step.error, opstatus.HTTPError)
    assert step.error.status == 503 and step.delay > 0 and not step.done


def test_a_wrong_address_fails_fast_with_one_line_naming_it():
    clock = FakeClock()
    endpoint = _refused_endpoint()
    with pytest.raises(opstatus.NetworkError) as info:
        opstatus.poll("/operations/x", endpoint=endpoint, key="k", plugins=False,
                      **fake_time(clock))
    text = str(info.value)
    assert endpoint in text and "check the endpoint" in text and "\n" not in text
    assert opstatus.DEFAULT_UNREACHABLE <= clock.slept < opstatus.DEFAULT_UNREACHABLE + 61
    # without the bound, only the deadline ends it
    clock = FakeClock()
    with pytest.raises(opstatus.PollTimeout):
        opstatus.poll("/operations/x", endpoint=endpoint, key="k", plugins=False, timeout=300,
                      policy=opstatus.RetryPolicy(unreachable=None), **fake_time(clock))
    assert clock.slept > 250


def test_once_the_service_has_answered_errors_are_retried_to_the_deadline(sim, fake_clock):
    sim.add_object("PersonGroup", "pg")
    location = take(sim)
    poller = opstatus.Poller(location, endpoint=sim.endpoint, key=sim.key, plugins=False,
                             timeout=200, **fake_time(fake_clock))
    poller.step()  # an answer
    poller.close()  # its kept-alive connection too
    sim.stop()  # now the address refuses
    with pytest.raises(opstatus.PollTimeout):
        poller.wait()
    assert fake_clock.slept > 150


def test_errors_lasting_a_minute_log_one_warning_then_info_when_answered(sim, fake_clock,
                                                                         caplog):
    caplog.set_level(logging.INFO, logger="opstatus")
    sim.add_object("PersonGroup", "pg")
    sim.take_seconds = 1000.0
    location = take(sim)
    poller = opstatus.Poller(location, endpoint=sim.endpoint, key=sim.key, plugins=False,
                             **fake_time(fake_clock))
    request_steps(poller)
    poller.step()
    sim.server_errors = 40  # 503s for well over a minute of retries
    while sim.server_errors:
        step = poller.step()
        fake_clock.advance(step.delay)
    step = poller.step()
    assert step.status is not None
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "still retrying" in warnings[0].getMessage()
    assert sim.key not in warnings[0].getMessage()
    infos = [r.getMessage() for r in caplog.records if r.levelno == logging.INFO]
    assert any("answers again" in m for m in infos)


def test_a_short_deadline_is_used_to_its_end_when_requests_fail_fast():
    # Issue 13: with --timeout 3 the poll gave up after 2.58 s, keeping a
    # whole second for a last request that took a millisecond.
    clock = FakeClock()
    tries = []

    class Refusing:
        def send(self, request):
            tries.append(clock.now - 1000.0)
            raise opstatus.NetworkError("connection refused", sent=False)

    with pytest.raises(opstatus.PollTimeout):
        opstatus.poll("https://svc.example/face/v1.0/operations/x", key="k", timeout=3,
                      transport=Refusing(), plugins=False, **fake_time(clock))
    assert tries[-1] >= 2.75 and clock.slept <= 3.0


def test_an_http_error_whose_code_is_its_status_says_it_once():
    assert str(opstatus.HTTPError(401, "401", "Access denied")) == "HTTP 401: Access denied"
    assert str(opstatus.HTTPError(404, "PersonGroupNotFound", "gone")) == \
        "HTTP 404 PersonGroupNotFound: gone"
