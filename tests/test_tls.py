"""TLS against a real HTTPS loopback server (certificates from trustme).

The server is the Face simulator's own request handler under an
ssl-wrapped ThreadingHTTPServer of this file, sharing an
``opstatus.Simulator`` for its state. Checked: the system CAs do not trust
it (NetworkError, and the poll ends); ``cafile=`` or a caller's
``ssl_context`` trusting the test CA make the full take-and-poll flow work;
a certificate for another name is refused even from a trusted CA; no key is
ever sent over a connection whose certificate was refused.
"""

import ssl
import threading
import time
import warnings
from http.server import ThreadingHTTPServer

import pytest

import opstatus
from conftest import FakeClock, ServerThread, fake_time, stopping

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # cryptography warns on old Pythons
    trustme = pytest.importorskip("trustme")

SCOPE = "0b8f5a5c-3f2d-4d9a-9c51-6a7e3a2b1c0d"


@pytest.fixture
def clock():
    return FakeClock()


@pytest.fixture(scope="module")
def ca():
    return trustme.CA()


@pytest.fixture(scope="module")
def ca_file(ca, tmp_path_factory):
    path = tmp_path_factory.mktemp("tls") / "ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return str(path)


class HTTPSSimulator(ServerThread):
    """opstatus's simulator handler served over TLS with *cert*."""

    def __init__(self, cert):
        self.sim = opstatus.Simulator(queue_seconds=0, take_seconds=0, apply_seconds=0)
        self.sim.start()  # sets its clocks; its plain-http server stays unused
        server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        cert.configure_cert(server_ctx)
        self.connections = 0
        self.tls_errors = []
        self._socks = []
        self._lock = threading.Lock()
        outer = self
        base = opstatus._make_sim_handler()

        class Handler(base):
            sim = self.sim
            timeout = 5

            def setup(self):
                self.request.do_handshake()  # in the handler's thread
                base.setup(self)

        class Server(ThreadingHTTPServer):
            daemon_threads = False  # server_close() joins the handler threads

            def get_request(self):
                sock, addr = self.socket.accept()
                tls = server_ctx.wrap_socket(sock, server_side=True,
                                             do_handshake_on_connect=False)
                with outer._lock:
                    outer.connections += 1
                    outer._socks.append(tls)
                return tls, addr

            def handle_error(self, request, client_address):
                import sys

                outer.tls_errors.append(sys.exc_info()[1])

        self._run_in_thread(Server(("127.0.0.1", 0), Handler))

    def endpoint(self, host="127.0.0.1"):
        return "https://%s:%d" % (host, self.port)

    def stop(self):
        super().stop()
        self.sim.stop()


@pytest.fixture
def https_server():
    yield from stopping(HTTPSSimulator)


@pytest.fixture(scope="module")
def good_cert(ca):
    return ca.issue_cert("localhost", "127.0.0.1")


@pytest.fixture(scope="module")
def other_cert(ca):
    return ca.issue_cert("other.example")


def trusting_context(ca):
    ctx = ssl.create_default_context()
    ca.configure_trust(ctx)
    return ctx


def take_and_poll(endpoint, key, clock, **tls):
    location = opstatus.take_snapshot(endpoint, key, object_type="PersonGroup",
                                      object_id="tls-group", apply_scope=[SCOPE],
                                      request_timeout=5, sleep=clock.sleep, **tls)
    return opstatus.poll(location, endpoint=endpoint, key=key, timeout=30, request_timeout=5,
                         **dict(fake_time(clock), **tls))


###############################################################################
# Trusted: the flow works
###############################################################################


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
def test_cafile_of_the_test_ca_works(host, https_server, good_cert, ca_file, clock):
    server = https_server(good_cert)
    final = take_and_poll(server.endpoint(host), server.sim.key, clock, cafile=ca_file)
    assert final.succeeded and final.snapshot_id in server.sim.snapshots
    assert [m for m, _p in server.sim.requests] == ["POST", "GET"]
    assert server.connections >= 1


