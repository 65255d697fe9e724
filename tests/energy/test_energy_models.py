"""The energy models of Chapter 7 against oracles that cannot share their bugs.

- Kim & Bengio's entropy estimate against the Gaussian entropy formula in NumPy, and on
  z ~ N(0, I) through a Dense layer of known weights and a BatchNormalization of known
  scales against the exact entropies of the normalized units it reads.
- Eq. (7.10): the gradient of ``energy_loss`` is the data term minus the model term,
  against one GradientTape per sample.
- Each player's step moves only that player; without the entropy term the generator
  collapses onto the energy's minimum, with it it reaches the KL optimum.
- ``LangevinEBM``: a step rewrites only the buffer rows it drew; samples stay in range.
- ``ExpertsEnergy`` against a NumPy forward pass, its config, and exp(-E) integrable.
- Save / load, XLA and mixed precision for both models, as ``tests/adversarial/test_gan.py``
  does for the GAN (two-player models are not in ``tests/training``), and refusals.
"""

import math

import keras
import numpy as np
import pytest
import tensorflow as tf
from model_checks import assert_mixed_precision_step_matches_float32, saved_and_loaded
from refusals import BAD_COUNTS, BAD_POSITIVE, assert_refused, expand

from course_lib import sampling
from course_lib.checks import DataError
from course_lib.energy import (
    DeepEnergyModel,
    ExpertsEnergy,
    LangevinEBM,
    batch_norm_entropy,
    energy_network,
)


def weights(variables):
    return [v.numpy().copy() for v in variables]


def bn_generator(latent_dim=3, hidden=8, output_dim=2, batch_norm=True):
    """Dense -> (BatchNormalization) -> ReLU -> Dense, a generator for real-valued points."""
    layers = [keras.Input((latent_dim,)), keras.layers.Dense(hidden, name="hidden")]
    if batch_norm:
        layers.append(keras.layers.BatchNormalization(name="bn"))
    layers += [keras.layers.ReLU(), keras.layers.Dense(output_dim, name="out")]
    return keras.Sequential(layers)


def small_deep_energy(seed=0, hidden=8, **kwargs):
    keras.utils.set_random_seed(seed)
    return DeepEnergyModel(bn_generator(hidden=hidden), energy_network(2, (8,), 4),
                           latent_dim=3, seed=seed, **kwargs)


def compiled(model, lr=1e-2, **kwargs):
    model.compile(generator_optimizer=keras.optimizers.Adam(lr),
                  energy_optimizer=keras.optimizers.Adam(lr), **kwargs)
    return model


def small_langevin(seed=0, **kwargs):
    keras.utils.set_random_seed(seed)
    kwargs = {"data_range": (-2.0, 2.0), "num_steps": 5, "step_size": 0.01,
              "buffer_size": 100, "seed": seed, **kwargs}
    return LangevinEBM(energy_network(2, (8,), 4), **kwargs)


def points(n=64, seed=0):
    return np.tanh(np.random.default_rng(seed).normal(size=(n, 2))).astype("float32")


# ----- the entropy estimate -------------------------------------------------------------------
def test_batch_norm_entropy_is_the_gaussian_entropy_of_each_unit_s_batch_variance():
    """sum over tensors and units of 1/2 log(2 pi e (var + epsilon)), var the population
    (ddof 0) variance over the batch; a (n, 2, 3) tensor counts as six units."""
    rng = np.random.default_rng(0)
    a = rng.normal(size=(50, 4)) * [0.1, 1.0, 3.0, 0.02]
    b = rng.normal(size=(50, 2, 3))
    for epsilon in (1e-3, 0.5):
        expected = sum(np.sum(0.5 * np.log(2 * np.pi * np.e * (np.var(t.reshape(50, -1), 0)
                                                                + epsilon)))
                       for t in (a, b))
        got = float(batch_norm_entropy([a.astype("float32"), b.astype("float32")], epsilon))
        assert got == pytest.approx(expected, rel=1e-5)


