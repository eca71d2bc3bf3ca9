"""The command line, driven as a user drives it.

Most tests run ``opstatus.main(argv)`` in this process, with the environment
set through ``monkeypatch`` (none of the developer's ``OPSTATUS_*``
variables, plugin autoload off, a fresh plugin manager) and the output read
with ``capsys``. They talk over loopback to a simulator on a fake clock that
the command line shares (``opstatus._cli_time``): operations move on exactly
as far as the command waited, and no test sleeps. Terminal output is written
to a stream that says it is a terminal and read through a model of one.

A few run end to end in subprocesses: the demo from a lone copy of the file
without site-packages, ``python -m opstatus --help``, ``serve`` (which other
programs use across processes) and its Ctrl-C, a watch on a real
pseudo-terminal, and a watch whose reader goes away (broken pipe).

``parse`` and ``--version`` are covered by test_packaging.py too.
"""

import io
import json
import os
import queue
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time

import pytest

import opstatus
from conftest import gets
from opstatus_testing import LoopbackServer, send_json
from opstatus import OperationStatus, Status

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(ROOT, "opstatus.py")

#: The longest any one subprocess may run before the test fails.
TIMEOUT = 30
UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
LOCATION = re.compile(r"/operations/(%s)\Z" % UUID)
URL = re.compile(r"http://127\.0\.0\.1:\d+/face/v1\.0/operations/(%s)\Z" % UUID)
STATUSES = ("notstarted", "running", "succeeded", "failed")
COMMANDS = ("demo", "watch", "take", "apply", "serve", "parse", "plugins")
EXIT_STATUS_LINES = [
    r"^  0 +succeeded",
    r"^  1 +the operation failed or was canceled",
    r"^  2 +usage error or invalid input",
    r"^  3 +the deadline passed \(--timeout\), whether or not the service ever answered",
    r"^  4 +an HTTP or network error ended it",
    r"^  130 +interrupted \(Ctrl-C\)",
    r"^  141 +the output was closed \(broken pipe\)",
]
#: A key of the right shape, for the tests that check it is never shown.
SECRET = "5f2b9c0a1b2c3d4e5f60718293a4b5c6"

POSIX = os.name == "posix"
posix_only = pytest.mark.skipif(not POSIX, reason="signals and pseudo-terminals are POSIX")
needs_pluggy = pytest.mark.skipif(opstatus._import_pluggy() is None,
                                  reason="pluggy is not installed")


###############################################################################
# Helpers
###############################################################################


class Result:
    def __init__(self, returncode, out, err, seconds=None):
        self.returncode = returncode
        self.out = out
        self.err = err
        self.seconds = seconds

    @property
    def lines(self):
        return self.out.splitlines()

    @property
    def err_lines(self):
        return self.err.splitlines()

    def __repr__(self):
        return "<exit %s\n--- stdout\n%s--- stderr\n%s>" % (self.returncode, self.out, self.err)


