"""The GMMN loss and its gradient: course_lib's multi-bandwidth MMD^2 against the same estimator
and its analytic gradient written directly in NumPy, in the same run.

    python benchmarks/bench_mmd.py [--repeats 15] [--rows 1000] [--peer-threads N]

About a minute on 2 cores. The work, for every contender: the biased MMD^2 (Eq. 7.2, as a
GMMN trains with) between a generated batch x and a data batch y of ``--rows`` x 784 each,
float32, under the GMMN's six bandwidths ``GMMN_BANDWIDTHS`` (2, 5, 10, 20, 40, 80), and its
gradient with respect to x (Eq. 7.4), both fetched as NumPy values. y is the first
``--rows`` MNIST training images (intensities in [0, 1]); x is uniform in [0, 1]^784, a
generator's batch early in training.

- course_lib: ``kernels.mmd2(x, y)`` in a ``tf.function`` with a ``tf.GradientTape`` on x (a
  ``tf.Variable``), returning the value and the gradient; ``.numpy()`` on both. It builds
  x x^T and y y^T from the blocks of each sample's two halves on and above the diagonal
  (three half-size products each instead of four), and W_xx x from the same blocks.
- numpy: the estimator written out directly, the way one would without a library: squared
  distances as ||x||^2 - 2 x y^T + ||y||^2 (three matrix products, clipped at 0), one
  ``np.exp`` per bandwidth and matrix, the kernel sums, and the gradient from the weight
  matrices W = sum_s k_s / s by the two products W_xx x and W_xy y, all in float32 (the
  precision of course_lib). Its BLAS runs on ``--peer-threads`` threads (default: the faster
  of one thread and all cores, measured at start; see ``blas_threads.py``). The same code in
  float64, NumPy's default dtype, is timed as an information row, not in the ratio.
- the arithmetic floor: the five matrix products alone (x x^T, y y^T, x y^T, then two
  (rows x rows) @ (rows x 784)) in one ``tf.function``, fetched the same way (the two last
  products subtracted, as the gradient combines them), each product made as course_lib
  makes it: x x^T and y y^T from three half-size blocks each, the first gradient product
  from four. ``ours/floor`` is the price of everything else (the exponentials and
  elementwise work, the tape, the fetch). NumPy's ``x @ x.T`` finds the symmetry itself
  (BLAS ``syrk``, half the multiplications).

Before timing, course_lib and the float32 peer must agree (value within 1e-4 relative, the
gradient's largest absolute error within 1e-3 of its largest entry); the benchmark stops
otherwise. Each contender is called twice untimed (tracing, BLAS warm-up), then ``--repeats``
timed calls each, interleaved (the order rotates every round). Prints the median and minimum
time of each, ``ours/floor`` and ``numpy/floor``, and ends with ``ratio course_lib/numpy =
<value>`` (median course_lib over median float32 NumPy; lower is better). Timings are
indicative: other processes may share the CPUs.
"""

import argparse
import os
import statistics

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from blas_threads import choose_blas_threads  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402
from timing import timed  # noqa: E402

from course_lib import data, kernels  # noqa: E402

BANDWIDTHS = kernels.GMMN_BANDWIDTHS


def numpy_mmd2_and_gradient(x, y, bandwidths=BANDWIDTHS):
    """Eq. (7.2) and its gradient in x (Eq. 7.4), written directly in x's dtype."""
    m, n = len(x), len(y)
    x_sq, y_sq = np.einsum("ij,ij->i", x, x), np.einsum("ij,ij->i", y, y)

    def kernel_and_weights(a_sq, b_sq, products):
        squared = np.maximum(a_sq[:, None] - 2 * products + b_sq[None, :], 0)
        kernel, weights = np.zeros_like(squared), np.zeros_like(squared)
        for s in bandwidths:
            term = np.exp(squared * x.dtype.type(-0.5 / s))
            kernel += term
            weights += term * x.dtype.type(1 / s)
        return kernel, weights

    k_xx, w_xx = kernel_and_weights(x_sq, x_sq, x @ x.T)
    k_yy, _ = kernel_and_weights(y_sq, y_sq, y @ y.T)
    k_xy, w_xy = kernel_and_weights(x_sq, y_sq, x @ y.T)
    value = k_xx.sum() / m**2 + k_yy.sum() / n**2 - 2 * k_xy.sum() / (m * n)
    gradient = (-2 / m**2 * (x * w_xx.sum(1)[:, None] - w_xx @ x)
                + 2 / (m * n) * (x * w_xy.sum(1)[:, None] - w_xy @ y))
    return float(value), gradient.astype(x.dtype, copy=False)