def test_the_estimate_matches_the_exact_entropies_of_a_known_normalized_layer():
    """z ~ N(0, I_3) through Dense(W, b) gives a = z W + b with unit i exactly
    N(b_i, v_i), v_i = (W^T W)_ii; the BatchNormalization that follows outputs
    gamma_i (a_i - mean) / sqrt(var + eps) + beta_i, of variance gamma_i^2 v_i / (v_i + eps)
    (eps the layer's). The estimate, read from that output, must be the sum of the Gaussian
    entropies 1/2 log(2 pi e (gamma_i^2 v_i / (v_i + eps) + 1e-6)). The fourth unit has
    v = 4e-4 < eps, so W counts and not only gamma. 20,000 draws: each batch variance has a
    relative standard error of 1 %, which moves that unit's term by at most 0.005 (and the
    others' far less); 0.02 is four of those."""
    model = small_deep_energy(hidden=4)
    W = np.array([[1.0, 0.2, 0.0, 0.02], [0.5, -1.0, 0.1, 0.0], [0.0, 2.0, 0.1, 0.0]])
    gamma = np.array([0.5, 2.0, 1.0, 3.0])
    generator = model.generator
    generator.get_layer("hidden").kernel.assign(W.astype("float32"))
    generator.get_layer("hidden").bias.assign(np.array([5.0, -1.0, 0.0, 2.0], "float32"))
    generator.get_layer("bn").gamma.assign(gamma.astype("float32"))
    generator.get_layer("bn").beta.assign(np.array([1.0, 0.0, -1.0, 0.5], "float32"))
    epsilon = generator.get_layer("bn").epsilon
    z = model.sample_latent(20000, seed=0)
    fake, normalized = model.entropy_features(z, training=True)
    assert fake.shape == (20000, 2) and normalized.shape == (20000, 4)
    v = np.diag(W.T @ W)
    exact = np.sum(0.5 * np.log(2 * np.pi * np.e * (gamma**2 * v / (v + epsilon) + 1e-6)))
    assert float(model.entropy([normalized])) == pytest.approx(exact, abs=0.02)
    # W scaled by 10: v by 100, which the layer's output sees only through v / (v + eps)
    generator.get_layer("hidden").kernel.assign(10 * W.astype("float32"))
    rescaled = float(model.entropy([model.entropy_features(z, training=True)[1]]))
    v = 100 * v
    assert rescaled == pytest.approx(
        np.sum(0.5 * np.log(2 * np.pi * np.e * (gamma**2 * v / (v + epsilon) + 1e-6))),
        abs=0.02)


# ----- the data-minus-model gradient ----------------------------------------------------------
@pytest.mark.parametrize("alpha", [0.0, 0.3])
def test_the_energy_loss_gradient_is_data_term_minus_model_term(alpha):
    """Eq. (7.10): d/dtheta [mean E(x) - mean E(x~)] = mean_i dE(x_i) - mean_j dE(x~_j),
    each dE(.) here from its own tape on one sample. With alpha > 0 the penalty
    alpha (mean E(x)^2 + mean E(x~)^2) adds mean_i 2 alpha E(x_i) dE(x_i) and the same for
    the model samples."""
    model = small_deep_energy(energy_regularization=alpha)
    energy, variables = model.energy, model.energy.trainable_variables
    rng = np.random.default_rng(1)
    data = rng.normal(size=(6, 2)).astype("float32")
    fake = (2.0 * rng.normal(size=(5, 2))).astype("float32")
    with tf.GradientTape() as tape:
        loss = model.energy_loss(energy(data), energy(fake))
    got = tape.gradient(loss, variables)

    def per_sample(rows, sign):
        total = [np.zeros(v.shape, np.float64) for v in variables]
        for row in rows:
            with tf.GradientTape() as one:
                value = energy(row[None])[0, 0]
            factor = sign + 2.0 * alpha * float(value)
            for t, g in zip(total, one.gradient(value, variables), strict=True):
                t += factor * g.numpy() / len(rows)
        return total

    expected = [d + m for d, m in zip(per_sample(data, 1.0), per_sample(fake, -1.0),
                                      strict=True)]
    for g, e, v in zip(got, expected, variables, strict=True):
        np.testing.assert_allclose(g.numpy(), e, rtol=1e-5, atol=1e-6 * np.abs(e).max(),
                                   err_msg=v.path)


