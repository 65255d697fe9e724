"""Langevin dynamics, Eq. (7.13), against what it must do on energies with known answers.

- On E = ||x||^2 / (2 s^2) the unadjusted chain x' = (1 - a) x + c xi, a = eps / s^2, is an
  AR(1) process: its stationary variance is c^2 / (a (2 - a)), which for the Langevin noise
  c = sqrt(2 eps) is s^2 / (1 - eps / (2 s^2)). Many parallel chains measure it.
- ``energy_gradient`` against a hand-derived gradient, in float64.
- ``clip``, ``noise_scale=0`` (plain gradient descent, a closed form), seeds, refusals.
"""

import numpy as np
import pytest
import tensorflow as tf
from refusals import BAD_NONNEGATIVE, BAD_POSITIVE, BAD_STEPS, assert_refused, expand

from course_lib import langevin, sampling


def gaussian_energy(s):
    """E(x) = ||x||^2 / (2 s^2), one energy per row, shape (n,)."""
    return lambda x: tf.reduce_sum(tf.square(x), axis=1) / (2.0 * s**2)


# ----- the stationary distribution on a Gaussian energy ---------------------------------------
@pytest.mark.parametrize("noise_scale", [None, 0.3])
def test_the_chain_on_a_gaussian_energy_has_the_exact_ula_variance(noise_scale):
    """s = 0.8, eps = 0.32: a = eps / s^2 = 0.5, so the chain contracts the variance by
    (1 - a)^2 = 1/4 per step and 40 steps from x0 = 0 forget the start (4^-40). The
    stationary variance c^2 / (a (2 - a)) is 0.8533 for c = sqrt(2 eps) (the continuous-time
    answer s^2 = 0.64 is 25 % lower; the wrong noise sqrt(eps) gives half, 0.4267; a
    wrong gradient sign makes |1 + a| > 1 and the chain diverges) and 0.12 for c = 0.3.

    4,000 chains x 5 independent coordinates = 20,000 Gaussian draws: the sample variance
    has a relative standard error sqrt(2 / 20,000) = 1 %, so 4 % is a 4-sigma bar; the
    sample mean has standard error sqrt(v / 20,000), and the bar is 4 of those."""
    s, eps = 0.8, 0.32
    a = eps / s**2
    c = np.sqrt(2 * eps) if noise_scale is None else noise_scale
    exact = c**2 / (a * (2 - a))
    if noise_scale is None:
        assert exact == pytest.approx(s**2 / (1 - eps / (2 * s**2)))
    x = langevin.langevin_chain(gaussian_energy(s), np.zeros((4000, 5), "float32"), 40,
                                step_size=eps, noise_scale=noise_scale, seed=0).numpy()
    assert x.dtype == np.float32 and x.shape == (4000, 5)
    assert np.var(x) == pytest.approx(exact, rel=0.04), (np.var(x), exact)
    assert abs(np.mean(x)) < 4 * np.sqrt(exact / x.size)
    # each coordinate separately too: no coordinate left behind or double-stepped
    np.testing.assert_allclose(np.var(x, axis=0), exact, rtol=0.09)


def test_the_chain_runs_in_float64():
    x0 = np.zeros((2000, 2), np.float64)
    x = langevin.langevin_chain(gaussian_energy(1.0), x0, 30, step_size=0.5, seed=1)
    assert x.dtype == tf.float64
    # exact: 1 / (1 - 0.25) = 4/3; 4,000 draws, relative standard error 2.2 %
    assert np.var(x.numpy()) == pytest.approx(4 / 3, rel=0.1)


# ----- the gradient ---------------------------------------------------------------------------
def test_energy_gradient_matches_the_analytic_gradient():
    """E(x) = sum_j log cosh((x A)_j + c_j) + ||x||^4 / 4 has
    grad E = A tanh(x A + c) + ||x||^2 x; float64, so only rounding separates them. The
    energy returns (n, 1) here and (n,) below: both shapes are accepted."""
    rng = np.random.default_rng(0)
    A, c = rng.normal(size=(3, 4)), rng.normal(size=4)
    x = rng.normal(size=(7, 3))

    def energy(v):
        pre = tf.matmul(v, A) + c
        return (tf.reduce_sum(tf.math.log(tf.cosh(pre)), axis=1, keepdims=True)
                + 0.25 * tf.reduce_sum(v**2, axis=1, keepdims=True) ** 2)

    expected = np.tanh(x @ A + c) @ A.T + np.sum(x**2, axis=1, keepdims=True) * x
    got = langevin.energy_gradient(energy, x)
    assert got.dtype == tf.float64
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-12, atol=1e-12)
    flat = langevin.energy_gradient(lambda v: tf.squeeze(energy(v), 1), x.astype("float32"))
    assert flat.dtype == tf.float32
    np.testing.assert_allclose(flat.numpy(), expected, rtol=1e-4, atol=1e-5)


