"""Issue 15's many-operations figures: 10,000 (and 1,000) operations followed
by ``Watcher`` and by ``poll_async``, beside azure-core's LROPoller at
1,000, against ``opstatus serve`` in a process of its own.

Run from the repository root::

    python benchmarks/bench_many.py             # 1,000 and 10,000; azure-core at 1,000 (~1.5 min)
    python benchmarks/bench_many.py --quick     # 1,000 only, no azure-core (~15 s)
    python benchmarks/bench_many.py --sizes 10000 --clients watcher --profile --tracemalloc

It measures whatever opstatus.py is in this checkout when it runs.

Each (client, size) runs in a fresh child process against a fresh simulator
process (``opstatus serve --take-seconds 5 --queue-seconds 0.5
--no-require-objects``; ``--take-seconds 8`` above 2,000 operations, whose
POSTs alone take about 5 s; counting the connections it accepts and the
requests it parses), so that the client's threads, memory and CPU are its
own and the two processes' CPU can be compared:

1. warm-up (one take, two polls; the modules the client needs imported,
   an event loop run for ``poll_async``), then the baseline: RSS after
   ``gc.collect()``, VmHWM reset through /proc/self/clear_refs, a sampler
   of ``threading.active_count()`` (and the OS's count) every 5 ms, itself
   not counted;
2. N operations started with N take POSTs through one shared
   ``HTTPTransport`` (azure-core: its ``PipelineClient``);
3. the follow phase, timed: ``Watcher(locations, ...)`` iterated to the end,
   or ``asyncio.gather`` of N ``poll_async(...)``, default arguments apart
   from ``allow_http=True`` and a deadline; azure-core: one ``LROPoller``
   per operation (its default 30 s interval; a thread each), waited on.

Printed per run: wall time of the follow phase (and from the first POST),
detection lag per operation (mean, p95, max; lag = when the client saw the
terminal status minus when the simulator finished it: the final document's
``lastActionTime`` for opstatus, the POST's time + queue + take seconds for
azure-core), GETs per operation and connections (both counted by the
simulator), peak client threads, client RSS growth (VmHWM - RSS before the
POSTs; the operation URLs the client holds count, and so does this
benchmark's own bookkeeping: POST, done and finish times in arrays, 24 bytes per
operation) and per operation, client CPU per GET (``time.process_time()`` of
the follow phase / GETs), the share of a core each process used during
the follow phase and so which was the bottleneck, and whether every
operation was reported. Targets (issue 15), printed with PASS or MISS,
never asserted: <= 16 threads, <= 3 KiB per operation, <= 200 us of client
CPU per GET, every operation reported. Operations that had already ended
when the follow phase began are counted and said (their lag includes the
start-up).

``--profile`` adds a run of each opstatus client at the largest size and
prints where the client's time goes per GET: sampled by py-spy (every
thread, while it holds the GIL) when ``py-spy`` is on PATH, else cProfile in
every thread that works (the iterating thread, and each ``Poller.step`` in
the worker threads). ``--tracemalloc`` adds a run of each under tracemalloc:
Python allocations per operation (peak, and mid-follow with the 25 largest
sites; ``--tracemalloc-at SECONDS`` says when in the follow phase).

Linux (/proc) for memory, threads and CPU; Python 3.7+.
"""

from __future__ import print_function

import argparse
import array
import gc
import json
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time

try:  # puts the opstatus.py of this checkout first on sys.path
    from . import _common, _servers
except ImportError:
    import _common  # run as a script, or imported with benchmarks/ on sys.path
    import _servers

import opstatus  # noqa: E402

THIS_FILE = os.path.abspath(__file__)
SCOPE = "00000000-0000-0000-0000-000000000000"

SIZES, QUICK_SIZES = (1000, 10000), (1000,)
CLIENTS = ("watcher", "poll_async")
AZURE_SIZE = 1000

QUEUE_SECONDS = 0.5
TAKE_SECONDS = 5.0
#: Above LONG_FROM operations, their POSTs alone take about 5 s: they then
#: run LONG_TAKE_SECONDS, so that none has ended before the follow begins.
LONG_FROM, LONG_TAKE_SECONDS = 2000, 8.0
#: Deadline of the follow phase (the client's own timeout), in seconds.
FOLLOW_LIMIT = 150.0
#: azure-core's run is capped at this (its LROPollers wait 30 s between polls).
AZURE_LIMIT = 120.0
#: Longest a child may run, in seconds.
CHILD_TIMEOUT = 240.0

