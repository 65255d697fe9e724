"""The shared fit keeps Keras' meaning: every row trained, defaults as in Keras, validation
data checked like training data, unsupported arguments refused, no warning; and the guard,
checkpoints and input pipeline work for a model with two optimizers (two players)."""

import warnings

import keras
import numpy as np
import pytest
import tensorflow as tf

from course_lib import sampling
from course_lib.boltzmann import BernoulliRBM
from course_lib.checks import check_images
from course_lib.training import (
    DEFAULT_STEPS_PER_EXECUTION,
    DivergenceGuard,
    GuardedFitMixin,
    SafeCheckpoint,
    TrainingDivergedError,
    replica_scale,
    resume,
    unpack_batch,
    unpaired_dataset,
)


def random_binary(n, d, seed=0):
    return (np.random.default_rng(seed).random((n, d)) < 0.5).astype("float32")


def rbm(**compile_kwargs):
    model = BernoulliRBM(6, 4, seed=0)
    model.compile(optimizer=keras.optimizers.SGD(0.1), **compile_kwargs)
    return model


# ----- Keras' meaning of fit --------------------------------------------------------------
def test_every_row_is_trained_including_the_last_partial_batch():
    model = rbm(steps_per_execution=1)
    model.fit(random_binary(50, 6), batch_size=16, epochs=2, verbose=0)
    assert int(model.optimizer.iterations) == 2 * 4  # 16 + 16 + 16 + 2 rows per epoch


def test_batch_size_defaults_to_keras_32():
    model = rbm(steps_per_execution=1)
    model.fit(random_binary(70, 6), epochs=1, verbose=0)
    assert int(model.optimizer.iterations) == 3      # 32 + 32 + 6


@pytest.mark.parametrize("bad", [0, -1, 2.5, True, "32"])
def test_a_bad_batch_size_is_refused_not_replaced(bad):
    model = rbm()
    with pytest.raises(ValueError, match=f"batch_size must be an integer >= 1; got {bad!r}"):
        model.fit(random_binary(40, 6), batch_size=bad, verbose=0)
    assert int(model.optimizer.iterations) == 0


@pytest.mark.parametrize("bad", [0, -1, 1.5])
def test_a_bad_epoch_count_is_refused(bad):
    with pytest.raises(ValueError, match="epochs must be an integer"):
        rbm().fit(random_binary(40, 6), epochs=bad, verbose=0)


@pytest.mark.parametrize("kwargs, match", [
    ({"epochs": 2, "initial_epoch": 2}, "initial_epoch=2 leaves nothing to train.*epochs=4"),
    ({"epochs": 2, "initial_epoch": -1}, "initial_epoch must be an integer >= 0"),
    ({"epochs": 2, "initial_epoch": 0.5}, "initial_epoch must be an integer >= 0"),
])
def test_an_initial_epoch_that_trains_nothing_is_refused(kwargs, match):
    model = rbm()
    with pytest.raises(ValueError, match=match):
        model.fit(random_binary(40, 6), verbose=0, **kwargs)
    assert int(model.optimizer.iterations) == 0


@pytest.mark.parametrize("bad", [0, -2, 1.5])
def test_a_bad_steps_per_execution_is_refused(bad):
    with pytest.raises(ValueError, match="steps_per_execution must be an integer"):
        rbm(steps_per_execution=bad)


@pytest.mark.parametrize("kwargs, name", [
    ({"sample_weight": np.ones(40)}, "sample_weight"),
    ({"class_weight": {0: 1.0}}, "class_weight"),
])
def test_example_weights_are_refused_not_ignored(kwargs, name):
    with pytest.raises(ValueError, match=f"does not weight examples; got {name}"):
        rbm().fit(random_binary(40, 6), verbose=0, **kwargs)


def test_sample_weights_inside_a_dataset_are_refused():
    x = random_binary(16, 6)
    dataset = tf.data.Dataset.from_tensor_slices((x, x, np.ones(16, "float32"))).batch(8)
    with pytest.raises(ValueError, match="does not weight examples"):
        rbm().fit(dataset, verbose=0)