def test_without_noise_the_chain_is_gradient_descent_to_the_minimum():
    """E = ||x - mu||^2 / 2, noise_scale = 0: x_t = mu + (1 - eps)^t (x0 - mu) exactly."""
    mu = np.array([1.0, -2.0, 0.5])
    x0 = np.random.default_rng(1).normal(size=(6, 3)) * 3
    energy = lambda v: 0.5 * tf.reduce_sum((v - mu) ** 2, axis=1)    # noqa: E731
    for steps in (0, 1, 7):
        x = langevin.langevin_chain(energy, x0, steps, step_size=0.1, noise_scale=0.0,
                                    seed=0).numpy()
        np.testing.assert_allclose(x, mu + 0.9**steps * (x0 - mu), rtol=1e-12, atol=1e-12)
    x = langevin.langevin_chain(energy, x0, 300, step_size=0.1, noise_scale=0.0, seed=0)
    np.testing.assert_allclose(x.numpy(), np.broadcast_to(mu, x0.shape), atol=1e-10)


def test_clip_keeps_every_chain_inside():
    """A linear energy pulls every coordinate towards +inf and the noise is large, so both
    bounds are reached; no value may leave [low, high]."""
    energy = lambda v: -3.0 * tf.reduce_sum(v, axis=1)    # noqa: E731
    x = langevin.langevin_chain(energy, np.zeros((500, 4), "float32"), 25, step_size=0.05,
                                noise_scale=2.0, clip=(-1.0, 0.5), seed=2).numpy()
    assert x.min() >= -1.0 and x.max() <= 0.5
    assert (x == 0.5).mean() > 0.2 and (x == -1.0).any()


def test_the_same_seed_gives_the_same_chain():
    energy, x0 = gaussian_energy(1.0), np.ones((50, 2), "float32")
    run = lambda seed: langevin.langevin_chain(energy, x0, 5, step_size=0.1,    # noqa: E731
                                               seed=seed).numpy()
    np.testing.assert_array_equal(run(3), run(3))
    np.testing.assert_array_equal(run(3), run(sampling.as_stateless_seed(3)))
    assert not np.array_equal(run(3), run(4))


def test_the_chain_carries_no_gradient_to_the_energy_weights():
    weight = tf.Variable(2.0)
    energy = lambda v: weight * tf.reduce_sum(v**2, axis=1)    # noqa: E731
    with tf.GradientTape() as tape:
        x = langevin.langevin_chain(energy, np.ones((4, 2), "float32"), 3, step_size=0.1,
                                    seed=0)
        total = tf.reduce_sum(x)
    assert tape.gradient(total, weight) is None


# ----- refusals -------------------------------------------------------------------------------
def chain(**kwargs):
    arguments = dict(energy=gaussian_energy(1.0), x0=np.zeros((2, 2), "float32"), num_steps=2,
                     step_size=0.1, seed=0)
    return langevin.langevin_chain(**{**arguments, **kwargs})


CASES = [
    ("step_size", lambda v: chain(step_size=v), "step_size", BAD_POSITIVE),
    ("noise_scale", lambda v: chain(noise_scale=v), "noise_scale",
     [case for case in BAD_NONNEGATIVE if case[0] is not None]),     # None: the default
    ("clip", lambda v: chain(clip=v), "clip",
     [((1.0, 0.0), ValueError), ((0.0, np.inf), ValueError), ((0.0,), ValueError),
      ("ab", ValueError), (("a", "b"), TypeError)]),
    ("num_steps", lambda v: chain(num_steps=v), "num_steps", BAD_STEPS),
    ("seed", lambda v: chain(seed=v), "seed",
     [("x", TypeError), (-1, ValueError), (1.5, TypeError), (True, TypeError)]),
]


@pytest.mark.parametrize("call, name, value, error", expand(CASES))
def test_bad_arguments_are_refused(call, name, value, error):
    assert_refused(lambda: call(value), name, value, error)
