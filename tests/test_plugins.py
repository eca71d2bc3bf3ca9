"""Plugins: every hook of opstatus, against the simulator over real loopback.

In the style of pluggy's and llm's own tests: a fresh plugin manager per test
(``opstatus.make_plugin_manager()``), inline plugin classes registered through
a fixture that always unregisters them, and ``plugins=pm`` handed to the
poller. Time is injected (a fake clock whose ``sleep`` advances it, shared
with the simulator), so no test waits for real except the one transport that
hangs on purpose. Entry-point discovery and life without pluggy run in
subprocesses, with a fake distribution on ``PYTHONPATH``.
"""

import json
import logging
import os
import re
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

import opstatus
from conftest import FakeClock, gets

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

#: A token a plugin adds; it must never show in an error or a log line.
TOKEN = "eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.c2VjcmV0.s3cr3t-t0k3n-4711"

SUCCEEDED = {"status": "succeeded", "createdTime": "2026-01-01T00:00:00Z",
             "lastActionTime": "2026-01-01T00:00:01Z", "resourceLocation": "/snapshots/abc"}


###############################################################################
# Helpers
###############################################################################


@pytest.fixture
def clock():
    return FakeClock(start=5000.0)


@pytest.fixture
def pm():
    """A fresh plugin manager: the specs and the built-in plugin only."""
    pytest.importorskip("pluggy")
    return opstatus.make_plugin_manager()


@pytest.fixture
def register(pm):
    """``register(plugin, name)`` adds *plugin* to *pm*; every plugin added is
    unregistered when the test ends, pass or fail."""
    added = []

    def add(plugin, name=None):
        pm.register(plugin, name=name)
        added.append(plugin)
        return plugin

    try:
        yield add
    finally:
        for plugin in added:
            if pm.is_registered(plugin):
                pm.unregister(plugin)


@pytest.fixture
def sim(clock):
    """A simulator on the fake clock: an operation is notStarted for 0.3 s,
    then running for 1 s (or what a test sets), then done."""
    simulator = opstatus.Simulator(clock=clock, queue_seconds=0.3, take_seconds=1.0)
    simulator.start()
    try:
        yield simulator
    finally:
        simulator.stop()


def start(sim, plugins=False):
    """Start taking a snapshot; its Operation-Location."""
    return opstatus.take_snapshot(sim.endpoint, sim.key, object_type="PersonGroup",
                                  object_id="group1", apply_scope=[sim.subscription],
                                  plugins=plugins)


def make_poller(sim, clock, plugins, location=None, **options):
    kwargs = dict(endpoint=sim.endpoint, key=sim.key, clock=clock, sleep=clock.sleep,
                  random=lambda: 0.0, plugins=plugins, timeout=600)
    kwargs.update(options)
    return opstatus.Poller(location or start(sim), **kwargs)


class RecordingServer:
    """A loopback HTTP/1.1 server that records every request (method, path,
    lower-cased headers) and answers what ``answer(path, headers)`` returns:
    ``(status, document)``."""

    def __init__(self, answer):
        self.answer = answer
        self.requests = []

    def __enter__(self):
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # headers and body are two writes

            def log_message(self, format, *args):
                pass

            def do_GET(self):
                headers = {k.lower(): v for k, v in self.headers.items()}
                server.requests.append((self.command, self.path, headers))
                status, doc = server.answer(self.path, headers)
                body = json.dumps(doc).encode("utf-8")
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever,
                                       kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()
        return self

    def __exit__(self, *exc_info):
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(5)

    @property
    def endpoint(self):
        return "http://127.0.0.1:%d" % self.httpd.server_address[1]


def response(status=200, doc=None, headers=None, body=None):
    if body is None:
        body = json.dumps(SUCCEEDED if doc is None else doc).encode("utf-8")
    return opstatus.Response(status, {"content-type": "application/json"}
                             if headers is None else headers, body)


###############################################################################
# opstatus_send_request: the transport
###############################################################################


def test_transport_plugin_wins_over_the_builtin(pm, register, sim, clock):
    seen = []

    class Canned:
        @opstatus.hookimpl
        def opstatus_send_request(self, request):
            seen.append(request)
            return response(doc=SUCCEEDED)

    register(Canned(), "canned")
    poller = make_poller(sim, clock, pm, max_bytes=4096, request_timeout=7.0)
    final = poller.wait()

    assert final.status is opstatus.Status.SUCCEEDED
    assert final.snapshot_id == "abc"  # the plugin's answer, not the simulator's
    assert gets(sim) == []  # the built-in never sent the GET
    [request] = seen
    assert (request.method, request.url) == ("GET", poller.url)
    assert request.headers[opstatus.KEY_HEADER] == sim.key
    assert request.timeout == 7.0 and request.max_bytes == 4096


def test_builtin_transport_is_used_when_the_plugin_returns_none(pm, register, sim, clock):
    seen = []

    class Passing:
        @opstatus.hookimpl
        def opstatus_send_request(self, request):
            seen.append((request.method, request.url))
            return None

    register(Passing(), "passing")
    location = start(sim, plugins=pm)  # the POST goes through the hook too
    poller = make_poller(sim, clock, pm, location)
    final = poller.wait()

    assert final.status is opstatus.Status.SUCCEEDED
    assert [m for m, _ in seen] == ["POST"] + ["GET"] * poller.polls
    assert len(gets(sim)) == poller.polls >= 3  # notStarted, running, succeeded


def test_explicit_transport_wins_over_a_transport_plugin(pm, register, sim, clock):
    calls = []

    class Plugin:
        @opstatus.hookimpl
        def opstatus_send_request(self, request):
            calls.append("plugin")
            return response()

    class Explicit:
        def __init__(self):
            self.inner = opstatus.HTTPTransport()

        def send(self, request):
            calls.append("explicit")
            return self.inner.send(request)

    register(Plugin(), "plugin")
    explicit = Explicit()
    try:
        make_poller(sim, clock, pm, transport=explicit).wait()
    finally:
        explicit.inner.close()
    assert set(calls) == {"explicit"}
    assert len(gets(sim)) == calls.count("explicit")