def test_unpack_batch_reads_every_keras_batch_form():
    x, y = tf.ones((2, 3)), tf.zeros((2,))
    assert unpack_batch(x)[0] is x and unpack_batch(x)[1] is None
    assert unpack_batch((x,))[0] is x
    assert unpack_batch((x, y))[1] is y
    assert unpack_batch((x, y, None))[1] is y
    with pytest.raises(ValueError, match="Tiny does not weight examples"):
        unpack_batch((x, y, tf.ones((2,))), "Tiny")


def test_validation_data_is_validated_like_the_training_data():
    model = rbm()
    x = random_binary(40, 6)
    with pytest.raises(ValueError, match="validation_data must be finite"):
        model.fit(x, validation_data=np.full((8, 6), np.nan, "float32"), verbose=0)
    with pytest.raises(ValueError, match=r"validation_data must hold binary values.*\[255, 255\]"):
        model.fit(x, validation_data=(np.full((8, 6), 255.0, "float32"),), verbose=0)
    with pytest.raises(ValueError, match=r"validation_data must have shape \(n, 6\)"):
        model.fit(x, validation_data=random_binary(8, 5), verbose=0)
    assert int(model.optimizer.iterations) == 0
    history = model.fit(x, validation_data=random_binary(8, 6), verbose=0)
    assert np.isfinite(history.history["val_free_energy"][0])


def dataset_of(x, y=None, batch=8):
    parts = x if y is None else (x, y)
    return tf.data.Dataset.from_tensor_slices(parts).batch(batch)


@pytest.mark.parametrize("bad, match", [
    (np.full((16, 6), 255.0, "float32"), r"a batch of x must hold binary values.*255"),
    (np.where(random_binary(16, 6) > 0, np.nan, 0.0).astype("float32"), "a batch of x must "
                                                                         "be finite"),
])
def test_a_tf_data_input_gets_the_checks_an_array_gets(bad, match):
    model = rbm()
    with pytest.raises(ValueError, match=match) as info:
        model.fit(dataset_of(bad), epochs=1, verbose=0)
    assert "Traceback" not in str(info.value) and len(str(info.value)) < 300
    history = model.fit(dataset_of(random_binary(16, 6)), epochs=1, verbose=0)
    assert np.isfinite(history.history["free_energy"][0])


def test_a_tf_data_validation_set_is_checked_too():
    model = rbm()
    x = random_binary(16, 6)
    with pytest.raises(ValueError, match="a batch of validation_data must be finite"):
        model.fit(x, validation_data=dataset_of(np.full((8, 6), np.nan, "float32")),
                  verbose=0)
    history = model.fit(x, validation_data=dataset_of(random_binary(8, 6)), verbose=0)
    assert np.isfinite(history.history["val_free_energy"][0])


def test_tf_data_labels_of_a_conditional_vae_are_checked():
    from course_lib.variational.vae import VAE

    model = VAE(6, 2, (4,), num_classes=3, seed=0)
    model.compile(keras.optimizers.Adam(1e-3))
    x = random_binary(16, 6)
    with pytest.raises(ValueError, match=r"labels of x.*\[0, 3\)"):
        model.fit(dataset_of(x, np.arange(16)), verbose=0)      # labels 3..15 out of range
    with pytest.raises(ValueError, match="label"):
        model.fit(dataset_of(x), verbose=0)                      # labels missing
    history = model.fit(dataset_of(x, np.arange(16) % 3), verbose=0)
    assert np.isfinite(history.history["negative_bound"][0])
    with pytest.raises(ValueError, match="takes no labels"):
        rbm().fit(dataset_of(x, np.arange(16)), verbose=0)


