"""Pixels as continuous data: dequantisation, the logit transform, and the conventions in
which MNIST log-likelihoods are reported.

Equations as numbered in ``notebooks/06_flows.ipynb``:

* (6.13) uniform dequantisation: an 8-bit pixel k in {0, ..., 255} becomes
  x = (k + u) / 256, u ~ U[0, 1), so x lies in [0, 1); a density p on [0, 1)^D then gives
  the 8-bit image at least log P(k) >= E_u[log p(x)] - D log 256 (Theis et al. 2016);
* (6.14) the logit transform of the MAF paper: y = logit(alpha + (1 - 2 alpha) x),
  log |dy/dx| = sum_d [log(1 - 2 alpha) - log s_d - log(1 - s_d)], s = alpha + (1 - 2 alpha) x,
  so log p_x(x) = log p_y(y) + log |dy/dx|;
* (6.15) bits per dimension: -(log p_x(x) - D log 256) / (D log 2) = -log p_x / (D log 2) + 8.

The conventions ``convert_log_likelihood`` converts between (per example, in nats unless
said): ``"unit"`` (density of dequantised pixels on [0, 1)^D: NICE's 1980.50),
``"logit"`` (density in logit space: the MAF paper's -1300.5), ``"bytes"`` (density on
[0, 256)^D, the bound on log P(k) of Eq. (6.13)) and ``"bits_per_dim"`` (Eq. 6.15).
"""

from __future__ import annotations

import math

import numpy as np

from course_lib.checks import (
    DataError,
    check_finite_array,
    check_finite_float,
    check_images,
    check_positive_int,
    check_seed,
    describe,
)

LOGIT_ALPHA = 1e-6   # the MAF paper's alpha
NUM_LEVELS = 256     # 8-bit pixels
CONVENTIONS = ("unit", "logit", "bytes", "bits_per_dim")


def pixel_levels(x, name="x"):
    """The 8-bit levels k (int64) of images given as intensities k / 255 in [0, 1] (as
    ``course_lib.data`` loads MNIST) or as integers 0..255; anything else is refused."""
    integers = np.asarray(x).dtype.kind in "iu"
    arr = check_images(x, name=name).astype(np.float64)
    if integers:
        levels = arr.astype(np.int64)
    else:
        levels = np.rint(arr * (NUM_LEVELS - 1))
        if np.abs(levels - arr * (NUM_LEVELS - 1)).max() > 1e-3:
            raise DataError(f"{name} must hold 8-bit intensities k / 255; got values such as "
                            f"{arr[np.abs(levels - arr * 255) > 1e-3][:3].tolist()}, which "
                            "are not on that grid (already dequantised?).")
        levels = levels.astype(np.int64)
    if levels.min() < 0 or levels.max() > NUM_LEVELS - 1:
        raise DataError(f"{name} must hold pixels in 0..255 (or intensities in [0, 1]); got "
                        f"values in [{levels.min()}, {levels.max()}].")
    return levels


def dequantize(x, *, seed):
    """Eq. (6.13): x = (k + u) / 256 with u ~ U[0, 1) drawn by ``np.random.default_rng(seed)``,
    for images of 8-bit intensities (see :func:`pixel_levels`). Returns float32 in [0, 1)."""
    levels = pixel_levels(x)
    u = np.random.default_rng(check_seed(seed)).uniform(size=levels.shape)
    # float32 rounding could reach 1.0 from just below it: keep every value below 1
    return np.minimum((levels + u) / NUM_LEVELS, np.nextafter(np.float32(1), 0)).astype(
        np.float32)


def _unit_pixels(x, name="x"):
    check_images(x, name=name)                     # shape, finite; then float64, unrounded
    arr = np.asarray(x, dtype=np.float64)
    if arr.min() < 0.0 or arr.max() > 1.0:
        raise DataError(f"{name} must hold dequantised pixels in [0, 1]; got values in "
                        f"[{arr.min():g}, {arr.max():g}].")
    return arr


def _alpha(alpha):
    return check_finite_float(alpha, "alpha", above=0.0, below=0.5)


def logit_transform(x, *, alpha=LOGIT_ALPHA):
    """Eq. (6.14): y = logit(alpha + (1 - 2 alpha) x) for pixels x in [0, 1]: float32 (n, D)."""
    alpha = _alpha(alpha)
    s = alpha + (1 - 2 * alpha) * _unit_pixels(x)
    return (np.log(s) - np.log1p(-s)).astype(np.float32)


def inverse_logit_transform(y, *, alpha=LOGIT_ALPHA):
    """x = (sigmoid(y) - alpha) / (1 - 2 alpha), clipped to [0, 1]: the pixels of samples
    drawn in logit space."""
    alpha = _alpha(alpha)
    y = check_images(y, name="y").astype(np.float64)
    x = (1.0 / (1.0 + np.exp(-y)) - alpha) / (1 - 2 * alpha)
    return np.clip(x, 0.0, 1.0).astype(np.float32)


def logit_log_det(x, *, alpha=LOGIT_ALPHA):
    """Eq. (6.14): log |dy/dx| of the logit transform at pixels x, summed over the D
    dimensions: float64 (n,)."""
    alpha = _alpha(alpha)
    s = alpha + (1 - 2 * alpha) * _unit_pixels(x)
    return (math.log1p(-2 * alpha) - np.log(s) - np.log1p(-s)).sum(axis=1)


def convert_log_likelihood(values, *, source, target, dim, x=None, alpha=LOGIT_ALPHA):
    """Converts per-example log-likelihoods between the conventions of ``CONVENTIONS``.

    Args:
        values: log-likelihoods (nats) or bits per dimension, shape (n,) or scalar.
        source, target: conventions (see the module docstring).
        dim: D, the number of pixels.
        x: the dequantised pixels (n, D) in [0, 1] the values belong to; needed to and from
            ``"logit"``, whose Jacobian depends on the image (Eq. 6.14).
        alpha: the logit transform's alpha.

    Returns:
        float64 array of the values' shape.
    """
    for name, value in (("source", source), ("target", target)):
        if not isinstance(value, str) or value not in CONVENTIONS:
            raise ValueError(f"{name} must be one of {CONVENTIONS}; got {describe(value)}.")
    dim = check_positive_int(dim, "dim")
    values = check_finite_array(values, "values", dtype=np.float64)
    needs_x = "logit" in (source, target) and source != target
    if needs_x:
        if x is None:
            raise ValueError(f"converting from {source!r} to {target!r} needs the pixels x: "
                             "the logit transform's Jacobian depends on the image.")
        shape = np.shape(x)
        if len(shape) != 2 or shape[1] != dim or values.shape not in ((), (shape[0],)):
            raise ValueError(f"x must be (n, {dim}) with one row per value; got x of shape "
                             f"{shape} for values of shape {values.shape}.")
        log_det = logit_log_det(x, alpha=alpha)
    elif x is not None:
        raise ValueError(f"x is used only to convert to or from 'logit'; got it for "
                         f"{source!r} -> {target!r}.")
    if source == target:
        return values
    log_levels = dim * math.log(NUM_LEVELS)
    to_unit = {"unit": lambda v: v, "logit": lambda v: v + log_det,
               "bytes": lambda v: v + log_levels,
               "bits_per_dim": lambda v: -(v - math.log2(NUM_LEVELS)) * dim * math.log(2)}
    from_unit = {"unit": lambda v: v, "logit": lambda v: v - log_det,
                 "bytes": lambda v: v - log_levels,
                 "bits_per_dim": lambda v: -v / (dim * math.log(2)) + math.log2(NUM_LEVELS)}
    return from_unit[target](to_unit[source](values))
