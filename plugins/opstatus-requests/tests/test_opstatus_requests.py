"""opstatus-requests against real loopback servers: the opstatus simulator,
small HTTP servers, raw sockets that misbehave, a proxy, a TLS server with a
private CA. Time is injected into pollers; nothing here is mocked. The clock,
the simulator and the HTTP servers are the core's (tests/opstatus_testing.py)."""

import gzip
import inspect
import json
import os
import socket
import ssl
import threading
import time

import pytest
import requests

import opstatus
import opstatus_requests
from opstatus_requests import RequestsTransport
from opstatus_testing import SUCCEEDED, LoopbackServer, send_json, take

TOKEN = "eyJhbGciOiJub25lIn0.secret-bearer-token-0042"


@pytest.fixture
def transport():
    with RequestsTransport() as t:
        yield t


def request(url, method="GET", headers=None, timeout=5.0, max_bytes=opstatus.MAX_RESPONSE_BYTES):
    return opstatus.Request(method, url, headers or {}, timeout=timeout, max_bytes=max_bytes)


class RawServer:
    """A loopback TCP server whose ``serve(conn, release)`` gets each
    connection; *release* is set when the test ends."""

    def __init__(self, serve):
        self.serve = serve
        self.release = threading.Event()
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.sock.settimeout(0.05)
        self.threads = []
        self.thread = threading.Thread(target=self._accept, daemon=True)

    def _accept(self):
        while not self.release.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            worker = threading.Thread(target=self._run, args=(conn,), daemon=True)
            self.threads.append(worker)
            worker.start()

    def _run(self, conn):
        try:
            conn.settimeout(2.0)
            self.serve(conn, self.release)
        except OSError:
            pass
        finally:
            conn.close()

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc_info):
        self.release.set()
        self.thread.join(5)
        for worker in self.threads:
            worker.join(5)
        self.sock.close()

    def url(self, path="/face/v1.0/operations/op1"):
        return "http://127.0.0.1:%d%s" % (self.sock.getsockname()[1], path)


def read_request(conn):
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(4096)
        if not chunk:
            break
        data += chunk
    return data


###############################################################################
# With the simulator
###############################################################################


def test_take_and_poll_through_transport_argument(sim, clock, transport):
    location = take(sim, transport=transport, plugins=False)
    final = opstatus.poll(location, endpoint=sim.endpoint, key=sim.key, transport=transport,
                          clock=clock, sleep=clock.sleep, random=lambda: 0.0, plugins=False)
    assert final.status is opstatus.Status.SUCCEEDED
    methods = [method for method, _ in sim.requests]
    assert methods[0] == "POST" and methods.count("GET") >= 3


def test_as_a_plugin_it_uses_the_users_session(sim, clock):
    pm = opstatus.make_plugin_manager()
    session = requests.Session()
    through_session = []
    session.hooks["response"].append(
        lambda r, *args, **kwargs: through_session.append(r.request.method))
    plugin = RequestsTransport(session)
    pm.register(plugin, name="requests-session")
    try:
        location = take(sim, plugins=pm)
        poller = opstatus.Poller(location, endpoint=sim.endpoint, key=sim.key, plugins=pm,
                                 clock=clock, sleep=clock.sleep, random=lambda: 0.0)
        assert poller.wait().status is opstatus.Status.SUCCEEDED
    finally:
        pm.unregister(plugin)
        plugin.close()
        session.close()
    assert through_session == ["POST"] + ["GET"] * poller.polls
    assert len(sim.requests) == len(through_session)


def test_the_installed_module_is_a_valid_plugin(sim, clock, monkeypatch):
    monkeypatch.setattr(opstatus_requests, "_DEFAULT", None)
    pm = opstatus.make_plugin_manager()
    pm.register(opstatus_requests, name="opstatus-requests")
    try:
        pm.check_pending()
        made = opstatus_requests._DEFAULT  # when it joined the manager, before a request
        assert isinstance(made, RequestsTransport)
        final = opstatus.poll(take(sim), endpoint=sim.endpoint, key=sim.key, plugins=pm,
                              clock=clock, sleep=clock.sleep)
        assert final.status is opstatus.Status.SUCCEEDED
        assert opstatus_requests._DEFAULT is made
        assert opstatus_requests.default_transport() is made
    finally:
        pm.unregister(opstatus_requests)
        if opstatus_requests._DEFAULT is not None:
            opstatus_requests._DEFAULT.close()