def course_lib_contender(x, y):
    """``run() -> (value, gradient)`` for kernels.mmd2 in a tf.function with a tape on x."""
    generated, batch = tf.Variable(x), tf.constant(y)

    @tf.function
    def value_and_gradient():
        with tf.GradientTape() as tape:
            value = kernels.mmd2(generated, batch)
        return value, tape.gradient(value, generated)

    def run():
        value, gradient = value_and_gradient()
        return float(value.numpy()), gradient.numpy()
    return run


def floor_contender(x, y):
    """``run()``: the matrix products of the module docstring, and nothing else."""
    x, y = tf.constant(x), tf.constant(y)

    def halves(a):
        half = tf.shape(a)[0] // 2
        return a[:half], a[half:]

    def symmetric_blocks(a):
        first, second = halves(a)
        return [tf.matmul(p, q, transpose_b=True)
                for p, q in ((first, first), (first, second), (second, second))]

    @tf.function
    def products():
        (xx_11, xx_12, xx_22), (yy_11, yy_12, yy_22) = symmetric_blocks(x), symmetric_blocks(y)
        xy = tf.matmul(x, y, transpose_b=True)
        x_1, x_2 = halves(x)
        xx_x = tf.concat([tf.matmul(xx_11, x_1) + tf.matmul(xx_12, x_2),
                          tf.matmul(xx_12, x_1, transpose_a=True) + tf.matmul(xx_22, x_2)], 0)
        return (tf.reduce_sum(yy_11) + tf.reduce_sum(yy_12) + tf.reduce_sum(yy_22),
                xx_x - tf.matmul(xy, y))

    def run():
        total, combined = products()
        return float(total.numpy()), combined.numpy()
    return run


def check_agreement(ours, peer, label):
    """Stops the benchmark unless the two (value, gradient) pairs agree (module docstring)."""
    value_error = abs(ours[0] - peer[0]) / abs(peer[0])
    gradient_error = np.abs(ours[1] - peer[1]).max() / np.abs(peer[1]).max()
    print(f"check against {label}: MMD^2 {ours[0]:.6f} vs {peer[0]:.6f} (relative "
          f"{value_error:.1e}); gradient max |error| / max |gradient| {gradient_error:.1e}")
    if not (value_error <= 1e-4 and gradient_error <= 1e-3):
        raise SystemExit(f"course_lib and {label} disagree: value {value_error:.1e} (allowed "
                         f"1e-4), gradient {gradient_error:.1e} (allowed 1e-3)")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--rows", type=int, default=1000)
    parser.add_argument("--peer-threads", type=int, default=0,
                        help="BLAS threads for NumPy (default: the faster of 1 and all cores, "
                             "measured at start)")
    args = parser.parse_args()

    threads = choose_blas_threads(args.peer_threads)
    y = data.mnist_splits(binarization="none")["x_train"][:args.rows].astype(np.float32)
    x = np.random.default_rng(0).random(y.shape, dtype=np.float32)
    x64, y64 = x.astype(np.float64), y.astype(np.float64)
    print(f"MMD^2 (biased, Eq. 7.2) and its gradient in x: x {x.shape} uniform, y {y.shape} "
          f"MNIST, float32, bandwidths {BANDWIDTHS}; NumPy on {threads} BLAS thread(s), "
          f"TensorFlow on {tf.config.threading.get_intra_op_parallelism_threads() or 'all'} "
          f"intra-op thread(s); {args.repeats} repeats")

    ours, floor = course_lib_contender(x, y), floor_contender(x, y)
    contenders = {
        "course_lib": ours,
        "numpy": lambda: numpy_mmd2_and_gradient(x, y),
        "numpy_f64": lambda: numpy_mmd2_and_gradient(x64, y64),
        "floor": floor,
    }
    with threadpool_limits(threads, user_api="blas"):
        result = ours()
        check_agreement(result, numpy_mmd2_and_gradient(x, y), "numpy float32")
        check_agreement(result, numpy_mmd2_and_gradient(x64, y64), "numpy float64")
        for run in contenders.values():                     # tracing and warm-up
            run()
            run()
        times = {name: [] for name in contenders}
        names = list(contenders)
        for repeat in range(args.repeats):
            shift = repeat % len(names)
            for name in names[shift:] + names[:shift]:
                _, elapsed = timed(contenders[name])
                times[name].append(elapsed)

    median = {name: statistics.median(t) for name, t in times.items()}
    for name, t in times.items():
        extra = " (information: NumPy's default dtype)" if name == "numpy_f64" else ""
        print(f"{name:<10} median {1000 * median[name]:8.1f} ms, min {1000 * min(t):8.1f} ms"
              f"{extra}")
    print(f"ours/floor = {median['course_lib'] / median['floor']:.3f}, numpy/floor = "
          f"{median['numpy'] / median['floor']:.3f}, numpy_f64/floor = "
          f"{median['numpy_f64'] / median['floor']:.3f}")
    print(f"ratio course_lib/numpy = {median['course_lib'] / median['numpy']:.3f}")


if __name__ == "__main__":
    main()
