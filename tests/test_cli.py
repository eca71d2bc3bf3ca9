"""The command line, driven as a user drives it.

Every command runs as ``python opstatus.py COMMAND`` in a subprocess (with a
``timeout=``), in an environment that has none of the parent's ``OPSTATUS_*``
variables and has plugin autoload off. It talks over loopback to the
simulator: an :class:`opstatus.Simulator` started here, or ``opstatus serve``
in another subprocess whose ``export`` lines give the endpoint and key.
Terminal output is read through a pseudo-terminal. Operations are short
(tenths of a second) so that the whole file runs in a few tens of seconds.

``parse`` and ``--version`` are covered by test_packaging.py.
"""

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
from opstatus import OperationStatus, Status

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(ROOT, "opstatus.py")

#: The longest any one command may run before the test fails.
TIMEOUT = 30
UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
LOCATION = re.compile(r"/operations/(%s)\Z" % UUID)
STATUSES = ("notstarted", "running", "succeeded", "failed")
COMMANDS = ("demo", "watch", "take", "apply", "serve", "parse", "plugins")
EXIT_STATUS_LINES = [
    r"^  0 +the operation succeeded",
    r"^  1 +the operation failed",
    r"^  2 +usage error or invalid input",
    r"^  3 +timed out",
    r"^  4 +HTTP or network error",
    r"^  130 +interrupted \(Ctrl-C\)",
]

POSIX = os.name == "posix"
posix_only = pytest.mark.skipif(not POSIX, reason="signals and pseudo-terminals are POSIX")


###############################################################################
# Helpers
###############################################################################


