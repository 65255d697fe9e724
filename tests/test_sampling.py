"""Random draws: seeds resolve consistently and sub-streams are independent."""

import keras
import numpy as np
import pytest
import tensorflow as tf
from refusals import BAD_REQUIRED_SEEDS, BAD_SEEDS, BAD_STEPS, assert_refused, expand

from course_lib import sampling


def test_int_and_stateless_seeds_are_reproducible():
    a = sampling.uniform((3, 4), sampling.resolve_seed(7, None))
    b = sampling.uniform((3, 4), sampling.resolve_seed(7, None))
    np.testing.assert_array_equal(a, b)


def test_substreams_of_one_seed_differ_even_for_different_shapes():
    # Two stateless draws with the same seed share their leading numbers; sub-streams must not.
    seed = sampling.as_stateless_seed(3)
    same_a = tf.random.stateless_uniform((2, 3), seed=seed)
    same_b = tf.random.stateless_uniform((2, 5), seed=seed)
    assert np.array_equal(np.ravel(same_a)[:3], np.ravel(same_b)[:3])  # the hazard itself
    a = sampling.uniform((2, 3), sampling.substream(seed, 1))
    b = sampling.uniform((2, 5), sampling.substream(seed, 2))
    assert not np.any(np.isclose(np.ravel(a)[:3], np.ravel(b)[:3]))


def test_seed_generator_passes_through_and_advances():
    generator = keras.random.SeedGenerator(1)
    assert sampling.resolve_seed(None, generator) is generator
    assert sampling.substream(generator, 5) is generator
    first = sampling.uniform((4,), generator)
    second = sampling.uniform((4,), generator)
    assert not np.allclose(first, second)


def test_bad_seed_is_refused():
    with pytest.raises(TypeError, match="seed must be"):
        sampling.resolve_seed("seven", None)


def test_bernoulli_frequencies_match_probabilities():
    probs = tf.constant(np.linspace(0.05, 0.95, 10, dtype="float32"))[None, :] * tf.ones((20000, 1))
    draws = sampling.bernoulli(probs, sampling.as_stateless_seed(11)).numpy()
    assert set(np.unique(draws)) <= {0.0, 1.0}
    np.testing.assert_allclose(draws.mean(0), np.linspace(0.05, 0.95, 10), atol=0.012)


# ----- tracked_seed_generator: the one place that relies on Keras' attribute tracking -----
@keras.saving.register_keras_serializable(package="course_lib_tests")
class _Seeded(keras.Model):
    def __init__(self, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.seed = seed
        self.seed_generator = sampling.tracked_seed_generator(self, seed)
        self.build((None, 2))

    def build(self, input_shape):
        self.w = self.add_weight(shape=(2,), initializer="zeros", name="w")

    def call(self, x):
        return x

    def get_config(self):
        return {**super().get_config(), "seed": self.seed}


def test_tracked_seed_state_is_saved_once_and_the_stream_continues(tmp_path):
    """Fails loudly if Keras stops tracking a variable set as a model attribute: the
    models' random streams would then replay after every resume."""
    model = _Seeded(seed=3)
    state_paths = [v.path for v in model.weights if v is model.seed_generator.state]
    assert len(state_paths) == 1, "Keras no longer tracks the seed state as a weight"
    keras.random.uniform((4,), seed=model.seed_generator)          # advance the stream
    path = tmp_path / "seeded.keras"
    model.save(path)
    expected = keras.ops.convert_to_numpy(keras.random.uniform((5,), seed=model.seed_generator))
    restored = keras.saving.load_model(path)
    got = keras.ops.convert_to_numpy(keras.random.uniform((5,), seed=restored.seed_generator))
    np.testing.assert_array_equal(got, expected)
    replay = keras.ops.convert_to_numpy(keras.random.uniform((5,), seed=_Seeded(seed=3)
                                                             .seed_generator))
    assert not np.array_equal(got, replay)  # a fresh model would replay: the state mattered


# ----- bad arguments -------------------------------------------------------------------------
def _stay(state, seed):
    return state, state


SAMPLING_CASES = [
    ("as_stateless_seed", lambda v: sampling.as_stateless_seed(v), "seed", BAD_REQUIRED_SEEDS),
    ("resolve_seed", lambda v: sampling.resolve_seed(v, None), "seed", BAD_SEEDS),
    ("uniform", lambda v: sampling.uniform((2,), v), "seed", BAD_SEEDS + [(None, TypeError)]),
    ("step_seed", lambda v: sampling.step_seed(v, 0), "seed", [(5, TypeError)]),
    ("run_chain", lambda v: sampling.run_chain(_stay, tf.zeros(2), v,
                                               sampling.as_stateless_seed(0)), "num_steps",
     BAD_STEPS),
    ("run_chain", lambda v: sampling.run_chain(_stay, tf.zeros(2), 2,
                                               sampling.as_stateless_seed(0), every=v), "every",
     [(0, ValueError), (-1, ValueError), (1.5, TypeError), (True, TypeError)]),
    ("all_binary_states", lambda v: sampling.all_binary_states(v), "n",
     [(-1, ValueError), (1.5, TypeError), (True, TypeError), (40, ValueError)]),
    ("all_binary_states", lambda v: sampling.all_binary_states(3, 0, v), "stop",
     [(9, ValueError), (-1, ValueError), (2.0, TypeError)]),
    ("binary_states", lambda v: sampling.binary_states(3, tf.constant(0, tf.int64), v), "size",
     [(0, ValueError), (1.5, TypeError)]),
    ("tracked_seed_generator", lambda v: sampling.tracked_seed_generator(keras.Model(), v),
     "seed", BAD_SEEDS),
]


@pytest.mark.parametrize("call, name, value, error", expand(SAMPLING_CASES))
def test_bad_arguments_are_refused(call, name, value, error):
    assert_refused(lambda: call(value), name, value, error)


def test_bernoulli_takes_plain_lists_of_probabilities():
    draws = sampling.bernoulli([0.0, 1.0], sampling.as_stateless_seed(0))
    np.testing.assert_array_equal(draws, [0.0, 1.0])
