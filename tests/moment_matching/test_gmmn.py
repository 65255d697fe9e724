"""The GMMN of Chapter 7 against oracles that cannot share its bugs.

- Eq. (7.6): one SGD step moves the generator by -lr grad sqrt(MMD^2) (or grad MMD^2 with
  ``square_root=False``), the gradient taken by autodiff of a broadcasting MMD written here,
  for the same noise z (the seed generator's state is replayed); the logged ``mmd2`` is
  ``kernels.mmd2(G(z), x)``.
- A few hundred steps fit a correlated 2-D Gaussian: held-out MMD^2 falls a hundredfold and
  the samples' mean and covariance approach the data's.
- The priors, every weight tracked and trained, save / load, XLA, refusals.
"""


import keras
import numpy as np
import pytest
import tensorflow as tf
from model_checks import saved_and_loaded
from refusals import BAD_COUNTS, assert_refused, expand

from course_lib import kernels
from course_lib.checks import DataError
from course_lib.moment_matching import GMMN, gmmn_generator

# 3.0 / 0.5 = 6 takes the library's power trick, 3.0 / 2.0 its own exponential.
BANDWIDTHS = (0.5, 2.0, 3.0)


def small_gmmn(seed=0, **kwargs):
    keras.utils.set_random_seed(seed)
    kwargs = {"bandwidths": BANDWIDTHS, "seed": seed, **kwargs}
    return GMMN(gmmn_generator(3, (16,), 2, output_activation=None), latent_dim=3, **kwargs)


def gaussian_data(n, seed=0):
    """A correlated 2-D Gaussian, mean (1, -0.5), covariance [[1, 0.6], [0.6, 0.5]]."""
    chol = np.linalg.cholesky(np.array([[1.0, 0.6], [0.6, 0.5]]))
    z = np.random.default_rng(seed).normal(size=(n, 2))
    return (z @ chol.T + [1.0, -0.5]).astype("float32")


def weights(variables):
    return [v.numpy().copy() for v in variables]


def mmd2_by_broadcasting(a, b, bandwidths):
    """Eq. (7.2) in plain tf ops (differences by broadcasting), for autodiff on its own."""
    def mean_kernel(u, v):
        squared = tf.reduce_sum(tf.square(u[:, None, :] - v[None, :, :]), axis=-1)
        return tf.reduce_mean(tf.add_n([tf.exp(-squared / (2.0 * s)) for s in bandwidths]))
    return mean_kernel(a, a) + mean_kernel(b, b) - 2.0 * mean_kernel(a, b)


# ----- the loss of one step -------------------------------------------------------------------
@pytest.mark.parametrize("square_root", [True, False])
def test_one_sgd_step_descends_the_paper_loss_for_the_same_noise(square_root):
    """The update of one train_step is -lr times the gradient of sqrt(MMD^2) (MMD^2 itself
    with square_root=False) at the old weights, for the z that the step drew; the two
    differ by the factor 1 / (2 MMD), far from 1 here, so mixing them up fails."""
    lr = 0.1
    model = small_gmmn(square_root=square_root)
    model.compile(optimizer=keras.optimizers.SGD(lr))
    model.optimizer.build(model.trainable_variables)
    x = gaussian_data(32)
    variables = model.generator.trainable_variables
    state, before = model.seed_generator.state.numpy(), weights(variables)
    logs = model.train_step(tf.constant(x))
    after = weights(variables)
    # replay: the same z, the old weights
    model.seed_generator.state.assign(state)
    z = model.sample_latent(32)
    for variable, value in zip(variables, before, strict=True):
        variable.assign(value)
    with tf.GradientTape() as tape:
        samples = model.generator(z, training=True)
        mmd2 = mmd2_by_broadcasting(samples, tf.constant(x), BANDWIDTHS)
        loss = tf.sqrt(mmd2) if square_root else mmd2
    grads = tape.gradient(loss, variables)
    np.testing.assert_allclose(float(logs["mmd2"]), float(mmd2), rtol=1e-4)
    np.testing.assert_allclose(float(logs["mmd2"]),
                               float(kernels.mmd2(samples, x, BANDWIDTHS)), rtol=1e-5)
    assert abs(np.log(2 * np.sqrt(float(mmd2)))) > 0.3      # the two losses' steps differ
    for start, end, grad, variable in zip(before, after, grads, variables, strict=True):
        np.testing.assert_allclose(end - start, -lr * grad.numpy(), rtol=1e-3, atol=1e-7,
                                   err_msg=variable.path)


