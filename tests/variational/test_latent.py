"""Tests of course_lib.variational.latent against oracles that never call the library: TFP
distributions, scipy densities, the papers' formulas evaluated in 150-digit decimal arithmetic,
numerical quadrature and Monte-Carlo estimates whose tolerance comes from their standard
error."""

import math
from decimal import Decimal, localcontext

import keras
import numpy as np
import pytest
import tensorflow as tf
import tensorflow_probability as tfp
from scipy import special, stats

from course_lib.variational import latent

tfd = tfp.distributions

# Logits near 0 (where log C and the mean are 0/0 ratios), on both sides of the library's
# series cut-off at |eta| = 1e-3, moderate, and large enough that sigmoid saturates.
SMALL_LOGITS = [0.0, 1e-7, -1e-5, 3e-4, -9.9e-4, 1e-3, -1e-3, 1.5e-3, -2.5e-3, 4e-3, -6e-3,
                1e-2, -2e-2]
LARGE_LOGITS = [0.3, -1.0, 2.5, -7.0, 15.0, -40.0, 80.0, -150.0]
LOGITS = SMALL_LOGITS + LARGE_LOGITS


def np_of(tensor):
    return np.asarray(keras.ops.convert_to_numpy(tensor), dtype=np.float64)


def random_gaussian_params(n, d, seed):
    rng = np.random.default_rng(seed)
    return rng.normal(0.0, 1.5, (n, d)), rng.uniform(-6.0, 4.0, (n, d))


# ----- high-precision oracles of the continuous Bernoulli (Loaiza-Ganem & Cunningham) -----
# The paper's formulas in lambda = sigmoid(eta), evaluated with 150 significant digits
# (stdlib decimal), so that 1 - 2 lambda keeps its digits near eta = 0 and sigmoid(-150)
# does not round away.
PRECISION = 150


def _paper_terms(eta):
    """(lambda, 1 - 2 lambda, atanh(1 - 2 lambda)) as Decimals."""
    eta = Decimal(float(eta))
    lam = 1 / (1 + (-eta).exp())
    y = 1 - 2 * lam
    return lam, y, ((1 + y) / (1 - y)).ln() / 2


def exact_cb_log_norm(eta):
    """log C(lambda) = log(2 atanh(1 - 2 lambda) / (1 - 2 lambda)); C(1/2) = 2."""
    with localcontext() as ctx:
        ctx.prec = PRECISION
        _, y, atanh = _paper_terms(eta)
        return math.log(2.0) if y == 0 else float((2 * atanh / y).ln())


def exact_cb_mean(eta):
    """E[x] = lambda / (2 lambda - 1) + 1 / (2 atanh(1 - 2 lambda)); 1/2 at lambda = 1/2."""
    with localcontext() as ctx:
        ctx.prec = PRECISION
        lam, y, atanh = _paper_terms(eta)
        return 0.5 if y == 0 else float(lam / (-y) + 1 / (2 * atanh))


def exact_cb_log_prob(x, eta):
    """log [C(lambda) lambda^x (1 - lambda)^(1 - x)] for one pixel."""
    with localcontext() as ctx:
        ctx.prec = PRECISION
        lam, _, _ = _paper_terms(eta)
        x = Decimal(float(x))
        log_bernoulli = float(x * lam.ln() + (1 - x) * (1 - lam).ln())
    return log_bernoulli + exact_cb_log_norm(eta)


# ----- Eq. (4.4): closed-form KL -----------------------------------------------------------
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_gaussian_kl_matches_tfp_kl_divergence(dtype):
    mean, log_var = random_gaussian_params(40, 5, seed=0)
    q = tfd.MultivariateNormalDiag(loc=mean, scale_diag=np.exp(0.5 * log_var))
    p = tfd.MultivariateNormalDiag(loc=np.zeros(5), scale_diag=np.ones(5))
    expected = np_of(tfd.kl_divergence(q, p))
    got = latent.gaussian_kl(tf.constant(mean, dtype), tf.constant(log_var, dtype))
    assert tuple(got.shape) == (40,) and got.dtype == dtype
    rtol = 1e-12 if dtype == "float64" else 1e-5
    np.testing.assert_allclose(np_of(got), expected, rtol=rtol)


