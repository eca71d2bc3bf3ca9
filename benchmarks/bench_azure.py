"""opstatus beside azure-core's LROPoller, against the same opstatus.Simulator.

Run from the repository root::

    python benchmarks/bench_azure.py           # 15 imports, 300 polls, 1,000 operations
    python benchmarks/bench_azure.py --quick   # 5 imports, 100 polls, 200 operations

Needs azure-core (``pip install -r benchmarks/requirements.txt``); without it
only opstatus's own figures are printed. The simulator runs in a separate
process (``python opstatus.py serve``, real loopback HTTP) and each client
measurement runs in a fresh child process of its own, so that the figures are
the client's alone: its CPU time, its threads, its memory, its imports.

1. Import cost: ``import opstatus`` against ``import azure.core.polling``,
   timed with ``time.perf_counter`` around the import inside ``python -c``,
   median (min-max) of N fresh interpreters after one warm-up run. opstatus
   is imported from a temporary copy of this checkout's opstatus.py with its
   .pyc compiled beside it, as an installed package has it (azure-core's
   come from pip). More rows, for information: the modules each needs to
   poll over TLS (opstatus: http.client, json, ssl; azure-core:
   base_polling and RequestsTransport, which brings requests), those plus
   the first client object (``Poller(...)``, which sets up the pluggy plugin
   manager when pluggy is installed; a ``PipelineClient`` configured as a
   generated SDK client), and opstatus imported without any .pyc (compiled
   at each import: a checkout under PYTHONDONTWRITEBYTECODE=1).
2. Client CPU per poll: an operation that never ends
   (``serve --take-seconds 1000000``) polled back to back, no waiting
   (opstatus: ``RetryPolicy(floor=0, cap=0)``; azure-core: ``LROBasePolling``
   with polling interval 0 behind an ``LROPoller``, over a ``PipelineClient``
   with the standard policies of a generated SDK client and the key in an
   ``AzureKeyCredentialPolicy``). ``time.process_time()`` over N polls after
   a warm-up; TCP connections opened are counted by wrapping
   ``socket.socket.connect``.
3. Many operations at once: N snapshots taken against a simulator with
   ``--take-seconds 3`` (queue 0.3 s), then watched to the end: opstatus
   ``Watcher`` (default workers) against one ``LROPoller`` per operation over
   one shared ``PipelineClient`` (azure-core's default 30 s interval, and,
   for information, 1 s). Peak threads (sampled every 5 ms, the sampler
   excluded), wall time, detection lag of the last operation (all done minus
   the end of the last operation to end, which is its 202 plus 3.3 s), peak
   RSS growth (VmHWM, reset through /proc/self/clear_refs) in one child
   run, and peak Python allocations (tracemalloc) in a second child run, so
   that tracemalloc's overhead does not touch the timings. Both count from
   before the first POST, after a warm-up (one take and two polls, so that
   lazy imports and first-use set-up stay out). GETs sent and TCP
   connections opened are shown too.

The simulator process turns Nagle's algorithm off on its sockets (a
stdlib class attribute set before ``opstatus.main(["serve", ...])``): it
writes each answer's headers and body in two sends, so with Nagle on every
request waits ~40 ms for the client's delayed ACK. ``--sim-as-shipped``
runs it untouched.

Targets, printed and never asserted: import <= 1/8 of azure-core's; CPU per
poll <= 1/2; many operations: all done within 2 s of the last operation's
end, threads <= 16, peak memory <= 1/4 (tracemalloc).

Linux for the memory and thread figures (/proc); Python 3.7+.
"""

from __future__ import print_function

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time

try:  # puts the opstatus.py of this checkout first on sys.path
    from . import _common  # imported as benchmarks.<name>
except ImportError:
    import _common  # run as a script, or imported with benchmarks/ on sys.path

import opstatus  # noqa: E402

REPO_ROOT = _common.REPO_ROOT
THIS_FILE = os.path.abspath(__file__)
OPSTATUS_FILE = os.path.join(REPO_ROOT, "opstatus.py")

IMPORT_RUNS, QUICK_IMPORT_RUNS = 15, 5
POLLS, QUICK_POLLS = 300, 100
WARMUP_POLLS = 10
MANY, QUICK_MANY = 1000, 200

#: The many-operations simulator: queue and take seconds of each operation.
QUEUE_SECONDS = 0.3
TAKE_SECONDS = 3.0

#: A subscription id for applyScope (the simulator checks its form only).
SCOPE = "00000000-0000-0000-0000-000000000000"

#: Longest a child measurement may run, in seconds.
CHILD_TIMEOUT = 150.0

#: Targets: (ratio opstatus / azure-core at most).
TARGET_IMPORT = 1 / 8.0
TARGET_CPU = 1 / 2.0
TARGET_MEMORY = 1 / 4.0
TARGET_THREADS = 16
TARGET_LAG = 2.0


def azure_version():
    """azure-core's version, or None when it cannot be imported."""
    try:
        import azure.core
        import azure.core.polling  # noqa: F401
    except Exception:
        return None
    return _common.distribution_version("azure-core", azure.core)


