"""Sample scores against oracles that share no code with them.

- Parzen windows against a direct float64 log-sum-exp over every (point, centre) pair, and
  against the exact density when the window is itself the data's Gaussian.
- The Fréchet distance against its closed form for diagonal Gaussians and against
  scipy.linalg.sqrtm for full covariances.
- KID is unbiased: over many draws from one distribution its mean is 0 within its error
  bar, and it grows with a shift.
- The mode counter on hand-placed samples, and on the toy mixtures' own samples.
"""

import math

import numpy as np
import pytest
from scipy import linalg
from scipy.special import logsumexp

from course_lib.checks import DataError
from course_lib.data import toy
from course_lib.evaluation import (
    choose_parzen_sigma,
    frechet_distance,
    kernel_distance,
    mode_coverage,
    parzen_log_likelihood,
    parzen_log_likelihoods,
)


def test_parzen_matches_a_direct_log_sum_exp():
    rng = np.random.default_rng(0)
    samples = rng.random((300, 7)).astype("float32")
    x = rng.random((23, 7)).astype("float32")
    sigma = 0.3
    squared = ((x[:, None, :].astype(np.float64) - samples[None].astype(np.float64)) ** 2).sum(-1)
    expected = (logsumexp(-squared / (2 * sigma**2), axis=1) - math.log(300)
                - 3.5 * math.log(2 * math.pi * sigma**2))
    got = parzen_log_likelihoods(samples, x, sigma, batch_size=5, verbose=0)
    np.testing.assert_allclose(got, expected, rtol=1e-10, atol=1e-9)
    summary = parzen_log_likelihood(samples, x, sigma, verbose=0)
    assert summary.mean == pytest.approx(expected.mean(), rel=1e-12)
    assert summary.standard_error == pytest.approx(expected.std(ddof=1) / math.sqrt(23))


def test_parzen_with_one_centre_is_the_gaussian_density():
    x = np.array([[0.5, -1.0], [2.0, 0.0]], "float32")
    got = parzen_log_likelihoods(np.zeros((1, 2), "float32"), x, 1.5, verbose=0)
    expected = -0.5 * (x.astype(np.float64) ** 2).sum(1) / 1.5**2 - math.log(2 * math.pi * 1.5**2)
    np.testing.assert_allclose(got, expected, rtol=1e-12)


def test_choose_parzen_sigma_picks_the_validation_maximum():
    rng = np.random.default_rng(1)
    samples = rng.normal(size=(2000, 2)).astype("float32")
    validation = rng.normal(size=(500, 2)).astype("float32")
    best, scores = choose_parzen_sigma(samples, validation, [0.01, 0.3, 5.0], verbose=0)
    assert best == 0.3 and scores[0.3] == max(scores.values())
    with pytest.raises(ValueError, match="positive widths"):
        choose_parzen_sigma(samples, validation, [0.1, -1.0])


def test_frechet_distance_matches_its_closed_forms():
    rng = np.random.default_rng(2)
    a = rng.normal(size=(4000, 3)) * [1.0, 2.0, 0.5] + [1.0, 0.0, 0.0]
    b = rng.normal(size=(3000, 3)) @ rng.normal(size=(3, 3)) + [0.0, 1.0, -1.0]
    mu_a, mu_b = a.mean(0), b.mean(0)
    cov_a, cov_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    expected = (((mu_a - mu_b) ** 2).sum() + np.trace(cov_a) + np.trace(cov_b)
                - 2 * np.trace(linalg.sqrtm(cov_a @ cov_b).real))
    assert frechet_distance(a.astype("float32"), b.astype("float32")) == pytest.approx(
        expected, rel=1e-4)
    # Diagonal covariances: sum of (mu_a - mu_b)^2 + (sd_a - sd_b)^2 per coordinate.
    d = rng.normal(size=(5000, 2)) * [3.0, 1.0]
    e = rng.normal(size=(5000, 2)) * [1.0, 1.0] + [0.0, 2.0]
    sd_d, sd_e = d.std(0, ddof=1), e.std(0, ddof=1)
    diagonal = (((d.mean(0) - e.mean(0)) ** 2).sum() + ((sd_d - sd_e) ** 2).sum())
    # the sample covariances are nearly diagonal: the closed form holds to their correlation
    assert frechet_distance(d, e) == pytest.approx(diagonal, abs=0.05)
    assert frechet_distance(a, a) == pytest.approx(0.0, abs=1e-6)


