"""The GAN of Chapter 5 against oracles that cannot share its bugs.

- The losses against NumPy's log D and log(1 - D) from probabilities.
- Eq. (5.2)-(5.3): a discriminator trained alone against a fixed generator, on two Gaussians
  whose density ratio is known, must reach the exact D* = p_data / (p_data + p_g), and its
  value V(D, G) must reach -log 4 + 2 JS, with JS integrated numerically.
- Each player's update moves only that player's weights.
- Save / load keeps both optimizers; two replicas give the one-device step; XLA compiles it.
- Minibatch discrimination against a NumPy forward pass.
"""

import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
import tensorflow as tf
from model_checks import assert_mixed_precision_step_matches_float32
from replicas import child_env, run_script

from course_lib.adversarial import (
    GAN,
    LeakyReLU,
    MinibatchDiscrimination,
    dcgan_discriminator,
    dcgan_generator,
    discriminator_loss,
    generator_loss,
    mlp_discriminator,
    mlp_generator,
)
from course_lib.checks import DataError
from course_lib.training import Evaluator, TrainingDivergedError


def small_gan(loss="non_saturating", seed=0, batch_norm=False, **kwargs):
    keras.utils.set_random_seed(seed)
    return GAN(mlp_generator(3, (8,), 4, batch_norm=batch_norm),
               mlp_discriminator(4, (8,)), latent_dim=3, loss=loss, seed=seed, **kwargs)


def compiled(gan, lr=1e-2, **kwargs):
    gan.compile(generator_optimizer=keras.optimizers.Adam(lr, beta_1=0.5),
                discriminator_optimizer=keras.optimizers.Adam(lr, beta_1=0.5), **kwargs)
    return gan


def data(n=64, seed=0):
    return np.tanh(np.random.default_rng(seed).normal(size=(n, 4))).astype("float32")


# ----- losses -------------------------------------------------------------------------------
def test_losses_match_their_definitions_in_probabilities():
    rng = np.random.default_rng(0)
    real, fake = rng.normal(size=(50, 1)) * 3, rng.normal(size=(40, 1)) * 3
    d_real, d_fake = 1 / (1 + np.exp(-real)), 1 / (1 + np.exp(-fake))
    expected_d = -np.mean(np.log(d_real)) - np.mean(np.log(1 - d_fake))
    for loss in ("minimax", "non_saturating"):
        got = float(discriminator_loss(real.astype("float32"), fake.astype("float32"), loss))
        assert got == pytest.approx(expected_d, rel=1e-5)
    assert float(generator_loss(fake.astype("float32"), "minimax")) == pytest.approx(
        np.mean(np.log(1 - d_fake)), rel=1e-5)
    assert float(generator_loss(fake.astype("float32"), "non_saturating")) == pytest.approx(
        -np.mean(np.log(d_fake)), rel=1e-5)
    assert float(discriminator_loss(real.astype("float32"), fake.astype("float32"),
                                    "least_squares")) == pytest.approx(
        0.5 * np.mean((real - 1) ** 2) + 0.5 * np.mean(fake**2), rel=1e-5)
    assert float(generator_loss(fake.astype("float32"), "least_squares")) == pytest.approx(
        0.5 * np.mean((fake - 1) ** 2), rel=1e-5)


def test_the_saturating_loss_has_a_vanishing_gradient_where_the_other_does_not():
    """At D(G(z)) ~ 0 (D wins, early training) d/dl of log(1 - D) is -D ~ 0, while
    d/dl of -log D is D - 1 ~ -1: the reason for the non-saturating loss."""
    logits = tf.constant([[-8.0], [-6.0]])
    grads = {}
    for loss in ("minimax", "non_saturating"):
        with tf.GradientTape() as tape:
            tape.watch(logits)
            value = generator_loss(logits, loss)
        grads[loss] = np.abs(tape.gradient(value, logits).numpy()).max()
    assert grads["minimax"] < 2e-3 < 0.4 < grads["non_saturating"]


# ----- the optimal discriminator and the JS identity ---------------------------------------
def normal_pdf(x, mean):
    return np.exp(-0.5 * (x - mean) ** 2) / np.sqrt(2 * np.pi)


