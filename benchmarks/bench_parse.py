"""Time opstatus.parse_datetime beside the other ISO 8601 parsers.

Run from the repository root, on each Python to compare::

    python benchmarks/bench_parse.py           # 15 interleaved rounds
    python benchmarks/bench_parse.py --quick   # 5 rounds

Each peer is timed only if it can be imported (``pip install -r
benchmarks/requirements.txt``); ``datetime.datetime.fromisoformat`` is always
there, but before Python 3.11 it rejects most of the inputs.

The parsers are timed side by side in one run: every round times every
(input, parser) pair once, in a rotating order, so that a change in the
machine's load falls on all of them alike. Each sample is a loop of as many
calls as take about 20 ms (calibrated once per pair). The output is Markdown
that can be pasted into the README as is:

- a table of microseconds per call (the best of the rounds) and the ratio
  peer time / opstatus time, so a ratio above 1 means opstatus is faster;
  "rejects" means the parser raised on that input, and a mark after a cell
  means it returned a different datetime from opstatus (other fields, other
  UTC offset, or aware where opstatus is naive or the other way round), as
  the notes under the table say;
- opstatus against ``dateutil.parser.isoparse`` (and ``iso8601``) on the three
  inputs that the targets name: the service's timestamp, a date alone and the
  basic format, as the ratio of the best times and as the median of the
  rounds' own ratios, with the targets and whether they hold (both ratios
  must reach the target);
- one row for the README's table of ratios per Python version.

Works on Python 3.7+ (CPython and PyPy), with or without any peer installed.
"""

from __future__ import print_function

import argparse
import datetime
import platform
import sys
import timeit

try:  # puts the opstatus.py of this checkout first on sys.path
    from . import _common  # imported as benchmarks.<name>
except ImportError:
    import _common  # run as a script, or imported with benchmarks/ on sys.path

import opstatus  # noqa: E402

#: The service's own timestamp (7 fraction digits, ``Z``).
SERVICE_TIMESTAMP = "2018-12-25T11:41:02.2331413Z"
DATE_ONLY = "2018-12-25"
BASIC_FORMAT = "20181225T114102Z"

INPUTS = (
    SERVICE_TIMESTAMP,
    "2018-12-25T11:41:02Z",
    "2018-12-25T11:41:02.233141+01:00",
    DATE_ONLY,
    BASIC_FORMAT,
    "2018-W52-2T11:41",
    "2018-12-25T11:41:02,5-05:00",
)

#: The inputs of the README's row, with their column titles.
ROW_INPUTS = (
    (SERVICE_TIMESTAMP, "service form"),
    (DATE_ONLY, "date only"),
    (BASIC_FORMAT, "basic format"),
)

DATEUTIL = "dateutil.parser.isoparse"

#: Issue 15's targets: (input, implementation, minimum dateutil time /
#: opstatus time). Printed with their verdicts, never asserted.
TARGETS = (
    (SERVICE_TIMESTAMP, "CPython", 10.0),
    (SERVICE_TIMESTAMP, "PyPy", 3.0),
    (DATE_ONLY, "CPython", 1.0),
    (BASIC_FORMAT, "CPython", 1.0),
)

ROUNDS = 15
QUICK_ROUNDS = 5
SAMPLE_SECONDS = 0.02


def load_parsers():
    """Return ([(label, function)], [(label, version or None)]).

    The first parser is always opstatus.parse_datetime; peers that cannot be
    imported are left out of the first list and get None as version.
    """
    parsers = [("opstatus.parse_datetime", opstatus.parse_datetime)]
    versions = []

    try:
        import dateutil
        import dateutil.parser
    except Exception:
        versions.append(("python-dateutil", None))
    else:
        parsers.append((DATEUTIL, dateutil.parser.isoparse))
        versions.append(("python-dateutil", _common.distribution_version("python-dateutil", dateutil)))

    try:
        import iso8601
    except Exception:
        versions.append(("iso8601", None))
    else:
        parsers.append(("iso8601.parse_date", iso8601.parse_date))
        versions.append(("iso8601", _common.distribution_version("iso8601", iso8601)))

    parsers.append(("datetime.fromisoformat", datetime.datetime.fromisoformat))
    versions.append(("datetime.fromisoformat", "stdlib " + platform.python_version()))

    try:
        import ciso8601
    except Exception:
        versions.append(("ciso8601", None))
    else:
        parsers.append(("ciso8601.parse_datetime", ciso8601.parse_datetime))
        versions.append(("ciso8601", _common.distribution_version("ciso8601", ciso8601)))

    return parsers, versions


