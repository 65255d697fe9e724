"""course_lib.kernels against oracles that share no code with it: the kernel matrix and both
MMD^2 estimators (Eqs. 7.1-7.3) against a NumPy double loop over pairs in float64; the
hand-written gradient (Eq. 7.4) against autodiff of a broadcasting re-implementation and
against central differences of the loop; the power trick against one exponential per
bandwidth; the estimators' means against the closed form for two Gaussians; and the
refusals of bad inputs."""

import numpy as np
import pytest
import tensorflow as tf

from course_lib.kernels import (
    GMMN_BANDWIDTHS,
    _kernel_of_distances,
    check_bandwidths,
    gaussian_kernel_matrix,
    mmd2,
    squared_distances,
)

# Bandwidths that are not integer fractions of the widest (one exponential each), a set
# where some are (1.0 = 4.0 / 4 takes the power trick, 3.0 does not), and the GMMN's six
# (all powers of one exponential).
BANDWIDTH_SETS = {"own-exponentials": (0.7, 2.0, 3.1), "mixed": (1.0, 3.0, 4.0),
                  "gmmn": GMMN_BANDWIDTHS}


# ----------------------------------------------------------------------------- oracles
def kernel_by_loop(x, y, bandwidths):
    """k(x_i, y_j) = sum_s exp(-||x_i - y_j||^2 / (2 s)), one pair at a time, float64."""
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    k = np.zeros((len(x), len(y)))
    for i in range(len(x)):
        for j in range(len(y)):
            squared = np.sum((x[i] - y[j]) ** 2)
            k[i, j] = sum(np.exp(-squared / (2.0 * s)) for s in bandwidths)
    return k


