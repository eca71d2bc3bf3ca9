"""One file, standard library only, lazy imports, and the ``parse`` command."""

import ast
import json
import os
import re
import shutil
import subprocess
import sys
import textwrap

import pytest

import opstatus
from opstatus import OperationStatus, Status

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SOURCE = os.path.join(ROOT, "opstatus.py")

VALID = (
    '{"CreatedTime":"2019-05-16T04:15:15.2959673Z","LastActionTime":'
    '"2019-05-16T04:15:17.2959673Z","Message":null,"ResourceLocation":"/snapshots/abc",'
    '"Status":"Succeeded","finishedTime":"2019-05-16T04:15:17Z"}'
)
INVALID = '{"status": "paused", "createdTime": "2019-05-16T04:15:15Z"}'

# Not to be loaded by ``import opstatus``: the network stack and plugins ...
HEAVY = ["urllib.request", "http.client", "ssl", "socket", "email", "http.server", "pluggy"]
# ... and modules that the CLI and other parts import only when they run.
# (Light standard modules -- dataclasses, json, logging, os, re, time -- are
# imported once at the top, as bottle does.)
LAZY = ["asyncio", "argparse", "concurrent.futures"]

def _run_import_only(code, *flags):
    out = subprocess.run(
        [sys.executable] + list(flags) + ["-c", code, ROOT],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60,
    )
    assert out.returncode == 0, out.stderr.decode()
    return set(out.stdout.decode().split())


IMPORT_ONLY = (
    "import sys\n"
    "sys.path.insert(0, sys.argv[1])\n"
    "before = set(sys.modules)\n"
    "import opstatus\n"
    "assert opstatus.__file__.startswith(sys.argv[1])\n"
    "print(' '.join(sorted(set(sys.modules) - before)))\n"
    "print(' '.join('ALREADY:' + m for m in sorted(before)))\n"
)


@pytest.mark.parametrize("flags", [(), ("-I",), ("-I", "-S")], ids=["plain", "isolated", "nosite"])
def test_import_loads_nothing_heavy(flags):
    words = _run_import_only(IMPORT_ONLY, *flags)
    new = {w for w in words if not w.startswith("ALREADY:")}
    assert "opstatus" in new
    assert not new & set(HEAVY), sorted(new & set(HEAVY))
    assert not new & set(LAZY), sorted(new & set(LAZY))
    for name in HEAVY + LAZY:  # no submodule either (email.parser, asyncio.events, ...)
        assert not any(m.startswith(name + ".") for m in new), name


def test_import_without_site_loads_none_at_all():
    # With -I -S nothing but the interpreter's core is loaded beforehand, so
    # the modules must be absent from sys.modules altogether.
    words = _run_import_only(IMPORT_ONLY, "-I", "-S")
    loaded = {w[len("ALREADY:"):] if w.startswith("ALREADY:") else w for w in words}
    assert "opstatus" in loaded
    assert not loaded & set(HEAVY + LAZY), sorted(loaded & set(HEAVY + LAZY))


def test_import_probe_can_see_a_lazy_module():
    # The harness itself must be able to fail: importing json shows up.
    code = IMPORT_ONLY.replace("import opstatus\n", "import opstatus, json, argparse\n")
    new = {w for w in _run_import_only(code, "-I", "-S") if not w.startswith("ALREADY:")}
    assert {"json", "argparse"} <= new


def test_main_and_parsing_do_not_load_network():
    code = (
        "import sys\n"
        "sys.path.insert(0, sys.argv[1])\n"
        "import opstatus\n"
        "opstatus.OperationStatus.from_json(%r).to_json()\n"
        "print(' '.join(sorted(sys.modules)))\n" % VALID
    )
    loaded = _run_import_only(code, "-I", "-S")
    assert not loaded & set(HEAVY), sorted(loaded & set(HEAVY))


###############################################################################
# The file alone, without site-packages
###############################################################################


@pytest.fixture
def alone(tmp_path):
    shutil.copy(SOURCE, str(tmp_path / "opstatus.py"))
    (tmp_path / "valid.json").write_text(VALID, encoding="utf-8")
    (tmp_path / "invalid.json").write_text(INVALID, encoding="utf-8")
    return tmp_path


def _run(args, cwd, stdin=None):
    return subprocess.run(
        [sys.executable] + args, cwd=str(cwd), input=stdin, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, timeout=60,
    )


def test_copied_file_imports_without_site(alone):
    out = _run(["-S", "-c", "import opstatus, os; print(os.path.dirname(opstatus.__file__))"],
               alone)
    assert out.returncode == 0, out.stderr.decode()
    assert os.path.samefile(out.stdout.decode().strip(), str(alone))


def test_copied_file_parses_without_site(alone):
    out = _run(["-S", "opstatus.py", "parse", "valid.json"], alone)
    assert out.returncode == 0, out.stderr.decode()
    assert "succeeded" in out.stdout.decode()
    assert out.stderr == b""