def test_gaussian_kl_is_zero_only_at_the_prior():
    zero = np_of(latent.gaussian_kl(tf.zeros((3, 4)), tf.zeros((3, 4))))
    np.testing.assert_array_equal(zero, 0.0)
    mean, log_var = random_gaussian_params(50, 4, seed=1)
    assert np.all(np_of(latent.gaussian_kl(tf.constant(mean), tf.constant(log_var))) > 0)


def test_gaussian_kl_matches_a_monte_carlo_estimate():
    """KL(q || p) = E_q[log q(z) - log p(z)], estimated with 400,000 numpy draws per row;
    the tolerance is five standard errors of that estimate."""
    mean, log_var = random_gaussian_params(4, 3, seed=2)
    exact = np_of(latent.gaussian_kl(tf.constant(mean), tf.constant(log_var)))
    rng = np.random.default_rng(3)
    for i in range(len(mean)):
        std = np.exp(0.5 * log_var[i])
        z = mean[i] + std * rng.standard_normal((400_000, 3))
        log_ratio = (stats.norm.logpdf(z, mean[i], std) - stats.norm.logpdf(z)).sum(axis=1)
        estimate, se = log_ratio.mean(), log_ratio.std() / math.sqrt(len(z))
        assert abs(exact[i] - estimate) < 5 * se + 1e-9, (i, exact[i], estimate, se)
        assert se < 0.05 * max(exact[i], 1.0)  # the check has teeth


# ----- Gaussian densities --------------------------------------------------------------------
def test_log_normal_and_gaussian_log_prob_match_scipy_and_broadcast():
    rng = np.random.default_rng(4)
    mean, log_var = random_gaussian_params(6, 3, seed=5)
    z = rng.normal(size=(7, 6, 3))                      # (k, n, d) against (n, d) parameters
    expected = stats.norm.logpdf(z, mean, np.exp(0.5 * log_var)).sum(axis=-1)
    for fn in (latent.log_normal, latent.gaussian_log_prob):
        got = fn(tf.constant(z), tf.constant(mean), tf.constant(log_var))
        assert tuple(got.shape) == (7, 6)
        np.testing.assert_allclose(np_of(got), expected, rtol=1e-12)
    # A per-column log-variance of shape (d,) (the Gaussian decoder's) broadcasts too.
    column = rng.uniform(-2, 2, 3)
    np.testing.assert_allclose(
        np_of(latent.gaussian_log_prob(tf.constant(z), tf.constant(mean), tf.constant(column))),
        stats.norm.logpdf(z, mean, np.exp(0.5 * column)).sum(axis=-1), rtol=1e-12)


@pytest.mark.parametrize("dtype, rtol", [("float64", 1e-12), ("float32", 1e-5)])
def test_log_normal_matches_tfp_normal_and_multivariate_normal_diag(dtype, rtol):
    """log N(z; mean, diag exp(log_var)) against tfd.Normal summed over the last axis and
    tfd.MultivariateNormalDiag, broadcasting (k, n, d) draws against (n, d) parameters."""
    mean, log_var = random_gaussian_params(6, 3, seed=16)
    z = np.random.default_rng(17).normal(0.0, 3.0, (7, 6, 3))
    scale = np.exp(0.5 * log_var)
    from_normal = np_of(tfd.Normal(loc=mean, scale=scale).log_prob(z)).sum(axis=-1)
    from_mvn = np_of(tfd.MultivariateNormalDiag(loc=mean, scale_diag=scale).log_prob(z))
    np.testing.assert_allclose(from_normal, from_mvn, rtol=1e-12)       # the oracles agree
    for fn in (latent.log_normal, latent.gaussian_log_prob):
        got = fn(tf.constant(z, dtype), tf.constant(mean, dtype), tf.constant(log_var, dtype))
        assert tuple(got.shape) == (7, 6) and got.dtype == dtype
        np.testing.assert_allclose(np_of(got), from_mvn, rtol=rtol)