@pytest.fixture(autouse=True)
def environment(monkeypatch):
    """None of the developer's OPSTATUS_* variables (a key or endpoint of
    theirs must not leak in), plugin autoload off, and a fresh process-wide
    plugin manager (what a test registers goes away with it)."""
    for name in list(os.environ):
        if name.startswith("OPSTATUS_") or name in ("COLUMNS", "LINES"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("OPSTATUS_DISABLE_PLUGIN_AUTOLOAD", "1")
    if opstatus._import_pluggy() is not None:
        monkeypatch.setattr(opstatus, "_PLUGIN_MANAGER", opstatus.make_plugin_manager())


@pytest.fixture
def cli(capsys):
    """``cli(*argv)`` runs ``opstatus.main(argv)`` here; returns a Result.
    With ``cli.stdout`` set, that stream is stdout while it runs."""

    def run(*argv):
        capsys.readouterr()
        saved = sys.stdout
        if run.stdout is not None:
            sys.stdout = run.stdout
        try:
            code = opstatus.main([str(a) for a in argv])
        finally:
            sys.stdout = saved
        out, err = capsys.readouterr()
        return Result(code, out, err)

    run.stdout = None
    return run


class CliTime:
    """What the command line reads the time from and sleeps with, on a
    FakeClock; the wall clock is the simulator's. ``interrupt_after(n)``
    makes the n-th sleep from then on a Ctrl-C."""

    def __init__(self, clock, wall):
        self.clock = clock
        self.wall = wall
        self._interrupt_in = None

    def monotonic(self):
        return self.clock()

    def time(self):
        return self.wall()

    def sleep(self, seconds):
        if self._interrupt_in is not None:
            self._interrupt_in -= 1
            if self._interrupt_in <= 0:
                self._interrupt_in = None
                raise KeyboardInterrupt
        self.clock.sleep(seconds)

    def interrupt_after(self, sleeps):
        self._interrupt_in = sleeps


@pytest.fixture
def now(monkeypatch, fake_clock, sim):
    """The command line on the simulator's fake clock."""
    cli_time = CliTime(fake_clock, sim.wall)
    monkeypatch.setattr(opstatus, "_cli_time", cli_time)
    return cli_time


@pytest.fixture
def use(monkeypatch, sim, now):
    """``use(**env)``: OPSTATUS_KEY and OPSTATUS_ENDPOINT of the simulator,
    with *env* added or (a value of None) taken away."""

    def setenv(**env):
        values = {"OPSTATUS_KEY": sim.key, "OPSTATUS_ENDPOINT": sim.endpoint}
        values.update(env)
        for name, value in values.items():
            if value is None:
                monkeypatch.delenv(name, raising=False)
            else:
                monkeypatch.setenv(name, value)

    setenv()
    return setenv


def start_take(sim, *, seconds=None, fail=None, object_id="group1"):
    """Start a take on *sim* from this process; its Operation-Location.
    *seconds* and *fail* hold for this operation only."""
    saved = sim.take_seconds, sim.fail
    if seconds is not None:
        sim.take_seconds = seconds
    sim.fail = fail
    try:
        return opstatus.take_snapshot(sim.endpoint, sim.key, object_type="PersonGroup",
                                      object_id=object_id, apply_scope=[sim.subscription],
                                      plugins=False)
    finally:
        sim.take_seconds, sim.fail = saved


def closed_port():
    """A loopback port nothing listens on."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
    finally:
        sock.close()


def assert_no_traceback(result):
    assert "Traceback" not in result.err, result
    assert "Exception ignored" not in result.err, result


def assert_error_line(result, status, *words):
    """Exit *status*, and stderr ends with one line ``opstatus: error: ...``
    holding each of *words*, the only error line."""
    assert result.returncode == status, result
    assert_no_traceback(result)
    errors = [line for line in result.err_lines if line.startswith("opstatus: error: ")]
    assert len(errors) == 1 and result.err_lines[-1] == errors[0], result
    for word in words:
        assert word in errors[0], (word, result)
    return errors[0]


def assert_only_error_line(result, status, *words):
    """As assert_error_line, and nothing else on stderr."""
    line = assert_error_line(result, status, *words)
    assert len(result.err_lines) == 1, result
    return line


def assert_usage_error(result, *words):
    """Exit 2 from the parser: one ``error:`` line naming the culprit."""
    line = assert_only_error_line(result, 2, *words)
    assert re.match(r"opstatus: error: (\w+: )?", line), result
    assert result.out == "", result
    return line


def status_lines(result):
    """The ``STATUS  N.Ns  last action N.Ns ago`` lines of a watch, checked."""
    found = []
    for line in result.lines:
        match = re.match(r"(\w+) +(\d+\.\d)s(  last action \d+\.\ds ago)?\Z", line)
        if match:
            assert match.group(1) in STATUSES, line
            found.append(match.group(1))
    return found


def assert_progression(statuses, final):
    """One entry per change, in the order an operation goes through them."""
    assert statuses, statuses
    assert statuses[-1] == final, statuses
    order = [STATUSES.index(s) if s != "failed" else 2 for s in statuses]
    assert order == sorted(set(order)), statuses


def retry_lines(result):
    return [line for line in result.err_lines if re.search(r" retry \d+ in \d+\.\d s", line)]


class Terminal(io.StringIO):
    """An output stream that says it is a terminal."""

    encoding = "utf-8"

    def isatty(self):
        return True


@pytest.fixture
def terminal(cli, monkeypatch):
    """The command line's stdout is a terminal of 80 columns."""
    term = Terminal()
    cli.stdout = term
    monkeypatch.setenv("COLUMNS", "80")
    monkeypatch.setenv("LINES", "24")
    return term


_TERMINAL_TOKENS = re.compile(r"\x1b\[(\d*)([A-Za-z])|\r|\n|[^\x1b\r\n]")


def screen(text, columns=10000):
    """The rows a terminal *columns* wide shows after *text*: printable
    characters (wrapping at the right margin), CR, LF, ``ESC[nF`` (up n
    rows, to column 0), ``ESC[2K`` (erase the row) and ``ESC[J`` (erase to
    the end of the screen)."""
    rows = [[]]
    row = col = 0
    for match in _TERMINAL_TOKENS.finditer(text):
        token = match.group(0)
        if match.group(2):
            count, command = int(match.group(1) or 1), match.group(2)
            if command == "F":
                row, col = max(0, row - count), 0
            elif command == "K" and match.group(1) == "2":
                rows[row] = []
            elif command == "J" and not match.group(1):
                while len(rows) <= row:
                    rows.append([])
                del rows[row + 1:]
                del rows[row][col:]
            else:
                raise AssertionError("unexpected escape sequence %r" % token)
        elif token == "\r":
            col = 0
        elif token == "\n":
            row, col = row + 1, 0
        else:
            if col >= columns:  # the pending wrap of a real terminal
                row, col = row + 1, 0
            while len(rows) <= row:
                rows.append([])
            line = rows[row]
            while len(line) <= col:
                line.append(" ")
            line[col] = token
            col += 1
        while len(rows) <= row:
            rows.append([])
    lines = ["".join(line).rstrip() for line in rows]
    while lines and not lines[-1]:
        lines.pop()
    return lines


TAKE = ["take", "--type", "PersonGroup", "--object-id", "group1",
        "--apply-scope", "00000000-0000-0000-0000-000000000000"]


def subprocess_env(**extra):
    """The environment of a subprocess: this one's, less every OPSTATUS_*
    variable, with plugin autoload off, plus *extra*."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("OPSTATUS_") and k not in ("COLUMNS", "LINES")}
    env["OPSTATUS_DISABLE_PLUGIN_AUTOLOAD"] = "1"
    env.update(extra)
    return env


def _decode(data):
    return data.decode("utf-8", "replace")


###############################################################################
# demo, from a lone copy of the file without site-packages (subprocesses)
###############################################################################


@pytest.fixture(scope="module")
def demos(tmp_path_factory):
    """``python -S opstatus.py demo`` (plain, --dialect 2019, --fail) from a
    lone copy of the file in an empty directory; run side by side."""
    alone = tmp_path_factory.mktemp("alone")
    shutil.copy(SCRIPT, str(alone / "opstatus.py"))
    env = subprocess_env()
    env.pop("PYTHONPATH", None)
    variants = {"plain": [], "2019": ["--dialect", "2019"], "fail": ["--fail"]}
    procs = {}
    for name, extra in variants.items():
        procs[name] = subprocess.Popen(
            [sys.executable, "-S", "opstatus.py", "demo"] + extra, cwd=str(alone), env=env,
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    results = {}
    for name, proc in procs.items():
        try:
            out, err = proc.communicate(timeout=TIMEOUT)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate()
        results[name] = Result(proc.returncode, _decode(out), _decode(err))
    assert sorted(os.listdir(str(alone))) in (["opstatus.py"], ["__pycache__", "opstatus.py"])
    return results


def _demo_steps(out):
    """The statuses of each step of a demo's timeline, and its other lines."""
    steps = []
    for line in out.splitlines():
        if line.startswith(("take a snapshot", "apply it")):
            steps.append([])
            continue
        match = re.match(r"  +\+\d+\.\d\ds  (\w+) +last action "
                         r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z", line)
        if match:
            steps[-1].append(match.group(1))
    return steps


def test_demo_prints_the_timeline(demos):
    result = demos["plain"]
    assert result.returncode == 0, result
    assert result.err == "", result
    out = result.out
    assert re.match(r"Face snapshot simulator at http://127\.0\.0\.1:\d+ \(wire dialect 2021\)\n",
                    out), out
    take = re.search(r"  POST /snapshots -> 202  Operation-Location: /operations/%s\n" % UUID,
                     out)
    assert take, out
    snapshot = re.search(r"\n  snapshot id: (%s)\n" % UUID, out)
    assert snapshot, out
    assert ("  POST /snapshots/%s/apply -> 202  Operation-Location: /operations/"
            % snapshot.group(1)) in out
    assert "\n  target: /persongroup/sample-group-copy\n" in out
    steps = _demo_steps(out)
    assert len(steps) == 2, out
    for statuses in steps:
        assert_progression(statuses, "succeeded")
        assert "running" in statuses, out
    assert "notstarted" in steps[0] + steps[1], out
    assert "(service: " in out
    assert re.search(r"\ndone in \d+\.\d s with \d+ polls", out), out


def test_demo_dialect_2019(demos):
    result = demos["2019"]
    assert result.returncode == 0, result
    assert result.err == "", result
    assert "(wire dialect 2019)" in result.lines[0]
    assert re.search(r"\n  snapshot id: %s\n" % UUID, result.out), result
    assert "\n  target: /persongroup/sample-group-copy\n" in result.out
    for statuses in _demo_steps(result.out):
        assert_progression(statuses, "succeeded")


def test_demo_fail_shows_the_error_a_user_sees(demos):
    result = demos["fail"]
    assert_only_error_line(result, 1, "opstatus: error: operation failed: ")
    assert "Source object was modified" in result.err
    steps = _demo_steps(result.out)
    assert len(steps) == 1, result  # no apply after a failed take
    assert_progression(steps[0], "failed")
    assert "snapshot id" not in result.out and "apply it" not in result.out


###############################################################################
# Help
###############################################################################


def _assert_exit_statuses(text):
    assert "exit status:" in text, text
    for pattern in EXIT_STATUS_LINES:
        assert re.search(pattern, text, re.M), (pattern, text)


def test_python_dash_m_help():
    env = subprocess_env()
    env.pop("PYTHONPATH", None)
    proc = subprocess.run([sys.executable, "-m", "opstatus", "--help"], cwd=ROOT, env=env,
                          stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, timeout=TIMEOUT)
    out = _decode(proc.stdout)
    assert proc.returncode == 0, _decode(proc.stderr)
    assert out.startswith("usage: opstatus "), out
    for command in COMMANDS:
        assert re.search(r"^    %s +\S" % command, out, re.M), (command, out)
    assert "examples:\n  opstatus demo\n" in out
    assert 'opstatus watch "$(opstatus take ' in out
    _assert_exit_statuses(out)


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_help_has_examples_and_exit_statuses(cli, command):
    result = cli(command, "--help")
    assert result.returncode == 0, result
    assert result.err == ""
    out = result.out
    assert out.startswith("usage: opstatus %s" % command), out
    examples = out.split("\nexamples:\n", 1)
    assert len(examples) == 2, out
    example_lines = examples[1].split("\n\n", 1)[0].splitlines()
    assert any(line.strip().startswith("opstatus %s" % command) for line in example_lines), out
    _assert_exit_statuses(examples[1])
    assert "-v, --verbose" in out  # on every command


def test_top_level_help_lists_exit_statuses_and_verbose(cli):
    result = cli("--help")
    assert result.returncode == 0, result
    _assert_exit_statuses(result.out)
    assert "-v, --verbose" in result.out


@pytest.mark.parametrize("command", ["watch", "take", "apply"])
def test_help_says_the_key_comes_only_from_the_environment(cli, command):
    out = cli(command, "--help").out
    assert "OPSTATUS_KEY" in out and "OPSTATUS_ENDPOINT" in out
    assert "--key-env" in out
    assert "--key is refused" in out
    assert "--key " not in out.replace("--key is refused", "") and "--key=" not in out


###############################################################################
# Usage errors name the culprit, and never echo a secret
###############################################################################


@pytest.mark.parametrize("args, words", [
    (["watch", "--bogus", "/operations/x"], ["watch: unrecognized option --bogus"]),
    (["watch", "/operations/x", "--bogus=3"], ["unrecognized option --bogus"]),
    (["--bogus"], ["unrecognized option --bogus"]),
    (["--bogus", "watch", "/operations/x"], ["unrecognized option --bogus"]),
    (["-v", "--bogus=1", "watch"], ["unrecognized option --bogus"]),
    (["watch", "--timeout", "-1", "/operations/x"], ["--timeout"]),
    (["watch", "--timeout", "nan", "/operations/x"], ["--timeout", "'nan'"]),
    (["watch", "--floor", "soon", "/operations/x"], ["--floor"]),
    (["frobnicate"], ["frobnicate"]),
    ([], ["COMMAND", "demo, watch"]),
], ids=["unknown-option", "unknown-option-after", "unknown-option-alone",
        "unknown-option-before-command", "unknown-option-with-verbose", "negative-timeout",
        "nan-timeout", "bad-floor", "unknown-command", "no-command"])
def test_bad_options_are_usage_errors_naming_the_culprit(cli, args, words):
    assert_usage_error(cli(*args), *words)


@pytest.mark.parametrize("args, option", [
    (["watch", "--key-e", "FACE_KEY", "/operations/x"], "--key-e"),
    (["watch", "--time", "3", "/operations/x"], "--time"),
    (["take", "--type", "PersonGroup", "--object", "g1", "--apply-scope", SECRET], "--object"),
    (["--vers"], "--vers"),
])
def test_options_are_never_abbreviated(cli, monkeypatch, args, option):
    monkeypatch.setenv("OPSTATUS_KEY", "k" * 32)
    monkeypatch.setenv("FACE_KEY", "k" * 32)
    assert_usage_error(cli(*args), "unrecognized option %s" % option)


@pytest.mark.parametrize("args", [
    ["watch", "--key", SECRET, "/operations/x"],
    ["watch", "--key=" + SECRET, "/operations/x"],
    ["take", "--key", SECRET] + TAKE[1:],
    ["apply", "snap1", "--object-id", "copy", "--key", SECRET],
    ["--key", SECRET, "watch", "/operations/x"],
    ["demo", "--key", SECRET],
    ["serve", "--key", SECRET],
    ["plugins", "--key", SECRET],
    ["parse", "--key", SECRET],
], ids=["watch", "watch-equals", "take", "apply", "before-command", "demo", "serve",
        "plugins", "parse"])
def test_key_option_is_refused_without_echoing_it(cli, args):
    result = cli(*args)
    line = assert_usage_error(result, "--key", "refused", "environment", "OPSTATUS_KEY")
    assert SECRET not in result.err + result.out
    assert "--key-env" in line


@pytest.mark.parametrize("args", [
    ["watch", "--key-env", SECRET, "/operations/x"],
    ["--key-env", SECRET, "watch", "/operations/x"],
    ["watch", "--api-key", SECRET, "/operations/x"],
    ["--api-key", SECRET, "watch", "/operations/x"],
    ["apply", SECRET, SECRET + "0", "--object-id", "copy"],
    ["serve", "--key-env", SECRET],
], ids=["key-env-given-a-key", "key-env-before-command", "unknown-key-option",
        "unknown-key-option-before-command", "extra-word", "serve-key-env"])
def test_a_key_given_where_it_does_not_belong_is_never_echoed(cli, monkeypatch, args):
    monkeypatch.setenv("OPSTATUS_ENDPOINT", "http://127.0.0.1:%d" % closed_port())
    monkeypatch.setenv("OPSTATUS_KEY", "k" * 32)
    result = cli(*args)
    assert_only_error_line(result, 2)
    assert SECRET not in result.err + result.out, result


@pytest.mark.skipif(sys.version_info >= (3, 8), reason="the split is for Python 3.7's argparse")
def test_grouped_verbose_flags_work_on_python_37(cli):
    assert cli("-vv", "plugins").returncode == 0


def test_verbose_counts(monkeypatch):
    args = opstatus._parse_args(["-vv", "watch", "-v", "x"])
    assert args.verbose == 3
    assert opstatus._parse_args(["watch", "x"]).verbose == 0


###############################################################################
# watch: where the endpoint and key come from
###############################################################################


def test_watch_endpoint_from_option_and_key_from_environment(cli, sim, use):
    location = start_take(sim)
    use(OPSTATUS_ENDPOINT=None)
    result = cli("watch", "--endpoint", sim.endpoint, location)
    assert result.returncode == 0, result
    assert result.lines[-1].startswith("snapshot id: ")


def test_watch_endpoint_from_environment(cli, sim, use):
    result = cli("watch", start_take(sim))
    assert result.returncode == 0, result
    assert result.lines[-1].startswith("snapshot id: ")


def test_watch_endpoint_option_wins_over_environment(cli, sim, use):
    location = start_take(sim)
    use(OPSTATUS_ENDPOINT="http://127.0.0.1:%d" % closed_port())
    result = cli("watch", "--timeout", "5", "--endpoint", sim.endpoint, location)
    assert result.returncode == 0, result
    assert result.err == "", result


def test_watch_absolute_location_needs_no_endpoint(cli, sim, use):
    url = sim.endpoint + "/face/v1.0" + start_take(sim)
    use(OPSTATUS_ENDPOINT=None)
    result = cli("watch", url)
    assert result.returncode == 0, result
    assert result.lines[-1].startswith("snapshot id: ")


def test_watch_key_from_the_variable_named_by_key_env(cli, sim, use):
    location = start_take(sim)
    use(OPSTATUS_KEY=None, FACE_KEY=sim.key)
    result = cli("watch", "--key-env", "FACE_KEY", location)
    assert result.returncode == 0, result
    assert result.lines[-1].startswith("snapshot id: ")


def test_watch_without_key_names_opstatus_key(cli, sim, use):
    location = start_take(sim)
    use(OPSTATUS_KEY=None)
    before = len(sim.requests)
    result = cli("watch", location)
    assert_only_error_line(result, 2, "no key", "OPSTATUS_KEY")
    assert result.out == ""
    assert len(sim.requests) == before


def test_watch_without_key_says_how_to_send_none(cli, sim, use):
    use(OPSTATUS_KEY=None)
    line = assert_only_error_line(cli("watch", start_take(sim)), 2, "no key", "--no-key")
    assert "OPSTATUS_KEY" in line


def test_watch_with_no_key_sends_none(cli, monkeypatch, now):
    # a SAS URL, or a plugin's bearer token: the credential is not a key
    monkeypatch.setenv("OPSTATUS_KEY", "k" * 32)  # set, and not sent
    with LoopbackServer(send_json) as server:
        result = cli("watch", "--no-key", server.url(
            "/face/v1.0/operations/op1?sv=2024&sig=SAS-SECRET"))
    assert result.returncode == 0, result
    assert [e.method for e in server.seen] == ["GET"]
    headers = server.seen[0].headers
    assert "ocp-apim-subscription-key" not in headers and "authorization" not in headers
    assert "k" * 32 not in result.out + result.err
    assert "SAS-SECRET" not in result.out + result.err


def test_no_key_and_key_env_contradict(cli, sim, use):
    before = len(sim.requests)
    result = cli("watch", "--no-key", "--key-env", "FACE_KEY", start_take(sim))
    assert_only_error_line(result, 2, "--no-key", "--key-env")
    assert len(sim.requests) == before + 1  # the take only


def test_watch_key_env_names_the_missing_variable(cli, sim, use):
    location = start_take(sim)
    before = len(sim.requests)
    # OPSTATUS_KEY is set, but the user asked for FACE_KEY: no fallback.
    result = cli("watch", "--key-env", "FACE_KEY", location)
    line = assert_only_error_line(result, 2, "FACE_KEY")
    assert sim.key not in result.err and sim.key not in result.out
    assert "OPSTATUS_KEY" not in line
    assert len(sim.requests) == before


def test_watch_empty_key_is_no_key(cli, sim, use):
    use(OPSTATUS_KEY="")
    assert_only_error_line(cli("watch", start_take(sim)), 2, "OPSTATUS_KEY")


def test_watch_relative_location_without_endpoint(cli, sim, use):
    location = start_take(sim)
    use(OPSTATUS_ENDPOINT=None)
    result = cli("watch", location)
    assert_only_error_line(result, 2, location, "relative", "--endpoint", "OPSTATUS_ENDPOINT")
    assert result.out == ""


def test_watch_without_operation_is_a_usage_error(cli, use):
    assert_only_error_line(cli("watch"), 2, "OPERATION_LOCATION")


def test_watch_floor_above_cap_is_one_line(cli, sim, use):
    assert_only_error_line(cli("watch", "--floor", "5", "--cap", "1", start_take(sim)), 2,
                           "floor", "cap")


@pytest.fixture
def network_guard(monkeypatch):
    """socket's connecting functions, made to record and refuse."""
    attempts = []

    def refuse(*args, **kwargs):
        attempts.append(args)
        raise OSError("the test forbids the network")

    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)
    return attempts


@pytest.fixture
def wall_clock(monkeypatch, fake_clock):
    """The command line on a fake clock, without a simulator."""
    cli_time = CliTime(fake_clock, time.time)
    monkeypatch.setattr(opstatus, "_cli_time", cli_time)
    return cli_time


@pytest.mark.parametrize("env_endpoint", [False, True], ids=["no-endpoint", "endpoint"])
def test_watch_remote_plain_http_is_refused_without_touching_the_network(
        cli, monkeypatch, network_guard, env_endpoint):
    monkeypatch.setenv("OPSTATUS_KEY", "secret-key-0123456789")
    if env_endpoint:
        monkeypatch.setenv("OPSTATUS_ENDPOINT", "http://example.com")
    result = cli("watch", "http://example.com/face/v1.0/operations/%s" % ("1" * 8))
    assert network_guard == [], result
    assert_only_error_line(result, 2, "plain http", "example.com")
    assert "secret-key-0123456789" not in result.err
    assert result.out == ""


def test_network_guard_sees_an_attempt(cli, monkeypatch, network_guard, wall_clock):
    # The same command with --allow-http does try: the guard sees it.
    monkeypatch.setenv("OPSTATUS_KEY", "k")
    result = cli("watch", "--allow-http", "--timeout", "0.5",
                 "http://example.com/face/v1.0/operations/1")
    assert network_guard, result
    assert_error_line(result, 3)


###############################################################################
# watch: what it accepts, and commands that compose
###############################################################################


@pytest.mark.parametrize("form", ["url", "relative", "bare-id", "header-line", "header-url",
                                  "take-json", "padded"])
def test_watch_accepts_every_form_of_an_operation(cli, sim, use, form):
    location = start_take(sim)
    url = sim.endpoint + "/face/v1.0" + location
    given = {
        "url": url,
        "relative": location,
        "bare-id": location.rsplit("/", 1)[1],
        "header-line": "Operation-Location: " + location,
        "header-url": "operation-location:%s" % url,
        "take-json": json.dumps({"operationLocation": location, "operationUrl": url}),
        "padded": "  %s\n" % url,
    }[form]
    result = cli("watch", given)
    assert result.returncode == 0, result
    assert result.lines[-1].startswith("snapshot id: "), result
    assert set(gets(sim)) == {"/face/v1.0" + location}


def test_take_then_watch_compose(cli, sim, use):
    # opstatus watch "$(opstatus take ...)"
    take = cli(*TAKE[:-1] + [sim.subscription])
    assert take.returncode == 0, take
    watch = cli("watch", take.out.strip())
    assert watch.returncode == 0, watch
    assert watch.lines[-1].startswith("snapshot id: ")
    # and with the endpoint given to take only: the URL is absolute
    use(OPSTATUS_ENDPOINT=None)
    take = cli(*TAKE[:-1] + [sim.subscription, "--endpoint", sim.endpoint])
    assert cli("watch", take.out.strip()).returncode == 0


def test_watch_bare_id_needs_an_endpoint(cli, sim, use):
    location = start_take(sim)
    use(OPSTATUS_ENDPOINT=None)
    result = cli("watch", location.rsplit("/", 1)[1])
    assert_only_error_line(result, 2, "relative", "--endpoint")


###############################################################################
# watch: output and exit statuses
###############################################################################


def test_watch_not_on_a_terminal_prints_a_line_per_change(cli, sim, use):
    result = cli("watch", start_take(sim))
    assert result.returncode == 0, result
    assert result.err == ""
    *changes, last = result.lines
    assert len(changes) == len(status_lines(result)), result  # nothing else
    assert_progression(status_lines(result), "succeeded")
    assert "running" in status_lines(result)
    assert "\r" not in result.out and "\x1b" not in result.out
    match = re.match(r"snapshot id: (%s)\Z" % UUID, last)
    assert match, result
    assert match.group(1) in sim.snapshots


def test_watch_json_prints_a_document_per_change_final_last(cli, sim, use):
    result = cli("watch", "--json", start_take(sim))
    assert result.returncode == 0, result
    assert result.err == ""
    docs = [OperationStatus.from_json(line) for line in result.lines]
    assert_progression([d.status.value for d in docs], "succeeded")
    final = docs[-1]
    assert final.is_terminal and final.status is Status.SUCCEEDED
    assert final.snapshot_id in sim.snapshots
    assert "finishedTime" in final.extra
    assert all(json.loads(line)["status"] in STATUSES for line in result.lines)


def test_watch_json_keeps_the_timestamps_as_the_service_wrote_them(cli, sim, use):
    sim._wall0 = 1767225600.2959673  # so that the created time has 7 digits
    location = start_take(sim)
    result = cli("watch", "--json", location)
    assert result.returncode == 0, result
    op = sim.operations[location.rsplit("/", 1)[1]]
    final = json.loads(result.lines[-1])
    wire = sim.operation_document(op)
    assert final["createdTime"] == wire["createdTime"]
    assert final["lastActionTime"] == wire["lastActionTime"]
    assert final["finishedTime"] == wire["finishedTime"]
    stamps = [doc[name] for doc in map(json.loads, result.lines)
              for name in ("createdTime", "lastActionTime")]
    assert final["createdTime"] == "2026-01-01T00:00:00.2959673Z", final
    for stamp in stamps:  # the service's form: UTC, Z, at most 7 digits
        assert re.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,7})?Z\Z", stamp), stamp