def test_explicit_tls_settings_are_not_silently_ignored_by_a_transport_plugin(
        pm, register, sim, clock, tmp_path):
    seen = []

    class Plugin:
        @opstatus.hookimpl
        def opstatus_send_request(self, request):
            seen.append(request)
            return None

    register(Plugin(), "plugin-transport")
    cafile = tmp_path / "corp-ca.pem"
    cafile.write_text("not used over http\n")
    make_poller(sim, clock, pm, cafile=str(cafile)).wait()
    # With the caller's cafile the built-in transport (which honours it)
    # sends everything: transport plugins are not consulted at all.
    assert seen == []


def test_transport_plugin_may_raise_network_error_which_is_retried(pm, register, sim, clock):
    failures = []

    class Flaky:
        @opstatus.hookimpl
        def opstatus_send_request(self, request):
            if not failures:
                failures.append(request.url)
                raise opstatus.NetworkError("connection refused", sent=False)
            return None

    register(Flaky(), "flaky")
    poller = make_poller(sim, clock, pm, policy=opstatus.RetryPolicy(error_base=4.0))
    assert poller.wait().status is opstatus.Status.SUCCEEDED
    assert poller.errors == 1
    assert clock.sleeps[0] == 2.0  # error_base 4 * (0.5 + 0.5 * random 0)


class _Oops(Exception):
    pass


BROKEN_TRANSPORTS = {
    "raises": lambda request: (_ for _ in ()).throw(_Oops("socket on fire")),
    "dict": lambda request: {"status": 200, "body": b"{}"},
    "status-999": lambda request: response(status=999),
    "status-bool": lambda request: response(status=True),
    "str-body": lambda request: response(body=json.dumps(SUCCEEDED)),
    "bad-headers": lambda request: response(headers={"retry-after": 5}),
}


@pytest.mark.parametrize("kind", sorted(BROKEN_TRANSPORTS))
def test_broken_transport_raises_plugin_error_naming_it(pm, register, sim, clock, kind):
    answer = BROKEN_TRANSPORTS[kind]

    class Broken:
        @opstatus.hookimpl
        def opstatus_send_request(self, request):
            return answer(request)

    register(Broken(), "broken-" + kind)
    poller = make_poller(sim, clock, pm)
    with pytest.raises(opstatus.PluginError) as info:
        poller.wait()
    assert info.value.plugin == "broken-" + kind
    assert "broken-" + kind in str(info.value)
    assert poller.polls == 1  # a broken plugin is not retried
    assert gets(sim) == []
    if kind == "raises":
        assert isinstance(info.value.__cause__, _Oops)
        assert "socket on fire" in str(info.value)


def test_transport_body_larger_than_max_bytes_is_refused(pm, register, sim, clock):
    class Huge:
        @opstatus.hookimpl
        def opstatus_send_request(self, request):
            return response(body=b" " * (request.max_bytes + 1))

    register(Huge(), "huge")
    with pytest.raises(opstatus.ResponseTooLarge):
        make_poller(sim, clock, pm, max_bytes=1000).wait()

    # One byte less is accepted (and then parsed: blanks are no document).
    class Exact:
        @opstatus.hookimpl
        def opstatus_send_request(self, request):
            doc = json.dumps(SUCCEEDED).encode("utf-8")
            return response(body=doc + b" " * (request.max_bytes - len(doc)))

    register(Exact(), "exact")
    assert make_poller(sim, clock, pm, max_bytes=1000).wait().snapshot_id == "abc"


def test_transport_error_text_never_holds_the_key(pm, register, sim, clock):
    class Leaky:
        @opstatus.hookimpl
        def opstatus_send_request(self, request):
            raise RuntimeError("refused; headers were %r" % (request.headers,))

    register(Leaky(), "leaky")
    with pytest.raises(opstatus.PluginError) as info:
        make_poller(sim, clock, pm).wait()
    assert "leaky" in str(info.value) and "refused" in str(info.value)
    assert sim.key not in str(info.value)
    assert info.value.__cause__ is None  # the original held the key: not chained


class _Hanging:
    def __init__(self):
        self.release = threading.Event()

    @opstatus.hookimpl
    def opstatus_send_request(self, request):
        self.release.wait(2.0)  # "sleeps 2 s", but can be let go at teardown
        return None


def test_hanging_transport_is_abandoned_at_the_request_timeout(pm, register, sim, clock):
    hanging = register(_Hanging(), "hanging")
    poller = make_poller(sim, clock, pm, request_timeout=0.2,
                         policy=opstatus.RetryPolicy(max_errors=0))
    started = time.monotonic()
    try:
        with pytest.raises(opstatus.NetworkError) as info:
            poller.wait()
        took = time.monotonic() - started
    finally:
        hanging.release.set()
    assert took < 1.0  # 0.2 s and the core's 0.25 s grace, not the plugin's 2 s
    assert info.value.sent is True
    assert "0.2 s" in str(info.value)
    assert gets(sim) == []


def test_hanging_transport_cannot_stretch_the_poll_deadline(pm, register, sim):
    hanging = register(_Hanging(), "hanging")
    location = start(sim)
    poller = opstatus.Poller(location, endpoint=sim.endpoint, key=sim.key, timeout=0.3,
                             request_timeout=10.0, plugins=pm)
    started = time.monotonic()
    try:
        with pytest.raises(opstatus.PollTimeout) as info:
            poller.wait()
        took = time.monotonic() - started
    finally:
        hanging.release.set()
    assert took < 1.2  # the 0.3 s deadline bounds the request, not its 10 s timeout
    assert "did not answer" in str(info.value)


def test_hanging_transport_error_names_the_plugin(pm, register, sim, clock):
    hanging = register(_Hanging(), "hanging-plugin")
    poller = make_poller(sim, clock, pm, request_timeout=0.2,
                         policy=opstatus.RetryPolicy(max_errors=0))
    try:
        with pytest.raises(opstatus.OpStatusError) as info:
            poller.wait()
    finally:
        hanging.release.set()
    assert "hanging-plugin" in str(info.value)


###############################################################################
# opstatus_prepare_request
###############################################################################


class BearerAuth:
    def __init__(self, token=TOKEN):
        self.token = token
        self.calls = 0

    @opstatus.hookimpl
    def opstatus_prepare_request(self, request):
        self.calls += 1
        request.headers["Authorization"] = "Bearer " + self.token