def test_copied_file_invalid_without_site(alone):
    out = _run(["-S", "opstatus.py", "parse", "invalid.json"], alone)
    assert out.returncode == 2
    err = out.stderr.decode()
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("opstatus: error:")
    assert "'paused'" in lines[0]
    assert "Traceback" not in err
    assert out.stdout == b""


###############################################################################
# __version__ and __all__
###############################################################################


def test_version_is_a_literal():
    with open(SOURCE, encoding="utf-8") as fh:
        source = fh.read()
    found = re.findall(r'^__version__ = "([^"\\]+)"$', source, re.M)
    assert len(found) == 1
    assert found[0] == opstatus.__version__
    assert re.match(r"\A\d+\.\d+\.\d+(?:(?:a|b|rc)\d+|\.dev\d+|\.post\d+)?\Z", found[0])
    # Also readable without importing (setup.cfg's ``attr:`` reads the AST).
    tree = ast.parse(source)
    literals = [
        node.value for node in tree.body
        if isinstance(node, ast.Assign)
        and [getattr(t, "id", None) for t in node.targets] == ["__version__"]
    ]
    assert len(literals) == 1
    assert ast.literal_eval(literals[0]) == opstatus.__version__


def test_version_exported():
    assert "__version__" in opstatus.__all__
    assert isinstance(opstatus.__version__, str)
    assert type(opstatus.__version__) is str


def test_all_names_exist():
    assert len(opstatus.__all__) == len(set(opstatus.__all__))
    for name in opstatus.__all__:
        assert hasattr(opstatus, name), name
    for name in ("OpStatusError", "StatusDocumentError", "Status", "OperationStatus",
                 "ResourceRef", "parse_datetime", "format_datetime", "main"):
        assert name in opstatus.__all__


def test_star_import():
    namespace = {}
    exec("from opstatus import *", namespace)
    for name in opstatus.__all__:
        assert namespace[name] is getattr(opstatus, name)


###############################################################################
# python opstatus.py parse
###############################################################################


@pytest.fixture
def files(tmp_path):
    (tmp_path / "valid.json").write_text(VALID, encoding="utf-8")
    (tmp_path / "invalid.json").write_text(INVALID, encoding="utf-8")
    (tmp_path / "notjson.json").write_text("{not json", encoding="utf-8")
    (tmp_path / "utf16.json").write_bytes(VALID.encode("utf-16"))
    return tmp_path


def test_cli_parse_valid(files):
    out = _run([SOURCE, "parse", "valid.json"], files)
    assert out.returncode == 0, out.stderr.decode()
    text = out.stdout.decode()
    assert "succeeded" in text
    assert "2019-05-16T04:15:15.295967Z" in text
    assert "/snapshots/abc" in text and "abc" in text
    assert "finishedTime" in text
    assert out.stderr == b""


def test_cli_parse_utf16(files):
    out = _run([SOURCE, "parse", "utf16.json"], files)
    assert out.returncode == 0, out.stderr.decode()
    assert "succeeded" in out.stdout.decode()


def test_cli_parse_json_output(files):
    out = _run([SOURCE, "parse", "--json", "valid.json"], files)
    assert out.returncode == 0, out.stderr.decode()
    back = OperationStatus.from_json(out.stdout)
    assert back == OperationStatus.from_json(VALID)
    assert back.status is Status.SUCCEEDED
    assert back.snapshot_id == "abc"
    assert dict(back.extra) == {"finishedTime": "2019-05-16T04:15:17Z"}
    data = json.loads(out.stdout.decode())
    assert data["status"] == "succeeded"
    assert data["createdTime"] == "2019-05-16T04:15:15.295967Z"
    assert "message" not in data


def test_cli_parse_stdin(files):
    out = _run([SOURCE, "parse", "-"], files, stdin=VALID.encode())
    assert out.returncode == 0, out.stderr.decode()
    assert "succeeded" in out.stdout.decode()
    out = _run([SOURCE, "parse", "--json"], files, stdin=VALID.encode())  # '-' is the default
    assert out.returncode == 0, out.stderr.decode()
    assert OperationStatus.from_json(out.stdout) == OperationStatus.from_json(VALID)


@pytest.mark.parametrize(
    "args, stdin, words",
    [
        (["parse", "missing.json"], None, ["missing.json"]),
        (["parse", "invalid.json"], None, ["'paused'"]),
        (["parse", "notjson.json"], None, ["invalid JSON"]),
        (["parse", "."], None, []),  # a directory
        (["parse", "-"], b"", ["invalid JSON"]),
        (["parse", "-"], b"[1, 2]", ["object"]),
        (["parse", "-"], b" " * (64 * 1024 + 10), ["too large"]),
    ],
)
def test_cli_errors(files, args, stdin, words):
    out = _run([SOURCE] + args, files, stdin=stdin)
    assert out.returncode == 2
    err = out.stderr.decode()
    assert "Traceback" not in err
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("opstatus: error:")
    for word in words:
        assert word in lines[0]
    assert out.stdout == b""


