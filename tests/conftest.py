"""Shared test set-up: make the one-file module importable from the repo root,
and give tests a fake clock, a simulator that runs on it, and the plumbing of
the loopback servers some test files script.

``python -m pytest`` from the repo root already has it on ``sys.path``; the
bare ``pytest`` command does not, so the root is put first here.
"""

import os
import socket
import sys
import threading
import time

import pytest

# tox's nopluggy env: pytest itself needs pluggy, so it is installed; hide it
# from opstatus (an import of it fails) so that the suite runs as without it.
if os.environ.get("OPSTATUS_TEST_HIDE_PLUGGY"):
    sys.modules["pluggy"] = None

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

import opstatus  # noqa: E402  (after the sys.path fix above)


class FakeClock:
    """Monotonic seconds that move only when told to.

    ``clock()`` reads it; ``clock.sleep(s)`` advances it by *s* and records
    *s* in :attr:`sleeps` (pass it as a poller's ``sleep=``);
    ``clock.advance(s)`` moves it without recording a sleep.
    """

    def __init__(self, start=1000.0):
        self.now = float(start)
        self.sleeps = []

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        assert seconds >= 0, "negative sleep %r" % (seconds,)
        self.sleeps.append(seconds)
        self.now += seconds

    def advance(self, seconds):
        self.now += seconds

    @property
    def slept(self):
        return sum(self.sleeps)


def fake_time(clock, rand=0.5):
    """The keyword arguments that put a poller on *clock*."""
    return {"clock": clock, "sleep": clock.sleep, "random": lambda: rand}


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


def take(sim, object_id="pg"):
    """Start a take of PersonGroup *object_id* on *sim*; its Operation-Location."""
    return opstatus.take_snapshot(sim.endpoint, sim.key, object_type="PersonGroup",
                                  object_id=object_id, apply_scope=[sim.subscription],
                                  plugins=False)


def gets(sim):
    """The paths of the GETs *sim* received, in order."""
    return [path for method, path in list(sim.requests) if method == "GET"]


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


@pytest.fixture(scope="session", autouse=True)
def _no_thread_left_behind():
    """The suite leaves no thread, server or poller running (scenario 21):
    whatever a test started must be gone shortly after the last test."""
    import threading
    import time

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