def test_kernel_distance_is_unbiased_and_sees_a_shift():
    rng = np.random.default_rng(3)
    a = rng.normal(size=(2000, 4)).astype("float32")
    b = rng.normal(size=(2000, 4)).astype("float32")
    same = kernel_distance(a, b, num_subsets=50, subset_size=200, seed=0)
    assert abs(same.mean) < 4 * same.standard_error
    shifted = kernel_distance(a, b + 0.5, num_subsets=50, subset_size=200, seed=0)
    assert shifted.mean > 10 * shifted.standard_error > 0


def test_kernel_distance_of_two_whole_sets_is_their_unbiased_mmd2():
    """Sets of the same size, no larger than a subset: every subset is both whole sets, so
    KID is the unbiased MMD^2 of the sets themselves (a pair-by-pair sum here), error 0."""
    rng = np.random.default_rng(4)
    a = rng.normal(size=(12, 3)).astype("float32").astype(np.float64)   # what it reads
    b = rng.normal(0.5, 1.0, size=(12, 3)).astype("float32").astype(np.float64)

    def k(x, y):
        return (x @ y / 3 + 1.0) ** 3

    n = len(a)
    within = sum(k(x[i], x[j]) for x in (a, b) for i in range(n) for j in range(n) if i != j)
    across = sum(k(a[i], b[j]) for i in range(n) for j in range(n))
    expected = within / (n * (n - 1)) - 2.0 * across / n**2
    result = kernel_distance(a, b, num_subsets=20, subset_size=n, seed=0)
    assert result.mean == pytest.approx(expected, rel=1e-10) and result.standard_error == 0.0
    assert abs(expected) > 0.1                       # a shifted set: far from 0


def test_mode_coverage_on_hand_placed_samples():
    centres = np.array([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]], "float32")
    samples = np.array([[0.1, 0.0], [0.0, -0.2], [10.2, 0.1], [5.0, 5.0], [0.0, 10.29]],
                       "float32")
    result = mode_coverage(samples, centres, std=0.1, threshold=3.0)
    assert result.counts == (2, 1, 1)            # 0.29 <= 0.3 counts; (5, 5) is far off
    assert result.modes_captured == 3 and result.high_quality_fraction == pytest.approx(0.8)
    strict = mode_coverage(samples, centres, std=0.1, threshold=3.0, min_count=2)
    assert strict.modes_captured == 1
    assert mode_coverage(samples[:2], centres, std=0.1).modes_captured == 1


@pytest.mark.parametrize("name", ["8gaussians", "gmm_grid", "ring8", "grid25"])
def test_the_toy_mixtures_own_samples_cover_every_mode(name):
    centres, std = toy.toy_2d_modes(name)
    result = mode_coverage(toy.toy_2d(name, 5000, seed=0), centres, std)
    assert result.modes_captured == len(centres)
    assert result.high_quality_fraction > 0.98      # 3 sd in 2-D holds 98.9%
    one_mode = np.repeat(centres[:1], 100, axis=0)
    assert mode_coverage(one_mode, centres, std).modes_captured == 1


def test_bad_inputs_are_refused_with_the_reason():
    x = np.zeros((4, 3), "float32")
    with pytest.raises(DataError, match="columns"):
        parzen_log_likelihoods(x, np.zeros((2, 5), "float32"), 1.0)
    with pytest.raises(ValueError, match="sigma"):
        parzen_log_likelihoods(x, x, 0.0)
    with pytest.raises(DataError, match="finite"):
        frechet_distance(x, np.full((4, 3), np.nan))
    with pytest.raises(ValueError, match="at least two rows"):
        frechet_distance(x[:1], x)
    with pytest.raises(ValueError, match="std"):
        mode_coverage(x[:, :2], x[:, :2], std=-1.0)
    with pytest.raises(ValueError, match="mixtures"):
        toy.toy_2d_modes("moons")
