"""Issue 10, item 12: the simulator as a server (``serve``, ``Simulator``).

Real sockets on loopback. ``serve`` runs in-process: its wait loop calls
``time.sleep``, which the tests replace with a function that checks the
running server and then stops it the way Ctrl-C does.
"""

import hmac
import json
import logging
import re
import socket
import struct
import threading
import time
import urllib.error
import urllib.request

import pytest

import opstatus
from conftest import ConnectionCounter

_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def ipv6_loopback_works():
    if not socket.has_ipv6:
        return False
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as sock:
            sock.bind(("::1", 0))
        return True
    except OSError:
        return False


needs_ipv6 = pytest.mark.skipif(not ipv6_loopback_works(), reason="no IPv6 loopback (::1)")


def get(url, key, path="/face/v1.0/snapshots"):
    request = urllib.request.Request(url + path, headers={"Ocp-Apim-Subscription-Key": key})
    with _OPENER.open(request, timeout=5) as response:
        return response.status, json.loads(response.read().decode("utf-8"))


def address(sim):
    return sim._server.server_address[:2]


def connect(sim, timeout=5.0):
    host, port = address(sim)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    sock.connect((host, port))
    return sock


def read_response(sock):
    """One response off *sock*: (status, headers (lower-case names), body)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise AssertionError("connection closed before a response: %r" % data)
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ")[1])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    length = int(headers.get("content-length", "0"))
    while len(rest) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        rest += chunk
    return status, headers, rest[:length]


def run_serve(argv, monkeypatch, capsys, check):
    """Run ``opstatus serve ARGV`` in-process; once it waits, call
    ``check(endpoint, key, err)`` and stop it as Ctrl-C would. Returns
    (exit status, stdout, stderr)."""
    seen = {}
    real_sleep, caller = time.sleep, threading.current_thread()

    def fake_sleep(seconds):
        if threading.current_thread() is not caller:  # another thread's sleep
            return real_sleep(seconds)
        out, err = capsys.readouterr()
        seen["out"], seen["err"] = out, err
        exports = dict(re.findall(r"^export (OPSTATUS_\w+)=(\S+)$", out, re.M))
        seen["checked"] = check(exports["OPSTATUS_ENDPOINT"], exports["OPSTATUS_KEY"], err)
        raise KeyboardInterrupt

    monkeypatch.setattr(time, "sleep", fake_sleep)
    status = opstatus.main(["serve"] + argv)
    out, err = capsys.readouterr()
    assert seen.get("checked") is True, seen
    return status, seen["out"] + out, seen["err"] + err


###############################################################################
# Bound to every interface: a usable URL and a warning
###############################################################################


def test_serve_on_all_ipv4_interfaces_prints_a_loopback_url_and_a_warning(monkeypatch, capsys):
    def check(endpoint, key, err):
        assert re.fullmatch(r"http://127\.0\.0\.1:[0-9]+", endpoint), endpoint
        assert get(endpoint, key)[0] == 200  # the URL works
        return True

    status, out, err = run_serve(["--host", "0.0.0.0"], monkeypatch, capsys, check)
    assert status == opstatus.EXIT_INTERRUPTED
    warnings = [line for line in err.splitlines() if "warning" in line]
    assert warnings == ["opstatus: warning: listening on 0.0.0.0: other hosts can reach this "
                        "simulator (plain http)"], err
    assert "0.0.0.0" not in out


@needs_ipv6
def test_serve_on_all_ipv6_interfaces_prints_an_ipv6_loopback_url(monkeypatch, capsys):
    def check(endpoint, key, err):
        assert re.fullmatch(r"http://\[::1\]:[0-9]+", endpoint), endpoint
        assert get(endpoint, key)[0] == 200
        return True

    status, out, err = run_serve(["--host", "::"], monkeypatch, capsys, check)
    assert status == opstatus.EXIT_INTERRUPTED
    assert "other hosts can reach this simulator" in err


def test_serve_on_loopback_gives_no_warning(monkeypatch, capsys):
    def check(endpoint, key, err):
        assert endpoint.startswith("http://127.0.0.1:")
        return True

    status, out, err = run_serve([], monkeypatch, capsys, check)
    assert status == opstatus.EXIT_INTERRUPTED
    assert "warning" not in err


def test_simulator_endpoint_on_every_interface_names_loopback(fake_clock):
    with opstatus.Simulator(clock=fake_clock, host="0.0.0.0") as sim:
        assert address(sim)[0] == "0.0.0.0"
        assert re.fullmatch(r"http://127\.0\.0\.1:[0-9]+", sim.endpoint)
        assert get(sim.endpoint, sim.key)[0] == 200


###############################################################################
# IPv6
###############################################################################


@needs_ipv6
@pytest.mark.parametrize("host", ["::1", "[::1]"])
def test_simulator_on_ipv6_loopback(host, fake_clock):
    with opstatus.Simulator(clock=fake_clock, host=host,
                            objects=[("PersonGroup", "pg")]) as sim:
        assert re.fullmatch(r"http://\[::1\]:[0-9]+", sim.endpoint), sim.endpoint
        assert get(sim.endpoint, sim.key) == (200, [])
        location = opstatus.take_snapshot(sim.endpoint, sim.key, object_type="PersonGroup",
                                          object_id="pg", apply_scope=[sim.subscription],
                                          plugins=False)
        final = opstatus.poll(location, endpoint=sim.endpoint, key=sim.key, clock=fake_clock,
                              sleep=fake_clock.sleep, random=lambda: 0.5, plugins=False)
        assert final.succeeded


@needs_ipv6
def test_serve_on_ipv6_loopback(monkeypatch, capsys):
    def check(endpoint, key, err):
        assert re.fullmatch(r"http://\[::1\]:[0-9]+", endpoint), endpoint
        assert get(endpoint, key)[0] == 200
        return True

    status, out, err = run_serve(["--host", "::1"], monkeypatch, capsys, check)
    assert status == opstatus.EXIT_INTERRUPTED
    assert "warning" not in err and "Traceback" not in err


###############################################################################
# Idle connections are closed
###############################################################################


def test_idle_timeout_default_and_option():
    assert opstatus.Simulator().idle_timeout == 5.0
    args = opstatus._build_parser()[0].parse_args(["serve", "--idle-timeout", "2.5"])
    assert args.idle_timeout == 2.5
    with pytest.raises(ValueError):
        opstatus.Simulator(idle_timeout=0)


@pytest.mark.parametrize("first_request", [False, True], ids=["silent", "after-a-request"])
def test_an_idle_connection_is_closed_after_the_idle_timeout(fake_clock, first_request):
    with opstatus.Simulator(clock=fake_clock, idle_timeout=0.2) as sim:
        counter = ConnectionCounter(sim)
        with connect(sim, timeout=10) as sock:
            if first_request:
                sock.sendall(b"GET /face/v1.0/snapshots HTTP/1.1\r\nHost: x\r\n"
                             b"Ocp-Apim-Subscription-Key: " + sim.key.encode() + b"\r\n\r\n")
                assert read_response(sock)[0] == 200
            # the server closes its end: recv sees the end of the stream
            assert sock.recv(1) == b""
        assert counter.wait_closed(5.0) == 0


def test_a_request_in_time_keeps_the_connection(fake_clock):
    with opstatus.Simulator(clock=fake_clock, idle_timeout=5.0) as sim:
        with connect(sim) as sock:
            for _ in range(3):
                sock.sendall(b"GET /face/v1.0/snapshots HTTP/1.1\r\nHost: x\r\n"
                             b"Ocp-Apim-Subscription-Key: " + sim.key.encode() + b"\r\n\r\n")
                assert read_response(sock)[0] == 200


###############################################################################
# The key, before the body, in constant time
###############################################################################


def test_the_key_is_checked_before_the_body_is_read(fake_clock):
    with opstatus.Simulator(clock=fake_clock) as sim:
        with connect(sim) as sock:
            sock.sendall(b"POST /face/v1.0/snapshots HTTP/1.1\r\nHost: x\r\n"
                         b"Ocp-Apim-Subscription-Key: wrong\r\n"
                         b"Content-Type: application/json\r\n"
                         b"Content-Length: 1000000\r\n\r\n")
            # no body is sent: the answer comes all the same, and the
            # connection is closed rather than read
            status, headers, body = read_response(sock)
            assert status == 401
            assert headers["connection"] == "close"
            assert json.loads(body.decode())["error"]["code"] == "401"
            assert sock.recv(1) == b""
        assert sim.operations == {}


def test_a_refused_small_body_is_dropped_and_the_connection_kept(fake_clock):
    with opstatus.Simulator(clock=fake_clock) as sim:
        body = json.dumps({"type": "PersonGroup", "objectId": "pg",
                           "applyScope": [sim.subscription]}).encode()
        with connect(sim) as sock:
            sock.sendall(b"POST /face/v1.0/snapshots HTTP/1.1\r\nHost: x\r\n"
                         b"Ocp-Apim-Subscription-Key: wrong\r\n"
                         b"Content-Length: %d\r\n\r\n" % len(body) + body)
            status, headers, _ = read_response(sock)
            assert status == 401 and "connection" not in headers
            sock.sendall(b"GET /face/v1.0/snapshots HTTP/1.1\r\nHost: x\r\n"
                         b"Ocp-Apim-Subscription-Key: " + sim.key.encode() + b"\r\n\r\n")
            assert read_response(sock)[:1] == (200,)


@pytest.mark.parametrize("header, status", [
    (b"Content-Length: abc\r\n", 400),
    (b"Content-Length: -5\r\n", 400),
    (b"Content-Length: 99999999999999999999\r\n", 400),
    (b"Content-Length: 2000000\r\n", 413),
    (b"Transfer-Encoding: chunked\r\n", 411),
], ids=["letters", "negative", "huge", "over-the-cap", "chunked"])
def test_a_body_the_simulator_does_not_read_is_a_json_error(fake_clock, header, status):
    with opstatus.Simulator(clock=fake_clock) as sim:
        with connect(sim) as sock:
            sock.sendall(b"POST /face/v1.0/snapshots HTTP/1.1\r\nHost: x\r\n"
                         b"Ocp-Apim-Subscription-Key: " + sim.key.encode() + b"\r\n"
                         + header + b"\r\n")
            got, headers, body = read_response(sock)
            assert got == status
            assert headers["connection"] == "close"
            assert set(json.loads(body.decode())["error"]) == {"code", "message"}


def test_keys_are_compared_in_constant_time(fake_clock, monkeypatch):
    calls = []
    real = hmac.compare_digest

    def spy(a, b):
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", spy)
    with opstatus.Simulator(clock=fake_clock, key="the-right-key") as sim:
        request = urllib.request.Request(sim.endpoint + "/face/v1.0/snapshots",
                                         headers={"Ocp-Apim-Subscription-Key": "wrong"})
        with pytest.raises(urllib.error.HTTPError) as info:
            _OPENER.open(request, timeout=5)
        info.value.close()
        assert info.value.code == 401
        assert get(sim.endpoint, sim.key)[0] == 200
    assert (b"wrong", b"the-right-key") in calls
    assert (b"the-right-key", b"the-right-key") in calls


###############################################################################
# A client that goes away: one log line, no traceback
###############################################################################


def test_a_client_that_goes_away_early_is_one_log_line(fake_clock, caplog, capfd):
    caplog.set_level(logging.INFO, logger="opstatus.simulator")
    with opstatus.Simulator(clock=fake_clock) as sim:
        counter = ConnectionCounter(sim)
        sock = connect(sim)
        sock.sendall(b"GET /face/v1.0/snapshots HTTP/1.1\r\nHost: x\r\n")  # headers unfinished
        # close with a reset (SO_LINGER 0): the server's read fails
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.close()
        assert counter.wait_closed(5.0) == 0
        deadline = time.monotonic() + 5.0
        while not caplog.records and time.monotonic() < deadline:
            time.sleep(0.01)
        assert get(sim.endpoint, sim.key)[0] == 200  # the server goes on
    lines = [r.getMessage() for r in caplog.records if r.name == "opstatus.simulator"]
    assert len(lines) == 1, lines
    assert re.match(r"opstatus simulator: client 127\.0\.0\.1:[0-9]+ went away "
                    r"\(ConnectionResetError: ", lines[0]), lines
    assert all(r.exc_info is None for r in caplog.records)
    out, err = capfd.readouterr()
    assert "Traceback" not in err and "Traceback" not in out