def clean_env(**extra):
    """The environment of a command: the parent's, less every OPSTATUS_*
    variable (a key or endpoint of the developer's must not leak in), with
    plugin autoload off, plus *extra*."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("OPSTATUS_") and k not in ("COLUMNS", "LINES")}
    env["OPSTATUS_DISABLE_PLUGIN_AUTOLOAD"] = "1"
    env.update(extra)
    return env


def sim_env(sim, **extra):
    """OPSTATUS_KEY and OPSTATUS_ENDPOINT of *sim* (or *extra*)."""
    values = {"OPSTATUS_KEY": sim.key, "OPSTATUS_ENDPOINT": sim.endpoint}
    values.update(extra)
    return clean_env(**values)


class Result:
    def __init__(self, returncode, out, err, seconds):
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
        return "<exit %s after %.2fs\n--- stdout\n%s--- stderr\n%s>" % (
            self.returncode, self.seconds, self.out, self.err)


def _decode(data):
    return data.decode("utf-8", "replace")


def cli(args, env=None, *, cwd=ROOT, flags=(), script=SCRIPT, timeout=TIMEOUT):
    """Run ``python [flags] opstatus.py ARGS`` to its end."""
    started = time.monotonic()
    proc = subprocess.run([sys.executable] + list(flags) + [script] + [str(a) for a in args],
                          env=clean_env() if env is None else env, cwd=str(cwd),
                          stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, timeout=timeout)
    return Result(proc.returncode, _decode(proc.stdout), _decode(proc.stderr),
                  time.monotonic() - started)


def assert_no_traceback(result):
    assert "Traceback" not in result.err, result
    assert "Exception ignored" not in result.err, result


def assert_error_line(result, status, *words):
    """Exit *status*, and stderr is one line ``opstatus: error: ...`` holding
    each of *words*."""
    assert result.returncode == status, result
    assert_no_traceback(result)
    assert len(result.err_lines) == 1, result
    line = result.err_lines[0]
    assert line.startswith("opstatus: error: "), result
    for word in words:
        assert word in line, (word, result)
    return line


def assert_usage_error(result, *words):
    """Exit 2 from argparse: usage lines, then one ``error:`` line."""
    assert result.returncode == 2, result
    assert_no_traceback(result)
    last = result.err_lines[-1]
    assert re.match(r"opstatus( \w+)?: error: ", last), result
    for word in words:
        assert word in last, (word, result)
    assert all(line.startswith(("usage:", " ")) for line in result.err_lines[:-1]), result
    assert result.out == "", result


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
        self.started = time.monotonic()
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
        return Result(self.proc.returncode, out, _decode(b"".join(self._err)),
                      time.monotonic() - self.started)

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


_TERMINAL_TOKENS = re.compile(r"\x1b\[(\d*)([A-Za-z])|\r|\n|[^\x1b\r\n]")


def screen(text, columns=10000):
    """The rows a terminal *columns* wide shows after *text*: printable
    characters (wrapping at the right margin), CR, LF, ``ESC[nF`` (up n
    rows, to column 0) and ``ESC[2K`` (erase the row)."""
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


@pytest.fixture
def live():
    """A simulator in this process, on the real clock, with short operations."""
    sim = opstatus.Simulator(take_seconds=0.3, apply_seconds=0.3, queue_seconds=0.05)
    sim.start()
    try:
        yield sim
    finally:
        sim.stop()


TAKE = ["take", "--type", "PersonGroup", "--object-id", "group1",
        "--apply-scope", "00000000-0000-0000-0000-000000000000"]


###############################################################################
# demo, from a lone copy of the file without site-packages
###############################################################################


@pytest.fixture(scope="module")
def demos(tmp_path_factory):
    """``python -S opstatus.py demo`` (plain, --dialect 2019, --fail) from a
    lone copy of the file in an empty directory; run side by side."""
    alone = tmp_path_factory.mktemp("alone")
    shutil.copy(SCRIPT, str(alone / "opstatus.py"))
    env = clean_env()
    env.pop("PYTHONPATH", None)
    variants = {"plain": [], "2019": ["--dialect", "2019"], "fail": ["--fail"]}
    procs = {}
    for name, extra in variants.items():
        procs[name] = (time.monotonic(), subprocess.Popen(
            [sys.executable, "-S", "opstatus.py", "demo"] + extra, cwd=str(alone), env=env,
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE))
    results = {}
    for name, (started, proc) in procs.items():
        try:
            out, err = proc.communicate(timeout=TIMEOUT)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate()
        results[name] = Result(proc.returncode, _decode(out), _decode(err),
                               time.monotonic() - started)
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
    assert result.seconds < 15, result
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
    assert_error_line(result, 1, "opstatus: error: operation failed: ")
    assert "Source object was modified" in result.err
    steps = _demo_steps(result.out)
    assert len(steps) == 1, result  # no apply after a failed take
    assert_progression(steps[0], "failed")
    assert "snapshot id" not in result.out and "apply it" not in result.out
    assert result.seconds < 15, result


###############################################################################
# Help
###############################################################################


def _assert_exit_statuses(text):
    assert "exit status:" in text, text
    for pattern in EXIT_STATUS_LINES:
        assert re.search(pattern, text, re.M), (pattern, text)


def test_python_dash_m_help():
    env = clean_env()
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
    _assert_exit_statuses(out)


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_help_has_examples_and_exit_statuses(command):
    result = cli([command, "--help"])
    assert result.returncode == 0, result
    assert result.err == ""
    out = result.out
    assert out.startswith("usage: opstatus %s" % command), out
    examples = out.split("\nexamples:\n", 1)
    assert len(examples) == 2, out
    example_lines = examples[1].split("\n\n", 1)[0].splitlines()
    assert any(line.strip().startswith("opstatus %s" % command) for line in example_lines), out
    _assert_exit_statuses(examples[1])


@pytest.mark.parametrize("command", ["watch", "take", "apply"])
def test_help_says_the_key_comes_only_from_the_environment(command):
    out = cli([command, "--help"]).out
    assert "OPSTATUS_KEY" in out and "OPSTATUS_ENDPOINT" in out
    assert "--key-env" in out
    assert "--key " not in out and "--key=" not in out


###############################################################################
# watch: where the endpoint and key come from, and usage errors
###############################################################################


def test_watch_endpoint_from_option_and_key_from_environment(live):
    location = start_take(live)
    result = cli(["watch", "--endpoint", live.endpoint, location],
                 clean_env(OPSTATUS_KEY=live.key))
    assert result.returncode == 0, result
    assert result.lines[-1].startswith("snapshot id: ")


def test_watch_endpoint_from_environment(live):
    location = start_take(live)
    result = cli(["watch", location], sim_env(live))
    assert result.returncode == 0, result
    assert result.lines[-1].startswith("snapshot id: ")


def test_watch_endpoint_option_wins_over_environment(live):
    location = start_take(live)
    env = clean_env(OPSTATUS_KEY=live.key,
                    OPSTATUS_ENDPOINT="http://127.0.0.1:%d" % closed_port())
    result = cli(["watch", "--timeout", "5", "--endpoint", live.endpoint, location], env)
    assert result.returncode == 0, result


def test_watch_absolute_location_needs_no_endpoint(live):
    location = start_take(live)
    url = live.endpoint + "/face/v1.0" + location
    result = cli(["watch", url], clean_env(OPSTATUS_KEY=live.key))
    assert result.returncode == 0, result
    assert result.lines[-1].startswith("snapshot id: ")


def test_watch_key_from_the_variable_named_by_key_env(live):
    location = start_take(live)
    env = clean_env(FACE_KEY=live.key, OPSTATUS_ENDPOINT=live.endpoint)
    result = cli(["watch", "--key-env", "FACE_KEY", location], env)
    assert result.returncode == 0, result
    assert result.lines[-1].startswith("snapshot id: ")


def test_watch_without_key_names_opstatus_key(live):
    location = start_take(live)
    before = len(live.requests)
    result = cli(["watch", location], clean_env(OPSTATUS_ENDPOINT=live.endpoint))
    assert_error_line(result, 2, "no key", "OPSTATUS_KEY")
    assert result.out == ""
    assert len(live.requests) == before


def test_watch_key_env_names_the_missing_variable(live):
    location = start_take(live)
    before = len(live.requests)
    # OPSTATUS_KEY is set, but the user asked for FACE_KEY: no fallback.
    result = cli(["watch", "--key-env", "FACE_KEY", location], sim_env(live))
    line = assert_error_line(result, 2, "FACE_KEY")
    assert live.key not in result.err and live.key not in result.out
    assert "OPSTATUS_KEY" not in line
    assert len(live.requests) == before


def test_watch_empty_key_is_no_key(live):
    location = start_take(live)
    result = cli(["watch", location], sim_env(live, OPSTATUS_KEY=""))
    assert_error_line(result, 2, "OPSTATUS_KEY")


def test_watch_relative_location_without_endpoint(live):
    location = start_take(live)
    result = cli(["watch", location], clean_env(OPSTATUS_KEY=live.key))
    assert_error_line(result, 2, location, "relative", "--endpoint", "OPSTATUS_ENDPOINT")
    assert result.out == ""


def test_watch_without_operation_is_a_usage_error(live):
    result = cli(["watch"], sim_env(live))
    assert_error_line(result, 2, "OPERATION_LOCATION")


@pytest.mark.parametrize("args, words", [
    (["watch", "--bogus", "/operations/x"], ["unrecognized arguments: --bogus"]),
    (["watch", "--timeout", "-1", "/operations/x"], ["--timeout"]),
    (["watch", "--timeout", "nan", "/operations/x"], ["--timeout", "'nan'"]),
    (["watch", "--floor", "soon", "/operations/x"], ["--floor"]),
    (["frobnicate"], ["frobnicate"]),
], ids=["unknown-option", "negative-timeout", "nan-timeout", "bad-floor", "unknown-command"])
def test_watch_bad_options_are_usage_errors(args, words):
    assert_usage_error(cli(args, clean_env(OPSTATUS_KEY="k")), *words)


def test_watch_floor_above_cap_is_one_line(live):
    location = start_take(live)
    result = cli(["watch", "--floor", "5", "--cap", "1", location], sim_env(live))
    assert_error_line(result, 2, "floor", "cap")


# The guard: the real script, run with socket's connecting functions made to
# report and refuse; nothing else changes.
NETWORK_GUARD = r"""
import runpy, socket, sys

def refuse(*args, **kwargs):
    sys.stderr.write("NETWORK ATTEMPT\n")
    sys.stderr.flush()
    raise OSError("the test forbids the network")

socket.getaddrinfo = socket.create_connection = socket.socket.connect = refuse
sys.argv = sys.argv[1:]
runpy.run_path(sys.argv[0], run_name="__main__")
"""


def _guarded(args, env):
    started = time.monotonic()
    proc = subprocess.run([sys.executable, "-c", NETWORK_GUARD, SCRIPT] + args, env=env,
                          cwd=ROOT, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, timeout=TIMEOUT)
    return Result(proc.returncode, _decode(proc.stdout), _decode(proc.stderr),
                  time.monotonic() - started)


@pytest.mark.parametrize("env_endpoint", [False, True], ids=["no-endpoint", "endpoint"])
def test_watch_remote_plain_http_is_refused_without_touching_the_network(env_endpoint):
    extra = {"OPSTATUS_ENDPOINT": "http://example.com"} if env_endpoint else {}
    result = _guarded(["watch", "http://example.com/face/v1.0/operations/%s" % ("1" * 8)],
                      clean_env(OPSTATUS_KEY="secret-key-0123456789", **extra))
    assert "NETWORK ATTEMPT" not in result.err, result
    assert_error_line(result, 2, "plain http", "example.com")
    assert "secret-key-0123456789" not in result.err
    assert result.out == ""


def test_network_guard_sees_an_attempt():
    # The same command with --allow-http does try: the guard would see it.
    result = _guarded(["watch", "--allow-http", "--timeout", "0.5",
                       "http://example.com/face/v1.0/operations/1"],
                      clean_env(OPSTATUS_KEY="k"))
    assert "NETWORK ATTEMPT" in result.err, result


###############################################################################
# watch: output and exit statuses
###############################################################################


def test_watch_not_on_a_terminal_prints_a_line_per_change(live):
    location = start_take(live)
    result = cli(["watch", location], sim_env(live))
    assert result.returncode == 0, result
    assert result.err == ""
    *changes, last = result.lines
    assert len(changes) == len(status_lines(result)), result  # nothing else
    assert_progression(status_lines(result), "succeeded")
    assert "\r" not in result.out and "\x1b" not in result.out
    match = re.match(r"snapshot id: (%s)\Z" % UUID, last)
    assert match, result
    assert match.group(1) in live.snapshots


def test_watch_json_prints_a_document_per_change_final_last(live):
    location = start_take(live)
    result = cli(["watch", "--json", location], sim_env(live))
    assert result.returncode == 0, result
    assert result.err == ""
    docs = [OperationStatus.from_json(line) for line in result.lines]
    assert_progression([d.status.value for d in docs], "succeeded")
    final = docs[-1]
    assert final.is_terminal and final.status is Status.SUCCEEDED
    assert final.snapshot_id in live.snapshots
    assert "finishedTime" in final.extra
    assert all(json.loads(line)["status"] in STATUSES for line in result.lines)


def test_watch_failed_operation_exits_1(live):
    location = start_take(live, fail="Source object was modified. Please retry.")
    result = cli(["watch", location], sim_env(live))
    assert_error_line(result, 1, "operation failed: Source object was modified. Please retry.")
    assert_progression(status_lines(result), "failed")
    assert "snapshot id" not in result.out


def test_watch_json_failed_operation_exits_1_after_the_failed_document(live):
    location = start_take(live, fail="boom")
    result = cli(["watch", "--json", location], sim_env(live))
    assert_error_line(result, 1, "operation failed: boom")
    final = OperationStatus.from_json(result.lines[-1])
    assert final.status is Status.FAILED and final.message == "boom"


def test_watch_timeout_exits_3(live):
    location = start_take(live, seconds=60)
    result = cli(["watch", "--timeout", "0.5", location], sim_env(live))
    assert_error_line(result, 3, "did not end within 0.5s", "(last status: running)")
    assert status_lines(result)[-1] == "running", result
    assert result.seconds < 10, result


def test_watch_wrong_key_exits_4_without_showing_it(live):
    location = start_take(live)
    wrong = "wrong-key-5f3c9a1e7d"
    result = cli(["watch", location], sim_env(live, OPSTATUS_KEY=wrong))
    assert_error_line(result, 4, "401")
    assert wrong not in result.err and wrong not in result.out
    assert live.key not in result.err


def test_watch_unknown_operation_exits_4(live):
    result = cli(["watch", "/operations/00000000-0000-4000-8000-000000000000"], sim_env(live))
    assert_error_line(result, 4, "404", "OperationNotFound")
    assert result.out == ""


def test_watch_rides_out_server_errors_and_rate_limits(live):
    location = start_take(live)
    live.server_errors = 1  # a 503, then
    live.rate_limit = 1  # a 429 with Retry-After: 1
    result = cli(["watch", location], sim_env(live))
    assert result.returncode == 0, result
    assert result.err == ""
    assert result.lines[-1].startswith("snapshot id: ")
    assert result.seconds >= 0.9, result  # Retry-After was honoured
    assert live.server_errors == 0 and live.rate_limit == 0


@pytest.fixture(scope="module")
def refused():
    """``watch --timeout 2`` of an endpoint where nothing listens."""
    env = clean_env(OPSTATUS_KEY="k")
    return cli(["watch", "--timeout", "2", "--endpoint", "http://127.0.0.1:%d" % closed_port(),
                "/operations/00000000-0000-4000-8000-000000000000"], env)


def test_watch_refused_connection_is_one_line(refused):
    assert refused.returncode in (3, 4), refused
    assert_error_line(refused, refused.returncode, "connection refused")
    assert refused.out == ""
    assert refused.seconds < 10, refused


def test_watch_refused_connection_exits_4(refused):
    assert refused.returncode == 4, refused


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


def test_watch_several_exit_status_is_the_worst(live):
    ok = start_take(live)
    failed = start_take(live, fail="boom")
    endless = start_take(live, seconds=60)
    result = cli(["watch", "--timeout", "1", ok, failed, endless], sim_env(live))
    assert result.returncode == 3, result  # timed out beats failed beats succeeded
    assert_no_traceback(result)
    assert result.err == ""
    lines = _by_label(result, [ok, failed, endless])
    assert re.match(r"succeeded +\d+\.\ds  /snapshots/%s\Z" % UUID, lines[ok][-1]), lines
    assert lines[failed][-1] == "error: operation failed: boom", lines
    assert lines[endless][-1].startswith("error: operation did not end within 1s"), lines


def test_watch_several_failed_and_succeeded_exits_1(live):
    ok, failed = start_take(live), start_take(live, fail="boom")
    result = cli(["watch", failed, ok], sim_env(live))
    assert result.returncode == 1, result
    lines = _by_label(result, [ok, failed])
    assert lines[ok][-1].startswith("succeeded"), lines
    assert lines[failed][-1] == "error: operation failed: boom", lines


def test_watch_several_json_documents_name_their_operation(live):
    ok, failed = start_take(live), start_take(live, fail="boom")
    result = cli(["watch", "--json", ok, failed], sim_env(live))
    assert result.returncode == 1, result
    assert_error_line(result, 1, failed, "operation failed: boom")
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


def test_watch_several_with_save_token_is_not_silently_ignored(live, tmp_path):
    token = tmp_path / "op.json"
    result = cli(["watch", "--save-token", token, start_take(live), start_take(live)],
                 sim_env(live))
    assert result.returncode == 2 or token.exists(), result


###############################################################################
# watch: resume tokens
###############################################################################


def test_save_token_then_resume_to_success(live, tmp_path):
    location = start_take(live, seconds=1.0)
    token = tmp_path / "op.json"
    first = cli(["watch", "--save-token", token, "--timeout", "0.2", location], sim_env(live))
    assert_error_line(first, 3, "did not end")
    assert os.listdir(str(tmp_path)) == ["op.json"]  # no temporary file left
    assert token.stat().st_mode & 0o777 == 0o600
    text = token.read_text(encoding="utf-8")
    assert live.key not in text
    doc = json.loads(text)
    assert doc["url"] == live.endpoint + "/face/v1.0" + location
    assert doc["status"] in ("notstarted", "running")
    assert doc["polls"] >= 1

    second = cli(["watch", "--resume", token], sim_env(live))
    assert second.returncode == 0, second
    assert second.err == ""
    match = re.match(r"snapshot id: (%s)\Z" % UUID, second.lines[-1])
    assert match and match.group(1) in live.snapshots, second

    # The token text itself works as well as its file.
    third = cli(["watch", "--json", "--resume", text.strip()], sim_env(live))
    assert third.returncode == 0, third
    assert OperationStatus.from_json(third.lines[-1]).status is Status.SUCCEEDED


def test_resume_with_a_tampered_token_exits_2_before_any_request(live, tmp_path):
    location = start_take(live)
    token = tmp_path / "op.json"
    assert cli(["watch", "--save-token", token, location], sim_env(live)).returncode == 0
    good = token.read_text(encoding="utf-8")
    other = start_take(live)
    doc = json.loads(good)
    doc["url"] = doc["url"].replace(location, other)  # steer it to another operation
    tampered = tmp_path / "tampered.json"
    tampered.write_text(json.dumps(doc), encoding="utf-8")
    before = len(live.requests)

    result = cli(["watch", "--resume", tampered], sim_env(live))
    assert_error_line(result, 2, "altered")
    # Sealed with the simulator's key: another key is refused too.
    result = cli(["watch", "--resume", token], sim_env(live, OPSTATUS_KEY="another-key"))
    assert_error_line(result, 2, "another key")
    result = cli(["watch", "--resume", "{not json"], sim_env(live))
    assert_error_line(result, 2, "resume token")
    result = cli(["watch", "--resume", "missing.json"], sim_env(live), cwd=tmp_path)
    assert_error_line(result, 2, "missing.json")
    result = cli(["watch", "--resume", token, location], sim_env(live))
    assert_error_line(result, 2, "--resume")
    assert len(live.requests) == before


def test_save_token_to_an_unwritable_path_is_one_line(live, tmp_path):
    location = start_take(live)
    result = cli(["watch", "--save-token", tmp_path / "missing" / "op.json", location],
                 sim_env(live))
    assert_error_line(result, 2, "op.json")


###############################################################################
# watch on a terminal
###############################################################################


@posix_only
def test_watch_on_a_terminal_redraws_one_live_line(live):
    location = start_take(live, seconds=0.5)
    returncode, raw, err = on_terminal(["watch", location], sim_env(live))
    assert returncode == 0, (raw, err)
    assert err == ""
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
    assert match and match.group(1) in live.snapshots, rows


@posix_only
def test_watch_several_on_a_terminal_redraws_a_line_each(live):
    locations = [start_take(live, seconds=0.5) for _ in range(2)]
    returncode, raw, err = on_terminal(["watch"] + locations, sim_env(live), columns=200)
    assert returncode == 0, (raw, err)
    assert "\x1b[2F" in raw and "\x1b[2K" in raw, raw  # up two lines, erase, redraw
    assert raw.count("\x1b[2F") >= 2, raw
    assert "waiting" in raw and re.search(r"(notstarted|running) ", raw), raw
    rows = screen(raw, columns=200)  # a terminal wide enough for the lines
    assert len(rows) == 2, rows
    for row, location in zip(rows, locations):
        assert re.match(r"%s  succeeded +\d+\.\ds  /snapshots/%s\Z" % (location, UUID), row), rows


def test_screen_model_wraps_and_moves_like_a_terminal():
    # The model the terminal tests read the output through.
    assert screen("abc\rX") == ["Xbc"]
    assert screen("a\nb\n\x1b[2F\x1b[2Kc\n") == ["c", "b"]
    assert screen("abcdef\n", columns=4) == ["abcd", "ef"]
    assert screen("abcd\nef\n", columns=4) == ["abcd", "ef"]  # no blank row after a full one
    assert screen("abcdef\n\x1b[1F\x1b[2Kxy\n", columns=4) == ["abcd", "xy"]


@posix_only
def test_watch_several_on_an_80_column_terminal_stays_readable(live):
    locations = [start_take(live, seconds=0.5) for _ in range(3)]
    returncode, raw, err = on_terminal(["watch"] + locations, sim_env(live), columns=80)
    assert returncode == 0, (raw, err)
    shown = "".join(screen(raw, columns=80))
    for location in locations:
        assert shown.count(location) == 1, screen(raw, columns=80)
    assert shown.count("/operations/") == len(locations), screen(raw, columns=80)


###############################################################################
# take and apply
###############################################################################


def test_take_prints_the_operation_location(live):
    result = cli(TAKE[:-1] + [live.subscription], sim_env(live))
    assert result.returncode == 0, result
    assert result.err == ""
    assert len(result.lines) == 1, result
    match = re.match(r"Operation-Location: /operations/(%s)\Z" % UUID, result.lines[0])
    assert match, result
    assert match.group(1) in live.operations
    assert [m for m, _path in live.requests] == ["POST"]


SCOPE_2 = "00000000-0000-0000-0000-000000000002"


def test_take_json(live):
    result = cli(["take", "--json", "--type", "LargePersonGroup", "--object-id", "big_1",
                  "--apply-scope", live.subscription, "--apply-scope", SCOPE_2],
                 sim_env(live))
    assert result.returncode == 0, result
    doc = json.loads(result.out)
    assert list(doc) == ["operationLocation"]
    assert LOCATION.match(doc["operationLocation"]), doc


def test_take_wait_polls_to_the_end(live):
    result = cli(TAKE[:-1] + [live.subscription, "--wait"], sim_env(live))
    assert result.returncode == 0, result
    assert result.err == ""
    assert LOCATION.search(result.lines[0]) and result.lines[0].startswith("Operation-Location")
    assert_progression(status_lines(result), "succeeded")
    match = re.match(r"snapshot id: (%s)\Z" % UUID, result.lines[-1])
    assert match and match.group(1) in live.snapshots, result


def test_take_wait_json(live):
    result = cli(TAKE[:-1] + [live.subscription, "--wait", "--json"], sim_env(live))
    assert result.returncode == 0, result
    first, *docs = [json.loads(line) for line in result.lines]
    assert LOCATION.match(first["operationLocation"]), first
    statuses = [OperationStatus.from_json(json.dumps(d)) for d in docs]
    assert_progression([s.status.value for s in statuses], "succeeded")


def test_take_wait_failed_exits_1(live):
    live.fail = "Source object was modified"
    result = cli(TAKE[:-1] + [live.subscription, "--wait"], sim_env(live))
    assert_error_line(result, 1, "operation failed: Source object was modified")
    assert result.lines[0].startswith("Operation-Location: /operations/")


def test_take_wrong_key_exits_4(live):
    result = cli(TAKE[:-1] + [live.subscription], sim_env(live, OPSTATUS_KEY="nope-nope"))
    assert_error_line(result, 4, "401")
    assert "nope-nope" not in result.err
    assert result.out == ""


def test_take_needs_an_endpoint(live):
    result = cli(TAKE, clean_env(OPSTATUS_KEY=live.key))
    assert_error_line(result, 2, "no endpoint", "--endpoint", "OPSTATUS_ENDPOINT")
    assert live.requests == []


@pytest.fixture
def snapshot_id(live):
    location = start_take(live)
    final = opstatus.poll(location, endpoint=live.endpoint, key=live.key, timeout=20,
                          plugins=False)
    del live.requests[:]
    return final.snapshot_id


def test_apply_prints_the_operation_location(live, snapshot_id):
    result = cli(["apply", snapshot_id, "--object-id", "group1-copy"], sim_env(live))
    assert result.returncode == 0, result
    assert len(result.lines) == 1, result
    match = re.match(r"Operation-Location: /operations/(%s)\Z" % UUID, result.lines[0])
    assert match and match.group(1) in live.operations, result
    assert live.requests == [("POST", "/face/v1.0/snapshots/%s/apply" % snapshot_id)]


def test_apply_json(live, snapshot_id):
    result = cli(["apply", "--json", snapshot_id, "--object-id", "group1-copy"], sim_env(live))
    assert result.returncode == 0, result
    assert LOCATION.match(json.loads(result.out)["operationLocation"]), result


def test_apply_wait_polls_to_the_target(live, snapshot_id):
    result = cli(["apply", snapshot_id, "--object-id", "group1-copy", "--wait"], sim_env(live))
    assert result.returncode == 0, result
    assert result.lines[0].startswith("Operation-Location: /operations/")
    assert_progression(status_lines(result), "succeeded")
    assert result.lines[-1] == "target: /persongroup/group1-copy", result


def test_apply_unknown_snapshot_exits_4(live):
    result = cli(["apply", "0" * 32, "--object-id", "copy"], sim_env(live))
    assert_error_line(result, 4, "404", "SnapshotNotFound")


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
def test_take_and_apply_bad_input_is_one_line_and_sends_nothing(live, args, words):
    result = cli(args, sim_env(live))
    assert_error_line(result, 2, *words)
    assert result.out == ""
    assert live.requests == []


@pytest.mark.parametrize("args, words", [
    (["take", "--type", "Face", "--object-id", "g", "--apply-scope", SCOPE],
     ["--type", "expected one of FaceList"]),
    (["take", "--object-id", "g", "--apply-scope", SCOPE], ["--type"]),
    (["take", "--type", "PersonGroup", "--object-id", "g"], ["--apply-scope"]),
    (["apply", "snapshot1"], ["--object-id"]),
], ids=["unknown-type", "no-type", "no-scope", "apply-no-object-id"])
def test_take_and_apply_usage_errors_send_nothing(live, args, words):
    assert_usage_error(cli(args, sim_env(live)), *words)
    assert live.requests == []


def test_take_request_timeout_0_is_refused_like_watch(live):
    result = cli(TAKE[:-1] + [live.subscription, "--request-timeout", "0"], sim_env(live))
    assert_error_line(result, 2, "--request-timeout")


def test_watch_request_timeout_0_is_refused(live):
    result = cli(["watch", "--request-timeout", "0", "/operations/x"], sim_env(live))
    assert_error_line(result, 2, "--request-timeout")
    assert live.requests == []


@pytest.mark.parametrize("command", [["watch", "--timeout", "2", "/operations/x"], TAKE],
                         ids=["watch", "take"])
def test_missing_cafile_is_one_line(command, tmp_path):
    # https to a closed loopback port: nothing leaves the machine.
    env = clean_env(OPSTATUS_KEY="k",
                    OPSTATUS_ENDPOINT="https://127.0.0.1:%d" % closed_port())
    result = cli(command + ["--cafile", tmp_path / "corp-ca.pem"], env)
    assert_error_line(result, 2, "corp-ca.pem")


###############################################################################
# serve, in a subprocess
###############################################################################


@pytest.fixture
def serve():
    """Start ``opstatus serve OPTIONS`` (short operations); read its banner
    and ``export`` lines into ``.banner`` and ``.env``."""
    started = []

    def start(*options, env=None):
        server = Running(["serve", "--queue-seconds", "0.05", "--take-seconds", "0.3",
                          "--apply-seconds", "0.3", "--no-require-objects"] + list(options),
                         env or clean_env())
        started.append(server)
        server.banner = server.next_line()
        exports = {}
        for _ in range(2):
            line = server.next_line()
            match = re.match(r"export (OPSTATUS_ENDPOINT|OPSTATUS_KEY)=(\S+)\Z", line)
            assert match, line
            exports[match.group(1)] = match.group(2)
        server.exports = exports
        server.env = clean_env(**exports)
        return server

    yield start
    for server in started:
        server.kill()


@posix_only
def test_serve_for_other_programs_then_ctrl_c(serve):
    server = serve()
    assert "dialect 2021" in server.banner and "Ctrl-C" in server.banner, server.banner
    assert re.match(r"http://127\.0\.0\.1:\d+\Z", server.exports["OPSTATUS_ENDPOINT"])
    assert re.match(r"[0-9a-f]{32}\Z", server.exports["OPSTATUS_KEY"])

    take = cli(TAKE, server.env)
    assert take.returncode == 0, take
    location = take.lines[0].split(": ", 1)[1]
    watch = cli(["watch", location], server.env)
    assert watch.returncode == 0, watch
    snapshot = re.match(r"snapshot id: (%s)\Z" % UUID, watch.lines[-1])
    assert snapshot, watch
    apply = cli(["apply", snapshot.group(1), "--object-id", "group1-copy", "--wait"],
                server.env)
    assert apply.returncode == 0, apply
    assert apply.lines[-1] == "target: /persongroup/group1-copy"
    wrong = cli(["watch", location], dict(server.env, OPSTATUS_KEY="x" * 32))
    assert_error_line(wrong, 4, "401")

    assert server.proc.poll() is None
    server.interrupt()
    result = server.finish()
    assert result.returncode == 130, result
    assert "interrupted" in result.err, result
    assert_no_traceback(result)
    assert len(result.lines) == 3, result  # nothing after the export lines


def test_serve_key_env(serve):
    server = serve("--key-env", "SIM_KEY", env=clean_env(SIM_KEY="k3y-from-env"))
    assert server.exports["OPSTATUS_KEY"] == "k3y-from-env"
    assert cli(TAKE + ["--wait"], server.env).returncode == 0


@pytest.mark.parametrize("dialect", ["2019", "2021"])
def test_serve_dialect(serve, dialect):
    server = serve("--dialect", dialect)
    assert "(dialect %s)" % dialect in server.banner
    result = cli(TAKE + ["--wait", "--json"], server.env)
    assert result.returncode == 0, result
    final = OperationStatus.from_json(result.lines[-1])
    assert final.status is Status.SUCCEEDED and final.snapshot_id
    # 2019 documents are PascalCase with nulls and no finishedTime; 2021 adds it.
    assert ("finishedTime" in final.extra) == (dialect == "2021"), result.lines[-1]


def test_serve_fail(serve):
    server = serve("--fail", "source modified")
    result = cli(TAKE + ["--wait"], server.env)
    assert_error_line(result, 1, "operation failed: source modified")
    assert_progression(status_lines(result), "failed")


def test_serve_rate_limit(serve):
    server = serve("--rate-limit", "3")
    # take rides out the three 429s within its deadline, waiting the 1 s
    # the 429 text asks for ("Please retry after 1 second(s)") between them.
    first = cli(TAKE + ["--wait"], server.env)
    assert first.returncode == 0, first
    assert first.seconds >= 2.8, first
    assert first.lines[-1].startswith("snapshot id: ")


def test_serve_server_errors(serve):
    server = serve("--server-errors", "1")
    # A POST that may have reached the service is not retried: the 503 shows.
    first = cli(TAKE, server.env)
    assert_error_line(first, 4, "503")
    second = cli(TAKE, server.env)
    assert second.returncode == 0, second
    watch = cli(["watch", second.lines[0].split(": ", 1)[1]], server.env)
    assert watch.returncode == 0, watch


@pytest.mark.parametrize("case", ["in-use", "out-of-range"])
def test_serve_bad_port_is_one_line(case):
    holder = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        holder.bind(("127.0.0.1", 0))
        holder.listen(1)
        port = holder.getsockname()[1] if case == "in-use" else 70000
        result = cli(["serve", "--port", port], timeout=10)
    finally:
        holder.close()
    assert result.returncode in (2, 4), result
    assert_no_traceback(result)
    assert result.err_lines[-1].startswith("opstatus"), result


###############################################################################
# Ctrl-C and closed pipes
###############################################################################


@posix_only
@pytest.mark.parametrize("several", [False, True], ids=["one", "several"])
def test_ctrl_c_during_watch_exits_130(live, several):
    locations = [start_take(live, seconds=60)]
    if several:
        locations.append(start_take(live, seconds=60))
    watch = Running(["watch"] + locations, sim_env(live))
    first = watch.next_line()
    assert re.search(r"(notstarted|running) ", first), first
    asked = time.monotonic()
    watch.interrupt()
    result = watch.finish()
    assert time.monotonic() - asked < 5, result
    assert result.returncode == 130, result
    assert "interrupted" in result.err, result
    assert_no_traceback(result)


@posix_only
def test_ctrl_c_during_take_wait_exits_130(live):
    live.take_seconds = 60
    watch = Running(TAKE[:-1] + [live.subscription, "--wait"], sim_env(live))
    assert watch.next_line().startswith("Operation-Location: ")
    assert re.match(r"(notstarted|running) ", watch.next_line())
    watch.interrupt()
    result = watch.finish()
    assert result.returncode == 130, result
    assert_no_traceback(result)


def _watch_into_closed_pipe(live):
    """``opstatus watch --json FAILED_OP | head -n1``."""
    import select

    location = start_take(live, seconds=0.5, fail="boom")
    started = time.monotonic()
    proc = subprocess.Popen([sys.executable, SCRIPT, "watch", "--json", location],
                            env=sim_env(live), cwd=ROOT, stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        ready, _, _ = select.select([proc.stdout], [], [], 15)
        assert ready, "no line on stdout within 15 s"
        first = OperationStatus.from_json(proc.stdout.readline())
        proc.stdout.close()  # as head does after its line
        if first.is_terminal:
            pytest.skip("the machine is too slow: the operation ended before the first poll")
        proc.wait(TIMEOUT)
        err = _decode(proc.stderr.read())
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        proc.stdout.close()
        proc.stderr.close()
    return Result(proc.returncode, "", err, time.monotonic() - started)


def test_watch_into_a_closed_pipe_is_quiet(live):
    result = _watch_into_closed_pipe(live)
    assert_no_traceback(result)
    assert "BrokenPipe" not in result.err


def test_watch_into_a_closed_pipe_does_not_claim_success(live):
    result = _watch_into_closed_pipe(live)
    assert result.returncode != 0, result


###############################################################################
# plugins and the console script
###############################################################################


def test_plugins_lists_the_builtin_one():
    result = cli(["plugins"])
    assert result.returncode == 0, result
    if "pluggy is not installed" in result.out:
        pytest.skip("pluggy is not installed")
    rows = [line.split() for line in result.lines]
    builtin = [row for row in rows if row and row[0] == "opstatus.builtin"]
    assert builtin and builtin[0][1] == opstatus.__version__, result
    assert "autoload of entry-point plugins is off" in result.out


def test_plugins_json():
    result = cli(["plugins", "--json"])
    assert result.returncode == 0, result
    if "pluggy is not installed" in result.out:
        pytest.skip("pluggy is not installed")
    rows = json.loads(result.out)
    assert isinstance(rows, list) and all(set(r) == {"name", "version", "origin"} for r in rows)
    builtin = [r for r in rows if r["name"] == "opstatus.builtin"]
    assert builtin == [{"name": "opstatus.builtin", "version": opstatus.__version__,
                        "origin": "built in (trylast)"}]


def _console_script():
    """The opstatus script installed for the Python running the tests, if any
    (a shim on PATH may belong to another one)."""
    import sysconfig

    path = os.path.join(sysconfig.get_path("scripts"), "opstatus")
    return path if os.path.isfile(path) and os.access(path, os.X_OK) else None


@pytest.mark.skipif(_console_script() is None,
                    reason="the opstatus console script is not installed for this Python")
def test_console_script_version():
    proc = subprocess.run([_console_script(), "--version"], env=clean_env(),
                          stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, timeout=TIMEOUT)
    assert proc.returncode == 0, _decode(proc.stderr)
    assert _decode(proc.stdout).strip() == "opstatus " + opstatus.__version__