# ----- the two players ------------------------------------------------------------------------
def test_each_step_moves_only_its_own_player():
    """Trainable weights only: the energy step also runs G in training mode (fresh samples
    by batch statistics), which updates G's moving averages, as the GAN's D step does."""
    model = compiled(small_deep_energy())
    model._build_optimizers()
    g_vars, e_vars = model.generator.trainable_variables, model.energy.trainable_variables
    assert {id(v) for v in model.trainable_variables} == {id(v) for v in g_vars + e_vars}

    def unchanged(before, variables):
        return all(np.array_equal(a, v.numpy()) for a, v in zip(before, variables, strict=True))

    def all_moved(before, variables):
        return all(not np.array_equal(a, v.numpy())
                   for a, v in zip(before, variables, strict=True))

    g_before, e_before = weights(g_vars), weights(e_vars)
    model.energy_step(tf.constant(points(16)))
    assert unchanged(g_before, g_vars) and all_moved(e_before, e_vars)
    e_after = weights(e_vars)
    model.generator_step(16)
    assert unchanged(e_after, e_vars) and all_moved(g_before, g_vars)
    assert int(model.discriminator_optimizer.iterations) == 1
    assert int(model.generator_optimizer.iterations) == 1


def test_fit_counts_energy_steps_and_logs_every_metric():
    model = compiled(small_deep_energy(energy_steps=2), steps_per_execution=1)
    history = model.fit(points(64), batch_size=16, epochs=1, verbose=0,
                        validation_data=(points(16, seed=1),)).history
    assert int(model.generator_optimizer.iterations) == 4
    assert int(model.discriminator_optimizer.iterations) == 8
    names = {"energy_loss", "generator_loss", "energy_data", "energy_model", "entropy"}
    assert set(history) == names | {f"val_{n}" for n in names}
    assert all(np.isfinite(v).all() for v in history.values())


def normalized_linear_generator():
    """G(z) = BatchNormalization(z W + b): unit i of a batch is gamma_i times a standardized
    Gaussian plus beta_i, and the estimate reads G's output itself, so it is the sum of G's
    own marginal Gaussian entropies (the case where Kim & Bengio's approximation is
    exact)."""
    return keras.Sequential([keras.Input((2,)), keras.layers.Dense(2, name="linear"),
                             keras.layers.BatchNormalization(name="bn")])


@pytest.mark.parametrize("entropy_weight", [0.0, 1.0])
def test_without_entropy_the_generator_collapses_onto_the_energy_minimum(entropy_weight):
    """A frozen energy E(x) = ||x||^2 / (2 sigma^2) + const (ExpertsEnergy with every weight
    0), sigma = 0.5, and only generator steps (300 Adam steps, batches of 256). For the
    generator above (7.11) is sum_i [(var_i + beta_i^2) / (2 sigma^2)
    - w/2 log(var_i + 1e-6)] + const, var_i = gamma_i^2 (up to the layer's epsilon): with
    w = 1 it is least at beta = 0, var = sigma^2, i.e. p_G = p_E; with w = 0 at var = 0, a
    point. Measured on batches drawn as in training (batch statistics): spreads 0.499 and
    1e-7. Asked: within 5 % of sigma with the entropy, below sigma / 100 without."""
    sigma = 0.5
    keras.utils.set_random_seed(0)
    energy = energy_network(2, (4,), 2, sigma=sigma)
    for variable in energy.trainable_variables:
        variable.assign(tf.zeros_like(variable))
    model = DeepEnergyModel(normalized_linear_generator(), energy, latent_dim=2,
                            entropy_weight=entropy_weight, seed=0)
    model.compile(generator_optimizer=keras.optimizers.Adam(2e-2),
                  energy_optimizer=keras.optimizers.SGD(0.0))
    before = weights(energy.trainable_variables)
    step = tf.function(lambda: model.generator_step(256))
    for _ in range(300):
        step()
    assert all(np.array_equal(a, v.numpy())
               for a, v in zip(before, energy.trainable_variables, strict=True))
    samples = model.generator(model.sample_latent(4000, seed=1), training=True).numpy()
    spread = samples.std(axis=0)
    if entropy_weight:
        np.testing.assert_allclose(spread, sigma, rtol=0.05)
        np.testing.assert_allclose(samples.mean(axis=0), 0.0, atol=0.02)
    else:
        assert spread.max() < sigma / 100, spread


# With no BatchNormalization layer the feature model has one output, which Keras returns as
# a bare tensor: unpacking it as a list would split its rows, so the generator could not
# train. This catches that.
def test_a_generator_without_batch_normalization_needs_entropy_weight_zero():
    keras.utils.set_random_seed(0)
    plain = bn_generator(batch_norm=False)
    with pytest.raises(ValueError, match="BatchNormalization.*entropy_weight=0"):
        DeepEnergyModel(plain, energy_network(2, (8,), 4), latent_dim=3)
    model = DeepEnergyModel(plain, energy_network(2, (8,), 4), latent_dim=3,
                            entropy_weight=0.0, seed=0)
    history = compiled(model).fit(points(32), batch_size=16, epochs=1, verbose=0).history
    assert history["entropy"] == [0.0] and np.isfinite(history["generator_loss"]).all()