TARGET_THREADS = 16
TARGET_KIB_PER_OP = 3.0
TARGET_CPU_PER_GET = 200e-6


###############################################################################
# In the child


def _proc_status():
    try:
        with open("/proc/self/status") as f:
            return dict(line.split(":", 1) for line in f if ":" in line)
    except OSError:
        return {}


def _kib(value):
    return int(value.split()[0]) if value else None


class _ThreadSampler(threading.Thread):
    """Peak thread count every 5 ms (itself excluded): Python's and the OS's."""

    def __init__(self):
        threading.Thread.__init__(self, name="bench-sampler", daemon=True)
        self.peak_python = self.peak_os = 0
        self.cpu = 0.0  # its own CPU time, taken off the client's
        self._halt = threading.Event()

    def run(self):
        while not self._halt.is_set():
            self.sample()
            self._halt.wait(0.005)
        self.cpu = time.thread_time() if hasattr(time, "thread_time") else 0.0

    def sample(self):
        self.peak_python = max(self.peak_python, threading.active_count() - 1)
        threads = _proc_status().get("Threads")
        if threads:
            self.peak_os = max(self.peak_os, int(threads) - 1)

    def stop(self):
        self._halt.set()
        self.join()
        self.sample()


class _Stats(object):
    """The counting simulator's stats port, from the child."""

    def __init__(self, port, pid):
        self.port, self.pid = port, pid

    def get(self):
        import socket

        with socket.create_connection(("127.0.0.1", self.port), timeout=10) as s:
            data = b""
            while not data.endswith(b"\n"):
                chunk = s.recv(4096)
                if not chunk:
                    break
                data += chunk
        return json.loads(data.decode())

    def cpu(self):
        return _servers.process_cpu_seconds(self.pid)


def _rusage():
    """(user, system) CPU seconds of this process, or None."""
    try:
        import resource
    except ImportError:
        return None
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime, usage.ru_stime


def _take(endpoint, key, i, transport):
    return opstatus.take_snapshot(endpoint, key, object_type="PersonGroup",
                                  object_id="many-%d" % i, apply_scope=[SCOPE],
                                  allow_http=True, transport=transport)


def _warm_opstatus(spec):
    import asyncio
    import concurrent.futures  # noqa: F401
    import heapq  # noqa: F401

    endpoint, key = spec["endpoint"], spec["key"]
    location = _take(endpoint, key, 999999, None)
    poller = opstatus.Poller(location, endpoint=endpoint, key=key, allow_http=True,
                             timeout=None, policy=opstatus.RetryPolicy(floor=0.0, cap=0.0))
    poller.step()
    poller.step()
    poller.close()
    if spec["client"] == "poll_async":
        async def nothing():
            loop = asyncio.get_event_loop()
            await loop.run_in_executor(None, time.monotonic)
            await asyncio.sleep(0)

        asyncio.run(nothing())


class _Profiles(object):
    """cProfile in each thread that does the client's work: the thread that
    iterates (enable()/disable()), and each Poller.step (wrapped, one
    profiler per worker thread)."""

    def __init__(self):
        import cProfile

        self._make = cProfile.Profile
        self.main = cProfile.Profile()
        self._local = threading.local()
        self._all = []
        self._lock = threading.Lock()
        original = opstatus.Poller.step
        profiles = self

        def step(poller):
            prof = getattr(profiles._local, "prof", None)
            if prof is None:
                prof = profiles._local.prof = profiles._make()
                with profiles._lock:
                    profiles._all.append(prof)
            if threading.current_thread() is threading.main_thread():
                return original(poller)  # already under self.main
            prof.enable()
            try:
                return original(poller)
            finally:
                prof.disable()

        opstatus.Poller.step = step

    def lines(self, units, what):
        import pstats

        stats = pstats.Stats(self.main)
        for prof in self._all:
            try:
                stats.add(prof)
            except TypeError:  # never enabled
                pass
        per = 1e6 / units
        rows = []
        by_module = {}
        total = 0.0
        for (filename, line, name), (_cc, calls, tottime, cumtime, _c) in stats.stats.items():
            if os.path.basename(filename) == "bench_many.py" or "_lsprof" in name:
                continue
            where = "%s:%d(%s)" % (os.path.basename(filename), line, name) \
                if filename != "~" else name
            rows.append((cumtime, tottime, calls, where))
            module = _module_of(filename, name)
            by_module[module] = by_module.get(module, 0.0) + tottime
            total += tottime
        out = ["%s: cProfile in every working thread (wall-clock timer: waits in socket, "
               "lock and select calls included; threads overlap, so the times add up to more"
               " than the wall time), per GET" % what, "",
               "| own time in | us/GET |", "|---|---:|"]
        for module, t in sorted(by_module.items(), key=lambda kv: -kv[1])[:14]:
            out.append("| %s | %.1f |" % (module, t * per))
        out.append("| all | %.1f |" % (total * per))
        out += ["", "| cum us/GET | own us/GET | calls/GET | function |", "|---:|---:|---:|---|"]
        for cumtime, tottime, calls, where in sorted(rows, reverse=True)[:22]:
            out.append("| %.1f | %.1f | %.3g | `%s` |" % (cumtime * per, tottime * per,
                                                       calls / units, where))
        own = [r for r in sorted(rows, key=lambda r: r[1], reverse=True)
               if r[3].startswith("opstatus.py")][:12]
        out.append("")
        out.append("most own time in opstatus.py, us/GET: " + "; ".join(
            "%s %.1f" % (w.split(":", 1)[1], t * per) for _c, t, _n, w in own))
        built = [r for r in sorted(rows, key=lambda r: r[1], reverse=True)
                 if "." not in r[3].split("(")[0] or r[3].startswith("<")][:10]
        out.append("most own time in built-ins, us/GET: " + "; ".join(
            "%s %.1f" % (w, t * per) for _c, t, _n, w in built))
        return out