def test_log_standard_normal_matches_tfp():
    z = np.random.default_rng(6).normal(0, 2, (5, 4, 3))
    expected = np_of(tfd.MultivariateNormalDiag(loc=np.zeros(3)).log_prob(z))
    np.testing.assert_allclose(np_of(latent.log_standard_normal(tf.constant(z))), expected,
                               rtol=1e-12)


# ----- Eq. (4.5a): Bernoulli ---------------------------------------------------------------
def test_bernoulli_log_prob_matches_scipy_for_binary_pixels():
    rng = np.random.default_rng(7)
    logits = rng.normal(0, 3, (20, 6))
    x = (rng.random((20, 6)) < 0.5).astype(np.float64)
    expected = stats.bernoulli.logpmf(x, special.expit(logits)).sum(axis=-1)
    got = np_of(latent.bernoulli_log_prob(tf.constant(x), tf.constant(logits)))
    np.testing.assert_allclose(got, expected, rtol=1e-10)


@pytest.mark.parametrize("dtype, rtol", [("float64", 1e-6), ("float32", 1e-5)])
def test_bernoulli_log_prob_matches_tfp_bernoulli(dtype, rtol):
    """Binary pixels against tfd.Bernoulli(logits) summed over pixels (tfd.Independent),
    with (k, n, D) logits against (n, D) images as in the IW bound. tfd.Bernoulli.log_prob
    is itself only ~1e-7 accurate (relative) in float64, hence the tolerance; the scipy test
    below holds the formula to 1e-10."""
    rng = np.random.default_rng(18)
    logits = rng.normal(0, 4, (3, 10, 6))
    x = (rng.random((10, 6)) < 0.5).astype(np.float64)
    oracle = tfd.Independent(tfd.Bernoulli(logits=logits, dtype=tf.float64),
                             reinterpreted_batch_ndims=1)
    expected = np_of(oracle.log_prob(x))
    got = latent.bernoulli_log_prob(tf.constant(x, dtype), tf.constant(logits, dtype))
    assert tuple(got.shape) == (3, 10) and got.dtype == dtype
    np.testing.assert_allclose(np_of(got), expected, rtol=rtol)


def test_bernoulli_log_prob_is_the_cross_entropy_and_stable_at_large_logits():
    """For intensities in [0, 1]: x log p + (1 - x) log(1 - p), computed with log_expit so
    the oracle itself does not overflow; |logits| up to 200 stay finite and exact."""
    x = np.array([[0.0, 1.0, 0.25, 1.0, 0.0, 0.6, 1.0, 0.0]])
    logits = np.array([[-200.0, 200.0, 0.3, -120.0, 90.0, -4.0, 0.0, 1e-6]])
    expected = (x * special.log_expit(logits) + (1 - x) * special.log_expit(-logits)).sum(-1)
    for dtype, rtol in (("float64", 1e-12), ("float32", 1e-6)):
        got = np_of(latent.bernoulli_log_prob(tf.constant(x, dtype), tf.constant(logits, dtype)))
        assert np.all(np.isfinite(got))
        np.testing.assert_allclose(got, expected, rtol=rtol, atol=1e-12)
    expected_tfd = np_of(tfd.Bernoulli(logits=logits[:, :2]).log_prob(x[:, :2])).sum(-1)
    np.testing.assert_allclose(
        np_of(latent.bernoulli_log_prob(tf.constant(x[:, :2]), tf.constant(logits[:, :2]))),
        expected_tfd, rtol=1e-12, atol=1e-12)


