"""What bench_poll.py and bench_many.py share: ``opstatus serve`` in a child
process that counts the TCP connections it accepts and the requests it
parses, and the CPU time of a process.

Not a benchmark: the scripts import it. The simulator runs in a process of
its own so that its CPU time is not the client's, and so that a benchmark
can say which of the two processes was the bottleneck. Counting is done by
wrapping two standard-library methods in the child before ``opstatus.main``
starts the server (``socketserver.TCPServer.get_request``: one call per
accepted connection; ``http.server.BaseHTTPRequestHandler.parse_request``:
one call per request), so it needs nothing from opstatus's internals. The
counts are read through a second listening socket of the child (one JSON
line per connection to it), never through the simulator's own port, so
that reading them opens no connection that would be counted.

Linux for the CPU figures (/proc); Python 3.7+.
"""

from __future__ import print_function

import json
import os
import socket
import subprocess
import sys
import tempfile
import time

try:
    from . import _common
except ImportError:
    import _common

REPO_ROOT = _common.REPO_ROOT

#: The child: counters wrapped around two stdlib methods, a stats listener,
#: then ``opstatus serve`` with the arguments given.
_SERVE_COUNTING = r"""
import collections, http.server, json, socket, socketserver, sys, threading
sys.path.insert(0, %(root)r)
counts = {"accepted": 0, "requests": collections.Counter()}

_get_request = socketserver.TCPServer.get_request
def get_request(self):
    pair = _get_request(self)
    counts["accepted"] += 1
    return pair
socketserver.TCPServer.get_request = get_request

_parse_request = http.server.BaseHTTPRequestHandler.parse_request
def parse_request(self):
    ok = _parse_request(self)
    if ok:
        counts["requests"][self.command] += 1
    return ok
http.server.BaseHTTPRequestHandler.parse_request = parse_request

stats = socket.socket()
stats.bind(("127.0.0.1", 0))
stats.listen(8)
def answer_stats():
    while True:
        conn, _ = stats.accept()
        with conn:
            conn.sendall((json.dumps({"accepted": counts["accepted"],
                                      "requests": dict(counts["requests"])}) + "\n").encode())
threading.Thread(target=answer_stats, daemon=True).start()
sys.stdout.write("BENCH_STATS_PORT=%%d\n" %% stats.getsockname()[1])
sys.stdout.flush()
import opstatus
sys.exit(opstatus.main(%(argv)r))
"""


