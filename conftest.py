"""Test-session settings: the notebooks run in smoke mode, quietly and offline.

The library itself never sets environment variables; the test harness does, before any
kernel starts, so nbval's notebook kernels inherit them.
"""

import os

os.environ.setdefault("COURSE_LIB_SMOKE", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("MPLBACKEND", "Agg")

# Fixture notebooks are inputs of the exercise tests, not chapters to run.
collect_ignore_glob = ["tests/course/fixtures/*"]
