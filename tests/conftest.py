"""Shared test set-up: make the one-file module importable from the repo root.

``python -m pytest`` from the repo root already has it on ``sys.path``; the
bare ``pytest`` command does not, so the root is put first here.
"""

import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)