@pytest.mark.parametrize("sim", [{"dialect": "2019"}], indirect=True)
def test_watch_json_2019_dialect_timestamps_too(cli, sim, use):
    result = cli("watch", "--json", start_take(sim))
    assert result.returncode == 0, result
    final = json.loads(result.lines[-1])
    op = sim.operations[next(iter(sim.operations))]
    assert final["createdTime"] == sim.operation_document(op)["CreatedTime"]


def test_terminal_timestamps_have_one_width():
    from datetime import datetime, timezone

    times = ["2019-05-16T04:15:15Z", "2019-05-16T04:15:15.5Z", "2019-05-16T04:15:15.2959673Z",
             "2019-05-16T06:15:15.12+02:00"]
    shown = [opstatus._terminal_time(opstatus.parse_datetime(t)) for t in times]
    assert len({len(s) for s in shown}) == 1, shown
    assert shown[2] == "2019-05-16T04:15:15.295967Z"
    assert shown[3] == "2019-05-16T04:15:15.120000Z"
    assert opstatus._terminal_time(datetime(2019, 5, 16, tzinfo=timezone.utc)).endswith(
        ".000000Z")


def test_parse_prints_timestamps_in_one_width(cli, tmp_path):
    doc = tmp_path / "status.json"
    doc.write_text('{"status": "succeeded", "createdTime": "2019-05-16T04:15:15Z", '
                   '"lastActionTime": "2019-05-16T04:15:17.2959673Z"}', encoding="utf-8")
    result = cli("parse", doc)
    assert result.returncode == 0, result
    assert "2019-05-16T04:15:15.000000Z" in result.out
    assert "2019-05-16T04:15:17.295967Z" in result.out


def test_watch_failed_operation_exits_1(cli, sim, use):
    result = cli("watch", start_take(sim, fail="Source object was modified. Please retry."))
    assert_only_error_line(result, 1,
                           "operation failed: Source object was modified. Please retry.")
    assert_progression(status_lines(result), "failed")
    assert "snapshot id" not in result.out


def test_watch_json_failed_operation_exits_1_after_the_failed_document(cli, sim, use):
    result = cli("watch", "--json", start_take(sim, fail="boom"))
    assert_only_error_line(result, 1, "operation failed: boom")
    final = OperationStatus.from_json(result.lines[-1])
    assert final.status is Status.FAILED and final.message == "boom"


def test_watch_timeout_exits_3(cli, sim, use, fake_clock):
    location = start_take(sim, seconds=60)
    fake_clock.advance(0.35)  # out of the queue before the watch begins
    started = fake_clock()
    result = cli("watch", "--timeout", "0.5", location)
    assert_only_error_line(result, 3, "did not end within 0.5s", "(last status: running)")
    assert status_lines(result)[-1] == "running", result
    assert fake_clock() - started <= 0.5


def test_watch_wrong_key_exits_4_without_showing_it(cli, sim, use):
    location = start_take(sim)
    wrong = "wrong-key-5f3c9a1e7d"
    use(OPSTATUS_KEY=wrong)
    result = cli("watch", location)
    line = assert_only_error_line(result, 4, "HTTP 401: Access denied")
    assert "401 401" not in line  # the code once
    assert wrong not in result.err and wrong not in result.out
    assert sim.key not in result.err


def test_watch_unknown_operation_exits_4(cli, sim, use):
    result = cli("watch", "/operations/00000000-0000-4000-8000-000000000000")
    assert_only_error_line(result, 4, "HTTP 404 OperationNotFound")
    assert result.out == ""


def test_watch_rides_out_server_errors_and_rate_limits(cli, sim, use, now):
    location = start_take(sim)
    sim.server_errors = 1  # a 503, then
    sim.rate_limit = 1  # a 429 with Retry-After: 1
    result = cli("watch", location)
    assert result.returncode == 0, result
    assert result.lines[-1].startswith("snapshot id: ")
    assert 1.0 in now.clock.sleeps  # Retry-After was honoured
    assert sim.server_errors == 0 and sim.rate_limit == 0
    # Each error, while it lasted, was one line on stderr.
    lines = retry_lines(result)
    assert len(lines) == 2 and len(result.err_lines) == 2, result
    assert "HTTP 503 InternalServerError: The service is temporarily unavailable." in lines[0]
    assert re.search(r"HTTP 429: Rate limit is exceeded\. .* retry 2 in 1\.0 s", lines[1]), lines