def _entry_points(group):
    try:
        from importlib.metadata import entry_points
    except ImportError:  # Python 3.7
        entry_points = pytest.importorskip("importlib_metadata").entry_points
    eps = entry_points()
    return list(eps.select(group=group) if hasattr(eps, "select") else eps.get(group, ()))


def test_entry_point_is_declared_and_autoloaded(monkeypatch):
    eps = {ep.name: ep.value for ep in _entry_points("opstatus")}
    assert eps.get("opstatus-requests") == "opstatus_requests", \
        "not installed? run: pip install -e plugins/opstatus-requests"
    monkeypatch.delenv("OPSTATUS_DISABLE_PLUGIN_AUTOLOAD", raising=False)
    monkeypatch.delenv("OPSTATUS_DISABLED_PLUGINS", raising=False)
    pm = opstatus.make_plugin_manager(autoload=True)
    assert pm.get_plugin("opstatus-requests") is opstatus_requests
    monkeypatch.setenv("OPSTATUS_DISABLED_PLUGINS", "opstatus-requests")
    assert opstatus.make_plugin_manager(autoload=True).get_plugin("opstatus-requests") is None


###############################################################################
# HTTP behaviour
###############################################################################


def test_connections_are_kept_alive(transport):
    with LoopbackServer(send_json) as server:
        answers = [transport.send(request(server.url())) for _ in range(3)]
    assert [a.status for a in answers] == [200, 200, 200]
    assert len({e.port for e in server.seen}) == 1  # one connection, three requests


def test_response_headers_are_lower_cased_and_joined(transport):
    def respond(handler):
        send_json(handler, headers=[("X-Multi", "a"), ("X-Multi", "b"), ("Retry-After", "3")])

    with LoopbackServer(respond) as server:
        answer = transport.send(request(server.url()))
    assert answer.headers["x-multi"] == "a, b"
    assert answer.headers["retry-after"] == "3"
    assert all(name == name.lower() for name in answer.headers)
    assert json.loads(answer.body) == SUCCEEDED and answer.url == server.url()


def test_request_headers_and_body_are_sent_as_given(transport):
    with LoopbackServer(lambda h: send_json(h, 202, {})) as server:
        req = request(server.url("/face/v1.0/snapshots"), "POST",
                      {"Ocp-Apim-Subscription-Key": "k" * 32, "User-Agent": "opstatus/x"})
        req.body = b'{"type": "PersonGroup"}'
        answer = transport.send(req)
    assert answer.status == 202
    assert server.seen[0].requestline.startswith("POST /face/v1.0/snapshots ")
    headers = server.seen[0].headers
    assert headers["ocp-apim-subscription-key"] == "k" * 32
    assert headers["user-agent"] == "opstatus/x"  # not python-requests'


def test_redirects_are_returned_not_followed(transport, clock):
    with LoopbackServer(send_json) as elsewhere:
        def respond(handler):
            handler.send_response(302)
            handler.send_header("Location", elsewhere.url("/steal"))
            handler.send_header("Content-Length", "0")
            handler.end_headers()

        with LoopbackServer(respond) as server:
            answer = transport.send(request(server.url()))
            assert answer.status == 302
            assert answer.headers["location"] == elsewhere.url("/steal")
            with pytest.raises(opstatus.UnsafeURLError, match="another origin"):
                opstatus.poll(server.url(), transport=transport, plugins=False, clock=clock,
                              sleep=clock.sleep, headers={"Authorization": "Bearer " + TOKEN})
        assert elsewhere.seen == []


