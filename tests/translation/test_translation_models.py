"""CycleGAN and UNIT as whole models (Chapter 8): what their ``train_step``, ``fit``, saving and
translation must do, on tiny networks (8x8 images, 16x16 for mixed precision; two filters).

- Each step moves only the player whose optimizer moves, and the two optimizers' variable
  lists split the trainable variables between them, each variable once.
- UNIT's shared layers are one set of variables that both domains' paths reach.
- Save / load keeps every weight, both optimizers and the image histories, and training
  continues as if never interrupted.
- XLA gives the plain step; NaN stops ``fit``; mixed precision moves both players as
  float32 does; two replicas give the one-device epoch (a child process).
- Bad inputs and networks that do not fit are refused with what was expected.
- ``translate`` and ``cycle`` are the networks' own maps, batch by batch.

Most steps run eagerly (``run_eagerly=True``): tracing these models' steps costs seconds,
an eager step a fraction of one, and what is checked here does not depend on the tracing.
The traced paths are checked where they matter: XLA, and the two-replica script.
"""

import textwrap

import keras
import numpy as np
import pytest
import tensorflow as tf
from keras import ops
from model_checks import saved_and_loaded
from replicas import TWO_CPUS, run_script

from course_lib import sampling
from course_lib.checks import DataError
from course_lib.training import TrainingDivergedError
from course_lib.translation import (
    UNIT,
    CycleGAN,
    cyclegan_networks,
    unit_networks,
)

SHAPE = (8, 8, 1)


def images(n, seed, shape=SHAPE):
    return np.random.default_rng(seed).uniform(-1, 1, (n, *shape)).astype("float32")


# Unpaired domains of different sizes: a pass is two batches of 8, Y's rows cycled.
X, Y = images(16, 1), images(10, 2)


def cyclegan(seed=0, shape=SHAPE, **kwargs):
    """A tiny CycleGAN whose history (4 images) is full after the first half-batch."""
    keras.utils.set_random_seed(seed)
    kwargs = {"history_size": 4, **kwargs}
    return CycleGAN(**cyclegan_networks(shape, generator_filters=2, residual_blocks=1,
                                        discriminator_filters=2),
                    image_shape=shape, seed=seed, **kwargs)


def unit(seed=0, shape=SHAPE, **kwargs):
    keras.utils.set_random_seed(seed)
    return UNIT(**unit_networks(shape, filters=2, latent_channels=2, discriminator_filters=2),
                image_shape=shape, seed=seed, **kwargs)


MAKERS = {"CycleGAN": cyclegan, "UNIT": unit}


def compiled(model, generator=None, discriminator=None, **kwargs):
    model.compile(generator_optimizer=generator or keras.optimizers.Adam(1e-2, beta_1=0.5),
                  discriminator_optimizer=discriminator or keras.optimizers.Adam(1e-2,
                                                                                 beta_1=0.5),
                  **kwargs)
    return model


def weights(variables):
    return [v.numpy().copy() for v in variables]


def ids(variables):
    return [id(v) for v in variables]


# ----- each player moves only itself -----------------------------------------------------------
@pytest.mark.parametrize("name", MAKERS)
def test_the_two_optimizers_split_the_trainable_variables_each_once(name):
    model = compiled(MAKERS[name]())
    (g_optimizer, g_vars), (d_optimizer, d_vars) = model.optimizer_variables()
    assert g_optimizer is model.generator_optimizer
    assert d_optimizer is model.discriminator_optimizer
    assert len(set(ids(g_vars))) == len(g_vars) and len(set(ids(d_vars))) == len(d_vars)
    assert not set(ids(g_vars)) & set(ids(d_vars))
    trainable = model.trainable_variables
    assert len(set(ids(trainable))) == len(trainable)
    assert set(ids(g_vars)) | set(ids(d_vars)) == set(ids(trainable))
    # the discriminators are the second player; every other network is the first
    judges = model.discriminator_x.trainable_variables + model.discriminator_y.trainable_variables
    assert set(ids(d_vars)) == set(ids(judges))
    assert len(g_vars) > len(d_vars) > 0