def test_prepare_request_header_reaches_the_server(pm, register, clock):
    auth = register(BearerAuth(), "bearer")
    with RecordingServer(lambda path, headers: (200, SUCCEEDED)) as server:
        final = opstatus.poll(server.endpoint + "/face/v1.0/operations/op1", plugins=pm,
                              clock=clock, sleep=clock.sleep)
    assert final.snapshot_id == "abc"
    [(method, path, headers)] = server.requests
    assert (method, path) == ("GET", "/face/v1.0/operations/op1")
    assert headers["authorization"] == "Bearer " + TOKEN
    assert auth.calls == 1


def test_prepare_request_token_never_shows_in_errors_or_logs(pm, register, clock, caplog):
    caplog.set_level(logging.DEBUG, logger="opstatus")
    register(BearerAuth(), "bearer")
    seen = []

    class Recorder:
        @opstatus.hookimpl
        def opstatus_retry_scheduled(self, url, error, delay, errors):
            seen.append("%s %r" % (error, error))

        @opstatus.hookimpl
        def opstatus_operation_finished(self, url, outcome, status, error):
            seen.append("%s %s %r" % (outcome, error, error))

    register(Recorder(), "recorder")
    echo = {"error": {"code": "InvalidToken",
                      "message": "Bearer %s was refused (token %s)" % (TOKEN, TOKEN)}}
    answers = iter([503, 503, 401])
    with RecordingServer(lambda path, headers: (next(answers), echo)) as server:
        with pytest.raises(opstatus.HTTPError) as info:
            opstatus.poll(server.endpoint + "/face/v1.0/operations/op1", plugins=pm,
                          clock=clock, sleep=clock.sleep, random=lambda: 0.0)
    assert [h["authorization"] for _, _, h in server.requests] == ["Bearer " + TOKEN] * 3
    assert info.value.status == 401 and "was refused" in str(info.value)
    shown = [str(info.value), repr(info.value), caplog.text] + seen
    assert len(seen) == 3 and "retrying" in caplog.text
    for text in shown:
        assert TOKEN not in text
        assert "s3cr3t-t0k3n" not in text


@pytest.mark.parametrize("name, value", [
    ("X-Trace", "abc\r\nX-Injected: 1"),
    ("X-Trace", "abc\nX-Injected: 1"),
    ("X-Trace", "abc\rdef"),
    ("X-Trace", "nul\x00byte"),
    ("Authorization", "Bearer " + TOKEN + "\r\nX-Injected: 1"),
])
def test_prepare_request_header_with_crlf_is_refused_before_connecting(
        pm, register, sim, clock, name, value):
    class Injector:
        @opstatus.hookimpl
        def opstatus_prepare_request(self, request):
            request.headers[name] = value

    register(Injector(), "injector")
    poller = make_poller(sim, clock, pm)
    with pytest.raises(opstatus.UnsafeURLError) as info:
        poller.wait()
    assert name in str(info.value)
    assert TOKEN not in str(info.value)
    assert gets(sim) == []  # refused before any byte was sent


def test_prepare_request_cannot_send_secrets_to_another_origin(pm, register, sim, clock):
    with RecordingServer(lambda path, headers: (200, SUCCEEDED)) as elsewhere:
        class Redirector:
            @opstatus.hookimpl
            def opstatus_prepare_request(self, request):
                request.url = elsewhere.endpoint + "/steal"

        register(Redirector(), "redirector")
        with pytest.raises(opstatus.UnsafeURLError) as info:
            make_poller(sim, clock, pm).wait()
        assert elsewhere.requests == []
    assert "another origin" in str(info.value)
    assert gets(sim) == []


def test_prepare_request_that_raises_is_a_plugin_error_naming_it(pm, register, sim, clock):
    class Failing:
        @opstatus.hookimpl
        def opstatus_prepare_request(self, request):
            raise LookupError("no credential found")

    register(Failing(), "failing-auth")
    with pytest.raises(opstatus.PluginError) as info:
        make_poller(sim, clock, pm).wait()
    assert info.value.plugin == "failing-auth"
    assert "failing-auth" in str(info.value) and "no credential found" in str(info.value)
    assert gets(sim) == []


def test_prepare_request_replacing_the_headers_is_refused(pm, register, sim, clock):
    class Replacer:
        @opstatus.hookimpl
        def opstatus_prepare_request(self, request):
            request.headers = [("Authorization", "Bearer x")]

    register(Replacer(), "replacer")
    with pytest.raises(opstatus.PluginError):
        make_poller(sim, clock, pm).wait()
    assert gets(sim) == []


def test_prepare_request_failure_after_setting_a_token_does_not_leak_it(
        pm, register, sim, clock):
    class SetThenFail:
        @opstatus.hookimpl
        def opstatus_prepare_request(self, request):
            request.headers["Authorization"] = "Bearer " + TOKEN
            raise RuntimeError("token Bearer %s was rejected by the proxy" % TOKEN)

    register(SetThenFail(), "set-then-fail")
    with pytest.raises(opstatus.PluginError) as info:
        make_poller(sim, clock, pm).wait()
    assert "set-then-fail" in str(info.value)
    assert TOKEN not in str(info.value)
    assert info.value.__cause__ is None or TOKEN not in str(info.value.__cause__)


###############################################################################
# opstatus_next_delay and opstatus_retry_delay
###############################################################################


def test_next_delay_sets_the_schedule(pm, register, sim, clock):
    sim.take_seconds = 10.0
    calls = []

    class Steady:
        @opstatus.hookimpl
        def opstatus_next_delay(self, url, status, age, polls, policy):
            calls.append((url, status, age, polls, policy))
            return 3.0

    register(Steady(), "steady")
    poller = make_poller(sim, clock, pm)
    poller.wait()
    # notStarted at 0, running at 3, 6, 9, succeeded at 12 (after 10.3 s).
    assert clock.sleeps == [3.0] * 4
    assert [c[3] for c in calls] == [1, 2, 3, 4]
    assert all(c[0] == poller.url and c[4] is poller.policy for c in calls)
    assert [c[1].status.value for c in calls] == ["notstarted"] + ["running"] * 3
    assert all(isinstance(c[2], float) and c[2] >= 0 for c in calls)