def test_a_discriminator_trained_alone_reaches_the_optimal_one_and_the_js_identity():
    """p_data = N(0, 1), p_g = N(1.5, 1) from a frozen generator z + 1.5. D* has the logit
    log p_data - log p_g = 1.125 - 1.5 x, which one Dense unit can represent, so D trained
    alone must reach it; then V(D, G) = -log 4 + 2 JS (JS by numerical integration)."""
    keras.utils.set_random_seed(0)
    generator = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1, name="shift")])
    generator.layers[0].kernel.assign([[1.0]])
    generator.layers[0].bias.assign([1.5])
    discriminator = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)])
    gan = GAN(generator, discriminator, latent_dim=1, seed=0)
    gan.compile(generator_optimizer=keras.optimizers.SGD(0.0),       # G frozen
                discriminator_optimizer=keras.optimizers.Adam(0.05))
    x = np.random.default_rng(1).normal(size=(20000, 1)).astype("float32")
    gan.fit(x, batch_size=500, epochs=8, verbose=0)
    np.testing.assert_allclose(generator.layers[0].bias.numpy(), [1.5])    # G did not move
    grid = np.linspace(-1.0, 2.5, 15, dtype="float32")[:, None]
    learned = 1 / (1 + np.exp(-discriminator(grid).numpy()))
    exact = normal_pdf(grid, 0) / (normal_pdf(grid, 0) + normal_pdf(grid, 1.5))
    assert np.abs(learned - exact).max() < 0.03, np.c_[grid, learned, exact]
    # V(D, G) by quadrature for the learned D, against -log 4 + 2 JS of the two densities.
    t = np.linspace(-10, 12, 40001)
    p, q = normal_pdf(t, 0), normal_pdf(t, 1.5)
    logit = discriminator(t[:, None].astype("float32")).numpy()[:, 0].astype(np.float64)
    # log D = -log(1 + e^-l) and log(1 - D) = -log(1 + e^l), in float64 without forming D
    # (D rounds to 1 in float32 where l > 16.6, and log(1 - D) would be -inf there)
    value = np.trapezoid(-p * np.logaddexp(0, -logit) - q * np.logaddexp(0, logit), t)
    m = (p + q) / 2
    js = 0.5 * np.trapezoid(p * np.log(p / m), t) + 0.5 * np.trapezoid(q * np.log(q / m), t)
    assert value == pytest.approx(-np.log(4) + 2 * js, abs=5e-3)
    assert value < -np.log(4) + 2 * js + 1e-6      # D* maximizes V: nothing beats it


# ----- each player moves only itself ----------------------------------------------------------
def weights(variables):
    return [v.numpy().copy() for v in variables]


@pytest.mark.parametrize("loss", ["minimax", "non_saturating", "least_squares"])
def test_each_step_moves_only_its_own_player(loss):
    gan = compiled(small_gan(loss, batch_norm=True))
    gan._build_optimizers()
    x = tf.constant(data(16))
    g_vars, d_vars = gan.generator.trainable_variables, gan.discriminator.trainable_variables

    def unchanged(before, variables):
        return all(np.array_equal(a, b) for a, b in zip(before, weights(variables), strict=True))

    def all_moved(before, variables):
        return all(not np.array_equal(a, b)
                   for a, b in zip(before, weights(variables), strict=True))

    g_before, d_before = weights(g_vars), weights(d_vars)
    gan.discriminator_step(x)
    assert unchanged(g_before, g_vars) and all_moved(d_before, d_vars)
    d_after = weights(d_vars)
    gan.generator_step(16)
    assert unchanged(d_after, d_vars) and all_moved(g_before, g_vars)
    assert int(gan.discriminator_optimizer.iterations) == 1
    assert int(gan.generator_optimizer.iterations) == 1


