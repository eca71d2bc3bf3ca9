"""Test helpers shared by the core's tests (``tests/``) and the plugins'
tests (``plugins/*/tests``): a fake clock, a simulator that runs on it,
loopback HTTP servers, and the fixtures built on them.

``tests/conftest.py`` imports its names from here. A plugin's
``tests/conftest.py`` puts this folder on ``sys.path`` (the checkout's
``tests/``, found from its own path) and imports the fixtures it uses, so a
plugin's tests run alone (``python -m pytest plugins/opstatus-budget/tests``)
or beside the others (tox's ``plugins`` env). Fixtures count only where a
conftest imports them: nothing here is autouse by itself.

Nothing is mocked: servers are real, on 127.0.0.1 port 0; time is injected.
"""

import collections
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

import opstatus

#: A finished take, as the service's operation document says it.
SUCCEEDED = {"status": "succeeded", "createdTime": "2026-01-01T00:00:00Z",
             "lastActionTime": "2026-01-01T00:00:01Z", "resourceLocation": "/snapshots/abc"}


###############################################################################
# Time
###############################################################################


class FakeClock:
    """Monotonic seconds that move only when told to.

    ``clock()`` reads it; ``clock.sleep(s)`` advances it by *s* and records
    *s* in :attr:`sleeps` (pass it as a poller's ``sleep=``);
    ``clock.advance(s)`` moves it without recording a sleep. Thread-safe (a
    Watcher's threads sleep on one clock). For wall-clock POSIX seconds,
    start it there: ``FakeClock(1767225600.0)``.
    """

    def __init__(self, start=1000.0):
        self.now = float(start)
        self.sleeps = []
        self._lock = threading.Lock()

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        assert seconds >= 0, "negative sleep %r" % (seconds,)
        with self._lock:
            self.sleeps.append(seconds)
            self.now += seconds

    def advance(self, seconds):
        with self._lock:
            self.now += seconds

    @property
    def slept(self):
        return sum(self.sleeps)


def fake_time(clock, rand=0.5):
    """The keyword arguments that put a poller on *clock*."""
    return {"clock": clock, "sleep": clock.sleep, "random": lambda: rand}


###############################################################################
# The simulator
###############################################################################


def take(sim, object_id="pg", **options):
    """Start a take of PersonGroup *object_id* on *sim*; its Operation-Location.
    *options* go to :func:`opstatus.take_snapshot` (``plugins=False`` unless
    given)."""
    options.setdefault("plugins", False)
    return opstatus.take_snapshot(sim.endpoint, sim.key, object_type="PersonGroup",
                                  object_id=object_id, apply_scope=[sim.subscription],
                                  **options)


def gets(sim):
    """The paths of the GETs *sim* received, in order."""
    return [path for method, path in list(sim.requests) if method == "GET"]


class ConnectionCounter:
    """Counts the TCP connections a simulator accepts and closes, by wrapping
    its server's ``get_request`` / ``shutdown_request`` (both looked up on the
    instance by ``socketserver``)."""

    def __init__(self, sim):
        self._lock = threading.Lock()
        self.accepted = 0
        self.closed = 0
        server = sim._server
        get_request, shutdown_request = server.get_request, server.shutdown_request

        def counting_get_request():
            pair = get_request()
            with self._lock:
                self.accepted += 1
            return pair

        def counting_shutdown_request(request):
            try:
                shutdown_request(request)
            finally:
                with self._lock:
                    self.closed += 1

        server.get_request = counting_get_request
        server.shutdown_request = counting_shutdown_request

    def reset(self):
        with self._lock:
            self.accepted = self.closed = 0

    @property
    def open(self):
        with self._lock:
            return self.accepted - self.closed

    def wait_closed(self, bound=1.0):
        """Wait up to *bound* seconds for every connection to close; returns
        how many are still open."""
        deadline = time.monotonic() + bound
        while self.open > 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        return self.open


###############################################################################
# Loopback servers
###############################################################################


class ServerThread:
    """Base of a loopback test server: :meth:`_run_in_thread` runs an
    ``http.server`` server in a thread. Its ``get_request`` must append each
    socket it accepts to ``self._socks`` under ``self._lock``, so that
    :meth:`stop` can unblock a handler stuck in a read."""

    def _run_in_thread(self, httpd):
        self.httpd = httpd
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever,
                                       kwargs={"poll_interval": 0.02}, daemon=True)
        self.thread.start()

    def stop(self):
        self.httpd.shutdown()
        with self._lock:
            socks = list(self._socks)
        for sock in socks:
            try:  # the raw socket (of a TLS one too): unblocks a handler stuck in a read
                socket.socket.shutdown(sock, socket.SHUT_RDWR)
            except OSError:
                pass
        self.httpd.server_close()
        self.thread.join(5)


def stopping(make):
    """The body of a fixture that hands out servers: yields ``start(*args,
    **kwargs)``, which returns ``make(*args, **kwargs)``; every server it made
    is stopped when the test ends. Use as ``yield from stopping(Server)``."""
    servers = []

    def start(*args, **kwargs):
        server = make(*args, **kwargs)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


