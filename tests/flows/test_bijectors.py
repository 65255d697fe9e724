"""Every flow step against oracles that share no code with it: inverse(forward(z)) = z, and
its log-determinant against the determinant of the autodiff Jacobian
(``tf.GradientTape.batch_jacobian``), in float64 and at random weights (zero-initialised
output layers would make the couplings trivially the identity). The planar and radial maps
are also checked against their formulas written in numpy, and the planar constraint for
any parameters."""

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_probability as tfp

from course_lib.flows import (
    ActNorm,
    AffineCoupling,
    FlowModel,
    InvertibleLinear,
    MAFStep,
    Permutation,
    PlanarBijector,
    PlanarStep,
    RadialBijector,
    RadialStep,
    Scaling,
)
from course_lib.flows.bijectors import planar_u_hat

tfb, tfd = tfp.bijectors, tfp.distributions

F64 = dict(dtype="float64")
STEPS = {
    "planar": lambda d: PlanarStep(d, **F64),
    "radial": lambda d: RadialStep(d, **F64),
    "affine-coupling-0": lambda d: AffineCoupling(d, (8,), parity=0, **F64),
    "affine-coupling-1": lambda d: AffineCoupling(d, (8, 8), parity=1, activation="tanh",
                                                  **F64),
    "additive-coupling": lambda d: AffineCoupling(d, (8,), shift_only=True, **F64),
    "scaling": lambda d: Scaling(d, **F64),
    "act-norm": lambda d: ActNorm(d, **F64),
    "invertible-linear": lambda d: InvertibleLinear(d, seed=3, **F64),
    "permutation": lambda d: Permutation(d, order=[2, 0, 4, 1, 3], **F64),
    "maf": lambda d: MAFStep(d, (16,), **F64),
    "maf-reversed": lambda d: MAFStep(d, (16, 16), order="reversed", **F64),
    "iaf": lambda d: MAFStep(d, (16,), inverse=True, **F64),
}
DIM = 5


def randomize(step, seed=0, scale=0.5):
    """Random weights everywhere (keeps the structure: masks, permutations, signs)."""
    rng = np.random.default_rng(seed)
    for variable in step.trainable_variables:
        variable.assign(rng.normal(0.0, scale, variable.shape))
    return step


def points(n=7, dim=DIM, seed=1):
    return tf.constant(np.random.default_rng(seed).normal(0, 1.5, (n, dim)), tf.float64)


def autodiff_log_det(bijector, z):
    """sign and log |det| of dx/dz, from the autodiff Jacobian. A fresh copy of z: TFP caches
    forward results by tensor, and a cached x would not be on the tape."""
    z = tf.identity(z)
    with tf.GradientTape() as tape:
        tape.watch(z)
        x = bijector.forward(z)
    jacobian = tape.batch_jacobian(x, z).numpy()
    return np.linalg.slogdet(jacobian)


@pytest.mark.parametrize("name", sorted(STEPS))
def test_inverse_undoes_forward_and_log_det_matches_autodiff(name):
    step = randomize(STEPS[name](DIM))
    bijector = step.bijector()
    z = points()
    x = bijector.forward(z)
    assert not np.allclose(x.numpy(), z.numpy())  # a real map, not the identity
    np.testing.assert_allclose(bijector.inverse(x).numpy(), z.numpy(), atol=1e-9)
    sign, log_abs = autodiff_log_det(bijector, z)
    assert (sign != 0).all()
    np.testing.assert_allclose(bijector.forward_log_det_jacobian(z, event_ndims=1).numpy(),
                               log_abs, atol=1e-9)
    np.testing.assert_allclose(bijector.inverse_log_det_jacobian(x, event_ndims=1).numpy(),
                               -log_abs, atol=1e-9)


def numpy_planar(z, u, w, b):
    wu = w @ u
    u_hat = u + (-1 + max(np.log1p(np.exp(wu)), 1e-3) - wu) * w / (w @ w)
    a = z @ w + b
    x = z + np.tanh(a)[:, None] * u_hat
    log_det = np.log(np.abs(1 + (1 - np.tanh(a) ** 2) * (w @ u_hat)))
    return x, log_det, u_hat


def numpy_radial(z, center, alpha_raw, beta_raw):
    alpha = np.log1p(np.exp(alpha_raw))
    beta = -alpha + np.log1p(np.exp(beta_raw))
    r = np.linalg.norm(z - center, axis=1)
    h = 1 / (alpha + r)
    x = z + (beta * h)[:, None] * (z - center)
    d = z.shape[1]
    log_det = (d - 1) * np.log(1 + beta * h) + np.log(1 + beta * h - beta * r / (alpha + r) ** 2)
    return x, log_det


