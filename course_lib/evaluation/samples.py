"""Judging a generator by its samples, where no likelihood is at hand (Chapter 5 on).

    (5.5) Parzen window (Goodfellow et al. 2014; Breuleux et al. 2011):
          log p(x) ~ log (1/N) sum_i N(x; s_i, sigma^2 I)
                   = logsumexp_i(-||x - s_i||^2 / (2 sigma^2)) - log N - (d/2) log(2 pi sigma^2)
    (5.6) Fréchet distance of two Gaussians fitted to features (Heusel et al. 2017):
          ||mu_a - mu_b||^2 + Tr(S_a + S_b - 2 (S_a S_b)^{1/2})
    (5.7) kernel distance (KID, Binkowski et al. 2018): the unbiased MMD^2 with the kernel
          k(x, y) = (x . y / d + 1)^3, averaged over random subsets
    (5.8) mode coverage on a known mixture (Metz et al. 2017; Srivastava et al. 2017): a
          sample is high quality within ``threshold`` standard deviations of its nearest
          mode; a mode is captured when at least ``min_count`` high-quality samples reach it

Every function takes NumPy arrays and returns Python floats (or a small dataclass); none
needs the model, so Chapters 5-8 score every generator, and the earlier chapters' samples,
the same way. The Parzen sums run as compiled batches (float64 log-sum-exp over the
samples) with a progress bar; the feature statistics in float64 NumPy.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import tensorflow as tf

from course_lib.checks import (
    check_finite_array,
    check_finite_float,
    check_images,
    check_positive_int,
    check_seed,
)
from course_lib.sampling import LoopProgress, check_verbose


@dataclass(frozen=True)
class MeanWithError:
    """A mean over examples and its standard error (sd / sqrt(n))."""

    mean: float
    standard_error: float

    def __str__(self):
        return f"{self.mean:.2f} ± {self.standard_error:.2f}"

    @classmethod
    def of(cls, values):
        """The mean of ``values`` and its standard error (NaN for a single value)."""
        values = np.asarray(values, dtype=np.float64)
        error = values.std(ddof=1) / math.sqrt(len(values)) if len(values) > 1 else math.nan
        return cls(float(values.mean()), float(error))


def _same_width(a, b, name_a, name_b):
    a = check_images(a, name=name_a)
    b = check_images(b, expected_dim=a.shape[1], name=name_b)
    return a, b


def parzen_log_likelihoods(samples, x, sigma, *, batch_size=100, verbose="auto"):
    """Eq. (5.5): log p(x) under the Parzen window of width ``sigma`` centred on ``samples``,
    one value per row of ``x`` (float64 NumPy).

    Args:
        samples: (N, d) generated samples, the window centres.
        x: (n, d) points to score (validation images to choose sigma, test images to report).
        sigma: the window's standard deviation, > 0.
        batch_size: rows of ``x`` per compiled call (memory ~ batch_size x N floats).
        verbose: a progress bar over the batches, as in ``keras.Model.fit``.
    """
    samples, x = _same_width(samples, x, "samples", "x")
    sigma = check_finite_float(sigma, "sigma", above=0.0)
    batch_size = check_positive_int(batch_size, "batch_size")
    verbose = check_verbose(verbose)
    n_samples, d = samples.shape
    centres = tf.constant(samples, tf.float64)
    centre_norms = tf.reduce_sum(tf.square(centres), axis=1)
    constant = -math.log(n_samples) - 0.5 * d * math.log(2 * math.pi * sigma**2)

    @tf.function(input_signature=[tf.TensorSpec((None, d), tf.float64)])
    def batch_log_p(rows):
        # ||x - s||^2 = ||x||^2 - 2 x.s + ||s||^2, in float64 (no cancellation to speak of).
        squared = (tf.reduce_sum(tf.square(rows), axis=1, keepdims=True)
                   - 2.0 * tf.matmul(rows, centres, transpose_b=True) + centre_norms)
        return tf.reduce_logsumexp(-tf.maximum(squared, 0.0) / (2 * sigma**2), axis=1)

    starts = range(0, len(x), batch_size)
    progress = LoopProgress(len(starts), verbose, "batch")
    out = []
    for i, start in enumerate(starts):
        out.append(batch_log_p(tf.constant(x[start:start + batch_size], tf.float64)).numpy())
        progress.update(i + 1)
    return np.concatenate(out) + constant


def parzen_log_likelihood(samples, x, sigma, **kwargs):
    """The mean of :func:`parzen_log_likelihoods` over ``x`` with its standard error, as
    Goodfellow et al. (2014) report it."""
    return MeanWithError.of(parzen_log_likelihoods(samples, x, sigma, **kwargs))


def choose_parzen_sigma(samples, x_validation, sigmas, **kwargs):
    """The ``sigma`` among ``sigmas`` with the highest mean Parzen log-likelihood of the
    validation rows, and every candidate's mean: ``(best sigma, {sigma: mean})``."""
    sigmas = check_finite_array(sigmas, "sigmas", dtype="float64").ravel()
    if sigmas.size == 0 or np.any(sigmas <= 0):
        raise ValueError(f"sigmas must be a non-empty list of positive widths; got {sigmas}.")
    scores = {float(s): parzen_log_likelihood(samples, x_validation, float(s), **kwargs).mean
              for s in sigmas}
    return max(scores, key=scores.get), scores