def test_next_delay_returning_none_leaves_the_policy_in_charge(pm, register, sim, clock):
    class Silent:
        @opstatus.hookimpl
        def opstatus_next_delay(self, url, status, age, polls, policy):
            return None

    register(Silent(), "silent")
    make_poller(sim, clock, pm, policy=opstatus.RetryPolicy(floor=0.25, cap=0.25)).wait()
    assert set(clock.sleeps) == {0.25}


FLOOR, CAP = 0.5, 2.0


@pytest.mark.parametrize("value, expected", [
    (float("nan"), FLOOR), (-1, FLOOR), (0, FLOOR), (0.1, FLOOR), (1e10, None),
    (float("inf"), None), (float("-inf"), FLOOR), (1e6, CAP), (2.5, CAP), (1.5, 1.5),
], ids=repr)
def test_next_delay_is_clamped_to_floor_and_cap(pm, register, sim, clock, value, expected):
    sim.take_seconds = 3.0

    class Wild:
        @opstatus.hookimpl
        def opstatus_next_delay(self, url, status, age, polls, policy):
            return value

    register(Wild(), "wild")
    make_poller(sim, clock, pm, policy=opstatus.RetryPolicy(floor=FLOOR, cap=CAP)).wait()
    assert clock.sleeps
    assert all(FLOOR <= s <= CAP for s in clock.sleeps)
    if expected is not None:
        assert set(clock.sleeps) == {expected}


def test_next_delay_is_cut_to_the_time_left(pm, register, sim, clock):
    sim.take_seconds = 1000.0

    class Patient:
        @opstatus.hookimpl
        def opstatus_next_delay(self, url, status, age, polls, policy):
            return 50.0

    register(Patient(), "patient")
    with pytest.raises(opstatus.PollTimeout):
        make_poller(sim, clock, pm, timeout=30.0, policy=opstatus.RetryPolicy(cap=100)).wait()
    assert sum(clock.sleeps) <= 30.0
    assert clock.sleeps[0] < 50.0


@pytest.mark.parametrize("hook", ["opstatus_next_delay", "opstatus_retry_delay"])
@pytest.mark.parametrize("garbage", ["soon", b"5", [5], {"delay": 5}, 1j])
def test_delay_garbage_is_a_plugin_error_naming_the_plugin(
        pm, register, sim, clock, hook, garbage):
    class Garbage:
        @opstatus.hookimpl(specname=hook)
        def answer(self):
            return garbage

    register(Garbage(), "garbage-delay")
    location = start(sim)
    sim.server_errors = 1 if hook == "opstatus_retry_delay" else 0
    with pytest.raises(opstatus.PluginError) as info:
        make_poller(sim, clock, pm, location).wait()
    assert info.value.plugin == "garbage-delay"
    assert "garbage-delay" in str(info.value) and hook in str(info.value)
    assert clock.sleeps == []


@pytest.mark.parametrize("hook", ["opstatus_next_delay", "opstatus_retry_delay"])
def test_delay_hook_that_raises_is_a_plugin_error_naming_it(pm, register, sim, clock, hook):
    class Crashing:
        @opstatus.hookimpl(specname=hook)
        def answer(self, errors=None):
            raise ZeroDivisionError("schedule arithmetic")

    register(Crashing(), "crashing-schedule")
    rec = register(Recorder(), "recorder")
    location = start(sim)
    sim.server_errors = 1 if hook == "opstatus_retry_delay" else 0
    with pytest.raises(opstatus.PluginError) as info:
        make_poller(sim, clock, pm, location).wait()
    assert info.value.plugin == "crashing-schedule"
    assert "crashing-schedule" in str(info.value) and hook in str(info.value)
    assert isinstance(info.value.__cause__, ZeroDivisionError)
    url = opstatus.resolve_operation_url(location, sim.endpoint)
    assert rec.events[-1][:3] == ("finished", url, "error")


def test_next_delay_true_is_garbage_too(pm, register, sim, clock):
    class Yes:
        @opstatus.hookimpl
        def opstatus_next_delay(self):
            return True

    register(Yes(), "yes")
    with pytest.raises(opstatus.PluginError, match="yes"):
        make_poller(sim, clock, pm).wait()


def test_retry_delay_sets_the_wait_after_an_error(pm, register, sim, clock):
    calls = []

    class Slow:
        @opstatus.hookimpl
        def opstatus_retry_delay(self, url, error, errors, policy):
            calls.append((url, error, errors, policy))
            return 7.0

    register(Slow(), "slow")
    location = start(sim)
    sim.server_errors = 2  # the next two GETs answer 503
    poller = make_poller(sim, clock, pm, location)
    poller.wait()
    assert clock.sleeps[:2] == [7.0, 7.0]
    assert [c[2] for c in calls] == [1, 2]
    assert all(c[0] == poller.url and c[3] is poller.policy for c in calls)
    assert all(isinstance(c[1], opstatus.HTTPError) and c[1].status == 503 for c in calls)


def test_retry_delay_false_gives_up_at_once(pm, register, sim, clock):
    class Strict:
        @opstatus.hookimpl
        def opstatus_retry_delay(self, url, error, errors, policy):
            return False

    register(Strict(), "strict")
    location = start(sim)
    sim.server_errors = 5
    with pytest.raises(opstatus.HTTPError) as info:
        make_poller(sim, clock, pm, location).wait()
    assert info.value.status == 503
    assert len(gets(sim)) == 1 and clock.sleeps == []


def test_retry_delay_none_leaves_the_policy_in_charge(pm, register, sim, clock):
    class Silent:
        @opstatus.hookimpl
        def opstatus_retry_delay(self, url, error, errors, policy):
            return None

    register(Silent(), "silent")
    location = start(sim)
    sim.server_errors = 1
    make_poller(sim, clock, pm, location,
                policy=opstatus.RetryPolicy(error_base=8.0, cap=60)).wait()
    assert clock.sleeps[0] == 4.0  # 8 * (0.5 + 0.5 * random 0): the policy's own


@pytest.mark.parametrize("value, expected", [
    (float("nan"), FLOOR), (-1, FLOOR), (1e10, None), (1e6, CAP), (1.5, 1.5),
], ids=repr)
def test_retry_delay_is_clamped_to_floor_and_cap(pm, register, sim, clock, value, expected):
    class Wild:
        @opstatus.hookimpl
        def opstatus_retry_delay(self, url, error, errors, policy):
            return value

    register(Wild(), "wild")
    location = start(sim)
    sim.server_errors = 1
    make_poller(sim, clock, pm, location,
                policy=opstatus.RetryPolicy(floor=FLOOR, cap=CAP)).wait()
    assert FLOOR <= clock.sleeps[0] <= CAP
    if expected is not None:
        assert clock.sleeps[0] == expected