@pytest.mark.parametrize("frozen", ["generator", "discriminator"])
@pytest.mark.parametrize("name", MAKERS)
def test_a_step_moves_only_the_player_whose_optimizer_moves(name, frozen):
    """One fit step with one player's learning rate 0: that player must not move at all, and
    every variable of the other must (a variable in no optimizer's list, or in the wrong
    one, fails this)."""
    rates = {"generator": 0.1, "discriminator": 0.1, frozen: 0.0}
    model = compiled(MAKERS[name](), keras.optimizers.SGD(rates["generator"]),
                     keras.optimizers.SGD(rates["discriminator"]), run_eagerly=True)
    players = dict(zip(("generator", "discriminator"), model.player_variables(), strict=True))
    before = {player: weights(variables) for player, variables in players.items()}
    model.fit(X[:8], Y[:8], batch_size=8, verbose=0)
    for player, variables in players.items():
        for start, variable in zip(before[player], variables, strict=True):
            if player == frozen:
                np.testing.assert_array_equal(variable.numpy(), start, err_msg=variable.path)
            else:
                assert not np.array_equal(variable.numpy(), start), variable.path
    assert int(model.generator_optimizer.iterations) == 1
    assert int(model.discriminator_optimizer.iterations) == 1


# ----- UNIT's shared latent space --------------------------------------------------------------
def test_unit_s_shared_layers_are_one_set_of_variables_both_domains_reach():
    model = unit()
    shared = model.shared_encoder.trainable_variables + model.shared_decoder.trainable_variables
    for domain, other in (("x", "y"), ("y", "x")):
        own = (getattr(model, f"encoder_{domain}").trainable_variables
               + getattr(model, f"decoder_{domain}").trainable_variables)
        foreign = (getattr(model, f"encoder_{other}").trainable_variables
                   + getattr(model, f"decoder_{other}").trainable_variables)
        batch = tf.constant(images(4, 3))
        with tf.GradientTape() as tape:     # a loss of this domain's path alone
            latent = model.encode(batch, domain, training=True)
            loss = (ops.mean(ops.square(model.decode(latent, domain, training=True) - batch))
                    + ops.mean(ops.square(latent)))
        grads = tape.gradient(loss, shared + own + foreign)
        for variable, grad in zip(shared + own, grads, strict=False):
            assert grad is not None and np.any(grad.numpy() != 0), (domain, variable.path)
        assert all(g is None for g in grads[len(shared + own):]), domain
    trainable = model.trainable_variables
    assert len(set(ids(trainable))) == len(trainable)
    assert len({v.path for v in trainable}) == len(trainable)
    assert set(ids(shared)) <= set(ids(model.player_variables()[0]))
    networks = [getattr(model, name) for name in (
        "encoder_x", "encoder_y", "shared_encoder", "shared_decoder", "decoder_x", "decoder_y",
        "discriminator_x", "discriminator_y")]
    per_network = sum(int(np.prod(v.shape)) for n in networks for v in n.trainable_variables)
    assert sum(int(np.prod(v.shape)) for v in trainable) == per_network


def test_one_network_in_two_places_is_refused():
    parts = unit_networks(SHAPE, filters=2, latent_channels=2, discriminator_filters=2)
    for copy, of in (("encoder_y", "encoder_x"), ("discriminator_y", "discriminator_x")):
        with pytest.raises(ValueError, match="8 distinct networks"):
            UNIT(**{**parts, copy: parts[of]}, image_shape=SHAPE)
    parts = cyclegan_networks(SHAPE, generator_filters=2, residual_blocks=1,
                              discriminator_filters=2)
    for copy, of in (("generator_yx", "generator_xy"), ("discriminator_y", "discriminator_x")):
        with pytest.raises(ValueError, match="4 distinct networks"):
            CycleGAN(**{**parts, copy: parts[of]}, image_shape=SHAPE)


