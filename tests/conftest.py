"""Shared test set-up: make the one-file module importable from the repo root,
and give tests a fake clock, a simulator that runs on it, and the plumbing of
the loopback servers some test files script.

``python -m pytest`` from the repo root already has it on ``sys.path``; the
bare ``pytest`` command does not, so the root is put first here.
"""

import os
import sys

# tox's nopluggy env: pytest itself needs pluggy, so it is installed; hide it
# from opstatus (an import of it fails) so that the suite runs as without it.
if os.environ.get("OPSTATUS_TEST_HIDE_PLUGGY"):
    sys.modules["pluggy"] = None

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

import opstatus  # noqa: E402,F401  (after the sys.path fix above)

# The helpers and fixtures, shared with the plugins' tests (plugins/*/tests):
# tests/opstatus_testing.py. Test files import these names from conftest.
from opstatus_testing import (  # noqa: E402,F401
    ConnectionCounter, FakeClock, ServerThread, _no_thread_left_behind,
    _objects_need_not_exist, fake_clock, fake_time, gets, sim, stopping, take,
)
