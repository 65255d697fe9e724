"""Comparing two models on the same examples, with the error bar the chapters' checks use.

:func:`paired_difference` is the mean of per-example differences ``a - b`` and
``num_sigma`` standard errors of that mean. Pairing (the same test images for both models)
removes the images' own spread from the error bar, so a gain of a fraction of a nat between
two log-likelihoods measured on 10,000 images is already resolved.
"""

from __future__ import annotations

import math

from course_lib.checks import check_finite_array, check_finite_float


def paired_difference(a, b, *, num_sigma=3.0):
    """Mean of ``a - b`` over paired examples and ``num_sigma`` standard errors of it.

    Args:
        a, b: (n,) per-example values of two models on the same n >= 2 examples (for
            example log-likelihoods or bounds, nats).
        num_sigma: width of the error bar in standard errors (3 in the chapters' checks).

    Returns:
        ``(mean, half_width)``, floats: ``mean(a - b)`` and
        ``num_sigma * std(a - b, ddof=1) / sqrt(n)``.
    """
    a = check_finite_array(a, "a", dtype="float64")
    b = check_finite_array(b, "b", shape=a.shape, dtype="float64")
    num_sigma = check_finite_float(num_sigma, "num_sigma", above=0.0)
    if a.ndim != 1 or len(a) < 2:
        raise ValueError(f"a and b must be 1-D with at least 2 paired examples; got shape "
                         f"{a.shape}.")
    d = a - b
    return float(d.mean()), float(num_sigma * d.std(ddof=1) / math.sqrt(len(d)))