def process_cpu_seconds(pid):
    """User + system CPU seconds of process *pid* so far (Linux), or None."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / float(os.sysconf("SC_CLK_TCK"))
    except (OSError, ValueError, IndexError):
        return None


class CountingSimulator(object):
    """``python opstatus.py serve ARGS`` in a child process, counting.

    ``with CountingSimulator(["--take-seconds", "5"]) as sim:`` gives
    :attr:`endpoint`, :attr:`key`, :meth:`stats` (connections accepted and
    requests by method, so far) and :meth:`cpu_seconds` (the child's CPU).
    ``--no-require-objects`` is always added.
    """

    def __init__(self, serve_args=(), idle_timeout=None):
        argv = ["serve", "--no-require-objects"] + list(serve_args)
        if idle_timeout is not None:
            argv += ["--idle-timeout", repr(float(idle_timeout))]
        self.args = [sys.executable, "-c", _SERVE_COUNTING % {"root": REPO_ROOT, "argv": argv}]
        self.proc = None
        self.endpoint = self.key = None
        self.stats_port = None

    @property
    def pid(self):
        return self.proc.pid

    def __enter__(self):
        self._out = tempfile.TemporaryFile(mode="w+")
        self._err = tempfile.TemporaryFile(mode="w+")
        self.proc = subprocess.Popen(self.args, stdout=self._out, stderr=self._err,
                                     stdin=subprocess.DEVNULL, cwd=REPO_ROOT)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            self._out.seek(0)
            for line in self._out.read().splitlines():
                if line.startswith("export OPSTATUS_ENDPOINT="):
                    self.endpoint = line.split("=", 1)[1].strip()
                elif line.startswith("export OPSTATUS_KEY="):
                    self.key = line.split("=", 1)[1].strip()
                elif line.startswith("BENCH_STATS_PORT="):
                    self.stats_port = int(line.split("=", 1)[1])
            if self.endpoint and self.key and self.stats_port:
                return self
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        tail = self.stderr_tail()
        self.__exit__()
        raise RuntimeError("the simulator did not start: %s" % tail)

    def stats(self):
        """{"accepted": connections accepted so far, "requests": {method: n}}."""
        with socket.create_connection(("127.0.0.1", self.stats_port), timeout=10) as s:
            data = b""
            while not data.endswith(b"\n"):
                chunk = s.recv(4096)
                if not chunk:
                    break
                data += chunk
        return json.loads(data.decode())

    def cpu_seconds(self):
        return process_cpu_seconds(self.proc.pid)

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def stderr_tail(self, limit=2000):
        self._err.seek(0)
        return self._err.read()[-limit:]

    def __exit__(self, *exc_info):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self._out.close()
        self._err.close()


def delta(after, before):
    """Connections accepted and requests by method between two stats()."""
    methods = set(after["requests"]) | set(before["requests"])
    return {"accepted": after["accepted"] - before["accepted"],
            "requests": {m: after["requests"].get(m, 0) - before["requests"].get(m, 0)
                         for m in methods}}


class PySpy(object):
    """py-spy sampling this process while a piece of work runs: the stacks
    it saw, as ``[(frames, count)]`` (outermost frame first), by function.

    With *gil* (the default) only the thread holding the GIL is sampled:
    Python code running, not the time spent in C with the GIL released
    (waiting in a socket call, say). A sampler, unlike cProfile, adds no
    cost to each call, so small functions are not inflated. Needs the
    ``py-spy`` program on PATH (``pip install py-spy``) and the right to
    trace this process; :attr:`available` says whether it is there.
    """

    def __init__(self, rate=250, gil=True):
        import shutil

        self.rate = rate
        self.gil = gil
        self.exe = shutil.which("py-spy")
        self.proc = self.path = None
        self.error = None

    @property
    def available(self):
        return self.exe is not None

    def start(self):
        fd, self.path = tempfile.mkstemp(prefix="bench-pyspy-", suffix=".txt")
        os.close(fd)
        argv = [self.exe, "record", "--pid", str(os.getpid()), "--rate", str(self.rate),
                "--nonblocking",
                "--format", "raw", "--function", "--output", self.path]
        if self.gil:
            argv.append("--gil")
        self.proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                     stdin=subprocess.DEVNULL)
        time.sleep(0.7)  # it attaches

    def stop(self):
        """Stop sampling; the stacks seen."""
        import signal

        self.proc.send_signal(signal.SIGINT)
        try:
            _out, err = self.proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            _out, err = self.proc.communicate()
        if self.proc.returncode:
            self.error = err.decode("utf-8", "replace").strip()[-300:]
        stacks = []
        try:
            with open(self.path) as f:
                for line in f:
                    stack, _sep, count = line.rstrip("\n").rpartition(" ")
                    if stack and count.isdigit():
                        stacks.append((stack.split(";"), int(count)))
        finally:
            os.unlink(self.path)
        return stacks


def frame_module(frame):
    """The file of a py-spy frame ``function (file:line)``."""
    return frame.rpartition("(")[2].split(":")[0]


def tally(stacks, skip=()):
    """(total, own by frame, inclusive by frame, own by module) of py-spy
    stacks, leaving out those with a frame containing any of *skip*."""
    own, inclusive, modules = {}, {}, {}
    total = 0
    for frames, count in stacks:
        if any(s in f for s in skip for f in frames):
            continue
        total += count
        leaf = frames[-1]
        own[leaf] = own.get(leaf, 0) + count
        module = frame_module(leaf)
        modules[module] = modules.get(module, 0) + count
        for frame in set(frames):
            inclusive[frame] = inclusive.get(frame, 0) + count
    return total, own, inclusive, modules
