"""Tests of course_lib.evaluation.variational on models whose answers are known exactly.

A VAE with no hidden layers and a Gaussian decoder of fixed variance s^2 is the
linear-Gaussian model x = W z + b + s * noise, z ~ N(0, I): then p(x) = N(b, W W^T + s^2 I)
(scipy), the posterior p(z | x) = N(Sigma W^T (x - b) / s^2, Sigma) with
Sigma = (I + W^T W / s^2)^-1, and for a Gaussian q(z | x) the ELBO is
log p(x) - KL(q || p(z | x)) in closed form. Columns of W are orthogonal so that Sigma is
diagonal and the encoder (which outputs a diagonal log-variance) can represent it exactly.
"""

import math

import keras
import numpy as np
import pytest
from scipy import stats

from course_lib.evaluation.variational import (
    active_units,
    importance_weighted_bound,
    kl_per_unit,
    posterior_means_and_log_vars,
)
from course_lib.variational.vae import VAE

D, LATENT = 5, 2
SCALES = np.array([1.6, 0.8])          # the column norms of W
DECODER_LOG_VAR = math.log(0.3)        # s^2 = 0.3


def np_of(tensor):
    return np.asarray(keras.ops.convert_to_numpy(tensor), dtype=np.float64)


class LinearGaussian:
    """The exact quantities of the linear-Gaussian model, in float64 numpy."""

    def __init__(self, seed=0):
        rng = np.random.default_rng(seed)
        q, _ = np.linalg.qr(rng.normal(size=(D, LATENT)))
        self.W = (q * SCALES).astype("float32").astype(np.float64)   # D x d, orthogonal cols
        self.b = rng.normal(0.0, 0.5, D).astype("float32").astype(np.float64)
        self.s2 = math.exp(DECODER_LOG_VAR)
        self.post_var = 1.0 / (1.0 + np.diag(self.W.T @ self.W) / self.s2)     # diag Sigma
        assert np.allclose(self.W.T @ self.W, np.diag(SCALES**2), atol=1e-5)

    def sample_x(self, n, seed):
        rng = np.random.default_rng(seed)
        z = rng.standard_normal((n, LATENT))
        x = z @ self.W.T + self.b + math.sqrt(self.s2) * rng.standard_normal((n, D))
        return x.astype("float32")

    def log_px(self, x):
        cov = self.W @ self.W.T + self.s2 * np.eye(D)
        return stats.multivariate_normal(self.b, cov).logpdf(np.asarray(x, np.float64))

    def posterior_mean_map(self):
        """(A, c) with E[z | x] = x A + c."""
        A = self.W * self.post_var / self.s2          # = W Sigma / s^2, D x d
        return A, -self.b @ A

    def exact_elbo(self, x, mean, var):
        """log p(x) - KL(N(mean, diag var) || p(z | x)) for each row."""
        A, c = self.posterior_mean_map()
        post_mean = np.asarray(x, np.float64) @ A + c
        kl = 0.5 * np.sum(var / self.post_var + (mean - post_mean) ** 2 / self.post_var
                          - 1.0 + np.log(self.post_var) - np.log(var), axis=1)
        return self.log_px(x) - kl


def linear_gaussian_vae(truth, perturb=None, seed=0, **kwargs):
    """The VAE of the module docstring, with the encoder at the exact posterior or, with
    ``perturb=(scale, offset, log_var_shift)``, at a perturbed one: mean
    ``scale * E[z | x] + offset`` and log-variance ``log diag Sigma + log_var_shift``."""
    model = VAE(D, LATENT, (), likelihood="gaussian", decoder_log_var=DECODER_LOG_VAR,
                seed=seed, **kwargs)
    decoder = model.decoder.layers[-1]
    decoder.kernel.assign(truth.W.T.astype("float32"))
    decoder.bias.assign(truth.b.astype("float32"))
    A, c = truth.posterior_mean_map()
    log_var_bias = np.log(truth.post_var)
    if perturb is not None:
        scale, offset, shift = perturb
        A, c, log_var_bias = scale * A, scale * c + offset, log_var_bias + shift
    encoder = model.encoder.layers[-1]
    encoder.kernel.assign(np.concatenate([A, np.zeros_like(A)], axis=1).astype("float32"))
    encoder.bias.assign(np.concatenate([c, log_var_bias]).astype("float32"))
    return model


@pytest.fixture(scope="module")
def truth():
    return LinearGaussian(seed=0)


@pytest.fixture(scope="module")
def data(truth):
    return truth.sample_x(24, seed=1)


# q(z | x) off the posterior (mean gap KL(q || p(z | x)) ~ 0.7 nats), and wider than it so
# that the importance weights are bounded and k = 5000 gets within ~0.03 nats of log p(x).
PERTURB = (1.1, np.array([0.3, -0.2]), np.array([0.8, 0.5]))