# ----- saving ----------------------------------------------------------------------------------
@pytest.mark.parametrize("name", MAKERS)
def test_save_and_load_keep_everything_and_training_continues_the_same(name, tmp_path):
    model = compiled(MAKERS[name](), run_eagerly=True)
    x, y = X[:8], Y[:5]                                 # one batch an epoch
    model.fit(x, y, batch_size=8, epochs=1, verbose=0)
    loaded = saved_and_loaded(model, tmp_path / f"{name}.keras", type(model))
    for a, b in zip(model.weights, loaded.weights, strict=True):
        assert a.path == b.path
        np.testing.assert_array_equal(b.numpy(), a.numpy(), err_msg=a.path)
    for which in ("generator_optimizer", "discriminator_optimizer"):
        original, restored = getattr(model, which), getattr(loaded, which)
        assert restored is not original and type(restored) is type(original)
        assert int(restored.iterations) == int(original.iterations) == 1
        assert len(restored.variables) == len(original.variables) > 2     # Adam's slots too
        for a, b in zip(original.variables, restored.variables, strict=True):
            np.testing.assert_array_equal(b.numpy(), a.numpy(), err_msg=f"{which} {a.path}")
    if name == "CycleGAN":
        for domain in "xy":
            original, restored = getattr(model, f"history_{domain}"), getattr(
                loaded, f"history_{domain}")
            assert int(restored.count) == 4 and int(restored.queries) == 1
            assert np.abs(restored.images.numpy()).max() > 0
            np.testing.assert_array_equal(restored.images.numpy(), original.images.numpy())
    # one more epoch of each: the loaded model goes on as the original does (data order,
    # latent noise and history draws come from saved state)
    for each in (model, loaded):
        each.fit(x, y, batch_size=8, epochs=2, initial_epoch=1, verbose=0)
    for a, b in zip(model.weights, loaded.weights, strict=True):
        np.testing.assert_allclose(b.numpy(), a.numpy(), rtol=1e-5, atol=1e-6, err_msg=a.path)


# ----- XLA, the guard, mixed precision -----------------------------------------------------------
@pytest.mark.parametrize("name", MAKERS)
def test_an_xla_epoch_equals_the_plain_epoch(name, monkeypatch):
    """What compile()'s jit_compile="auto" does on a GPU. Keras falls back to a plain
    tf.function when XLA cannot compile a step, so the flag is checked after fit.

    Under XLA TensorFlow's stateless kernels draw other numbers than the plain step does
    from the same seed (measured: stateless_uniform and stateless_normal, Philox or not), so
    the epoch is one batch that the history (8 images) stores and shows unchanged, without
    using its draws, and UNIT's latent noise is a constant. The step is otherwise the
    model's own: XLA compiles the history's update and the noise's addition all the same."""
    if name == "UNIT":
        monkeypatch.setattr(sampling, "batch_normal",
                            lambda shape, seed, dtype="float32": ops.full(shape, 0.5, dtype))
    make = (lambda: cyclegan(history_size=8)) if name == "CycleGAN" else unit
    x, y = X[:8], Y[:5]                                 # one batch
    start = make().get_weights()
    runs = {}
    for mode, options in (("plain", {"run_eagerly": True}),
                          ("xla", {"jit_compile": True, "steps_per_execution": 1})):
        model = compiled(make(), keras.optimizers.SGD(0.1), keras.optimizers.SGD(0.1),
                         **options)
        model.set_weights(start)
        history = model.fit(x, y, batch_size=8, epochs=1, verbose=0).history
        assert all(np.isfinite(v).all() for v in history.values()), (mode, history)
        runs[mode] = model
    assert runs["xla"].jit_compile is True
    for variable, plain, xla, first in zip(runs["plain"].weights, runs["plain"].get_weights(),
                                           runs["xla"].get_weights(), start, strict=True):
        moved = np.abs(plain.astype(np.float64) - first).max()
        if variable.trainable:
            assert moved > 1e-4, variable.path
        # measured: at most 1e-4 of the move (XLA's CPU convolutions are not oneDNN's)
        assert np.abs(xla.astype(np.float64) - plain).max() <= 1e-3 * moved + 1e-7, (
            variable.path, moved)