def test_callers_ssl_context_works(https_server, good_cert, ca, clock):
    server = https_server(good_cert)
    ctx = trusting_context(ca)
    final = take_and_poll(server.endpoint(), server.sim.key, clock, ssl_context=ctx)
    assert final.succeeded and final.snapshot_id in server.sim.snapshots


def test_transport_with_callers_context_keeps_the_connection(https_server, good_cert, ca, clock):
    # One TLS handshake for several polls: the kept-alive connection is reused.
    server = https_server(good_cert)
    server.sim.take_seconds = 3600  # stays running
    location = opstatus.take_snapshot(server.endpoint(), server.sim.key,
                                      object_type="PersonGroup", object_id="tls-group",
                                      apply_scope=[SCOPE], request_timeout=5,
                                      ssl_context=trusting_context(ca), sleep=clock.sleep)
    before = server.connections
    poller = opstatus.Poller(location, endpoint=server.endpoint(), key=server.sim.key,
                             ssl_context=trusting_context(ca), timeout=30, request_timeout=5,
                             **fake_time(clock))
    try:
        statuses = []
        for status in poller:
            statuses.append(status)
            if len(statuses) == 3:
                break
    finally:
        poller.close()
    assert [s.status.value for s in statuses] == ["running"] * 3
    assert server.connections - before == 1


###############################################################################
# Not trusted: refused, never retried forever, no key sent
###############################################################################


def test_system_cas_refuse_the_test_certificate(https_server, good_cert, clock):
    server = https_server(good_cert)
    poller = opstatus.Poller("/operations/op-1", endpoint=server.endpoint(),
                             key=server.sim.key, timeout=30, request_timeout=2,
                             policy=opstatus.RetryPolicy(max_errors=0), **fake_time(clock))
    with pytest.raises(opstatus.NetworkError) as info:
        poller.wait()
    assert "TLS" in str(info.value) or "CERTIFICATE" in str(info.value).upper()
    assert info.value.sent is False
    assert server.sim.requests == []  # the key never went over it
    assert server.sim.key not in str(info.value)


def test_untrusted_certificate_poll_ends_within_the_deadline(https_server, good_cert, clock):
    # The default policy: however the poller treats a TLS failure, the poll
    # ends by the deadline (fake clock), quickly in real time, with few tries.
    server = https_server(good_cert)
    poller = opstatus.Poller("/operations/op-1", endpoint=server.endpoint(),
                             key=server.sim.key, timeout=30, request_timeout=2,
                             **fake_time(clock))
    started = time.monotonic()
    with pytest.raises((opstatus.NetworkError, opstatus.PollTimeout)) as info:
        poller.wait()
    assert time.monotonic() - started < 5
    assert clock.now - 1000.0 <= 30
    assert 1 <= server.connections <= 40
    if isinstance(info.value, opstatus.PollTimeout):
        assert poller.errors == poller.polls  # every try was the TLS failure
    assert server.sim.requests == []


def test_untrusted_certificate_is_not_retried(https_server, good_cert, clock):
    server = https_server(good_cert)
    poller = opstatus.Poller("/operations/op-1", endpoint=server.endpoint(),
                             key=server.sim.key, timeout=30, request_timeout=2,
                             **fake_time(clock))
    with pytest.raises(opstatus.NetworkError):
        poller.wait()
    assert server.connections == 1


@pytest.mark.parametrize("how", ["cafile", "ssl_context"])
def test_certificate_for_another_name_is_refused(how, https_server, other_cert, ca, ca_file,
                                                 clock):
    server = https_server(other_cert)
    tls = {"cafile": ca_file} if how == "cafile" else {"ssl_context": trusting_context(ca)}
    poller = opstatus.Poller("/operations/op-1", endpoint=server.endpoint(),
                             key=server.sim.key, timeout=30, request_timeout=2,
                             policy=opstatus.RetryPolicy(max_errors=0),
                             **dict(fake_time(clock), **tls))
    with pytest.raises(opstatus.NetworkError) as info:
        poller.wait()
    assert info.value.sent is False
    assert server.connections == 1
    assert server.sim.requests == []