###############################################################################
# The simulator process


_SERVE_NODELAY = (
    "import socketserver, sys; sys.path.insert(0, %r); "
    "socketserver.StreamRequestHandler.disable_nagle_algorithm = True; "
    "import opstatus; sys.exit(opstatus.main(%r))"
)


class SimulatorProcess(object):
    """``python opstatus.py serve`` in a child process; its endpoint and key."""

    def __init__(self, take_seconds, queue_seconds=QUEUE_SECONDS, nodelay=True):
        serve = ["serve", "--take-seconds", repr(take_seconds), "--queue-seconds",
                 repr(queue_seconds), "--no-require-objects"]
        if nodelay:
            # The simulator writes the headers and the body of each answer in
            # two send()s; with Nagle's algorithm on, the body then waits for
            # the client's delayed ACK (~40 ms on Linux) and every request
            # takes that long. Turned off here (a stdlib class attribute, set
            # in the simulator's process only) unless --sim-as-shipped.
            self.args = [sys.executable, "-c", _SERVE_NODELAY % (REPO_ROOT, serve)]
        else:
            self.args = [sys.executable, OPSTATUS_FILE] + serve
        self.proc = None
        self.endpoint = self.key = None

    def __enter__(self):
        self._out = tempfile.TemporaryFile(mode="w+")
        self._err = tempfile.TemporaryFile(mode="w+")
        self.proc = subprocess.Popen(self.args, stdout=self._out, stderr=self._err,
                                     stdin=subprocess.DEVNULL, cwd=REPO_ROOT)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            self._out.seek(0)
            for line in self._out.read().splitlines():
                if line.startswith("export OPSTATUS_ENDPOINT="):
                    self.endpoint = line.split("=", 1)[1].strip()
                elif line.startswith("export OPSTATUS_KEY="):
                    self.key = line.split("=", 1)[1].strip()
            if self.endpoint and self.key:
                return self
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        self.__exit__()
        raise RuntimeError("the simulator did not start: %s" % self.stderr_tail())

    def stderr_tail(self, limit=2000):
        self._err.seek(0)
        return self._err.read()[-limit:]

    def cpu_seconds(self):
        """User + system CPU time of the simulator so far (Linux), or None."""
        try:
            with open("/proc/%d/stat" % self.proc.pid) as f:
                fields = f.read().rsplit(")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) / float(os.sysconf("SC_CLK_TCK"))
        except Exception:
            return None

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


###############################################################################
# Child measurements (each in a fresh process)


class _Connects(object):
    """Counts TCP connections opened, by wrapping socket.socket.connect."""

    def __init__(self):
        import socket

        self.count = 0
        original = socket.socket.connect
        counter = self

        def connect(sock, address):
            counter.count += 1
            return original(sock, address)

        socket.socket.connect = connect


def _proc_status():
    """{field: value} of /proc/self/status (Linux), else {}."""
    try:
        with open("/proc/self/status") as f:
            return dict(line.split(":", 1) for line in f if ":" in line)
    except OSError:
        return {}


def _kib(value):
    return int(value.split()[0]) if value else None


class _ThreadSampler(threading.Thread):
    """Samples the process's thread count every 5 ms (itself excluded)."""

    def __init__(self):
        threading.Thread.__init__(self, name="bench-sampler", daemon=True)
        self.peak_python = 0
        self.peak_os = 0
        self._halt = threading.Event()

    def run(self):
        while not self._halt.is_set():
            self.sample()
            self._halt.wait(0.005)

    def sample(self):
        self.peak_python = max(self.peak_python, threading.active_count() - 1)
        threads = _proc_status().get("Threads")
        if threads:
            self.peak_os = max(self.peak_os, int(threads) - 1)

    def stop(self):
        self._halt.set()
        self.join()
        self.sample()


def _azure_client(endpoint, key):
    """A PipelineClient set up as a generated Azure SDK client sets it up."""
    from azure.core import PipelineClient
    from azure.core.configuration import Configuration
    from azure.core.credentials import AzureKeyCredential
    from azure.core.pipeline import policies

    config = Configuration()
    config.headers_policy = policies.HeadersPolicy()
    config.user_agent_policy = policies.UserAgentPolicy(sdk_moniker="bench-face/1.0")
    config.proxy_policy = policies.ProxyPolicy()
    config.redirect_policy = policies.RedirectPolicy()
    config.retry_policy = policies.RetryPolicy()
    config.custom_hook_policy = policies.CustomHookPolicy()
    config.logging_policy = policies.NetworkTraceLoggingPolicy()
    config.http_logging_policy = policies.HttpLoggingPolicy()
    config.authentication_policy = policies.AzureKeyCredentialPolicy(
        AzureKeyCredential(key), opstatus.KEY_HEADER)
    return PipelineClient(base_url="{endpoint}/face/v1.0", config=config)


def _azure_take(client, endpoint, object_id):
    """POST /snapshots through *client*: the PipelineResponse of the 202."""
    from azure.core.rest import HttpRequest

    request = HttpRequest("POST", client.format_url("/snapshots", endpoint=endpoint),
                          json={"type": "PersonGroup", "objectId": object_id,
                                "applyScope": [SCOPE]})
    response = client.send_request(request, _return_pipeline_response=True)
    if response.http_response.status_code != 202:
        raise RuntimeError("take answered %d" % response.http_response.status_code)
    return response


def _json_body(pipeline_response):
    return pipeline_response.http_response.json()


def child_cpu_opstatus(spec):
    connects = _Connects()
    endpoint, key = spec["endpoint"], spec["key"]
    location = opstatus.take_snapshot(endpoint, key, object_type="PersonGroup",
                                      object_id="cpu", apply_scope=[SCOPE], allow_http=True)
    options = {} if spec.get("plugins", True) else {"plugins": False}
    poller = opstatus.Poller(location, endpoint=endpoint, key=key, allow_http=True,
                             timeout=None, policy=opstatus.RetryPolicy(floor=0.0, cap=0.0),
                             **options)
    warmup, polls = spec["warmup"], spec["polls"]
    marks = {}
    for status in poller:
        if poller.polls == warmup:
            marks["start"] = (time.process_time(), time.perf_counter(), connects.count)
        if poller.polls == warmup + polls:
            marks["end"] = (time.process_time(), time.perf_counter(), connects.count)
            break
        if status.is_terminal:
            raise RuntimeError("the operation ended")
    poller.close()
    (c0, w0, n0), (c1, w1, n1) = marks["start"], marks["end"]
    return {"polls": polls, "cpu": c1 - c0, "wall": w1 - w0, "connects": n1 - n0,
            "connects_total": connects.count, "status": status.status.value}


def child_cpu_azure(spec):
    from azure.core.polling import LROPoller
    from azure.core.polling.base_polling import LROBasePolling

    connects = _Connects()
    endpoint, key = spec["endpoint"], spec["key"]
    warmup, polls = spec["warmup"], spec["polls"]
    marks = {}

    class Enough(Exception):
        pass

    class CountingPolling(LROBasePolling):
        count = 0

        def update_status(self):
            LROBasePolling.update_status(self)
            self.count += 1
            if self.count == warmup:
                marks["start"] = (time.process_time(), time.perf_counter(), connects.count)
            if self.count == warmup + polls:
                marks["end"] = (time.process_time(), time.perf_counter(), connects.count)
                marks["status"] = self.status()
                raise Enough()

    client = _azure_client(endpoint, key)
    initial = _azure_take(client, endpoint, "cpu")
    method = CountingPolling(timeout=0, path_format_arguments={"endpoint": endpoint})
    poller = LROPoller(client, initial, _json_body, method)
    try:
        poller.wait(CHILD_TIMEOUT)
    except Enough:
        pass
    client.close()
    (c0, w0, n0), (c1, w1, n1) = marks["start"], marks["end"]
    return {"polls": polls, "cpu": c1 - c0, "wall": w1 - w0, "connects": n1 - n0,
            "connects_total": connects.count, "status": marks["status"]}


class _Many(object):
    """Shared set-up of the many-operations children: baseline, samplers."""

    def __init__(self, spec, warm):
        import gc

        self.spec = spec
        self.connects = _Connects()
        warm()  # lazy imports and first-use set-up stay out of the figures
        self.trace = spec.get("tracemalloc", False)
        gc.collect()
        self.rss0 = _kib(_proc_status().get("VmRSS"))
        try:
            with open("/proc/self/clear_refs", "w") as f:
                f.write("5")  # resets VmHWM to the current RSS
            self.hwm_reset = True
        except OSError:
            self.hwm_reset = False
        if self.trace:
            import tracemalloc

            tracemalloc.start()
        self.sampler = _ThreadSampler()
        self.sampler.start()

    def finish(self, result, first_post, post_times, done_times, t_end, failures,
               start_errors):
        self.sampler.stop()
        op_seconds = self.spec["op_seconds"]
        status = _proc_status()
        lags = [d - (p + op_seconds) for p, d in zip(post_times, done_times)]
        last_end = max(post_times) + op_seconds
        result.update({
            "n": len(post_times),
            "failures": len(failures),
            "start_errors": len(start_errors),
            "first_error": (start_errors + failures)[:1],
            "threads": self.sampler.peak_python,
            "os_threads": self.sampler.peak_os,
            "connects": self.connects.count,
            "wall": t_end - first_post,
            "starting": max(post_times) - first_post,
            "last_end": last_end - first_post,
            "lag_all": t_end - last_end,
            "lag_mean": sum(lags) / len(lags),
            "lag_max": max(lags),
            "rss0_kib": self.rss0,
            "hwm_kib": _kib(status.get("VmHWM")) if self.hwm_reset else None,
        })
        if self.trace:
            import tracemalloc

            current, peak = tracemalloc.get_traced_memory()
            tracemalloc.stop()
            result["traced_peak"] = peak
        return result


def _warm_opstatus(endpoint, key):
    """One take and two polls: the request path's lazy imports, the plugin
    manager, and what Watcher imports on first use."""
    import concurrent.futures  # noqa: F401
    import heapq  # noqa: F401

    location = opstatus.take_snapshot(endpoint, key, object_type="PersonGroup",
                                      object_id="warm", apply_scope=[SCOPE], allow_http=True)
    poller = opstatus.Poller(location, endpoint=endpoint, key=key, allow_http=True,
                             timeout=None, policy=opstatus.RetryPolicy(floor=0.0, cap=0.0))
    for _status in poller:
        if poller.polls >= 2:
            break
    poller.close()


def _warm_azure(client, endpoint):
    """One take and two polls through an LROPoller, as _warm_opstatus."""
    from azure.core.polling import LROPoller
    from azure.core.polling.base_polling import LROBasePolling

    class Enough(Exception):
        pass

    class TwoPolls(LROBasePolling):
        count = 0

        def update_status(self):
            LROBasePolling.update_status(self)
            self.count += 1
            if self.count >= 2:
                raise Enough()

    poller = LROPoller(client, _azure_take(client, endpoint, "warm"), _json_body,
                       TwoPolls(timeout=0, path_format_arguments={"endpoint": endpoint}))
    try:
        poller.wait(30)
    except Enough:
        pass


def child_many_opstatus(spec):
    endpoint, key, n = spec["endpoint"], spec["key"], spec["n"]
    run = _Many(spec, lambda: _warm_opstatus(endpoint, key))
    first_post = time.time()
    locations, post_times, start_errors = [], [], []
    for i in range(n):
        try:
            locations.append(opstatus.take_snapshot(
                endpoint, key, object_type="PersonGroup", object_id="os-%d" % i,
                apply_scope=[SCOPE], allow_http=True))
        except Exception as exc:  # counted and reported, the others go on
            start_errors.append("%s: %s" % (type(exc).__name__, exc))
            continue
        post_times.append(time.time())
    done_times = [None] * len(locations)
    failures = []
    watcher = opstatus.Watcher(locations, endpoint=endpoint, key=key, allow_http=True,
                               timeout=CHILD_TIMEOUT - 30)
    for outcome in watcher:
        done_times[outcome.index] = time.time()
        if not outcome.ok or not outcome.status.succeeded:
            failures.append("%s: %s" % (type(outcome.error).__name__, outcome.error))
    t_end = time.time()
    polls = sum(p.polls for p in watcher.pollers)
    result = {"polls": polls, "workers": watcher.max_workers}
    return run.finish(result, first_post, post_times, done_times, t_end, failures,
                      start_errors)


def child_many_azure(spec):
    from azure.core.polling import LROPoller
    from azure.core.polling.base_polling import LROBasePolling

    endpoint, key, n = spec["endpoint"], spec["key"], spec["n"]
    client = _azure_client(endpoint, key)
    run = _Many(spec, lambda: _warm_azure(client, endpoint))
    interval = spec.get("interval")
    counts = {"polls": 0}
    lock = threading.Lock()

    class CountingPolling(LROBasePolling):
        def request_status(self, status_link):
            with lock:
                counts["polls"] += 1
            return LROBasePolling.request_status(self, status_link)

    first_post = time.time()
    pollers, post_times, start_errors = [], [], []
    done_times = {}

    def on_done(index):
        def callback(_method):
            done_times[index] = time.time()
        return callback

    options = {} if interval is None else {"timeout": interval}
    for i in range(n):
        try:
            initial = _azure_take(client, endpoint, "az-%d" % i)
        except Exception as exc:  # counted and reported, the others go on
            start_errors.append("%s: %s" % (type(exc).__name__, exc))
            continue
        post_times.append(time.time())
        method = CountingPolling(path_format_arguments={"endpoint": endpoint}, **options)
        poller = LROPoller(client, initial, _json_body, method)
        poller.add_done_callback(on_done(len(pollers)))
        pollers.append(poller)
    failures = []
    deadline = time.monotonic() + CHILD_TIMEOUT - 30
    for i, poller in enumerate(pollers):
        try:
            poller.result(max(0.0, deadline - time.monotonic()))
            if not poller.done():
                failures.append("not done in time")
        except Exception as exc:
            failures.append("%s: %s" % (type(exc).__name__, exc))
        if i not in done_times:
            done_times[i] = time.time()
    done_list = [done_times[i] for i in range(len(pollers))]
    result = {"polls": counts["polls"],
              "interval": method._timeout if pollers else interval}
    result = run.finish(result, first_post, post_times, done_list, max(done_list), failures,
                        start_errors)
    client.close()
    return result


CHILDREN = {
    "cpu-opstatus": child_cpu_opstatus,
    "cpu-azure": child_cpu_azure,
    "many-opstatus": child_many_opstatus,
    "many-azure": child_many_azure,
}


def run_child(spec):
    """Run one measurement in a fresh interpreter; its result dict."""
    with tempfile.TemporaryFile(mode="w+") as err:
        try:
            proc = subprocess.run([sys.executable, THIS_FILE, "--child", json.dumps(spec)],
                                  stdout=subprocess.PIPE, stderr=err, stdin=subprocess.DEVNULL,
                                  universal_newlines=True, timeout=CHILD_TIMEOUT, cwd=REPO_ROOT)
        except subprocess.TimeoutExpired:
            return {"error": "timed out after %g s" % CHILD_TIMEOUT}
        err.seek(0)
        stderr = err.read()
    lines = proc.stdout.strip().splitlines()
    if proc.returncode != 0 or not lines:
        return {"error": "exit %d: %s" % (proc.returncode, stderr.strip()[-800:])}
    result = json.loads(lines[-1])
    result["stderr_lines"] = len(stderr.splitlines())
    result["stderr_sample"] = stderr.strip().splitlines()[:1]
    return result


def child_main(spec_text):
    spec = json.loads(spec_text)
    result = CHILDREN[spec["mode"]](spec)
    sys.stdout.write(json.dumps(result) + "\n")
    sys.stdout.flush()
    return 0


###############################################################################
# Import cost

#: _azure_client() as one line of code, for the import rows.
_AZURE_CLIENT_CODE = (
    "from azure.core import PipelineClient; "
    "from azure.core.configuration import Configuration; "
    "from azure.core.credentials import AzureKeyCredential; "
    "from azure.core.pipeline import policies as p; c = Configuration(); "
    "c.headers_policy = p.HeadersPolicy(); "
    "c.user_agent_policy = p.UserAgentPolicy(sdk_moniker='bench-face/1.0'); "
    "c.proxy_policy = p.ProxyPolicy(); c.redirect_policy = p.RedirectPolicy(); "
    "c.retry_policy = p.RetryPolicy(); c.custom_hook_policy = p.CustomHookPolicy(); "
    "c.logging_policy = p.NetworkTraceLoggingPolicy(); "
    "c.http_logging_policy = p.HttpLoggingPolicy(); "
    "c.authentication_policy = p.AzureKeyCredentialPolicy(AzureKeyCredential('k'), "
    "'Ocp-Apim-Subscription-Key'); "
    "PipelineClient(base_url='https://example.invalid/face/v1.0', config=c)"
)

_TIMED_IMPORT = ("import sys, time; sys.path.insert(0, %r); t = time.perf_counter(); %s; "
                 "print(time.perf_counter() - t)")

IMPORTS = (
    # (label, opstatus statement, azure-core statement, is the target row)
    ("`import opstatus` vs `import azure.core.polling`",
     "import opstatus", "import azure.core.polling", True),
    ("+ modules needed to poll over TLS",
     "import opstatus, http.client, json, ssl",
     "import azure.core.polling.base_polling, azure.core.pipeline.transport._requests_basic",
     False),
    ("+ first client object (`Poller(...)` vs SDK `PipelineClient`)",
     "import opstatus, http.client, json, ssl; opstatus.Poller('/operations/x', "
     "endpoint='https://example.invalid', key='k')",
     "import azure.core.polling.base_polling, azure.core.pipeline.transport._requests_basic; "
     + _AZURE_CLIENT_CODE,
     False),
)


class OpstatusCopies(object):
    """Two copies of this checkout's opstatus.py in a temporary folder: one
    with its bytecode compiled beside it (as an installed package has it),
    one without (compiled at each import: a checkout run with
    PYTHONDONTWRITEBYTECODE=1, or a read-only one). The checkout itself is
    left untouched."""

    def __enter__(self):
        import importlib.util
        import py_compile
        import shutil

        self._dir = tempfile.mkdtemp(prefix="bench-azure-")
        self.cached = os.path.join(self._dir, "cached")
        self.source = os.path.join(self._dir, "source")
        for folder in (self.cached, self.source):
            os.mkdir(folder)
            shutil.copy2(OPSTATUS_FILE, os.path.join(folder, "opstatus.py"))
        target = os.path.join(self.cached, "opstatus.py")
        py_compile.compile(target, cfile=importlib.util.cache_from_source(target), doraise=True)
        return self

    def __exit__(self, *exc_info):
        import shutil

        shutil.rmtree(self._dir, ignore_errors=True)


def time_import(statement, runs, path=REPO_ROOT, no_bytecode=False):
    """Median seconds of *statement* in *runs* fresh interpreters (+1 warm-up),
    with *path* first on sys.path."""
    code = _TIMED_IMPORT % (path, statement)
    env = dict(os.environ)
    if no_bytecode:
        env["PYTHONDONTWRITEBYTECODE"] = "1"
    times = []
    for i in range(runs + 1):
        proc = subprocess.run([sys.executable, "-c", code], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, universal_newlines=True, timeout=60,
                              cwd=tempfile.gettempdir(), env=env)
        if proc.returncode != 0:
            raise RuntimeError("%s failed: %s" % (statement, proc.stderr.strip()[-500:]))
        if i:
            times.append(float(proc.stdout.strip().splitlines()[-1]))
    return statistics.median(times), min(times), max(times)


###############################################################################
# Report


def _ms(seconds):
    return "%.1f ms" % (seconds * 1e3) if seconds < 0.1 else "%.0f ms" % (seconds * 1e3)


def _us(seconds):
    return "%.0f us" % (seconds * 1e6)


def _mib(n_bytes):
    return "%.1f MiB" % (n_bytes / 1048576.0)


def _ratio(ours, theirs):
    if ours is None or theirs is None or not theirs:
        return None
    return ours / float(theirs)


def _fmt_ratio(ratio):
    if ratio is None:
        return "n/a"
    return ("%.3fx" if ratio < 0.1 else "%.2fx") % ratio


def _verdict_at_most(value, limit):
    if value is None:
        return "not measured"
    return "pass" if value <= limit else "miss"


def _loadavg():
    try:
        return "%.2f" % os.getloadavg()[0]
    except (AttributeError, OSError):
        return "?"


def header_lines(peer_version, settings, load_start):
    try:
        import pluggy

        plug = "pluggy %s installed (default plugins=None uses it)" % pluggy.__version__
    except ImportError:
        plug = "pluggy not installed"
    try:
        import requests

        req = ", requests %s" % requests.__version__
    except ImportError:
        req = ""
    return [
        _common.python_line() + ", %d CPUs" % (os.cpu_count() or 0),
        "- opstatus %s (%s); %s" % (opstatus.__version__, opstatus.__file__, plug),
        "- peers: azure-core %s%s" % (peer_version or "(not installed)", req),
        "- load average at start / end: %s / %s (other processes skew wall times)"
        % (load_start, _loadavg()),
        "- " + settings,
        "",
    ]


def main(argv=None):
    parser = argparse.ArgumentParser(
        description="opstatus vs azure-core's LROPoller against the same simulator."
    )
    parser.add_argument("--quick", action="store_true",
                        help="%d imports, %d polls, %d operations instead of %d, %d, %d"
                        % (QUICK_IMPORT_RUNS, QUICK_POLLS, QUICK_MANY, IMPORT_RUNS, POLLS, MANY))
    parser.add_argument("--sim-as-shipped", action="store_true",
                        help="run the simulator without turning Nagle's algorithm off "
                        "(each request then waits ~40 ms for a delayed ACK)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        return child_main(args.child)

    import_runs = QUICK_IMPORT_RUNS if args.quick else IMPORT_RUNS
    polls = QUICK_POLLS if args.quick else POLLS
    many = QUICK_MANY if args.quick else MANY
    peer = azure_version()
    load_start = _loadavg()
    started = time.perf_counter()

    def progress(message):
        sys.stderr.write("[%5.1f s] %s\n" % (time.perf_counter() - started, message))
        sys.stderr.flush()

    rows = []
    verdicts = []
    notes = []

    # 1. Import cost --------------------------------------------------------
    with OpstatusCopies() as copies:
        imports = []
        for label, ours_stmt, theirs_stmt, is_target in IMPORTS:
            progress("import: " + ours_stmt.split(";")[0])
            imports.append((label, time_import(ours_stmt, import_runs, copies.cached),
                            time_import(theirs_stmt, import_runs) if peer else None, is_target))
        progress("import: opstatus without bytecode")
        label, ours_stmt, theirs_stmt, _target = IMPORTS[0]
        imports.append(("`import opstatus` without its .pyc vs `import azure.core.polling`",
                        time_import(ours_stmt, import_runs, copies.source, no_bytecode=True),
                        imports[0][2], False))
    for label, ours, theirs, is_target in imports:
        ratio = _ratio(ours[0], theirs[0] if theirs else None)
        target = "<= %s: %s" % (_fmt_ratio(TARGET_IMPORT), _verdict_at_most(
            ratio, TARGET_IMPORT)) if is_target else "(info)"
        if is_target:
            verdicts.append(("import", target))
        rows.append(["import: %s" % label,
                     "%s (%s-%s)" % (_ms(ours[0]), _ms(ours[1]), _ms(ours[2])),
                     "%s (%s-%s)" % (_ms(theirs[0]), _ms(theirs[1]), _ms(theirs[2]))
                     if theirs else "n/a",
                     _fmt_ratio(ratio), target])

    # 2. CPU per poll -------------------------------------------------------
    progress("CPU per poll: simulator with --take-seconds 1000000")
    nodelay = not args.sim_as_shipped
    with SimulatorProcess(take_seconds=1e6, queue_seconds=0.0, nodelay=nodelay) as sim:
        base = {"endpoint": sim.endpoint, "key": sim.key, "polls": polls, "warmup": WARMUP_POLLS}
        results = {}
        for name, spec in (
                ("opstatus", dict(base, mode="cpu-opstatus")),
                ("opstatus-noplugins", dict(base, mode="cpu-opstatus", plugins=False)),
                ("azure", dict(base, mode="cpu-azure") if peer else None)):
            if spec is None:
                continue
            progress("CPU per poll: %s, %d polls" % (name, polls))
            sim_cpu0 = sim.cpu_seconds()
            results[name] = run_child(spec)
            sim_cpu1 = sim.cpu_seconds()
            if sim_cpu0 is not None and sim_cpu1 is not None:
                results[name]["sim_cpu"] = sim_cpu1 - sim_cpu0
    for name, result in results.items():
        if "error" in result:
            notes.append("CPU per poll, %s: %s" % (name, result["error"]))
    ours, theirs = results.get("opstatus", {}), results.get("azure", {})
    if "cpu" in ours:
        per_ours = ours["cpu"] / ours["polls"]
        per_theirs = theirs["cpu"] / theirs["polls"] if "cpu" in theirs else None
        ratio = _ratio(per_ours, per_theirs)
        target = "<= %s: %s" % (_fmt_ratio(TARGET_CPU), _verdict_at_most(ratio, TARGET_CPU))
        verdicts.append(("CPU per poll", target))
        rows.append(["client CPU per poll (%d polls, process_time)" % polls, _us(per_ours),
                     _us(per_theirs) if per_theirs else "n/a", _fmt_ratio(ratio), target])
        rows.append(["wall per poll (client + loopback + simulator)",
                     _us(ours["wall"] / ours["polls"]),
                     _us(theirs["wall"] / theirs["polls"]) if "wall" in theirs else "n/a",
                     _fmt_ratio(_ratio(ours["wall"], theirs.get("wall"))), "(info)"])
        rows.append(["TCP connections opened for those %d polls (after warm-up; in all)"
                     % polls, "%d (%d)" % (ours["connects"], ours["connects_total"]),
                     "%d (%d)" % (theirs["connects"], theirs["connects_total"])
                     if "connects" in theirs else "n/a", "", "(info)"])
        if "sim_cpu" in ours:
            rows.append(["simulator CPU for the whole child run (its polls, warm-up, take)",
                         _ms(ours["sim_cpu"]),
                         _ms(theirs["sim_cpu"]) if "sim_cpu" in theirs else "n/a",
                         "", "(info)"])
        bare = results.get("opstatus-noplugins", {})
        if "cpu" in bare:
            per_bare = bare["cpu"] / bare["polls"]
            rows.append(["client CPU per poll, opstatus with plugins=False", _us(per_bare),
                         _us(per_theirs) if per_theirs else "n/a",
                         _fmt_ratio(_ratio(per_bare, per_theirs)), "(info)"])

    # 3. Many operations ----------------------------------------------------
    progress("many operations: simulator with --take-seconds %g" % TAKE_SECONDS)
    many_results = {}
    with SimulatorProcess(take_seconds=TAKE_SECONDS, nodelay=nodelay) as sim:
        base = {"endpoint": sim.endpoint, "key": sim.key, "n": many,
                "op_seconds": QUEUE_SECONDS + TAKE_SECONDS}
        plans = [("opstatus", dict(base, mode="many-opstatus")),
                 ("opstatus-trace", dict(base, mode="many-opstatus", tracemalloc=True))]
        if peer:
            plans += [("azure", dict(base, mode="many-azure")),
                      ("azure-trace", dict(base, mode="many-azure", tracemalloc=True)),
                      ("azure-1s", dict(base, mode="many-azure", interval=1.0))]
        for name, spec in plans:
            progress("many operations: %s, %d operations" % (name, many))
            many_results[name] = run_child(spec)
        sim_alive = sim.proc.poll() is None
    if not sim_alive:
        notes.append("the simulator process died during the many-operations runs")
    for name, result in many_results.items():
        if "error" in result:
            notes.append("many operations, %s: %s" % (name, result["error"]))
        elif result.get("failures") or result.get("start_errors"):
            notes.append("many operations, %s: %d could not be started, %d of the %d started "
                         "did not succeed; first error: %s"
                         % (name, result["start_errors"], result["failures"], result["n"],
                            result["first_error"][0][:300]))
        if result.get("stderr_lines"):
            notes.append("many operations, %s: %d lines on stderr, first: %s"
                         % (name, result["stderr_lines"], result["stderr_sample"][0][:200]))
    ours = many_results.get("opstatus", {})
    theirs = many_results.get("azure", {})
    fast = many_results.get("azure-1s", {})
    ours_t = many_results.get("opstatus-trace", {})
    theirs_t = many_results.get("azure-trace", {})
    if "wall" in ours:
        label = "%d operations" % many
        az_label = "azure %gs" % theirs["interval"] if "interval" in theirs else "azure"
        rows.append(["%s: wall from first POST to all done (last op ends at %.1f s / %.1f s)"
                     % (label, ours["last_end"], theirs.get("last_end", float("nan"))),
                     "%.1f s" % ours["wall"],
                     "%.1f s" % theirs["wall"] if "wall" in theirs else "n/a",
                     _fmt_ratio(_ratio(ours["wall"], theirs.get("wall"))), "(info)"])
        target = "<= %g s: %s" % (TARGET_LAG, _verdict_at_most(ours["lag_all"], TARGET_LAG))
        verdicts.append(("all done after the last op's end", target))
        rows.append(["%s: all done after the last operation's end" % label,
                     "%.2f s" % ours["lag_all"],
                     "%.2f s" % theirs["lag_all"] if "lag_all" in theirs else "n/a",
                     _fmt_ratio(_ratio(ours["lag_all"], theirs.get("lag_all"))), target])
        rows.append(["%s: detection lag per operation, mean / worst" % label,
                     "%.2f s / %.2f s" % (ours["lag_mean"], ours["lag_max"]),
                     "%.2f s / %.2f s" % (theirs["lag_mean"], theirs["lag_max"])
                     if "lag_mean" in theirs else "n/a",
                     _fmt_ratio(_ratio(ours["lag_mean"], theirs.get("lag_mean"))), "(info)"])
        target = "<= %d: %s" % (TARGET_THREADS, _verdict_at_most(ours["threads"],
                                                                  TARGET_THREADS))
        verdicts.append(("threads", target))
        rows.append(["%s: peak threads, Python (OS)" % label,
                     "%d (%d)" % (ours["threads"], ours["os_threads"]),
                     "%d (%d)" % (theirs["threads"], theirs["os_threads"])
                     if "threads" in theirs else "n/a",
                     _fmt_ratio(_ratio(ours["threads"], theirs.get("threads"))), target])
        if "traced_peak" in ours_t:
            ratio = _ratio(ours_t["traced_peak"], theirs_t.get("traced_peak"))
            target = "<= %s: %s" % (_fmt_ratio(TARGET_MEMORY),
                                    _verdict_at_most(ratio, TARGET_MEMORY))
            verdicts.append(("memory", target))
            rows.append(["%s: peak Python allocations (tracemalloc, separate run)" % label,
                         _mib(ours_t["traced_peak"]),
                         _mib(theirs_t["traced_peak"]) if "traced_peak" in theirs_t else "n/a",
                         _fmt_ratio(ratio), target])
        if ours.get("hwm_kib") is not None:
            grow = (ours["hwm_kib"] - ours["rss0_kib"]) * 1024
            grow_t = (theirs["hwm_kib"] - theirs["rss0_kib"]) * 1024 \
                if theirs.get("hwm_kib") is not None else None
            rows.append(["%s: peak RSS growth (VmHWM - RSS before; RSS before %s / %s)"
                         % (label, _mib(ours["rss0_kib"] * 1024),
                            _mib(theirs["rss0_kib"] * 1024) if "rss0_kib" in theirs
                            else "n/a"),
                         _mib(grow), _mib(grow_t) if grow_t is not None else "n/a",
                         _fmt_ratio(_ratio(grow, grow_t)), "(info)"])
        rows.append(["%s: GETs sent (+ %d POSTs)" % (label, many), "%d" % ours["polls"],
                     "%d" % theirs["polls"] if "polls" in theirs else "n/a",
                     _fmt_ratio(_ratio(ours["polls"], theirs.get("polls"))), "(info)"])
        rows.append(["%s: TCP connections opened (POSTs included)" % label,
                     "%d" % ours["connects"],
                     "%d" % theirs["connects"] if "connects" in theirs else "n/a",
                     _fmt_ratio(_ratio(ours["connects"], theirs.get("connects"))), "(info)"])
        if "wall" in fast:
            rows.append(["%s, azure-core at a 1 s interval: wall / all done after last end"
                         " / GETs / peak threads" % label,
                         "%.1f s / %.2f s / %d / %d" % (ours["wall"], ours["lag_all"],
                                                        ours["polls"], ours["threads"]),
                         "%.1f s / %.2f s / %d / %d" % (fast["wall"], fast["lag_all"],
                                                        fast["polls"], fast["threads"]),
                         "", "(info)"])

    settings = ("each client in a fresh child process; simulator `opstatus serve` in another"
                " (%s); %d import runs, %d polls after %d warm-up, %d operations "
                "(queue %g s + take %g s); ratio = opstatus / azure-core (< 1: opstatus "
                "uses less)" % ("TCP_NODELAY set by the benchmark" if nodelay else "as shipped",
                                import_runs, polls, WARMUP_POLLS, many, QUEUE_SECONDS,
                                TAKE_SECONDS))
    for line in header_lines(peer, settings, load_start):
        print(line)
    for line in _common.markdown_table(["figure", "opstatus", "azure-core", "ratio", "target"],
                                       rows):
        print(line)
    print("")
    print("targets: " + "; ".join("%s %s" % (name, verdict) for name, verdict in verdicts))
    if platform.python_implementation() != "CPython" or sys.version_info[:2] != (3, 11):
        print("[targets are stated for CPython 3.11; measured on %s %d.%d]" % (
            platform.python_implementation(), sys.version_info[0], sys.version_info[1]))
    for note in notes:
        print("note: " + note)
    print("(run time %.1f s)" % (time.perf_counter() - started))
    return 0


if __name__ == "__main__":
    sys.exit(main())