@pytest.mark.parametrize("name", MAKERS)
def test_a_nan_stops_fit_with_the_guard(name):
    model = compiled(MAKERS[name](), run_eagerly=True)
    network = model.generator_xy if name == "CycleGAN" else model.shared_decoder
    kernel = network.trainable_variables[0]
    kernel.assign(np.full(kernel.shape, np.nan, "float32"))
    with pytest.raises(TrainingDivergedError, match="lower both learning rates"):
        model.fit(X[:8], Y[:8], batch_size=8, verbose=0)


def one_sgd_step(make, policy, start, x, y):
    """One SGD train_step on ``(x, y)`` under ``policy`` from the weights ``start``: each
    player's update. Under mixed_float16 the loss scale starts at 2^8, not Keras' 2^15: at
    2^15 the generators' float16 gradients overflow, and Keras skips their updates while it
    halves the scale (measured on 8x8: CycleGAN's first three, down to 2^12), which leaves
    no update to compare."""
    keras.mixed_precision.set_global_policy(policy)
    try:
        optimizers = [keras.optimizers.SGD(0.1), keras.optimizers.SGD(0.1)]
        if policy == "mixed_float16":
            optimizers = [keras.optimizers.LossScaleOptimizer(o, initial_scale=2.0**8)
                          for o in optimizers]
        model = compiled(make(), *optimizers)
        model.set_weights(start)
        model._build_optimizers()
        players = model.player_variables()
        before = [weights(variables) for variables in players]
        model.train_step((tf.constant(x), tf.constant(y)))
        return [np.concatenate([(v.numpy().astype(np.float64) - b).ravel()
                                for v, b in zip(variables, start_values, strict=True)])
                for variables, start_values in zip(players, before, strict=True)]
    finally:
        keras.mixed_precision.set_global_policy("float32")


@pytest.mark.parametrize("name", MAKERS)
def test_mixed_precision_moves_both_players_as_float32_does(name):
    """tests/model_checks.assert_mixed_precision_step_matches_float32 for models whose players
    are several networks: a player whose loss is not scaled (optimizer.scale_loss) has its
    update divided by the loss scale (2^8 here). On 16x16 images: at 8x8 the generators'
    innermost maps are 2x2, and instance-normalizing four float16 pixels loses so much that
    the generators' float16 step is 0.8 to 2.7 times the float32 one (measured); at 4x4 it is
    within 3%, at a cosine above 0.99."""
    shape = (16, 16, 1)
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:      # compile puts a loss scale around plain optimizers
        model = compiled(MAKERS[name](shape=shape))
    finally:
        keras.mixed_precision.set_global_policy("float32")
    assert model.discriminator_x.layers[1].compute_dtype == "float16"
    assert isinstance(model.generator_optimizer, keras.optimizers.LossScaleOptimizer)
    assert isinstance(model.discriminator_optimizer, keras.optimizers.LossScaleOptimizer)

    def make():
        return MAKERS[name](shape=shape)

    start, x, y = make().get_weights(), images(8, 1, shape), images(8, 2, shape)
    reference = one_sgd_step(make, "float32", start, x, y)
    updates = one_sgd_step(make, "mixed_float16", start, x, y)
    for player, (got, want) in enumerate(zip(updates, reference, strict=True)):
        ratio = np.linalg.norm(got) / np.linalg.norm(want)
        cosine = got @ want / (np.linalg.norm(got) * np.linalg.norm(want))
        assert abs(ratio - 1) < 0.05 and cosine > 0.99, (player, ratio, cosine)