# ----- the exact posterior: zero-variance importance weights ----------------------------------
def test_encoder_at_the_exact_posterior_gives_log_weights_equal_to_log_px(truth, data):
    model = linear_gaussian_vae(truth)
    mean, log_var = posterior_means_and_log_vars(model, data)
    A, c = truth.posterior_mean_map()
    np.testing.assert_allclose(mean, data @ A + c, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(log_var, np.tile(np.log(truth.post_var), (len(data), 1)),
                               rtol=1e-5)
    log_w = np_of(model.log_importance_weights(data, num_samples=200, seed=3))
    assert log_w.shape == (200, len(data))
    log_px = truth.log_px(data)
    np.testing.assert_allclose(log_w, np.broadcast_to(log_px, log_w.shape), atol=2e-4)
    assert log_w.std(axis=0).max() < 1e-4            # zero variance, up to float32 rounding


@pytest.mark.parametrize("num_samples, batch_size, samples_per_chunk",
                         [(1, 100, 500), (7, 5, 3), (10, 24, 10), (64, 7, 20)])
def test_bound_with_the_exact_posterior_is_log_px_for_any_k_and_chunking(
        truth, data, num_samples, batch_size, samples_per_chunk):
    """Uneven chunks (7 = 3 + 3 + 1) and batches (24 = 5 + ... + 4) must still weigh
    every draw by 1/k: with all log w equal to log p(x), any error shows."""
    model = linear_gaussian_vae(truth)
    bound = importance_weighted_bound(model, data, num_samples=num_samples,
                                      batch_size=batch_size,
                                      samples_per_chunk=samples_per_chunk)
    assert bound.shape == (len(data),) and bound.dtype == np.float64
    np.testing.assert_allclose(bound, truth.log_px(data), atol=2e-4)


# ----- a perturbed posterior: the bound climbs to log p(x) ------------------------------------
def test_k5000_bound_reaches_log_px_and_k1_is_clearly_below(truth, data):
    model = linear_gaussian_vae(truth, perturb=PERTURB)
    log_px = truth.log_px(data)
    mean, log_var = posterior_means_and_log_vars(model, data)
    elbo = truth.exact_elbo(data, mean, np.exp(log_var))
    gap = log_px - elbo
    assert gap.mean() > 0.3, gap       # the encoder really is off the posterior
    k5000 = importance_weighted_bound(model, data, num_samples=5000)
    assert abs(k5000.mean() - log_px.mean()) < 0.05, (k5000.mean(), log_px.mean())
    assert np.all(np.abs(k5000 - log_px) < 0.1)
    k1 = importance_weighted_bound(model, np.tile(data, (50, 1)), num_samples=1)
    assert k1.mean() < log_px.mean() - 0.4, (k1.mean(), log_px.mean())


def test_k1_bound_and_mean_log_weight_are_unbiased_for_the_exact_elbo(truth, data):
    """E[log w] = ELBO: the k = 1 bound of 1000 copies of every row (independent draws), and
    the mean of 4000 log weights per row, match the closed-form ELBO within 5 standard
    errors."""
    model = linear_gaussian_vae(truth, perturb=PERTURB)
    mean, log_var = posterior_means_and_log_vars(model, data)
    elbo = truth.exact_elbo(data, mean, np.exp(log_var))
    copies = importance_weighted_bound(model, np.tile(data, (1000, 1)), num_samples=1,
                                       batch_size=4000).reshape(1000, len(data))
    se = copies.std(axis=0, ddof=1) / math.sqrt(len(copies))
    assert np.all(np.abs(copies.mean(axis=0) - elbo) < 5 * se), (copies.mean(0) - elbo, se)
    overall_se = math.sqrt(np.sum(se**2)) / len(data)
    assert abs(copies.mean() - elbo.mean()) < 5 * overall_se
    assert overall_se < 0.03

    log_w = np_of(model.log_importance_weights(data, num_samples=4000, seed=5))
    se_rows = log_w.std(axis=0) / math.sqrt(len(log_w))
    assert np.all(np.abs(log_w.mean(axis=0) - elbo) < 5 * se_rows + 1e-4)


def test_bound_terms_match_the_closed_form_reconstruction_and_kl(truth, data):
    """E_q[log N(x; W z + b, s^2 I)] = log N(x; W m + b, s^2 I) - tr(W^T W V) / (2 s^2),
    and its variance under q is (4 r^T C r + 2 tr(C^2)) / (4 s^4) with r = x - W m - b,
    C = W V W^T: that sets the tolerance of the 2000-draw estimate in bound_terms."""
    k = 2000
    model = linear_gaussian_vae(truth, perturb=PERTURB, num_samples=k)
    mean, log_var = posterior_means_and_log_vars(model, data)
    var = np.exp(log_var)
    s2, W = truth.s2, truth.W
    r = data - mean @ W.T - truth.b
    rec = (stats.multivariate_normal(np.zeros(D), s2 * np.eye(D)).logpdf(r)
           - np.einsum("ij,nj->n", W.T @ W * np.eye(LATENT), var) / (2 * s2))
    C = np.einsum("dj,nj,ej->nde", W, var, W)
    rec_var = (4 * np.einsum("nd,nde,ne->n", r, C, r)
               + 2 * np.einsum("nde,ned->n", C, C)) / (4 * s2**2)
    se = np.sqrt(rec_var / k)
    kl = 0.5 * np.sum(mean**2 + var - log_var - 1.0, axis=1)
    # The two oracles agree with each other: rec - KL(q || p(z)) = log p(x) - KL(q || post).
    np.testing.assert_allclose(rec - kl, truth.exact_elbo(data, mean, var), rtol=1e-6)

    terms = {key: np_of(v) for key, v in model.bound_terms(data, seed=9).items()}
    np.testing.assert_allclose(terms["kl"], kl, rtol=1e-5)
    assert np.all(np.abs(terms["reconstruction"] - rec) < 5 * se + 1e-4), (
        terms["reconstruction"] - rec, se)
    assert np.all(np.abs(terms["elbo"] - (rec - kl)) < 5 * se + 1e-4)
    np.testing.assert_allclose(terms["objective"], terms["elbo"], rtol=1e-6)   # beta = 1
    assert se.max() < 0.1


def _assert_increasing_in_k(model, data, ks, copies, margin):
    """The bound of ``copies`` copies of every row (independent draws) for each k: the mean
    increase from one k to the next exceeds ``margin`` and 5 standard errors of the paired
    (same row) differences. Returns the mean bound for each k."""
    bounds = np.stack([importance_weighted_bound(model, np.tile(data, (copies, 1)),
                                                 num_samples=k, batch_size=1000, seed=k)
                       for k in ks])                            # (len(ks), copies * n)
    diffs = np.diff(bounds, axis=0)
    mean, se = diffs.mean(axis=1), diffs.std(axis=1, ddof=1) / math.sqrt(diffs.shape[1])
    assert np.all(mean > 5 * se) and np.all(mean > margin), (bounds.mean(axis=1), mean, se)
    return bounds.mean(axis=1)


def test_bound_increases_with_k_towards_log_px(truth, data):
    model = linear_gaussian_vae(truth, perturb=PERTURB)
    means = _assert_increasing_in_k(model, data, (1, 5, 50), copies=100, margin=0.005)
    assert means[-1] < truth.log_px(data).mean()


def test_bound_increases_with_k_for_a_bernoulli_mlp_vae():
    keras.utils.set_random_seed(3)
    model = VAE(8, 3, (6,), seed=0)
    x = (np.random.default_rng(2).random((40, 8)) < 0.3).astype("float32")
    _assert_increasing_in_k(model, x, (1, 5, 50), copies=50, margin=0.02)


# ----- batching, chunking, seeds ------------------------------------------------------------------
def test_batching_and_chunking_change_only_the_draws(truth, data):
    model = linear_gaussian_vae(truth, perturb=PERTURB)
    configs = [dict(batch_size=100, samples_per_chunk=500), dict(batch_size=5,
               samples_per_chunk=37), dict(batch_size=24, samples_per_chunk=300)]
    results = [importance_weighted_bound(model, data, num_samples=300, seed=4, **c)
               for c in configs]
    again = importance_weighted_bound(model, data, num_samples=300, seed=4, **configs[1])
    np.testing.assert_array_equal(again, results[1])          # same seed, same draws
    other_seed = importance_weighted_bound(model, data, num_samples=300, seed=5, **configs[1])
    assert not np.array_equal(other_seed, results[1])
    # Different configurations are different draws of the same estimator: they agree as
    # well as two seeds do (the seed-to-seed spread sets the tolerance).
    spread = np.abs(other_seed - results[1]).max()
    log_px = truth.log_px(data)
    for result in results:
        assert result.shape == (len(data),) and result.dtype == np.float64
        assert np.abs(result - results[0]).max() < 5 * spread + 1e-3
        assert abs(result.mean() - log_px.mean()) < 0.05



def test_bound_progress_bar_shows_when_asked_and_never_changes_the_bound(truth, data, capsys):
    model = linear_gaussian_vae(truth, perturb=PERTURB)
    quiet = importance_weighted_bound(model, data, num_samples=20, batch_size=5, seed=2,
                                      verbose=0)
    assert capsys.readouterr().out == ""
    for verbose in (1, True, 2, "auto", False):
        shown = importance_weighted_bound(model, data, num_samples=20, batch_size=5, seed=2,
                                          verbose=verbose)
        np.testing.assert_array_equal(shown, quiet)
        out = capsys.readouterr().out
        if verbose in (1, 2):                       # True is 1; 24 rows in batches of 5
            assert "5/5" in out and "/batch" in out, out
        else:                                       # "auto": a short run is silent
            assert out == "", (verbose, out)

def test_bound_arguments_are_validated(truth, data):
    model = linear_gaussian_vae(truth)
    for kwargs, match in ((dict(num_samples=0), "num_samples"),
                          (dict(num_samples=2, batch_size=0), "batch_size"),
                          (dict(num_samples=2, samples_per_chunk=0), "samples_per_chunk")):
        with pytest.raises(ValueError, match=match):
            importance_weighted_bound(model, data, **kwargs)
    with pytest.raises(ValueError, match=rf"shape \(n, {D}\)"):
        importance_weighted_bound(model, data[:, :3], num_samples=2)
    bernoulli = VAE(D, LATENT, (), seed=0)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        importance_weighted_bound(bernoulli, data, num_samples=2)


def test_conditional_bound_uses_the_labels():
    keras.utils.set_random_seed(1)
    model = VAE(6, 2, (5,), num_classes=3, seed=0)
    x = (np.random.default_rng(0).random((9, 6)) < 0.5).astype("float32")
    y = np.arange(9) % 3
    a = importance_weighted_bound(model, x, y=y, num_samples=20, batch_size=4)
    b = importance_weighted_bound(model, x, y=(y + 1) % 3, num_samples=20, batch_size=4)
    assert a.shape == (9,) and np.all(np.isfinite(a))
    assert not np.allclose(a, b)
    with pytest.raises(ValueError, match=r"labels in \[0, 3\)"):
        importance_weighted_bound(model, x, y=y + 3, num_samples=2)


# ----- posterior statistics --------------------------------------------------------------------
def test_posterior_means_and_log_vars_do_not_depend_on_the_batch_size(truth, data):
    model = linear_gaussian_vae(truth, perturb=PERTURB)
    whole = posterior_means_and_log_vars(model, data)
    pieces = posterior_means_and_log_vars(model, data, batch_size=5)
    for a, b in zip(whole, pieces, strict=True):
        assert a.shape == (len(data), LATENT) and a.dtype == np.float64
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)