@pytest.fixture
def refused(cli, monkeypatch, wall_clock):
    """``watch --timeout 2`` of an endpoint where nothing listens."""
    monkeypatch.setenv("OPSTATUS_KEY", "k")
    return cli("watch", "--timeout", "2", "--endpoint", "http://127.0.0.1:%d" % closed_port(),
               "/operations/00000000-0000-4000-8000-000000000000")


def test_watch_refused_connection_says_so_while_it_lasts_and_at_the_end(refused):
    assert_error_line(refused, 3, "connection refused")
    assert refused.out == ""
    # One line for the error being retried, then the error that ended it.
    assert len(refused.err_lines) == 2, refused
    assert re.match(r"opstatus: connection refused \u2014 retry 1 in \d\.\d s "
                    r"\(http://127\.0\.0\.1:\d+/face/v1\.0/operations/", refused.err_lines[0])


def test_watch_deadline_without_any_answer_exits_3(refused):
    assert refused.returncode == 3, refused
    assert "did not end within 2s" in refused.err_lines[-1]


def test_watch_tells_the_same_error_at_most_once_a_minute(cli, sim, use):
    location = start_take(sim)
    sim.server_errors = 10 ** 6  # the service answers, with 503s only
    result = cli("watch", "--timeout", "300", "--cap", "10", location)
    assert_error_line(result, 3, "HTTP 503")
    told = retry_lines(result)
    tries = [int(re.search(r"retry (\d+)", line).group(1)) for line in told]
    assert 3 <= len(told) <= 6, told  # 300 s: once a minute, not once per retry
    assert tries[-1] > len(told) + 10, told  # far more retries than lines


def test_watch_tells_each_distinct_error(cli, sim, use):
    location = start_take(sim)
    sim.server_errors = 2
    sim.rate_limit = 2
    result = cli("watch", location)
    assert result.returncode == 0, result
    told = retry_lines(result)
    assert len(told) == 2, result  # two kinds of error, four errors
    assert "HTTP 503" in told[0] and "HTTP 429" in told[1]


###############################################################################
# Exit statuses: one meaning each
###############################################################################


def test_exit_0_succeeded(cli, sim, use):
    assert cli("watch", start_take(sim)).returncode == 0


def test_exit_1_failed(cli, sim, use):
    assert cli("watch", start_take(sim, fail="boom")).returncode == 1


def test_exit_2_usage(cli):
    assert cli("watch", "--timeout", "soon", "x").returncode == 2


def test_exit_3_deadline_with_an_answer(cli, sim, use):
    assert cli("watch", "--timeout", "1", start_take(sim, seconds=60)).returncode == 3


def test_exit_4_http_error_ended_it(cli, sim, use):
    assert cli("watch", "/operations/nope").returncode == 4


def test_exit_4_network_error_ended_it(cli, monkeypatch, wall_clock, tmp_path):
    # An untrusted certificate is not retried: it ends the watch at once.
    pytest.importorskip("trustme")
    import ssl
    import trustme

    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    cert.configure_cert(context)
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(5)
    server.settimeout(10)
    port = server.getsockname()[1]

    def serve():  # one handshake: a certificate that fails is not tried again
        try:
            conn, _addr = server.accept()
        except OSError:
            return
        try:
            context.wrap_socket(conn, server_side=True).close()
        except (OSError, ssl.SSLError):
            conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    monkeypatch.setenv("OPSTATUS_KEY", "k")
    try:
        result = cli("watch", "--endpoint", "https://127.0.0.1:%d" % port, "/operations/x")
    finally:
        server.close()
        thread.join(5)
    assert_error_line(result, 4, "TLS", "CERTIFICATE")


def test_exit_4_oversized_answer_ended_it(cli, answering):
    server = answering(200, {"status": "running", "padding": "x" * (2 << 20)})
    result = cli("watch", "--endpoint", server.endpoint, "/operations/x")
    assert_only_error_line(result, 4, "cap")


def test_exit_130_interrupted(cli, sim, use, now):
    location = start_take(sim, seconds=60)
    now.interrupt_after(2)
    assert cli("watch", location).returncode == 130


def test_exit_141_broken_pipe(cli, sim, use, monkeypatch):
    class ClosedPipe(io.StringIO):
        def write(self, text):
            raise BrokenPipeError(32, "Broken pipe")

    location = start_take(sim)
    monkeypatch.setattr(sys, "stdout", ClosedPipe())
    assert cli("watch", location).returncode == 141


###############################################################################
# Service text on the terminal, and keys the service echoes
###############################################################################

HOSTILE = "\x1b]0;PWNED\x07\x1b[2J\u202egnp.exe\x9b31m\rdone"


@pytest.mark.parametrize("json_mode", [False, True], ids=["text", "json"])
def test_service_text_cannot_drive_the_terminal(cli, sim, use, json_mode):
    args = ["watch", start_take(sim, fail=HOSTILE)]
    if json_mode:
        args.insert(1, "--json")
    result = cli(*args)
    assert result.returncode == 1, result
    for stream in (result.out, result.err):
        assert not re.search(r"[\x00-\x09\x0b-\x1f\x7f-\x9f\u202e]", stream), repr(stream)
    assert "\\x1b]0;PWNED\\x07\\x1b[2J\\u202egnp.exe\\x9b31m\\rdone" in result.err
    if json_mode:
        final = json.loads(result.lines[-1])  # still JSON, escaped
        assert final["message"] == HOSTILE


def test_service_text_on_a_terminal_is_escaped(cli, sim, use, terminal):
    result = cli("watch", start_take(sim, fail=HOSTILE))
    assert result.returncode == 1
    shown = terminal.getvalue()
    assert "\x1b]" not in shown and "\x07" not in shown and "\x1b[2J" not in shown
    assert "\x1b" not in result.err


class Answering:
    """A loopback server that answers every GET with *status* and the JSON
    *body* (and closes the connection)."""

    def __init__(self, status, body):
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        payload = json.dumps(body).encode("utf-8")

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format, *args):
                pass

            def do_GET(self):
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.send_header("Connection", "close")
                self.end_headers()
                self.wfile.write(payload)

        class Server(ThreadingHTTPServer):
            def handle_error(self, request, client_address):
                pass  # a client that hung up on an oversized answer: expected

        self.httpd = Server(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever,
                                       kwargs={"poll_interval": 0.02}, daemon=True)
        self.thread.start()
        self.endpoint = "http://127.0.0.1:%d" % self.httpd.server_address[1]

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(5)


@pytest.fixture
def answering(monkeypatch, wall_clock):
    """``answering(status, body)``: an Answering server, the key set, the
    command line on a fake clock."""
    servers = []
    monkeypatch.setenv("OPSTATUS_KEY", "k" * 32)

    def start(status, body):
        servers.append(Answering(status, body))
        return servers[-1]

    yield start
    for server in servers:
        server.stop()


def test_error_codes_from_the_service_are_escaped(cli, answering):
    server = answering(503, {"error": {"code": "Bad\x1b[31mCode", "message": "m\x07"}})
    result = cli("watch", "--timeout", "3", "--endpoint", server.endpoint, "/operations/x")
    assert result.returncode == 3, result
    assert "\x1b" not in result.err and "\x07" not in result.err
    assert "Bad\\x1b[31mCode: m\\x07" in result.err


@pytest.mark.parametrize("json_mode", [False, True], ids=["text", "json"])
def test_a_key_the_service_echoes_is_masked(cli, sim, use, json_mode):
    args = ["watch", start_take(sim, fail="invalid key %s for this resource" % sim.key)]
    if json_mode:
        args.insert(1, "--json")
    result = cli(*args)
    assert result.returncode == 1, result
    assert sim.key not in result.out and sim.key not in result.err
    assert "invalid key *** for this resource" in result.err
    if json_mode:
        assert json.loads(result.lines[-1])["message"] == "invalid key *** for this resource"


###############################################################################
# watch: several operations
###############################################################################


def _by_label(result, locations):
    lines = {location: [] for location in locations}
    for line in result.lines:
        label = line.split("  ", 1)[0]
        assert label in lines, (line, result)
        lines[label].append(line[len(label):].strip())
    return lines


def test_watch_several_exit_status_is_the_worst(cli, sim, use):
    ok = start_take(sim, seconds=0.3)
    failed = start_take(sim, seconds=0.3, fail="boom")
    endless = start_take(sim, seconds=60)
    result = cli("watch", "--timeout", "1", ok, failed, endless)
    assert result.returncode == 3, result  # timed out beats failed beats succeeded
    assert_no_traceback(result)
    assert result.err == ""
    lines = _by_label(result, [ok, failed, endless])
    assert re.match(r"succeeded +\d+\.\ds  /snapshots/%s\Z" % UUID, lines[ok][-1]), lines
    assert lines[failed][-1] == "error: operation failed: boom", lines
    assert lines[endless][-1].startswith("error: operation did not end within 1s"), lines


def test_watch_several_failed_and_succeeded_exits_1(cli, sim, use):
    ok, failed = start_take(sim), start_take(sim, fail="boom")
    result = cli("watch", failed, ok)
    assert result.returncode == 1, result
    lines = _by_label(result, [ok, failed])
    assert lines[ok][-1].startswith("succeeded"), lines
    assert lines[failed][-1] == "error: operation failed: boom", lines


def test_watch_several_urls_are_labelled_by_their_path(cli, sim, use):
    urls = [sim.endpoint + "/face/v1.0" + start_take(sim) for _ in range(2)]
    result = cli("watch", *urls)
    assert result.returncode == 0, result
    paths = ["/" + url.split("://", 1)[1].partition("/")[2] for url in urls]
    lines = _by_label(result, paths)
    assert all(lines[path][-1].startswith("succeeded") for path in paths), lines


def test_watch_several_json_documents_name_their_operation(cli, sim, use):
    ok, failed = start_take(sim), start_take(sim, fail="boom")
    result = cli("watch", "--json", ok, failed)
    assert_only_error_line(result, 1, failed, "operation failed: boom")
    finals = {}
    for line in result.lines:
        doc = OperationStatus.from_json(line)
        where = doc.extra["operationLocation"]
        assert where in (ok, failed)
        assert where not in finals, "a document after the final one: %s" % line
        if doc.is_terminal:
            finals[where] = doc
    assert finals[ok].status is Status.SUCCEEDED
    assert finals[failed].status is Status.FAILED


def test_watch_several_with_save_token_is_refused_before_any_request(cli, sim, use, tmp_path):
    token = tmp_path / "op.json"
    locations = [start_take(sim), start_take(sim)]
    result = cli("watch", "--save-token", token, *locations)
    assert_only_error_line(result, 2, "--save-token", "only one")
    assert not token.exists()
    assert gets(sim) == []


def test_watch_several_tells_retried_errors(cli, sim, use):
    locations = [start_take(sim), start_take(sim)]
    sim.server_errors = 2
    result = cli("watch", *locations)
    assert result.returncode == 0, result
    told = retry_lines(result)
    assert len(told) == 1 and "HTTP 503" in told[0], result  # the same error, told once


###############################################################################
# watch: resume tokens and Ctrl-C
###############################################################################


def test_save_token_then_resume_to_success(cli, sim, use, tmp_path):
    location = start_take(sim, seconds=1.0)
    token = tmp_path / "op.json"
    first = cli("watch", "--save-token", token, "--timeout", "0.2", location)
    assert_only_error_line(first, 3, "did not end")
    assert os.listdir(str(tmp_path)) == ["op.json"]  # no temporary file left
    assert token.stat().st_mode & 0o777 == 0o600
    text = token.read_text(encoding="utf-8")
    assert sim.key not in text
    doc = json.loads(text)
    assert doc["url"] == sim.endpoint + "/face/v1.0" + location
    assert doc["status"] in ("notstarted", "running")
    assert doc["polls"] >= 1

    second = cli("watch", "--resume", token)
    assert second.returncode == 0, second
    assert second.err == ""
    match = re.match(r"snapshot id: (%s)\Z" % UUID, second.lines[-1])
    assert match and match.group(1) in sim.snapshots, second

    # The token text itself works as well as its file.
    third = cli("watch", "--json", "--resume", text.strip())
    assert third.returncode == 0, third
    assert OperationStatus.from_json(third.lines[-1]).status is Status.SUCCEEDED


