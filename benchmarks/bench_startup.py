"""Start-up: the whole job ``python -m opstatus parse FILE`` (and its
neighbours) timed beside ``python -c "import azure.core.polling"`` and
``python -c pass``.

Run from the repository root::

    python benchmarks/bench_startup.py           # 30 interleaved rounds
    python benchmarks/bench_startup.py --quick   # 10 rounds

It measures whatever opstatus.py is in this checkout when it runs.

Each command runs as a fresh process (``subprocess.run``, output captured),
timed with ``time.perf_counter`` from
the parent: fork, exec, interpreter start-up, imports, the work and exit
all count, as a user at a shell sees it. Every round runs every command
once, in a rotating order, after one warm-up round (which also writes
opstatus's .pyc); the report gives min and median per command, the same
less ``python -c pass`` (what the command adds to a bare interpreter), and
the ratio to ``import azure.core.polling``. FILE holds the 254-byte 2021
Face status document of bench_poll.py.

opstatus runs from a copy of this checkout's opstatus.py (taken when the
benchmark starts) in a temporary folder, with its bytecode compiled
beside it as an installed package has it; that folder is the commands'
working directory, so ``-m opstatus`` and ``import opstatus`` find it.
(Run from the checkout itself, a ``PYTHONDONTWRITEBYTECODE=1``
environment compiles opstatus.py at every start; ``--checkout`` times
that instead.)

One more row times the import inside the interpreter, as the README's
figure is measured (``time.perf_counter()`` around ``import opstatus`` in
``python -c``, printed by the child), median over the same rounds.

No target is asserted: issue 15 asks that the README's import figure be
what this kind of machine prints and that the whole job be timed beside
azure-core's import; the summary line says both.

Python 3.7+.
"""

from __future__ import print_function

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time

try:  # puts the opstatus.py of this checkout first on sys.path
    from . import _common
except ImportError:
    import _common

import opstatus  # noqa: E402

REPO_ROOT = _common.REPO_ROOT
OPSTATUS_FILE = os.path.join(REPO_ROOT, "opstatus.py")
ROUNDS, QUICK_ROUNDS = 30, 10

#: The same 254-byte 2021 document as bench_poll.BODY_2021.
BODY_2021 = (
    b'{"status": "succeeded", "createdTime": "2021-06-08T22:28:33.5402214Z", '
    b'"lastActionTime": "2021-06-08T22:28:35.5793888Z", '
    b'"finishedTime": "2021-06-08T22:28:35.5793885Z", '
    b'"resourceLocation": "/largepersongroup/employees-sales-and-marketing-emea-2021-june"}'
)

_IN_PROCESS = ("import time; t = time.perf_counter(); import opstatus; "
               "print(time.perf_counter() - t)")


def commands(path):
    """(label, argv) of the commands timed; FILE is *path*."""
    py = sys.executable
    out = [
        ("python -c pass", [py, "-c", "pass"]),
        ("python -c \"import opstatus\"", [py, "-c", "import opstatus"]),
        ("python -m opstatus parse FILE (the whole job)", [py, "-m", "opstatus", "parse", path]),
        ("python opstatus.py parse FILE", [py, "opstatus.py", "parse", path]),
        ("python -c \"import opstatus; OperationStatus.from_json(FILE's bytes)\"",
         [py, "-c", "import opstatus; opstatus.OperationStatus.from_json(open(%r, 'rb').read())"
          % path]),
    ]
    try:
        import azure.core.polling  # noqa: F401

        out.append(("python -c \"import azure.core.polling\"",
                    [py, "-c", "import azure.core.polling"]))
    except Exception:
        pass
    out.append(("import opstatus in-process (the README's method: perf_counter in the child)",
                [py, "-c", _IN_PROCESS]))
    return out


def compiled_copy():
    """A temporary folder holding a copy of opstatus.py and its .pyc."""
    import importlib.util
    import py_compile
    import shutil

    folder = tempfile.mkdtemp(prefix="bench-startup-")
    target = os.path.join(folder, "opstatus.py")
    shutil.copy2(OPSTATUS_FILE, target)
    py_compile.compile(target, cfile=importlib.util.cache_from_source(target), doraise=True)
    return folder