def test_planar_and_radial_match_the_paper_formulas_in_numpy():
    rng = np.random.default_rng(4)
    z = rng.normal(size=(9, 3))
    u, w, b = rng.normal(size=3), rng.normal(size=3), 0.3
    x, log_det, u_hat = numpy_planar(z, u, w, b)
    planar = PlanarBijector(tf.constant(u), tf.constant(w), tf.constant(b, tf.float64))
    np.testing.assert_allclose(planar.forward(z).numpy(), x, rtol=1e-12)
    np.testing.assert_allclose(planar.forward_log_det_jacobian(z, 1).numpy(), log_det,
                               rtol=1e-12)
    np.testing.assert_allclose(planar.u_hat.numpy(), u_hat, rtol=1e-12)
    center = rng.normal(size=3)
    x, log_det = numpy_radial(z, center, -0.4, 0.8)
    radial = RadialBijector(tf.constant(center), tf.constant(-0.4, tf.float64),
                            tf.constant(0.8, tf.float64))
    np.testing.assert_allclose(radial.forward(z).numpy(), x, rtol=1e-12)
    np.testing.assert_allclose(radial.forward_log_det_jacobian(z, 1).numpy(), log_det,
                               rtol=1e-12)


@pytest.mark.parametrize("seed", range(20))
def test_the_planar_constraint_holds_for_any_parameters(seed):
    """w^T u_hat > -1 whatever u and w are (here often adversarial: u pointing against w,
    huge or tiny), so the map stays invertible: its Jacobian determinant is positive
    everywhere, and the inverse (bisection) undoes it."""
    rng = np.random.default_rng(seed)
    w = rng.normal(size=2) * 10.0 ** rng.uniform(-2, 2)
    u = rng.normal(size=2) * 10.0 ** rng.uniform(-2, 2)
    if seed % 2 == 0:    # w^T u = -c < -1: the unconstrained flow would not be invertible
        u += -(rng.uniform(1.5, 50) + w @ u) * w / (w @ w)
        assert w @ u < -1
    u_hat = planar_u_hat(tf.constant(u), tf.constant(w)).numpy()
    assert w @ u_hat >= -1 + 1e-3 - 1e-9
    planar = PlanarBijector(tf.constant(u), tf.constant(w), tf.constant(rng.normal(), tf.float64))
    z = tf.constant(rng.normal(0, 3, (50, 2)))
    sign, _ = autodiff_log_det(planar, z)
    assert (sign > 0).all()
    np.testing.assert_allclose(planar.inverse(planar.forward(z)).numpy(), z.numpy(),
                               atol=1e-8)


def test_invertible_linear_starts_at_a_rotation_and_act_norm_standardizes():
    step = InvertibleLinear(4, seed=1, **F64)
    matrix = step.bijector().forward(tf.eye(4, dtype=tf.float64)).numpy().T
    np.testing.assert_allclose(matrix @ matrix.T, np.eye(4), atol=1e-12)   # orthogonal W
    log_det = step.bijector().forward_log_det_jacobian(tf.zeros((1, 4), tf.float64), 1)
    assert np.abs(log_det.numpy()).max() < 1e-12                           # |det W| = 1
    norm = ActNorm(3, **F64)
    x = np.random.default_rng(0).normal([1.0, -2.0, 5.0], [0.1, 3.0, 2.0], (500, 3))
    norm.initialize(x)
    z = norm.bijector().inverse(tf.constant(x)).numpy()
    np.testing.assert_allclose(z.mean(axis=0), 0.0, atol=1e-12)
    np.testing.assert_allclose(z.std(axis=0), 1.0, atol=1e-12)
    assert float(norm.initialized.numpy()) == 1.0


@pytest.mark.parametrize("parity", [0, 1])
@pytest.mark.parametrize("shift_only", [False, True])
def test_the_coupling_bijector_is_tfp_real_nvp(parity, shift_only):
    """The course's coupling computes tfb.RealNVP's map (the oracle: TFP's own code) with the
    same network, in both directions and for the log-determinant."""
    step = randomize(AffineCoupling(DIM, (8,), parity=parity, shift_only=shift_only, **F64))
    num_masked = len(step.conditioning) if parity == 0 else -len(step.conditioning)
    oracle = tfb.RealNVP(num_masked=num_masked,
                         shift_and_log_scale_fn=lambda x_1, _: step.shift_and_log_scale(x_1))
    z = points()
    ours = step.bijector()
    np.testing.assert_allclose(ours.forward(z).numpy(), oracle.forward(z).numpy(), rtol=1e-12)
    x = oracle.forward(z)
    np.testing.assert_allclose(ours.inverse(x).numpy(), oracle.inverse(x).numpy(), rtol=1e-12)
    np.testing.assert_allclose(ours.inverse_log_det_jacobian(x, 1).numpy(),
                               oracle.inverse_log_det_jacobian(x, 1).numpy(), atol=1e-12)


@pytest.mark.parametrize("name", ["affine-coupling-0", "maf"])
def test_a_density_evaluation_runs_the_network_once(name):
    """FlowModel.log_prob needs each step's inverse and its log-determinant; both come from
    one network pass (TFP's own RealNVP, or its TransformedDistribution, would run it twice,
    doubling the cost of maximum likelihood)."""
    step = randomize(STEPS[name](DIM))
    calls = []
    network = step.network if hasattr(step, "network") else step.made
    original = network.call
    network.call = lambda *args, **kwargs: (calls.append(1), original(*args, **kwargs))[1]
    flow = FlowModel([step])
    with tf.GradientTape() as tape:
        log_p = tf.reduce_sum(flow.log_prob(points()))
    assert len(calls) == 1, len(calls)
    assert all(g is not None for g in tape.gradient(log_p, step.trainable_variables))