def test_resume_with_a_tampered_token_exits_2_before_any_request(cli, sim, use, tmp_path,
                                                                 monkeypatch):
    location = start_take(sim)
    token = tmp_path / "op.json"
    assert cli("watch", "--save-token", token, location).returncode == 0
    good = token.read_text(encoding="utf-8")
    other = start_take(sim)
    doc = json.loads(good)
    doc["url"] = doc["url"].replace(location, other)  # steer it to another operation
    tampered = tmp_path / "tampered.json"
    tampered.write_text(json.dumps(doc), encoding="utf-8")
    before = len(sim.requests)

    assert_only_error_line(cli("watch", "--resume", tampered), 2, "altered")
    # Sealed with the simulator's key: another key is refused too.
    use(OPSTATUS_KEY="another-key")
    assert_only_error_line(cli("watch", "--resume", token), 2, "another key")
    use()
    assert_only_error_line(cli("watch", "--resume", "{not json"), 2, "resume token")
    monkeypatch.chdir(tmp_path)
    assert_only_error_line(cli("watch", "--resume", "missing.json"), 2, "missing.json")
    assert_only_error_line(cli("watch", "--resume", token, location), 2, "--resume")
    assert len(sim.requests) == before


def test_save_token_to_an_unwritable_path_is_one_line(cli, sim, use, tmp_path):
    result = cli("watch", "--save-token", tmp_path / "missing" / "op.json", start_take(sim))
    assert_only_error_line(result, 2, "op.json")


def test_ctrl_c_with_save_token_says_how_to_resume(cli, sim, use, now, tmp_path, monkeypatch):
    location = start_take(sim, seconds=60)
    monkeypatch.chdir(tmp_path)
    now.interrupt_after(3)
    result = cli("watch", "--save-token", "op.json", location)
    assert result.returncode == 130, result
    assert_no_traceback(result)
    token = os.path.join(os.getcwd(), "op.json")
    assert "opstatus: interrupted; the operation goes on at the service" in result.err
    assert "opstatus: resume with: opstatus watch --resume %s" % token in result.err_lines
    with open(token, encoding="utf-8") as fh:
        polls = json.load(fh)["polls"]
    assert polls == len(gets(sim))  # saved as the watch stood when interrupted
    # and the command it gives works
    now.clock.advance(120)
    resumed = cli("watch", "--resume", token)
    assert resumed.returncode == 0, resumed


def test_ctrl_c_without_save_token_suggests_it(cli, sim, use, now):
    location = start_take(sim, seconds=60)
    now.interrupt_after(2)
    result = cli("watch", "--key-env", "OPSTATUS_KEY", location)
    assert result.returncode == 130, result
    assert "interrupted" in result.err
    url = sim.endpoint + "/face/v1.0" + location
    assert "watch it again with: opstatus watch --key-env OPSTATUS_KEY %s" % url in result.err
    assert "--save-token FILE" in result.err


def test_ctrl_c_during_several_exits_130(cli, sim, use, now):
    locations = [start_take(sim, seconds=60), start_take(sim, seconds=60)]
    now.interrupt_after(2)
    result = cli("watch", *locations)
    assert result.returncode == 130, result
    assert "interrupted" in result.err
    assert_no_traceback(result)


def test_ctrl_c_during_take_wait_exits_130(cli, sim, use, now):
    sim.take_seconds = 60
    now.interrupt_after(2)
    result = cli(*TAKE[:-1] + [sim.subscription, "--wait"])
    assert result.returncode == 130, result
    assert URL.match(result.lines[0]), result
    assert re.match(r"(notstarted|running) ", result.lines[1])
    assert "watch it again with: opstatus watch " + result.lines[0] in result.err
    assert_no_traceback(result)


###############################################################################
# watch on a terminal
###############################################################################


def test_watch_on_a_terminal_redraws_one_live_line(cli, sim, use, terminal):
    result = cli("watch", start_take(sim, seconds=0.5))
    assert result.returncode == 0, result
    assert result.err == ""
    raw = terminal.getvalue()
    live_part, _, rest = raw.partition("snapshot id: ")
    assert rest, raw
    assert live_part.count("\n") == 1, raw  # one line, redrawn in place ...
    frames = [f.strip() for f in re.split(r"[\r\n]+", live_part) if f.strip()]
    assert len(frames) >= 3, raw  # ... several times
    assert all(re.match(r"(\w+) +elapsed +\d+\.\ds( |$)", f) for f in frames), frames
    assert any(re.match(r"(notstarted|running) +elapsed +\d+\.\ds  last action \d+\.\ds ago"
                        r"  next poll in \d+\.\ds\Z", f) for f in frames), frames
    rows = screen(raw)
    assert len(rows) == 2, rows
    assert re.match(r"succeeded +elapsed +\d+\.\ds  last action \d+\.\ds ago\Z", rows[0]), rows
    match = re.match(r"snapshot id: (%s)\Z" % UUID, rows[1])
    assert match and match.group(1) in sim.snapshots, rows


def test_the_live_line_shows_the_error_and_the_next_try(cli, monkeypatch, wall_clock, terminal):
    monkeypatch.setenv("OPSTATUS_KEY", "k")
    result = cli("watch", "--timeout", "20", "--endpoint", "http://127.0.0.1:%d" % closed_port(),
                 "/operations/x")
    assert result.returncode == 3, result
    assert retry_lines(result) == []  # on the live line, not on stderr
    frames = [f.strip() for f in re.split(r"[\r\n]+", terminal.getvalue()) if f.strip()]
    pattern = (r"waiting +elapsed +\d+\.\ds  connection refused \u2014 retry (\d+) "
               r"in (\d+\.\d) s\Z")
    seen = [re.match(pattern, f) for f in frames]
    seen = [(int(m.group(1)), float(m.group(2))) for m in seen if m]
    assert len(seen) >= 10, frames
    assert {n for n, _left in seen} >= {1, 2, 3}, seen  # each retry in turn
    for (n1, left1), (n2, left2) in zip(seen, seen[1:]):
        assert n2 > n1 or left2 <= left1, seen  # the countdown runs down
    assert all(len(f) < 80 for f in frames)
    rows = screen(terminal.getvalue(), columns=80)
    assert rows[-1].startswith("waiting"), rows  # the last state stays


def test_the_live_line_goes_back_to_the_status_when_the_service_answers(
        cli, sim, use, terminal):
    location = start_take(sim)
    sim.server_errors = 1
    result = cli("watch", location)
    assert result.returncode == 0, result
    frames = [f.strip() for f in re.split(r"[\r\n]+", terminal.getvalue()) if f.strip()]
    trouble = [i for i, f in enumerate(frames) if "HTTP 503" in f]
    assert trouble, frames
    assert "HTTP 503" not in frames[-2] and frames[-2].startswith("succeeded"), frames


def test_a_long_error_on_the_live_line_fits_the_terminal(cli, answering, terminal):
    server = answering(503, {"error": {"code": "Busy", "message": "x" * 300}})
    result = cli("watch", "--timeout", "5", "--endpoint", server.endpoint, "/operations/x")
    assert result.returncode == 3, result
    rows = screen(terminal.getvalue(), columns=80)
    assert len(rows) == 1, rows  # the live line never wrapped
    frames = [f for f in re.split(r"[\r\n]+", terminal.getvalue()) if f.strip()]
    assert len(frames) > 5 and all(len(f.rstrip()) <= 79 for f in frames), frames
    assert any("HTTP 503 Busy: xxx" in f for f in frames), frames
    assert "x" * 300 in result.err_lines[-1]  # the error that ended it, whole


def test_several_on_a_terminal_redraw_a_row_each(cli, sim, use, terminal, monkeypatch):
    locations = [start_take(sim, seconds=0.5) for _ in range(2)]
    monkeypatch.setenv("COLUMNS", "200")
    result = cli("watch", *locations)
    assert result.returncode == 0, result
    raw = terminal.getvalue()
    assert raw.count("\x1b[2F\x1b[J") >= 2, raw  # up two rows, erase, redraw
    assert "waiting" in raw and re.search(r"(notstarted|running) ", raw), raw
    rows = screen(raw, columns=200)
    assert len(rows) == 2, rows
    for row, location in zip(rows, locations):
        assert re.match(r"%s  succeeded +\d+\.\ds  /snapshots/%s\Z" % (location, UUID), row), rows


def test_several_on_a_terminal_keep_the_elapsed_time_moving(cli, sim, use, terminal):
    locations = [start_take(sim, seconds=20), start_take(sim, seconds=20)]
    result = cli("watch", *locations)
    assert result.returncode == 0, result
    shown = [float(t) for t in re.findall(r"%s  running +(\d+\.\d)s" % re.escape(locations[0]),
                                          terminal.getvalue())]
    assert len(set(shown)) >= 20, shown  # redrawn while nothing changed
    assert shown == sorted(shown), shown


def test_several_on_an_80_column_terminal_stay_readable(cli, sim, use, terminal):
    locations = [start_take(sim, seconds=0.5) for _ in range(3)]
    result = cli("watch", *locations)
    assert result.returncode == 0, result
    rows = screen(terminal.getvalue(), columns=80)
    shown = "".join(rows)
    for location in locations:
        assert shown.count(location) == 1, rows
    assert shown.count("/operations/") == len(locations), rows


def test_several_on_a_terminal_show_errors_whole(cli, sim, use, terminal):
    long_message = "The source object was modified while the snapshot was being taken; " * 3
    ok, failed = start_take(sim), start_take(sim, fail=long_message.strip())
    result = cli("watch", ok, failed)
    assert result.returncode == 1, result
    rows = screen(terminal.getvalue(), columns=80)
    text = "".join(rows)
    whole = "error: operation failed: " + long_message.strip()
    assert whole.replace(" ", "") in text.replace(" ", ""), rows  # wrapped, never cut
    assert text.count(ok) == 1 and text.count(failed) == 1, rows


def test_several_on_a_terminal_show_retried_errors_on_their_row(cli, sim, use, terminal,
                                                                monkeypatch):
    monkeypatch.setenv("COLUMNS", "300")
    locations = [start_take(sim, seconds=5), start_take(sim, seconds=5)]
    sim.server_errors = 1
    result = cli("watch", *locations)
    assert result.returncode == 0, result
    assert retry_lines(result) == []
    assert re.search(r"HTTP 503 InternalServerError: The service is temporarily unavailable"
                     r"\. \u2014 retry 1 in \d+\.\d s", terminal.getvalue()), terminal.getvalue()


def test_screen_model_wraps_and_moves_like_a_terminal():
    # The model the terminal tests read the output through.
    assert screen("abc\rX") == ["Xbc"]
    assert screen("a\nb\n\x1b[2F\x1b[2Kc\n") == ["c", "b"]
    assert screen("abcdef\n", columns=4) == ["abcd", "ef"]
    assert screen("abcd\nef\n", columns=4) == ["abcd", "ef"]  # no blank row after a full one
    assert screen("abcdef\n\x1b[1F\x1b[2Kxy\n", columns=4) == ["abcd", "xy"]
    assert screen("a\nbc\nd\n\x1b[2F\x1b[Jx\n") == ["a", "x"]