# ----- two replicas ------------------------------------------------------------------------------
MIRRORED_SCRIPT = TWO_CPUS + textwrap.dedent("""
    from keras import ops
    from course_lib import sampling
    from course_lib.translation import (CycleGAN, ImageHistory, UNIT, cyclegan_networks,
                                        unit_networks)

    SHAPE = (8, 8, 1)
    rng = np.random.default_rng(0)

    def images(n):
        return rng.uniform(-1, 1, (n, *SHAPE)).astype("float32")

    def make_cyclegan():     # its histories on: 4 images, full after half a batch
        return CycleGAN(**cyclegan_networks(SHAPE, generator_filters=2, residual_blocks=1,
                                            discriminator_filters=2),
                        image_shape=SHAPE, history_size=4, seed=0)

    def make_unit():         # its latent noise drawn by sampling.batch_normal
        return UNIT(**unit_networks(SHAPE, filters=2, latent_channels=2,
                                    discriminator_filters=2), image_shape=SHAPE, seed=0)

    def run(strategy, make, start, x, y):
        with strategy.scope():
            model = make()
            model.compile(generator_optimizer=keras.optimizers.SGD(0.1),
                          discriminator_optimizer=keras.optimizers.SGD(0.1),
                          run_eagerly=strategy is ONE)     # the traced step where it matters
        model.set_weights(start)
        model.fit(x, y, batch_size=8, epochs=1, verbose=0)
        if strategy is TWO:
            same_on_every_replica(model)
        return model

    # CycleGAN: two whole batches of 8 (static shapes); UNIT: a batch of 8 and one of 4, whose
    # shapes are known only when the step runs. Each replica takes half of every batch.
    for name, make, x, y in (("CycleGAN", make_cyclegan, images(16), images(10)),
                             ("UNIT", make_unit, images(12), images(10))):
        with ONE.scope():
            start = make().get_weights()
        one, two = run(ONE, make, start, x, y), run(TWO, make, start, x, y)
        moved_any = 0
        for v, first, a, b in zip(one.weights, start, one.get_weights(), two.get_weights()):
            moved = np.abs(a.astype(np.float64) - first).max()
            moved_any += moved > 1e-4
            err = np.abs(b.astype(np.float64) - a).max()
            assert err <= 1e-3 * max(moved, 1e-6) + 1e-7, (name, v.path, err, moved)
        assert moved_any >= len(one.trainable_variables), (name, moved_any)
        print(name, "equal")

    # The replicas' blocks may differ in size: a batch of 5 is split 3 and 2. The history's
    # answer and batch_normal's draws, block by block, are one device's for the whole batch.
    with TWO.scope():
        history, generator = ImageHistory(4, seed=3), keras.random.SeedGenerator(5)
        history.build((None, 2, 2, 1))
    alone, alone_generator = ImageHistory(4, seed=3), keras.random.SeedGenerator(5)
    alone.build((None, 2, 2, 1))

    @tf.function
    def query(batch):
        return TWO.run(lambda b: (history(b), sampling.batch_normal(ops.shape(b), generator),
                                  tf.shape(b)[0]), args=(batch,))

    for _ in range(2):       # filling, then swapping
        batch = rng.uniform(-1, 1, (5, 2, 2, 1)).astype("float32")
        split = TWO.experimental_distribute_dataset(
            tf.data.Dataset.from_tensor_slices(batch).batch(5))
        shown, noise, sizes = query(next(iter(split)))
        assert [int(size) for size in sizes.values] == [3, 2]
        np.testing.assert_array_equal(np.concatenate([t.numpy() for t in shown.values]),
                                      alone(batch).numpy())
        np.testing.assert_array_equal(np.concatenate([t.numpy() for t in noise.values]),
                                      sampling.batch_normal((5, 2, 2, 1),
                                                            alone_generator).numpy())
        same_on_every_replica(history)
        np.testing.assert_array_equal(copies(history.images)[0], alone.images.numpy())
    print("TRANSLATION_MIRRORED_OK")
""")


