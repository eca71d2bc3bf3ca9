"""The fixtures this plugin's tests share with the core's: the helpers module
``tests/opstatus_testing.py`` of the opstatus checkout the plugin lives in
(``plugins/NAME/tests/`` -> ``tests/``), put on ``sys.path`` here."""

import os
import sys

import pytest

_SHARED = os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, os.pardir,
                       os.pardir, "tests")
_SHARED = os.path.normpath(_SHARED)
if not os.path.isfile(os.path.join(_SHARED, "opstatus_testing.py")):
    raise ImportError("%s has no opstatus_testing.py: run these tests from a checkout of "
                      "opstatus (plugins/NAME/tests)" % _SHARED)
if _SHARED not in sys.path:
    sys.path.insert(0, _SHARED)
if "opstatus_testing" not in sys.modules:  # the first plugin's conftest imports it
    pytest.register_assert_rewrite("opstatus_testing")

from opstatus_testing import (  # noqa: E402,F401  (fixtures, used by name)
    _no_thread_left_behind, _objects_need_not_exist, clock, fake_clock, pm, sim,
)
