"""Issue 15's per-request figures, each beside its floor and its peers:
reading a status, client CPU per poll (under "face" and "azure"), and the
connections that POSTs, ``poll_async`` and ``Watcher`` open.

Run from the repository root::

    python benchmarks/bench_poll.py              # everything (about 40 s; 1 min with --profile)
    python benchmarks/bench_poll.py --quick      # fewer rounds and operations
    python benchmarks/bench_poll.py --only read  # (a) alone: any Python, no peer needed
    python benchmarks/bench_poll.py --profile    # + where the time goes: from_json, a poll, a POST

It measures whatever opstatus.py is in this checkout when it runs.

(a) **Read a status.** ``OperationStatus.from_json(BODY)`` on a 254-byte
    2021 Face document (bytes, as a poll gets them) against its floor:
    ``json.loads(BODY)``, two ``datetime.fromisoformat`` (on 3.11+ the wire
    text as it is; before 3.11, which rejects ``Z`` and the 7th digit, its
    first 26 characters + ``"+00:00"``: the cheapest standard-library
    reading of that exact form), and a frozen dataclass with the same nine
    fields as ``OperationStatus`` built by keyword with no check at all.
    timeit samples of ~20 ms, interleaved rounds; the parts of each are
    timed too. Target: ``from_json`` <= 1.5x the floor.

(b) **Client CPU per poll**, on one kept-alive loopback connection to
    ``opstatus serve`` running in another process (its CPU is not counted):
    ``time.process_time()`` of this process around N requests to an
    operation that never ends. Floor: ``http.client`` GET (the same headers
    opstatus sends) + ``json.loads`` of the body. opstatus:
    ``Poller.step()`` with ``RetryPolicy(floor=0, cap=0)`` (no wait), with
    ``plugins=None`` (the default: the process-wide pluggy manager when
    pluggy is installed) and with ``plugins=False``. Peers, same run:
    requests (``Session.get(url).json()``) and azure-core (a
    ``PipelineClient`` with its default pipeline, ``send_request`` +
    ``.json()``). Target: opstatus (plugins=None) <= 1.3x the floor.

(c) **"azure" beside "face"**: the same, on a status-monitor job of the
    same simulator (``POST /jobs?seconds=...``, ``GET /jobs/{id}``), polled
    by a ``Poller(vocabulary="azure")``. Target: the two within 10% of each
    other (larger / smaller <= 1.10).

(d) **Connections**, counted by the simulator process as it accepts them
    (``socketserver.TCPServer.get_request`` wrapped there): N take POSTs
    through one shared ``opstatus.HTTPTransport`` (target <= 8 for 1,000),
    beside the ``http.client`` floor (one kept-alive connection), requests'
    ``Session``, azure-core's ``PipelineClient`` and opstatus without
    ``transport=`` (information); then N operations followed by
    ``poll_async`` (all at once, ``asyncio.gather``) and by a ``Watcher``,
    default arguments (target <= 16 each). Client CPU per POST is printed
    beside the floor's (information).

Every figure is printed with its floor or peers, the ratio, and PASS or
MISS against its target; a summary line per figure closes the report.
``--profile`` then shows where the time goes in from_json, a poll (under
"face" and "azure") and a POST, each beside its floor: cProfile (call
counts; it inflates small functions) and, when ``py-spy`` is on PATH, a
sampled view that does not.

Linux (/proc) for the server CPU; Python 3.7+ (CPython or PyPy).
"""

from __future__ import print_function

import argparse
import dataclasses
import datetime
import json
import os
import platform
import sys
import time
import timeit

try:  # puts the opstatus.py of this checkout first on sys.path
    from . import _common, _servers
except ImportError:
    import _common  # run as a script, or imported with benchmarks/ on sys.path
    import _servers

import opstatus  # noqa: E402

#: A 2021 Face status document of 254 bytes: a succeeded apply to a large
#: person group, in json.dumps's default spacing, with the undocumented
#: finishedTime the 2021 service added.
BODY_2021 = (
    b'{"status": "succeeded", "createdTime": "2021-06-08T22:28:33.5402214Z", '
    b'"lastActionTime": "2021-06-08T22:28:35.5793888Z", '
    b'"finishedTime": "2021-06-08T22:28:35.5793885Z", '
    b'"resourceLocation": "/largepersongroup/employees-sales-and-marketing-emea-2021-june"}'
)

SCOPE = "00000000-0000-0000-0000-000000000000"

READ_ROUNDS, QUICK_READ_ROUNDS = 15, 5
SAMPLE_SECONDS = 0.02
POLL_ROUNDS, QUICK_POLL_ROUNDS = 20, 6
POLLS_PER_SAMPLE, QUICK_POLLS_PER_SAMPLE = 100, 50
POSTS, QUICK_POSTS = 1000, 200
POST_ROUNDS = 10
OPERATIONS, QUICK_OPERATIONS = 1000, 200

#: Seconds an operation of part (d) queues and runs in the simulator.
QUEUE_SECONDS, TAKE_SECONDS = 0.3, 2.0
#: Longest wait for the operations of part (d), in seconds.
WATCH_LIMIT = 120.0

TARGET_READ = 1.5
TARGET_POLL = 1.3
TARGET_VOCAB = 1.10
TARGET_POST_CONNECTIONS = 8
TARGET_FOLLOW_CONNECTIONS = 16