def test_netrc_never_replaces_the_requests_own_authorization(transport, tmp_path, monkeypatch):
    netrc = tmp_path / "netrc"
    netrc.write_text("machine 127.0.0.1 login someone password hunter2\n")
    os.chmod(str(netrc), 0o600)
    monkeypatch.setenv("NETRC", str(netrc))
    with LoopbackServer(send_json) as server:
        transport.send(request(server.url()))
        transport.send(request(server.url(), headers={"Authorization": "Bearer " + TOKEN}))
    assert server.seen[0].headers["authorization"].startswith("Basic ")  # netrc is in force
    assert server.seen[1].headers["authorization"] == "Bearer " + TOKEN


def test_proxy_of_the_session_is_used():
    session = requests.Session()
    session.trust_env = False
    with LoopbackServer(send_json) as proxy:
        session.proxies = {"http": "http://127.0.0.1:%d" % proxy.port}
        with RequestsTransport(session) as transport:
            answer = transport.send(request("http://face.invalid/face/v1.0/operations/op1",
                                            headers={"Ocp-Apim-Subscription-Key": "k" * 32}))
    session.close()
    assert answer.status == 200
    assert proxy.seen[0].requestline.startswith(
        "GET http://face.invalid/face/v1.0/operations/op1 ")
    assert proxy.seen[0].headers["host"] == "face.invalid"


def test_custom_ca_of_the_session_is_trusted(tmp_path, monkeypatch):
    trustme = pytest.importorskip("trustme")
    # Plain requests lets this variable override session.verify: not here.
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", requests.certs.where())
    import ssl

    ca = trustme.CA()
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server_context)
    cafile = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(cafile))
    with LoopbackServer(send_json, ssl_context=server_context) as server:
        url = server.url(scheme="https")
        session = requests.Session()
        session.verify = str(cafile)
        with RequestsTransport(session) as trusting:
            assert trusting.send(request(url)).status == 200
        session.close()
        with RequestsTransport() as default:
            with pytest.raises(opstatus.NetworkError) as info:
                default.send(request(url))
    assert info.value.sent is False
    assert str(info.value).startswith("TLS error")


###############################################################################
# Failures
###############################################################################


def test_connection_refused_is_not_sent(transport):
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()  # nothing listens there now
    url = "http://127.0.0.1:%d/face/v1.0/operations/op1?sig=SAS-SECRET" % port
    with pytest.raises(opstatus.NetworkError) as info:
        transport.send(request(url, headers={"Ocp-Apim-Subscription-Key": "k" * 32}))
    assert info.value.sent is False
    assert "connection refused" in str(info.value)
    assert "SAS-SECRET" not in str(info.value) and "k" * 32 not in str(info.value)
    assert info.value.__cause__ is None and info.value.__suppress_context__


def test_server_closing_without_an_answer_is_sent(transport):
    def serve(conn, release):
        read_request(conn)  # then close without a word

    with RawServer(serve) as server:
        with pytest.raises(opstatus.NetworkError) as info:
            transport.send(request(server.url()))
    assert info.value.sent is True
    assert "without answering" in str(info.value) or "reset" in str(info.value)


def test_read_timeout_is_sent_and_quick(transport):
    def serve(conn, release):
        read_request(conn)
        release.wait(2.0)  # never answers while the test runs

    with RawServer(serve) as server:
        started = time.monotonic()
        with pytest.raises(opstatus.NetworkError) as info:
            transport.send(request(server.url(), timeout=0.15))
        took = time.monotonic() - started
    assert info.value.sent is True and "timed out" in str(info.value)
    assert took < 1.0


def test_a_dripping_server_cannot_stretch_the_poll(clock, transport):
    def serve(conn, release):
        read_request(conn)
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 200\r\n\r\n")
        for _ in range(200):
            if release.wait(0.01):
                return
            conn.sendall(b" ")

    with RawServer(serve) as server:
        started = time.monotonic()
        with pytest.raises(opstatus.NetworkError):
            opstatus.poll(server.url(), transport=transport, plugins=False, clock=clock,
                          sleep=clock.sleep, request_timeout=0.1,
                          policy=opstatus.RetryPolicy(max_errors=0))
        took = time.monotonic() - started
    assert took < 1.0  # the body would take 2 s


