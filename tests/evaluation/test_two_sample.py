"""The kernel two-sample test (Eq. 7.5): its level and power by simulation, its observed
statistic against ``mmd2``, its null statistics against MMD^2 of explicitly relabelled
samples (a NumPy double loop, and every one of the 15 relabellings of a 2 + 4 pool), its
reproducibility and its refusals."""

import itertools

import numpy as np
import pytest

from course_lib.evaluation import mmd_permutation_test
from course_lib.evaluation.two_sample import _statistics
from course_lib.kernels import mmd2

BANDWIDTHS = (0.5, 1.0, 2.0)


def mmd2_by_loop(x, y, bandwidths, unbiased):
    """Eq. (7.2) or (7.3) one pair at a time, float64 (shares no code with the library)."""
    def k(a, b):
        return sum(np.exp(-np.sum((a - b) ** 2) / (2.0 * s)) for s in bandwidths)
    m, n = len(x), len(y)
    xx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j or not unbiased)
    yy = sum(k(y[i], y[j]) for i in range(n) for j in range(n) if i != j or not unbiased)
    xy = sum(k(x[i], y[j]) for i in range(m) for j in range(n))
    if unbiased:
        return xx / (m * (m - 1)) + yy / (n * (n - 1)) - 2 * xy / (m * n)
    return xx / m**2 + yy / n**2 - 2 * xy / (m * n)


def pool(m, n, d=2, seed=0, shift=0.0):
    """x ~ N(0, I), y ~ N(shift, I), float32-representable float64 values."""
    rng = np.random.default_rng(seed)
    return (rng.normal(0.0, 1.0, (m, d)).astype(np.float32).astype(np.float64),
            rng.normal(shift, 1.0, (n, d)).astype(np.float32).astype(np.float64))


@pytest.mark.parametrize("unbiased", [True, False], ids=["unbiased", "biased"])
def test_level_under_the_null_and_uniform_p_values(unbiased):
    # 300 independent tests of two samples (20 and 30 rows) of one distribution, 99
    # permutations each: an exact test rejects at level alpha = k / 100 with probability
    # exactly alpha, so the rejections are Binomial(300, alpha). Error bar: 3.5 standard
    # deviations, sqrt(300 alpha (1 - alpha)): 15 +- 13 at 0.05 and 60 +- 24 at 0.2 (a
    # correct test falls outside about once in 2,000 runs; the draws are seeded).
    # Catches relabellings of the wrong sizes (m != n here), a null computed with the other
    # estimator, a comparison against the wrong tail, and (the minimum below) a p-value
    # without the "1 +" of Eq. (7.5), which can be 0.
    rng = np.random.default_rng(1)
    p_values = np.array([
        mmd_permutation_test(rng.normal(size=(20, 2)), rng.normal(size=(30, 2)),
                             bandwidths=BANDWIDTHS, num_permutations=99, unbiased=unbiased,
                             seed=i).p_value
        for i in range(300)])
    for alpha in (0.05, 0.2):
        rejections = np.sum(p_values <= alpha)
        expected, sd = 300 * alpha, np.sqrt(300 * alpha * (1 - alpha))
        assert abs(rejections - expected) <= 3.5 * sd, (alpha, rejections)
    assert p_values.min() >= 1 / 100 and p_values.max() <= 1.0
    # roughly uniform: each fifth of [0, 1] holds 60 +- 3.5 * 6.9 of the 300 p-values
    counts = np.histogram(p_values, bins=5, range=(0.0, 1.0))[0]
    assert np.all(np.abs(counts - 60) <= 3.5 * np.sqrt(300 * 0.2 * 0.8)), counts


@pytest.mark.parametrize("unbiased", [True, False], ids=["unbiased", "biased"])
def test_clearly_different_samples_get_the_smallest_p_value(unbiased):
    x, y = pool(20, 25, shift=3.0)
    result = mmd_permutation_test(x, y, bandwidths=BANDWIDTHS, num_permutations=99,
                                  unbiased=unbiased, seed=0)
    assert result.p_value == pytest.approx(1 / 100)
    assert result.null_statistics.shape == (99,)
    assert np.all(result.null_statistics < result.statistic)
    assert "p = 0.01" in str(result)


@pytest.mark.parametrize("unbiased", [True, False], ids=["unbiased", "biased"])
def test_observed_statistic_is_mmd2(unbiased):
    x, y = pool(7, 11, d=3, seed=2, shift=0.3)
    result = mmd_permutation_test(x, y, bandwidths=BANDWIDTHS, num_permutations=20,
                                  unbiased=unbiased, seed=0)
    assert isinstance(result.statistic, float) and isinstance(result.p_value, float)
    want = float(mmd2(x, y, BANDWIDTHS, unbiased=unbiased))
    assert result.statistic == pytest.approx(want, rel=1e-10, abs=1e-12)
    assert result.statistic == pytest.approx(mmd2_by_loop(x, y, BANDWIDTHS, unbiased),
                                             rel=1e-10, abs=1e-12)
    # and the p-value is Eq. (7.5) of the null statistics it reports
    count = np.sum(result.null_statistics >= result.statistic)
    assert result.p_value == pytest.approx((1 + count) / 21)


