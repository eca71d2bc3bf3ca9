"""The poller, the retry policy, take/apply and the transport, against real
loopback servers (the Simulator, or small servers defined here).

Time is injected, never slept: pollers get ``clock=``, ``sleep=`` and
``random=``; the simulator runs on the same fake clock, so operations move on
exactly as far as the poller waited.
"""

import dataclasses
import json
import logging
import math
import random as _random
import re
import socket
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import opstatus
from conftest import FakeClock, fake_time, gets
from opstatus import (
    HTTPError,
    NetworkError,
    OperationFailed,
    OperationNotFound,
    PollCancelled,
    Poller,
    PollTimeout,
    ResponseTooLarge,
    RetryPolicy,
    Status,
    UnsafeURLError,
    poll,
)

SCOPE = "2f5e4d3c-1b0a-4987-a6b5-c4d3e2f1a0b9"
OP_PATH = re.compile(r"/operations/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
DIALECTS = pytest.mark.parametrize("sim", [{"dialect": "2019"}, {"dialect": "2021"}],
                                   indirect=True, ids=["2019", "2021"])
QUICK = {"queue_seconds": 0.0, "take_seconds": 0.0, "apply_seconds": 0.0}
ENDLESS = {"queue_seconds": 0.0, "take_seconds": 1e7}


###############################################################################
# Helpers
###############################################################################


def take(sim, object_id="pg", object_type="PersonGroup", **kwargs):
    sim.add_object(object_type, object_id)
    return opstatus.take_snapshot(sim.endpoint, sim.key, object_type=object_type,
                                  object_id=object_id, apply_scope=[sim.subscription], **kwargs)


def posts(sim):
    return [path for method, path in list(sim.requests) if method == "POST"]


def dedupe(statuses):
    out = []
    for status in statuses:
        if not out or out[-1] is not status:
            out.append(status)
    return out


def free_port():
    """A loopback port with (almost surely) no listener."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def status_doc(status="running", created="2021-06-08T22:28:33.5402214Z",
               last="2021-06-08T22:28:33.5402214Z", **extra):
    doc = {"status": status, "createdTime": created, "lastActionTime": last}
    doc.update(extra)
    return doc


class Reply:
    """One scripted answer."""

    def __init__(self, status=200, doc=None, headers=(), body=None, length=True, close=False,
                 chunked=False):
        self.status = status
        if body is None:
            body = b"" if doc is None else json.dumps(doc).encode("utf-8")
        self.body = body
        self.headers = list(headers)
        if doc is not None:
            self.headers.append(("Content-Type", "application/json; charset=utf-8"))
        self.length = length  # send Content-Length (else: close-delimited body)
        self.close = close  # close the connection after answering, without saying so
        self.chunked = chunked  # Transfer-Encoding: chunked, in 100-byte chunks


class _ScriptedHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    timeout = 5

    def log_message(self, format, *args):
        pass

    def _serve(self):
        owner = self.server.owner
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        with owner.lock:
            owner.requests.append((self.command, self.path, dict(self.headers.items()), body))
            reply = owner.replies.pop(0) if len(owner.replies) > 1 else owner.replies[0]
        self.send_response(reply.status)
        for name, value in reply.headers:
            self.send_header(name, value)
        if reply.chunked:
            self.send_header("Transfer-Encoding", "chunked")
        elif reply.length:
            self.send_header("Content-Length", str(len(reply.body)))
        self.end_headers()
        if reply.chunked:
            for i in range(0, len(reply.body), 100):
                chunk = reply.body[i:i + 100]
                self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            self.wfile.write(b"0\r\n\r\n")
        else:
            self.wfile.write(reply.body)
        if reply.close or not (reply.length or reply.chunked):
            self.close_connection = True

    do_GET = do_POST = _serve


class _CountingServer(ThreadingHTTPServer):
    daemon_threads = False  # server_close() joins the handler threads

    def process_request(self, request, client_address):
        with self.owner.lock:
            self.owner.connections += 1
        super().process_request(request, client_address)


class ScriptedServer:
    """An HTTP/1.1 server on 127.0.0.1 that answers from a list of
    :class:`Reply` (the last one repeats), records each request and counts
    the connections it accepted."""

    def __init__(self, *replies):
        self.replies = list(replies) or [Reply(200, status_doc("succeeded"))]
        self.requests = []
        self.connections = 0
        self.lock = threading.Lock()
        self._server = _CountingServer(("127.0.0.1", 0), _ScriptedHandler)
        self._server.owner = self
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        kwargs={"poll_interval": 0.02}, daemon=True)

    @property
    def endpoint(self):
        return "http://127.0.0.1:%d" % self._server.server_address[1]

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc_info):
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)


class ClosingServer:
    """A raw-socket server that reads each request in full, then closes the
    connection without answering."""

    def __init__(self):
        self.requests = []
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(8)
        self._sock.settimeout(0.02)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    @property
    def endpoint(self):
        return "http://127.0.0.1:%d" % self._sock.getsockname()[1]

    def _run(self):
        while not self._stop.is_set():
            try:
                conn, _addr = self._sock.accept()
            except socket.timeout:
                continue
            except OSError:  # pragma: no cover - closed under us
                return
            with conn:
                conn.settimeout(2)
                data = b""
                while b"\r\n\r\n" not in data:
                    chunk = conn.recv(65536)
                    if not chunk:
                        break
                    data += chunk
                head, _, body = data.partition(b"\r\n\r\n")
                match = re.search(rb"(?im)^content-length:\s*([0-9]+)", head)
                length = int(match.group(1)) if match else 0
                while len(body) < length:
                    chunk = conn.recv(65536)
                    if not chunk:
                        break
                    body += chunk
                self.requests.append((head, body))
            # closed: the request was received and never answered

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc_info):
        self._stop.set()
        self._thread.join(5)
        self._sock.close()


###############################################################################
# The whole flow
###############################################################################


@DIALECTS
def test_take_poll_apply_poll(sim, fake_clock):
    location = take(sim)
    assert OP_PATH.fullmatch(location), location

    with Poller(location, endpoint=sim.endpoint, key=sim.key, **fake_time(fake_clock)) as poller:
        seen = list(poller)
    assert dedupe([s.status for s in seen]) == [Status.NOTSTARTED, Status.RUNNING,
                                                Status.SUCCEEDED]
    assert all(not s.is_terminal for s in seen[:-1])
    assert poller.latest is seen[-1]
    assert poller.done
    assert poller.polls == len(seen) == len(gets(sim))
    assert set(gets(sim)) == {"/face/v1.0" + location}

    snapshot_id = poller.latest.snapshot_id
    assert snapshot_id is not None and snapshot_id in sim.snapshots
    assert poller.latest.resource_location == "/snapshots/" + snapshot_id
    assert posts(sim) == ["/face/v1.0/snapshots"]

    applied = opstatus.apply_snapshot(sim.endpoint, sim.key, snapshot_id, object_id="restored")
    assert OP_PATH.fullmatch(applied) and applied != location
    assert posts(sim)[-1] == "/face/v1.0/snapshots/%s/apply" % snapshot_id

    seen2 = []
    final = poll(applied, endpoint=sim.endpoint, key=sim.key, on_status=seen2.append,
                 **fake_time(fake_clock))
    assert final.status is Status.SUCCEEDED
    assert final.resource_location == "/persongroup/restored"
    assert final.target_id == "restored" and final.resource.kind == "persongroup"
    assert final.snapshot_id is None
    assert dedupe([s.status for s in seen2]) == [Status.NOTSTARTED, Status.RUNNING,
                                                 Status.SUCCEEDED]
    assert seen2[-1] == final


@pytest.mark.parametrize("sim", [QUICK], indirect=True)
def test_poll_of_a_finished_operation_sends_one_request_and_never_sleeps(sim, fake_clock):
    location = take(sim)
    final = poll(location, endpoint=sim.endpoint, key=sim.key, **fake_time(fake_clock))
    assert final.succeeded and final.is_terminal
    assert len(gets(sim)) == 1
    assert fake_clock.sleeps == []


@DIALECTS
def test_failed_operation_raises_operation_failed(sim, fake_clock):
    sim.fail = "The source person group was deleted during the snapshot."
    location = take(sim)
    with pytest.raises(OperationFailed) as info:
        poll(location, endpoint=sim.endpoint, key=sim.key, **fake_time(fake_clock))
    exc = info.value
    assert exc.message == sim.fail
    assert exc.status.status is Status.FAILED and exc.status.failed
    assert exc.status.message == sim.fail
    assert sim.fail in str(exc)
    assert exc.status.snapshot_id is None


@pytest.mark.parametrize("sim", [ENDLESS], indirect=True)
def test_timeout_raises_poll_timeout_with_the_last_status(sim, fake_clock):
    location = take(sim)
    poller = Poller(location, endpoint=sim.endpoint, key=sim.key, timeout=30,
                    **fake_time(fake_clock))
    with pytest.raises(PollTimeout) as info:
        poller.wait()
    exc = info.value
    assert isinstance(exc, TimeoutError)
    assert exc.timeout == 30
    assert exc.last_status is not None
    assert exc.last_status.status is Status.RUNNING
    assert exc.last_status is poller.latest
    assert "30" in str(exc)
    assert poller.polls == len(gets(sim)) > 1
    assert 0 < fake_clock.slept <= 30


@pytest.mark.parametrize("timeout", [0.3, 1.0, 2.5, 7.5, 30.0, 95.0])
@pytest.mark.parametrize("sim", [ENDLESS], indirect=True)
def test_sleeps_never_exceed_the_timeout(sim, fake_clock, timeout):
    location = take(sim)
    with pytest.raises(PollTimeout):
        poll(location, endpoint=sim.endpoint, key=sim.key, timeout=timeout,
             **fake_time(fake_clock))
    assert fake_clock.sleeps  # it did wait
    assert fake_clock.slept <= timeout
    assert len(gets(sim)) >= 2


@pytest.mark.parametrize("sim", [ENDLESS], indirect=True)
def test_no_sleep_after_the_last_attempt(sim, fake_clock):
    location = take(sim)
    gets_at_sleep = []

    def sleep(seconds):
        gets_at_sleep.append(len(gets(sim)))
        fake_clock.sleep(seconds)

    with pytest.raises(PollTimeout):
        poll(location, endpoint=sim.endpoint, key=sim.key, timeout=30, clock=fake_clock,
             sleep=sleep, random=lambda: 0.5)
    assert gets_at_sleep and gets_at_sleep[0] == 1
    # every sleep is followed by another request
    assert len(gets(sim)) > gets_at_sleep[-1]


@pytest.mark.parametrize("sim", [ENDLESS], indirect=True)
def test_no_burst_of_polls_before_the_deadline(sim, fake_clock):
    location = take(sim)
    with pytest.raises(PollTimeout):
        poll(location, endpoint=sim.endpoint, key=sim.key, timeout=30, **fake_time(fake_clock))
    floor = RetryPolicy().floor
    short = [s for s in fake_clock.sleeps if s < floor]
    # at most one wait may be cut short by the deadline
    assert len(short) <= 1, fake_clock.sleeps


###############################################################################
# Endpoints and Operation-Location
###############################################################################


@pytest.mark.parametrize("suffix", ["", "/"])
@pytest.mark.parametrize("sim", [QUICK], indirect=True)
def test_endpoint_without_path_gets_face_v1(sim, fake_clock, suffix):
    location = take(sim)
    final = poll(location, endpoint=sim.endpoint + suffix, key=sim.key, **fake_time(fake_clock))
    assert final.succeeded
    assert posts(sim) == ["/face/v1.0/snapshots"]
    assert gets(sim) == ["/face/v1.0" + location]


@pytest.mark.parametrize("sim", [dict(QUICK, api_path="/face/v1.0-preview")], indirect=True)
def test_endpoint_with_a_path_is_used_as_it_is(sim, fake_clock):
    endpoint = sim.endpoint + "/face/v1.0-preview"
    sim.add_object("PersonGroup", "pg")
    location = opstatus.take_snapshot(endpoint, sim.key, object_type="PersonGroup",
                                      object_id="pg", apply_scope=[sim.subscription])
    final = poll(location, endpoint=endpoint, key=sim.key, **fake_time(fake_clock))
    assert final.succeeded
    assert posts(sim) == ["/face/v1.0-preview/snapshots"]
    assert gets(sim) == ["/face/v1.0-preview" + location]


@pytest.mark.parametrize("sim", [dict(QUICK, api_path="/face/v1.0-preview")], indirect=True)
def test_endpoint_without_path_misses_a_preview_api(sim, fake_clock):
    sim.add_object("PersonGroup", "pg")
    with pytest.raises(HTTPError) as info:
        opstatus.take_snapshot(sim.endpoint, sim.key, object_type="PersonGroup",
                               object_id="pg", apply_scope=[sim.subscription])
    assert info.value.status == 404
    assert posts(sim) == ["/face/v1.0/snapshots"]


@pytest.mark.parametrize("sim", [QUICK], indirect=True)
def test_relative_operation_location_resolves_against_the_api_base(sim, fake_clock):
    location = take(sim)
    assert location.startswith("/operations/")
    poller = Poller(location, endpoint=sim.endpoint, key=sim.key, **fake_time(fake_clock))
    assert poller.url == sim.endpoint + "/face/v1.0" + location
    poller.wait()
    # not urljoin(base, location), which would drop /face/v1.0
    assert gets(sim) == ["/face/v1.0" + location]


@pytest.mark.parametrize("endpoint", [True, False], ids=["with-endpoint", "no-endpoint"])
@pytest.mark.parametrize("sim", [QUICK], indirect=True)
def test_absolute_operation_location_on_the_same_origin_is_used_as_it_is(sim, fake_clock,
                                                                          endpoint):
    location = take(sim)
    absolute = sim.endpoint + "/face/v1.0" + location
    poller = Poller(absolute, endpoint=sim.endpoint if endpoint else None, key=sim.key,
                    **fake_time(fake_clock))
    assert poller.url == absolute
    assert poller.wait().succeeded
    assert gets(sim) == ["/face/v1.0" + location]


@pytest.mark.parametrize("endpoint, expected", [
    ("https://westus.api.cognitive.microsoft.com",
     "https://westus.api.cognitive.microsoft.com/face/v1.0"),
    ("https://westus.api.cognitive.microsoft.com/",
     "https://westus.api.cognitive.microsoft.com/face/v1.0"),
    ("https://westus.api.cognitive.microsoft.com/face/v1.0",
     "https://westus.api.cognitive.microsoft.com/face/v1.0"),
    ("https://westus.api.cognitive.microsoft.com/face/v1.0/",
     "https://westus.api.cognitive.microsoft.com/face/v1.0"),
    ("https://my.cognitiveservices.azure.com/face/v1.0-preview",
     "https://my.cognitiveservices.azure.com/face/v1.0-preview"),
    ("HTTPS://host.example:8443", "https://host.example:8443/face/v1.0"),
    ("http://127.0.0.1:8080", "http://127.0.0.1:8080/face/v1.0"),
])
def test_api_base(endpoint, expected):
    assert opstatus.api_base(endpoint) == expected


@pytest.mark.parametrize("endpoint", [
    "ftp://host.example", "host.example", "", "https://host.example/?x=1",
    "https://host.example/#f", "http://host.example",
])
def test_api_base_refuses(endpoint):
    with pytest.raises(UnsafeURLError):
        opstatus.api_base(endpoint)


def test_api_base_allows_plain_http_when_asked():
    assert opstatus.api_base("http://host.example", allow_http=True) == \
        "http://host.example/face/v1.0"


@pytest.mark.parametrize("location, endpoint, expected", [
    ("/operations/abc", "https://h.example", "https://h.example/face/v1.0/operations/abc"),
    ("/operations/abc", "https://h.example/", "https://h.example/face/v1.0/operations/abc"),
    ("/operations/abc", "https://h.example/face/v1.0-preview/",
     "https://h.example/face/v1.0-preview/operations/abc"),
    ("https://h.example/face/v1.0/operations/abc", "https://h.example",
     "https://h.example/face/v1.0/operations/abc"),
    ("https://h.example/face/v1.0/operations/abc", None,
     "https://h.example/face/v1.0/operations/abc"),
    ("https://h.example:443/vision/v3.2/read/analyzeResults/x", "https://h.example",
     "https://h.example:443/vision/v3.2/read/analyzeResults/x"),
])
def test_resolve_operation_url(location, endpoint, expected):
    assert opstatus.resolve_operation_url(location, endpoint) == expected


@pytest.mark.parametrize("location, endpoint", [
    ("/operations/abc", None),  # relative needs the endpoint
    ("//evil.example/operations/abc", "https://h.example"),
    ("https://evil.example/face/v1.0/operations/abc", "https://h.example"),
    ("https://h.example:8443/operations/abc", "https://h.example"),
    ("http://h.example/operations/abc", "https://h.example"),
    ("/operations/a b", "https://h.example"),
    (None, "https://h.example"),
])
def test_resolve_operation_url_refuses(location, endpoint):
    with pytest.raises(UnsafeURLError):
        opstatus.resolve_operation_url(location, endpoint)


def test_same_origin_redirect_is_followed(fake_clock):
    with ScriptedServer(Reply(307, headers=[("Location", "/face/v1.0/operations/y")]),
                        Reply(200, status_doc("succeeded"))) as srv:
        final = poll("/operations/x", endpoint=srv.endpoint, key="k" * 32,
                     **fake_time(fake_clock))
        assert final.succeeded
        assert [path for _, path, _, _ in srv.requests] == [
            "/face/v1.0/operations/x", "/face/v1.0/operations/y"]


@pytest.mark.parametrize("sim", [QUICK], indirect=True)
def test_no_deadline(sim, fake_clock):
    location = take(sim)
    final = poll(location, endpoint=sim.endpoint, key=sim.key, timeout=None,
                 **fake_time(fake_clock))
    assert final.succeeded


@pytest.mark.parametrize("options", [
    {"timeout": -1}, {"timeout": float("nan")}, {"timeout": float("inf")},
    {"timeout": "soon"}, {"request_timeout": 0}, {"request_timeout": float("inf")},
    {"request_timeout": None},
])
def test_poller_refuses_bad_timeouts(options):
    with pytest.raises((ValueError, TypeError)):
        Poller("/operations/x", endpoint="https://h.example", key="k" * 32, **options)


###############################################################################
# Retries
###############################################################################


@pytest.mark.parametrize("code", [503, 500, 502, 504])
@pytest.mark.parametrize("sim", [QUICK], indirect=True)
def test_server_error_burst_is_retried_with_backoff(sim, fake_clock, code):
    location = take(sim)
    sim.server_error_status = code
    sim.server_errors = 3
    poller = Poller(location, endpoint=sim.endpoint, key=sim.key, **fake_time(fake_clock))
    final = poller.wait()
    assert final.succeeded
    assert len(gets(sim)) == 4 == poller.polls
    assert poller.errors == 3
    # error_base 1 s doubled per error, times (0.5 + 0.5 * random) with random 0.5
    assert fake_clock.sleeps == [0.75, 1.5, 3.0]


@pytest.mark.parametrize("sim", [QUICK], indirect=True)
def test_rate_limit_retry_after_is_honoured(sim, fake_clock):
    location = take(sim)
    sim.rate_limit_retry_after = "7"
    sim.rate_limit = 2
    final = poll(location, endpoint=sim.endpoint, key=sim.key, **fake_time(fake_clock))
    assert final.succeeded
    assert len(gets(sim)) == 3
    assert fake_clock.sleeps == [7.0, 7.0]


@pytest.mark.parametrize("retry_after, expected", [
    ("120", [60.0, 60.0]),  # capped
    ("0", [0.5, 0.5]),  # floored
    # unreadable: ignored, the body's "Try again in 1 seconds." counts instead
    ("garbage", [1.0, 1.0]),
])
@pytest.mark.parametrize("sim", [QUICK], indirect=True)
def test_rate_limit_retry_after_is_clamped(sim, fake_clock, retry_after, expected):
    location = take(sim)
    sim.rate_limit_retry_after = retry_after
    sim.rate_limit = 2
    poll(location, endpoint=sim.endpoint, key=sim.key, **fake_time(fake_clock))
    assert fake_clock.sleeps == expected


@pytest.mark.parametrize("sim", [QUICK], indirect=True)
def test_rate_limit_retry_after_is_cut_to_the_time_left(sim, fake_clock):
    location = take(sim)
    sim.rate_limit_retry_after = "7"
    sim.rate_limit = 2
    final = poll(location, endpoint=sim.endpoint, key=sim.key, timeout=10,
                 **fake_time(fake_clock))
    assert final.succeeded
    assert len(gets(sim)) == 3
    assert fake_clock.sleeps[0] == 7.0
    assert fake_clock.sleeps[1] <= 10 - 7.0
    assert fake_clock.slept <= 10


@pytest.mark.parametrize("sim", [QUICK], indirect=True)
def test_rate_limit_face_text_is_honoured_without_a_header(sim, fake_clock):
    location = take(sim)
    sim.rate_limit_retry_after = None
    sim.rate_limit = 2
    poll(location, endpoint=sim.endpoint, key=sim.key, **fake_time(fake_clock))
    # "Try again in 1 seconds." (the backoff alone would be 0.75 then 1.5)
    assert fake_clock.sleeps == [1.0, 1.0]
    assert len(gets(sim)) == 3


@pytest.mark.parametrize("status, code, message", [
    (400, "BadArgument", "Operation id is invalid."),
    (401, "401", "Access denied due to invalid subscription key or wrong API endpoint."),
    (403, "QuotaExceeded", "Out of call volume quota. Quota will be replenished in 2 days."),
    (409, "ConcurrentOperationConflict", "There is a conflict operation on resource."),
])
def test_client_errors_fail_at_once_with_the_service_message(fake_clock, status, code, message):
    with ScriptedServer(Reply(status, {"error": {"code": code, "message": message}})) as srv:
        with pytest.raises(HTTPError) as info:
            poll("/operations/x", endpoint=srv.endpoint, key="k" * 32, **fake_time(fake_clock))
    exc = info.value
    assert type(exc) is HTTPError
    assert (exc.status, exc.code, exc.message) == (status, code, message)
    assert message in str(exc)
    assert len(srv.requests) == 1
    assert fake_clock.sleeps == []


def test_error_without_a_json_body_has_no_code_or_message(fake_clock):
    with ScriptedServer(Reply(400, body=b"<html>Bad Request</html>")) as srv:
        with pytest.raises(HTTPError) as info:
            poll("/operations/x", endpoint=srv.endpoint, key="k" * 32, **fake_time(fake_clock))
    assert (info.value.status, info.value.code, info.value.message) == (400, None, None)
    assert len(srv.requests) == 1


@pytest.mark.parametrize("sim", [QUICK], indirect=True)
def test_wrong_key_fails_at_once_with_401(sim, fake_clock):
    location = take(sim)
    before = len(gets(sim))
    with pytest.raises(HTTPError) as info:
        poll(location, endpoint=sim.endpoint, key="not-the-key-0123456789",
             **fake_time(fake_clock))
    assert info.value.status == 401
    assert info.value.message.startswith("Access denied due to invalid subscription key")
    assert "not-the-key-0123456789" not in str(info.value)
    assert len(gets(sim)) - before == 1
    assert fake_clock.sleeps == []


def test_unknown_operation_raises_operation_not_found(sim, fake_clock):
    location = "/operations/%s" % uuid.uuid4()
    with pytest.raises(OperationNotFound) as info:
        poll(location, endpoint=sim.endpoint, key=sim.key, **fake_time(fake_clock))
    assert isinstance(info.value, HTTPError)
    assert info.value.status == 404
    assert info.value.code == "OperationNotFound"
    assert gets(sim) == ["/face/v1.0" + location]
    assert fake_clock.sleeps == []


def test_connection_refused_is_retried_until_the_deadline(fake_clock):
    endpoint = "http://127.0.0.1:%d" % free_port()
    poller = Poller("/operations/x", endpoint=endpoint, key="k" * 32, timeout=20,
                    **fake_time(fake_clock))
    with pytest.raises((PollTimeout, NetworkError)) as info:
        poller.wait()
    assert isinstance(info.value, PollTimeout)
    assert info.value.last_status is None
    assert poller.polls > 2 and poller.errors == poller.polls
    assert 0 < fake_clock.slept <= 20
    assert fake_clock.sleeps[:3] == [0.75, 1.5, 3.0]
    # every wait is followed by an attempt: none after the last one
    assert poller.polls == len(fake_clock.sleeps) + 1


def test_timeout_after_errors_names_the_last_error(fake_clock):
    endpoint = "http://127.0.0.1:%d" % free_port()
    with pytest.raises(PollTimeout) as info:
        poll("/operations/x", endpoint=endpoint, key="k" * 32, timeout=20,
             **fake_time(fake_clock))
    assert "connection refused" in str(info.value)


def test_max_errors_stops_after_that_many_retries(fake_clock):
    endpoint = "http://127.0.0.1:%d" % free_port()
    poller = Poller("/operations/x", endpoint=endpoint, key="k" * 32, timeout=3600,
                    policy=RetryPolicy(max_errors=2), **fake_time(fake_clock))
    with pytest.raises(NetworkError) as info:
        poller.wait()
    assert info.value.sent is False
    assert poller.polls == 3
    assert fake_clock.sleeps == [0.75, 1.5]


@pytest.mark.parametrize("sim", [QUICK], indirect=True)
def test_max_errors_applies_to_server_errors(sim, fake_clock):
    location = take(sim)
    sim.server_errors = 10
    with pytest.raises(HTTPError) as info:
        poll(location, endpoint=sim.endpoint, key=sim.key, policy=RetryPolicy(max_errors=2),
             **fake_time(fake_clock))
    assert info.value.status == 503
    assert len(gets(sim)) == 3
    assert len(fake_clock.sleeps) == 2


def test_retry_after_on_a_200_sets_the_next_wait(fake_clock):
    with ScriptedServer(Reply(200, status_doc("running"), headers=[("Retry-After", "3")]),
                        Reply(200, status_doc("succeeded"))) as srv:
        final = poll("/operations/x", endpoint=srv.endpoint, key="k" * 32,
                     **fake_time(fake_clock))
    assert final.succeeded
    assert fake_clock.sleeps == [3.0]


###############################################################################
# The schedule
###############################################################################


@pytest.mark.parametrize("sim", [ENDLESS], indirect=True)
def test_first_poll_is_at_once(sim, fake_clock):
    location = take(sim)
    gets_at_sleep = []

    def sleep(seconds):
        gets_at_sleep.append(len(gets(sim)))
        fake_clock.sleep(seconds)

    with pytest.raises(PollTimeout):
        poll(location, endpoint=sim.endpoint, key=sim.key, timeout=2, clock=fake_clock,
             sleep=sleep, random=lambda: 0.5)
    assert gets_at_sleep[0] == 1
    assert gets_at_sleep[:3] == [1, 2, 3]


def _run_schedule(random, sleeps_wanted):
    """Poll a never-ending operation (a server that says "running" with no
    age of its own) and return the waits, stopping after *sleeps_wanted*."""
    clock = FakeClock()
    reply = Reply(200, status_doc("running"))
    pollers = []

    def sleep(seconds):
        clock.sleep(seconds)
        if len(clock.sleeps) >= sleeps_wanted:
            pollers[0].cancel()

    with ScriptedServer(reply) as srv:
        # a deadline too, so that a broken cancel() fails the test instead of hanging it
        poller = Poller("/operations/x", endpoint=srv.endpoint, key="k" * 32, timeout=3600,
                        clock=clock, sleep=sleep, random=random)
        pollers.append(poller)
        with pytest.raises(PollCancelled):
            poller.wait()
        assert len(srv.requests) == sleeps_wanted
    return clock.sleeps


def test_waits_grow_from_the_floor_with_age_up_to_the_cap():
    policy = RetryPolicy()
    sleeps = _run_schedule(lambda: 0.0, 40)  # random 0: no jitter
    # age < floor / growth = 2.5 s: the floor
    assert sleeps[:6] == [policy.floor] * 6
    # then growth * age: the age grows by the wait, so each wait is 1.2x the last
    assert sleeps[6] == pytest.approx(0.6)
    grown = [s for s in sleeps if policy.floor < s < policy.cap]
    assert len(grown) > 10
    for before, after in zip(sleeps, sleeps[1:]):
        assert after >= before
        if policy.floor < before and after < policy.cap:
            assert after == pytest.approx(before * (1 + policy.growth))
    assert sleeps[-3:] == [policy.cap] * 3
    assert all(policy.floor <= s <= policy.cap for s in sleeps)


def test_waits_with_jitter_stay_within_the_policy():
    policy = RetryPolicy()
    sleeps = _run_schedule(_random.Random(7).random, 40)
    assert all(policy.floor <= s <= policy.cap for s in sleeps)
    assert sleeps[:6] == [policy.floor] * 6  # jitter only lowers, and never below the floor
    assert max(sleeps) > 0.8 * policy.cap


def test_two_pollers_with_different_random_sources_drift_apart():
    a = _run_schedule(_random.Random(1).random, 15)
    b = _run_schedule(_random.Random(2).random, 15)
    assert a != b
    same = _run_schedule(_random.Random(1).random, 15)
    assert a == same


def test_retry_policy_is_frozen_and_replace_works():
    policy = RetryPolicy()
    with pytest.raises(dataclasses.FrozenInstanceError):
        policy.cap = 1
    assert (policy.floor, policy.cap, policy.growth, policy.jitter, policy.error_base,
            policy.max_errors) == (0.5, 60.0, 0.2, 0.2, 1.0, None)
    assert policy.retry_statuses == frozenset((429, 500, 502, 503, 504))
    other = dataclasses.replace(policy, cap=30)
    assert other.cap == 30 and policy.cap == 60.0
    assert other.floor == policy.floor
    assert other != policy
    assert dataclasses.replace(policy) == policy
    with pytest.raises(ValueError):
        dataclasses.replace(policy, floor=100)


@pytest.mark.parametrize("field, value", [
    ("floor", -1), ("floor", float("nan")), ("floor", float("inf")), ("floor", True),
    ("cap", -0.5), ("cap", float("inf")), ("growth", float("nan")), ("growth", -0.1),
    ("error_base", float("inf")), ("error_base", -1), ("jitter", -0.1), ("jitter", 1.5),
    ("jitter", float("nan")), ("floor", None), ("cap", "abc"),
])
def test_retry_policy_refuses_bad_values(field, value):
    with pytest.raises((ValueError, TypeError)):
        RetryPolicy(**{field: value})


def test_retry_policy_refuses_floor_above_cap():
    with pytest.raises(ValueError):
        RetryPolicy(floor=10, cap=5)
    assert RetryPolicy(floor=5, cap=5).cap == 5
    assert RetryPolicy(floor=0, cap=0).cap == 0


@pytest.mark.parametrize("field, value", [("growth", "0.2"), ("error_base", "1")])
def test_retry_policy_refuses_numeric_strings(field, value):
    with pytest.raises((ValueError, TypeError)):
        RetryPolicy(**{field: value})


@pytest.mark.parametrize("value", [-1, "2", 1.5])
def test_retry_policy_refuses_bad_max_errors(value):
    with pytest.raises((ValueError, TypeError)):
        RetryPolicy(max_errors=value)


_delays = st.floats(min_value=0, max_value=1e6, allow_nan=False)


@st.composite
def policies(draw):
    floor = draw(_delays)
    cap = draw(st.floats(min_value=floor, max_value=2e6, allow_nan=False))
    return RetryPolicy(floor=floor, cap=cap,
                       growth=draw(st.floats(min_value=0, max_value=100, allow_nan=False)),
                       jitter=draw(st.floats(min_value=0, max_value=1)),
                       error_base=draw(_delays))


@settings(max_examples=300, deadline=None)
@given(policy=policies(), age=st.floats(min_value=0, allow_nan=False),
       rnd=st.floats(min_value=0, max_value=1), errors=st.integers(min_value=0, max_value=10**6))
def test_delays_stay_within_floor_and_cap(policy, age, rnd, errors):
    delay = policy.poll_delay(age, lambda: rnd)
    assert policy.floor <= delay <= policy.cap
    delay = policy.error_delay(errors, lambda: rnd)
    assert policy.floor <= delay <= policy.cap


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf"), -1, 1e10,
                                   "garbage", None, [], True, 10 ** 400])
@pytest.mark.parametrize("time_left", [None, 1000.0, 0.2, 0.0, -5.0])
def test_clamp_makes_any_value_sane(value, time_left):
    policy = RetryPolicy()
    result = policy.clamp(value, time_left)
    assert isinstance(result, float) and math.isfinite(result)
    assert result <= policy.cap
    if time_left is None or time_left >= policy.floor:
        assert result >= policy.floor
    if time_left is not None:
        assert 0.0 <= result <= max(0.0, time_left)


@pytest.mark.parametrize("value, time_left, expected", [
    (7, None, 7.0), (7, 3.0, 3.0), (0.1, None, 0.5), (100, None, 60.0), ("5", None, 5.0),
    (float("nan"), None, 0.5), (-1, None, 0.5), (7, -1.0, 0.0),
])
def test_clamp_values(value, time_left, expected):
    assert RetryPolicy().clamp(value, time_left) == expected


@settings(max_examples=300, deadline=None)
@given(policy=policies(), value=st.one_of(st.floats(), st.none(), st.text(max_size=20),
                                          st.integers()),
       time_left=st.one_of(st.none(), st.floats(min_value=-1e9, max_value=1e9)))
def test_clamp_never_leaves_the_range(policy, value, time_left):
    result = policy.clamp(value, time_left)
    assert policy.floor <= result <= policy.cap or (
        time_left is not None and result == max(0.0, time_left))
    if time_left is not None:
        assert result <= max(0.0, time_left)


def test_jitter_of_poll_delay_over_many_samples():
    policy = RetryPolicy()
    rnd = _random.Random(20260501).random
    age = 100.0  # base = growth * age = 20 s, inside [floor, cap]
    base = policy.growth * age
    samples = [policy.poll_delay(age, rnd) for _ in range(10000)]
    low, high = base * (1 - policy.jitter), base
    assert all(low <= s <= high for s in samples)
    mean = sum(samples) / len(samples)
    expected = base * (1 - policy.jitter / 2)  # E[1 - jitter * U] = 1 - jitter / 2
    sigma = base * policy.jitter / math.sqrt(12) / math.sqrt(len(samples))
    assert abs(mean - expected) < 5 * sigma, (mean, expected)
    assert min(samples) < low + 0.01 * base and max(samples) > high - 0.01 * base


def test_jitter_of_error_delay_over_many_samples():
    policy = RetryPolicy()
    rnd = _random.Random(99).random
    base = policy.error_base * 2 ** 2  # third error in a row: 4 s
    samples = [policy.error_delay(3, rnd) for _ in range(10000)]
    assert all(base / 2 <= s <= base for s in samples)
    mean = sum(samples) / len(samples)
    expected = base * 0.75  # E[0.5 + 0.5 U]
    sigma = base * 0.5 / math.sqrt(12) / math.sqrt(len(samples))
    assert abs(mean - expected) < 5 * sigma, (mean, expected)


def test_no_jitter_means_no_randomness():
    policy = RetryPolicy(jitter=0)
    rnd = _random.Random(3).random
    assert {policy.poll_delay(100.0, rnd) for _ in range(100)} == {20.0}


def test_out_of_range_random_is_ignored(fake_clock):
    with ScriptedServer(Reply(200, status_doc("running")),
                        Reply(200, status_doc("succeeded"))) as srv:
        final = poll("/operations/x", endpoint=srv.endpoint, key="k" * 32, clock=fake_clock,
                     sleep=fake_clock.sleep, random=lambda: 7.0)
    assert final.succeeded
    assert fake_clock.sleeps == [0.5]


###############################################################################
# parse_retry_after
###############################################################################

NOW = 784111777.0  # Sun, 06 Nov 1994 08:49:37 GMT


@pytest.mark.parametrize("value, expected", [
    ("5", 5.0),
    (" 5 ", 5.0),
    ("\t5", 5.0),
    ("0", 0.0),
    ("1.5", 1.5),
    ("120", 120.0),
    ("5, 7", 5.0),  # the header sent twice: the first one counts
    ("-1", None),
    ("inf", None),
    ("Infinity", None),
    ("nan", None),
    ("1e10", None),
    ("9" * 30, None),
    ("9999999999", None),  # over a year
    ("\u00b2", None),  # superscript two
    ("\u0661\u0662", None),  # Arabic-Indic 12
    ("\uff15", None),  # fullwidth 5
    ("", None),
    ("   ", None),
    ("soon", None),
    ("0x10", None),
    ("+5", None),
    ("5 seconds", None),
])
def test_parse_retry_after_seconds(value, expected):
    assert opstatus.parse_retry_after({"retry-after": value}, now=NOW) == expected


@pytest.mark.parametrize("date", [
    "Sun, 06 Nov 1994 08:49:37 GMT",  # IMF-fixdate
    "Sunday, 06-Nov-94 08:49:37 GMT",  # RFC 850
    "Sun Nov  6 08:49:37 1994",  # asctime
])
def test_parse_retry_after_http_dates(date):
    assert opstatus.parse_retry_after({"retry-after": date}, now=NOW - 30) == 30.0
    assert opstatus.parse_retry_after({"retry-after": date}, now=NOW) == 0.0
    assert opstatus.parse_retry_after({"retry-after": date}, now=NOW + 3600) == 0.0  # past


def test_parse_retry_after_http_date_against_the_wall_clock():
    from email.utils import formatdate

    past = formatdate(time.time() - 3600, usegmt=True)
    assert opstatus.parse_retry_after({"retry-after": past}) == 0.0
    future = formatdate(time.time() + 3600, usegmt=True)
    delay = opstatus.parse_retry_after({"retry-after": future})
    assert 3500 < delay <= 3600


def test_parse_retry_after_far_future_date_is_ignored():
    assert opstatus.parse_retry_after({"retry-after": "Sun, 06 Nov 2094 08:49:37 GMT"},
                                      now=NOW) is None


@pytest.mark.parametrize("headers, expected", [
    ({"retry-after-ms": "1500"}, 1.5),
    ({"x-ms-retry-after-ms": "250"}, 0.25),
    ({"retry-after-ms": "0"}, 0.0),
    ({"retry-after-ms": "1500", "retry-after": "9"}, 1.5),
    ({"retry-after-ms": "-5", "retry-after": "9"}, 9.0),
    ({"retry-after-ms": "nan", "x-ms-retry-after-ms": "300"}, 0.3),
    ({"retry-after-ms": "\u0661"}, None),
    ({}, None),
    ({"Retry-After": "5"}, None),  # names are lower-case
])
def test_parse_retry_after_milliseconds(headers, expected):
    assert opstatus.parse_retry_after(headers) == expected


@pytest.mark.parametrize("body, expected", [
    ("Rate limit is exceeded. Try again in 1 seconds.", 1.0),
    ("Rate limit is exceeded. Try again in 26 seconds.", 26.0),
    ("rate limit is exceeded. try again in 1 second.", 1.0),
    ('{"error":{"code":"429","message":"Rate limit is exceeded. Try again in 3 seconds."}}',
     3.0),
    ("Rate limit is exceeded.", None),
    ("Try again in -1 seconds.", None),
    ("Try again in \u0661 seconds.", None),
    ("", None),
    (None, None),
])
def test_parse_retry_after_face_text(body, expected):
    assert opstatus.parse_retry_after({}, body) == expected


def test_parse_retry_after_header_wins_over_the_text():
    assert opstatus.parse_retry_after({"retry-after": "4"},
                                      "Rate limit is exceeded. Try again in 1 seconds.") == 4.0


_header_names = st.sampled_from(["retry-after", "retry-after-ms", "x-ms-retry-after-ms",
                                 "content-type"])


@st.composite
def http_dateish(draw):
    day = draw(st.sampled_from(["Sun", "Monday", "Xyz", ""]))
    fmt = draw(st.sampled_from(["%s, %02d %s %d %02d:%02d:%02d %s",
                                "%s, %02d-%s-%d %02d:%02d:%02d %s"]))
    zone = draw(st.sampled_from(["GMT", "UTC", "+0000", "-2359", "+9999", "EST", "", "Z"]))
    ints = st.integers(min_value=-10, max_value=100000)
    return fmt % (day, draw(ints), draw(st.sampled_from(["Nov", "Feb", "Foo"])), draw(ints),
                  draw(ints), draw(ints), draw(ints), zone)


@settings(max_examples=500, deadline=None)
@given(headers=st.dictionaries(_header_names, st.one_of(st.text(max_size=80), http_dateish())),
       body=st.one_of(st.none(), st.text(max_size=200),
                      st.builds("Try again in {} seconds.".format, st.text(max_size=20))),
       now=st.one_of(st.none(), st.floats()))
def test_parse_retry_after_never_raises(headers, body, now):
    value = opstatus.parse_retry_after(headers, body, now=now)
    assert value is None or (isinstance(value, float) and 0 <= value <= 366 * 86400)


###############################################################################
# Cancel and on_status
###############################################################################


@pytest.mark.parametrize("sim", [ENDLESS], indirect=True)
def test_cancel_from_on_status(sim, fake_clock):
    location = take(sim)
    seen = []
    poller = Poller(location, endpoint=sim.endpoint, key=sim.key, timeout=60,
                    on_status=lambda s: (seen.append(s), poller.cancel()),
                    **fake_time(fake_clock))
    with pytest.raises(PollCancelled) as info:
        poller.wait()
    assert poller.cancelled
    assert len(gets(sim)) == 1 == poller.polls
    assert len(seen) == 1
    assert info.value.last_status is seen[0]


@pytest.mark.parametrize("sim", [ENDLESS], indirect=True)
def test_cancel_from_another_thread_cuts_a_wait_short(sim, fake_clock):
    location = take(sim)
    # clock injected, sleep not: the poller really waits (0.5 s, the floor)
    poller = Poller(location, endpoint=sim.endpoint, key=sim.key, clock=fake_clock,
                    random=lambda: 0.5, timeout=1.0)
    timer = threading.Timer(0.05, poller.cancel)
    started = time.monotonic()
    timer.start()
    try:
        with pytest.raises(PollCancelled):
            poller.wait()
    finally:
        timer.cancel()
        timer.join()
    assert time.monotonic() - started < 0.4
    assert len(gets(sim)) == 1


def test_cancel_before_the_first_poll_sends_nothing(sim, fake_clock):
    location = take(sim)
    poller = Poller(location, endpoint=sim.endpoint, key=sim.key, **fake_time(fake_clock))
    poller.cancel()
    with pytest.raises(PollCancelled) as info:
        poller.wait()
    assert info.value.last_status is None
    assert gets(sim) == []


@DIALECTS
def test_on_status_receives_each_status(sim, fake_clock):
    location = take(sim)
    received = []
    with Poller(location, endpoint=sim.endpoint, key=sim.key, on_status=received.append,
                **fake_time(fake_clock)) as poller:
        iterated = list(poller)
    assert received == iterated
    assert [a is b for a, b in zip(received, iterated)] == [True] * len(iterated)
    assert len(received) == poller.polls


###############################################################################
# A frozen clock (freezegun) and no injected time
###############################################################################


def test_poll_ends_under_freezegun_without_injected_time():
    freezegun = pytest.importorskip("freezegun")
    sim_clock = FakeClock()  # the simulator's own clock: the operation never starts
    with opstatus.Simulator(clock=sim_clock, queue_seconds=1e6) as sim:
        location = take(sim)
        started = time.perf_counter()
        with freezegun.freeze_time():
            frozen = time.monotonic()
            # small waits, so that several come before the deadline: it holds only
            # if the time slept counts
            policy = RetryPolicy(floor=0.02, cap=0.02, jitter=0)
            poller = Poller(location, endpoint=sim.endpoint, key=sim.key, timeout=0.15,
                            policy=policy)
            # a safety net: if the deadline did not hold, fail instead of hanging
            net = threading.Timer(2.0, poller.cancel)
            net.start()
            try:
                with pytest.raises(PollTimeout) as info:
                    poller.wait()
            finally:
                net.cancel()
                net.join()
            assert time.monotonic() == frozen  # the clock really stood still
        elapsed = time.perf_counter() - started
    assert info.value.last_status is not None
    assert info.value.last_status.status is Status.NOTSTARTED
    assert elapsed < 1.5
    assert 0.1 <= poller.slept <= 0.15
    assert len(gets(sim)) == poller.polls >= 4


###############################################################################
# take_snapshot / apply_snapshot
###############################################################################

TAKE_OK = {"object_type": "PersonGroup", "object_id": "pg", "apply_scope": [SCOPE]}


@pytest.mark.parametrize("changes", [
    {"object_type": "Person"},
    {"object_type": "persongroups"},
    {"object_type": None},
    {"object_id": "PG"},
    {"object_id": "a" * 65},
    {"object_id": "a/b"},
    {"object_id": "../x"},
    {"object_id": ""},
    {"object_id": "a b"},
    {"object_id": "pg\n"},
    {"object_id": 5},
    {"apply_scope": []},
    {"apply_scope": SCOPE},
    {"apply_scope": "not-a-uuid"},
    {"apply_scope": ["not-a-uuid"]},
    {"apply_scope": [SCOPE, "x"]},
    {"apply_scope": [SCOPE + "\n"]},
    {"apply_scope": None},
    {"user_data": "x" * 16385},
    {"user_data": 5},
], ids=lambda c: "%s=%s" % next(iter(c.items())) if len(repr(c)) < 60 else next(iter(c)))
def test_take_refuses_bad_input_before_sending(sim, changes):
    kwargs = dict(TAKE_OK, **changes)
    with pytest.raises(ValueError):
        opstatus.take_snapshot(sim.endpoint, sim.key, **kwargs)
    assert sim.requests == []


@pytest.mark.parametrize("snapshot_id, changes", [
    ("../x", {}),
    ("a/b", {}),
    ("", {}),
    ("x" * 65, {}),
    ("snap?x=1", {}),
    (None, {}),
    ("0a1b2c3d-0000-4000-8000-000000000000", {"object_id": "UPPER"}),
    ("0a1b2c3d-0000-4000-8000-000000000000", {"object_id": "a" * 65}),
    ("0a1b2c3d-0000-4000-8000-000000000000", {"mode": "Overwrite"}),
    ("0a1b2c3d-0000-4000-8000-000000000000", {"mode": "createnew"}),
])
def test_apply_refuses_bad_input_before_sending(sim, snapshot_id, changes):
    kwargs = dict({"object_id": "target"}, **changes)
    with pytest.raises(ValueError):
        opstatus.apply_snapshot(sim.endpoint, sim.key, snapshot_id, **kwargs)
    assert sim.requests == []


@pytest.mark.parametrize("sim", [QUICK], indirect=True)
def test_take_accepts_the_limits(sim, fake_clock):
    sim.add_object("LargePersonGroup", "a" * 64)
    location = opstatus.take_snapshot(sim.endpoint, sim.key, object_type="largepersongroup",
                                      object_id="a" * 64, apply_scope=[sim.subscription, SCOPE],
                                      user_data="u" * 16384)
    assert OP_PATH.fullmatch(location)
    final = poll(location, endpoint=sim.endpoint, key=sim.key, **fake_time(fake_clock))
    snapshot = sim.snapshots[final.snapshot_id]
    assert snapshot["type"] == "LargePersonGroup"
    assert snapshot["userData"] == "u" * 16384
    assert snapshot["applyScope"] == [sim.subscription, SCOPE]


@DIALECTS
def test_take_and_apply_return_the_operation_location(sim, fake_clock):
    location = take(sim)
    assert OP_PATH.fullmatch(location)
    assert location[len("/operations/"):] in sim.operations
    final = poll(location, endpoint=sim.endpoint, key=sim.key, **fake_time(fake_clock))
    applied = opstatus.apply_snapshot(sim.endpoint, sim.key, final.snapshot_id,
                                      object_id="target")
    assert OP_PATH.fullmatch(applied)
    assert applied[len("/operations/"):] in sim.operations


def test_take_sends_the_documented_request(fake_clock):
    with ScriptedServer(Reply(202, headers=[("Operation-Location", "/operations/abc")])) as srv:
        location = opstatus.take_snapshot(srv.endpoint, "k" * 32, object_type="facelist",
                                          object_id="faces_1", apply_scope=[SCOPE],
                                          user_data="hello")
    assert location == "/operations/abc"
    [(method, path, headers, body)] = srv.requests
    assert (method, path) == ("POST", "/face/v1.0/snapshots")
    headers = {k.lower(): v for k, v in headers.items()}
    assert headers["content-type"] == "application/json; charset=utf-8"
    assert headers["ocp-apim-subscription-key"] == "k" * 32
    assert json.loads(body.decode("utf-8")) == {
        "type": "FaceList", "objectId": "faces_1", "applyScope": [SCOPE], "userData": "hello"}


def test_apply_sends_the_documented_request(fake_clock):
    with ScriptedServer(Reply(202, headers=[("operation-location", "/operations/abc")])) as srv:
        location = opstatus.apply_snapshot(srv.endpoint, "k" * 32, "Snap_1-x",
                                           object_id="target")
    assert location == "/operations/abc"
    [(method, path, headers, body)] = srv.requests
    assert (method, path) == ("POST", "/face/v1.0/snapshots/Snap_1-x/apply")
    assert json.loads(body.decode("utf-8")) == {"objectId": "target", "mode": "CreateNew"}


def test_202_without_operation_location_is_an_error():
    with ScriptedServer(Reply(202)) as srv:
        with pytest.raises(HTTPError) as info:
            opstatus.take_snapshot(srv.endpoint, "k" * 32, **TAKE_OK)
    assert info.value.status == 202
    assert len(srv.requests) == 1


def test_operation_location_on_another_origin_is_refused():
    with ScriptedServer(Reply(202, headers=[
            ("Operation-Location", "https://evil.example/face/v1.0/operations/abc")])) as srv:
        with pytest.raises(UnsafeURLError):
            opstatus.take_snapshot(srv.endpoint, "k" * 32, **TAKE_OK)


def test_take_429_is_retried(sim, fake_clock):
    sim.add_object("PersonGroup", "pg")
    sim.rate_limit = 1
    location = opstatus.take_snapshot(sim.endpoint, sim.key, **fake_time(fake_clock, 1.0),
                                      object_type="PersonGroup", object_id="pg",
                                      apply_scope=[sim.subscription])
    assert OP_PATH.fullmatch(location)
    assert posts(sim) == ["/face/v1.0/snapshots"] * 2
    assert fake_clock.sleeps == [1.0]
    assert len(sim.operations) == 1


def test_take_429_gives_up_after_the_policy_s_retries(sim, fake_clock):
    sim.add_object("PersonGroup", "pg")
    sim.rate_limit = 10
    sim.rate_limit_retry_after = "3"
    with pytest.raises(HTTPError) as info:
        opstatus.take_snapshot(sim.endpoint, sim.key, **fake_time(fake_clock),
                               policy=RetryPolicy(max_errors=2),
                               object_type="PersonGroup", object_id="pg",
                               apply_scope=[sim.subscription])
    assert info.value.status == 429
    assert info.value.retry_after == 3.0
    assert len(posts(sim)) == 3
    assert fake_clock.sleeps == [3.0, 3.0]
    assert sim.operations == {}


def test_take_429_gives_up_at_its_deadline(sim, fake_clock):
    # Issue 10: repeated 429s once slept 60 s, 60 s with no bound in all.
    sim.add_object("PersonGroup", "pg")
    sim.rate_limit = 100
    sim.rate_limit_retry_after = "60"
    with pytest.raises(PollTimeout) as info:
        opstatus.take_snapshot(sim.endpoint, sim.key, **fake_time(fake_clock), timeout=150,
                               object_type="PersonGroup", object_id="pg",
                               apply_scope=[sim.subscription])
    assert isinstance(info.value.last_error, HTTPError) and info.value.last_error.status == 429
    assert fake_clock.sleeps == [60.0, 60.0]  # a third wait would pass the deadline
    assert len(posts(sim)) == 3 and sim.operations == {}


def test_take_retries_go_through_the_retry_hooks(sim, fake_clock):
    if opstatus._import_pluggy() is None:
        pytest.skip("needs pluggy")
    sim.add_object("PersonGroup", "pg")
    sim.rate_limit = 2
    seen = []

    class Pace:
        @opstatus.hookimpl
        def opstatus_retry_delay(self, url, error, errors, policy):
            return 0.25 * errors

        @opstatus.hookimpl
        def opstatus_retry_scheduled(self, url, error, delay, errors):
            seen.append((error.status, delay, errors))

    pm = opstatus.make_plugin_manager()
    pm.register(Pace())
    opstatus.take_snapshot(sim.endpoint, sim.key, **fake_time(fake_clock), plugins=pm,
                           object_type="PersonGroup", object_id="pg",
                           apply_scope=[sim.subscription])
    assert fake_clock.sleeps == [0.5, 0.5]  # the policy's floor holds
    assert seen == [(429, 0.5, 1), (429, 0.5, 2)]


def test_take_server_error_is_not_retried(sim, fake_clock):
    sim.add_object("PersonGroup", "pg")
    sim.server_errors = 1
    with pytest.raises(HTTPError) as info:
        opstatus.take_snapshot(sim.endpoint, sim.key, sleep=fake_clock.sleep,
                               object_type="PersonGroup", object_id="pg",
                               apply_scope=[sim.subscription])
    assert info.value.status == 503
    assert len(posts(sim)) == 1
    assert fake_clock.sleeps == []


def test_post_is_not_retried_once_the_server_may_have_received_it(fake_clock):
    with ClosingServer() as srv:
        with pytest.raises(NetworkError) as info:
            opstatus.take_snapshot(srv.endpoint, "k" * 32, sleep=fake_clock.sleep, **TAKE_OK)
    assert info.value.sent is True
    assert len(srv.requests) == 1
    head, body = srv.requests[0]
    assert head.startswith(b"POST /face/v1.0/snapshots HTTP/1.1")
    assert json.loads(body.decode("utf-8"))["objectId"] == "pg"
    assert fake_clock.sleeps == []


def test_post_is_retried_when_the_connection_was_refused(fake_clock):
    endpoint = "http://127.0.0.1:%d" % free_port()
    with pytest.raises(NetworkError) as info:
        opstatus.take_snapshot(endpoint, "k" * 32, **fake_time(fake_clock, 1.0),
                               policy=RetryPolicy(max_errors=2), **TAKE_OK)
    assert info.value.sent is False
    assert fake_clock.sleeps == [1.0, 2.0]


###############################################################################
# Logging
###############################################################################


@pytest.mark.parametrize("sim", [{"key": "s3cr3t-subscription-key-0123456789",
                                  "take_seconds": 3.0}], indirect=True)
def test_logging(sim, fake_clock, caplog):
    caplog.set_level(logging.DEBUG, logger="opstatus")
    location = take(sim)
    statuses = []
    with Poller(location, endpoint=sim.endpoint, key=sim.key, **fake_time(fake_clock)) as poller:
        for status in poller:
            statuses.append(status.status)
            if len(statuses) == 1:
                sim.server_errors = 1  # one retry on the way, logged at DEBUG too
    records = [r for r in caplog.records if r.name.startswith("opstatus")]
    per_poll = [r for r in records if r.levelno == logging.DEBUG and "(poll " in r.getMessage()]
    assert [re.search(r"\(poll (\d+)\)", r.getMessage()).group(1) for r in per_poll] == \
        [str(n) for n in range(1, poller.polls + 1)]
    changes = [r for r in records if r.levelno == logging.INFO]
    assert len(statuses) > len(dedupe(statuses))  # some polls saw no change
    assert len(changes) == len(dedupe(statuses)) == 3
    assert poller.errors == 1 and poller.polls == len(statuses) + 1
    for record, status in zip(changes, dedupe(statuses)):
        assert status.value in record.getMessage()
    assert [r for r in caplog.records if r.levelno >= logging.WARNING] == []
    assert sim.key not in caplog.text
    for record in records:
        assert sim.key not in record.getMessage()


def test_logging_never_shows_a_wrong_key(sim, fake_clock, caplog):
    caplog.set_level(logging.DEBUG, logger="opstatus")
    location = take(sim)
    wrong = "wrong-subscription-key-0123456789"
    with pytest.raises(HTTPError) as info:
        poll(location, endpoint=sim.endpoint, key=wrong, **fake_time(fake_clock))
    assert wrong not in caplog.text
    assert wrong not in str(info.value)
    assert [r for r in caplog.records if r.levelno >= logging.WARNING] == []


###############################################################################
# Transport
###############################################################################


def test_one_connection_for_all_polls_of_an_operation(fake_clock):
    replies = [Reply(200, status_doc("notStarted")), Reply(200, status_doc("running")),
               Reply(200, status_doc("running")), Reply(200, status_doc("succeeded"))]
    with ScriptedServer(*replies) as srv:
        poller = Poller("/operations/x", endpoint=srv.endpoint, key="k" * 32,
                        **fake_time(fake_clock))
        assert poller.wait().succeeded
        assert poller.polls == len(srv.requests) == 4
        assert srv.connections == 1


def test_a_connection_the_server_closed_is_replaced(fake_clock):
    replies = [Reply(200, status_doc("running"), close=True)] * 3 + [
        Reply(200, status_doc("succeeded"), close=True)]
    with ScriptedServer(*replies) as srv:
        poller = Poller("/operations/x", endpoint=srv.endpoint, key="k" * 32,
                        **fake_time(fake_clock))
        assert poller.wait().succeeded
        assert poller.errors == 0
        assert len(srv.requests) == 4 == srv.connections


def test_transport_keeps_one_idle_connection_and_closes_it():
    with ScriptedServer(Reply(200, status_doc("running"))) as srv:
        transport = opstatus.HTTPTransport()
        try:
            for _ in range(3):
                response = transport.send(opstatus.Request("GET", srv.endpoint + "/x"))
                assert response.status == 200
                assert response.headers["content-type"].startswith("application/json")
        finally:
            transport.close()
        assert srv.connections == 1


FRAMINGS = pytest.mark.parametrize("framing", [{}, {"chunked": True}, {"length": False}],
                                   ids=["content-length", "chunked", "close-delimited"])


@FRAMINGS
def test_response_over_max_bytes_is_refused(fake_clock, framing):
    body = json.dumps(status_doc("running", padding="x" * 5000)).encode()
    with ScriptedServer(Reply(200, body=body, **framing)) as srv:
        with pytest.raises(ResponseTooLarge):
            poll("/operations/x", endpoint=srv.endpoint, key="k" * 32, max_bytes=1000,
                 **fake_time(fake_clock))
        assert len(srv.requests) == 1
    assert fake_clock.sleeps == []


@FRAMINGS
@pytest.mark.parametrize("extra, ok", [(0, True), (1, False)])
def test_response_of_exactly_max_bytes_is_read(fake_clock, extra, ok, framing):
    doc = json.dumps(status_doc("succeeded")).encode()
    limit = 500
    body = doc + b" " * (limit - len(doc) + extra)
    with ScriptedServer(Reply(200, body=body, **framing)) as srv:
        if ok:
            assert poll("/operations/x", endpoint=srv.endpoint, key="k" * 32, max_bytes=limit,
                        **fake_time(fake_clock)).succeeded
        else:
            with pytest.raises(ResponseTooLarge):
                poll("/operations/x", endpoint=srv.endpoint, key="k" * 32, max_bytes=limit,
                     **fake_time(fake_clock))


def test_chunked_response_keeps_the_connection(fake_clock):
    replies = [Reply(200, status_doc("running"), chunked=True),
               Reply(200, status_doc("succeeded"), chunked=True)]
    with ScriptedServer(*replies) as srv:
        assert poll("/operations/x", endpoint=srv.endpoint, key="k" * 32,
                    **fake_time(fake_clock)).succeeded
        assert len(srv.requests) == 2 and srv.connections == 1


def test_close_delimited_response_is_read(fake_clock):
    with ScriptedServer(Reply(200, status_doc("succeeded"), length=False)) as srv:
        poller = Poller("/operations/x", endpoint=srv.endpoint, key="k" * 32, timeout=60,
                        **fake_time(fake_clock))
        try:
            assert poller.wait().succeeded
        finally:
            assert poller.errors == 0, "%d errors, %d requests" % (poller.errors,
                                                                   len(srv.requests))


def test_wait_with_a_deadline_of_its_own_can_be_waited_on_again(fake_clock):
    # Poller.wait(timeout) bounds one call within the poller's own deadline:
    # the first wait times out, the second carries on to the end.
    with opstatus.Simulator(clock=fake_clock, queue_seconds=1.0, take_seconds=30.0) as sim:
        location = opstatus.take_snapshot(sim.endpoint, sim.key, object_type="PersonGroup",
                                          object_id="g", apply_scope=[sim.subscription])
        poller = opstatus.Poller(location, endpoint=sim.endpoint, key=sim.key, timeout=600,
                                 clock=fake_clock, sleep=fake_clock.sleep,
                                 random=lambda: 0.5, plugins=False)
        started = fake_clock()
        with pytest.raises(opstatus.PollTimeout) as info:
            poller.wait(timeout=5)
        assert "given to wait()" in str(info.value)
        assert fake_clock() - started <= 5
        assert info.value.last_status is not None
        assert not info.value.last_status.is_terminal
        polls = poller.polls
        final = poller.wait()
        assert final.status is opstatus.Status.SUCCEEDED
        assert poller.polls > polls
        with pytest.raises(ValueError):
            poller.wait(timeout=-1)