def test_explicit_policy_max_errors_bounds_plugin_retries(pm, register, sim, clock):
    class Persistent:
        @opstatus.hookimpl
        def opstatus_retry_delay(self, url, error, errors, policy):
            return 1.0

    register(Persistent(), "persistent")
    location = start(sim)
    sim.server_errors = 3
    with pytest.raises(opstatus.HTTPError):
        make_poller(sim, clock, pm, location,
                    policy=opstatus.RetryPolicy(max_errors=1)).wait()
    assert len(gets(sim)) == 2


###############################################################################
# Notification hooks
###############################################################################


class Recorder:
    def __init__(self):
        self.events = []

    @opstatus.hookimpl
    def opstatus_status_changed(self, url, previous, status):
        self.events.append(("changed", url, previous, status))

    @opstatus.hookimpl
    def opstatus_retry_scheduled(self, url, error, delay, errors):
        self.events.append(("retry", url, error, delay, errors))

    @opstatus.hookimpl
    def opstatus_operation_finished(self, url, outcome, status, error):
        self.events.append(("finished", url, outcome, status, error))


def test_status_changed_is_told_each_change_once(pm, register, sim, clock):
    rec = register(Recorder(), "recorder")
    poller = make_poller(sim, clock, pm)
    final = poller.wait()
    changes = [e for e in rec.events if e[0] == "changed"]
    assert [(p and p.status.value, s.status.value) for _, _, p, s in changes] == [
        (None, "notstarted"), ("notstarted", "running"), ("running", "succeeded")]
    assert all(e[1] == poller.url for e in changes)
    assert changes[-1][3] is final
    assert changes[1][2] is changes[0][3]  # previous is the very status seen before
    assert poller.polls > len(changes)  # running was seen more than once, told once


def test_retry_scheduled_is_told_each_retry(pm, register, sim, clock):
    rec = register(Recorder(), "recorder")
    location = start(sim)
    sim.server_errors = 2
    poller = make_poller(sim, clock, pm, location)
    poller.wait()
    retries = [e for e in rec.events if e[0] == "retry"]
    assert [(e[1], e[4]) for e in retries] == [(poller.url, 1), (poller.url, 2)]
    assert all(isinstance(e[2], opstatus.HTTPError) and e[2].status == 503 for e in retries)
    assert [e[3] for e in retries] == clock.sleeps[:2]
    # Told before the wait, in order with the other events.
    assert [e[0] for e in rec.events][:3] == ["retry", "retry", "changed"]


def test_operation_finished_succeeded(pm, register, sim, clock):
    rec = register(Recorder(), "recorder")
    poller = make_poller(sim, clock, pm)
    final = poller.wait()
    assert rec.events[-1] == ("finished", poller.url, "succeeded", final, None)
    assert [e[0] for e in rec.events].count("finished") == 1


def test_operation_finished_failed(pm, register, sim, clock):
    sim.fail = "Source object was modified."
    rec = register(Recorder(), "recorder")
    poller = make_poller(sim, clock, pm)
    with pytest.raises(opstatus.OperationFailed) as info:
        poller.wait()
    _, url, outcome, status, error = rec.events[-1]
    assert (url, outcome) == (poller.url, "failed")
    assert status is info.value.status and status.status is opstatus.Status.FAILED
    assert isinstance(error, opstatus.OperationFailed)
    assert error.message == "Source object was modified."


def test_operation_finished_timeout(pm, register, sim, clock):
    sim.take_seconds = 1000.0
    rec = register(Recorder(), "recorder")
    poller = make_poller(sim, clock, pm, timeout=5.0)
    with pytest.raises(opstatus.PollTimeout) as info:
        poller.wait()
    _, url, outcome, status, error = rec.events[-1]
    assert (url, outcome) == (poller.url, "timeout")
    assert error is info.value
    assert status is poller.latest and status.status is opstatus.Status.RUNNING


def test_operation_finished_cancelled_and_error(pm, register, sim, clock):
    rec = register(Recorder(), "recorder")
    poller = make_poller(sim, clock, pm, on_status=lambda st: poller.cancel())
    with pytest.raises(opstatus.PollCancelled) as info:
        poller.wait()
    assert rec.events[-1][2:] == ("cancelled", poller.latest, info.value)

    missing = make_poller(sim, clock, pm, "/operations/00000000-0000-0000-0000-000000000000")
    with pytest.raises(opstatus.OperationNotFound) as info:
        missing.wait()
    assert rec.events[-1] == ("finished", missing.url, "error", None, info.value)


@pytest.mark.parametrize("hook", ["opstatus_status_changed", "opstatus_retry_scheduled",
                                  "opstatus_operation_finished"])
def test_a_notifier_that_raises_does_not_stop_the_poll(pm, register, sim, clock, caplog, hook):
    rec = register(Recorder(), "recorder")

    class Noisy:
        @opstatus.hookimpl(specname=hook)
        def boom(self):
            raise ValueError("notifier exploded")

    register(Noisy(), "noisy-notifier")  # registered last: called first
    location = start(sim)
    sim.server_errors = 1
    with caplog.at_level(logging.WARNING, logger="opstatus"):
        final = make_poller(sim, clock, pm, location).wait()
    assert final.status is opstatus.Status.SUCCEEDED
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings, "no warning logged"
    message = warnings[0].getMessage()
    assert "noisy-notifier" in message and hook in message and "notifier exploded" in message
    # The other notifiers still ran, every time.
    kinds = [e[0] for e in rec.events]
    assert kinds.count("retry") == 1 and kinds.count("finished") == 1
    assert kinds.count("changed") == 2  # after the 0.5 s retry wait: running, succeeded


class ThreadRecorder:
    """Notes the thread each status change is told in (a hook may block: not the thread
    that sends the other polls' requests)."""

    def __init__(self):
        self.threads = set()

    @opstatus.hookimpl
    def opstatus_status_changed(self, url, previous, status):
        self.threads.add(threading.current_thread().name)