@pytest.mark.parametrize("unbiased", [True, False], ids=["unbiased", "biased"])
def test_statistics_of_hand_made_relabellings(unbiased):
    # Each indicator column marks which pooled rows form x; its statistic must be MMD^2 of
    # that split, by the library's mmd2 and by the loop. Column 0 is the observed split.
    x, y = pool(3, 4, d=2, seed=3, shift=0.5)
    pooled = np.concatenate([x, y])
    kernel = np.array([[sum(np.exp(-np.sum((a - b) ** 2) / (2 * s)) for s in BANDWIDTHS)
                        for b in pooled] for a in pooled])
    splits = [[0, 1, 2], [3, 4, 5], [0, 4, 6], [6, 2, 5]]
    in_x = np.zeros((7, len(splits)))
    for column, rows in enumerate(splits):
        in_x[rows, column] = 1.0
    got = _statistics(kernel, in_x, unbiased)
    for column, rows in enumerate(splits):
        rest = [i for i in range(7) if i not in rows]
        want = mmd2_by_loop(pooled[rows], pooled[rest], BANDWIDTHS, unbiased)
        assert got[column] == pytest.approx(want, rel=1e-10, abs=1e-12)
        assert got[column] == pytest.approx(
            float(mmd2(pooled[rows], pooled[rest], BANDWIDTHS, unbiased=unbiased)),
            rel=1e-10, abs=1e-12)


@pytest.mark.parametrize("unbiased", [True, False], ids=["unbiased", "biased"])
def test_null_statistics_are_uniform_over_all_relabellings(unbiased):
    # A pool of 2 + 4 rows has C(6, 2) = 15 relabellings; every null statistic must be the
    # MMD^2 (by the loop) of one of them, and each must be drawn 1/15 of the time: 3,000
    # draws give 200 +- 3.5 * 13.7 each (Binomial(3000, 1/15), 3.5 standard deviations).
    x, y = pool(2, 4, d=2, seed=4, shift=0.7)
    pooled = np.concatenate([x, y])
    table = np.array([mmd2_by_loop(pooled[list(rows)],
                                   pooled[[i for i in range(6) if i not in rows]],
                                   BANDWIDTHS, unbiased)
                      for rows in itertools.combinations(range(6), 2)])
    assert np.min(np.diff(np.sort(table))) > 1e-6           # the 15 values tell splits apart
    result = mmd_permutation_test(x, y, bandwidths=BANDWIDTHS, num_permutations=3000,
                                  unbiased=unbiased, seed=5)
    distance = np.abs(result.null_statistics[:, None] - table[None])
    assert distance.min(1).max() < 1e-9
    counts = np.bincount(distance.argmin(1), minlength=15)
    sd = np.sqrt(3000 * (1 / 15) * (14 / 15))
    assert np.all(np.abs(counts - 200) <= 3.5 * sd), counts
    # and the p-value is the rank of the observed split among them, up to sampling
    exact_p = np.mean(table >= result.statistic - 1e-12)
    assert abs(result.p_value - exact_p) < 0.03


def test_same_seed_same_result_other_seed_other_null():
    x, y = pool(10, 12, seed=6)
    first, again, other = (mmd_permutation_test(x, y, num_permutations=50, seed=seed)
                           for seed in (3, 3, 4))
    assert first.p_value == again.p_value
    np.testing.assert_array_equal(first.null_statistics, again.null_statistics)
    assert first.statistic == other.statistic
    assert not np.array_equal(first.null_statistics, other.null_statistics)


@pytest.mark.parametrize("call, error, message", [
    (lambda x, y: mmd_permutation_test(x[:1], y), ValueError, "at least two rows in x"),
    (lambda x, y: mmd_permutation_test(x, y[:1]), ValueError, "at least two rows in y"),
    (lambda x, y: mmd_permutation_test(x, y[:, :2]), ValueError, r"y must.*\(n, 3\)"),
    (lambda x, y: mmd_permutation_test(x[0], y), ValueError, "x must be a 2-D"),
    (lambda x, y: mmd_permutation_test(x, y, num_permutations=0), ValueError,
     "num_permutations"),
    (lambda x, y: mmd_permutation_test(x, y, num_permutations=2.5), TypeError,
     "num_permutations"),
    (lambda x, y: mmd_permutation_test(x, y, unbiased="yes"), TypeError, "unbiased"),
    (lambda x, y: mmd_permutation_test(x, y, seed=-1), ValueError, "seed"),
    (lambda x, y: mmd_permutation_test(x, y, bandwidths=[]), ValueError, "bandwidths"),
    (lambda x, y: mmd_permutation_test(x, y, bandwidths=[1.0, -2.0]), ValueError,
     "bandwidths"),
])
def test_bad_arguments_are_refused(call, error, message):
    x, y = pool(5, 6, d=3)
    with pytest.raises(error, match=message):
        call(x, y)