def test_the_generators_update_reuses_the_last_discriminator_updates_samples():
    # Oracle: the step composed by hand from the networks, autodiff and plain SGD, with the
    # noise replayed: D's first update on fresh G(z1), D's second on G(z2), then G's update on
    # the same G(z2) through the D just updated. It fails if G's update draws fresh noise,
    # goes through the old D, or runs G a third time (G's batch norm statistics move once per
    # forward pass in training mode).
    lr = 0.1
    gan = small_gan(batch_norm=True, discriminator_steps=2)
    gan.compile(generator_optimizer=keras.optimizers.SGD(lr),
                discriminator_optimizer=keras.optimizers.SGD(lr), steps_per_execution=1)
    gan._build_optimizers()
    x = tf.constant(data(16))
    state = gan.seed_generator.state.numpy()
    g_start, d_start = weights(gan.generator.weights), weights(gan.discriminator.weights)
    tf.function(gan.train_step)(x)
    g_step, d_step = weights(gan.generator.weights), weights(gan.discriminator.weights)

    gan.seed_generator.state.assign(state)
    for variables, values in ((gan.generator.weights, g_start),
                              (gan.discriminator.weights, d_start)):
        for variable, value in zip(variables, values, strict=True):
            variable.assign(value)

    def sgd_step(model, loss, tape=None):
        """One SGD step of ``model`` on ``loss(model)``, recorded on ``tape`` (a new one if
        None), plain variable arithmetic."""
        tape = tape or tf.GradientTape()
        with tape:
            value = loss(model)
        grads = tape.gradient(value, model.trainable_variables)
        for variable, grad in zip(model.trainable_variables, grads, strict=True):
            variable.assign(variable - lr * grad)

    def mean_softplus(t):
        return tf.reduce_mean(tf.math.softplus(t))

    d, g = gan.discriminator, gan.generator
    for _ in range(2):
        g_tape = tf.GradientTape()
        with g_tape:
            fake = g(gan.sample_latent(16), training=True)
        sgd_step(d, lambda d, fake=fake: mean_softplus(-d(x, training=True))
                 + mean_softplus(d(tf.stop_gradient(fake), training=True)))
    sgd_step(g, lambda g: mean_softplus(-d(fake, training=True)), g_tape)
    for got, expected in zip(g_step + d_step, weights(g.weights) + weights(d.weights),
                             strict=True):
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
    assert not np.allclose(g_step[0], g_start[0])
    with pytest.raises(ValueError, match="num_samples or generated"):
        gan.generator_step()
    with pytest.raises(ValueError, match="num_samples or generated"):
        gan.generator_step(16, generated=gan.generate(16))


def test_fit_counts_k_discriminator_updates_per_generator_update():
    gan = compiled(small_gan(discriminator_steps=3), steps_per_execution=1)
    history = gan.fit(data(64), batch_size=16, epochs=2, verbose=0)
    assert int(gan.generator_optimizer.iterations) == 8
    assert int(gan.discriminator_optimizer.iterations) == 24
    logs = history.history
    assert set(logs) == {"discriminator_loss", "generator_loss", "d_real", "d_fake"}
    assert all(np.isfinite(v).all() for v in logs.values())
    assert all(0 < v < 1 for v in logs["d_real"] + logs["d_fake"])


def test_packing_concatenates_m_samples_and_completes_a_short_batch():
    keras.utils.set_random_seed(0)
    gan = GAN(mlp_generator(3, (8,), 4), mlp_discriminator(12, (8,)), latent_dim=3,
              packing=3, seed=0)
    x = np.arange(7 * 4, dtype="float32").reshape(7, 4)
    packed = gan.pack(tf.constant(x)).numpy()
    # numpy oracle: rows 0..8 of x repeated cyclically (7 rows -> 9), three to an input
    np.testing.assert_array_equal(packed, x[np.arange(9) % 7].reshape(3, 12))
    np.testing.assert_array_equal(gan.pack(tf.constant(x[:6])).numpy(), x[:6].reshape(2, 12))
    # D sees packs in its step: the step's loss is that of the packs built here by numpy from
    # the same weights and the same noise (the generator's state is replayed).
    compiled(gan, steps_per_execution=1)
    gan._build_optimizers()
    x = data(10)
    state, before = gan.seed_generator.state.numpy(), weights(gan.discriminator.weights)
    loss, d_real = gan.discriminator_step(tf.constant(x))
    gan.seed_generator.state.assign(state)
    fake = gan.generator(gan.sample_latent(10), training=True).numpy()
    for variable, value in zip(gan.discriminator.weights, before, strict=True):
        variable.assign(value)
    real_logits = gan.discriminator(x[np.arange(12) % 10].reshape(4, 12)).numpy()
    fake_logits = gan.discriminator(fake[np.arange(12) % 10].reshape(4, 12)).numpy()
    expected = np.mean(np.logaddexp(0, -real_logits)) + np.mean(np.logaddexp(0, fake_logits))
    np.testing.assert_allclose(float(loss), expected, rtol=1e-5)
    np.testing.assert_allclose(float(d_real), np.mean(1 / (1 + np.exp(-real_logits))),
                               rtol=1e-5)
    history = gan.fit(data(64), batch_size=10, epochs=2, verbose=0).history
    assert all(np.isfinite(v).all() for v in history.values())   # the 4-row last batch too
    assert int(gan.discriminator_optimizer.iterations) == 1 + 14
    clone = GAN.from_config(gan.get_config())
    assert clone.packing == 3


