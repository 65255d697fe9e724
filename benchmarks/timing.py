"""Timing one contender's call, after the previous contender's idle threads have gone quiet.

Every benchmark interleaves its contenders (ours, the peer, the floor) so that they share the
machine's state. That alone is not enough on two cores: a BLAS or thread pool keeps its
worker threads spinning (busy-waiting) for a while after each call before they sleep
(OpenBLAS for ``OPENBLAS_THREAD_TIMEOUT``, 2^28 cycles by default, a tenth of a second
or so; TensorFlow's Eigen pool more briefly), and a spinning thread takes a core from
whichever contender is timed next. Which contender pays depends on the order, not on its
own cost. :func:`timed` therefore sleeps :data:`SETTLE_SECONDS` before it starts the clock,
so that each timed call starts on a quiet machine. To see the effect, set
``SETTLE_SECONDS = 0`` and run ``bench_mmd.py``: the TensorFlow contenders timed straight
after NumPy slow down, NumPy does not.
"""

import time

SETTLE_SECONDS = 0.5


def settle():
    """Sleeps :data:`SETTLE_SECONDS` (module docstring)."""
    time.sleep(SETTLE_SECONDS)


def timed(fn, *args, **kwargs):
    """``(fn(*args, **kwargs), wall-clock seconds)``, the clock started after :func:`settle`."""
    settle()
    start = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - start