###############################################################################
# Small helpers


def _median(values):
    ordered = sorted(values)
    middle = len(ordered) // 2
    if len(ordered) % 2:
        return ordered[middle]
    return (ordered[middle - 1] + ordered[middle]) / 2.0


def _us(seconds):
    if seconds is None:
        return "n/a"
    us = seconds * 1e6
    if us < 10:
        return "%.2f us" % us
    if us < 100:
        return "%.1f us" % us
    return "%.0f us" % us


def _x(ratio):
    if ratio is None:
        return "n/a"
    return ("%.3fx" if ratio < 0.1 else "%.2fx") % ratio


def _conns(n):
    return "%d connection%s" % (n, "" if n == 1 else "s")


def _verdict(ok):
    return "n/a" if ok is None else ("PASS" if ok else "MISS")


def _versions():
    out = []
    for dist, module in (("requests", "requests"), ("azure-core", "azure.core"),
                         ("pluggy", "pluggy")):
        try:
            mod = __import__(module, fromlist=["_"])
        except Exception:
            out.append((dist, None))
            continue
        out.append((dist, _common.distribution_version(dist, mod)))
    return out


def _loadavg():
    try:
        return "%.2f" % os.getloadavg()[0]
    except (AttributeError, OSError):
        return "?"


class Report(object):
    """Rows of the Markdown table, the summary lines and the notes."""

    def __init__(self):
        self.rows = []
        self.summary = []
        self.notes = []
        self.misses = []  # names of the figures that missed

    def row(self, *cells):
        self.rows.append([str(c) for c in cells])

    def verdict(self, name, text, ok):
        self.summary.append("%s: %s: %s" % (name, text, _verdict(ok)))
        if ok is False:
            self.misses.append(name)


###############################################################################
# (a) Read a status


@dataclasses.dataclass(frozen=True)
class _FloorStatus:
    """OperationStatus's nine fields, frozen, nothing checked."""

    status: object
    created_time: object
    last_action_time: object = None
    message: object = None
    resource_location: object = None
    extra: object = None
    raw_status: object = None
    document: object = None
    error_code: object = None


if sys.version_info >= (3, 11):
    _fromiso = datetime.datetime.fromisoformat
    FROMISO_NOTE = "datetime.fromisoformat(text)"
else:
    def _fromiso(text, _parse=datetime.datetime.fromisoformat):
        return _parse(text[:26] + "+00:00")
    FROMISO_NOTE = "datetime.fromisoformat(text[:26] + '+00:00')"


def floor_read(body, _loads=json.loads, _iso=_fromiso, _cls=_FloorStatus):
    doc = _loads(body)
    return _cls(doc["status"], _iso(doc["createdTime"]), _iso(doc["lastActionTime"]),
                resource_location=doc.get("resourceLocation"), document=doc)


def read_candidates():
    """(label, callable of no argument, role): role 'floor', 'target' or ''."""
    body = BODY_2021
    text = body.decode("utf-8")
    doc = json.loads(body)
    created, last = doc["createdTime"], doc["lastActionTime"]
    dt_created, dt_last = _fromiso(created), _fromiso(last)
    from_json = opstatus.OperationStatus.from_json
    from_dict = opstatus.OperationStatus.from_dict
    parse = opstatus.parse_datetime
    out = [
        ("floor: json.loads + 2 x fromisoformat + frozen dataclass",
         lambda: floor_read(body), "floor"),
        ("opstatus: OperationStatus.from_json(bytes)", lambda: from_json(body), "target"),
        ("opstatus: OperationStatus.from_json(str)", lambda: from_json(text), ""),
        ("opstatus: from_dict(decoded document)", lambda: from_dict(doc), ""),
        ("opstatus: 2 x parse_datetime", lambda: (parse(created), parse(last)), ""),
        ("part of the floor: json.loads(bytes)", lambda: json.loads(body), ""),
        ("part of the floor: 2 x " + FROMISO_NOTE.split("(")[0],
         lambda: (_fromiso(created), _fromiso(last)), ""),
        ("part of the floor: the frozen dataclass",
         lambda: _FloorStatus("succeeded", dt_created, dt_last,
                              resource_location="/x", document=doc), ""),
    ]
    loader = getattr(opstatus, "_load_json_object", None)  # private: may go away
    if loader is not None:
        out.insert(4, ("opstatus: _load_json_object(bytes) (its JSON step)",
                       lambda: loader(body), ""))
    return out


def run_read(rounds, progress):
    """{label: [seconds per call, one per round]} for read_candidates()."""
    cands = read_candidates()
    timers = []
    for label, func, _role in cands:
        progress("read: calibrating " + label)
        func()
        timer = timeit.Timer(func)
        number, seconds = timer.autorange()
        timers.append((label, timer, max(1, int(number * SAMPLE_SECONDS / seconds))))
    samples = {label: [] for label, _, _ in cands}
    for n in range(rounds):
        progress("read: round %d of %d" % (n + 1, rounds))
        shift = n % len(timers)
        for label, timer, loops in timers[shift:] + timers[:shift]:
            samples[label].append(timer.timeit(loops) / loops)
    return cands, samples