def test_the_gradient_penalty_adds_gamma_times_w_to_a_linear_discriminators_step():
    # Oracle: for a linear D, l(x) = w.x + b, grad_x l = w for every x, so the R1 penalty is
    # gamma/2 ||w||^2 and its gradient gamma w (none for b). One SGD step of the penalised D
    # therefore differs from the same step without it (same weights, same noise) by exactly
    # -lr * gamma * w.
    gamma, lr = 3.0, 0.1
    steps = []
    for penalty in (0.0, gamma):
        keras.utils.set_random_seed(0)
        gan = GAN(mlp_generator(3, (8,), 4), keras.Sequential([keras.Input((4,)),
                                                              keras.layers.Dense(1)]),
                  latent_dim=3, gradient_penalty=penalty, seed=0)
        gan.compile(generator_optimizer=keras.optimizers.SGD(lr),
                    discriminator_optimizer=keras.optimizers.SGD(lr))
        gan._build_optimizers()
        w0, b0 = weights(gan.discriminator.trainable_variables)
        loss, _ = gan.discriminator_step(tf.constant(data(16)))
        w1, b1 = weights(gan.discriminator.trainable_variables)
        steps.append((w0, w1 - w0, b1 - b0, float(loss)))
    (w0, dw_plain, db_plain, loss_plain), (_, dw_r1, db_r1, loss_r1) = steps
    np.testing.assert_allclose(dw_r1 - dw_plain, -lr * gamma * w0, rtol=1e-4, atol=1e-7)
    np.testing.assert_allclose(db_r1, db_plain, rtol=1e-5, atol=1e-8)
    assert loss_r1 == pytest.approx(loss_plain, rel=1e-6)     # the logged loss is the game's
    clone = GAN.from_config(gan.get_config())
    assert clone.gradient_penalty == gamma
    compiled(gan, jit_compile=True)
    history = gan.fit(data(64), batch_size=16, epochs=1, verbose=0).history
    assert np.isfinite(history["discriminator_loss"]).all()


def test_an_evaluator_counts_generator_updates():
    gan = compiled(small_gan(discriminator_steps=2), steps_per_execution=1)
    seen = []
    evaluator = Evaluator(lambda m: seen.append(int(m.generator_optimizer.iterations)) or 0.0,
                          [0, 3, 8])
    gan.fit(data(64), batch_size=16, epochs=2, verbose=0, callbacks=[evaluator])
    assert evaluator.updates == [0, 3, 8] and seen == [0, 3, 8]   # not D's 0, 6, 16


def test_fit_with_xla_trains_and_samples():
    gan = compiled(small_gan(batch_norm=True), jit_compile=True)
    before = weights(gan.generator.trainable_variables)
    gan.fit(data(64), batch_size=16, epochs=1, verbose=0)
    assert gan.jit_compile
    assert all(not np.array_equal(a, b) for a, b in
               zip(before, weights(gan.generator.trainable_variables), strict=True))
    samples = gan.sample(10, seed=1)
    assert samples.shape == (10, 4) and np.abs(samples).max() <= 1.0
    np.testing.assert_array_equal(samples, gan.sample(10, seed=1))
    assert not np.array_equal(samples, gan.sample(10, seed=2))