@pytest.mark.parametrize("exc_factory, sent, retryable", [
    (lambda e, u: e.ConnectTimeout("connect timed out"), False, True),
    (lambda e, u: e.SSLError("CERTIFICATE_VERIFY_FAILED"), False, False),
    (lambda e, u: e.SSLError(u.MaxRetryError(None, "/", u.SSLError(
        ssl.SSLCertVerificationError(1, "[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify "
                                        "failed: Hostname mismatch")))), False, False),
    (lambda e, u: e.SSLError(u.MaxRetryError(None, "/", u.SSLError(
        ssl.SSLError(1, "[SSL: WRONG_VERSION_NUMBER] wrong version number")))), False, True),
    (lambda e, u: e.ProxyError("tunnel failed"), False, True),
    (lambda e, u: e.ConnectionError(u.MaxRetryError(
        None, "/", u.NewConnectionError(None, "Connection refused"))), False, True),
    (lambda e, u: e.ReadTimeout("read timed out"), True, True),
    (lambda e, u: e.ConnectionError(u.ProtocolError("Connection aborted.")), True, True),
    (lambda e, u: e.ChunkedEncodingError("broken"), True, True),
    (lambda e, u: e.ContentDecodingError("bad gzip"), True, True),
])
def test_exceptions_map_to_sent_or_not(exc_factory, sent, retryable):
    import urllib3.exceptions

    exc = exc_factory(requests.exceptions, urllib3.exceptions)
    err = opstatus_requests._network_error(
        exc, request("https://x.example/op?sig=SECRET"), sent=not opstatus_requests._before_send(exc))
    assert err.sent is sent
    assert err.retryable is retryable
    assert "SECRET" not in str(err) and "x.example/op" in str(err)


###############################################################################
# TLS: a certificate that fails verification is final, not transient
###############################################################################


def _tls_server(ca, *names, **cert_options):
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert(*names, **cert_options).configure_cert(server_context)
    return LoopbackServer(send_json, ssl_context=server_context)


def _trusting_session(ca, tmp_path):
    cafile = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(cafile))
    session = requests.Session()
    session.verify = str(cafile)
    return session


@pytest.mark.parametrize("problem", ["untrusted", "other-name", "expired"])
def test_certificate_that_fails_verification_is_not_retryable(problem, tmp_path):
    trustme = pytest.importorskip("trustme")
    import datetime

    ca = trustme.CA()
    options = {}
    names = ["127.0.0.1"]
    if problem == "other-name":
        names = ["face.example"]
    elif problem == "expired":
        parameters = inspect.signature(ca.issue_cert).parameters
        if "not_after" not in parameters:
            pytest.skip("this trustme cannot issue an expired certificate")
        now = datetime.datetime.now(datetime.timezone.utc)
        options = {"not_after": now - datetime.timedelta(days=1)}
        if "not_before" in parameters:  # trustme >= 1.1; before, it starts in the past
            options["not_before"] = now - datetime.timedelta(days=30)
    session = requests.Session() if problem == "untrusted" else _trusting_session(ca, tmp_path)
    with _tls_server(ca, *names, **options) as server:
        with RequestsTransport(session) as transport:
            with pytest.raises(opstatus.NetworkError) as info:
                transport.send(request(server.url(scheme="https")))
    session.close()
    assert info.value.retryable is False
    assert info.value.sent is False
    assert str(info.value).startswith("TLS error")
    assert server.seen == []


def test_untrusted_certificate_ends_the_poll_at_once(clock):
    trustme = pytest.importorskip("trustme")
    ca = trustme.CA()
    pm = opstatus.make_plugin_manager()
    plugin = RequestsTransport()
    pm.register(plugin, name="requests-default")
    try:
        with _tls_server(ca, "127.0.0.1") as server:
            poller = opstatus.Poller(server.url(scheme="https"), plugins=pm, timeout=3600,
                                     request_timeout=2, clock=clock, sleep=clock.sleep,
                                     random=lambda: 0.0)
            with pytest.raises(opstatus.NetworkError) as info:
                poller.wait()
    finally:
        pm.unregister(plugin)
        plugin.close()
    assert not isinstance(info.value, opstatus.PollTimeout)
    assert "TLS error" in str(info.value)
    assert poller.polls == 1 and clock.sleeps == []  # no retry, no wait for one