# ----- Eq. (4.5b): continuous Bernoulli ----------------------------------------------------
def test_continuous_bernoulli_log_prob_and_mean_match_the_paper_formulas_in_float64():
    eta = np.array(LOGITS)
    x = np.array([0.0, 0.1, 0.5, 0.77, 1.0])
    got = np_of(latent.continuous_bernoulli_log_prob(tf.constant(x[None, :, None]),
                                                     tf.constant(eta[:, None, None])))
    expected = np.array([[exact_cb_log_prob(xi, e) for xi in x] for e in eta])
    np.testing.assert_allclose(got, expected, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(np_of(latent.continuous_bernoulli_mean(tf.constant(eta))),
                               [exact_cb_mean(e) for e in eta], rtol=0, atol=1e-9)
    np.testing.assert_allclose(np_of(latent.continuous_bernoulli_log_norm(tf.constant(eta))),
                               [exact_cb_log_norm(e) for e in eta], rtol=1e-10, atol=1e-12)


def test_continuous_bernoulli_matches_tfp_distribution():
    """tfd.ContinuousBernoulli is itself accurate to ~1e-5 (log_prob, |eta| = 150) and
    ~1e-7 (mean, near eta = 0) in float64, hence the tolerances."""
    eta = np.array(LOGITS)
    x = np.linspace(0.0, 1.0, 7)
    dist = tfd.ContinuousBernoulli(logits=eta[:, None])
    got = np_of(latent.continuous_bernoulli_log_prob(tf.constant(x[None, :, None]),
                                                     tf.constant(eta[:, None, None])))
    np.testing.assert_allclose(got, np_of(dist.log_prob(x[None, :])), rtol=1e-6, atol=2e-5)
    np.testing.assert_allclose(np_of(latent.continuous_bernoulli_mean(tf.constant(eta))),
                               np_of(dist.mean())[:, 0], atol=1e-6)


def test_continuous_bernoulli_is_accurate_in_float32_near_zero_logits():
    """The model computes in float32, so the mean E[x] (the image a continuous-Bernoulli
    decoder shows) must be accurate there too. tfd.ContinuousBernoulli in float32 is within
    4e-7 of the exact mean on this grid; the library's closed form
    1 / (1 - exp(-eta)) - 1 / eta cancels catastrophically for 1e-3 <= |eta| <~ 0.05,
    where it is used (errors up to ~8e-5)."""
    eta = np.concatenate([-np.logspace(-5, 1, 61), np.logspace(-5, 1, 61)]).astype(np.float32)
    exact_mean = np.array([exact_cb_mean(float(e)) for e in eta])
    exact_log_norm = np.array([exact_cb_log_norm(float(e)) for e in eta])
    tfd_error = np.abs(np_of(tfd.ContinuousBernoulli(logits=eta).mean()) - exact_mean).max()
    assert tfd_error < 1e-6  # what float32 allows
    log_norm = np_of(latent.continuous_bernoulli_log_norm(tf.constant(eta)))
    np.testing.assert_allclose(log_norm, exact_log_norm, rtol=1e-6, atol=1e-6)
    error = np.abs(np_of(latent.continuous_bernoulli_mean(tf.constant(eta))) - exact_mean)
    worst = int(np.argmax(error))
    assert error[worst] < 2e-6, f"float32 mean off by {error[worst]:.2e} at eta={eta[worst]:.4g}"



@pytest.mark.parametrize("eta", [0.0, 5e-4, -2e-3, 0.7, -3.0, 12.0, -60.0])
def test_continuous_bernoulli_density_integrates_to_one(eta):
    """Gauss-Legendre quadrature (400 nodes) of the library's density for one pixel over
    [0, 1]: integral 1 and first moment equal to continuous_bernoulli_mean."""
    nodes, weights = np.polynomial.legendre.leggauss(400)
    x, w = 0.5 * (nodes + 1.0), 0.5 * weights
    log_p = np_of(latent.continuous_bernoulli_log_prob(tf.constant(x[:, None]),
                                                       tf.constant(np.full((400, 1), eta))))
    density = np.exp(log_p)
    assert w @ density == pytest.approx(1.0, abs=1e-10)
    mean = np_of(latent.continuous_bernoulli_mean(tf.constant([eta], tf.float64)))[0]
    assert w @ (x * density) == pytest.approx(mean, abs=1e-9)
    # Without log C the Bernoulli formula integrates to 1 / C(lambda) <= 1/2 on [0, 1].
    plain = np.exp(np_of(latent.bernoulli_log_prob(tf.constant(x[:, None]),
                                                   tf.constant(np.full((400, 1), eta)))))
    assert w @ plain <= 0.5 + 1e-12


def test_continuous_bernoulli_log_prob_sums_over_pixels():
    rng = np.random.default_rng(8)
    x, eta = rng.random((5, 4)), rng.normal(0, 2, (5, 4))
    expected = np.array([[exact_cb_log_prob(x[i, j], eta[i, j]) for j in range(4)]
                         for i in range(5)]).sum(axis=1)
    np.testing.assert_allclose(
        np_of(latent.continuous_bernoulli_log_prob(tf.constant(x), tf.constant(eta))),
        expected, rtol=1e-10)


# ----- Eq. (4.7): log-mean-exp ----------------------------------------------------------------
def test_log_mean_exp_matches_scipy_and_is_stable():
    a = np.random.default_rng(9).normal(0, 5, (30, 4))
    for axis in (0, 1):
        np.testing.assert_allclose(
            np_of(latent.log_mean_exp(tf.constant(a), axis=axis)),
            special.logsumexp(a, axis=axis) - math.log(a.shape[axis]), rtol=1e-12)
    big = tf.constant([[-1000.0, 1000.0], [-1000.0, 1000.0], [-1000.0, 1000.0]], "float32")
    np.testing.assert_allclose(np_of(latent.log_mean_exp(big)), [-1000.0, 1000.0], rtol=1e-6)


# ----- Eq. (4.3): reparameterization -------------------------------------------------------
def test_reparameterize_shapes_and_sample_moments():
    mean = tf.constant([[1.0, -2.0, 0.5]] * 4)
    log_var = tf.constant([[0.0, math.log(0.25), math.log(4.0)]] * 4)
    one = latent.reparameterize(mean, log_var, seed=1)
    assert tuple(one.shape) == (4, 3) and one.dtype == tf.float32
    k = 20_000
    z = np_of(latent.reparameterize(mean, log_var, seed=2, num_samples=k))
    assert z.shape == (k, 4, 3)
    flat = z.reshape(-1, 3)
    std = np.array([1.0, 0.5, 2.0])
    se_mean = std / math.sqrt(len(flat))
    np.testing.assert_array_less(np.abs(flat.mean(0) - [1.0, -2.0, 0.5]), 5 * se_mean)
    # Var of a sample variance of a Gaussian: 2 sigma^4 / (N - 1).
    se_var = std**2 * math.sqrt(2.0 / (len(flat) - 1))
    np.testing.assert_array_less(np.abs(flat.var(0) - std**2), 5 * se_var)
    # Independent across rows and columns: the sample correlations are ~0.
    eps = (flat - [1.0, -2.0, 0.5]) / std
    corr = np.corrcoef(eps.T)
    assert np.abs(corr - np.eye(3)).max() < 5 / math.sqrt(len(flat))
    rows = (z[:, 0, 0] - 1.0) * (z[:, 1, 0] - 1.0)
    assert abs(rows.mean()) < 5 / math.sqrt(k)


def test_reparameterize_is_reproducible_with_the_same_seed():
    mean, log_var = (tf.constant(a, "float32") for a in random_gaussian_params(5, 2, seed=10))
    stateless = tf.constant([3, 4], tf.int32)
    a = np_of(latent.reparameterize(mean, log_var, stateless, num_samples=3))
    b = np_of(latent.reparameterize(mean, log_var, stateless, num_samples=3))
    np.testing.assert_array_equal(a, b)
    other = np_of(latent.reparameterize(mean, log_var, tf.constant([3, 5]), num_samples=3))
    assert not np.allclose(a, other)
    np.testing.assert_array_equal(np_of(latent.reparameterize(mean, log_var, 7)),
                                  np_of(latent.reparameterize(mean, log_var, 7)))
    # A SeedGenerator advances: two calls differ, and a second generator seeded alike
    # replays the first one's stream.
    gen, twin = keras.random.SeedGenerator(5), keras.random.SeedGenerator(5)
    first, second = (np_of(latent.reparameterize(mean, log_var, gen)) for _ in range(2))
    assert not np.allclose(first, second)
    np.testing.assert_array_equal(np_of(latent.reparameterize(mean, log_var, twin)), first)


def test_reparameterize_is_differentiable_in_mean_and_log_var():
    """dz/dmu = 1 and dz/dlog_var = exp(log_var / 2) eps / 2, where eps = (z - mu) / sigma."""
    mean = tf.Variable([[0.3, -1.0]])
    log_var = tf.Variable([[0.4, -2.0]])
    with tf.GradientTape(persistent=True) as tape:
        z = latent.reparameterize(mean, log_var, seed=tf.constant([1, 2]))
        total = tf.reduce_sum(z)
    eps = (np_of(z) - np_of(mean)) / np.exp(0.5 * np_of(log_var))
    np.testing.assert_allclose(np_of(tape.gradient(total, mean)), 1.0)
    np.testing.assert_allclose(np_of(tape.gradient(total, log_var)),
                               0.5 * np.exp(0.5 * np_of(log_var)) * eps, rtol=1e-5)


# ----- Eq. (4.2): gradient estimators -------------------------------------------------------
def _check_unbiased(samples, expected, name):
    se = samples.std() / math.sqrt(len(samples))
    assert abs(samples.mean() - expected) < 5 * se, (name, samples.mean(), expected, se)
    assert se < 0.05 * max(1.0, abs(expected))   # the test has teeth


@pytest.mark.parametrize("mean, std", [(1.0, 1.5), (-1.0, 0.5)])
def test_both_gradient_estimators_are_unbiased_and_reparameterization_has_lower_variance(
        mean, std):
    """f(z) = (z - 3)^2: d/dmu E[f] = 2 (mu - 3); Var of the reparameterized estimate is
    4 sigma^2 exactly."""
    def f(z):
        return (z - 3.0) ** 2

    n = 200_000
    score = np_of(latent.score_function_gradients(f, mean, std, n, seed=11))
    reparam = np_of(latent.reparameterized_gradients(f, mean, std, n, seed=12))
    assert score.shape == reparam.shape == (n,)
    _check_unbiased(score, 2 * (mean - 3.0), "score function")
    _check_unbiased(reparam, 2 * (mean - 3.0), "reparameterized")
    assert reparam.var() == pytest.approx(4 * std**2, rel=0.03)
    assert score.var() > 10 * reparam.var(), (score.var(), reparam.var())


def test_gradient_estimators_for_a_non_polynomial_function():
    """f(z) = sin z: d/dmu E[sin z] = E[cos z] = cos(mu) exp(-sigma^2 / 2)."""
    mean, std, n = 0.7, 0.8, 200_000
    expected = math.cos(mean) * math.exp(-(std**2) / 2)
    _check_unbiased(np_of(latent.score_function_gradients(tf.sin, mean, std, n, seed=13)),
                    expected, "score function")
    _check_unbiased(np_of(latent.reparameterized_gradients(tf.sin, mean, std, n, seed=14)),
                    expected, "reparameterized")


def test_estimators_are_the_stated_formulas_on_the_same_draws():
    """With one seed both estimators see the same z: the reparameterized value is
    f'(z) = 2 (z - 3), from which z is recovered and the score-function value
    f(z) (z - mu) / sigma^2 checked."""
    mean, std = -0.5, 2.0
    reparam = np_of(latent.reparameterized_gradients(lambda z: (z - 3.0) ** 2, mean, std, 50,
                                                     seed=15))
    score = np_of(latent.score_function_gradients(lambda z: (z - 3.0) ** 2, mean, std, 50,
                                                  seed=15))
    z = 3.0 + reparam / 2.0
    assert z.std() == pytest.approx(std, rel=0.4)
    np.testing.assert_allclose(score, (z - 3.0) ** 2 * (z - mean) / std**2, rtol=1e-4,
                               atol=1e-4)