class _PySpy(object):
    """py-spy sampling this process, every thread (the GIL holder), while
    the follow phase runs: CPU by function per GET, without the cost a
    tracing profiler adds to each call."""

    def __init__(self):
        self.spy = _servers.PySpy(rate=250, gil=True)

    def start(self):
        self.spy.start()

    def stop(self):
        self.stacks = self.spy.stop()

    def lines(self, units, what):
        if not self.stacks:
            return ["%s: py-spy saw nothing (%s)" % (what, self.spy.error)]
        rate = self.spy.rate
        total, own, inclusive, modules = _servers.tally(self.stacks, skip=("_ThreadSampler",))
        per = 1e6 / rate / units
        out = ["%s: py-spy --gil, %d samples at %d Hz of the thread holding the GIL (Python"
               " code running; time in C with the GIL released, as in socket calls, is not "
               "seen): %.0f us per GET in all" % (what, total, rate, total * per), "",
               "| module (where the sample's innermost Python frame was) | us/GET |",
               "|---|---:|"]
        for module, count in sorted(modules.items(), key=lambda kv: -kv[1])[:12]:
            out.append("| %s | %.1f |" % (module, count * per))
        out += ["", "| inclusive us/GET | own us/GET | function |", "|---:|---:|---|"]
        for frame, count in sorted(inclusive.items(), key=lambda kv: -kv[1])[:30]:
            out.append("| %.1f | %.1f | `%s` |" % (count * per, own.get(frame, 0) * per, frame))
        out.append("")
        out.append("most own time, us/GET: " + "; ".join(
            "%s %.1f" % (f, c * per) for f, c in sorted(own.items(), key=lambda kv: -kv[1])[:15]))
        return out


def _module_of(filename, name):
    if filename == "~":
        if "_socket.socket" in name:
            return "socket calls (waits included)"
        if "lock" in name or "select" in name or "poll" in name or "wait" in name:
            return "locks, select, poll (waits included)"
        return "<built-in>"
    parts = filename.replace("\\", "/").split("/")
    if parts[-1] == "opstatus.py":
        return "opstatus.py"
    if len(parts) >= 2 and parts[-2] in ("http", "json", "email", "urllib", "asyncio",
                                         "concurrent", "futures", "pluggy"):
        return parts[-2] + "/" + (parts[-1] if parts[-2] in ("http", "futures") else "")
    return parts[-1]


class _Times(object):
    """Times by operation index, 8 bytes each (this benchmark's bookkeeping is in the
    client's RSS: a dict of floats would cost it about 0.1 KiB per operation)."""

    def __init__(self, n):
        self._t = array.array("d", [float("nan")]) * n

    def __setitem__(self, i, value):
        self._t[i] = value

    def __getitem__(self, i):
        return self._t[i]

    def __contains__(self, i):
        return self._t[i] == self._t[i]  # not NaN

    def __iter__(self):
        return (i for i, t in enumerate(self._t) if t == t)

    def __len__(self):
        return sum(1 for t in self._t if t == t)