def test_with_a_plugin_a_watcher_and_poll_async_step_on_worker_threads(pm, register, sim,
                                                                        clock):
    import asyncio

    rec = register(ThreadRecorder(), "threads")
    locations = [start(sim), start(sim)]
    outcomes = opstatus.Watcher(locations, endpoint=sim.endpoint, key=sim.key, clock=clock,
                                sleep=clock.sleep, random=lambda: 0.0, plugins=pm).results()
    assert all(o.ok for o in outcomes)
    assert rec.threads and threading.current_thread().name not in rec.threads
    rec.threads.clear()

    async def main():
        return await opstatus.poll_async(start(sim), endpoint=sim.endpoint, key=sim.key,
                                         clock=clock, sleep=clock.sleep, plugins=pm)
    assert asyncio.run(main()).succeeded
    assert rec.threads and threading.current_thread().name not in rec.threads


def test_watcher_notifies_for_each_operation(pm, register, sim, clock):
    rec = register(Recorder(), "recorder")
    locations = [start(sim), start(sim)]
    outcomes = opstatus.Watcher(locations, endpoint=sim.endpoint, key=sim.key, clock=clock,
                                sleep=clock.sleep, random=lambda: 0.0, plugins=pm,
                                max_workers=2).results()
    assert all(o.ok for o in outcomes)
    finished = sorted((e[1], e[2]) for e in rec.events if e[0] == "finished")
    assert finished == sorted(
        (opstatus.resolve_operation_url(loc, sim.endpoint), "succeeded") for loc in locations)


###############################################################################
# Hook order, registration
###############################################################################


def _tagged(tag, calls, result=None, **opts):
    """A plugin that appends ``(hook, tag)`` to *calls* when called; its
    next_delay returns *result*."""

    class Tagged:
        @opstatus.hookimpl(**opts)
        def opstatus_status_changed(self, url, previous, status):
            calls.append(("changed", tag))

        @opstatus.hookimpl(**opts)
        def opstatus_next_delay(self, url, status, age, polls, policy):
            calls.append(("delay", tag))
            return result

    return Tagged()


def test_notification_order_is_pluggys(pm, register, sim, clock):
    calls = []
    register(_tagged("first-registered", calls), "a")
    register(_tagged("trylast", calls, trylast=True), "b")
    register(_tagged("tryfirst", calls, tryfirst=True), "c")
    register(_tagged("last-registered", calls), "d")

    pm.hook.opstatus_status_changed(url="u", previous=None, status=None)
    by_pluggy = [tag for _, tag in calls]
    assert by_pluggy == ["tryfirst", "last-registered", "first-registered", "trylast"]

    del calls[:]
    make_poller(sim, clock, pm).wait()
    changed = [tag for hook, tag in calls if hook == "changed"]
    assert changed == by_pluggy * 3  # notstarted, running, succeeded: same order each time
    delays = [tag for hook, tag in calls if hook == "delay"]
    assert delays[:4] == by_pluggy  # all return None: each asked, in the same order


def test_first_result_order_is_pluggys(pm, register, sim, clock):
    calls = []
    register(_tagged("plain-1", calls, result=1.0), "plain-1")
    late = register(_tagged("plain-2", calls, result=2.0), "plain-2")
    register(_tagged("tryfirst-none", calls, result=None, tryfirst=True), "tryfirst-none")
    register(_tagged("trylast-9", calls, result=9.0, trylast=True), "trylast-9")
    sim.take_seconds = 5.0

    args = dict(url="u", status=None, age=0.0, polls=1, policy=opstatus.RetryPolicy(),
                retry_after=None)
    assert pm.hook.opstatus_next_delay(**args) == 2.0  # pluggy: LIFO, tryfirst first
    make_poller(sim, clock, pm).wait()
    assert set(clock.sleeps) == {2.0}

    pm.unregister(late)
    del clock.sleeps[:]
    make_poller(sim, clock, pm).wait()
    assert set(clock.sleeps) == {1.0}

    register(_tagged("tryfirst-4", calls, result=4.0, tryfirst=True), "tryfirst-4")
    del clock.sleeps[:]
    make_poller(sim, clock, pm).wait()
    assert set(clock.sleeps) == {4.0}
    assert ("delay", "trylast-9") not in calls  # never reached: someone answered first


def test_wrapper_hookimpls_are_called_or_refused(pm, register, sim, clock):
    calls = []

    class Wrapper:
        @opstatus.hookimpl(wrapper=True)
        def opstatus_status_changed(self, url, previous, status):
            calls.append(status.status.value)
            return (yield)

    try:
        register(Wrapper(), "wrapper")
    except Exception:  # refusing it is a fine answer too
        return
    make_poller(sim, clock, pm).wait()
    assert calls == ["notstarted", "running", "succeeded"]


@pytest.fixture
def global_pm(monkeypatch):
    """The process-wide plugin manager, fresh for this test and put back after."""
    pytest.importorskip("pluggy")
    fresh = opstatus.make_plugin_manager()
    monkeypatch.setattr(opstatus, "_PLUGIN_MANAGER", fresh)
    return fresh


def test_register_plugin_refuses_a_misspelled_hook_and_keeps_nothing(global_pm):
    class Typo:
        @opstatus.hookimpl
        def opstatus_status_chnaged(self, url, previous, status):
            pass

    typo = Typo()
    with pytest.raises(opstatus.PluginError, match="opstatus_status_chnaged"):
        opstatus.register_plugin(typo, name="typo")
    assert not global_pm.is_registered(typo)
    assert [name for name, _ in global_pm.list_name_plugin()] == ["opstatus.builtin"]
    assert opstatus.plugin_manager() is global_pm


def test_register_plugin_feeds_the_default_pollers(global_pm, sim, clock):
    rec = Recorder()
    assert opstatus.register_plugin(rec, name="recorder") == "recorder"
    try:
        poller = opstatus.Poller(start(sim), endpoint=sim.endpoint, key=sim.key, clock=clock,
                                 sleep=clock.sleep)  # plugins=None: the process-wide one
        poller.wait()
        assert rec.events[-1][:3] == ("finished", poller.url, "succeeded")

        del rec.events[:]
        opstatus.Poller(start(sim), endpoint=sim.endpoint, key=sim.key, clock=clock,
                        sleep=clock.sleep, plugins=False).wait()
        assert rec.events == []  # plugins=False: none consulted
    finally:
        global_pm.unregister(rec)