def test_a_tls_failure_that_is_not_the_certificate_stays_retryable(transport):
    # A plain-HTTP server on an https:// URL: the handshake fails, but the
    # certificate was never judged; it may be a passing fault.
    with LoopbackServer(send_json) as server:
        with pytest.raises(opstatus.NetworkError) as info:
            transport.send(request(server.url(scheme="https")))
    assert str(info.value).startswith("TLS error")
    assert info.value.retryable is True


###############################################################################
# One deadline for the whole exchange
###############################################################################

_DRIP_BODY = json.dumps(SUCCEEDED).encode("utf-8")
_DRIP_HEAD = (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
              b"Content-Length: %d\r\n\r\n" % len(_DRIP_BODY))


def _dripping(head, body, interval=0.05):
    """A server that sends *head* at once, then *body* a byte every
    *interval* seconds; ``sent`` counts the bytes of *body* sent."""
    sent = []

    def serve(conn, release):
        read_request(conn)
        conn.sendall(head)
        for i in range(len(body)):
            if release.wait(interval):
                return
            conn.sendall(body[i:i + 1])
            sent.append(i)

    return serve, sent


@pytest.mark.parametrize("where", ["headers", "body"])
def test_a_dripping_server_cannot_outlast_the_request_timeout(transport, where):
    answer = _DRIP_HEAD + _DRIP_BODY
    head, body = (b"", answer) if where == "headers" else (_DRIP_HEAD, _DRIP_BODY)
    serve, sent = _dripping(head, body)
    with RawServer(serve) as server:
        with pytest.raises(opstatus.NetworkError) as info:
            transport.send(request(server.url(), timeout=0.3))
        dripped = len(sent)
    assert "timed out" in str(info.value) and info.value.sent is True
    assert dripped >= 3  # each read got a byte in time: no single read timed out
    assert dripped < len(body)  # the answer was cut off before its end


def test_a_dripping_server_times_out_the_plugin_not_the_core(clock):
    # Installed as a plugin, the transport ends the request itself, with a
    # timeout, before the core has to abandon it.
    serve, sent = _dripping(b"", _DRIP_HEAD + _DRIP_BODY)
    pm = opstatus.make_plugin_manager()
    plugin = RequestsTransport()
    pm.register(plugin, name="requests-default")
    try:
        with RawServer(serve) as server:
            with pytest.raises(opstatus.NetworkError) as info:
                opstatus.poll(server.url(), plugins=pm, timeout=30, request_timeout=0.3,
                              policy=opstatus.RetryPolicy(max_errors=0), clock=clock,
                              sleep=clock.sleep)
    finally:
        pm.unregister(plugin)
        plugin.close()
    assert "timed out" in str(info.value)
    assert "did not answer within" not in str(info.value)


def test_the_session_reads_as_before_outside_opstatus_requests():
    # A connection that served a request of opstatus (with its deadline) and
    # then one of the program's own through the same session: the latter has
    # requests' own per-read timeout, not the old deadline.
    answers = iter([(_DRIP_HEAD + _DRIP_BODY, b""), (_DRIP_HEAD, _DRIP_BODY[:12])])
    short_head = (b"HTTP/1.1 200 OK\r\nContent-Length: 12\r\n\r\n")

    def serve(conn, release):
        for whole, dripped in answers:
            read_request(conn)
            conn.sendall(short_head if dripped else whole)
            for i in range(len(dripped)):
                if release.wait(0.05):
                    return
                conn.sendall(dripped[i:i + 1])

    session = requests.Session()
    with RawServer(serve) as server:
        with RequestsTransport(session) as transport:
            assert transport.send(request(server.url(), timeout=0.2)).status == 200
            later = session.get(server.url(), timeout=5)  # 0.6 s of dripping
    session.close()
    assert later.content == _DRIP_BODY[:12]
    assert len({w.name for w in server.threads}) == 1  # the same connection


###############################################################################
# Body cap
###############################################################################