# ----- fitting a known distribution -----------------------------------------------------------
def test_a_few_hundred_steps_fit_a_2d_gaussian():
    """300 Adam steps on batches of 200. Held-out MMD^2 (2,000 samples against 2,000 unseen
    data) starts near 1.4 and ends near 0.005; a 50-fold fall is asked for, and a value within
    a few times of two data samples' own biased MMD^2 (about 0.002, the estimator's floor).
    The first two moments of the samples then match the data's to 0.15."""
    model = small_gmmn(prior="normal")
    x = gaussian_data(6000)
    train, test = x[:4000], x[4000:]

    def held_out():
        return float(kernels.mmd2(model.sample(2000, seed=5), test, BANDWIDTHS))

    floor = float(kernels.mmd2(train[:2000], test, BANDWIDTHS))
    start = held_out()
    model.compile(optimizer=keras.optimizers.Adam(5e-3))
    history = model.fit(train, batch_size=200, epochs=15, verbose=0).history
    end = held_out()
    assert end < start / 50 and end < 5 * floor, (start, end, floor)
    assert history["mmd2"][-1] < history["mmd2"][0] / 10
    samples = model.sample(4000, seed=6)
    np.testing.assert_allclose(samples.mean(0), [1.0, -0.5], atol=0.15)
    np.testing.assert_allclose(np.cov(samples.T), [[1.0, 0.6], [0.6, 0.5]], atol=0.15)


# ----- the prior and the weights --------------------------------------------------------------
def test_the_uniform_prior_lies_in_the_unit_box_and_the_normal_one_does_not():
    """40,000 draws: uniform on [-1, 1] has variance 1/3; N(0, 1) passes |z| = 3 with
    probability 0.0027, about 108 times here."""
    uniform = small_gmmn().sample_latent(20000, seed=0).numpy()
    assert uniform.shape == (20000, 3)
    assert uniform.min() >= -1.0 and uniform.max() <= 1.0
    assert np.var(uniform) == pytest.approx(1 / 3, rel=0.03)
    assert abs(uniform.mean()) < 0.02
    normal = small_gmmn(prior="normal").sample_latent(20000, seed=0).numpy()
    assert np.abs(normal).max() > 3.0
    assert np.var(normal) == pytest.approx(1.0, rel=0.03)
    assert small_gmmn().prior == "uniform"     # the paper's default


def test_every_generator_weight_is_tracked_and_trained():
    model = small_gmmn()
    generator_ids = {id(v) for v in model.generator.trainable_variables}
    assert len(generator_ids) == 4
    assert {id(v) for v in model.trainable_variables} == generator_ids
    before = weights(model.trainable_variables)
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    model.fit(gaussian_data(64), batch_size=16, epochs=1, verbose=0)
    for start, variable in zip(before, model.trainable_variables, strict=True):
        assert not np.array_equal(start, variable.numpy()), variable.path


def test_fit_with_xla_trains_and_samples():
    model = small_gmmn()
    model.compile(optimizer=keras.optimizers.Adam(1e-2), jit_compile=True)
    before = weights(model.trainable_variables)
    history = model.fit(gaussian_data(64), batch_size=16, epochs=2, verbose=0,
                        validation_data=(gaussian_data(16, seed=1),)).history
    assert model.jit_compile is True
    assert all(np.isfinite(v).all() for v in history.values()) and "val_mmd2" in history
    assert all(not np.array_equal(a, v.numpy())
               for a, v in zip(before, model.trainable_variables, strict=True))
    np.testing.assert_array_equal(model.sample(10, seed=1), model.sample(10, seed=1))
    assert not np.array_equal(model.sample(10, seed=1), model.sample(10, seed=2))