# ----- saving --------------------------------------------------------------------------------
def test_save_and_load_keep_both_players_and_both_optimizers(tmp_path):
    x = data(64)
    straight = compiled(small_gan(batch_norm=True), steps_per_execution=1)
    straight.fit(x, batch_size=16, epochs=2, shuffle=False, verbose=0)
    straight.fit(x, batch_size=16, epochs=1, shuffle=False, verbose=0)
    first = compiled(small_gan(batch_norm=True), steps_per_execution=1)
    first.fit(x, batch_size=16, epochs=2, shuffle=False, verbose=0)
    path = tmp_path / "gan.keras"
    first.save(path)
    loaded = keras.saving.load_model(path)
    assert isinstance(loaded, GAN) and loaded.loss_name == "non_saturating"
    assert int(loaded.generator_optimizer.iterations) == 8
    assert int(loaded.discriminator_optimizer.iterations) == 8
    for a, b in zip(first.weights, loaded.weights, strict=True):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    loaded.fit(x, batch_size=16, epochs=1, shuffle=False, verbose=0)
    for a, b in zip(straight.weights, loaded.weights, strict=True):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-5, atol=1e-6,
                                   err_msg=a.path)


# ----- two replicas ----------------------------------------------------------------------------
MIRRORED_SCRIPT = textwrap.dedent("""
    import numpy as np
    import tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration(), tf.config.LogicalDeviceConfiguration()])
    import keras
    from course_lib.adversarial import GAN, mlp_discriminator, mlp_generator

    x = np.tanh(np.random.default_rng(0).normal(size=(16, 4))).astype("float32")

    def make():
        keras.utils.set_random_seed(0)
        generator = mlp_generator(3, (8,), 4, batch_norm=False)
        # The first layer ignores z (zero kernel, frozen): G's output and every gradient are
        # then the same whatever noise each replica draws, so the steps must agree exactly.
        generator.layers[0].kernel.assign(np.zeros((3, 8), "float32"))
        generator.layers[0].bias.assign(np.ones(8, "float32"))   # ReLU passes it on
        generator.layers[0].trainable = False
        return GAN(generator, mlp_discriminator(4, (8,)), latent_dim=3, seed=0)

    def one_step(strategy, start):
        with strategy.scope():
            gan = make()
            gan.compile(generator_optimizer=keras.optimizers.SGD(0.1),
                        discriminator_optimizer=keras.optimizers.SGD(0.1))
        gan.set_weights(start)
        gan.fit(x, batch_size=16, epochs=1, shuffle=False, verbose=0)
        return [w - s for w, s in zip(gan.get_weights(), start)], gan

    start = make().get_weights()
    single, model = one_step(tf.distribute.get_strategy(), start)
    two = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    mirrored, _ = one_step(two, start)
    moved = 0
    for a, b, v in zip(single, mirrored, model.weights):
        if "seed" in v.path:
            continue
        scale = np.abs(a).max()
        moved += scale > 1e-4
        assert np.abs(a - b).max() <= 1e-3 * max(scale, 1e-6) + 1e-7, (v.path, a, b)
    assert moved >= 6, moved      # both players' remaining layers moved
    print("GAN_MIRRORED_OK")
""")


def test_two_replicas_give_the_one_device_step(tmp_path):
    run_script(tmp_path, MIRRORED_SCRIPT, "GAN_MIRRORED_OK", shared=True)


# ----- minibatch discrimination ------------------------------------------------------------------
def test_minibatch_discrimination_matches_a_numpy_forward_pass():
    layer = MinibatchDiscrimination(num_kernels=3, kernel_dim=2)
    f = np.random.default_rng(0).normal(size=(5, 4)).astype("float32")
    out = layer(f).numpy()
    T = layer.T.numpy().reshape(4, 3, 2)
    M = np.einsum("na,abc->nbc", f.astype(np.float64), T)
    o = np.zeros((5, 3))
    for i in range(5):
        for j in range(5):
            o[i] += np.exp(-np.abs(M[i] - M[j]).sum(-1))
    np.testing.assert_allclose(out[:, :4], f)
    np.testing.assert_allclose(out[:, 4:], o, rtol=1e-5)
    assert np.all(out[:, 4:] >= 1.0)        # each sample's term with itself
    # A collapsed batch (all samples equal) gives the largest possible o = n.
    same = layer(np.repeat(f[:1], 5, axis=0)).numpy()
    np.testing.assert_allclose(same[:, 4:], 5.0, rtol=1e-6)