def _moments(features, name):
    f = check_images(features, name=name).astype(np.float64)
    if len(f) < 2:
        raise ValueError(f"{name} needs at least two rows for a covariance; got {len(f)}.")
    return f.mean(axis=0), np.cov(f, rowvar=False)


def frechet_distance(features_a, features_b):
    """Eq. (5.6) between Gaussians fitted to two sets of feature rows (float64).

    Tr((S_a S_b)^{1/2}) is computed as the sum of square roots of the eigenvalues of the
    symmetric S_a^{1/2} S_b S_a^{1/2}, which has the same eigenvalues and, unlike S_a S_b,
    is symmetric, so no complex square roots arise from rounding."""
    features_a, features_b = _same_width(features_a, features_b, "features_a", "features_b")
    mu_a, cov_a = _moments(features_a, "features_a")
    mu_b, cov_b = _moments(features_b, "features_b")
    values, vectors = np.linalg.eigh(np.atleast_2d(cov_a))
    root_a = (vectors * np.sqrt(np.clip(values, 0.0, None))) @ vectors.T
    middle = root_a @ np.atleast_2d(cov_b) @ root_a
    trace_root = np.sqrt(np.clip(np.linalg.eigvalsh((middle + middle.T) / 2), 0.0, None)).sum()
    return float(np.sum((mu_a - mu_b) ** 2) + np.trace(np.atleast_2d(cov_a))
                 + np.trace(np.atleast_2d(cov_b)) - 2.0 * trace_root)


def _unbiased_mmd2(a, b):
    d = a.shape[1]
    k_aa = (a @ a.T / d + 1.0) ** 3
    k_bb = (b @ b.T / d + 1.0) ** 3
    k_ab = (a @ b.T / d + 1.0) ** 3
    m, n = len(a), len(b)
    return ((k_aa.sum() - np.trace(k_aa)) / (m * (m - 1))
            + (k_bb.sum() - np.trace(k_bb)) / (n * (n - 1)) - 2.0 * k_ab.mean())