def test_active_units_counts_the_units_the_encoder_uses():
    """Units whose mean ignores x (zero encoder columns) are inactive; the statistic is
    the variance over the data of E_q[z_u] = (x A + c)_u, checked in numpy."""
    d = 4
    model = VAE(D, d, (), likelihood="gaussian", seed=0)
    rng = np.random.default_rng(0)
    A = rng.normal(0.0, 1.0, (D, d))
    A[:, [1, 3]] = 0.0                               # units 1 and 3 ignore x ...
    A[:, 2] *= 0.02                                  # ... unit 2 barely uses it
    c = rng.normal(0.0, 1.0, d)                      # (nonzero means do not count)
    layer = model.encoder.layers[-1]
    layer.kernel.assign(np.concatenate([A, np.zeros((D, d))], axis=1).astype("float32"))
    layer.bias.assign(np.concatenate([c, np.full(d, -1.0)]).astype("float32"))
    x = rng.normal(0.0, 1.0, (300, D)).astype("float32")
    count, variances = active_units(model, x, batch_size=64)
    expected = (x.astype(np.float64) @ A + c).var(axis=0)
    np.testing.assert_allclose(variances, expected, rtol=1e-4, atol=1e-9)
    assert expected[2] < 0.01 < expected[0]
    assert count == 1
    np.testing.assert_array_equal(variances[[1, 3]], 0.0)
    assert active_units(model, x, threshold=1e-5)[0] == 2


def test_kl_per_unit_sums_to_the_mean_analytic_kl(truth, data):
    model = linear_gaussian_vae(truth, perturb=PERTURB, log_var_range=(-12.0, 8.0))
    per_unit = kl_per_unit(model, data, batch_size=7)
    assert per_unit.shape == (LATENT,) and np.all(per_unit > 0)
    A = np_of(model.encoder.layers[-1].kernel)
    c = np_of(model.encoder.layers[-1].bias)
    out = data.astype(np.float64) @ A + c
    mean, var = out[:, :LATENT], np.exp(out[:, LATENT:])
    # KL(N(m, v) || N(0, 1)) per unit from scipy's entropy and cross-entropy of Gaussians.
    entropy = stats.norm(mean, np.sqrt(var)).entropy()
    cross = 0.5 * np.log(2 * np.pi) + 0.5 * (mean**2 + var)
    expected = (cross - entropy).mean(axis=0)
    np.testing.assert_allclose(per_unit, expected, rtol=1e-5)
    terms = model.bound_terms(data, seed=0)
    assert per_unit.sum() == pytest.approx(float(np.mean(np_of(terms["kl"]))), rel=1e-5)