def test_compile_takes_one_optimizer_per_player():
    model = small_deep_energy()
    adam = keras.optimizers.Adam()
    with pytest.raises(ValueError, match="two optimizer objects"):
        model.compile(generator_optimizer=adam, energy_optimizer=adam)
    with pytest.raises(TypeError, match="energy_optimizer must be"):
        model.compile(generator_optimizer=keras.optimizers.Adam(), energy_optimizer="adam")
    with pytest.raises(ValueError, match="takes no loss"):
        model.compile(generator_optimizer=keras.optimizers.Adam(),
                      energy_optimizer=keras.optimizers.Adam(), loss="mse")
    g, e = keras.optimizers.Adam(), keras.optimizers.SGD()
    model.compile(generator_optimizer=g, energy_optimizer=e)
    assert model.generator_optimizer is g and model.discriminator_optimizer is e
    assert "energy_optimizer" in model.get_compile_config()


# ----- LangevinEBM ----------------------------------------------------------------------------
def test_a_langevin_step_rewrites_only_the_buffer_rows_it_drew():
    """The rows a step draws are replayed from the seed generator's state (the stream the
    step uses for them); every other row is untouched, at most batch-size rows change, and
    every energy weight moves."""
    model = small_langevin()
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    model.optimizer.build(model.trainable_variables)
    assert {id(v) for v in model.trainable_variables} == {
        id(v) for v in model.energy.trainable_variables}
    state, buffer = model.seed_generator.state.numpy(), model.buffer.numpy().copy()
    energy_before = weights(model.energy.trainable_variables)
    model.train_step(tf.constant(points(16)))
    model.seed_generator.state.assign(state)
    seed = model.seed_generator.next()
    drawn = tf.random.stateless_uniform((16,), sampling.step_seed(seed, 0, 0), 0, 100,
                                        dtype=tf.int32).numpy()
    changed = np.flatnonzero(np.any(model.buffer.numpy() != buffer, axis=1))
    assert 0 < len(changed) <= 16
    assert set(changed) == set(drawn)            # each drawn row was rewritten (and moved)
    assert model.buffer.numpy().min() >= -2.0 and model.buffer.numpy().max() <= 2.0
    assert all(not np.array_equal(a, v.numpy())
               for a, v in zip(energy_before, model.energy.trainable_variables, strict=True))


def test_langevin_samples_stay_in_the_data_range_and_are_seeded():
    model = small_langevin(data_range=(0.0, 1.0), step_size=0.5)   # large steps hit the walls
    samples = model.sample(200, num_steps=20, seed=1)
    assert samples.shape == (200, 2) and samples.min() >= 0.0 and samples.max() <= 1.0
    assert ((samples == 0.0) | (samples == 1.0)).any()
    np.testing.assert_array_equal(samples, model.sample(200, num_steps=20, seed=1))
    assert not np.array_equal(samples, model.sample(200, num_steps=20, seed=2))
    from_buffer = model.sample(50, seed=1, from_buffer=True)
    assert from_buffer.min() >= 0.0 and from_buffer.max() <= 1.0
    buffer = model.buffer.numpy()
    assert buffer.min() >= 0.0 and buffer.max() <= 1.0 and buffer.std() > 0.2   # uniform


# ----- ExpertsEnergy --------------------------------------------------------------------------
def experts_by_numpy(layer, x):
    """Eq. (7.12): ||x||^2 / (2 sigma^2) - b.x - sum_k softplus(w_k . phi(x) + c_k)."""
    phi = np.asarray(x, np.float64)
    for dense in layer.features:
        pre = phi @ dense.kernel.numpy() + dense.bias.numpy()
        phi = np.where(pre > 0, pre, 0.2 * pre)
    experts = np.logaddexp(0.0, phi @ layer.experts.kernel.numpy() + layer.experts.bias.numpy())
    return (np.sum(x**2, 1) / (2 * layer.sigma**2) - x @ layer.linear.kernel.numpy()[:, 0]
            - experts.sum(1))