def test_lists_are_arrays_and_other_inputs_are_refused_by_name():
    model = rbm()
    rows = random_binary(16, 6).tolist()
    history = model.fit(rows, batch_size=8, verbose=0)
    assert int(model.optimizer.iterations) == 2 and np.isfinite(history.history["free_energy"])
    with pytest.raises(ValueError, match="rows of different lengths") as info:
        model.fit([[0.0, 1.0], [1.0]], verbose=0)
    assert len(str(info.value)) < 200                     # never the data themselves
    with pytest.raises(ValueError, match=r"must have shape \(n, 6\)") as info:
        model.fit(np.zeros((5000, 3)).tolist(), verbose=0)
    assert len(str(info.value)) < 200
    with pytest.raises(TypeError, match="array .* or a tf.data.Dataset; got generator"):
        model.fit((row for row in rows), verbose=0)
    with pytest.raises(TypeError, match="validation_data must be"):
        model.fit(rows, validation_data={"x": rows}, verbose=0)


def test_evaluate_checks_its_input_like_fit():
    from course_lib.variational.vae import VAE

    model = rbm()
    x = random_binary(16, 6)
    with pytest.raises(ValueError, match="x must be finite"):
        model.evaluate(np.full((8, 6), np.nan, "float32"), verbose=0)
    with pytest.raises(ValueError, match="a batch of x must hold binary"):
        model.evaluate(dataset_of(np.full((8, 6), 3.0, "float32")), verbose=0)
    with pytest.raises(ValueError, match="does not weight"):
        model.evaluate(x, sample_weight=np.ones(16), verbose=0)
    result = model.evaluate(x, batch_size=8, verbose=0, return_dict=True)
    expected = float(keras.ops.mean(model.free_energy(tf.constant(x))))
    np.testing.assert_allclose(result["free_energy"], expected, rtol=1e-5)   # both batches

    conditional = VAE(6, 2, (4,), num_classes=3, seed=0)
    conditional.compile(keras.optimizers.Adam(1e-3))
    with pytest.raises(ValueError, match=r"\[0, 3\)"):
        conditional.evaluate(x, np.arange(16), verbose=0)       # labels out of range
    assert np.isfinite(conditional.evaluate(x, np.arange(16) % 3, verbose=0, return_dict=True)
                       ["negative_bound"])


def test_validation_split_holds_out_the_last_rows():
    model = rbm(steps_per_execution=1)
    x = random_binary(40, 6)
    x[30:] = 1.0                                       # the held-out rows are all ones
    history = model.fit(x, validation_split=0.25, batch_size=10, epochs=1, shuffle=False,
                        verbose=0)
    assert int(model.optimizer.iterations) == 3        # 30 training rows
    expected = float(keras.ops.mean(model.free_energy(tf.constant(x[30:]))))
    np.testing.assert_allclose(history.history["val_free_energy"][0], expected, rtol=1e-5)
    with pytest.raises(ValueError, match="validation_split must be a float in"):
        model.fit(x, validation_split=1.5, verbose=0)


def test_fit_on_arrays_prints_no_warning():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        rbm().fit(random_binary(40, 6), batch_size=8, epochs=2, verbose=0)


def test_compile_chooses_steps_per_execution_unless_given():
    assert rbm().steps_per_execution == DEFAULT_STEPS_PER_EXECUTION
    assert rbm(steps_per_execution=3).steps_per_execution == 3


def test_compile_chooses_one_step_per_call_under_a_distribution_strategy():
    with tf.distribute.OneDeviceStrategy("/cpu:0").scope():
        assert rbm().steps_per_execution == 1


def test_steps_per_execution_does_not_change_the_result():
    """32 steps per call and one step per call train the same model."""
    x = random_binary(96, 6, seed=2)
    models = [rbm(steps_per_execution=s) for s in (1, DEFAULT_STEPS_PER_EXECUTION)]
    for model in models:
        model.fit(x, batch_size=8, epochs=2, verbose=0)
    for a, b in zip(models[0].weights, models[1].weights, strict=True):
        np.testing.assert_allclose(keras.ops.convert_to_numpy(a), keras.ops.convert_to_numpy(b),
                                   rtol=1e-5, atol=1e-6, err_msg=a.path)