def _follow_watcher(spec, locations, profiles):
    done, finish, ok = _Times(len(locations)), _Times(len(locations)), 0
    c0 = time.process_time()
    watcher = opstatus.Watcher(locations, endpoint=spec["endpoint"], key=spec["key"],
                               allow_http=True, timeout=FOLLOW_LIMIT)
    setup = time.process_time() - c0
    if profiles is not None:
        profiles.main.enable()
    try:
        for outcome in watcher:
            done[outcome.index] = time.time()
            status = outcome.status
            if status is not None and status.last_action_time is not None:
                finish[outcome.index] = status.last_action_time.timestamp()
            if outcome.ok and status is not None and status.succeeded:
                ok += 1
    finally:
        if profiles is not None:
            profiles.main.disable()
    return done, finish, ok, {"workers": watcher.max_workers, "setup_cpu": setup}


def _follow_poll_async(spec, locations, profiles):
    import asyncio

    done, finish = _Times(len(locations)), _Times(len(locations))
    counts = {"ok": 0}

    async def one(i, location):
        status = await opstatus.poll_async(location, endpoint=spec["endpoint"], key=spec["key"],
                                           allow_http=True, timeout=FOLLOW_LIMIT)
        done[i] = time.time()
        if status.last_action_time is not None:
            finish[i] = status.last_action_time.timestamp()
        if status.succeeded:
            counts["ok"] += 1

    async def all_of_them():
        await asyncio.gather(*(one(i, loc) for i, loc in enumerate(locations)),
                             return_exceptions=True)

    async def bounded():
        await asyncio.wait_for(all_of_them(), FOLLOW_LIMIT + 10)

    if profiles is not None:
        profiles.main.enable()
    try:
        asyncio.run(bounded())
    finally:
        if profiles is not None:
            profiles.main.disable()
    return done, finish, counts["ok"], {}


def _azure_parts():
    """bench_azure's PipelineClient set-up and take (a generated SDK's
    policies and the key credential)."""
    here = os.path.dirname(THIS_FILE)
    if here not in sys.path:
        sys.path.insert(0, here)
    import bench_azure

    return bench_azure._azure_client, bench_azure._azure_take, bench_azure._json_body


