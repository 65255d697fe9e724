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
              callbacks=[SafeCheckpoint(path)])
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