###############################################################################
# -v: what is happening
###############################################################################


def test_verbose_shows_transport_plugins_and_each_exchange(cli, sim, use):
    location = start_take(sim)
    sim.server_errors = 1
    result = cli("watch", "-v", location)
    assert result.returncode == 0, result
    err = result.err_lines
    assert err[0].startswith("opstatus: plugins: ")
    if opstatus._import_pluggy() is not None:
        assert err[0] == "opstatus: plugins: opstatus.builtin %s" % opstatus.__version__
    else:
        assert "pluggy is not installed" in err[0]
    assert err[1] == "opstatus: transport: built-in (HTTP/1.1 over sockets)"
    exchanges = [line for line in err if " -> " in line]
    assert len(exchanges) == len(gets(sim)), result
    pattern = r"opstatus: GET http://127\.0\.0\.1:\d+/face/v1\.0%s -> (\d+) \(\d+ ms\)\Z"
    codes = [re.match(pattern % location, line).group(1) for line in exchanges]
    assert codes[0] == "503" and set(codes[1:]) == {"200"}, exchanges
    assert sim.key not in result.err


def test_verbose_take_shows_the_post(cli, sim, use):
    result = cli("-v", *TAKE[:-1] + [sim.subscription])
    assert result.returncode == 0, result
    assert URL.match(result.out.strip())
    assert re.search(r"^opstatus: POST http://127\.0\.0\.1:\d+/face/v1\.0/snapshots -> 202 "
                     r"\(\d+ ms\)$", result.err, re.M), result
    assert "Operation-Location: /operations/" in result.err


def test_verbose_shows_errors_without_an_answer(cli, monkeypatch, wall_clock):
    monkeypatch.setenv("OPSTATUS_KEY", "k" * 32)
    result = cli("watch", "-v", "--timeout", "1", "--endpoint",
                 "http://127.0.0.1:%d" % closed_port(), "/operations/x?sig=s3cr3t-sas-value")
    assert result.returncode == 3
    assert re.search(r"GET http://127\.0\.0\.1:\d+/face/v1\.0/operations/x\?\u2026 -> "
                     r"NetworkError: connection refused \(\d+ ms\)", result.err), result
    assert "s3cr3t-sas-value" not in result.err and "k" * 32 not in result.err


@needs_pluggy
def test_verbose_names_a_transport_plugin(cli, sim, use):
    class Passing:
        @opstatus.hookimpl
        def opstatus_send_request(self, request):
            return None

    opstatus.register_plugin(Passing())
    result = cli("watch", "-v", start_take(sim))
    assert result.returncode == 0, result
    name = "%s.Passing" % __name__
    assert "opstatus: transport: plugin %s (then the built-in (HTTP/1.1 over sockets) for requests " \
           "it passes on)" % name in result.err_lines, result
    assert name in result.err_lines[0]
    result = cli("watch", "-v", "--cafile", __file__, start_take(sim))
    assert "--cafile is honoured by the built-in one only" in result.err


def test_very_verbose_adds_the_library_log(cli, sim, use):
    result = cli("watch", "-vv", start_take(sim))
    assert result.returncode == 0, result
    assert "waiting" in result.err and "before the next poll" in result.err
    assert sim.key not in result.err


def test_verbose_is_quiet_without_it(cli, sim, use):
    result = cli("watch", start_take(sim))
    assert result.err == ""


###############################################################################
# take and apply
###############################################################################


def test_take_prints_the_operation_url_alone(cli, sim, use):
    result = cli(*TAKE[:-1] + [sim.subscription])
    assert result.returncode == 0, result
    assert result.err == ""
    assert len(result.lines) == 1, result
    match = URL.match(result.lines[0])
    assert match and result.lines[0].startswith(sim.endpoint + "/face/v1.0/operations/"), result
    assert match.group(1) in sim.operations
    assert [m for m, _path in sim.requests] == ["POST"]


def test_take_json(cli, sim, use):
    result = cli("take", "--json", "--type", "LargePersonGroup", "--object-id", "big_1",
                 "--apply-scope", sim.subscription,
                 "--apply-scope", "00000000-0000-0000-0000-000000000002")
    assert result.returncode == 0, result
    doc = json.loads(result.out)
    assert sorted(doc) == ["operationLocation", "operationUrl"]
    assert LOCATION.match(doc["operationLocation"]), doc
    assert doc["operationUrl"] == sim.endpoint + "/face/v1.0" + doc["operationLocation"]


def test_take_wait_polls_to_the_end(cli, sim, use):
    result = cli(*TAKE[:-1] + [sim.subscription, "--wait"])
    assert result.returncode == 0, result
    assert result.err == ""
    assert URL.match(result.lines[0]), result
    assert_progression(status_lines(result), "succeeded")
    match = re.match(r"snapshot id: (%s)\Z" % UUID, result.lines[-1])
    assert match and match.group(1) in sim.snapshots, result


def test_take_wait_json(cli, sim, use):
    result = cli(*TAKE[:-1] + [sim.subscription, "--wait", "--json"])
    assert result.returncode == 0, result
    first, *docs = [json.loads(line) for line in result.lines]
    assert LOCATION.match(first["operationLocation"]), first
    statuses = [OperationStatus.from_json(json.dumps(d)) for d in docs]
    assert_progression([s.status.value for s in statuses], "succeeded")


def test_take_wait_failed_exits_1(cli, sim, use):
    sim.fail = "Source object was modified"
    result = cli(*TAKE[:-1] + [sim.subscription, "--wait"])
    assert_only_error_line(result, 1, "operation failed: Source object was modified")
    assert URL.match(result.lines[0]), result


def test_take_wrong_key_exits_4(cli, sim, use):
    use(OPSTATUS_KEY="nope-nope")
    result = cli(*TAKE[:-1] + [sim.subscription])
    assert_only_error_line(result, 4, "HTTP 401: Access denied")
    assert "nope-nope" not in result.err
    assert result.out == ""


def test_take_needs_an_endpoint(cli, sim, use):
    use(OPSTATUS_ENDPOINT=None)
    result = cli(*TAKE)
    assert_only_error_line(result, 2, "no endpoint", "--endpoint", "OPSTATUS_ENDPOINT")
    assert sim.requests == []


def test_take_rate_limited_waits_as_asked(cli, sim, use, now):
    # The 429s are ridden out within take's deadline, each wait as asked.
    sim.rate_limit = 3
    result = cli(*TAKE[:-1] + [sim.subscription])
    assert result.returncode == 0, result
    assert now.clock.sleeps == [1.0, 1.0, 1.0]


@pytest.fixture
def snapshot_id(sim, fake_clock):
    location = start_take(sim)
    final = opstatus.poll(location, endpoint=sim.endpoint, key=sim.key, timeout=20,
                          plugins=False, clock=fake_clock, sleep=fake_clock.sleep)
    del sim.requests[:]
    return final.snapshot_id


def test_apply_prints_the_operation_url_alone(cli, sim, use, snapshot_id):
    result = cli("apply", snapshot_id, "--object-id", "group1-copy")
    assert result.returncode == 0, result
    assert len(result.lines) == 1, result
    match = URL.match(result.lines[0])
    assert match and match.group(1) in sim.operations, result
    assert sim.requests == [("POST", "/face/v1.0/snapshots/%s/apply" % snapshot_id)]


def test_apply_json(cli, sim, use, snapshot_id):
    result = cli("apply", "--json", snapshot_id, "--object-id", "group1-copy")
    assert result.returncode == 0, result
    assert LOCATION.match(json.loads(result.out)["operationLocation"]), result


def test_apply_wait_polls_to_the_target(cli, sim, use, snapshot_id):
    result = cli("apply", snapshot_id, "--object-id", "group1-copy", "--wait")
    assert result.returncode == 0, result
    assert URL.match(result.lines[0]), result
    assert_progression(status_lines(result), "succeeded")
    assert result.lines[-1] == "target: /persongroup/group1-copy", result


def test_apply_unknown_snapshot_exits_4(cli, sim, use):
    result = cli("apply", "0" * 32, "--object-id", "copy")
    assert_only_error_line(result, 4, "404", "SnapshotNotFound")


SCOPE = "00000000-0000-0000-0000-000000000000"


@pytest.mark.parametrize("args, words", [
    (["take", "--type", "PersonGroup", "--object-id", "Group1", "--apply-scope", SCOPE],
     ["object_id", "'Group1'"]),
    (["take", "--type", "PersonGroup", "--object-id", "group1", "--apply-scope", "subscription"],
     ["apply_scope", "'subscription'", "UUID"]),
    (["take", "--type", "PersonGroup", "--object-id", "group1", "--apply-scope", SCOPE,
      "--user-data", "x" * 16385], ["user_data", "16384"]),
    (["apply", "snapshot1", "--object-id", "Copy"], ["object_id", "'Copy'"]),
    (["apply", "../snapshots", "--object-id", "copy"], ["snapshot_id", "'../snapshots'"]),
], ids=["uppercase-object-id", "scope-not-uuid", "user-data-too-long", "apply-uppercase",
        "apply-bad-snapshot-id"])
def test_take_and_apply_bad_input_is_one_line_and_sends_nothing(cli, sim, use, args, words):
    result = cli(*args)
    assert_only_error_line(result, 2, *words)
    assert result.out == ""
    assert sim.requests == []


@pytest.mark.parametrize("args, words", [
    (["take", "--type", "Face", "--object-id", "g", "--apply-scope", SCOPE],
     ["--type", "expected one of FaceList"]),
    (["take", "--object-id", "g", "--apply-scope", SCOPE], ["--type"]),
    (["take", "--type", "PersonGroup", "--object-id", "g"], ["--apply-scope"]),
    (["apply", "snapshot1"], ["--object-id"]),
], ids=["unknown-type", "no-type", "no-scope", "apply-no-object-id"])
def test_take_and_apply_usage_errors_send_nothing(cli, sim, use, args, words):
    assert_usage_error(cli(*args), *words)
    assert sim.requests == []


def test_take_request_timeout_0_is_refused_like_watch(cli, sim, use):
    result = cli(*TAKE[:-1] + [sim.subscription, "--request-timeout", "0"])
    assert_only_error_line(result, 2, "--request-timeout")


def test_watch_request_timeout_0_is_refused(cli, sim, use):
    result = cli("watch", "--request-timeout", "0", "/operations/x")
    assert_only_error_line(result, 2, "--request-timeout")
    assert sim.requests == []


@pytest.mark.parametrize("command", [["watch", "--timeout", "2", "/operations/x"], TAKE],
                         ids=["watch", "take"])
def test_missing_cafile_is_one_line(cli, monkeypatch, command, tmp_path):
    # https to a closed loopback port: nothing leaves the machine.
    monkeypatch.setenv("OPSTATUS_KEY", "k")
    monkeypatch.setenv("OPSTATUS_ENDPOINT", "https://127.0.0.1:%d" % closed_port())
    result = cli(*command + ["--cafile", tmp_path / "corp-ca.pem"])
    assert_only_error_line(result, 2, "corp-ca.pem")


###############################################################################
# plugins
###############################################################################


@needs_pluggy
def test_plugins_lists_the_builtin_one_and_its_hooks(cli):
    result = cli("plugins")
    assert result.returncode == 0, result
    rows = [line.split() for line in result.lines]
    builtin = [row for row in rows if row and row[0] == "opstatus.builtin"]
    assert builtin and builtin[0][1] == opstatus.__version__, result
    assert "hooks: send_request\n" in result.out
    assert "autoload of entry-point plugins is off" in result.out