def test_a_discriminator_with_minibatch_discrimination_trains_and_saves(tmp_path):
    keras.utils.set_random_seed(0)
    gan = GAN(mlp_generator(3, (8,), 4, batch_norm=False),
              mlp_discriminator(4, (8,), extra_layers=[MinibatchDiscrimination(5, 3)]),
              latent_dim=3, seed=0)
    compiled(gan).fit(data(32), batch_size=16, epochs=1, verbose=0)
    gan.save(tmp_path / "mbd.keras")
    loaded = keras.saving.load_model(tmp_path / "mbd.keras")
    z = np.random.default_rng(0).normal(size=(6, 4)).astype("float32")
    np.testing.assert_allclose(loaded.discriminator(z).numpy(), gan.discriminator(z).numpy(),
                               rtol=1e-6)


# ----- refusals ----------------------------------------------------------------------------
def test_bad_arguments_are_refused_with_the_reason():
    g, d = mlp_generator(3, (8,), 4), mlp_discriminator(4, (8,))
    with pytest.raises(ValueError, match="loss must be one of"):
        GAN(g, d, latent_dim=3, loss="wasserstein")
    with pytest.raises(TypeError, match="generator must be a keras.Model"):
        GAN(lambda z: z, d, latent_dim=3)
    with pytest.raises(ValueError, match="does not take"):
        GAN(g, d, latent_dim=5)
    with pytest.raises(ValueError, match="does not take the generator"):
        GAN(g, mlp_discriminator(6, (8,)), latent_dim=3)
    with pytest.raises(ValueError, match="packing=2 samples of width 4"):
        GAN(g, d, latent_dim=3, packing=2)
    with pytest.raises(ValueError, match="packing"):
        GAN(g, mlp_discriminator(8, (8,)), latent_dim=3, packing=0)
    with pytest.raises(ValueError, match="gradient_penalty"):
        GAN(g, d, latent_dim=3, gradient_penalty=-1.0)
    with pytest.raises(ValueError, match="one logit per input"):
        GAN(g, keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)]), latent_dim=3)
    with pytest.raises(ValueError, match="discriminator_steps"):
        GAN(g, d, latent_dim=3, discriminator_steps=0)
    with pytest.raises(ValueError, match="data_range"):
        GAN(g, d, latent_dim=3, data_range=(1.0, -1.0))
    gan = GAN(g, d, latent_dim=3, data_range=(-1.0, 1.0))
    with pytest.raises(TypeError, match="generator_optimizer must be"):
        gan.compile(generator_optimizer="adam", discriminator_optimizer=keras.optimizers.Adam())
    adam = keras.optimizers.Adam()
    with pytest.raises(ValueError, match="two optimizer objects"):
        gan.compile(generator_optimizer=adam, discriminator_optimizer=adam)
    with pytest.raises(ValueError, match="takes no loss"):
        gan.compile(generator_optimizer=keras.optimizers.Adam(),
                    discriminator_optimizer=keras.optimizers.Adam(), loss="mse")
    compiled(gan)
    with pytest.raises(DataError, match=r"data_range \[-1, 1\]"):
        gan.fit(data(8) * 3, verbose=0)
    with pytest.raises(DataError, match="columns"):
        gan.fit(np.zeros((8, 5), "float32"), verbose=0)
    with pytest.raises(DataError, match="finite"):
        gan.fit(np.full((8, 4), np.nan, "float32"), verbose=0)


# ----- the guard and mixed precision -----------------------------------------------------------
def test_a_diverging_game_is_stopped_by_the_guard():
    gan = small_gan()
    gan.compile(generator_optimizer=keras.optimizers.SGD(1e30),
                discriminator_optimizer=keras.optimizers.SGD(1e30), steps_per_execution=1)
    with pytest.raises(TrainingDivergedError):
        gan.fit(data(64), batch_size=16, epochs=3, verbose=0)