def _body_server(body, headers):
    def respond(handler):
        handler.send_response(200)
        for name, value in headers:
            handler.send_header(name, value)
        handler.end_headers()
        if body:
            handler.wfile.write(body)
        handler.close_connection = True

    return LoopbackServer(respond)


def test_announced_length_over_the_cap_is_refused_unread(transport):
    with _body_server(b"", [("Content-Length", str(10 ** 9))]) as server:
        started = time.monotonic()
        with pytest.raises(opstatus.ResponseTooLarge, match="announces"):
            transport.send(request(server.url(), max_bytes=1000))
    assert time.monotonic() - started < 1.0


@pytest.mark.parametrize("size, too_large", [(1000, False), (1001, True), (50000, True)])
def test_body_without_length_is_capped(transport, size, too_large):
    with _body_server(b"x" * size, [("Connection", "close")]) as server:
        if too_large:
            with pytest.raises(opstatus.ResponseTooLarge, match="cap of 1000"):
                transport.send(request(server.url(), max_bytes=1000))
        else:
            assert len(transport.send(request(server.url(), max_bytes=1000)).body) == size


def test_compressed_body_is_capped_after_decompression(transport):
    bomb = gzip.compress(b"0" * 1000000)
    assert len(bomb) < 2000
    with _body_server(bomb, [("Content-Encoding", "gzip"),
                             ("Content-Length", str(len(bomb)))]) as server:
        with pytest.raises(opstatus.ResponseTooLarge):
            transport.send(request(server.url(), max_bytes=10000))
        small = gzip.compress(json.dumps(SUCCEEDED).encode("utf-8"))
    with _body_server(small, [("Content-Encoding", "gzip"),
                              ("Content-Length", str(len(small)))]) as server:
        assert json.loads(transport.send(request(server.url(), max_bytes=10000)).body) == SUCCEEDED


def test_own_session_is_closed_and_a_given_one_is_not():
    session = requests.Session()
    closed = []
    session.close = lambda: closed.append("given")
    RequestsTransport(session).close()
    assert closed == []
    own = RequestsTransport()
    own.session.close = lambda: closed.append("own")
    own.close()
    assert closed == ["own"]


def test_a_session_that_does_not_verify_tls_is_refused():
    session = requests.Session()
    session.verify = False
    with pytest.raises(ValueError, match="verify"):
        RequestsTransport(session)
    session.verify = True
    transport = RequestsTransport(session)
    session.verify = False  # changed later: refused at send, before connecting
    with pytest.raises(ValueError, match="verify"):
        transport.send(request("https://127.0.0.1:1/x"))
    session.close()


###############################################################################
# A kept-alive connection the server closed
###############################################################################


def _closes_after_one_answer(seen):
    """A server whose every connection answers one request, keeps the
    connection open, then reads the next request and closes without a word
    (the race of a server closing an idle connection as a request arrives)."""
    def serve(conn, release):
        if not read_request(conn):
            return
        seen.append("answered")
        body = b'{"status": "running"}'
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                     b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
        if read_request(conn):
            seen.append("dropped")
    return serve


def test_a_get_on_a_connection_the_server_closed_goes_again_on_a_new_one(transport):
    seen = []
    with RawServer(_closes_after_one_answer(seen)) as server:
        first = transport.send(request(server.url()))
        second = transport.send(request(server.url()))
    assert first.status == second.status == 200
    assert seen == ["answered", "dropped", "answered"]


def test_a_post_on_a_connection_the_server_closed_is_not_sent_again(transport):
    seen = []
    with RawServer(_closes_after_one_answer(seen)) as server:
        transport.send(request(server.url(), method="POST"))
        with pytest.raises(opstatus.NetworkError) as info:
            transport.send(request(server.url(), method="POST"))
    assert info.value.sent is True
    assert seen == ["answered", "dropped"]


def test_a_get_dropped_on_a_new_connection_is_not_sent_again(transport):
    seen = []

    def serve(conn, release):
        if read_request(conn):
            seen.append("dropped")

    with RawServer(serve) as server:
        with pytest.raises(opstatus.NetworkError):
            transport.send(request(server.url()))
    assert seen == ["dropped"]