def test_two_replicas_train_as_one_device(tmp_path):
    """The bugs it catches: the history's gathered images sliced back by a static block size
    (which all_gather does not have, nor a batch split 3 and 2), and UNIT's latent noise
    drawn for [mean_x; mean_y] at once (replica r then takes rows of the wrong domain)."""
    run_script(tmp_path, MIRRORED_SCRIPT, "TRANSLATION_MIRRORED_OK")


# ----- refusals ----------------------------------------------------------------------------------
def test_bad_data_is_refused_with_what_was_expected():
    model = compiled(cyclegan(), run_eagerly=True)
    cases = [
        ((X, images(10, 3, (12, 12, 1))), DataError,
         r"domain Y\) must be 8x8 images, shape \(n, 8, 8, 1\); got shape \(10, 12, 12, 1\)"),
        ((X, images(10, 3, (8, 8, 3))), DataError,
         r"must have 1 channel\(s\), shape \(n, 8, 8, 1\); got 3 channel"),
        ((X, 127.5 * (Y + 1)), DataError, r"must lie in \[-1, 1\].*got values in \[\d"),
        ((X[..., 0], Y), DataError, "Add the channel axis"),
        ((np.where(X > 0.9, np.nan, X), Y), DataError, "must be finite"),
        ((X,), ValueError, "needs both domains"),
        ((tf.data.Dataset.from_tensor_slices(X).batch(4),), ValueError,
         r"\(x batch, y batch\) pairs"),
    ]
    for args, error, message in cases:
        with pytest.raises(error, match=message):
            model.fit(*args, verbose=0)
    with pytest.raises(ValueError, match="no validation_split.*validation_data"):
        model.fit(X, Y, validation_split=0.25, verbose=0)
    with pytest.raises(ValueError, match="needs both domains"):
        model.fit(X, Y, validation_data=(X,), verbose=0)
    # a dataset's batches get the same checks, on the host as they are produced
    pairs = tf.data.Dataset.from_tensor_slices((X[:8], 127.5 * (Y[:8] + 1))).batch(4)
    with pytest.raises(DataError, match=r"a batch of x \(domain Y\) must lie in \[-1, 1\]"):
        model.fit(pairs, verbose=0)
    assert int(model.generator_optimizer.iterations) == 0          # nothing trained


def test_networks_that_do_not_fit_are_refused_with_what_was_expected():
    parts = cyclegan_networks(SHAPE, generator_filters=2, residual_blocks=1,
                              discriminator_filters=2)
    three_channels = keras.Sequential([keras.Input(SHAPE), keras.layers.Conv2D(3, 1)])
    with pytest.raises(ValueError, match=r"generator_xy must return images of the input's "
                                         r"shape \(n, 8, 8, 1\); it returns \(1, 8, 8, 3\)"):
        CycleGAN(**{**parts, "generator_xy": three_channels}, image_shape=SHAPE)
    flat = keras.Sequential([keras.Input((64,)), keras.layers.Dense(64)])
    with pytest.raises(ValueError, match=r"generator_yx does not take images of shape "
                                         r"\(n, 8, 8, 1\)"):
        CycleGAN(**{**parts, "generator_yx": flat}, image_shape=SHAPE)
    with pytest.raises(ValueError, match=r"discriminator_y must return one output per image "
                                         r"or patch.*\(1, 2, 2, 3\)"):
        CycleGAN(**{**parts, "discriminator_y": keras.Sequential(
            [keras.Input(SHAPE), keras.layers.Conv2D(3, 4, strides=4)])}, image_shape=SHAPE)
    with pytest.raises(TypeError, match="discriminator_x"):
        CycleGAN(**{**parts, "discriminator_x": lambda images: images}, image_shape=SHAPE)
    parts = unit_networks(SHAPE, filters=2, latent_channels=2, discriminator_filters=2)
    wider = unit_networks(SHAPE, filters=4, latent_channels=2, discriminator_filters=2)
    with pytest.raises(ValueError, match="domain Y's path encoder_y -> shared_encoder -> "
                                         "shared_decoder -> decoder_y does not fit"):
        UNIT(**{**parts, "encoder_y": wider["encoder_y"]}, image_shape=SHAPE)
    colour = unit_networks((8, 8, 3), filters=2, latent_channels=2, discriminator_filters=2)
    with pytest.raises(ValueError, match=r"decoder_x must return images of shape "
                                         r"\(n, 8, 8, 1\); it returns \(1, 8, 8, 3\)"):
        UNIT(**{**parts, "decoder_x": colour["decoder_x"]}, image_shape=SHAPE)