def test_experts_energy_matches_numpy_round_trips_and_grows_like_the_gaussian_base():
    """Far from the origin the experts grow at most linearly (leaky ReLU features, softplus),
    so E(r u) / (r^2 / (2 sigma^2)) -> 1 for every direction u: exp(-E) is integrable, and
    the mass of a wide box is already that of a twice wider one."""
    keras.utils.set_random_seed(0)
    network = energy_network(2, (8, 8), 4, sigma=0.7)
    layer = network.layers[0]
    rng = np.random.default_rng(0)
    for variable in network.trainable_variables:
        variable.assign(rng.normal(0.0, 1.0, variable.shape).astype("float32"))
    x = rng.normal(size=(20, 2)) * 2
    np.testing.assert_allclose(network(x.astype("float32")).numpy()[:, 0],
                               experts_by_numpy(layer, x), rtol=1e-5, atol=1e-4)
    clone = ExpertsEnergy.from_config(layer.get_config())
    assert clone.get_config() == layer.get_config()
    assert (clone.hidden_units, clone.num_experts, clone.sigma) == ([8, 8], 4, 0.7)
    directions = rng.normal(size=(16, 2))
    directions /= np.linalg.norm(directions, axis=1, keepdims=True)
    for r in (1e2, 1e3):
        ratio = experts_by_numpy(layer, r * directions) / (r**2 / (2 * 0.7**2))
        assert np.all(np.abs(ratio - 1) < 30 / r), ratio

    def mass(half_width, n=601):
        axis = np.linspace(-half_width, half_width, n)
        grid = np.stack(np.meshgrid(axis, axis), -1).reshape(-1, 2)
        energies = experts_by_numpy(layer, grid)
        shift = energies.min()
        return np.exp(-(energies - shift)).sum() * (axis[1] - axis[0]) ** 2, shift

    (wide, shift), (wider, shift_2) = mass(8.0), mass(16.0)
    assert shift == pytest.approx(shift_2, abs=0.5) and math.isfinite(wide)
    assert wider == pytest.approx(wide * np.exp(shift_2 - shift), rel=1e-3)


# ----- save, load, XLA, mixed precision -------------------------------------------------------
def test_a_deep_energy_model_saves_and_loads_both_players_and_optimizers(tmp_path):
    model = compiled(small_deep_energy(energy_regularization=0.1, entropy_weight=0.5),
                     steps_per_execution=1)
    model.fit(points(64), batch_size=16, epochs=2, verbose=0)
    loaded = saved_and_loaded(model, tmp_path / "deep_energy.keras", DeepEnergyModel)
    assert (loaded.entropy_weight, loaded.energy_regularization) == (0.5, 0.1)
    assert int(loaded.generator_optimizer.iterations) == 8
    assert int(loaded.discriminator_optimizer.iterations) == 8
    x = points(10, seed=3)
    np.testing.assert_array_equal(loaded.energy(x).numpy(), model.energy(x).numpy())
    np.testing.assert_array_equal(loaded.sample(10, seed=2), model.sample(10, seed=2))
    for a, b in zip(model.weights, loaded.weights, strict=True):
        np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=a.path)


def test_a_langevin_ebm_saves_and_loads_its_energy_and_buffer(tmp_path):
    model = small_langevin(noise_scale=0.05, reinit_probability=0.2)
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    model.fit(points(64), batch_size=16, epochs=1, verbose=0)
    loaded = saved_and_loaded(model, tmp_path / "langevin.keras", LangevinEBM)
    x = points(10, seed=3)
    np.testing.assert_array_equal(loaded(x).numpy(), model(x).numpy())
    np.testing.assert_array_equal(loaded.buffer.numpy(), model.buffer.numpy())
    np.testing.assert_array_equal(loaded.seed_state.numpy(), model.seed_state.numpy())
    np.testing.assert_array_equal(loaded.sample(8, seed=1), model.sample(8, seed=1))


def test_both_energy_models_train_under_xla():
    """What compile()'s jit_compile="auto" does on a GPU; every trainable weight moves and
    every metric stays finite."""
    deep = compiled(small_deep_energy(), jit_compile=True)
    langevin = small_langevin()
    langevin.compile(optimizer=keras.optimizers.Adam(1e-2), jit_compile=True)
    for model in (deep, langevin):
        before = weights(model.trainable_variables)
        history = model.fit(points(64), batch_size=16, epochs=1, verbose=0,
                            validation_data=(points(16, seed=1),)).history
        assert model.jit_compile is True
        assert all(np.isfinite(v).all() for v in history.values()), history
        assert all(not np.array_equal(a, v.numpy())
                   for a, v in zip(before, model.trainable_variables, strict=True))
    assert np.isfinite(deep.sample(10, seed=1)).all()