def child_main(spec):
    client = spec["client"]
    n = spec["n"]
    stats = _Stats(spec["stats_port"], spec["sim_pid"])
    op_seconds = spec["queue"] + spec["take"]
    if client == "azure":
        from azure.core.polling import LROPoller
        from azure.core.polling.base_polling import LROBasePolling

        make_client, azure_take, json_body = _azure_parts()
        pipeline = make_client(spec["endpoint"], spec["key"])
        azure_take(pipeline, spec["endpoint"], "warm")  # warm-up: the pipeline, imports
    else:
        _warm_opstatus(spec)
    profiles = spy = None
    if spec.get("profile") == "py-spy":
        spy = _PySpy()
    elif spec.get("profile"):
        profiles = _Profiles()
    if spec.get("tracemalloc"):
        import tracemalloc

        tracemalloc.start(1)
    gc.collect()
    rss0 = _kib(_proc_status().get("VmRSS"))
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # VmHWM := VmRSS
        hwm_reset = True
    except OSError:
        hwm_reset = False
    sampler = _ThreadSampler()
    sampler_started = time.time()
    sampler.start()
    s_create = stats.get()
    first_post = time.time()
    post_times = array.array("d")
    if client == "azure":
        initials = []
        for i in range(n):
            initials.append(azure_take(pipeline, spec["endpoint"], "many-%d" % i))
            post_times.append(time.time())
    else:
        transport = opstatus.HTTPTransport()
        locations = []
        for i in range(n):
            locations.append(_take(spec["endpoint"], spec["key"], i, transport))
            post_times.append(time.time())
        transport.close()
    if spy is not None:
        spy.start()
    s0 = stats.get()
    sim0, cpu0, t0 = stats.cpu(), time.process_time(), time.time()
    ru0 = _rusage()
    extra = {}
    snapshots = []
    if spec.get("tracemalloc"):
        import tracemalloc

        def snap():  # mid-follow: every operation held, most not yet done
            snapshots.append((tracemalloc.take_snapshot(), tracemalloc.get_traced_memory()))

        at = spec["tracemalloc"]
        timer = threading.Timer(at if at is not True else min(2.0, spec["queue"] + spec["take"] / 2),
                                snap)
        timer.daemon = True
        timer.start()
    if client == "watcher":
        done, finish, ok, extra = _follow_watcher(spec, locations, profiles)
    elif client == "poll_async":
        done, finish, ok, extra = _follow_poll_async(spec, locations, profiles)
    else:
        done, finish = _Times(n), _Times(n)

        def on_done(index):
            def callback(_method):
                done[index] = time.time()
            return callback

        pollers = []
        for i, initial in enumerate(initials):
            method = LROBasePolling(path_format_arguments={"endpoint": spec["endpoint"]})
            poller = LROPoller(pipeline, initial, json_body, method)
            poller.add_done_callback(on_done(i))
            pollers.append(poller)
        ok = 0
        deadline = time.monotonic() + AZURE_LIMIT
        for poller in pollers:
            try:
                poller.result(max(0.0, deadline - time.monotonic()))
                ok += 1 if poller.done() and poller.status().lower() == "succeeded" else 0
            except Exception:
                pass
        extra["interval"] = pollers[0]._polling_method._timeout if pollers else None
    t1, cpu1, sim1 = time.time(), time.process_time(), stats.cpu()
    ru1 = _rusage()
    s1 = stats.get()
    if spy is not None:
        spy.stop()
    sampler.stop()
    # The sampler's CPU (it ran from before the POSTs) is not the client's:
    # its share of the follow phase is taken off.
    sampler_cpu = sampler.cpu * (t1 - t0) / max(1e-9, time.time() - sampler_started)
    hwm = _kib(_proc_status().get("VmHWM")) if hwm_reset else None
    if client == "azure":
        for i, posted in enumerate(post_times):
            finish[i] = posted + op_seconds
    lags = sorted(done[i] - finish[i] for i in done if i in finish)
    ended_before = sum(1 for i in finish if finish[i] < t0)
    creation = _servers.delta(s0, s_create)
    follow = _servers.delta(s1, s0)
    result = {
        "client": client, "n": n, "take": spec["take"], "ok": ok, "reported": len(done),
        "create_seconds": post_times[-1] - first_post if post_times else 0.0,
        "wall": t1 - t0, "wall_total": t1 - first_post,
        "lag_mean": sum(lags) / len(lags) if lags else None,
        "lag_p95": lags[min(len(lags) - 1, int(0.95 * len(lags)))] if lags else None,
        "lag_max": lags[-1] if lags else None,
        "ended_before_follow": ended_before,
        "gets": follow["requests"].get("GET", 0),
        "connections": follow["accepted"], "connections_create": creation["accepted"],
        "threads": sampler.peak_python, "os_threads": sampler.peak_os,
        "rss0_kib": rss0, "hwm_kib": hwm,
        "cpu": cpu1 - cpu0 - sampler_cpu,
        "cpu_sys": ru1[1] - ru0[1] if ru0 and ru1 else None, "sampler_cpu": sampler_cpu,
        "sim_cpu": (sim1 - sim0) if sim0 is not None and sim1 is not None else None,
    }
    result.update(extra)
    if profiles is not None:
        result["profile"] = profiles.lines(max(1, result["gets"]),
                                           "%s of %d operations" % (client, n))
    if spy is not None:
        result["profile"] = spy.lines(max(1, result["gets"]),
                                      "%s of %d operations" % (client, n))
    if spec.get("tracemalloc"):
        import tracemalloc

        _current, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        result["traced_peak"] = peak
        if snapshots:
            snapshot, (current, _peak) = snapshots[0]
            top = snapshot.statistics("lineno")[:25]
            result["traced_at_snapshot"] = current
            import linecache

            result["traced_top"] = [
                "%s:%d %d B (%.0f B/op, %d blocks): `%s`" % (
                    os.path.basename(st.traceback[0].filename), st.traceback[0].lineno,
                    st.size, st.size / float(n), st.count,
                    linecache.getline(st.traceback[0].filename,
                                      st.traceback[0].lineno).strip()[:80])
                for st in top]
    if client == "azure":
        pipeline.close()
    return result


###############################################################################
# In the parent