@needs_pluggy
def test_plugins_json(cli):
    result = cli("plugins", "--json")
    assert result.returncode == 0, result
    rows = json.loads(result.out)
    assert isinstance(rows, list)
    assert all(set(r) == {"name", "version", "origin", "hooks"} for r in rows)
    builtin = [r for r in rows if r["name"] == "opstatus.builtin"]
    assert builtin == [{"name": "opstatus.builtin", "version": opstatus.__version__,
                        "origin": "built in (trylast)",
                        "hooks": ["opstatus_send_request"]}]


class Announcer:
    @opstatus.hookimpl
    def opstatus_status_changed(self, url, previous, status):
        pass

    @opstatus.hookimpl
    def opstatus_operation_finished(self, url, outcome, status, error):
        pass


@needs_pluggy
def test_plugins_registered_from_code_are_named_by_their_class(cli, monkeypatch):
    first = opstatus.register_plugin(Announcer())
    second = opstatus.register_plugin(Announcer())
    assert first == "%s.Announcer" % __name__
    assert second == "%s.Announcer#2" % __name__
    monkeypatch.setenv("OPSTATUS_DISABLED_PLUGINS", "elsewhere")
    result = cli("plugins", "--json")
    rows = {r["name"]: r for r in json.loads(result.out)}
    assert rows[first]["hooks"] == ["opstatus_status_changed", "opstatus_operation_finished"]
    assert rows[first]["origin"] == "registered from %s" % __name__
    assert second in rows
    assert not any(re.match(r"\d+\Z", name) for name in rows), rows


@needs_pluggy
def test_a_plugin_manager_of_ones_own_names_plugins_by_their_class():
    pm = opstatus.make_plugin_manager()
    assert pm.register(Announcer()) == "%s.Announcer" % __name__
    assert pm.register(Announcer()) == "%s.Announcer#2" % __name__
    assert pm.register(Announcer(), name="mine") == "mine"


@needs_pluggy
def test_a_failing_plugin_is_named_by_its_class_in_errors(cli, sim, use):
    class Broken:
        @opstatus.hookimpl
        def opstatus_prepare_request(self, request):
            raise RuntimeError("no token today")

    opstatus.register_plugin(Broken())
    result = cli("watch", start_take(sim))
    assert_only_error_line(result, 2, "plugin %s.Broken failed in opstatus_prepare_request"
                           % __name__, "no token today")


@needs_pluggy
def test_a_failing_notifier_is_one_safe_warning_naming_it(cli, sim, use):
    class Noisy:
        @opstatus.hookimpl
        def opstatus_operation_finished(self, url, outcome, status, error):
            raise RuntimeError("cannot \x1b[2J notify")

    opstatus.register_plugin(Noisy())
    result = cli("watch", start_take(sim))
    assert result.returncode == 0, result
    assert result.err_lines == ["opstatus: plugin %s.Noisy failed in "
                                "opstatus_operation_finished: cannot \\x1b[2J notify"
                                % __name__], result


def test_plugins_without_pluggy_says_so(cli, monkeypatch):
    monkeypatch.setitem(sys.modules, "pluggy", None)
    monkeypatch.setattr(opstatus, "_PLUGIN_MANAGER", None)
    result = cli("plugins")
    assert result.returncode == 0
    assert "pluggy is not installed" in result.out and "pip install pluggy" in result.out
    result = cli("watch", "-v", "x")  # no key: the setup is told, then the error
    assert result.err_lines[:2] == ["opstatus: plugins: none (pluggy is not installed)",
                                    "opstatus: transport: built-in (HTTP/1.1 over sockets)"], result


###############################################################################
# serve, in a subprocess, used by this process's command line
###############################################################################


class _SigintNotIgnored:
    """Python turns SIGINT into KeyboardInterrupt only if SIGINT is not
    ignored when it starts, and an ignored signal is inherited (a test run
    started in the background of a shell without job control has it
    ignored): make sure the children see the default."""

    def __enter__(self):
        self.saved = None
        if POSIX and threading.current_thread() is threading.main_thread() \
                and signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
            self.saved = signal.SIG_IGN
            signal.signal(signal.SIGINT, signal.default_int_handler)

    def __exit__(self, *exc_info):
        if self.saved is not None:
            signal.signal(signal.SIGINT, self.saved)


class Running:
    """A command running in the background; threads collect its output, its
    stdout line by line."""

    def __init__(self, args, env):
        with _SigintNotIgnored():
            self.proc = subprocess.Popen(
                [sys.executable, SCRIPT] + [str(a) for a in args], env=env, cwd=ROOT,
                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.out_lines = []
        self._queue = queue.Queue()
        self._err = []
        self._threads = [threading.Thread(target=self._read_out, daemon=True),
                         threading.Thread(target=self._read_err, daemon=True)]
        for thread in self._threads:
            thread.start()

    def _read_out(self):
        for raw in iter(self.proc.stdout.readline, b""):
            line = _decode(raw).rstrip("\n")
            self.out_lines.append(line)
            self._queue.put(line)
        self._queue.put(None)

    def _read_err(self):
        self._err.append(self.proc.stderr.read())

    def next_line(self, timeout=15):
        try:
            line = self._queue.get(timeout=timeout)
        except queue.Empty:
            self.kill()
            pytest.fail("no line on stdout within %ss" % timeout)
        if line is None:
            self.finish()
            pytest.fail("stdout closed; stderr: %s" % _decode(b"".join(self._err)))
        return line

    def interrupt(self):
        self.proc.send_signal(signal.SIGINT)

    def finish(self, timeout=15):
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            pytest.fail("the command did not end within %ss of being asked" % timeout)
        for thread in self._threads:
            thread.join(5)
        self._close_pipes()
        out = "".join(line + "\n" for line in self.out_lines)
        return Result(self.proc.returncode, out, _decode(b"".join(self._err)))

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        for thread in self._threads:
            thread.join(5)
        self._close_pipes()

    def _close_pipes(self):
        for pipe in (self.proc.stdout, self.proc.stderr):
            pipe.close()


@pytest.fixture
def serve(monkeypatch):
    """Start ``opstatus serve OPTIONS`` (operations that end at once); read its banner
    and ``export`` lines into ``.banner`` and ``.exports``, and point this
    process's command line at it (real time: it runs in another process)."""
    started = []

    def start(*options, env=None):
        server = Running(["serve", "--queue-seconds", "0", "--take-seconds", "0",
                          "--apply-seconds", "0", "--no-require-objects"] + list(options),
                         env or subprocess_env())
        started.append(server)
        server.banner = server.next_line()
        exports = {}
        for _ in range(2):
            line = server.next_line()
            match = re.match(r"export (OPSTATUS_ENDPOINT|OPSTATUS_KEY)=(\S+)\Z", line)
            assert match, line
            exports[match.group(1)] = match.group(2)
        server.exports = exports
        for name, value in exports.items():
            monkeypatch.setenv(name, value)
        return server

    yield start
    for server in started:
        server.kill()


@posix_only
def test_serve_for_other_programs_then_ctrl_c(cli, serve, monkeypatch):
    server = serve()
    assert "dialect 2021" in server.banner and "Ctrl-C" in server.banner, server.banner
    assert re.match(r"http://127\.0\.0\.1:\d+\Z", server.exports["OPSTATUS_ENDPOINT"])
    assert re.match(r"[0-9a-f]{32}\Z", server.exports["OPSTATUS_KEY"])

    take = cli(*TAKE)
    assert take.returncode == 0, take
    watch = cli("watch", take.out.strip())
    assert watch.returncode == 0, watch
    snapshot = re.match(r"snapshot id: (%s)\Z" % UUID, watch.lines[-1])
    assert snapshot, watch
    apply = cli("apply", snapshot.group(1), "--object-id", "group1-copy", "--wait")
    assert apply.returncode == 0, apply
    assert apply.lines[-1] == "target: /persongroup/group1-copy"
    monkeypatch.setenv("OPSTATUS_KEY", "x" * 32)
    assert_only_error_line(cli("watch", take.out.strip()), 4, "401")

    assert server.proc.poll() is None
    server.interrupt()
    result = server.finish()
    assert result.returncode == 130, result
    assert "interrupted" in result.err, result
    assert_no_traceback(result)
    assert len(result.lines) == 3, result  # nothing after the export lines


def test_serve_key_env(cli, serve):
    server = serve("--key-env", "SIM_KEY", env=subprocess_env(SIM_KEY="k3y-from-env"))
    assert server.exports["OPSTATUS_KEY"] == "k3y-from-env"
    assert cli(*TAKE + ["--wait"]).returncode == 0


@pytest.mark.parametrize("dialect", ["2019", "2021"])
def test_serve_dialect(cli, serve, dialect):
    server = serve("--dialect", dialect)
    assert "(dialect %s)" % dialect in server.banner
    result = cli(*TAKE + ["--wait", "--json"])
    assert result.returncode == 0, result
    final = OperationStatus.from_json(result.lines[-1])
    assert final.status is Status.SUCCEEDED and final.snapshot_id
    # 2019 documents are PascalCase with nulls and no finishedTime; 2021 adds it.
    assert ("finishedTime" in final.extra) == (dialect == "2021"), result.lines[-1]


def test_serve_fail(cli, serve):
    serve("--fail", "source modified")
    result = cli(*TAKE + ["--wait"])
    assert_only_error_line(result, 1, "operation failed: source modified")
    assert_progression(status_lines(result), "failed")


def test_serve_rate_limit(cli, serve, monkeypatch):
    serve("--rate-limit", "3")
    sleeps = []
    monkeypatch.setattr(opstatus, "_cli_time", CliTime(lambda: time.monotonic(), time.time))
    monkeypatch.setattr(opstatus._cli_time, "sleep", sleeps.append)
    # take rides out the three 429s within its deadline, waiting the 1 s the
    # 429 text asks for ("Please retry after 1 second(s)") before each retry.
    first = cli(*TAKE)
    assert first.returncode == 0, first
    assert sleeps == [1.0, 1.0, 1.0]
    monkeypatch.setattr(opstatus, "_cli_time", opstatus._RealTime())
    second = cli(*TAKE + ["--wait"])
    assert second.returncode == 0, second
    assert second.lines[-1].startswith("snapshot id: ")


def test_serve_server_errors(cli, serve):
    serve("--server-errors", "1")
    # A POST that may have reached the service is not retried: the 503 shows.
    assert_only_error_line(cli(*TAKE), 4, "503")
    second = cli(*TAKE)
    assert second.returncode == 0, second
    assert cli("watch", second.out.strip()).returncode == 0


@pytest.mark.skipif(not sys.platform.startswith("linux"),
                    reason="a port in use may be shared elsewhere (SO_REUSEADDR)")
@pytest.mark.parametrize("case", ["in-use", "out-of-range"])
def test_serve_bad_port_is_one_line(cli, case):
    holder = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        holder.bind(("127.0.0.1", 0))
        holder.listen(1)
        port = holder.getsockname()[1] if case == "in-use" else 70000
        result = cli("serve", "--port", port)
    finally:
        holder.close()
    assert result.returncode in (2, 4), result
    assert_no_traceback(result)
    assert result.err_lines[-1].startswith("opstatus"), result


###############################################################################
# End to end: a real pseudo-terminal, and a reader that goes away
###############################################################################


@pytest.fixture
def live():
    """A simulator in this process, on the real clock, with short operations."""
    sim = opstatus.Simulator(take_seconds=0.3, apply_seconds=0.3, queue_seconds=0.05)
    sim.start()
    try:
        yield sim
    finally:
        sim.stop()


def on_terminal(args, env, *, columns=80, timeout=TIMEOUT):
    """Run a command with a pseudo-terminal of *columns* as its stdout;
    returns (exit status, what it wrote to the terminal, stderr)."""
    import fcntl
    import pty
    import select
    import struct
    import termios

    env = dict(env, COLUMNS=str(columns), LINES="24")
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, columns, 0, 0))
    try:
        proc = subprocess.Popen([sys.executable, SCRIPT] + [str(a) for a in args], env=env,
                                cwd=ROOT, stdin=subprocess.DEVNULL, stdout=slave,
                                stderr=subprocess.PIPE)
    finally:
        os.close(slave)
    chunks = []
    deadline = time.monotonic() + timeout
    try:
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                pytest.fail("the command did not end within %ss" % timeout)
            ready, _, _ = select.select([master], [], [], min(left, 1.0))
            if not ready:
                continue
            try:
                data = os.read(master, 65536)
            except OSError:  # EIO: the other end is closed, all was read
                break
            if not data:
                break
            chunks.append(data)
        returncode = proc.wait(10)
        err = _decode(proc.stderr.read())
    finally:
        os.close(master)
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        proc.stderr.close()
    return returncode, _decode(b"".join(chunks)), err


