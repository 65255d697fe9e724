"""Test-session settings: the notebooks run in smoke mode, quietly and offline.

The library itself never sets environment variables; the test harness does, before any
kernel starts, so nbval's notebook kernels inherit them.
"""

import os

import pytest

os.environ.setdefault("COURSE_LIB_SMOKE", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("MPLBACKEND", "Agg")

# Fixture notebooks are inputs of the exercise tests, not chapters to run.
collect_ignore_glob = ["tests/course/fixtures/*"]


@pytest.hookimpl(tryfirst=True)  # before xdist reads the groups
def pytest_collection_modifyitems(config, items):
    """With pytest-xdist (``-n 2 --dist loadgroup``, see pyproject.toml) the tests are shared
    between two worker processes; the cells of one notebook share a kernel and must run in
    order on one worker, so each notebook is one group."""
    for item in items:
        if item.path.suffix == ".ipynb":
            item.add_marker(pytest.mark.xdist_group(item.path.stem))