def _pluggy_before(version):
    try:
        import pluggy
    except ImportError:
        return False
    found = tuple(int(p) for p in re.findall(r"[0-9]+", pluggy.__version__)[:2])
    return found < version


def test_register_plugin_with_a_bad_signature_keeps_nothing(global_pm):
    class Half:
        @opstatus.hookimpl
        def opstatus_next_delay(self, url):  # fine
            return 1.0

        @opstatus.hookimpl
        def opstatus_status_changed(self, url, old, new):  # not the spec's names
            pass

    half = Half()
    with pytest.raises(opstatus.PluginError, match="old|new"):
        opstatus.register_plugin(half, name="half")
    assert not global_pm.is_registered(half)


def test_builtins_are_plugins_registered_trylast(pm, sim):
    [builtin] = [p for name, p in pm.list_name_plugin() if name == "opstatus.builtin"]
    impls = pm.hook.opstatus_send_request.get_hookimpls()
    assert [i.plugin for i in impls] == [builtin] and impls[0].trylast
    # The delays are the poller's own policy's when no plugin chooses one
    # (issue 11: no copy of its logic in a plugin the poller never calls).
    policy = opstatus.RetryPolicy(floor=2.0, cap=2.0)
    assert pm.hook.opstatus_next_delay(url="u", status=None, age=100.0, polls=1,
                                       policy=policy, retry_after=None) is None
    error = opstatus.HTTPError(400, "BadArgument")
    assert pm.hook.opstatus_retry_delay(url="u", error=error, errors=1, policy=policy) is None
    request = opstatus.Request("GET", sim.endpoint + "/face/v1.0/snapshots",
                               {opstatus.KEY_HEADER: sim.key}, timeout=5)
    try:
        answer = pm.hook.opstatus_send_request(request=request)
    finally:
        builtin.transport.close()
    assert answer.status == 200 and json.loads(answer.body) == []


def test_fresh_plugin_managers_are_independent():
    pytest.importorskip("pluggy")
    one, two = opstatus.make_plugin_manager(), opstatus.make_plugin_manager()
    rec = Recorder()
    one.register(rec)
    try:
        assert two.is_registered(rec) is False
        assert len(two.get_plugins()) == 1
    finally:
        one.unregister(rec)


###############################################################################
# Discovery: entry points, environment
###############################################################################


def test_autoload_consults_entry_points_unless_disabled(monkeypatch):
    pluggy = pytest.importorskip("pluggy")
    groups = []
    monkeypatch.setattr(pluggy.PluginManager, "load_setuptools_entrypoints",
                        lambda self, group, name=None: groups.append(group) or 0)
    monkeypatch.delenv("OPSTATUS_DISABLE_PLUGIN_AUTOLOAD", raising=False)
    opstatus.make_plugin_manager(autoload=False)
    assert groups == []
    opstatus.make_plugin_manager(autoload=True)
    assert groups == ["opstatus"]
    monkeypatch.setenv("OPSTATUS_DISABLE_PLUGIN_AUTOLOAD", "1")
    opstatus.make_plugin_manager(autoload=True)
    assert groups == ["opstatus"]


def test_disabled_plugins_are_blocked(monkeypatch):
    pytest.importorskip("pluggy")
    monkeypatch.setenv("OPSTATUS_DISABLED_PLUGINS", "fake, other ,")
    pm = opstatus.make_plugin_manager()
    assert pm.is_blocked("fake") and pm.is_blocked("other")
    assert not pm.is_blocked("opstatus.builtin")
    assert pm.register(Recorder(), name="fake") is None  # pluggy refuses blocked names


FAKE_PLUGIN = '''\
import opstatus

__version__ = "1.2.3"


@opstatus.hookimpl
def opstatus_status_changed(url, previous, status):
    pass
'''

SHOW_PLUGINS = (
    "import json, sys, opstatus\n"
    "pm = opstatus.plugin_manager()\n"
    "pairs = pm.list_name_plugin()\n"
    "print(json.dumps({'loaded': [n for n, p in pairs if p is not None],"
    " 'blocked': [n for n, p in pairs if p is None],"
    " 'imported': 'fakeplugin' in sys.modules}))\n"
)


@pytest.fixture
def fake_dist(tmp_path):
    """A folder holding an installed distribution ``fake-opstatus-plugin``
    1.2.3 whose ``opstatus`` entry point ``fake`` is module ``fakeplugin``."""
    pytest.importorskip("pluggy")
    (tmp_path / "fakeplugin.py").write_text(FAKE_PLUGIN)
    info = tmp_path / "fake_opstatus_plugin-1.2.3.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: fake-opstatus-plugin\nVersion: 1.2.3\n")
    (info / "entry_points.txt").write_text("[opstatus]\nfake = fakeplugin\n")
    return tmp_path


def run_python(args, path=(), env=None):
    """Run this interpreter with *path* and the repo root on PYTHONPATH and
    no OPSTATUS_* variable but those in *env*."""
    environ = {k: v for k, v in os.environ.items()
               if not k.startswith("OPSTATUS_") and k != "PYTHONPATH"}
    environ["PYTHONPATH"] = os.pathsep.join([str(p) for p in path] + [ROOT])
    environ.update(env or {})
    return subprocess.run([sys.executable] + list(args), env=environ, cwd=ROOT,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          universal_newlines=True, timeout=60)