def report_read(report, cands, samples, rounds):
    floor = samples[cands[0][0]]
    for label, _func, role in cands:
        mine = samples[label]
        best = min(mine) / min(floor)
        med = _median([m / f for m, f in zip(mine, floor)])
        if role == "target":
            ok = best <= TARGET_READ and med <= TARGET_READ
            target = "<= %.1fx: %s" % (TARGET_READ, _verdict(ok))
            report.verdict("(a) read a status: from_json / floor",
                           "%s best, %s median of rounds (%s vs %s)"
                           % (_x(best), _x(med), _us(min(mine)), _us(min(floor))), ok)
        elif role == "floor":
            target = "(the floor)"
        else:
            target = "(info)"
        report.row("(a) " + label, _us(min(mine)), _us(_median(mine)),
                   _us(min(floor)), "%s / %s" % (_x(best), _x(med)), "", target)


###############################################################################
# (b), (c) Client CPU per poll


class _FloorPoll(object):
    """http.client GET on one kept-alive connection + json.loads."""

    def __init__(self, url, key):
        import http.client
        from urllib.parse import urlsplit

        parts = urlsplit(url)
        self.conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
        self.path = parts.path + ("?" + parts.query if parts.query else "")
        self.headers = {opstatus.KEY_HEADER: key, "Accept": "application/json",
                        "User-Agent": "opstatus/" + opstatus.__version__}
        self.loads = json.loads

    def poll(self):
        conn = self.conn
        conn.request("GET", self.path, headers=self.headers)
        response = conn.getresponse()
        body = response.read()
        if response.status != 200:
            raise RuntimeError("floor GET answered %d" % response.status)
        return self.loads(body)

    def close(self):
        self.conn.close()


class _OpstatusPoll(object):
    """Poller.step() with no wait; the delay it asks for is ignored."""

    def __init__(self, url, endpoint, key, vocabulary=None, plugins=None):
        options = {} if plugins is None else {"plugins": plugins}
        if vocabulary is not None:
            options["vocabulary"] = vocabulary
        self.poller = opstatus.Poller(url, endpoint=endpoint, key=key, allow_http=True,
                                      timeout=None,
                                      policy=opstatus.RetryPolicy(floor=0.0, cap=0.0),
                                      **options)
        self.step = self.poller.step

    def poll(self):
        step = self.step()
        if step.done or step.error is not None:
            raise RuntimeError("the poll ended or erred: %r" % (step.error,))
        return step

    def close(self):
        self.poller.close()


class _RequestsPoll(object):
    def __init__(self, url, key):
        import requests

        self.session = requests.Session()
        self.session.headers[opstatus.KEY_HEADER] = key
        self.url = url

    def poll(self):
        response = self.session.get(self.url)
        if response.status_code != 200:
            raise RuntimeError("requests GET answered %d" % response.status_code)
        return response.json()

    def close(self):
        self.session.close()


class _AzurePoll(object):
    """azure-core: a PipelineClient with its default pipeline."""

    def __init__(self, url, endpoint, key):
        from azure.core import PipelineClient
        from azure.core.rest import HttpRequest

        self.client = PipelineClient(base_url=endpoint)
        self.request = HttpRequest
        self.url = url
        self.headers = {opstatus.KEY_HEADER: key}

    def poll(self):
        response = self.client.send_request(self.request("GET", self.url, headers=self.headers))
        if response.status_code != 200:
            raise RuntimeError("azure-core GET answered %d" % response.status_code)
        return response.json()

    def close(self):
        self.client.close()


def _have(module):
    try:
        __import__(module)
        return True
    except Exception:
        return False


def start_pollable(sim):
    """(Face operation URL, azure job URL): operations that never end."""
    location = opstatus.take_snapshot(sim.endpoint, sim.key, object_type="PersonGroup",
                                      object_id="bench-poll", apply_scope=[SCOPE],
                                      allow_http=True)
    face_url = opstatus.resolve_operation_url(location, sim.endpoint, allow_http=True)
    job_url = opstatus.start_operation("/jobs?seconds=100000000", endpoint=sim.endpoint,
                                       key=sim.key, allow_http=True, vocabulary="azure")
    return face_url, job_url


def poll_clients(sim, face_url, job_url):
    """[(label, client, group)]: group 'face' or 'azure' (the document)."""
    ep, key = sim.endpoint, sim.key
    clients = [
        ("floor: http.client + json.loads", _FloorPoll(face_url, key), "face"),
        ("opstatus Poller.step(), plugins=None", _OpstatusPoll(face_url, ep, key), "face"),
        ("opstatus Poller.step(), plugins=False",
         _OpstatusPoll(face_url, ep, key, plugins=False), "face"),
    ]
    if _have("requests"):
        clients.append(("requests: Session.get + .json()", _RequestsPoll(face_url, key), "face"))
    if _have("azure.core"):
        clients.append(("azure-core: PipelineClient default pipeline + .json()",
                        _AzurePoll(face_url, ep, key), "face"))
    clients += [
        ("floor: http.client + json.loads", _FloorPoll(job_url, key), "azure"),
        ("opstatus Poller.step(), plugins=None",
         _OpstatusPoll(job_url, ep, key, vocabulary="azure"), "azure"),
        ("opstatus Poller.step(), plugins=False",
         _OpstatusPoll(job_url, ep, key, vocabulary="azure", plugins=False), "azure"),
    ]
    return clients