def test_mixed_precision_updates_both_players_as_float32_does():
    """As for the GAN: under mixed_float16 each player's loss must be scaled, or the
    loss-scale optimizer divides its update by 2^15; one SGD step's update norms must match
    the float32 step's."""
    assert_mixed_precision_step_matches_float32(small_deep_energy, tf.constant(points(16)),
                                                0.05)


# ----- refusals -------------------------------------------------------------------------------
def energy():
    return energy_network(2, (4,), 2)


CASES = [
    ("langevin-steps", lambda v: LangevinEBM(energy(), data_range=(0, 1), num_steps=v),
     "num_steps", BAD_COUNTS),
    ("langevin-step_size", lambda v: LangevinEBM(energy(), data_range=(0, 1), step_size=v),
     "step_size", BAD_POSITIVE),
    ("langevin-noise", lambda v: LangevinEBM(energy(), data_range=(0, 1), noise_scale=v),
     "noise_scale", [(-1.0, ValueError), (float("nan"), ValueError), ("a", TypeError)]),
    ("langevin-buffer", lambda v: LangevinEBM(energy(), data_range=(0, 1), buffer_size=v),
     "buffer_size", BAD_COUNTS),
    ("langevin-reinit", lambda v: LangevinEBM(energy(), data_range=(0, 1),
                                              reinit_probability=v), "reinit_probability",
     [(2.0, ValueError), (-0.1, ValueError), ("a", TypeError)]),
    ("langevin-alpha", lambda v: LangevinEBM(energy(), data_range=(0, 1),
                                             energy_regularization=v),
     "energy_regularization", [(-1.0, ValueError), (None, TypeError)]),
    ("deep-entropy_weight", lambda v: DeepEnergyModel(bn_generator(), energy(), latent_dim=3,
                                                      entropy_weight=v), "entropy_weight",
     [(-1.0, ValueError), (float("inf"), ValueError), ("1", TypeError)]),
    ("deep-alpha", lambda v: DeepEnergyModel(bn_generator(), energy(), latent_dim=3,
                                             energy_regularization=v),
     "energy_regularization", [(-0.5, ValueError), (None, TypeError)]),
    # The message names the caller's argument (energy_steps), not the base class's
    # discriminator_steps.
    ("deep-energy_steps", lambda v: DeepEnergyModel(bn_generator(), energy(), latent_dim=3,
                                                    energy_steps=v), "energy_steps",
     [(0, ValueError), ("3", TypeError)]),
    ("experts-sigma", lambda v: ExpertsEnergy((4,), 2, sigma=v), "sigma", BAD_POSITIVE),
    ("experts-num_experts", lambda v: ExpertsEnergy((4,), v), "num_experts", BAD_COUNTS),
]


@pytest.mark.parametrize("call, name, value, error", expand(CASES))
def test_bad_arguments_are_refused(call, name, value, error):
    assert_refused(lambda: call(value), name, value, error)


def test_bad_networks_and_data_are_refused_with_what_was_expected():
    with pytest.raises(ValueError, match="data_range is required"):
        LangevinEBM(energy(), data_range=None)
    with pytest.raises(ValueError, match="one energy per input"):
        LangevinEBM(keras.Sequential([keras.Input((2,)), keras.layers.Dense(2)]),
                    data_range=(0, 1))
    with pytest.raises(TypeError, match="energy must be a keras.Model"):
        LangevinEBM(lambda x: x, data_range=(0, 1))
    with pytest.raises(ValueError, match="the energy must return one energy per input"):
        DeepEnergyModel(bn_generator(), keras.Sequential([keras.Input((2,)),
                                                          keras.layers.Dense(2)]), latent_dim=3)
    with pytest.raises(ValueError, match="the energy does not take"):
        DeepEnergyModel(bn_generator(), energy_network(3, (4,), 2), latent_dim=3)
    model = small_langevin(data_range=(-1.0, 1.0))
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    with pytest.raises(DataError, match=r"data_range \[-1, 1\]"):
        model.fit(points(8) * 3, verbose=0)
    with pytest.raises(DataError, match="2 columns"):
        model.fit(np.zeros((8, 3), "float32"), verbose=0)
    deep = compiled(small_deep_energy(data_range=(-1.0, 1.0)))
    with pytest.raises(DataError, match=r"data_range \[-1, 1\]"):
        deep.fit(points(8) * 3, verbose=0)
