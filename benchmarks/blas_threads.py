"""The NumPy peers' BLAS thread count, shared by the benchmarks.

Multi-threaded OpenBLAS waits for its slowest thread, so on a shared, busy machine one
thread can be many times faster than all cores; a peer run on a slowed-down BLAS would
flatter the ratio. :func:`choose_blas_threads` measures both at start and picks the faster.
"""

import os
import time

import numpy as np
from threadpoolctl import threadpool_limits


def choose_blas_threads(requested):
    """BLAS threads for the peer: ``requested``, else whichever of 1 and all cores multiplies
    (100 x 784) @ (784 x 500) faster right now."""
    if requested:
        return requested
    rng = np.random.default_rng(0)
    a, w = rng.random((100, 784), dtype=np.float32), rng.random((784, 500), dtype=np.float32)
    times = {}
    for n in sorted({1, len(os.sched_getaffinity(0))}):
        with threadpool_limits(n, user_api="blas"):
            a @ w
            start = time.perf_counter()
            for _ in range(20):
                a @ w
            times[n] = time.perf_counter() - start
    return min(times, key=times.get)
