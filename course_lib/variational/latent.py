"""Gaussian latent variables and decoder likelihoods: the math of Chapter 4, as functions.

Kingma & Welling (2014), Auto-Encoding Variational Bayes; Burda, Grosse & Salakhutdinov
(2016), Importance Weighted Autoencoders; Loaiza-Ganem & Cunningham (2019), The continuous
Bernoulli. Equations numbered as in ``notebooks/04_vae.ipynb``:

* (4.3) reparameterization: ``z = mu + exp(log_var / 2) * eps`` with ``eps ~ N(0, I)``
  (:func:`reparameterize`);
* (4.4) closed-form KL(N(mu, diag sigma^2) || N(0, I))
  ``= 1/2 sum_j (mu_j^2 + sigma_j^2 - log sigma_j^2 - 1)`` (:func:`gaussian_kl`);
* (4.5) decoder log-likelihoods log p(x | z): Bernoulli, continuous Bernoulli and Gaussian
  (:func:`bernoulli_log_prob`, :func:`continuous_bernoulli_log_prob`,
  :func:`gaussian_log_prob`);
* (4.7) ``log_mean_exp`` for the importance-weighted bound;
* (4.2) the two gradient estimators of d/dmu E_{z ~ N(mu, sigma^2)}[f(z)]: score function
  ``f(z) (z - mu) / sigma^2`` and reparameterized ``f'(mu + sigma eps)``
  (:func:`score_function_gradients`, :func:`reparameterized_gradients`).

Every function works on the last axis of its inputs and sums over it (one value per row).
Used by ``course_lib.variational.vae``, ``course_lib.evaluation.variational`` and notebook 04.

TensorFlow Probability provides the same math (``tfd.Normal``, ``tfd.MultivariateNormalDiag``,
``tfd.Bernoulli``, ``tfd.ContinuousBernoulli``, ``tfd.kl_divergence``). The log-densities
(:func:`log_normal`, :func:`log_standard_normal`, :func:`bernoulli_log_prob`,
:func:`continuous_bernoulli_log_prob`) and the KL (:func:`gaussian_kl`) are kept
hand-written because they are the chapter's lesson: each is Eq. (4.4) or (4.5) as one line of
``keras.ops`` that reads like the equation (notebook 04 sets the closed-form KL beside TFP's
and a Monte Carlo estimate, and shows ``VAE.bound_terms``, which calls them); they also run
under XLA and broadcast (n, d) parameters against (k, n, d) draws as the bounds need. Each
is tested against the TFP distribution in ``tests/variational/test_latent.py``.
"""

from __future__ import annotations

import math

import tensorflow as tf
from keras import ops

from course_lib import sampling
from course_lib.checks import ArgumentTypeError, check_finite_float, check_positive_int, describe

LOG_2PI = math.log(2.0 * math.pi)


def reparameterize(mean, log_var, seed, num_samples=None):
    """Eq. (4.3): ``z = mean + exp(log_var / 2) * eps``, ``eps ~ N(0, I)``.

    Args:
        mean, log_var: (n, d) tensors.
        seed: a ``SeedGenerator``, an int, or a stateless ``(2,)`` seed (see ``sampling``).
        num_samples: None for one draw per row, shape (n, d); an int k for k draws,
            shape (k, n, d).
    """
    if num_samples is not None:
        num_samples = check_positive_int(num_samples, "num_samples")
    shape = ops.shape(mean) if num_samples is None else (num_samples, *ops.shape(mean))
    eps = sampling.normal(shape, seed, dtype=mean.dtype)
    return mean + ops.exp(0.5 * log_var) * eps


def gaussian_kl(mean, log_var):
    """Eq. (4.4): KL(N(mean, diag exp(log_var)) || N(0, I)), summed over the last axis."""
    return 0.5 * ops.sum(ops.square(mean) + ops.exp(log_var) - log_var - 1.0, axis=-1)


def log_normal(x, mean, log_var):
    """log N(x; mean, diag exp(log_var)), summed over the last axis (broadcasts)."""
    return -0.5 * ops.sum(LOG_2PI + log_var + ops.square(x - mean) * ops.exp(-log_var),
                          axis=-1)


def log_standard_normal(z):
    """log N(z; 0, I), summed over the last axis."""
    return -0.5 * ops.sum(LOG_2PI + ops.square(z), axis=-1)


def bernoulli_log_prob(x, logits):
    """Eq. (4.5a): sum_i x_i log p_i + (1 - x_i) log(1 - p_i), with p = sigmoid(logits).

    Written as ``x * logits - softplus(logits)``, which never takes the log of 0.
    """
    return ops.sum(x * logits - ops.softplus(logits), axis=-1)