def same_datetime(a, b):
    """True when *a* and *b* are datetimes with equal fields and UTC offset.

    Plain ``==`` is not enough: it calls two aware datetimes equal when they
    name the same instant in different offsets, and never raises for a naive
    against an aware one, it only says False.
    """
    if not (isinstance(a, datetime.datetime) and isinstance(b, datetime.datetime)):
        return False
    return (
        a.replace(tzinfo=None) == b.replace(tzinfo=None)
        and a.utcoffset() == b.utcoffset()
    )


def _show(value):
    if isinstance(value, datetime.datetime):
        return value.isoformat() + ("" if value.utcoffset() is not None else " (naive)")
    return repr(value)


def _timer(func, text):
    return timeit.Timer("func(text)", globals={"func": func, "text": text})


def _loops(timer):
    """Calls per sample: about SAMPLE_SECONDS' worth (at least one)."""
    number, seconds = timer.autorange()  # >= 0.2 s, a warm-up too (and PyPy's JIT)
    return max(1, int(number * SAMPLE_SECONDS / seconds))


def run(parsers, inputs=INPUTS, rounds=ROUNDS, progress=None):
    """Measure every (input, parser) pair in interleaved rounds.

    Returns {input: [(label, [seconds per call, one per round] or None,
    result or exception)]}, in the order of *parsers*; None instead of the
    samples when the parser raised on that input.
    """
    results = {}
    pairs = []  # (text, index in the row, timer, loops)
    for text in inputs:
        row = []
        for label, func in parsers:
            if progress is not None:
                progress("calibrating %s  %r" % (label, text))
            try:
                value = func(text)
            except Exception as exc:
                row.append((label, None, exc))
                continue
            timer = _timer(func, text)
            pairs.append((text, len(row), timer, _loops(timer)))
            row.append((label, [], value))
        results[text] = row
    for n in range(rounds):
        if progress is not None:
            progress("round %d of %d" % (n + 1, rounds))
        shift = n % len(pairs) if pairs else 0
        for text, index, timer, loops in pairs[shift:] + pairs[:shift]:
            results[text][index][1].append(timer.timeit(loops) / loops)
    return results


def _median(values):
    ordered = sorted(values)
    middle = len(ordered) // 2
    if len(ordered) % 2:
        return ordered[middle]
    return (ordered[middle - 1] + ordered[middle]) / 2.0


def ratios(row, label):
    """(peer best / opstatus best, median over rounds of peer / opstatus),
    or None when either parser rejects the input or *label* is absent."""
    base = row[0][1]
    for peer, samples, _ in row[1:]:
        if peer == label and samples and base:
            return (
                min(samples) / min(base),
                _median([p / o for p, o in zip(samples, base)]),
            )
    return None


class _Symbols(object):
    """Non-ASCII marks, with ASCII stand-ins for an output that cannot
    encode them."""

    def __init__(self, stream):
        encoding = getattr(stream, "encoding", None) or "ascii"
        try:
            u"\u00b5\u2260\u2265".encode(encoding)
        except (UnicodeError, LookupError):
            self.micro, self.differs, self.ge = "u", "!=", ">="
        else:
            self.micro, self.differs, self.ge = u"\u00b5", u"\u2260", u"\u2265"


def _fmt_us(seconds):
    us = seconds * 1e6
    if us < 1:
        return "%.3f" % us
    if us < 10:
        return "%.2f" % us
    if us < 100:
        return "%.1f" % us
    return "%.0f" % us


def _fmt_ratio(ratio):
    if ratio < 0.1:
        return "%.3fx" % ratio
    return ("%.2fx" if ratio < 10 else "%.1fx") % ratio


def _implementation():
    return platform.python_implementation()


def python_label():
    """``CPython 3.11.7`` or ``PyPy 7.3.11 (Python 3.9.16)``."""
    pypy = getattr(sys, "pypy_version_info", None)
    if pypy is not None:
        return "PyPy %d.%d.%d (Python %s)" % (tuple(pypy[:3]) + (platform.python_version(),))
    return "%s %s" % (_implementation(), platform.python_version())


