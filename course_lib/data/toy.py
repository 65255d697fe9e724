"""Synthetic data sets with known optima, for checking models where the answer is known.

* ``bars_and_stripes``: every n x n bars-and-stripes image; the uniform distribution over
  them has the best average log-likelihood ``bars_and_stripes_optimum(n) = -log(2 * 2**n - 2)``
  (-log 30 = -3.401 for 4 x 4).
* ``laplace_sources_2d``: two unit-variance Laplace sources, mixed and whitened; the best
  average log-likelihood is ``LAPLACE_2D_OPTIMUM_LL`` = -2.693 nats.
* ``toy_2d``: 2-D teaching densities (moons, 8 gaussians, rings, spirals, checkerboard, a
  grid of Gaussians) for flows and GANs, and the two mixtures of the mode-counting protocol
  of PacGAN (Lin et al. 2018): ``"ring8"``, 8 Gaussians of std 0.01 on the unit circle, and
  ``"grid25"``, 25 of std 0.05 centred on {-4, -2, 0, 2, 4}^2.

The two moons are written here rather than taken from ``sklearn.datasets.make_moons``, so
that every toy set draws from one ``np.random.default_rng(seed)`` and its samples do not
change with scikit-learn's version: the points are i.i.d. (a random half-circle and angle
per point, not sklearn's evenly spaced, sorted grid). The geometry is sklearn's, the half
circles (cos t, sin t) and (1 - cos t, 1/2 - sin t) for t in [0, pi];
``tests/data/test_toy.py`` checks it against ``make_moons(noise=0)``.

Used by ``01_rbm.ipynb`` (bars and stripes, Laplace sources) and the later chapters.
"""

from __future__ import annotations

import math

import numpy as np

from course_lib.checks import check_bool, check_positive_int, check_seed, describe

TOY_2D_NAMES = ("moons", "8gaussians", "rings", "spirals", "checkerboard", "gmm_grid", "ring8",
                "grid25")
MAX_BARS_AND_STRIPES_SIDE = 16  # 131,070 images of 256 pixels
LAPLACE_2D_OPTIMUM_LL = -2 * (1 + math.log(math.sqrt(2)))


def bars_and_stripes(n=4) -> np.ndarray:
    """All distinct n x n bars-and-stripes images, flattened in lexicographic order.

    Each image switches on a set of full rows or a set of full columns; all-off and all-on
    are both kinds and appear once, so there are ``2 * 2**n - 2``.

    Args:
        n: side length, an int >= 1.

    Returns:
        float32 array (2 * 2**n - 2, n * n) of unique rows.

    Raises:
        ValueError: if ``n`` is not an int in [1, ``MAX_BARS_AND_STRIPES_SIDE``].
    """
    n = check_positive_int(n, "n")
    if n > MAX_BARS_AND_STRIPES_SIDE:
        raise ValueError(f"n must be at most {MAX_BARS_AND_STRIPES_SIDE} (2 * 2**n - 2 images "
                         f"of n * n pixels); got {n}.")
    on = (np.arange(2**n)[:, None] >> np.arange(n)[None, :]) & 1  # (2**n, n) subsets
    rows = np.repeat(on[:, :, None], n, axis=2)  # row i constant
    cols = rows.transpose(0, 2, 1)  # column j constant
    patterns = np.concatenate([rows, cols]).reshape(-1, n * n)
    return np.unique(patterns, axis=0).astype(np.float32)


def bars_and_stripes_optimum(n=4) -> float:
    """Best average log-likelihood on `bars_and_stripes(n)`, that of the uniform model.

    Args:
        n: side length, an int >= 1.

    Returns:
        ``-log(2 * 2**n - 2)`` in nats (-3.4012 for n = 4).

    Raises:
        ValueError: if ``n`` is not an int >= 1.
    """
    n = check_positive_int(n, "n")
    return -math.log(2 * 2**n - 2)


def laplace_sources_2d(n, *, seed, whiten=True) -> np.ndarray:
    """Two unit-variance Laplace sources mixed by a fixed random 2x2 matrix (the ICA toy).

    ``np.random.default_rng(seed)`` first draws the mixing ``R(a) diag(s) R(b)`` (rotations
    by angles in [0, pi), scales in [0.5, 2]), then the sources (scale 1/sqrt(2)). With
    ``whiten`` the samples are centred and ZCA-whitened with their own covariance (divided
    by n, in float64): their covariance is the identity and they are (nearly) a rotation
    of the sources, so the best average log-likelihood is `LAPLACE_2D_OPTIMUM_LL`
    (= -2 (1 + log sqrt(2)) = -2.6931...), the negative differential entropy of the sources.

    Args:
        n: number of samples, an int >= 2.
        seed: seed for ``np.random.default_rng``.
        whiten: ZCA-whiten the mixed samples.

    Returns:
        float32 array (n, 2).

    Raises:
        ValueError: if ``n`` is not an int >= 2, or ``seed`` not an int >= 0.
    """
    n = check_positive_int(n, "n", minimum=2)
    whiten = check_bool(whiten, "whiten")
    rng = np.random.default_rng(check_seed(seed))
    a, b = rng.uniform(0, np.pi, size=2)
    rot = lambda t: np.array([[np.cos(t), -np.sin(t)], [np.sin(t), np.cos(t)]])  # noqa: E731
    mixing = rot(a) @ np.diag(rng.uniform(0.5, 2.0, size=2)) @ rot(b)
    x = rng.laplace(0.0, 1 / np.sqrt(2), size=(n, 2)) @ mixing.T
    if whiten:
        x = x - x.mean(axis=0)
        eigval, eigvec = np.linalg.eigh(x.T @ x / n)
        x = x @ (eigvec @ np.diag(eigval**-0.5) @ eigvec.T)
    return x.astype(np.float32)