def run_one(client, n, take_seconds, profile=False, trace=False):
    """One (client, size) run: a fresh simulator, a fresh child. Its result."""
    serve = ["--take-seconds", repr(take_seconds), "--queue-seconds", repr(QUEUE_SECONDS)]
    with _servers.CountingSimulator(serve) as sim:
        spec = {"client": client, "n": n, "endpoint": sim.endpoint, "key": sim.key,
                "stats_port": sim.stats_port, "sim_pid": sim.pid, "queue": QUEUE_SECONDS,
                "take": take_seconds, "profile": profile, "tracemalloc": trace}
        with tempfile.TemporaryFile(mode="w+") as err:
            try:
                proc = subprocess.run([sys.executable, THIS_FILE, "--child", json.dumps(spec)],
                                      stdout=subprocess.PIPE, stderr=err,
                                      stdin=subprocess.DEVNULL, universal_newlines=True,
                                      timeout=CHILD_TIMEOUT, cwd=_common.REPO_ROOT)
            except subprocess.TimeoutExpired:
                return {"client": client, "n": n,
                        "error": "timed out after %g s" % CHILD_TIMEOUT}
            err.seek(0)
            stderr = err.read()
        alive = sim.alive()
    lines = proc.stdout.strip().splitlines()
    if proc.returncode != 0 or not lines:
        return {"client": client, "n": n,
                "error": "exit %d: %s" % (proc.returncode, stderr.strip()[-800:])}
    result = json.loads(lines[-1])
    result["stderr_lines"] = len(stderr.splitlines())
    result["stderr_sample"] = stderr.strip().splitlines()[:1]
    if not alive:
        result["sim_died"] = True
    return result


def _s(seconds):
    return "n/a" if seconds is None else "%.2f s" % seconds


def _verdict(ok):
    return "PASS" if ok else "MISS"


def _bottleneck(r):
    """Which process was the bottleneck: the one closer to a full core
    (CPython runs Python code on one core at a time per process)."""
    if r.get("sim_cpu") is None or not r.get("wall"):
        return "?"
    client, sim = r["cpu"] / r["wall"], r["sim_cpu"] / r["wall"]
    who = "client" if client >= sim else "simulator"
    if max(client, sim) < 0.8:
        who += ", neither saturated"
    return "%s (client %.2f, simulator %.2f of a core)" % (who, client, sim)


def report_rows(r):
    """Markdown rows and verdict lines of one run."""
    label = "%s, %d ops" % ({"watcher": "Watcher", "poll_async": "poll_async",
                             "azure": "azure-core LROPoller"}[r["client"]], r["n"])
    if "error" in r:
        return [[label, "error: " + r["error"][:200]] + [""] * 10], \
            ["%s: did not complete: %s" % (label, r["error"][:300])]
    n = r["n"]
    gets = r["gets"]
    cpu_get = r["cpu"] / gets if gets else None
    growth = (r["hwm_kib"] - r["rss0_kib"]) if r.get("hwm_kib") is not None else None
    per_op = growth / float(n) if growth is not None else None
    is_ours = r["client"] != "azure"
    verdicts = []

    def judged(value, ok, text):
        if not is_ours:
            return value
        verdicts.append("%s: %s %s" % (label, text, _verdict(ok)))
        return "%s %s" % (value, _verdict(ok))

    row = [
        label,
        "%.1f s (%.1f s)" % (r["wall"], r["wall_total"]),
        "%s / %s / %s" % (_s(r["lag_mean"]), _s(r["lag_p95"]), _s(r["lag_max"])),
        "%.2f" % (gets / float(n)),
        "%d (+%d)" % (r["connections"], r["connections_create"]),
        judged("%d (%d)" % (r["threads"], r["os_threads"]), r["threads"] <= TARGET_THREADS,
               "threads %d <= %d:" % (r["threads"], TARGET_THREADS)),
        "%.1f MiB" % (growth / 1024.0) if growth is not None else "n/a",
        judged("%.2f KiB" % per_op, per_op <= TARGET_KIB_PER_OP,
               "%.2f KiB per operation <= %g:" % (per_op, TARGET_KIB_PER_OP))
        if per_op is not None else "n/a",
        judged("%.0f us%s" % (cpu_get * 1e6, " (sys %.0f)" % (r["cpu_sys"] / gets * 1e6)
                              if r.get("cpu_sys") is not None else ""),
               cpu_get <= TARGET_CPU_PER_GET,
               "client CPU per GET %.0f us <= %.0f:" % (cpu_get * 1e6,
                                                       TARGET_CPU_PER_GET * 1e6))
        if cpu_get is not None else "n/a",
        _bottleneck(r),
        judged("%d of %d" % (r["reported"], n), r["reported"] == n and r["ok"] == n,
               "every operation reported and succeeded (%d, %d of %d):"
               % (r["reported"], r["ok"], n)),
    ]
    return [row], verdicts