def test_certificate_for_another_name_is_refused_by_take_snapshot(https_server, other_cert,
                                                                  ca_file, clock):
    server = https_server(other_cert)
    with pytest.raises(opstatus.NetworkError):
        opstatus.take_snapshot(server.endpoint("localhost"), server.sim.key,
                               object_type="PersonGroup", object_id="tls-group",
                               apply_scope=[SCOPE], request_timeout=2, cafile=ca_file,
                               sleep=clock.sleep)
    assert server.sim.requests == []
    assert server.connections >= 1


def test_certificate_for_another_name_poll_ends(https_server, other_cert, ca_file, clock):
    server = https_server(other_cert)
    started = time.monotonic()
    with pytest.raises((opstatus.NetworkError, opstatus.PollTimeout)):
        opstatus.poll("/operations/op-1", endpoint=server.endpoint(), key=server.sim.key,
                      cafile=ca_file, timeout=30, request_timeout=2, **fake_time(clock))
    assert time.monotonic() - started < 5
    assert server.sim.requests == []


def test_plain_http_to_the_https_port_gets_no_answer_with_the_key(https_server, good_cert,
                                                                  clock):
    # http:// to a TLS port: the server cannot read it; the request fails
    # and the poll ends, without the simulator ever seeing a request.
    server = https_server(good_cert)
    with pytest.raises((opstatus.NetworkError, opstatus.PollTimeout)):
        opstatus.poll("/operations/op-1", endpoint="http://127.0.0.1:%d" % server.port,
                      key=server.sim.key, timeout=5, request_timeout=1,
                      policy=opstatus.RetryPolicy(max_errors=0), **fake_time(clock))
    assert server.sim.requests == []


def test_context_weakened_after_the_transport_was_built_is_refused(https_server, other_cert,
                                                                   ca, clock):
    server = https_server(other_cert)
    ctx = trusting_context(ca)
    poller = opstatus.Poller("/operations/op-1", endpoint=server.endpoint(),
                             key=server.sim.key, ssl_context=ctx, timeout=30, request_timeout=2,
                             policy=opstatus.RetryPolicy(max_errors=0), **fake_time(clock))
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    try:
        with pytest.raises((opstatus.NetworkError, ValueError)):
            poller.wait()
    finally:
        poller.close()
    assert server.sim.requests == []


###############################################################################
# A Watcher: its requests on non-blocking TLS connections
###############################################################################


def test_a_watcher_over_tls_needs_no_thread_and_keeps_its_connections(https_server,
                                                                       good_cert, ca_file):
    server = https_server(good_cert)
    server.sim.take_seconds = 0.4
    locations = [opstatus.take_snapshot(server.endpoint(), server.sim.key,
                                        object_type="PersonGroup", object_id="tls-%d" % i,
                                        apply_scope=[SCOPE], request_timeout=5, cafile=ca_file)
                 for i in range(6)]
    before = server.connections
    threads = set()
    watcher = opstatus.Watcher(locations, endpoint=server.endpoint(), key=server.sim.key,
                               cafile=ca_file, timeout=30, request_timeout=5, plugins=False,
                               max_workers=2, on_step=lambda i, s: threads.update(
                                   t.name for t in threading.enumerate()))
    outcomes = watcher.results()
    assert all(o.ok and o.status.succeeded for o in outcomes), outcomes
    assert sum(p.polls for p in watcher.pollers) > 6  # some were polled more than once
    assert not any(name.startswith(("opstatus-watch", "opstatus-transport")) for name in threads)
    assert server.connections - before <= 2


def test_a_watcher_refuses_an_untrusted_certificate_without_sending(https_server, good_cert):
    server = https_server(good_cert)
    outcomes = opstatus.Watcher(["/operations/op-1", "/operations/op-2"],
                                endpoint=server.endpoint(), key=server.sim.key, timeout=30,
                                request_timeout=2, plugins=False,
                                policy=opstatus.RetryPolicy(max_errors=0)).results()
    assert all(isinstance(o.error, opstatus.NetworkError) and not o.error.sent
               for o in outcomes)
    assert server.sim.requests == []