def mmd2_by_loop(x, y, bandwidths, unbiased):
    """Eq. (7.2) or (7.3) written as the sums over pairs they are, float64."""
    m, n = len(x), len(y)
    k_xx, k_yy = kernel_by_loop(x, x, bandwidths), kernel_by_loop(y, y, bandwidths)
    k_xy = kernel_by_loop(x, y, bandwidths)
    if unbiased:
        xx = sum(k_xx[i, j] for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
        yy = sum(k_yy[i, j] for i in range(n) for j in range(n) if i != j) / (n * (n - 1))
    else:
        xx = sum(k_xx[i, j] for i in range(m) for j in range(m)) / m**2
        yy = sum(k_yy[i, j] for i in range(n) for j in range(n)) / n**2
    return xx + yy - 2.0 * sum(k_xy[i, j] for i in range(m) for j in range(n)) / (m * n)


def mmd2_by_broadcasting(x, y, bandwidths, unbiased):
    """The same estimator in plain tf ops (differences by broadcasting, the i = j terms
    masked out), for tf.GradientTape to differentiate on its own."""
    def kernel_sum(a, b, skip_diagonal):
        squared = tf.reduce_sum(tf.square(a[:, None, :] - b[None, :, :]), axis=-1)
        k = tf.add_n([tf.exp(-squared / (2.0 * s)) for s in bandwidths])
        if skip_diagonal:
            k *= 1.0 - tf.eye(tf.shape(a)[0], dtype=a.dtype)
        return tf.reduce_sum(k)
    m, n = float(x.shape[0]), float(y.shape[0])
    c_xx, c_yy = (1 / (m * (m - 1)), 1 / (n * (n - 1))) if unbiased else (1 / m**2, 1 / n**2)
    return (c_xx * kernel_sum(x, x, unbiased) + c_yy * kernel_sum(y, y, unbiased)
            - 2.0 / (m * n) * kernel_sum(x, y, False))


def samples(m=5, n=7, d=3, seed=0, dtype="float64"):
    """x ~ N(0, I), y ~ N(0.5, 1.5^2 I): unequal sizes, distances of a few units."""
    rng = np.random.default_rng(seed)
    return (rng.normal(0.0, 1.0, (m, d)).astype(dtype),
            rng.normal(0.5, 1.5, (n, d)).astype(dtype))


def gradients(x, y, estimator, upstream=3.0):
    """d(upstream * estimator(x, y)) / dx and / dy by tf.GradientTape."""
    x, y = tf.constant(x), tf.constant(y)
    with tf.GradientTape() as tape:
        tape.watch([x, y])
        value = upstream * estimator(x, y)
    return [g.numpy() for g in tape.gradient(value, [x, y])]


# ------------------------------------------------------------- values against the loop
@pytest.mark.parametrize("bandwidths", BANDWIDTH_SETS.values(), ids=BANDWIDTH_SETS.keys())
def test_kernel_matrix_matches_the_loop(bandwidths):
    x, y = samples()
    np.testing.assert_allclose(gaussian_kernel_matrix(x, y, bandwidths).numpy(),
                               kernel_by_loop(x, y, bandwidths), rtol=1e-10, atol=1e-12)
    x32, y32 = samples(dtype="float32")
    np.testing.assert_allclose(gaussian_kernel_matrix(x32, y32, bandwidths).numpy(),
                               kernel_by_loop(x32, y32, bandwidths), rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("unbiased", [False, True], ids=["biased", "unbiased"])
@pytest.mark.parametrize("bandwidths", BANDWIDTH_SETS.values(), ids=BANDWIDTH_SETS.keys())
def test_mmd2_matches_the_loop(bandwidths, unbiased):
    # Catches a swapped normalisation (m^2 against m(m-1)), a diagonal left in the unbiased
    # sums or taken out of the biased ones, m and n swapped (m != n here), a wrong power.
    x, y = samples()
    expected = mmd2_by_loop(x, y, bandwidths, unbiased)
    value = mmd2(x, y, bandwidths, unbiased=unbiased)
    assert value.dtype == tf.float64
    np.testing.assert_allclose(value.numpy(), expected, rtol=1e-10, atol=1e-12)
    x32, y32 = samples(dtype="float32")
    value32 = mmd2(x32, y32, bandwidths, unbiased=unbiased)
    assert value32.dtype == tf.float32
    # relative to the size of the terms: MMD^2 is a difference of sums of order len(bandwidths)
    np.testing.assert_allclose(value32.numpy(), mmd2_by_loop(x32, y32, bandwidths, unbiased),
                               rtol=1e-5, atol=1e-6 * len(bandwidths))


@pytest.mark.parametrize("m, n", [(1, 1), (1, 4), (2, 3), (3, 2), (8, 8)])
def test_mmd2_and_its_gradient_at_small_and_even_sizes(m, n):
    # mmd2 builds each sample's kernel with itself from the blocks of its two halves (the
    # first m // 2 rows and the rest): one row leaves the first half empty, an even count
    # splits evenly. A block dropped, counted once instead of twice, or a transposed block's
    # rows mismatched fails here, against the loop and autodiff of the broadcasting form.
    x, y = samples(m=m, n=n, seed=m + 10 * n)
    bandwidths = (0.7, 2.0, 8.0)
    np.testing.assert_allclose(mmd2(x, y, bandwidths).numpy(),
                               mmd2_by_loop(x, y, bandwidths, False), rtol=1e-10, atol=1e-12)
    ours = gradients(x, y, lambda a, b: mmd2(a, b, bandwidths))
    oracle = gradients(x, y, lambda a, b: mmd2_by_broadcasting(a, b, bandwidths, False))
    for name, got, want in zip("xy", ours, oracle, strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-12, err_msg=f"d/d{name}")
    if min(m, n) >= 2:
        np.testing.assert_allclose(mmd2(x, y, bandwidths, unbiased=True).numpy(),
                                   mmd2_by_loop(x, y, bandwidths, True), rtol=1e-10,
                                   atol=1e-12)


def test_mmd2_default_is_the_biased_gmmn_loss():
    x, y = samples()
    np.testing.assert_allclose(mmd2(x, y).numpy(),
                               mmd2_by_loop(x, y, GMMN_BANDWIDTHS, unbiased=False), rtol=1e-10)


def test_power_trick_agrees_with_one_exponential_per_bandwidth_at_mnist_scale():
    # Random vectors in [0, 1]^784: squared distances about 784 / 6 = 130, where the s = 2
    # kernel exp(-130 / 4) ~ 1e-14 comes out of a^40, a = exp(-130 / 160).
    rng = np.random.default_rng(1)
    x, y = rng.random((40, 784), np.float32), rng.random((50, 784), np.float32)
    assert 90 < squared_distances(x, y).numpy().mean() < 170
    combined = gaussian_kernel_matrix(x, y, GMMN_BANDWIDTHS).numpy()
    # a single bandwidth is always its own exponential; the squared distances are the same ops
    separate = sum(gaussian_kernel_matrix(x, y, (s,)).numpy() for s in GMMN_BANDWIDTHS)
    np.testing.assert_allclose(combined, separate, rtol=1e-5)
    squared = ((x[:, None, :].astype(np.float64) - y[None].astype(np.float64)) ** 2).sum(-1)
    direct = sum(np.exp(-squared / (2.0 * s)) for s in GMMN_BANDWIDTHS)
    np.testing.assert_allclose(combined, direct, rtol=1e-5)


def test_power_trick_keeps_the_narrow_bandwidths_accurate_in_float32():
    # Squared distances 0 to 300 handed straight to the private helper (no distance
    # rounding): at small distances the narrow s = 2 term (a^40) weighs most in the gradient
    # weights sum_s k_s / s, so its rounding shows there instead of drowning in the widest.
    squared = np.linspace(0.0, 300.0, 3001).astype(np.float32)
    kernel, weights = _kernel_of_distances(tf.constant(squared), GMMN_BANDWIDTHS)
    exact = [np.exp(-squared.astype(np.float64) / (2 * s)) for s in GMMN_BANDWIDTHS]
    np.testing.assert_allclose(kernel.numpy(), sum(exact), rtol=1e-5)
    np.testing.assert_allclose(weights.numpy(),
                               sum(e / s for e, s in zip(exact, GMMN_BANDWIDTHS, strict=True)),
                               rtol=1e-5)


# ---------------------------------------------------------------------------- gradients
@pytest.mark.parametrize("unbiased", [False, True], ids=["biased", "unbiased"])
@pytest.mark.parametrize("bandwidths", BANDWIDTH_SETS.values(), ids=BANDWIDTH_SETS.keys())
def test_gradient_matches_autodiff_of_a_plain_reimplementation(bandwidths, unbiased):
    # Both arguments, with an upstream factor 3 (a gradient that ignores it, or the c_xx /
    # c_yy of the other estimator, or the mirror image for y wrong, fails here).
    x, y = samples()
    ours = gradients(x, y, lambda a, b: mmd2(a, b, bandwidths, unbiased=unbiased))
    oracle = gradients(x, y, lambda a, b: mmd2_by_broadcasting(a, b, bandwidths, unbiased))
    for name, got, want in zip("xy", ours, oracle, strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-12, err_msg=f"d/d{name}")


@pytest.mark.parametrize("unbiased", [False, True], ids=["biased", "unbiased"])
def test_gradient_matches_central_differences_of_the_loop(unbiased):
    x, y = samples(m=4, n=5, d=2, seed=3)
    bandwidths = (0.7, 2.0, 8.0)
    ours = gradients(x, y, lambda a, b: mmd2(a, b, bandwidths, unbiased=unbiased), upstream=1)
    h = 1e-6
    for which, (got, base) in enumerate(zip(ours, (x, y), strict=True)):
        numeric = np.zeros_like(base)
        for index in np.ndindex(base.shape):
            plus, minus = base.copy(), base.copy()
            plus[index] += h
            minus[index] -= h
            args_plus = (plus, y) if which == 0 else (x, plus)
            args_minus = (minus, y) if which == 0 else (x, minus)
            numeric[index] = (mmd2_by_loop(*args_plus, bandwidths, unbiased)
                              - mmd2_by_loop(*args_minus, bandwidths, unbiased)) / (2 * h)
        np.testing.assert_allclose(got, numeric, rtol=1e-6, atol=1e-8)


def test_gradient_at_mnist_scale_in_float32_matches_float64():
    # The GMMN's situation: 784 pixels in [0, 1], the power trick, float32.
    rng = np.random.default_rng(4)
    x, y = rng.random((30, 784)), rng.random((40, 784))
    want = gradients(x, y, lambda a, b: mmd2_by_broadcasting(a, b, GMMN_BANDWIDTHS, False))
    got = gradients(x.astype(np.float32), y.astype(np.float32), mmd2)
    for g, w in zip(got, want, strict=True):
        assert np.abs(g - w).max() <= 1e-4 * np.abs(w).max()


@pytest.mark.parametrize("jit_compile", [False, True], ids=["graph", "xla"])
def test_gradient_flows_in_a_compiled_function(jit_compile):
    x, y = samples(m=6, n=9, d=4, seed=5, dtype="float32")
    variable = tf.Variable(x)
    signature = None if jit_compile else [tf.TensorSpec((None, 4), tf.float32)]

    @tf.function(jit_compile=jit_compile, input_signature=signature)
    def value_and_gradient(y):
        with tf.GradientTape() as tape:
            value = mmd2(variable, y, (0.7, 2.0, 4.0), unbiased=True)
        return value, tape.gradient(value, variable)

    value, gradient = value_and_gradient(tf.constant(y))
    np.testing.assert_allclose(value.numpy(), mmd2_by_loop(x, y, (0.7, 2.0, 4.0), True),
                               rtol=1e-5)
    want = gradients(x.astype(np.float64), y.astype(np.float64),
                     lambda a, b: mmd2_by_broadcasting(a, b, (0.7, 2.0, 4.0), True), upstream=1)
    np.testing.assert_allclose(gradient.numpy(), want[0], rtol=1e-4, atol=1e-6)


# ------------------------------------------------------- means against the closed form
def expected_kernels(d, mu1, s1, mu2, s2, bandwidths):
    """E k(x, x'), E k(y, y'), E k(x, y) for x ~ N(mu1, s1^2 I_d), y ~ N(mu2, s2^2 I_d).

    For z ~ N(mu, v I_d), E exp(-||z||^2 / (2 s)) = (s / (s + v))^(d/2)
    exp(-||mu||^2 / (2 (s + v))) (a Gaussian integral per coordinate); x - x' has mu = 0,
    v = 2 s1^2, and x - y has mu = mu1 - mu2, v = s1^2 + s2^2."""
    shift = np.sum((np.asarray(mu1) - np.asarray(mu2)) ** 2)

    def term(v, squared_mean):
        return sum((s / (s + v)) ** (d / 2) * np.exp(-squared_mean / (2 * (s + v)))
                   for s in bandwidths)
    return term(2 * s1**2, 0.0), term(2 * s2**2, 0.0), term(s1**2 + s2**2, shift)


def test_expected_kernels_formula_against_monte_carlo():
    # The closed form itself, checked on 200,000 pairs (error bar: 5 standard errors).
    rng = np.random.default_rng(6)
    d, mu1, mu2, s1, s2, bandwidths = 2, [0.0, 0.0], [0.8, -0.3], 1.0, 1.3, (0.7, 2.0)
    x, x2 = (rng.normal(mu1, s1, (200_000, d)) for _ in range(2))
    y = rng.normal(mu2, s2, (200_000, d))

    def k(a, b):
        return sum(np.exp(-np.sum((a - b) ** 2, 1) / (2 * s)) for s in bandwidths)
    for draws, want in zip((k(x, x2), k(x, y)),
                           np.array(expected_kernels(d, mu1, s1, mu2, s2, bandwidths))[[0, 2]],
                           strict=True):
        assert abs(draws.mean() - want) < 5 * draws.std() / np.sqrt(len(draws))


@pytest.mark.parametrize("bandwidths", [(0.7, 2.0, 3.1), (1.0, 2.0, 4.0)],
                         ids=["own-exponentials", "powers"])
def test_estimator_means_match_the_closed_form(bandwidths):
    d, m, n = 2, 8, 10
    mu1, s1, mu2, s2 = [0.0, 0.0], 1.0, [0.8, -0.3], 1.3
    e_xx, e_yy, e_xy = expected_kernels(d, mu1, s1, mu2, s2, bandwidths)
    population = e_xx + e_yy - 2 * e_xy                  # MMD^2 of the two Gaussians
    k_self = len(bandwidths)                             # k(x, x) = sum_s exp(0)
    bias = (k_self - e_xx) / m + (k_self - e_yy) / n     # E MMD^2_b - MMD^2 (Eq. 7.2)

    @tf.function
    def both(x, y):
        return (mmd2(x, y, bandwidths, unbiased=True),
                mmd2(x, y, bandwidths, unbiased=False))

    rng = np.random.default_rng(7)
    draws = np.array([[v.numpy() for v in both(rng.normal(mu1, s1, (m, d)),
                                                rng.normal(mu2, s2, (n, d)))]
                      for _ in range(2000)])
    mean, error = draws.mean(0), draws.std(0) / np.sqrt(len(draws))
    # Error bar: 4 standard errors of the mean of 2000 draws (a correct estimator fails
    # about once in 16,000 runs; the draws are seeded, so the test is deterministic).
    assert abs(mean[0] - population) < 4 * error[0], (mean[0], population, error[0])
    assert abs(mean[1] - (population + bias)) < 4 * error[1], (mean[1], population + bias)
    # the bias is large against the error bars: swapping the estimators would fail above
    assert bias > 20 * max(error) and population > 10 * error[0]


def test_unbiased_is_negative_about_half_the_time_and_biased_never():
    @tf.function
    def both(x, y):
        return (mmd2(x, y, (0.7, 2.0, 3.1), unbiased=True),
                mmd2(x, y, (0.7, 2.0, 3.1), unbiased=False))

    rng = np.random.default_rng(8)
    draws = np.array([[v.numpy() for v in both(rng.normal(0, 1, (10, 2)).astype("float32"),
                                                rng.normal(0, 1, (12, 2)).astype("float32"))]
                      for _ in range(300)])
    assert 0.3 < np.mean(draws[:, 0] < 0) < 0.7
    assert draws[:, 1].min() >= -1e-6
    x = np.random.default_rng(9).random((20, 784)).astype("float32")
    assert abs(float(mmd2(x, x))) <= 1e-6               # identical samples: exactly 0 in math


def test_squared_distances_are_never_negative():
    # Repeated rows far from the origin: ||x||^2 - 2 x.y + ||y||^2 cancels to a rounding
    # error of either sign before the clip.
    rows = np.random.default_rng(10).normal(1000.0, 1.0, (6, 784)).astype("float32")
    x = np.repeat(rows, 3, axis=0)
    for a, b in ((x, x), (x, rows)):
        squared = squared_distances(a, b).numpy()
        assert squared.min() >= 0.0
        assert np.all(np.isfinite(squared))
    assert squared_distances(x, x).numpy()[0, 1] < 1e-3 * squared_distances(x, x).numpy().max()


# ------------------------------------------------------------------------------ refusals
@pytest.mark.parametrize("x, y, message", [
    (np.zeros(4), np.zeros((3, 4)), "x must be a matrix"),
    (np.zeros((3, 4)), np.zeros((2, 3, 4)), "y must be a matrix"),
    (np.zeros((3, 4)), np.zeros((3, 5)), "same width"),
])
def test_bad_samples_are_refused(x, y, message):
    for call in (mmd2, gaussian_kernel_matrix, squared_distances):
        with pytest.raises(ValueError, match=message):
            call(x, y)


@pytest.mark.parametrize("bandwidths, error, message", [
    ([], ValueError, "non-empty list of positive"),
    ((2.0, -1.0), ValueError, "non-empty list of positive"),
    ([0.0], ValueError, "non-empty list of positive"),
    ([2.0, float("nan")], ValueError, "finite"),
    ([float("inf")], ValueError, "finite"),
    ("2.0", ValueError, "non-empty list of positive"),
    (["a", "b"], TypeError, "numeric"),
    (None, ValueError, "non-empty list of positive"),
])
def test_bad_bandwidths_are_refused(bandwidths, error, message):
    x, y = samples()
    with pytest.raises(error, match=f"bandwidths must be.*{message}"):
        check_bandwidths(bandwidths)
    for call in (mmd2, gaussian_kernel_matrix):
        with pytest.raises(error, match="bandwidths"):
            call(x, y, bandwidths)


def test_good_bandwidths_are_read_as_floats():
    assert check_bandwidths(GMMN_BANDWIDTHS) == GMMN_BANDWIDTHS
    assert check_bandwidths(2) == (2.0,)
    assert check_bandwidths(np.array([1, 3])) == (1.0, 3.0)


@pytest.mark.parametrize("rows", [(1, 5), (5, 1)], ids=["x", "y"])
def test_unbiased_needs_two_rows(rows):
    x, y = np.zeros((rows[0], 3)), np.ones((rows[1], 3))
    with pytest.raises(ValueError, match=f"at least two rows in {'x' if rows[0] == 1 else 'y'}"):
        mmd2(x, y, unbiased=True)
    assert float(mmd2(x, y)) > 0                         # the biased form takes one row


# A flag that is not a bool is refused, not read as bool("no") == True.
@pytest.mark.parametrize("flag", ["no", 1, None])
def test_unbiased_flag_must_be_a_bool(flag):
    x, y = samples()
    with pytest.raises(TypeError, match="unbiased"):
        mmd2(x, y, unbiased=flag)
