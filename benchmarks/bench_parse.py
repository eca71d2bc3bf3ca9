"""Time opstatus.parse_datetime beside the other ISO 8601 parsers.

Run from the repository root::

    python benchmarks/bench_parse.py           # best of 5 repeats
    python benchmarks/bench_parse.py --quick   # best of 2 repeats

Each peer is timed only if it can be imported (``pip install -r
benchmarks/requirements.txt``); ``datetime.datetime.fromisoformat`` is always
there, but before Python 3.11 it rejects most of the inputs. The output is a
Markdown table that can be pasted into the README as is.

For every (input, parser) pair the cell shows the microseconds per call (best
of the repeats, each of as many loops as ``timeit``'s autorange picks) and
the ratio peer time / opstatus time, so a ratio above 1 means opstatus is
faster. "rejects" means the parser raised on that input. A mark after a cell
means the parser returned a different datetime from opstatus (other fields,
other UTC offset, or aware where opstatus is naive or the other way round);
the notes under the table say how.

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

#: The service's own timestamp (7 fraction digits, ``Z``); the targets below
#: are stated for it.
SERVICE_TIMESTAMP = "2018-12-25T11:41:02.2331413Z"

INPUTS = (
    SERVICE_TIMESTAMP,
    "2018-12-25T11:41:02Z",
    "2018-12-25T11:41:02.233141+01:00",
    "2018-12-25",
    "20181225T114102Z",
    "2018-W52-2T11:41",
    "2018-12-25T11:41:02,5-05:00",
)

#: Claimed speed-ups of opstatus on SERVICE_TIMESTAMP, on CPython 3.11:
#: (peer label, minimum peer_time / opstatus_time). Printed, never asserted.
TARGETS = (
    ("dateutil.parser.isoparse", 5.0),
    ("iso8601.parse_date", 4.0),
)
TARGET_PLATFORM = ("CPython", (3, 11))

REPEATS = 5
QUICK_REPEATS = 2


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
        parsers.append(("dateutil.parser.isoparse", dateutil.parser.isoparse))
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


def time_call(func, text, repeats):
    """Best seconds per call of func(text): autorange, then best of *repeats*."""
    timer = timeit.Timer("func(text)", globals={"func": func, "text": text})
    number, _ = timer.autorange()
    return min(timer.repeat(repeat=repeats, number=number)) / number


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


def run(parsers, inputs=INPUTS, repeats=REPEATS, progress=None):
    """Measure every (input, parser) pair.

    Returns {input: [(label, seconds or None, result or exception)]}, in the
    order of *parsers*; seconds is None when the parser raised.
    """
    results = {}
    for text in inputs:
        row = []
        for label, func in parsers:
            if progress is not None:
                progress("%s  %r" % (label, text))
            try:
                value = func(text)
            except Exception as exc:
                row.append((label, None, exc))
                continue
            row.append((label, time_call(func, text, repeats), value))
        results[text] = row
    return results


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


def report(results, parsers, versions, repeats, symbols):
    """The lines to print: header, table, notes about differences, targets."""
    out = [_common.python_line()]
    out.append("- opstatus %s (%s)" % (opstatus.__version__, opstatus.__file__))
    out.append("- peers: " + ", ".join(
        "%s %s" % (name, version if version is not None else "(not installed)")
        for name, version in versions
    ))
    out.append(
        "- timeit: autorange, best of %d repeats; %s per call, then peer time /"
        " opstatus time (> 1x: opstatus is faster)" % (repeats, symbols.micro + "s")
    )
    out.append("")

    labels = [label for label, _ in parsers]
    header = ["input", labels[0] + " (%ss)" % symbols.micro] + labels[1:]
    rows = []
    notes = []
    for text, row in results.items():
        _, base_time, base_value = row[0]
        cells = ["`%s`" % text]
        cells.append(_fmt_us(base_time) if base_time is not None else "rejects")
        for label, seconds, value in row[1:]:
            if seconds is None:
                cells.append("rejects")
                continue
            cell = _fmt_us(seconds) + " " + symbols.micro + "s"
            if base_time is not None:
                cell += " (%s)" % _fmt_ratio(seconds / base_time)
            if base_time is None or not same_datetime(value, base_value):
                notes.append((label, text, value, base_time, base_value))
                cell += " " + symbols.differs + str(len(notes))
            cells.append(cell)
        rows.append(cells)
    out.extend(_common.markdown_table(header, rows))

    if notes:
        out.append("")
        for n, (label, text, value, base_time, base_value) in enumerate(notes, 1):
            out.append("%s%d. `%s` on `%s` returns `%s`; opstatus %s." % (
                symbols.differs, n, label, text, _show(value),
                "rejects it" if base_time is None else "returns `%s`" % _show(base_value),
            ))

    out.append("")
    out.append(target_line(results, symbols))
    return out


def target_line(results, symbols):
    """The project's claimed speed-ups on SERVICE_TIMESTAMP, with pass/miss."""
    impl, version = TARGET_PLATFORM
    row = results.get(SERVICE_TIMESTAMP)
    parts = []
    for label, minimum in TARGETS:
        verdict = "not measured (peer not installed)"
        if row is not None and row[0][1] is not None:
            for peer, seconds, _ in row[1:]:
                if peer == label:
                    if seconds is None:
                        verdict = "not measured (peer rejects the input)"
                    else:
                        ratio = seconds / row[0][1]
                        verdict = "%s %s" % (_fmt_ratio(ratio), "pass" if ratio >= minimum else "miss")
        elif row is not None:
            verdict = "not measured (opstatus rejects the input)"
        parts.append("%s %gx vs %s: %s" % (symbols.ge, minimum, label, verdict))
    line = "target (%s %d.%d, `%s`): %s" % (
        impl, version[0], version[1], SERVICE_TIMESTAMP, "; ".join(parts),
    )
    here = platform.python_implementation(), sys.version_info[:2]
    if here != (impl, version):
        line += " [measured on %s %d.%d, not the target's %s %d.%d]" % (
            here[0], here[1][0], here[1][1], impl, version[0], version[1],
        )
    return line


def main(argv=None):
    parser = argparse.ArgumentParser(
        description="Time opstatus.parse_datetime beside other ISO 8601 parsers."
    )
    parser.add_argument(
        "--quick", action="store_true",
        help="best of %d repeats instead of %d" % (QUICK_REPEATS, REPEATS),
    )
    args = parser.parse_args(argv)
    repeats = QUICK_REPEATS if args.quick else REPEATS

    parsers, versions = load_parsers()

    results = run(parsers, INPUTS, repeats, _common.progress)
    _common.progress("")
    for line in report(results, parsers, versions, repeats, _Symbols(sys.stdout)):
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
