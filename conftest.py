"""Test-session settings: the notebooks run in smoke mode, quietly and offline.

The library itself never sets environment variables; the test harness does, before any
kernel starts, so nbval's notebook kernels inherit them.
"""

import os

import pytest

os.environ.setdefault("COURSE_LIB_SMOKE", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("MPLBACKEND", "Agg")
# One BLAS thread per process: the tests run as two workers on two cores, and a two-thread
# OpenBLAS call waits for its slower thread (benchmarks/blas_threads.py). Measured on a busy
# two-core machine: the eigendecomposition of a 512x512 chain (Chapter 7's bars and stripes)
# took 6-11 s with two threads, 0.3-0.4 s with one.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

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