def run(cmds, rounds, progress, cwd):
    """{label: [seconds, one per round]}; the in-process row holds the
    child's own figure."""
    samples = {label: [] for label, _ in cmds}
    for n in range(rounds + 1):  # round 0 is the warm-up
        progress("round %d of %d" % (n, rounds) if n else "warm-up round")
        shift = n % len(cmds)
        for label, argv in cmds[shift:] + cmds[:shift]:
            t0 = time.perf_counter()
            proc = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  stdin=subprocess.DEVNULL, cwd=cwd,
                                  universal_newlines=True, timeout=60)
            elapsed = time.perf_counter() - t0
            if proc.returncode != 0:
                raise RuntimeError("%s exited %d: %s" % (label, proc.returncode,
                                                         proc.stderr.strip()[-500:]))
            if n == 0:
                continue
            if argv[-1] == _IN_PROCESS:
                samples[label].append(float(proc.stdout.strip().splitlines()[-1]))
            else:
                samples[label].append(elapsed)
    return samples


def _median(values):
    ordered = sorted(values)
    middle = len(ordered) // 2
    if len(ordered) % 2:
        return ordered[middle]
    return (ordered[middle - 1] + ordered[middle]) / 2.0


def _ms(seconds):
    return "n/a" if seconds is None else "%.1f ms" % (seconds * 1e3)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="%d rounds instead of %d" % (QUICK_ROUNDS, ROUNDS))
    parser.add_argument("--checkout", action="store_true",
                        help="run opstatus from the checkout as it is (no bytecode written "
                        "when PYTHONDONTWRITEBYTECODE is set) rather than a compiled copy")
    args = parser.parse_args(argv)
    rounds = QUICK_ROUNDS if args.quick else ROUNDS
    started = time.perf_counter()

    def progress(message):
        _common.progress("[%5.1f s] %s" % (time.perf_counter() - started, message))

    import shutil

    folder = REPO_ROOT if args.checkout else compiled_copy()
    fd, path = tempfile.mkstemp(prefix="bench-startup-", suffix=".json")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(BODY_2021)
        cmds = commands(path)
        samples = run(cmds, rounds, progress, folder)
    finally:
        os.unlink(path)
        if folder != REPO_ROOT:
            shutil.rmtree(folder, ignore_errors=True)
    progress("")

    base = samples[cmds[0][0]]
    azure_label = next((label for label, _ in cmds if "azure" in label), None)
    azure_samples = samples.get(azure_label)
    rows = []
    for label, command in cmds:
        mine = samples[label]
        in_process = command[-1] == _IN_PROCESS
        less = "" if in_process or label == cmds[0][0] else "%s / %s" % (
            _ms(min(mine) - min(base)), _ms(_median(mine) - _median(base)))
        ratio = ""
        if azure_samples and not in_process:
            ratio = "%.2fx" % (_median(mine) / _median(azure_samples))
        rows.append([label, _ms(min(mine)), _ms(_median(mine)), less, ratio])
    print(_common.python_line() + ", %d CPUs" % (os.cpu_count() or 0))
    print("- opstatus %s (%s)" % (opstatus.__version__, opstatus.__file__))
    if azure_label:
        import azure.core

        print("- peer: azure-core %s" % _common.distribution_version("azure-core", azure.core))
    print("- command: python benchmarks/bench_startup.py%s" % "".join(
        " " + a for a in (argv if argv is not None else sys.argv[1:])))
    print("- each command a fresh process timed from the parent (perf_counter around "
          "subprocess.run), %d interleaved rounds after a warm-up; FILE = a %d-byte 2021 "
          "status document" % (rounds, len(BODY_2021)))
    print("- opstatus from %s; PYTHONDONTWRITEBYTECODE=%s" % (
        "the checkout as it is" if args.checkout else
        "a copy of the checkout's opstatus.py with its .pyc compiled beside it",
        os.environ.get("PYTHONDONTWRITEBYTECODE", "(unset)")))
    print("")
    for line in _common.markdown_table(
            ["command", "min", "median", "less `python -c pass` (min / median)",
             "median / azure-core import's"], rows):
        print(line)
    print("")
    job = samples[cmds[2][0]]
    imp = samples[cmds[-1][0]]
    summary = ("start-up: `python -m opstatus parse FILE` %s median (%s over `python -c pass`)"
               % (_ms(_median(job)), _ms(_median(job) - _median(base))))
    if azure_samples:
        summary += "; `python -c \"import azure.core.polling\"` %s (%s over)" % (
            _ms(_median(azure_samples)), _ms(_median(azure_samples) - _median(base)))
    summary += "; `import opstatus` by the README's method: %s median (%s-%s)" % (
        _ms(_median(imp)), _ms(min(imp)), _ms(max(imp)))
    print(summary)
    if platform.python_implementation() != "CPython" or sys.version_info[:2] != (3, 11):
        print("[issue 15's figures are for CPython 3.11; measured on %s %d.%d]" % (
            platform.python_implementation(), sys.version_info[0], sys.version_info[1]))
    print("")
    print("(run time %.1f s)" % (time.perf_counter() - started))
    return 0


if __name__ == "__main__":
    sys.exit(main())