# ----- saving ---------------------------------------------------------------------------------
def test_save_and_load_give_the_same_samples_config_and_resumed_training(tmp_path):
    """A model saved mid-run and trained on must end where an uninterrupted run ends: the
    optimizer's state and the seed generator's state travel with the weights."""
    x = gaussian_data(64)
    straight = small_gmmn(data_range=(-6.0, 6.0))
    straight.compile(optimizer=keras.optimizers.Adam(1e-2), steps_per_execution=1)
    straight.fit(x, batch_size=16, epochs=3, shuffle=False, verbose=0)
    first = small_gmmn(data_range=(-6.0, 6.0))
    first.compile(optimizer=keras.optimizers.Adam(1e-2), steps_per_execution=1)
    first.fit(x, batch_size=16, epochs=2, shuffle=False, verbose=0)
    loaded = saved_and_loaded(first, tmp_path / "gmmn.keras", GMMN)
    assert loaded.bandwidths == BANDWIDTHS and loaded.data_range == (-6.0, 6.0)
    np.testing.assert_array_equal(loaded.sample(10, seed=3), first.sample(10, seed=3))
    loaded.fit(x, batch_size=16, epochs=1, shuffle=False, verbose=0)
    for a, b in zip(straight.weights, loaded.weights, strict=True):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-5, atol=1e-6, err_msg=a.path)


# ----- refusals -------------------------------------------------------------------------------
def generator():
    return gmmn_generator(3, (4,), 2, output_activation=None)


CASES = [
    ("latent_dim", lambda v: GMMN(generator(), latent_dim=v), "latent_dim", BAD_COUNTS),
    ("bandwidths", lambda v: GMMN(generator(), latent_dim=3, bandwidths=v), "bandwidths",
     [([], ValueError), ([-1.0], ValueError), ([1.0, 0.0], ValueError), ("a", ValueError),
      (None, ValueError), ([float("nan")], ValueError)]),
    ("prior", lambda v: GMMN(generator(), latent_dim=3, prior=v), "prior",
     [("gaussian", ValueError), (None, ValueError), (1, ValueError)]),
    ("square_root", lambda v: GMMN(generator(), latent_dim=3, square_root=v), "square_root",
     [("yes", TypeError), (1, TypeError)]),
    ("seed", lambda v: GMMN(generator(), latent_dim=3, seed=v), "seed",
     [(-1, ValueError), (1.5, TypeError), ("3", TypeError)]),
    ("generator-width", lambda v: gmmn_generator(3, (4,), v), "output_dim", BAD_COUNTS),
]


@pytest.mark.parametrize("call, name, value, error", expand(CASES))
def test_bad_arguments_are_refused(call, name, value, error):
    assert_refused(lambda: call(value), name, value, error)


def test_bad_networks_and_data_are_refused_with_what_was_expected():
    with pytest.raises(TypeError, match="generator must be a keras.Model"):
        GMMN(lambda z: z, latent_dim=3)
    with pytest.raises(ValueError, match=r"does not take \(n, latent_dim=5\)"):
        GMMN(generator(), latent_dim=5)
    with pytest.raises(ValueError, match="data_range must be a pair"):
        GMMN(generator(), latent_dim=3, data_range=(0.0,))
    with pytest.raises(ValueError, match=r"data_range\[1\] must be a finite number > 1; got 0"):
        GMMN(generator(), latent_dim=3, data_range=(1.0, 0.0))
    model = small_gmmn(data_range=(0.0, 1.0))
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    with pytest.raises(DataError, match=r"data_range \[0, 1\]"):
        model.fit(gaussian_data(8), verbose=0)
    with pytest.raises(DataError, match="2 columns"):
        model.fit(np.zeros((8, 3), "float32"), verbose=0)
    with pytest.raises(DataError, match="finite"):
        model.fit(np.full((8, 2), np.nan, "float32"), verbose=0)
