"""What the benchmark scripts share: the opstatus.py of this checkout on
``sys.path``, peers' versions, the Python line of a report's header, a
progress line on a terminal, and Markdown tables.

Not a benchmark: the scripts import it (``python benchmarks/NAME.py`` puts
this folder first on ``sys.path``). Works on Python 3.7+.
"""

from __future__ import print_function

import os
import platform
import sys

# Use the opstatus.py of this checkout, not an installed copy.
REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPO_ROOT not in sys.path:
    sys.path.insert(0, REPO_ROOT)


def distribution_version(dist, module=None):
    """Installed version of *dist*, or the module's __version__, or '?'."""
    try:
        from importlib import metadata  # Python 3.8+
    except ImportError:
        metadata = None
    if metadata is not None:
        try:
            return metadata.version(dist)
        except Exception:
            pass
    version = getattr(module, "__version__", None)
    return str(version) if version else "?"


def python_line():
    """``- Python: <implementation> <version>[ (PyPy x.y.z)][, <compiler>],
    <system> <machine>``: the first line of a report's header."""
    pypy = getattr(sys, "pypy_version_info", None)
    compiler = platform.python_compiler()
    return "- Python: %s %s%s%s, %s %s" % (
        platform.python_implementation(), platform.python_version(),
        " (PyPy %d.%d.%d)" % tuple(pypy[:3]) if pypy is not None else "",
        ", " + compiler if compiler else "",
        platform.system() or "?", platform.machine() or "?",
    )


def progress(message):
    """Show *message* on stderr's line when stderr is a terminal (nothing
    otherwise); ``progress("")`` clears that line."""
    if sys.stderr.isatty():
        sys.stderr.write("\r\033[K" + message)
        sys.stderr.flush()


def markdown_table(header, rows, align_right_from=1):
    """The lines of a Markdown table of *header* and *rows* (lists of str),
    its columns padded to one width; the columns from *align_right_from* on
    are right-aligned."""
    widths = [len(h) for h in header]
    for row in rows:
        widths = [max(w, len(c)) for w, c in zip(widths, row)]

    def line(cells):
        return "| " + " | ".join(
            c.rjust(w) if i >= align_right_from else c.ljust(w)
            for i, (c, w) in enumerate(zip(cells, widths))
        ) + " |"

    rule = "|" + "|".join(
        ("-" * (w + 1) + ":") if i >= align_right_from else ("-" * (w + 2))
        for i, w in enumerate(widths)
    ) + "|"
    return [line(header), rule] + [line(r) for r in rows]