MIXTURE_NAMES = ("8gaussians", "gmm_grid", "ring8", "grid25")


def _mixture(name):
    """(centres (K, 2) float64, std) of a mixture in ``MIXTURE_NAMES``."""
    if name in ("8gaussians", "ring8"):
        angle = np.arange(8) * (np.pi / 4)         # 2 pi k / 8: eight distinct modes
        radius, std = (2.0, 0.2) if name == "8gaussians" else (1.0, 0.01)
        return radius * np.stack([np.cos(angle), np.sin(angle)], axis=1), std
    step, std = (1, 0.05) if name == "gmm_grid" else (2, 0.05)
    axis = step * np.arange(-2, 3)
    return np.stack(np.meshgrid(axis, axis), -1).reshape(-1, 2).astype(np.float64), std


def toy_2d_modes(name):
    """The modes of a mixture in :func:`toy_2d`: ``(centres (K, 2), component std)``, for
    counting the modes a generator captures (``evaluation.samples.mode_coverage``):
    ``"8gaussians"`` (8 on the circle of radius 2, std 0.2), ``"gmm_grid"`` (25 on the
    grid -2..2, std 0.05), and PacGAN's ``"ring8"`` (8 on the unit circle, std 0.01) and
    ``"grid25"`` (25 on {-4, -2, 0, 2, 4}^2, std 0.05)."""
    if not isinstance(name, str) or name not in MIXTURE_NAMES:
        raise ValueError(f"name must be one of the mixtures {MIXTURE_NAMES}; got "
                         f"{describe(name)}.")
    centres, std = _mixture(name)
    return centres.astype(np.float32), std


def toy_2d(name, n, *, seed) -> np.ndarray:
    """Samples from a 2-D toy density for flows and density-estimation demos.

    I.i.d. samples of: ``"moons"`` (two half-circles, noise 0.05), ``"8gaussians"`` (std 0.2,
    centres on the circle of radius 2), ``"rings"`` (radii 0.5, 1, 1.5, 2, uniform along arc
    length, noise 0.05), ``"spirals"`` (two arms out to radius 3, noise 0.1),
    ``"checkerboard"`` (uniform on the 8 dark cells of a 4x4 board on [-2, 2]^2),
    ``"gmm_grid"`` (5x5 Gaussians, std 0.05, centres -2..2), ``"ring8"`` and ``"grid25"``
    (PacGAN's mode-counting mixtures, see :func:`toy_2d_modes`). Mixtures pick each
    point's component uniformly.

    Args:
        name: one of `TOY_2D_NAMES`.
        n: number of samples, an int >= 1.
        seed: seed for ``np.random.default_rng``.

    Returns:
        float32 array (n, 2).

    Raises:
        ValueError: if ``name`` is unknown, ``n`` is not an int >= 1 or ``seed`` not an
            int >= 0.
    """
    if not isinstance(name, str) or name not in TOY_2D_NAMES:
        raise ValueError(f"name must be one of {TOY_2D_NAMES}; got {describe(name)}.")
    n = check_positive_int(n, "n")
    rng = np.random.default_rng(check_seed(seed))
    if name == "moons":
        t = rng.uniform(0, np.pi, n)
        lower = rng.integers(0, 2, n).astype(bool)
        x = np.stack([np.cos(t), np.sin(t)], axis=1)
        x[lower] = np.stack([1 - np.cos(t[lower]), 0.5 - np.sin(t[lower])], axis=1)
        x += rng.normal(0, 0.05, (n, 2))
    elif name == "rings":
        radii = np.array([0.5, 1.0, 1.5, 2.0])
        r = radii[rng.choice(4, n, p=radii / radii.sum())]
        t = rng.uniform(0, 2 * np.pi, n)
        x = r[:, None] * np.stack([np.cos(t), np.sin(t)], axis=1) + rng.normal(0, 0.05, (n, 2))
    elif name == "spirals":
        t = np.sqrt(rng.uniform(0, 1, n)) * 3 * np.pi
        arm = np.where(rng.integers(0, 2, n) == 1, 1.0, -1.0)
        x = (arm * t / np.pi)[:, None] * np.stack([np.cos(t), np.sin(t)], axis=1)
        x += rng.normal(0, 0.1, (n, 2))
    elif name == "checkerboard":
        cells = np.array([(i, j) for i in range(4) for j in range(4) if (i + j) % 2 == 0])
        x = cells[rng.integers(0, len(cells), n)] - 2 + rng.uniform(0, 1, (n, 2))
    else:  # a mixture of Gaussians
        centres, std = _mixture(name)
        x = centres[rng.integers(0, len(centres), n)] + rng.normal(0, std, (n, 2))
    return x.astype(np.float32)