def continuous_bernoulli_log_norm(logits):
    """log C(lambda) of the continuous Bernoulli with lambda = sigmoid(logits).

    C(lambda) = 2 atanh(1 - 2 lambda) / (1 - 2 lambda), which in terms of the logit eta is
    ``eta / tanh(eta / 2)``: an even function equal to 2 at eta = 0. Near 0 the
    series ``log 2 + eta^2 / 12`` is used instead of the 0/0 ratio.
    """
    eta = ops.abs(logits)
    small = eta < 1e-3
    safe = ops.where(small, ops.ones_like(eta), eta)
    exact = ops.log(safe) - ops.log(ops.tanh(0.5 * safe))
    return ops.where(small, math.log(2.0) + ops.square(eta) / 12.0, exact)


def continuous_bernoulli_log_prob(x, logits):
    """Eq. (4.5b): the Bernoulli formula plus log C(lambda), a proper density on [0, 1]^D."""
    return bernoulli_log_prob(x, logits) + ops.sum(continuous_bernoulli_log_norm(logits),
                                                   axis=-1)


def continuous_bernoulli_mean(logits):
    """E[x] of the continuous Bernoulli: lambda / (2 lambda - 1) + 1 / (2 atanh(1 - 2 lambda)).

    In terms of eta: ``1 / (1 - exp(-eta)) - 1 / eta``, equal to 1/2 at eta = 0. This, not
    sigmoid(eta), is the image a continuous-Bernoulli decoder expects. For |eta| < 0.3 the
    difference cancels badly in float32, so the series ``1/2 + eta/12 - eta^3/720 +
    eta^5/30240`` is used there (error below 4e-7).
    """
    small = ops.abs(logits) < 0.3
    safe = ops.where(small, ops.ones_like(logits), logits)
    exact = 1.0 / (-ops.expm1(-safe)) - 1.0 / safe
    e2 = ops.square(logits)
    series = 0.5 + logits * (1.0 / 12.0 - e2 * (1.0 / 720.0 - e2 / 30240.0))
    return ops.where(small, series, exact)


def gaussian_log_prob(x, mean, log_var):
    """Eq. (4.5c): log N(x; mean, diag exp(log_var)), a density on R^D (same as
    :func:`log_normal`; named for its role as a decoder)."""
    return log_normal(x, mean, log_var)


def log_mean_exp(a, axis=0):
    """log(mean(exp(a), axis)) computed stably (Eq. 4.7's estimator of log p(x))."""
    n = ops.cast(ops.shape(a)[axis], a.dtype)
    return ops.logsumexp(a, axis=axis) - ops.log(n)


def _estimator_arguments(f, mean, std, num_samples):
    """Validates the arguments shared by the two gradient estimators of Eq. (4.2)."""
    if not callable(f):
        raise ArgumentTypeError(f"f must be a function of a float tensor; got {describe(f)}.")
    return (check_finite_float(mean, "mean"), check_finite_float(std, "std", above=0.0),
            check_positive_int(num_samples, "num_samples"))


def _per_sample_derivative(f, z):
    with tf.GradientTape() as tape:
        tape.watch(z)
        values = f(z)
    return tape.gradient(values, z)


def score_function_gradients(f, mean, std, num_samples, seed):
    """Eq. (4.2a): per-sample estimates ``f(z) (z - mean) / std^2`` of d/d mean E[f(z)].

    Args:
        f: elementwise function of a float tensor (e.g. ``lambda z: (z - 3) ** 2``).
        mean, std: Python floats, the Gaussian's parameters.
        num_samples: number of independent estimates.
        seed: int, ``SeedGenerator`` or stateless seed.

    Returns:
        (num_samples,) tensor; its mean estimates the gradient and its variance is the
        estimator's variance for one sample.
    """
    mean, std, num_samples = _estimator_arguments(f, mean, std, num_samples)
    z = mean + std * sampling.normal((num_samples,), seed)
    return f(z) * (z - mean) / std**2


def reparameterized_gradients(f, mean, std, num_samples, seed):
    """Eq. (4.2b): per-sample estimates ``f'(mean + std * eps)``, by automatic
    differentiation of ``f``. Arguments and result as :func:`score_function_gradients`."""
    mean, std, num_samples = _estimator_arguments(f, mean, std, num_samples)
    z = mean + std * sampling.normal((num_samples,), seed)
    return _per_sample_derivative(f, z)