def floor_child(n):
    """poll_async's asyncio floor: RSS growth of *n* tasks that only sleep, gathered as the
    poll_async run gathers its polls, each holding a location-sized string."""
    import asyncio

    gc.collect()
    rss0 = _kib(_proc_status().get("VmRSS"))
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # VmHWM := VmRSS
    locations = ["http://127.0.0.1:40000/face/v1.0/operations/%036d" % i for i in range(n)]

    async def one(location):
        await asyncio.sleep(0.5)
        return location

    async def all_of_them():
        await asyncio.gather(*(one(loc) for loc in locations))

    asyncio.run(all_of_them())
    return {"n": n, "kib_per_task": (_kib(_proc_status().get("VmHWM")) - rss0) / float(n)}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="1,000 operations only, no azure-core")
    parser.add_argument("--sizes", type=lambda t: [int(x) for x in t.split(",")],
                        help="comma-separated numbers of operations (default 1000,10000)")
    parser.add_argument("--clients", type=lambda t: t.split(","),
                        help="comma-separated: watcher, poll_async (default both)")
    parser.add_argument("--take-seconds", type=float,
                        help="seconds each operation runs after %g s queued (default %g; %g "
                        "above %d operations)" % (QUEUE_SECONDS, TAKE_SECONDS,
                                                  LONG_TAKE_SECONDS, LONG_FROM))
    parser.add_argument("--no-azure", action="store_true",
                        help="skip azure-core's LROPoller at %d" % AZURE_SIZE)
    parser.add_argument("--profile", action="store_true",
                        help="add a profiled run of each opstatus client at the largest size "
                        "(py-spy if it is on PATH, sampling every thread; else cProfile)")
    parser.add_argument("--tracemalloc-at", type=float, metavar="SECONDS",
                        help="with --tracemalloc: take its snapshot this long into the follow "
                        "phase (default: 2 s, or half-way through the operations if sooner)")
    parser.add_argument("--tracemalloc", action="store_true",
                        help="add a run of each opstatus client at the largest size under "
                        "tracemalloc: Python allocations per operation and where")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--floor-child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.floor_child:
        sys.stdout.write(json.dumps(floor_child(args.floor_child)) + "\n")
        return 0
    if args.child:
        result = child_main(json.loads(args.child))
        sys.stdout.write(json.dumps(result) + "\n")
        return 0

    sizes = args.sizes or (QUICK_SIZES if args.quick else SIZES)
    clients = args.clients or list(CLIENTS)
    azure = not (args.quick or args.no_azure)
    if azure:
        try:
            import azure.core.polling  # noqa: F401
        except Exception:
            azure = False
    started = time.perf_counter()

    def progress(message):
        sys.stderr.write("[%5.1f s] %s\n" % (time.perf_counter() - started, message))
        sys.stderr.flush()

    load_start = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    def take_for(n):
        if args.take_seconds is not None:
            return args.take_seconds
        return LONG_TAKE_SECONDS if n > LONG_FROM else TAKE_SECONDS

    results = []
    for n in sizes:
        for client in clients:
            progress("%s, %d operations" % (client, n))
            results.append(run_one(client, n, take_for(n)))
        if azure and n == AZURE_SIZE:
            progress("azure-core LROPoller, %d operations (its 30 s interval)" % n)
            results.append(run_one("azure", n, take_for(n)))
    profiles = []
    if args.profile:
        import shutil

        how = "py-spy" if shutil.which("py-spy") else "cprofile"
        for client in clients:
            progress("profiled (%s): %s, %d operations" % (how, client, max(sizes)))
            r = run_one(client, max(sizes), take_for(max(sizes)), profile=how)
            profiles.append(r.get("profile") or ["%s: %s" % (client, r.get("error"))])
            if "cpu" in r and r.get("gets"):
                profiles[-1].insert(1, "(under the profiler: %.0f us of client CPU per GET, "
                                       "wall %.1f s)" % (r["cpu"] / r["gets"] * 1e6, r["wall"]))

    if args.tracemalloc:
        for client in clients:
            progress("tracemalloc: %s, %d operations" % (client, max(sizes)))
            r = run_one(client, max(sizes), take_for(max(sizes)),
                        trace=args.tracemalloc_at or True)
            if "traced_peak" not in r:
                profiles.append(["tracemalloc, %s: %s" % (client, r.get("error"))])
                continue
            n = r["n"]
            block = ["tracemalloc, %s of %d operations (a separate run): peak %.1f MiB, "
                     "%.2f KiB per operation; %.2f KiB per operation traced mid-follow, the "
                     "largest sites then:" % (client, n, r["traced_peak"] / 1048576.0,
                                              r["traced_peak"] / 1024.0 / n,
                                              r.get("traced_at_snapshot", 0) / 1024.0 / n)]
            block += ["- " + line for line in r.get("traced_top", [])]
            profiles.append(block)

    print(_common.python_line() + ", %d CPUs" % (os.cpu_count() or 0))
    print("- opstatus %s (%s)" % (opstatus.__version__, opstatus.__file__))
    try:
        import pluggy

        print("- pluggy %s installed (plugins=None, the default, uses it)" % pluggy.__version__)
    except ImportError:
        print("- pluggy not installed")
    if azure:
        import azure.core

        print("- peer: azure-core %s (LROPoller, a generated SDK's PipelineClient, its default"
              " interval)" % _common.distribution_version("azure-core", azure.core))
    print("- load average at start / end: %.2f / %.2f" % (
        load_start, os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")))
    print("- command: python benchmarks/bench_many.py%s" % "".join(
        " " + a for a in (argv if argv is not None else sys.argv[1:])))
    print("- simulator: `opstatus serve --take-seconds T --queue-seconds %g "
          "--no-require-objects` in its own process, fresh for each run (T: %s); each client"
          " in a fresh child process; N operations started by N take POSTs through one "
          "HTTPTransport, then followed" % (
              QUEUE_SECONDS, "%g s" % args.take_seconds if args.take_seconds is not None else
              "%g s, %g s above %d operations" % (TAKE_SECONDS, LONG_TAKE_SECONDS, LONG_FROM)))
    print("")
    header = ["run", "follow wall (from 1st POST)", "lag mean / p95 / max", "GETs/op",
              "connections (+ POSTs')", "peak threads (OS)", "RSS growth", "RSS per op",
              "client CPU per GET (of it sys)", "bottleneck (share of a core, follow phase)",
              "reported"]
    rows, verdicts, notes = [], [], []
    for r in results:
        more_rows, more_verdicts = report_rows(r)
        rows += more_rows
        verdicts += more_verdicts
        if "error" in r:
            continue
        if r.get("ended_before_follow"):
            notes.append("%s, %d: %d operations had ended before the follow phase began "
                         "(starting %d took %.1f s); their lag includes that wait"
                         % (r["client"], r["n"], r["ended_before_follow"], r["n"],
                            r["create_seconds"]))
        if r.get("stderr_lines"):
            notes.append("%s, %d: %d lines on stderr, first: %s"
                         % (r["client"], r["n"], r["stderr_lines"],
                            (r["stderr_sample"] or [""])[0][:200]))
        if r.get("sim_died"):
            notes.append("%s, %d: the simulator process died" % (r["client"], r["n"]))
        if r.get("setup_cpu") is not None:
            notes.append("%s, %d: building the Watcher (%d Pollers) took %.0f ms of CPU "
                         "(%.0f us per operation, %.0f us per GET of the follow phase), "
                         "counted in its CPU per GET" % (
                             r["client"], r["n"], r["n"], r["setup_cpu"] * 1e3,
                             r["setup_cpu"] / r["n"] * 1e6,
                             r["setup_cpu"] / max(1, r["gets"]) * 1e6))
        if r["client"] == "poll_async" and sys.platform.startswith("linux"):
            floor = json.loads(subprocess.run(
                [sys.executable, THIS_FILE, "--floor-child", str(r["n"])],
                stdout=subprocess.PIPE, universal_newlines=True, check=True,
                timeout=CHILD_TIMEOUT).stdout)
            notes.append("poll_async, %d: asyncio's floor, %d tasks that only sleep (gathered "
                         "as the run gathers its polls) in a fresh process: %.2f KiB of RSS per "
                         "task, counted in poll_async's memory per operation"
                         % (r["n"], r["n"], floor["kib_per_task"]))
        if r["client"] == "azure" and r.get("interval") is not None:
            notes.append("azure-core, %d: LROPoller interval %s s; follow phase capped at %g s"
                         % (r["n"], r["interval"], AZURE_LIMIT))
    for line in _common.markdown_table(header, rows):
        print(line)
    print("")
    for line in verdicts:
        print(line)
    if platform.python_implementation() != "CPython" or sys.version_info[:2] != (3, 11):
        print("[the targets are stated for CPython 3.11; measured on %s %d.%d]" % (
            platform.python_implementation(), sys.version_info[0], sys.version_info[1]))
    for note in notes:
        print("note: " + note)
    for block in profiles:
        print("")
        for line in block:
            print(line)
    print("")
    print("(run time %.1f s)" % (time.perf_counter() - started))
    return 0


if __name__ == "__main__":
    sys.exit(main())