#: One request a :class:`LoopbackServer` received: ``requestline``,
#: ``method``, ``path``, ``headers`` (names lower-cased), ``body`` (bytes),
#: ``port`` (the client's: one port, one connection).
Exchange = collections.namedtuple("Exchange", "requestline method path headers body port")


class LoopbackServer(ServerThread):
    """An HTTP/1.1 server on 127.0.0.1 (port 0), for a test that scripts the
    answers: ``respond(handler)`` answers every request, whatever its method
    (the request's body is read already: ``handler.body``); :attr:`seen`
    records each as an :class:`Exchange`, before it is answered.

    With *ssl_context* (a server-side ``ssl.SSLContext``) it speaks TLS. A
    context manager: it serves from ``with`` (or :meth:`start`) until
    :meth:`stop`, which sets :attr:`release` (what a slow ``respond`` waits
    on), unblocks handlers stuck in a read and joins their threads. An
    exception in a handler (a client that hung up, say) is kept in
    :attr:`errors`, not printed."""

    def __init__(self, respond, ssl_context=None):
        self.respond = respond
        self.seen = []
        self.errors = []
        self.release = threading.Event()
        self.tls = ssl_context is not None
        self._socks = []
        self._lock = threading.Lock()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True

            def log_message(self, format, *args):
                pass

            def _any(self):
                length = int(self.headers.get("Content-Length") or 0)
                self.body = self.rfile.read(length) if length else b""
                with owner._lock:
                    owner.seen.append(Exchange(
                        self.requestline, self.command, self.path,
                        {k.lower(): v for k, v in self.headers.items()}, self.body,
                        self.client_address[1]))
                owner.respond(self)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _any

        class Server(ThreadingHTTPServer):
            daemon_threads = False  # server_close() joins the handler threads

            def get_request(self):
                sock, addr = self.socket.accept()
                with owner._lock:
                    owner._socks.append(sock)
                return sock, addr

            def handle_error(self, request, client_address):
                import sys

                owner.errors.append(sys.exc_info()[1])

        self.httpd = Server(("127.0.0.1", 0), Handler)
        if ssl_context is not None:
            self.httpd.socket = ssl_context.wrap_socket(self.httpd.socket, server_side=True)
        self.port = self.httpd.server_address[1]

    def start(self):
        self._run_in_thread(self.httpd)
        return self

    def stop(self):
        self.release.set()
        super().stop()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc_info):
        self.stop()

    def url(self, path="/face/v1.0/operations/op1", scheme=None):
        """The URL of *path* here (https when it speaks TLS, unless *scheme*)."""
        scheme = scheme or ("https" if self.tls else "http")
        return "%s://127.0.0.1:%d%s" % (scheme, self.port, path)


def send_json(handler, status=200, doc=SUCCEEDED, headers=()):
    """Answer *handler*'s request with *doc* as JSON (and *headers*)."""
    import json

    body = json.dumps(doc).encode("utf-8")
    handler.send_response(status)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Content-Length", str(len(body)))
    for name, value in headers:
        handler.send_header(name, value)
    handler.end_headers()
    handler.wfile.write(body)


###############################################################################
# Fixtures (a conftest imports those it wants)
###############################################################################


@pytest.fixture(autouse=True)
def _objects_need_not_exist(request, monkeypatch):
    """Since issue 14 a take of an object that was never created is a 404, as
    on the service. The tests of polling, plugins, resuming, the command line
    and the like take made-up objectIds: for them a :class:`opstatus.Simulator`
    keeps the permissive default (``require_objects=False``) unless a test
    asks otherwise. ``tests/test_simulator*.py`` run with the real default."""
    if request.module.__name__.startswith("test_simulator"):
        return
    init = opstatus.Simulator.__init__

    def permissive_init(self, *args, **kwargs):
        kwargs.setdefault("require_objects", False)
        init(self, *args, **kwargs)

    monkeypatch.setattr(opstatus.Simulator, "__init__", permissive_init)


@pytest.fixture
def fake_clock():
    return FakeClock()


@pytest.fixture
def clock(fake_clock):
    """The test's :class:`FakeClock`: the same one as *fake_clock* (the
    clock *sim* runs on)."""
    return fake_clock


@pytest.fixture
def sim(request, fake_clock):
    """A started :class:`opstatus.Simulator` on *fake_clock*.

    Options go through indirect parametrisation::

        @pytest.mark.parametrize("sim", [{"dialect": "2019"}], indirect=True)
    """
    options = dict(getattr(request, "param", None) or {})
    simulator = opstatus.Simulator(clock=fake_clock, **options).start()
    try:
        yield simulator
    finally:
        simulator.stop()


@pytest.fixture
def pm():
    """A fresh plugin manager (the specs and the built-in plugin only)."""
    return opstatus.make_plugin_manager()


@pytest.fixture(scope="session", autouse=True)
def _no_thread_left_behind():
    """The suite leaves no thread, server or poller running (scenario 21):
    whatever a test started must be gone shortly after the last test."""
    before = set(threading.enumerate())
    yield
    deadline = time.monotonic() + 5.0
    while time.monotonic() < deadline:
        left = [t for t in threading.enumerate() if t not in before and t.is_alive()]
        if not left:
            return
        time.sleep(0.05)
    raise AssertionError("threads left running after the suite: %s"
                         % sorted(t.name for t in left))