def test_mixed_precision_updates_both_players_as_float32_does():
    """Under mixed_float16 each player's loss must be scaled (optimizer.scale_loss), or the
    loss-scale optimizer divides its update by 2^15; one step's update norms must match."""
    assert_mixed_precision_step_matches_float32(small_gan, tf.constant(data(16)), 0.1)


def test_leaky_relu_matches_keras_values_and_gradients():
    # Oracle: keras.layers.LeakyReLU and autodiff of its op, which reads the input; ours reads
    # the output. Negative, zero and positive inputs, float32 and float16.
    for dtype in ("float32", "float16"):
        x = tf.constant(np.linspace(-3, 3, 13).reshape(1, 13), dtype)
        for layer in (LeakyReLU(negative_slope=0.2, dtype=dtype),
                      keras.layers.LeakyReLU(negative_slope=0.2, dtype=dtype)):
            with tf.GradientTape() as tape:
                tape.watch(x)
                y = layer(x)
                loss = tf.reduce_sum(y * tf.cast(tf.range(13, dtype=tf.float32) - 6.0, dtype))
            if isinstance(layer, LeakyReLU):
                ours = (y.numpy(), tape.gradient(loss, x).numpy())
            else:
                theirs = (y.numpy(), tape.gradient(loss, x).numpy())
        np.testing.assert_array_equal(ours[0], theirs[0])
        np.testing.assert_array_equal(ours[1], theirs[1])
        assert ours[1].dtype == np.dtype(dtype)
    clone = LeakyReLU.from_config(LeakyReLU(negative_slope=0.1, name="l").get_config())
    assert clone.negative_slope == pytest.approx(0.1)
    with pytest.raises(ValueError):
        LeakyReLU(negative_slope=-0.1)


def test_the_dcgan_trains_in_keras_multi_step_loop_without_a_graph_optimizer_error():
    # With keras.layers.LeakyReLU, TensorFlow's graph optimizer fails on convolution + bias +
    # LeakyReLU and its gradient inside the multi-step loop of Chapter 5's DCGAN, prints
    # "remapper failed" to the process's stderr (into the notebook's cell) and leaves the step
    # unfused; the library's LeakyReLU avoids it. A fresh process, so that the message cannot
    # come from, or be hidden by, another test's graphs.
    script = textwrap.dedent("""
        import keras, numpy as np
        from course_lib.adversarial import GAN, dcgan_discriminator, dcgan_generator
        keras.utils.set_random_seed(0)
        gan = GAN(dcgan_generator(100, filters=(64, 32)), dcgan_discriminator(filters=(32, 64)),
                  latent_dim=100, data_range=(-1.0, 1.0), seed=0)    # Chapter 5's DCGAN
        gan.compile(generator_optimizer=keras.optimizers.Adam(2e-4),
                    discriminator_optimizer=keras.optimizers.Adam(2e-4))
        x = np.random.default_rng(0).uniform(-1, 1, (64 * 33, 784)).astype("float32")
        gan.fit(x, batch_size=64, epochs=1, verbose=0)
        print("TRAINED")
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            timeout=300, env=child_env())
    assert result.returncode == 0 and "TRAINED" in result.stdout, result.stderr[-2000:]
    optimizer_errors = [line for line in result.stderr.splitlines() if "meta_optimizer" in line]
    assert not optimizer_errors, optimizer_errors


def test_the_dcgan_networks_play_the_game_on_mnist_shapes():
    keras.utils.set_random_seed(0)
    gan = GAN(dcgan_generator(10, filters=(8, 4)), dcgan_discriminator(filters=(4, 8)),
              latent_dim=10, data_range=(-1.0, 1.0), seed=0)
    assert gan.data_dim == 784
    images = np.random.default_rng(0).uniform(-1, 1, (32, 784)).astype("float32")
    before = weights(gan.generator.trainable_variables)
    compiled(gan, lr=1e-3).fit(images, batch_size=16, epochs=1, verbose=0)
    assert all(not np.array_equal(a, b) for a, b in
               zip(before, weights(gan.generator.trainable_variables), strict=True))
    assert np.abs(gan.sample(4, seed=0)).max() <= 1.0
    with pytest.raises(ValueError, match="divisible by 4"):
        dcgan_generator(10, image_shape=(30, 30))