@posix_only
def test_watch_on_a_real_terminal_redraws_one_live_line(live):
    location = start_take(live, seconds=0.5)
    returncode, raw, err = on_terminal(
        ["watch", location], subprocess_env(OPSTATUS_KEY=live.key,
                                            OPSTATUS_ENDPOINT=live.endpoint))
    assert returncode == 0, (raw, err)
    assert err == ""
    rows = screen(raw)
    assert len(rows) == 2, rows
    assert re.match(r"succeeded +elapsed +\d+\.\ds  last action \d+\.\ds ago\Z", rows[0]), rows
    assert raw.count("\r") >= 3, raw  # redrawn in place
    match = re.match(r"snapshot id: (%s)\Z" % UUID, rows[1])
    assert match and match.group(1) in live.snapshots, rows


@pytest.fixture(scope="module")
def closed_pipe():
    """``opstatus watch --json FAILED_OP | head -n1``, end to end."""
    import select

    with opstatus.Simulator(take_seconds=0.5, queue_seconds=0.05, fail="boom",
                            require_objects=False) as sim:
        location = start_take(sim, seconds=0.5, fail="boom")
        env = subprocess_env(OPSTATUS_KEY=sim.key, OPSTATUS_ENDPOINT=sim.endpoint)
        proc = subprocess.Popen([sys.executable, SCRIPT, "watch", "--json", location],
                                env=env, cwd=ROOT, stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            ready, _, _ = select.select([proc.stdout], [], [], 15)
            assert ready, "no line on stdout within 15 s"
            first = OperationStatus.from_json(proc.stdout.readline())
            proc.stdout.close()  # as head does after its line
            if first.is_terminal:
                pytest.skip("the machine is too slow: the operation ended before the first "
                            "poll")
            proc.wait(TIMEOUT)
            err = _decode(proc.stderr.read())
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)
            proc.stdout.close()
            proc.stderr.close()
    return Result(proc.returncode, "", err)


def test_watch_into_a_closed_pipe_is_quiet(closed_pipe):
    assert_no_traceback(closed_pipe)
    assert "BrokenPipe" not in closed_pipe.err


def test_watch_into_a_closed_pipe_exits_141(closed_pipe):
    assert closed_pipe.returncode == 141, closed_pipe


###############################################################################
# The console script
###############################################################################


def _console_script():
    """The opstatus script installed for the Python running the tests, if any
    (a shim on PATH may belong to another one)."""
    import sysconfig

    path = os.path.join(sysconfig.get_path("scripts"), "opstatus")
    return path if os.path.isfile(path) and os.access(path, os.X_OK) else None


@pytest.mark.skipif(_console_script() is None,
                    reason="the opstatus console script is not installed for this Python")
def test_console_script_version():
    proc = subprocess.run([_console_script(), "--version"], env=subprocess_env(),
                          stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, timeout=TIMEOUT)
    assert proc.returncode == 0, _decode(proc.stderr)
    assert _decode(proc.stdout).strip() == "opstatus " + opstatus.__version__


###############################################################################
# The install commands of the READMEs
###############################################################################

#: The documents that tell how to install opstatus or its plugins.
INSTALL_DOCS = ["README.md", "plugins/README.md", "docs/plugins.md"] + sorted(
    os.path.join("plugins", name, "README.md") for name in os.listdir(os.path.join(ROOT, "plugins"))
    if os.path.isfile(os.path.join(ROOT, "plugins", name, "README.md")))
#: Options of pip install that take a value.
_PIP_VALUE_OPTIONS = ("-r", "--requirement", "-c", "--constraint", "-e", "--editable",
                      "-t", "--target", "-i", "--index-url", "--extra-index-url", "-f",
                      "--find-links")


def pip_installs(text):
    """The words given to each ``pip install`` in *text*: in code blocks
    (with their ``\\`` continuations) and in inline code (which may run over
    a line end)."""
    import shlex

    parts = re.split(r"^```.*$", text.replace("\\\n", " "), flags=re.M)
    snippets = []
    for index, part in enumerate(parts):
        if index % 2:  # inside a fence
            snippets.extend(part.splitlines())
        else:
            snippets.extend(m.group(1).replace("\n", " ") for m in re.finditer(r"`([^`]+)`", part))
    found = []
    for snippet in snippets:
        for match in re.finditer(r"pip install\b(.*)", snippet):
            command = re.split(r"\s#|&&|;|\|", match.group(1))[0]
            try:
                found.append(shlex.split(command))
            except ValueError:
                found.append(command.split())
    return found


def index_releases(words):
    """The words of one ``pip install`` that name an opstatus distribution to
    be fetched from the package index (not a folder, archive or URL)."""
    named, skip = [], False
    for word in words:
        if skip:
            skip = False
            if not word.startswith((".", "/")) and "/" not in word and " @ " not in word:
                named.append(word)
            continue
        if word.startswith("-"):
            skip = word in _PIP_VALUE_OPTIONS
            continue
        if word.startswith((".", "/", "~")) or "/" in word or " @ " in word:
            continue  # a path, an archive or a direct reference
        name = re.split(r"[\[<>=!~ ;]", word, maxsplit=1)[0].lower().replace("_", "-")
        if name.startswith("opstatus"):
            named.append(word)
    return named


def test_pip_install_scanner_finds_index_releases():
    # The scanner the next test relies on.
    text = ("```\npip install opstatus-notify\n```\n(`pip install\n'opstatus[plugins]'`)\n"
            "```console\n$ python -m pip install -e '.[plugins]' -e './plugins/x[test]' \\\n"
            "    opstatus_budget==0.1 && python -m pytest\n```\n"
            "`pip install 'opstatus[plugins] @ file:///src/opstatus'` and "
            "`pip install -r benchmarks/requirements.txt` and `pip install pluggy`\n"
            "pip install opstatus, outside code, is prose\n")
    named = [index_releases(words) for words in pip_installs(text)]
    assert named == [["opstatus-notify"], ["opstatus[plugins]"], ["opstatus_budget==0.1"],
                     [], [], []]


@pytest.mark.parametrize("doc", INSTALL_DOCS)
def test_install_commands_name_no_index_release(doc):
    # opstatus and its plugins are not on the package index: every install
    # command must name a folder, an archive or a URL.
    with open(os.path.join(ROOT, doc), encoding="utf-8") as fh:
        text = fh.read()
    commands = pip_installs(text)
    bad = [words for words in commands if index_releases(words)]
    assert bad == [], "%s: %s" % (doc, bad)
    if doc in ("README.md", "plugins/README.md") or doc.startswith("plugins/opstatus-"):
        assert commands, doc  # it does say how to install
        assert "on the package index yet" in " ".join(text.split()), doc  # and why so


def test_watch_of_an_address_that_never_answers_gives_up_early_naming_it(cli, monkeypatch,
                                                                          wall_clock):
    # Issue 13: a typo in the endpoint is not a silent 6-hour wait.
    monkeypatch.setenv("OPSTATUS_KEY", "k")
    endpoint = "http://127.0.0.1:%d" % closed_port()
    result = cli("watch", "--endpoint", endpoint, "/operations/x")
    assert_error_line(result, 4, "connection refused", endpoint, "check the endpoint")
    assert len(retry_lines(result)) == 1  # ~30 s of one error: told once


###############################################################################
# Other Azure services: start, --vocabulary (issue 12)
###############################################################################


def test_start_prints_the_operation_url_alone_and_watch_follows_it(cli, sim, use):
    started = cli("start", "/vision/v3.2/read/analyze")
    assert started.returncode == 0, started
    [url] = started.lines
    assert url.startswith(sim.endpoint + "/vision/v3.2/read/analyzeResults/")
    watched = cli("watch", "--vocabulary", "azure", url)
    assert watched.returncode == 0, watched


def test_start_wait_json_prints_the_whole_document(cli, sim, use, tmp_path):
    body = tmp_path / "request.json"
    body.write_text('{"url": "https://example.com/a.png"}')
    result = cli("start", "/vision/v3.2/read/analyze", "--data", str(body), "--wait",
                 "--json")
    assert result.returncode == 0, result
    assert len(result.lines) == 1  # the final status alone: `| jq .document...` works
    final = json.loads(result.lines[-1])
    assert final["status"] == "succeeded"
    assert final["document"]["analyzeResult"]["readResults"][0]["lines"][0]["text"] == \
        "NOTHING"
    assert [p for m, p in sim.requests if m == "POST"] == ["/vision/v3.2/read/analyze"]


@pytest.mark.parametrize("kind, vocabulary, word", [
    ("azure", "azure", "canceled"), ("translator", "translator", "Cancelled"),
    ("arm-async", "arm", "Canceled")])
def test_a_canceled_operation_exits_1_saying_canceled(cli, sim, use, kind, vocabulary, word):
    url = sim.start_job(kind, outcome="canceled", seconds=1)
    result = cli("watch", "--vocabulary", vocabulary, url)
    assert_error_line(result, 1, "canceled")


def test_a_failed_operation_of_another_service_says_its_word_and_reason(cli, sim, use):
    url = sim.start_job("translator", outcome="failed", error=("InvalidSource", "No docs"))
    result = cli("watch", "--vocabulary", "translator", url)
    assert_error_line(result, 1, "ValidationFailed", "InvalidSource", "No docs")


def test_another_service_s_document_under_the_default_says_to_try_vocabulary(cli, sim, use):
    url = sim.start_job("azure", seconds=1)
    result = cli("watch", url)
    assert_error_line(result, 4, "createdTime", "--vocabulary")


def test_an_unknown_word_exits_alike_for_one_or_several_operations(cli, sim, use):
    urls = [sim.start_job("azure", seconds=1) for _ in range(2)]
    one = cli("watch", urls[0])
    several = cli("watch", *urls)
    assert one.returncode == several.returncode == 4, (one, several)


def test_an_unknown_vocabulary_is_a_usage_error_naming_the_known_ones(cli):
    result = cli("watch", "--vocabulary", "nope", "https://svc.example/ops/1")
    assert result.returncode == 2
    assert "face, azure, translator, language, arm" in result.err


def test_start_with_arm_follows_the_azure_asyncoperation_header(cli, sim, use):
    result = cli("start", "--vocabulary", "arm", "--wait", "/jobs?kind=arm-async&seconds=2")
    assert result.returncode == 0, result
    gets = [p for m, p in sim.requests if m == "GET"]
    assert gets and all("/operationStatuses/" in p for p in gets)


def test_the_resume_hint_of_another_service_names_its_vocabulary(cli, sim, use):
    url = sim.start_job("azure", seconds=100)
    opstatus._cli_time.interrupt_after(2)
    result = cli("watch", "--vocabulary", "azure", url)
    assert result.returncode == 130, result
    assert "--vocabulary azure" in result.err