def run_polls(clients, per_sample, rounds, progress):
    """{index: [(cpu per poll, wall per poll), one per round]}, interleaved."""
    for label, client, _group in clients:  # warm-up: lazy imports, connections
        progress("poll: warm-up " + label)
        for _ in range(max(10, per_sample // 5)):
            client.poll()
    samples = {i: [] for i in range(len(clients))}
    order = list(range(len(clients)))
    cpu, wall = time.process_time, time.perf_counter
    for n in range(rounds):
        progress("poll: round %d of %d" % (n + 1, rounds))
        shift = n % len(order)
        for i in order[shift:] + order[:shift]:
            poll = clients[i][1].poll
            rng = range(per_sample)
            c0, w0 = cpu(), wall()
            for _ in rng:
                poll()
            c1, w1 = cpu(), wall()
            samples[i].append(((c1 - c0) / per_sample, (w1 - w0) / per_sample))
    return samples


def report_polls(report, clients, samples, per_sample, rounds):
    def cpu_of(i):
        return [s[0] for s in samples[i]]

    floors = {g: i for i, (label, _c, g) in enumerate(clients) if label.startswith("floor")}
    ours = {}
    for i, (label, _client, group) in enumerate(clients):
        mine, floor = cpu_of(i), cpu_of(floors[group])
        best = min(mine) / min(floor)
        med = _median([m / f for m, f in zip(mine, floor)])
        wall = _median([s[1] for s in samples[i]])
        target = "(info)"
        if i == floors[group]:
            target = "(the floor)"
        elif label.startswith("opstatus") and "plugins=None" in label:
            ours[group] = i
            if group == "face":
                ok = best <= TARGET_POLL and med <= TARGET_POLL
                target = "<= %.1fx: %s" % (TARGET_POLL, _verdict(ok))
                report.verdict("(b) client CPU per poll: opstatus / http.client floor",
                               "%s best, %s median of rounds (%s vs %s)"
                               % (_x(best), _x(med), _us(min(mine)), _us(min(floor))), ok)
        fig = "(%s) CPU per poll, %s doc: %s" % ("b" if group == "face" else "c", group, label)
        report.row(fig, _us(min(mine)), _us(_median(mine)), _us(min(floor)),
                   "%s / %s" % (_x(best), _x(med)), "wall %s" % _us(wall), target)
    if "face" in ours and "azure" in ours:
        a, f = cpu_of(ours["azure"]), cpu_of(ours["face"])
        best = min(a) / min(f)
        med = _median([x / y for x, y in zip(a, f)])
        ok = max(best, 1 / best) <= TARGET_VOCAB and max(med, 1 / med) <= TARGET_VOCAB
        target = "within %d%%: %s" % (round((TARGET_VOCAB - 1) * 100), _verdict(ok))
        report.row("(c) opstatus CPU per poll, \"azure\" / \"face\" (plugins=None)",
                   _us(min(a)), _us(_median(a)), _us(min(f)) + " (face)",
                   "%s / %s" % (_x(best), _x(med)), "", target)
        report.verdict("(c) poll under \"azure\" / under \"face\"",
                       "%s best, %s median of rounds (%s vs %s)"
                       % (_x(best), _x(med), _us(min(a)), _us(min(f))), ok)


###############################################################################
# (d) Connections


def _take_body(i):
    return json.dumps({"type": "PersonGroup", "objectId": "bench-%d" % i,
                       "applyScope": [SCOPE]}).encode("utf-8")


class _FloorPost(object):
    def __init__(self, endpoint, key):
        import http.client
        from urllib.parse import urlsplit

        parts = urlsplit(endpoint)
        self.conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
        self.path = opstatus.FACE_API_PATH + "/snapshots"
        self.headers = {opstatus.KEY_HEADER: key, "Accept": "application/json",
                        "User-Agent": "opstatus/" + opstatus.__version__,
                        "Content-Type": "application/json; charset=utf-8"}

    def post(self, i):
        conn = self.conn
        conn.request("POST", self.path, body=_take_body(i), headers=self.headers)
        response = conn.getresponse()
        response.read()
        if response.status != 202:
            raise RuntimeError("floor POST answered %d" % response.status)
        return response.getheader("operation-location")

    def close(self):
        self.conn.close()


class _OpstatusPost(object):
    def __init__(self, endpoint, key, shared):
        self.endpoint, self.key = endpoint, key
        self.transport = opstatus.HTTPTransport() if shared else None

    def post(self, i):
        return opstatus.take_snapshot(self.endpoint, self.key, object_type="PersonGroup",
                                      object_id="bench-%d" % i, apply_scope=[SCOPE],
                                      allow_http=True, transport=self.transport)

    def close(self):
        if self.transport is not None:
            self.transport.close()


class _RequestsPost(object):
    def __init__(self, endpoint, key):
        import requests

        self.session = requests.Session()
        self.session.headers[opstatus.KEY_HEADER] = key
        self.url = endpoint + opstatus.FACE_API_PATH + "/snapshots"

    def post(self, i):
        response = self.session.post(self.url, data=_take_body(i),
                                     headers={"Content-Type": "application/json"})
        if response.status_code != 202:
            raise RuntimeError("requests POST answered %d" % response.status_code)
        return response.headers["operation-location"]

    def close(self):
        self.session.close()


class _AzurePost(object):
    def __init__(self, endpoint, key):
        from azure.core import PipelineClient
        from azure.core.rest import HttpRequest

        self.client = PipelineClient(base_url=endpoint)
        self.request = HttpRequest
        self.url = endpoint + opstatus.FACE_API_PATH + "/snapshots"
        self.headers = {opstatus.KEY_HEADER: key, "Content-Type": "application/json"}

    def post(self, i):
        response = self.client.send_request(self.request("POST", self.url, headers=self.headers,
                                                         content=_take_body(i)))
        if response.status_code != 202:
            raise RuntimeError("azure-core POST answered %d" % response.status_code)
        return response.headers["operation-location"]

    def close(self):
        self.client.close()


def run_posts(sim, posts, progress):
    """Interleaved rounds of POSTs; per client its CPU samples and the
    connections the simulator accepted while it sent."""
    ep, key = sim.endpoint, sim.key
    clients = [("floor: http.client POST, one kept-alive connection", _FloorPost(ep, key)),
               ("opstatus take_snapshot, one shared HTTPTransport",
                _OpstatusPost(ep, key, shared=True)),
               ("opstatus take_snapshot, no transport= (one per call)",
                _OpstatusPost(ep, key, shared=False))]
    if _have("requests"):
        clients.append(("requests: one Session", _RequestsPost(ep, key)))
    if _have("azure.core"):
        clients.append(("azure-core: one PipelineClient (default pipeline)",
                        _AzurePost(ep, key)))
    result = {label: {"cpu": [], "accepted": 0, "posts": 0} for label, _ in clients}
    for label, client in clients:  # warm-up: lazy imports; its connection counts
        before = sim.stats()
        client.post(0)
        result[label]["accepted"] += sim.stats()["accepted"] - before["accepted"]
        result[label]["posts"] += 1
    per_round = max(1, posts // POST_ROUNDS)
    rounds = posts // per_round
    cpu = time.process_time
    seq = 1
    for n in range(rounds):
        progress("POSTs: round %d of %d" % (n + 1, rounds))
        shift = n % len(clients)
        for label, client in clients[shift:] + clients[:shift]:
            before = sim.stats()
            c0 = cpu()
            for _ in range(per_round):
                client.post(seq)
                seq += 1
            c1 = cpu()
            after = sim.stats()
            entry = result[label]
            entry["cpu"].append((c1 - c0) / per_round)
            entry["accepted"] += after["accepted"] - before["accepted"]
            entry["posts"] += per_round
    for _label, client in clients:
        client.close()
    return clients, result


def report_posts(report, clients, result):
    floor = result[clients[0][0]]["cpu"]
    for label, _client in clients:
        entry = result[label]
        mine = entry["cpu"]
        best = min(mine) / min(floor)
        med = _median([m / f for m, f in zip(mine, floor)])
        target = "(info)"
        if "shared HTTPTransport" in label:
            n, limit = entry["posts"], TARGET_POST_CONNECTIONS
            ok = entry["accepted"] <= limit
            target = "<= %d connections: %s" % (limit, _verdict(ok))
            report.verdict("(d) %d take POSTs through one HTTPTransport" % n,
                           "%s accepted by the simulator" % _conns(entry["accepted"]), ok)
        report.row("(d) %d POSTs, %s: client CPU per POST" % (entry["posts"], label),
                   _us(min(mine)), _us(_median(mine)), _us(min(floor)),
                   "%s / %s" % (_x(best), _x(med)),
                   _conns(entry["accepted"]),
                   target if target != "(info)" else
                   "(the floor)" if label == clients[0][0] else "(info)")


def _make_operations(sim, n):
    """n take operations, started through one shared transport."""
    transport = opstatus.HTTPTransport()
    try:
        return [opstatus.take_snapshot(sim.endpoint, sim.key, object_type="PersonGroup",
                                       object_id="follow-%d" % i, apply_scope=[SCOPE],
                                       allow_http=True, transport=transport)
                for i in range(n)]
    finally:
        transport.close()


def follow_poll_async(sim, locations):
    import asyncio

    async def all_of_them():
        return await asyncio.gather(*(
            opstatus.poll_async(loc, endpoint=sim.endpoint, key=sim.key, allow_http=True)
            for loc in locations), return_exceptions=True)

    async def bounded():
        return await asyncio.wait_for(all_of_them(), WATCH_LIMIT)

    results = asyncio.run(bounded())
    return sum(1 for r in results if isinstance(r, opstatus.OperationStatus) and r.succeeded)


def follow_watcher(sim, locations):
    watcher = opstatus.Watcher(locations, endpoint=sim.endpoint, key=sim.key, allow_http=True,
                               timeout=WATCH_LIMIT)
    return sum(1 for o in watcher if o.ok and o.status.succeeded)


def run_follow(sim, n, progress):
    out = {}
    for name, follow in (("poll_async", follow_poll_async), ("Watcher", follow_watcher)):
        progress("connections: %d operations, then %s" % (n, name))
        locations = _make_operations(sim, n)
        before = sim.stats()
        t0 = time.perf_counter()
        ok = follow(sim, locations)
        wall = time.perf_counter() - t0
        got = _servers.delta(sim.stats(), before)
        out[name] = {"n": n, "ok": ok, "wall": wall, "accepted": got["accepted"],
                     "gets": got["requests"].get("GET", 0)}
    return out


def report_follow(report, follow):
    for name, entry in follow.items():
        ok = entry["accepted"] <= TARGET_FOLLOW_CONNECTIONS
        label = "%s of %d operations (default arguments)" % (name, entry["n"])
        report.row("(d) %s: connections; succeeded, GETs, wall" % label,
                   "", "", "", "", "%s; %d of %d, %d GETs, %.1f s"
                   % (_conns(entry["accepted"]), entry["ok"], entry["n"], entry["gets"],
                      entry["wall"]),
                   "<= %d connections: %s" % (TARGET_FOLLOW_CONNECTIONS, _verdict(ok)))
        report.verdict("(d) %s" % label, "%s, %d of %d succeeded"
                       % (_conns(entry["accepted"]), entry["ok"], entry["n"]), ok)
        if entry["ok"] != entry["n"]:
            report.notes.append("%s: only %d of %d operations reported succeeded"
                                % (name, entry["ok"], entry["n"]))


###############################################################################
# Profiles


def _module_of(filename, name):
    """A short name for where a function lives: opstatus.py, http/client.py,
    email/, json/, socket I/O, <built-in>..."""
    if filename == "~":
        if "_socket.socket" in name or "SSLSocket" in name:
            return "socket calls (waits included)"
        return "<built-in>"
    parts = filename.replace("\\", "/").split("/")
    if parts[-1] == "opstatus.py":
        return "opstatus.py"
    if len(parts) >= 2 and parts[-2] in ("http", "json", "email", "urllib", "asyncio",
                                         "concurrent", "futures", "pluggy"):
        return parts[-2] + "/" + (parts[-1] if parts[-2] == "http" else "")
    return parts[-1]


def _profile(func):
    """(rows, own time by module, total) of cProfile over func()."""
    import cProfile
    import pstats

    profiler = cProfile.Profile()
    profiler.enable()
    func()
    profiler.disable()
    stats = pstats.Stats(profiler)
    rows, by_module, total, builtins = [], {}, 0.0, {}
    for (filename, line, name), (_cc, calls, tottime, cumtime, _callers) in stats.stats.items():
        if os.path.basename(filename) == "bench_poll.py" or "_lsprof" in name:
            continue
        where = "%s:%d(%s)" % (os.path.basename(filename), line, name) \
            if filename != "~" else name
        rows.append((cumtime, tottime, calls, where))
        module = _module_of(filename, name)
        by_module[module] = by_module.get(module, 0.0) + tottime
        if filename == "~":
            builtins[name] = builtins.get(name, 0.0) + tottime
        total += tottime
    rows.sort(reverse=True)
    return rows, by_module, total, builtins


def profile_lines(title, floor_func, func, units, top=10):
    """cProfile the floor's work and opstatus's (each *units* units): own time
    by module side by side, then opstatus's functions by cumulative time
    and opstatus.py's by own time, per unit."""
    per = 1e6 / units
    _frows, fmod, ftotal, fbuilt = _profile(floor_func)
    rows, mod, total, built = _profile(func)
    out = ["%s: cProfile (wall-clock timer; socket calls include the wait for the server;"
           " the profiler inflates calls to small functions), %d units; us per unit"
           % (title, units), "",
           "| own time in | floor | opstatus | difference |", "|---|---:|---:|---:|"]
    for module in sorted(set(fmod) | set(mod), key=lambda m: -(mod.get(m, 0) - fmod.get(m, 0))):
        f, o = fmod.get(module, 0.0) * per, mod.get(module, 0.0) * per
        if max(f, o) >= 0.5:
            out.append("| %s | %.1f | %.1f | %+.1f |" % (module, f, o, o - f))
    out.append("| all | %.1f | %.1f | %+.1f |" % (ftotal * per, total * per,
                                                 (total - ftotal) * per))
    out += ["", "| cum us/unit | own us/unit | calls/unit | opstatus's function |",
            "|---:|---:|---:|---|"]
    for cumtime, tottime, calls, where in rows[:top]:
        out.append("| %.1f | %.1f | %.3g | `%s` |" % (cumtime * per, tottime * per,
                                                   calls / units, where))
    own = [r for r in sorted(rows, key=lambda r: r[1], reverse=True)
           if r[3].startswith("opstatus.py")][:12]
    out.append("")
    out.append("most own time in opstatus.py, us/unit: " + "; ".join(
        "%s %.1f" % (w.split(":", 1)[1], t * per) for _c, t, _n, w in own))
    more = sorted(((built.get(n, 0.0) - fbuilt.get(n, 0.0), n) for n in set(built) | set(fbuilt)),
                  reverse=True)[:8]
    out.append("built-ins with the most more own time than in the floor, us/unit: " + "; ".join(
        "%s %+.1f" % (n, d * per) for d, n in more if d * per >= 0.3))
    return out


def _spy_loop(spy, work, seconds):
    """Run work() (one unit) over and over for *seconds* under *spy*: the
    stacks, the number of units, and the (user, system) CPU seconds of
    this process per unit meanwhile."""
    import resource

    spy.start()
    units = 0
    deadline = time.perf_counter() + seconds
    r0 = resource.getrusage(resource.RUSAGE_SELF)
    try:
        while time.perf_counter() < deadline:
            for _ in range(20):
                work()
            units += 20
    finally:
        r1 = resource.getrusage(resource.RUSAGE_SELF)
        stacks = spy.stop()
    return stacks, units, ((r1.ru_utime - r0.ru_utime) / units,
                           (r1.ru_stime - r0.ru_stime) / units)


def _below_loop(stacks):
    """The stacks seen inside _spy_loop, the frames from there out cut off
    (and the benchmark's own lambdas and wrappers with them)."""
    out = []
    for frames, count in stacks:
        at = [i for i, f in enumerate(frames) if f.startswith("_spy_loop ")]
        if not at:
            continue  # py-spy's attach, or the spy's own start/stop
        rest = frames[at[0] + 1:]
        while rest and (os.path.basename(_servers.frame_module(rest[0])) == "bench_poll.py"):
            rest = rest[1:]
        if rest:
            out.append((rest, count))
        else:
            out.append(([frames[at[0]]], count))
    return out


def spy_lines(title, floor_work, work, seconds, top=16):
    """py-spy --gil over the floor's unit of work and opstatus's, each
    repeated for *seconds*: where the Python time goes, per unit, side by
    side by module, then opstatus's side by function."""
    spy = _servers.PySpy(rate=1000, gil=True)
    fstacks, funits, (fuser, fsys) = _spy_loop(spy, floor_work, seconds)
    stacks, units, (user, sys_) = _spy_loop(spy, work, seconds)
    ftotal, _fown, _finc, fmod = _servers.tally(_below_loop(fstacks))
    total, own, inclusive, mod = _servers.tally(_below_loop(stacks))
    # Samples of the thread holding the GIL, spread over the user CPU time
    # measured meanwhile (py-spy's own rate drifts; its totals are not times).
    fper = fuser * 1e6 / max(1, ftotal)
    per = user * 1e6 / max(1, total)
    out = ["%s: py-spy --gil --nonblocking, %.0f s each, %d and %d units; the samples "
           "(Python code holding the GIL) spread over the user CPU per unit measured "
           "meanwhile: floor %.1f us user + %.1f us system, opstatus %.1f + %.1f (both "
           "slowed by the sampling); us per unit" % (
               title, seconds, funits, units, fuser * 1e6, fsys * 1e6, user * 1e6,
               sys_ * 1e6), "",
           "| user time in | floor | opstatus | difference |", "|---|---:|---:|---:|"]
    for module in sorted(set(fmod) | set(mod),
                         key=lambda m: -(mod.get(m, 0) * per - fmod.get(m, 0) * fper)):
        f, o = fmod.get(module, 0) * fper, mod.get(module, 0) * per
        if max(f, o) >= 0.5:
            out.append("| %s | %.1f | %.1f | %+.1f |" % (module, f, o, o - f))
    out.append("| all | %.1f | %.1f | %+.1f |" % (ftotal * fper, total * per,
                                                 total * per - ftotal * fper))
    out += ["", "| inclusive us/unit | own us/unit | opstatus's side: function |",
            "|---:|---:|---|"]
    for frame, count in sorted(inclusive.items(), key=lambda kv: -kv[1])[:top]:
        out.append("| %.1f | %.1f | `%s` |" % (count * per, own.get(frame, 0) * per, frame))
    out.append("")
    out.append("most own time (opstatus's side), us/unit: " + "; ".join(
        "%s %.1f" % (f, c * per) for f, c in sorted(own.items(), key=lambda kv: -kv[1])[:14]))
    return out


def run_profiles(report, sim, face_url, job_url, quick):
    lines = []
    spy = _servers.PySpy().available
    spy_seconds = 1.5 if quick else 3.0
    n_read = 20000 if not quick else 5000

    def read_floor():
        for _ in range(n_read):
            floor_read(BODY_2021)

    def read_work():
        f = opstatus.OperationStatus.from_json
        for _ in range(n_read):
            f(BODY_2021)

    lines += profile_lines("from_json(254-byte 2021 body) vs floor_read", read_floor,
                           read_work, n_read)
    lines.append("")
    if spy:
        from_json = opstatus.OperationStatus.from_json
        lines += spy_lines("from_json(254-byte 2021 body) vs floor_read",
                           lambda: floor_read(BODY_2021), lambda: from_json(BODY_2021),
                           spy_seconds)
        lines.append("")
    n_poll = 2000 if not quick else 500
    for vocab, url in (("face", face_url), ("azure", job_url)):
        floor = _FloorPoll(url, sim.key)
        client = _OpstatusPoll(url, sim.endpoint, sim.key,
                               vocabulary=None if vocab == "face" else "azure")
        for _ in range(20):
            floor.poll()
            client.poll()

        def poll_floor():
            for _ in range(n_poll):
                floor.poll()

        def poll_work():
            for _ in range(n_poll):
                client.poll()

        lines += profile_lines("Poller.step() under %r, plugins=None, vs the http.client floor"
                               % vocab, poll_floor, poll_work, n_poll)
        lines.append("")
        if spy:
            lines += spy_lines("Poller.step() under %r, plugins=None, vs the http.client floor"
                               % vocab, floor.poll, client.poll, spy_seconds)
            lines.append("")
        client.close()
        floor.close()
    n_post = 1000 if not quick else 300
    floor = _FloorPost(sim.endpoint, sim.key)
    poster = _OpstatusPost(sim.endpoint, sim.key, shared=True)
    floor.post(0)
    poster.post(0)

    def post_floor():
        for i in range(n_post):
            floor.post(i + 1)

    def post_work():
        for i in range(n_post):
            poster.post(i + 1)

    lines += profile_lines("take_snapshot(transport=shared HTTPTransport) vs the http.client "
                           "POST floor", post_floor, post_work, n_post)
    if spy:
        counter = {"i": 10 ** 6}

        def one_floor():
            counter["i"] += 1
            floor.post(counter["i"])

        def one_post():
            counter["i"] += 1
            poster.post(counter["i"])

        lines.append("")
        lines += spy_lines("take_snapshot(transport=shared HTTPTransport) vs the http.client "
                           "POST floor", one_floor, one_post, spy_seconds)
    poster.close()
    floor.close()
    return lines


###############################################################################
# Main


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="fewer rounds; %d POSTs and %d operations instead of %d and %d"
                        % (QUICK_POSTS, QUICK_OPERATIONS, POSTS, OPERATIONS))
    parser.add_argument("--only", action="append", choices=("read", "poll", "conn"),
                        help="run only this part (repeatable): read = (a), poll = (b) and "
                        "(c), conn = (d)")
    parser.add_argument("--profile", action="store_true",
                        help="then profile from_json, a poll and a POST with cProfile")
    args = parser.parse_args(argv)
    parts = set(args.only or ("read", "poll", "conn"))
    quick = args.quick
    started = time.perf_counter()
    load_start = _loadavg()

    def progress(message):
        _common.progress("[%5.1f s] %s" % (time.perf_counter() - started, message))

    report = Report()
    profiles = []
    if "read" in parts:
        rounds = QUICK_READ_ROUNDS if quick else READ_ROUNDS
        cands, samples = run_read(rounds, progress)
        report_read(report, cands, samples, rounds)
    if "poll" in parts or args.profile:
        rounds = QUICK_POLL_ROUNDS if quick else POLL_ROUNDS
        per = QUICK_POLLS_PER_SAMPLE if quick else POLLS_PER_SAMPLE
        with _servers.CountingSimulator(["--take-seconds", "100000000", "--idle-timeout",
                                         "600"]) as sim:
            face_url, job_url = start_pollable(sim)
            if "poll" in parts:
                clients = poll_clients(sim, face_url, job_url)
                samples = run_polls(clients, per, rounds, progress)
                for _label, client, _group in clients:
                    client.close()
                report_polls(report, clients, samples, per, rounds)
            if args.profile:
                progress("profiling")
                profiles = run_profiles(report, sim, face_url, job_url, quick)
    if "conn" in parts:
        posts = QUICK_POSTS if quick else POSTS
        n = QUICK_OPERATIONS if quick else OPERATIONS
        with _servers.CountingSimulator(["--take-seconds", repr(TAKE_SECONDS),
                                         "--queue-seconds", repr(QUEUE_SECONDS)]) as sim:
            clients, result = run_posts(sim, posts, progress)
            report_posts(report, clients, result)
            follow = run_follow(sim, n, progress)
            report_follow(report, follow)
            if not sim.alive():
                report.notes.append("the simulator process died during part (d)")
    progress("")

    versions = _versions()
    print(_common.python_line() + ", %d CPUs" % (os.cpu_count() or 0))
    print("- opstatus %s (%s)" % (opstatus.__version__, opstatus.__file__))
    print("- peers: " + ", ".join("%s %s" % (d, v or "(not installed)") for d, v in versions))
    print("- load average at start / end: %s / %s" % (load_start, _loadavg()))
    print("- command: python benchmarks/bench_poll.py%s" % (
        "".join(" " + a for a in (argv if argv is not None else sys.argv[1:]))))
    if "read" in parts:
        print("- (a) timeit, %d interleaved rounds of ~%d ms per candidate; the body is %d "
              "bytes; floor = json.loads + 2 x %s + a frozen dataclass of 9 fields"
              % (QUICK_READ_ROUNDS if quick else READ_ROUNDS, SAMPLE_SECONDS * 1000,
                 len(BODY_2021), FROMISO_NOTE))
    if "poll" in parts:
        print("- (b)/(c) %d interleaved rounds of %d polls per client on one kept-alive "
              "connection each, client CPU by time.process_time(); `opstatus serve` in "
              "another process" % (QUICK_POLL_ROUNDS if quick else POLL_ROUNDS,
                                   QUICK_POLLS_PER_SAMPLE if quick else POLLS_PER_SAMPLE))
    if "conn" in parts:
        print("- (d) connections accepted, counted by the simulator process (`opstatus serve"
              " --take-seconds %g --queue-seconds %g`); POSTs in %d interleaved rounds, the"
              " first (warm-up) POST of each client included" % (TAKE_SECONDS, QUEUE_SECONDS,
                                                                  POST_ROUNDS))
    print("- ratio: figure / floor, as best of rounds / median of the rounds' own ratios")
    print("")
    for line in _common.markdown_table(["figure", "best", "median", "floor (best)", "ratio",
                                        "also", "target"], report.rows):
        print(line)
    print("")
    for line in report.summary:
        print(line)
    if platform.python_implementation() != "CPython" or sys.version_info[:2] != (3, 11):
        print("[the targets are stated for CPython 3.11 (read: 3.7, 3.11, 3.13); measured on "
              "%s %d.%d]" % (platform.python_implementation(), sys.version_info[0],
                             sys.version_info[1]))
    for note in report.notes:
        print("note: " + note)
    if profiles:
        print("")
        for line in profiles:
            print(line)
    print("")
    print("(run time %.1f s)" % (time.perf_counter() - started))
    return 0


if __name__ == "__main__":
    sys.exit(main())