# ----- the guard -----------------------------------------------------------------------
def test_the_guard_runs_first_among_the_callbacks(monkeypatch):
    """The library's guard checks the weights before any user callback (a checkpoint) sees
    them; a guard the user places is left where it is."""
    order = []

    class Probe(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            order.append("user")

    original = DivergenceGuard.on_epoch_end

    def recorded(self, epoch, logs=None):
        order.append("guard")
        return original(self, epoch, logs)

    monkeypatch.setattr(DivergenceGuard, "on_epoch_end", recorded)
    model = rbm()
    model.fit(random_binary(16, 6), epochs=1, verbose=0, callbacks=[Probe()])
    assert order == ["guard", "user"]
    order.clear()
    model.fit(random_binary(16, 6), epochs=1, verbose=0, callbacks=[Probe(), DivergenceGuard()])
    assert order == ["user", "guard"]


# ----- two players --------------------------------------------------------------------
@keras.saving.register_keras_serializable(package="course_lib_tests")
class TwoPlayers(GuardedFitMixin, keras.Model):
    """A minimal two-optimizer model: player A fits the data mean, player B fits A's output
    (the shape of a GAN's step), each with its own optimizer and variables."""

    def __init__(self, dim=3, seed=0, **kwargs):
        super().__init__(**kwargs)
        self.dim, self.seed = dim, seed
        self.seed_generator = sampling.tracked_seed_generator(self, seed)
        self.loss_a_tracker = keras.metrics.Mean(name="loss_a")
        self.build((None, dim))

    def build(self, input_shape):
        self.a = self.add_weight(shape=(self.dim,), initializer="zeros", name="a")
        self.b = self.add_weight(shape=(self.dim,), initializer="zeros", name="b")

    def compile(self, a_optimizer, b_optimizer, **kwargs):
        super().compile(**kwargs)
        self.a_optimizer, self.b_optimizer = a_optimizer, b_optimizer

    def optimizer_variables(self):
        return [(self.a_optimizer, [self.a]), (self.b_optimizer, [self.b])]

    def get_compile_config(self):
        return {**super().get_compile_config(),
                "a_optimizer": keras.saving.serialize_keras_object(self.a_optimizer),
                "b_optimizer": keras.saving.serialize_keras_object(self.b_optimizer)}

    def check_visible(self, x, name="x"):
        return check_images(x, expected_dim=self.dim, name=name)

    def call(self, x):
        return x

    def train_step(self, data):
        x, _ = unpack_batch(data, "TwoPlayers")
        noise = keras.random.normal(keras.ops.shape(x), seed=self.seed_generator) * 0.01
        with tf.GradientTape() as tape:
            loss_a = replica_scale(keras.ops.mean(keras.ops.square(x + noise - self.a)))
        self.a_optimizer.apply(tape.gradient(loss_a, [self.a]), [self.a])
        with tf.GradientTape() as tape:
            loss_b = replica_scale(keras.ops.mean(keras.ops.square(self.a - self.b)))
        self.b_optimizer.apply(tape.gradient(loss_b, [self.b]), [self.b])
        self.loss_a_tracker.update_state(loss_a)
        return {"loss_a": self.loss_a_tracker.result()}

    @property
    def metrics(self):
        return [self.loss_a_tracker]

    def get_config(self):
        return {**super().get_config(), "dim": self.dim, "seed": self.seed}


def two_players(lr_a=0.1, momentum=0.5):
    model = TwoPlayers()
    model.compile(keras.optimizers.SGD(lr_a, momentum=momentum),
                  keras.optimizers.Adam(0.05), steps_per_execution=1)
    return model


def test_two_players_checkpoint_and_resume_exactly(tmp_path):
    """Both optimizers' states (momentum, Adam moments, counts) go into the checkpoint, and
    2 epochs + resume + 2 epochs equals 4 epochs."""
    x = np.random.default_rng(0).normal(size=(24, 3)).astype("float32") + 2.0
    straight = two_players()
    straight.fit(x, batch_size=8, epochs=4, shuffle=False, verbose=0)
    path = tmp_path / "players.keras"
    first = two_players()
    first.fit(x, batch_size=8, epochs=2, shuffle=False, verbose=0,
              callbacks=[SafeCheckpoint(path, monitor=None)])
    resumed, epochs = resume(path)
    assert epochs == 2
    assert int(resumed.a_optimizer.iterations) == int(resumed.b_optimizer.iterations) == 6
    resumed.fit(x, batch_size=8, epochs=4, initial_epoch=epochs, shuffle=False, verbose=0)
    for name in ("a", "b"):
        np.testing.assert_allclose(keras.ops.convert_to_numpy(getattr(resumed, name)),
                                   keras.ops.convert_to_numpy(getattr(straight, name)),
                                   rtol=1e-6, err_msg=name)


def test_the_guard_stops_a_diverging_player():
    x = np.random.default_rng(0).normal(size=(64, 3)).astype("float32")
    with pytest.raises(TrainingDivergedError):
        two_players(lr_a=1e30, momentum=0.0).fit(x * 1e20, batch_size=8, epochs=3, verbose=0)


def test_every_players_optimizer_is_built_before_the_first_trace():
    model = two_players()
    with pytest.raises(ValueError, match="must have shape"):
        model.fit(np.ones((8, 4), "float32"), verbose=0)      # refused before tracing
    model.fit(np.ones((8, 3), "float32"), verbose=0)            # and a later fit works
    assert model.a_optimizer.built and model.b_optimizer.built


# ----- unpaired_dataset: two domains of any sizes -----------------------------------------
def rows(n, start=0, shape=(2,)):
    """n rows, row i filled with the value start + i (so a row names itself)."""
    values = np.arange(start, start + n, dtype="float32")
    return np.broadcast_to(values.reshape(-1, *[1] * len(shape)), (n, *shape)).copy()


def unpaired_orders(x, y, batch_size, **kwargs):
    """The row indices of one pass over unpaired_dataset, per set, and the batch sizes."""
    batches = list(unpaired_dataset(x, y, batch_size, **kwargs).as_numpy_iterator())
    orders, sizes = [], []
    for k, data in enumerate((x, y)):
        got = np.concatenate([b[k] for b in batches]).reshape(-1, data[0].size)
        assert (got == got[:, :1]).all()            # each delivered row is one stored row
        orders.append(got[:, 0].astype(int) - int(data.flat[0]))
        sizes.append([len(b[k]) for b in batches])
    assert sizes[0] == sizes[1]
    return orders[0], orders[1], sizes[0]


def assert_cycled_blocks(order, size):
    """Each run of ``size`` consecutive draws of the smaller set is a permutation of it."""
    for start in range(0, len(order) - size + 1, size):
        assert sorted(order[start:start + size]) == list(range(size)), (start, order)
    tail = order[len(order) - len(order) % size:]
    assert len(set(tail)) == len(tail) and set(tail) <= set(range(size))


@pytest.mark.parametrize("larger_first", [True, False], ids=["x larger", "y larger"])
def test_unpaired_dataset_runs_the_larger_set_once_and_cycles_the_smaller(larger_first):
    # 10 and 3 rows, batches of 4: batches 4, 4, 2 (the partial batch kept); the larger set
    # once, every row once; the smaller one 10 = 3 + 3 + 3 + 1 draws, each block of 3 a
    # permutation, so each row 3 or 4 times. Catches a pass over the smaller set (3 rows,
    # 1 batch), an i.i.d. draw with replacement, a dropped partial batch, and the two sets'
    # roles tied to their positions instead of their sizes.
    big, small = rows(10), rows(3, start=100)
    x, y = (big, small) if larger_first else (small, big)
    order_x, order_y, sizes = unpaired_orders(x, y, 4, seed=3)
    big_order, small_order = (order_x, order_y) if larger_first else (order_y, order_x)
    assert sizes == [4, 4, 2]
    assert sorted(big_order) == list(range(10))
    assert sorted(np.bincount(small_order, minlength=3)) == [3, 3, 4]
    assert_cycled_blocks(small_order, 3)


def test_unpaired_dataset_reshuffles_every_repetition_of_the_smaller_set():
    # 5 rows cycled 8 times against 40: the 8 blocks of one pass are not one permutation
    # repeated (probability 120^-7 for a correct shuffle); each is a permutation.
    _, order, _ = unpaired_orders(rows(40), rows(5, start=50), 8, seed=0)
    assert_cycled_blocks(order, 5)
    blocks = {tuple(order[i:i + 5]) for i in range(0, 40, 5)}
    assert len(blocks) > 1
    # and the larger set is shuffled too, not in its stored order
    big, _, _ = unpaired_orders(rows(40), rows(5, start=50), 8, seed=0)
    assert list(big) != list(range(40))


def test_unpaired_dataset_equal_sizes_use_every_row_of_both_once():
    order_x, order_y, sizes = unpaired_orders(rows(7), rows(7, start=20), 3, seed=1)
    assert sizes == [3, 3, 1]
    assert sorted(order_x) == sorted(order_y) == list(range(7))


def test_unpaired_dataset_order_is_keyed_by_seed_and_epoch():
    x, y = rows(10), rows(3, start=100)

    def order(**kwargs):
        return np.concatenate(unpaired_orders(x, y, 4, **kwargs)[:2])

    first = order(seed=5, epoch=0)
    np.testing.assert_array_equal(first, order(seed=5, epoch=0))   # reproducible
    assert not np.array_equal(first, order(seed=5, epoch=1))        # a new order per epoch
    assert not np.array_equal(first, order(seed=6, epoch=0))        # and per seed
    # a tf.Variable epoch is read when an iterator starts: one dataset, a new order per pass,
    # each the order of that epoch number
    epoch = tf.Variable(0, dtype=tf.int64)
    dataset = unpaired_dataset(x, y, 4, seed=5, epoch=epoch)
    for e in (0, 1, 2):
        epoch.assign(e)
        batches = list(dataset.as_numpy_iterator())
        got = [np.concatenate([b[k] for b in batches])[:, 0] for k in (0, 1)]
        np.testing.assert_array_equal(np.concatenate([got[0], got[1] - 100]),
                                      order(seed=5, epoch=e))


def test_unpaired_dataset_without_shuffle_gives_the_stored_orders_the_smaller_cycled():
    order_x, order_y, sizes = unpaired_orders(rows(10), rows(3, start=100), 4, shuffle=False)
    assert list(order_x) == list(range(10))
    assert list(order_y) == [0, 1, 2, 0, 1, 2, 0, 1, 2, 0]
    assert sizes == [4, 4, 2]


def test_unpaired_dataset_batches_and_cardinality():
    # whole batches have a static shape; a partial last batch is kept and counted; a batch
    # larger than both sets is one batch of the larger set's size
    whole = unpaired_dataset(rows(10, shape=(2, 3)), rows(3, shape=(2, 3)), 5, seed=0)
    assert [tuple(s.shape) for s in whole.element_spec] == [(5, 2, 3), (5, 2, 3)]
    assert int(whole.cardinality()) == 2
    partial = unpaired_dataset(rows(10), rows(3), 4, seed=0)
    assert int(partial.cardinality()) == 3
    order_x, order_y, sizes = unpaired_orders(rows(10), rows(3, start=100), 16, seed=0)
    assert sizes == [10]
    assert sorted(order_x) == list(range(10)) and sorted(np.bincount(order_y)) == [3, 3, 4]


def test_unpaired_dataset_refuses_an_empty_set_clearly():
    # An empty domain cannot be cycled: it should be refused with a ValueError that says
    # so, not fail inside the tf.data trace with a ZeroDivisionError (StagingError).
    with pytest.raises(ValueError, match="(?i)empty|at least one"):
        unpaired_dataset(rows(4), rows(0), 2, seed=0)


@pytest.mark.parametrize("bad", [0, -1, 2.5, "4"])
def test_unpaired_dataset_refuses_a_bad_batch_size(bad):
    with pytest.raises((TypeError, ValueError), match=f"batch_size must be an integer >= 1; "
                                                      f"got {bad!r}"):
        unpaired_dataset(rows(4), rows(2), bad, seed=0)