def kernel_distance(features_a, features_b, *, num_subsets=100, subset_size=1000, seed=0):
    """Eq. (5.7): KID, the unbiased MMD^2 with a cubic polynomial kernel, averaged over
    ``num_subsets`` random subsets of ``subset_size`` rows of each set (fewer rows if a set
    is smaller). Returns its mean and the standard error of that mean over the subsets.
    Unbiased: its expectation is 0 when both sets come from one distribution (it can then
    be negative). Two sets of the same size, no larger than ``subset_size``, are their own
    subsets: the value is computed once (standard error 0)."""
    features_a, features_b = _same_width(features_a, features_b, "features_a", "features_b")
    num_subsets = check_positive_int(num_subsets, "num_subsets")
    subset_size = check_positive_int(subset_size, "subset_size", minimum=2)
    rng = np.random.default_rng(check_seed(seed))
    size = min(subset_size, len(features_a), len(features_b))
    if size < 2:
        raise ValueError("kernel_distance needs at least two rows in each set.")
    a64, b64 = features_a.astype(np.float64), features_b.astype(np.float64)
    if size == len(a64) == len(b64):
        # Every subset is then the whole of both sets, and the statistic does not depend
        # on the order of the rows: the subsets would all give this one value.
        value = float(_unbiased_mmd2(a64, b64))
        return MeanWithError(value, 0.0 if num_subsets > 1 else math.nan)   # as .of would
    values = np.array([
        _unbiased_mmd2(a64[rng.choice(len(a64), size, replace=False)],
                       b64[rng.choice(len(b64), size, replace=False)])
        for _ in range(num_subsets)])
    return MeanWithError.of(values)


@dataclass(frozen=True)
class ModeCoverage:
    """Eq. (5.8) on a known mixture: how many modes the samples reach and how many samples
    are good. ``counts[k]`` is the number of high-quality samples nearest to mode k."""

    modes_captured: int
    num_modes: int
    high_quality_fraction: float
    counts: tuple

    def __str__(self):
        return (f"{self.modes_captured}/{self.num_modes} modes, "
                f"{100 * self.high_quality_fraction:.1f}% high-quality samples")


def mode_coverage(samples, centers, std, *, threshold=3.0, min_count=1):
    """Eq. (5.8): assigns each sample to its nearest mode (Euclidean); it is high quality
    if it lies within ``threshold * std`` of that mode. A mode is captured when at least
    ``min_count`` high-quality samples are assigned to it.

    Args:
        samples: (n, d) generated points.
        centers: (K, d) the mixture's means.
        std: the mixture components' standard deviation (isotropic), > 0.
        threshold: in standard deviations (3 in the VEEGAN and PacGAN tables).
        min_count: high-quality samples a mode needs to count as captured.
    """
    centers = check_images(centers, name="centers")
    samples = check_images(samples, expected_dim=centers.shape[1], name="samples")
    std = check_finite_float(std, "std", above=0.0)
    threshold = check_finite_float(threshold, "threshold", above=0.0)
    min_count = check_positive_int(min_count, "min_count")
    squared = ((samples.astype(np.float64)[:, None, :]
                - centers.astype(np.float64)[None, :, :]) ** 2).sum(-1)
    nearest = squared.argmin(axis=1)
    good = np.sqrt(squared[np.arange(len(samples)), nearest]) <= threshold * std
    counts = np.bincount(nearest[good], minlength=len(centers))
    return ModeCoverage(int((counts >= min_count).sum()), len(centers), float(good.mean()),
                        tuple(int(c) for c in counts))


def nearest_neighbour_distances(images, reference, *, chunk=500):
    """(distance, index) of each row's nearest row of ``reference`` (Euclidean, float64):
    the memorisation check (a copy of a training image is at distance 0)."""
    images, reference = _same_width(images, reference, "images", "reference")
    chunk = check_positive_int(chunk, "chunk")
    reference = reference.astype(np.float64)
    norms = (reference ** 2).sum(axis=1)
    best_d, best_i = [], []
    for start in range(0, len(images), chunk):
        part = images[start:start + chunk].astype(np.float64)
        squared = (part ** 2).sum(axis=1)[:, None] - 2 * part @ reference.T + norms
        best_i.append(squared.argmin(axis=1))
        best_d.append(np.sqrt(np.maximum(squared.min(axis=1), 0.0)))
    return np.concatenate(best_d), np.concatenate(best_i)
