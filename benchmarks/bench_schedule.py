"""Billed polls and detection lag of opstatus's default schedule, beside
fixed-interval loops, on a fake clock.

Run from the repository root::

    python benchmarks/bench_schedule.py           # 50 seeds per duration
    python benchmarks/bench_schedule.py --quick   # 10 seeds per duration

No network and no real sleeping: a real ``opstatus.Poller`` (default
``RetryPolicy()``, default plugins) polls an in-process fake transport whose
answers (running, then succeeded, with consistent ``createdTime`` and
``lastActionTime``) follow an injected fake clock; the poller's ``sleep``
advances that clock. The peers are simulated on the same fake clock and the
same fake service:

- azure-core ``LROPoller`` with its default polling interval (read from the
  installed ``LROBasePolling``; 30 s when azure-core is not installed), a
  first poll at once, then one poll per interval;
- a plain fixed 1 s loop.

For each nominal duration (1 s, 10 s, 100 s, 1 h) every seed draws the real
duration within +/-5 % of the nominal one (the same draw for all three
pollers), so that no loop lands on the finish by the accident of round
numbers, and seeds opstatus's jitter (``random=random.Random(seed).random``).
"Polls" are the GETs sent (each one billed by the service); "lag" is the time
from the operation's completion until a poll returns it, mean and worst over
the seeds. Requests take no time on the fake clock.

Targets (opstatus, checked on the worst seed): lag at most the larger of
0.5 s and 25 % of the operation's age, and never above ``opstatus.DEFAULT_CAP``;
for a 1-hour operation, no more polls than the fixed 30 s loop. Printed,
never asserted. The poller runs with ``timeout=None``; a last line says what
the default ``timeout`` (``opstatus.DEFAULT_TIMEOUT``) does to the 1-hour
operation.

Works on Python 3.7+ with or without azure-core installed.
"""

from __future__ import print_function

import argparse
import datetime
import json
import math
import random
import sys
import time

try:  # puts the opstatus.py of this checkout first on sys.path
    from . import _common  # imported as benchmarks.<name>
except ImportError:
    import _common  # run as a script, or imported with benchmarks/ on sys.path

import opstatus  # noqa: E402

#: Nominal operation durations, in seconds, with their labels.
DURATIONS = ((1.0, "1 s"), (10.0, "10 s"), (100.0, "100 s"), (3600.0, "1 h"))

#: Each seed's real duration is the nominal one times 1 +/- SPREAD.
SPREAD = 0.05

SEEDS = 50
QUICK_SEEDS = 10

#: Fixed loop of the table besides azure-core's default.
FIXED_FAST = 1.0

#: azure-core's documented default, used when it is not installed.
AZURE_DEFAULT_INTERVAL = 30.0

#: Fake wall time of the fake clock's zero (POSIX seconds).
WALL0 = 1700000000.0

OPERATION_URL = "https://westus.api.cognitive.microsoft.com/face/v1.0/operations/" \
    "00000000-0000-0000-0000-000000000001"


def azure_interval():
    """(default polling interval of azure-core's LROBasePolling, version or None)."""
    try:
        import inspect

        import azure.core
        from azure.core.polling.base_polling import LROBasePolling
    except Exception:
        return AZURE_DEFAULT_INTERVAL, None
    default = inspect.signature(LROBasePolling.__init__).parameters["timeout"].default
    return float(default), _common.distribution_version("azure-core", azure.core)


class FakeClock(object):
    """Monotonic seconds that move only when someone sleeps."""

    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        if seconds > 0:
            self.now += seconds