def test_compile_refuses_one_optimizer_for_both_players_and_a_keras_loss():
    model = cyclegan()
    adam = keras.optimizers.Adam()
    with pytest.raises(ValueError, match="two optimizer objects"):
        model.compile(generator_optimizer=adam, discriminator_optimizer=adam)
    with pytest.raises(ValueError, match="takes no loss="):
        model.compile(generator_optimizer=keras.optimizers.Adam(),
                      discriminator_optimizer=keras.optimizers.Adam(), loss="mae")
    with pytest.raises(TypeError, match="discriminator_optimizer must be"):
        model.compile(generator_optimizer=keras.optimizers.Adam(),
                      discriminator_optimizer="adam")


# ----- translate and cycle ------------------------------------------------------------------------
@pytest.mark.parametrize("name", MAKERS)
def test_translate_and_cycle_are_the_networks_maps_batch_by_batch(name):
    model = MAKERS[name]()
    if name == "CycleGAN":
        def there(images, source):
            network = model.generator_xy if source == "x" else model.generator_yx
            return network(images).numpy()
    else:
        def there(images, source):
            return model.decode(model.encode(images, source), "y" if source == "x" else "x"
                                ).numpy()
    translated = model.translate(X, "x_to_y", batch_size=6)     # batches of 6, 6 and 4
    assert translated.shape == X.shape and translated.dtype == np.float32
    assert np.abs(translated).max() <= 1.0
    # each image alone, whatever batch it is in: the same as one batch of all of them, up to
    # float32 rounding (TensorFlow's kernels sum in an order that depends on the batch size:
    # up to 4e-6 measured); an image translated by another image's batch slot is 0.1 off
    np.testing.assert_allclose(translated, there(X, "x"), rtol=1e-5, atol=2e-5)
    np.testing.assert_allclose(model(X).numpy(), translated, rtol=1e-5, atol=2e-5)
    back = model.translate(Y, "y_to_x")
    assert back.shape == Y.shape and np.abs(back).max() <= 1.0
    np.testing.assert_allclose(back, there(Y, "y"), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(model.cycle(X, "x"), there(there(X, "x"), "y"), rtol=1e-5,
                               atol=1e-5)
    np.testing.assert_allclose(model.cycle(Y, "y"), there(there(Y, "y"), "x"), rtol=1e-5,
                               atol=1e-5)
    with pytest.raises(ValueError, match=r"direction must be one of \('x_to_y', 'y_to_x'\); "
                                         r"got 'x_to_z'"):
        model.translate(X, "x_to_z")
    with pytest.raises(ValueError, match=r"domain must be one of \('x', 'y'\); got 'z'"):
        model.cycle(X, "z")
    with pytest.raises(ValueError, match="batch_size must be an integer >= 1; got 0"):
        model.translate(X, batch_size=0)
    with pytest.raises(TypeError, match="batch_size must be an integer"):
        model.translate(X, batch_size=2.5)
    with pytest.raises(DataError, match=r"images to translate must be 8x8 images"):
        model.translate(images(2, 0, (12, 12, 1)))