def table_lines(results, parsers, symbols):
    """The Markdown table of best times and ratios, and the notes under it."""
    labels = [label for label, _ in parsers]
    header = ["input", labels[0] + " (%ss)" % symbols.micro] + labels[1:]
    rows = []
    notes = []
    for text, row in results.items():
        _, base_samples, base_value = row[0]
        base_time = min(base_samples) if base_samples else None
        cells = ["`%s`" % text]
        cells.append(_fmt_us(base_time) if base_time is not None else "rejects")
        for label, samples, value in row[1:]:
            if samples is None:
                cells.append("rejects")
                continue
            cell = _fmt_us(min(samples)) + " " + symbols.micro + "s"
            if base_time is not None:
                cell += " (%s)" % _fmt_ratio(min(samples) / base_time)
            if base_time is None or not same_datetime(value, base_value):
                notes.append((label, text, value, base_time, base_value))
                cell += " " + symbols.differs + str(len(notes))
            cells.append(cell)
        rows.append(cells)
    out = _common.markdown_table(header, rows)
    if notes:
        out.append("")
        for n, (label, text, value, base_time, base_value) in enumerate(notes, 1):
            out.append("%s%d. `%s` on `%s` returns `%s`; opstatus %s." % (
                symbols.differs, n, label, text, _show(value),
                "rejects it" if base_time is None else "returns `%s`" % _show(base_value),
            ))
    return out


def comparison_lines(results, parsers, symbols):
    """opstatus against dateutil (and iso8601) on ROW_INPUTS, the targets
    with their verdicts, and the README row."""
    out = []
    peers = [label for label, _ in parsers if label in (DATEUTIL, "iso8601.parse_date")]
    for peer in peers:
        out.append("opstatus vs `%s` (its time / opstatus's; best of rounds, median of"
                   " the rounds' ratios):" % peer)
        for text, title in ROW_INPUTS:
            pair = ratios(results[text], peer) if text in results else None
            shown = "not measured" if pair is None else "%s best, %s median" % (
                _fmt_ratio(pair[0]), _fmt_ratio(pair[1]))
            out.append("- %s `%s`: %s" % (title, text, shown))
        out.append("")

    impl = _implementation()
    for text, target_impl, minimum in TARGETS:
        if target_impl != impl:
            continue
        pair = ratios(results[text], DATEUTIL) if text in results else None
        if pair is None:
            verdict = "not measured (dateutil not installed, or a parser rejects the input)"
        else:
            verdict = "%s best, %s median: %s" % (
                _fmt_ratio(pair[0]), _fmt_ratio(pair[1]),
                "pass" if min(pair) >= minimum else "MISS",
            )
        out.append("target (%s, `%s`): %s %gx vs %s: %s" % (
            impl, text, symbols.ge, minimum, DATEUTIL, verdict))

    out.append("")
    out.append("README row (Python | %s, each as dateutil's time / opstatus's, median of"
               " the rounds):" % " | ".join(title for _, title in ROW_INPUTS))
    cells = [python_label()]
    for text, _ in ROW_INPUTS:
        pair = ratios(results[text], DATEUTIL) if text in results else None
        cells.append("n/a" if pair is None else _fmt_ratio(pair[1]))
    out.append("| " + " | ".join(cells) + " |")
    return out


def report(results, parsers, versions, rounds, symbols):
    """The lines to print: header, table, notes, comparison, targets, row."""
    out = [_common.python_line()]
    out.append("- opstatus %s (%s)" % (opstatus.__version__, opstatus.__file__))
    out.append("- peers: " + ", ".join(
        "%s %s" % (name, version if version is not None else "(not installed)")
        for name, version in versions
    ))
    out.append(
        "- timeit: %d interleaved rounds of ~%d ms per (input, parser); %s per call"
        " (best of the rounds), then peer time / opstatus time (> 1x: opstatus is"
        " faster)" % (rounds, SAMPLE_SECONDS * 1000, symbols.micro + "s")
    )
    out.append("")
    out.extend(table_lines(results, parsers, symbols))
    out.append("")
    out.extend(comparison_lines(results, parsers, symbols))
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(
        description="Time opstatus.parse_datetime beside other ISO 8601 parsers."
    )
    parser.add_argument(
        "--quick", action="store_true",
        help="%d rounds instead of %d" % (QUICK_ROUNDS, ROUNDS),
    )
    parser.add_argument("--rounds", type=int, default=None, help="number of rounds")
    args = parser.parse_args(argv)
    rounds = args.rounds or (QUICK_ROUNDS if args.quick else ROUNDS)

    parsers, versions = load_parsers()

    results = run(parsers, INPUTS, rounds, _common.progress)
    _common.progress("")
    for line in report(results, parsers, versions, rounds, _Symbols(sys.stdout)):
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