def wire_time(posix):
    """POSIX time as the service writes it: 7 fraction digits, zeros trimmed."""
    whole = int(posix // 1)
    ticks = int(round((posix - whole) * 10 ** 7))
    if ticks >= 10 ** 7:
        whole, ticks = whole + 1, ticks - 10 ** 7
    dt = datetime.datetime(1970, 1, 1) + datetime.timedelta(seconds=whole)
    text = dt.strftime("%Y-%m-%dT%H:%M:%S")
    if ticks:
        text += ("." + "%07d" % ticks).rstrip("0")
    return text + "Z"


class FakeService(object):
    """One operation created at fake time 0 that succeeds at *duration*.

    Also an opstatus transport: ``send(request)`` answers the status document
    (2021 dialect) of the fake clock's present.
    """

    def __init__(self, clock, duration):
        self.clock = clock
        self.duration = duration
        self.requests = 0

    def document(self):
        now = self.clock()
        self.requests += 1
        doc = {"createdTime": wire_time(WALL0)}
        if now < self.duration:
            doc["status"] = "running"
            doc["lastActionTime"] = wire_time(WALL0 + now)
            doc["resourceLocation"] = "/snapshots/"
        else:
            doc["status"] = "succeeded"
            doc["lastActionTime"] = wire_time(WALL0 + self.duration)
            doc["finishedTime"] = wire_time(WALL0 + self.duration)
            doc["resourceLocation"] = "/snapshots/11111111-2222-3333-4444-555555555555"
        return doc

    def send(self, request):
        body = json.dumps(self.document()).encode("utf-8")
        return opstatus.Response(200, {"Content-Type": "application/json; charset=utf-8"}, body)


def run_opstatus(duration, seed, timeout=None):
    """(polls, lag or None, error or None) of a default opstatus.Poller."""
    clock = FakeClock()
    service = FakeService(clock, duration)
    poller = opstatus.Poller(
        OPERATION_URL, key="bench-key", transport=service, timeout=timeout,
        clock=clock, sleep=clock.sleep, random=random.Random(seed).random,
    )
    try:
        for status in poller:
            if status.is_terminal:
                return poller.polls, clock() - duration, None
    except opstatus.OpStatusError as exc:
        return poller.polls, None, exc
    return poller.polls, None, None  # pragma: no cover - ends terminal


def run_fixed(duration, interval):
    """(polls, lag) of a loop that polls at once, then every *interval* s."""
    clock = FakeClock()
    service = FakeService(clock, duration)
    polls = 0
    while True:
        polls += 1
        if service.document()["status"] == "succeeded":
            return polls, clock() - duration
        clock.sleep(interval)


def durations_for(nominal, seed):
    """The real duration of *seed*'s operation of *nominal* seconds."""
    draw = random.Random("duration-%d" % seed).random()
    return nominal * (1.0 + SPREAD * (2.0 * draw - 1.0))


def lag_target(duration):
    """The most lag opstatus aims at for an operation of *duration* s."""
    return min(max(0.5, 0.25 * duration), opstatus.DEFAULT_CAP)


def run(seeds, azure_every, progress=None):
    """{nominal: {"opstatus": [(polls, lag)], "azure": [...], "fixed": [...], "durations": [...]}}"""
    results = {}
    for nominal, label in DURATIONS:
        if progress is not None:
            progress("operation of %s" % label)
        row = {"opstatus": [], "azure": [], "fixed": [], "durations": [], "errors": []}
        for seed in range(seeds):
            duration = durations_for(nominal, seed)
            row["durations"].append(duration)
            polls, lag, error = run_opstatus(duration, seed)
            if error is not None:
                row["errors"].append(error)
            row["opstatus"].append((polls, lag))
            row["azure"].append(run_fixed(duration, azure_every))
            row["fixed"].append(run_fixed(duration, FIXED_FAST))
        results[nominal] = row
    return results


def default_timeout_check(seeds):
    """What the default timeout does to the 1-hour operation:
    (ended, total, first error, shortest duration that did not end)."""
    nominal = DURATIONS[-1][0]
    ended, error, shortest_failed = 0, None, None
    for seed in range(seeds):
        duration = durations_for(nominal, seed)
        _polls, lag, exc = run_opstatus(duration, seed, timeout=opstatus.DEFAULT_TIMEOUT)
        if exc is None and lag is not None:
            ended += 1
            continue
        if error is None:
            error = exc
        if shortest_failed is None or duration < shortest_failed:
            shortest_failed = duration
    return ended, seeds, error, shortest_failed


def _mean(values):
    return sum(values) / float(len(values))


def _fmt_s(seconds):
    if seconds is None:
        return "n/a"
    if seconds < 10:
        return "%.2f s" % seconds
    return "%.1f s" % seconds


def _fmt_polls(values):
    mean = _mean(values)
    low, high = min(values), max(values)
    if low == high:
        return "%d" % low
    return "%.1f (%d-%d)" % (mean, low, high)


def _lag_cell(samples):
    lags = [lag for _polls, lag in samples if lag is not None]
    if len(lags) != len(samples):
        return "did not end"
    return "%s / %s" % (_fmt_s(_mean(lags)), _fmt_s(max(lags)))


def report(results, seeds, azure_every, azure_version, timeout_check):
    """The lines to print: header, table, targets."""
    out = [_common.python_line()]
    out.append("- opstatus %s (%s): RetryPolicy() = floor %g s, cap %g s, growth %g, "
               "jitter %g" % (opstatus.__version__, opstatus.__file__, opstatus.DEFAULT_FLOOR,
                              opstatus.DEFAULT_CAP, opstatus.DEFAULT_GROWTH,
                              opstatus.DEFAULT_JITTER))
    out.append("- peers: azure-core %s (LROBasePolling default interval %g s); fixed %g s loop"
               % (azure_version or "(not installed: documented default used)", azure_every,
                  FIXED_FAST))
    out.append("- fake clock, no network: %d seeds per duration, real duration = nominal "
               "+/-%g %%; polls = GETs sent (mean (min-max)); lag = completion to poll that "
               "returns it (mean / worst)" % (seeds, SPREAD * 100))
    out.append("")

    header = ["operation", "opstatus polls", "opstatus lag",
              "azure-core %gs polls" % azure_every, "azure-core %gs lag" % azure_every,
              "fixed %gs polls" % FIXED_FAST, "fixed %gs lag" % FIXED_FAST,
              "polls opstatus/azure", "lag target", "opstatus"]
    rows = []
    verdicts = []
    for nominal, label in DURATIONS:
        row = results[nominal]
        ops, azure, fixed = row["opstatus"], row["azure"], row["fixed"]
        op_polls = [p for p, _ in ops]
        az_polls = [p for p, _ in azure]
        lags = [lag for _p, lag in ops]
        ended = all(lag is not None for lag in lags)
        worst_ok = ended and all(
            lag <= lag_target(d) + 1e-9 for lag, d in zip(lags, row["durations"]))
        capped = ended and max(lags) <= opstatus.DEFAULT_CAP
        verdict = "pass" if worst_ok and capped else "miss"
        verdicts.append((label, verdict, ended and max(lags)))
        rows.append([
            label,
            _fmt_polls(op_polls),
            _lag_cell(ops),
            _fmt_polls(az_polls),
            _lag_cell(azure),
            _fmt_polls([p for p, _ in fixed]),
            _lag_cell(fixed),
            "%.2fx" % (_mean(op_polls) / _mean(az_polls)),
            "<= %s" % _fmt_s(lag_target(nominal)),
            verdict,
        ])
    out.extend(_common.markdown_table(header, rows))
    out.append("")

    parts = []
    for label, verdict, worst in verdicts:
        parts.append("%s %s (worst %s)" % (label, verdict, _fmt_s(worst) if worst is not False
                                            else "n/a"))
    out.append("target lag <= max(0.5 s, 25 %% of age) and <= cap %g s, every seed: %s"
               % (opstatus.DEFAULT_CAP, "; ".join(parts)))
    hour = results[DURATIONS[-1][0]]
    op_polls = [p for p, _ in hour["opstatus"]]
    az_polls = [p for p, _ in hour["azure"]]
    worse = sum(1 for a, b in zip(op_polls, az_polls) if a > b)
    out.append("target 1 h polls <= fixed %gs loop: opstatus %.1f vs %.1f (mean), worse on "
               "%d of %d seeds: %s" % (
                   azure_every, _mean(op_polls), _mean(az_polls), worse, len(op_polls),
                   "pass" if worse == 0 else "miss"))
    errors = [e for r in results.values() for e in r["errors"]]
    if errors:
        out.append("errors with timeout=None: %d, first: %s: %s"
                   % (len(errors), type(errors[0]).__name__, errors[0]))
    ended, total, error, shortest_failed = timeout_check
    line = ("default timeout (%g s), 1 h operation: %d of %d seeds end"
            % (opstatus.DEFAULT_TIMEOUT, ended, total))
    if error is not None:
        line += ("; the others (real duration %.0f s and up) raise %s: %s"
                 % (shortest_failed, type(error).__name__, error))
    out.append(line)
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(
        description="Polls and detection lag of opstatus's default schedule vs fixed loops."
    )
    parser.add_argument(
        "--quick", action="store_true",
        help="%d seeds per duration instead of %d" % (QUICK_SEEDS, SEEDS),
    )
    args = parser.parse_args(argv)
    seeds = QUICK_SEEDS if args.quick else SEEDS
    azure_every, azure_version = azure_interval()

    started = time.perf_counter()
    results = run(seeds, azure_every, _common.progress)
    timeout_check = default_timeout_check(seeds)
    _common.progress("")
    for line in report(results, seeds, azure_every, azure_version, timeout_check):
        print(line)
    print("(run time %.1f s)" % (time.perf_counter() - started))
    return 0


if __name__ == "__main__":
    sys.exit(main())