def show_plugins(fake_dist, env=None):
    result = run_python(["-c", SHOW_PLUGINS], [fake_dist], env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_entry_point_plugin_is_loaded_by_default(fake_dist):
    shown = show_plugins(fake_dist)
    assert "fake" in shown["loaded"] and "opstatus.builtin" in shown["loaded"]
    assert shown["imported"] is True


def test_autoload_off_loads_no_entry_point(fake_dist):
    shown = show_plugins(fake_dist, {"OPSTATUS_DISABLE_PLUGIN_AUTOLOAD": "1"})
    assert "fake" not in shown["loaded"] + shown["blocked"]
    assert shown["imported"] is False


def test_disabled_plugin_is_blocked_and_never_imported(fake_dist):
    shown = show_plugins(fake_dist, {"OPSTATUS_DISABLED_PLUGINS": "fake"})
    assert "fake" in shown["blocked"] and "fake" not in shown["loaded"]
    assert shown["imported"] is False


def test_import_alone_loads_neither_pluggy_nor_plugins(fake_dist):
    script = ("import sys, opstatus\n"
              "opstatus.OperationStatus.from_json(%r)\n"
              "opstatus.hookimpl(lambda url, previous, status: None)\n"
              "print(sorted(m for m in ('pluggy', 'fakeplugin') if m in sys.modules))\n"
              % json.dumps(SUCCEEDED))
    result = run_python(["-c", script], [fake_dist])
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_plugins_command_lists_builtin_and_entry_point_plugins(fake_dist):
    result = run_python([os.path.join(ROOT, "opstatus.py"), "plugins"], [fake_dist])
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert any(re.match(r"opstatus\.builtin\s+%s\s+built in" % re.escape(opstatus.__version__),
                        line) for line in lines), result.stdout
    assert any(re.match(r"fake\s+1\.2\.3\s+entry point of fake-opstatus-plugin", line)
               for line in lines), result.stdout

    result = run_python([os.path.join(ROOT, "opstatus.py"), "plugins", "--json"], [fake_dist])
    rows = {row["name"]: row for row in json.loads(result.stdout)}
    assert rows["fake"]["version"] == "1.2.3"
    assert rows["opstatus.builtin"]["version"] == opstatus.__version__


def test_plugins_command_shows_blocked_and_autoload_off(fake_dist):
    result = run_python([os.path.join(ROOT, "opstatus.py"), "plugins"], [fake_dist],
                        {"OPSTATUS_DISABLED_PLUGINS": "fake"})
    assert result.returncode == 0, result.stderr
    assert re.search(r"^fake\s+-\s+blocked", result.stdout, re.M), result.stdout

    result = run_python([os.path.join(ROOT, "opstatus.py"), "plugins"], [fake_dist],
                        {"OPSTATUS_DISABLE_PLUGIN_AUTOLOAD": "1"})
    assert result.returncode == 0, result.stderr
    assert "fake" not in result.stdout and "autoload" in result.stdout


def test_broken_entry_point_plugin_is_a_plugin_error_naming_it(fake_dist):
    (fake_dist / "fakeplugin.py").write_text("raise ImportError('needs libfoo')\n")
    script = ("import opstatus\n"
              "try:\n"
              "    opstatus.plugin_manager()\n"
              "except opstatus.PluginError as exc:\n"
              "    print('PluginError', exc.plugin, exc)\n"
              "except Exception as exc:\n"
              "    print('other', type(exc).__name__)\n")
    result = run_python(["-c", script], [fake_dist])
    assert result.stdout.startswith("PluginError fake"), result.stdout + result.stderr


###############################################################################
# Without pluggy
###############################################################################

NO_PLUGGY = "import sys\nsys.modules['pluggy'] = None  # import pluggy now fails\n"


def test_without_pluggy_plain_arguments_do_the_plugins_work():
    script = NO_PLUGGY + '''
import json, opstatus

class Clock:
    def __init__(self):
        self.now, self.sleeps = 100.0, []
    def __call__(self):
        return self.now
    def sleep(self, s):
        self.sleeps.append(s)
        self.now += s

class Counting:
    def __init__(self):
        self.inner, self.sent = opstatus.HTTPTransport(), 0
    def send(self, request):
        self.sent += 1
        return self.inner.send(request)

clock, seen, transport = Clock(), [], Counting()
with opstatus.Simulator(clock=clock, queue_seconds=0.3, take_seconds=1.0,
                        objects=[("PersonGroup", "g")]) as sim:
    loc = opstatus.take_snapshot(sim.endpoint, sim.key, object_type="PersonGroup",
                                 object_id="g", apply_scope=[sim.subscription])
    final = opstatus.poll(loc, endpoint=sim.endpoint, key=sim.key, transport=transport,
                          policy=opstatus.RetryPolicy(floor=0.25, cap=0.25),
                          on_status=lambda st: seen.append(st.status.value),
                          clock=clock, sleep=clock.sleep, random=lambda: 0.0)
    transport.inner.close()
print(json.dumps({"final": final.status.value, "seen": seen, "sent": transport.sent,
                  "sleeps": sorted(set(clock.sleeps)),
                  "pluggy": sys.modules.get("pluggy") is not None}))
'''
    result = run_python(["-c", script])
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert out["final"] == "succeeded" and out["pluggy"] is False
    assert out["seen"][0] == "notstarted" and out["seen"][-1] == "succeeded"
    assert out["sent"] == len(out["seen"]) and out["sleeps"] == [0.25]


def test_without_pluggy_registering_says_how_to_get_it():
    script = NO_PLUGGY + '''
import opstatus

class Plugin:
    @opstatus.hookimpl
    def opstatus_status_changed(self, url, previous, status):
        pass

for call in (opstatus.make_plugin_manager, opstatus.plugin_manager,
             lambda: opstatus.register_plugin(Plugin())):
    try:
        call()
    except opstatus.PluginError as exc:
        print("PluginError:", exc)
    else:
        print("no error")
'''
    result = run_python(["-c", script])
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 3
    for line in lines:
        assert line.startswith("PluginError:")
        assert "pip install pluggy" in line
        assert "transport=" in line


def test_without_pluggy_plugins_command_says_so_and_exits_0():
    script = NO_PLUGGY + "import opstatus\nsys.exit(opstatus.main(['plugins']))\n"
    result = run_python(["-c", script])
    assert result.returncode == 0, result.stderr
    assert "pluggy is not installed" in result.stdout
    assert "pip install pluggy" in result.stdout


def test_without_pluggy_pollers_ignore_plugins_quietly(sim, clock, monkeypatch):
    monkeypatch.setattr(opstatus, "_PLUGIN_MANAGER", None)
    monkeypatch.setitem(sys.modules, "pluggy", None)
    poller = make_poller(sim, clock, None)  # plugins=None, and no pluggy to be had
    assert poller.wait().status is opstatus.Status.SUCCEEDED
    assert opstatus._PLUGIN_MANAGER is None
    assert len(gets(sim)) == poller.polls >= 3
    with pytest.raises(opstatus.PluginError, match="pip install"):
        opstatus.make_plugin_manager()
