"""Gaussian kernels and the maximum mean discrepancy (Gretton et al. 2012), the loss of a
generative moment-matching network (Li, Swersky & Zemel 2015) and the statistic of the
two-sample test in ``course_lib.evaluation.two_sample``.

Eqs. (7.1)-(7.3) of ``07_gmmn_gsn_ebm.ipynb``, for samples x_1..x_m and y_1..y_n:

    (7.1) k(x, y) = sum_s exp(-||x - y||^2 / (2 s))        s over ``bandwidths``
    (7.2) MMD^2_b = 1/m^2 sum_ij k(x_i, x_j) + 1/n^2 sum_ij k(y_i, y_j)
                    - 2/(mn) sum_ij k(x_i, y_j)                       (biased, >= 0)
    (7.3) MMD^2_u = 1/(m(m-1)) sum_{i != j} k(x_i, x_j) + 1/(n(n-1)) sum_{i != j} k(y_i, y_j)
                    - 2/(mn) sum_ij k(x_i, y_j)                       (unbiased)

A bandwidth s is what the GMMN authors' code calls sigma: it divides the squared distance
directly, so it is a squared length scale (the code's defaults 2, 5, 10, 20, 40, 80 on MNIST
pixels, whose squared distances are tens to a hundred). Symbols -> code: s ->
``bandwidths``, k -> :func:`gaussian_kernel_matrix`, MMD^2 -> :func:`mmd2`.

Everything is written with ``keras.ops`` (differentiable, XLA-compatible) and computes
squared distances as ||x||^2 - 2 x.y + ||y||^2, clipped at 0: three matrix products for
(7.2), whatever the number of bandwidths, where ``mmd2`` builds each sample's symmetric
kernel with itself from the blocks on and above the diagonal (three quarters of the work).
Used by ``course_lib.moment_matching`` (the GMMN loss) and ``course_lib.evaluation.two_sample``
(the permutation test).
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf
from keras import ops

from course_lib.checks import check_bool, check_finite_array, describe

# The bandwidths of Li, Swersky & Zemel's MNIST experiments (squared length scales, 7.1).
GMMN_BANDWIDTHS = (2.0, 5.0, 10.0, 20.0, 40.0, 80.0)
# A bandwidth s_max / r with an integer r up to this is computed as a power (see below).
MAX_POWER = 64


def check_bandwidths(bandwidths) -> tuple:
    """``bandwidths`` as a tuple of positive finite floats; a clear error otherwise."""
    items = bandwidths if isinstance(bandwidths, (list, tuple, np.ndarray)) else [bandwidths]
    if isinstance(bandwidths, (str, bytes)) or bandwidths is None or any(
            isinstance(b, (bool, np.bool_)) for b in np.ravel(np.asarray(items, dtype=object))):
        raise ValueError(f"bandwidths must be a non-empty list of positive numbers; got "
                         f"{describe(bandwidths)}.")
    values = check_finite_array(np.atleast_1d(np.asarray(bandwidths, dtype=object)).tolist(),
                                "bandwidths", dtype="float64").ravel()
    if values.size == 0 or np.any(values <= 0):
        raise ValueError(f"bandwidths must be a non-empty list of positive numbers; got "
                         f"{describe(bandwidths)}.")
    return tuple(float(v) for v in values)


def _as_float_matrix(x, name):
    x = ops.convert_to_tensor(x)
    if len(x.shape) != 2:
        raise ValueError(f"{name} must be a matrix of samples (n, d); got shape "
                         f"{tuple(x.shape)}.")
    if not keras.backend.is_float_dtype(x.dtype):
        x = ops.cast(x, "float32")
    return x


def _pair(x, y):
    x, y = _as_float_matrix(x, "x"), _as_float_matrix(y, "y")
    if x.shape[1] is not None and y.shape[1] is not None and x.shape[1] != y.shape[1]:
        raise ValueError(f"x and y must have the same width; got x {tuple(x.shape)} and y "
                         f"{tuple(y.shape)}.")
    if x.dtype != y.dtype:
        y = ops.cast(y, x.dtype)
    return x, y


def squared_distances(x, y):
    """||x_i - y_j||^2 for every pair, (m, n), as ||x||^2 - 2 x.y + ||y||^2 clipped at 0."""
    x, y = _pair(x, y)
    return _distances_from_norms(x, y, ops.sum(ops.square(x), axis=1),
                                 ops.sum(ops.square(y), axis=1))


def _kernel_of_distances(squared, bandwidths):
    """sum_s exp(-squared / (2 s)) and sum_s exp(-squared / (2 s)) / s (the weights of the
    gradient, Eq. 7.4). With a = exp(-squared / (2 s_max)) for the widest bandwidth, a
    bandwidth s_max / r with r an integer up to ``MAX_POWER`` is a^r, computed by repeated
    squaring: one exponential for the GMMN's six bandwidths (r = 1, 2, 4, 8, 16, 40), whose
    relative rounding error grows to r times float32's (4e-6 at r = 40), far below the
    estimator's sampling error. Other bandwidths take their own exponential."""
    widest = max(bandwidths)
    base = ops.exp(squared * (-0.5 / widest))
    squares = {1: base}                      # a^(2^k), made on demand

    def power(r):
        result, bit = None, 1
        while bit <= r:
            if bit not in squares:
                squares[bit] = ops.square(squares[bit // 2])
            if r & bit:
                result = squares[bit] if result is None else result * squares[bit]
            bit *= 2
        return result

    kernel = weights = None
    for s in bandwidths:
        ratio = widest / s
        r = round(ratio)
        term = (power(r) if abs(ratio - r) < 1e-9 * ratio and r <= MAX_POWER
                else ops.exp(squared * (-0.5 / s)))
        kernel = term if kernel is None else kernel + term
        weights = term / s if weights is None else weights + term / s
    return kernel, weights


def gaussian_kernel_matrix(x, y, bandwidths=GMMN_BANDWIDTHS):
    """Eq. (7.1): k(x_i, y_j) for every pair, (m, n), summed over ``bandwidths``."""
    return _kernel_of_distances(squared_distances(x, y), check_bandwidths(bandwidths))[0]


def mmd2(x, y, bandwidths=GMMN_BANDWIDTHS, *, unbiased=False):
    """Eq. (7.2) (``unbiased=False``, the GMMN loss) or (7.3): the squared maximum mean
    discrepancy between the samples x (m, d) and y (n, d), a scalar in x's float dtype.

    The biased estimator is >= 0 up to rounding; the unbiased one has expectation exactly
    MMD^2 and is negative about half the time when both samples come from one distribution.
    The unbiased form needs m, n >= 2. Differentiable in both arguments, with the gradient
    written out (Eq. 7.4): for W_xz = sum_s k_s(x_i, z_j) / s,

        (7.4) dMMD^2/dx_i = -2 c_xx (x_i sum_j W_xx,ij - (W_xx x)_i)
                            + 2 c_xy (x_i sum_j W_xy,ij - (W_xy y)_i)

    with c_xx = 1/m^2 (1/(m(m-1)) unbiased; the i = j terms vanish from the gradient either
    way) and c_xy = 1/(mn): two matrix products, where automatic differentiation of (7.2)
    spends three and keeps every bandwidth's kernel matrix for the backward pass. The
    gradient with respect to y, the mirror image, costs two more products and is computed
    only when asked for (a GMMN's data need none)."""
    bandwidths = check_bandwidths(bandwidths)
    unbiased = check_bool(unbiased, "unbiased")
    x, y = _pair(x, y)
    if unbiased:
        for name, rows in (("x", x.shape[0]), ("y", y.shape[0])):
            if rows is not None and rows < 2:
                raise ValueError(f"the unbiased MMD^2 needs at least two rows in {name}; "
                                 f"got {rows}.")
    return _mmd2(x, y, bandwidths, unbiased)


class _WithinSample:
    """The kernel of a sample a (m, d) against itself, from the blocks of its two halves a_1
    (the first h = m // 2 rows) and a_2 on and above the diagonal: K_11, K_12 and K_22, three
    products of h x d x (m - h) or less, where the whole symmetric matrix takes four
    (K_21 = K_12^T). The same goes for the elementwise work. Holds what (7.2)-(7.4) need:
    ``total`` = sum_ij K_ij, ``trace`` = sum_i K_ii, the rows' squared norms ``norms``, and
    the gradient's weights W = sum_s k_s / s as the three blocks, read by :meth:`row_sums`
    and :meth:`times`."""

    def __init__(self, a, bandwidths):
        half = ops.shape(a)[0] // 2
        self.first, self.second = a[:half], a[half:]
        self.norms = ops.sum(ops.square(a), axis=1)
        norms_1, norms_2 = self.norms[:half], self.norms[half:]
        blocks = [_kernel_of_distances(_distances_from_norms(p, q, n_p, n_q), bandwidths)
                  for p, q, n_p, n_q in ((self.first, self.first, norms_1, norms_1),
                                         (self.first, self.second, norms_1, norms_2),
                                         (self.second, self.second, norms_2, norms_2))]
        (k_11, self.w_11), (k_12, self.w_12), (k_22, self.w_22) = blocks
        self.total = ops.sum(k_11) + 2.0 * ops.sum(k_12) + ops.sum(k_22)
        self.trace = ops.trace(k_11) + ops.trace(k_22)

    def row_sums(self):
        """sum_j W_ij for every row i of a, (m,)."""
        return ops.concatenate([ops.sum(self.w_11, axis=1) + ops.sum(self.w_12, axis=1),
                                ops.sum(self.w_12, axis=0) + ops.sum(self.w_22, axis=1)], 0)

    def times(self):
        """W a, (m, d): [W_11 a_1 + W_12 a_2; W_12^T a_1 + W_22 a_2]."""
        return ops.concatenate([
            ops.matmul(self.w_11, self.first) + ops.matmul(self.w_12, self.second),
            ops.matmul(ops.transpose(self.w_12), self.first)
            + ops.matmul(self.w_22, self.second)], 0)


def _distances_from_norms(a, b, a_norms, b_norms):
    """squared_distances(a, b) from the rows' squared norms, computed once per sample."""
    return ops.maximum(a_norms[:, None] - 2.0 * ops.matmul(a, ops.transpose(b))
                       + b_norms[None, :], 0.0)


def _mmd2(x, y, bandwidths, unbiased):
    @tf.custom_gradient
    def estimate(x, y):
        m = ops.cast(ops.shape(x)[0], x.dtype)
        n = ops.cast(ops.shape(y)[0], x.dtype)
        within_x, within_y = _WithinSample(x, bandwidths), _WithinSample(y, bandwidths)
        kernel_xy, weights_xy = _kernel_of_distances(
            _distances_from_norms(x, y, within_x.norms, within_y.norms), bandwidths)
        k_xx, k_yy, k_xy = within_x.total, within_y.total, ops.sum(kernel_xy)
        if unbiased:
            # The i = j terms leave as computed (a row's clipped distance to itself is 0 only
            # up to rounding), so the sums keep exactly the i != j pairs of (7.3).
            c_xx, c_yy = 1.0 / (m * (m - 1.0)), 1.0 / (n * (n - 1.0))
            k_xx, k_yy = k_xx - within_x.trace, k_yy - within_y.trace
        else:
            c_xx, c_yy = 1.0 / (m * m), 1.0 / (n * n)
        c_xy = 1.0 / (m * n)
        value = c_xx * k_xx + c_yy * k_yy - 2.0 * c_xy * k_xy

        def gradient(upstream):
            def pull(a, b, within_a, weights_ab, c_aa):      # Eq. (7.4) for a's rows
                return upstream * 2.0 * (
                    -c_aa * (a * within_a.row_sums()[:, None] - within_a.times())
                    + c_xy * (a * ops.sum(weights_ab, axis=1)[:, None]
                              - ops.matmul(weights_ab, b)))
            return (pull(x, y, within_x, weights_xy, c_xx),
                    pull(y, x, within_y, ops.transpose(weights_xy), c_yy))

        return value, gradient

    return estimate(x, y)