def test_cli_timestamp_out_of_utc_range(files):
    (files / "edge.json").write_text(
        '{"status": "running", "createdTime": "9999-12-31T23:00:00-05:00"}', encoding="utf-8")
    out = _run([SOURCE, "parse", "edge.json"], files)
    assert "Traceback" not in out.stderr.decode()
    assert out.returncode in (0, 2)


def test_cli_version(files):
    out = _run([SOURCE, "--version"], files)
    assert out.returncode == 0
    assert out.stdout.decode().strip() == "opstatus " + opstatus.__version__


def test_cli_usage_errors(files):
    out = _run([SOURCE], files)
    assert out.returncode == 2
    assert "Traceback" not in out.stderr.decode()
    out = _run([SOURCE, "frobnicate"], files)
    assert out.returncode == 2
    assert "Traceback" not in out.stderr.decode()


def test_cli_help_lists_exit_statuses(files):
    out = _run([SOURCE, "parse", "--help"], files)
    assert out.returncode == 0
    assert "exit status" in out.stdout.decode()


# In-process, through main(): the same contract, and quicker.


def test_main_in_process(files, capsys):
    assert opstatus.main(["parse", str(files / "valid.json")]) == 0
    captured = capsys.readouterr()
    assert "succeeded" in captured.out and captured.err == ""
    assert opstatus.main(["parse", "--json", str(files / "valid.json")]) == 0
    captured = capsys.readouterr()
    assert OperationStatus.from_json(captured.out) == OperationStatus.from_json(VALID)
    assert opstatus.main(["parse", str(files / "missing.json")]) == 2
    captured = capsys.readouterr()
    assert captured.err.startswith("opstatus: error:") and captured.err.count("\n") == 1
    assert opstatus.main(["parse", str(files / "invalid.json")]) == 2
    captured = capsys.readouterr()
    assert captured.err.startswith("opstatus: error:") and "'paused'" in captured.err


def test_first_instances_built_by_racing_threads_are_complete(tmp_path):
    # Threads that race to build the first instances right after import must
    # all get complete objects (a lazily completed dataclass once did not).
    script = tmp_path / "race.py"
    script.write_text(textwrap.dedent("""
        import sys, threading
        sys.path.insert(0, %r)
        for trial in range(20):
            sys.modules.pop("opstatus", None)
            import opstatus
            errors, barrier = [], threading.Barrier(8)
            def work():
                barrier.wait()
                try:
                    st = opstatus.OperationStatus.from_dict(
                        {"status": "running", "createdTime": "2020-01-01T00:00:00Z"})
                    assert st.status is opstatus.Status.RUNNING
                    assert opstatus.RetryPolicy().cap == opstatus.DEFAULT_CAP
                except Exception as exc:
                    errors.append(repr(exc))
            threads = [threading.Thread(target=work) for _ in range(8)]
            for t in threads: t.start()
            for t in threads: t.join()
            if errors:
                print("trial", trial, errors[0]); sys.exit(1)
        print("ok")
    """ % ROOT), encoding="utf-8")
    out = subprocess.run([sys.executable, str(script)], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, timeout=60)
    assert out.returncode == 0, (out.stdout, out.stderr)
    assert out.stdout.strip() == b"ok"


def test_a_copy_cut_at_the_optional_tail_passes_the_core_tests(tmp_path):
    # Issue 11: a vendor who needs only to read, start and poll operations
    # cuts the file at the banner; what remains imports alone and passes the
    # tests of the model, the timestamps and the vocabularies.
    with open(SOURCE, encoding="utf-8") as fh:
        text = fh.read()
    marker = "##  The optional tail"
    assert text.count(marker) == 1
    cut = text[: text.index(marker)].rstrip("#\n ") + "\n"
    (tmp_path / "opstatus.py").write_text(cut, encoding="utf-8")
    for name in ("test_model.py", "test_datetime.py", "test_vocabularies.py"):
        shutil.copy(os.path.join(ROOT, "tests", name), str(tmp_path / name))
    data = os.path.join(ROOT, "tests", "data")
    if os.path.isdir(data):
        shutil.copytree(data, str(tmp_path / "data"))
    # -m "not hypothesis": the property tests read the same code as in the main run, and
    # would double the time this test takes; every example-based test runs
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--noconftest",
               "-o", "addopts=", "-p", "no:xdist", "-p", "no:benchmark", "-m", "not hypothesis",
               str(tmp_path)]
    out = subprocess.run(command, cwd=str(tmp_path), stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, timeout=600)
    if out.returncode < 0 and sys.implementation.name == "pypy":
        # Once, under CI's load, PyPy itself died by a signal while collecting (a fatal
        # error dump, no test failed): a crash of the interpreter gets one more run.
        out = subprocess.run(command, cwd=str(tmp_path), stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, timeout=600)
    text = out.stdout.decode("utf-8", "replace")
    tail = text[-2000:]
    assert out.returncode == 0, "exit %d\n%s\n...\n%s" % (out.returncode, text[:1500], tail)
    assert " passed" in tail
    assert "class Watcher" not in cut and "class Simulator" not in cut and "def main(" not in cut
