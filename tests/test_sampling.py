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


# verbose takes Keras' modes: "auto", 0, 1, 2 (and False, True); nothing else.
BAD_VERBOSE = [(3, ValueError), (-1, ValueError), ("yes", TypeError), ("AUTO", TypeError),
               (1.0, TypeError), (None, TypeError)]


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
    ("run_chain", lambda v: sampling.run_chain(_stay, tf.zeros(2), 2,
                                               sampling.as_stateless_seed(0), verbose=v),
     "verbose", BAD_VERBOSE),
    ("run_in_chunks", lambda v: sampling.run_in_chunks(lambda k, c: c, tf.zeros(2), 0, 2,
                                                       verbose=v), "verbose", BAD_VERBOSE),
    ("run_in_chunks", lambda v: sampling.run_in_chunks(lambda k, c: c, tf.zeros(2), 0, 2,
                                                       chunk_size=v), "chunk_size",
     [(0, ValueError), (1.5, TypeError), ("2", TypeError)]),
    ("LoopProgress", lambda v: sampling.LoopProgress(3, verbose=v), "verbose", BAD_VERBOSE),
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


# ----- long runs: compiled chunks and progress bars ---------------------------------------------
def _visit(length, base_seed):
    """A body that records every step it runs: visits[k] += 1, and a float64 sum of one
    uniform draw per step seed, in order."""
    def body(k, carry):
        visits, total = carry
        draw = sampling.uniform((), sampling.step_seed(base_seed, k))
        return visits + tf.one_hot(k, length, dtype=tf.int32), total + tf.cast(draw, tf.float64)
    return body


def _draw(base_seed, k):
    return np.float64(sampling.uniform((), sampling.step_seed(base_seed, k)).numpy())


@pytest.mark.parametrize("chunk_size", [1, 2, 3, 7, 10, 11, None])
def test_run_in_chunks_runs_every_step_once_with_its_own_seed(chunk_size):
    """Chunk boundaries neither repeat nor skip a step (or its seed): the same carry as one
    loop in Python over the same steps, bit for bit, whatever the chunk size."""
    base = sampling.as_stateless_seed(5)
    start, stop = 2, 12
    carry = (tf.zeros(stop + 1, tf.int32), tf.constant(0.0, tf.float64))
    visits, total = sampling.run_in_chunks(_visit(stop + 1, base), carry, start, stop,
                                           chunk_size=chunk_size, verbose=0)
    np.testing.assert_array_equal(visits, [0] * start + [1] * (stop - start) + [0])
    expected = 0.0
    for k in range(start, stop):
        expected += _draw(base, k)
    assert total.numpy() == expected
    # The check can fail: a chunk that reuses the seed of the step before it (a counter
    # restarted at each chunk would) changes the sum.
    assert total.numpy() != expected - _draw(base, stop - 1) + _draw(base, stop - 2)


def test_run_in_chunks_traces_its_body_once():
    calls = []

    def body(k, x):
        calls.append(k)
        return x + tf.cast(k, tf.float32)

    out = sampling.run_in_chunks(body, tf.zeros(2), 0, 9, chunk_size=2, verbose=0)
    np.testing.assert_array_equal(out, [36.0, 36.0])
    assert len(calls) == 1, "the chunk function was traced more than once"


def test_run_in_chunks_with_no_steps_returns_the_carry():
    out = sampling.run_in_chunks(lambda k, x: x + 1.0, tf.ones(3), 4, 4, verbose=1)
    np.testing.assert_array_equal(out, np.ones(3))
    with pytest.raises(ValueError, match="start <= stop"):
        sampling.run_in_chunks(lambda k, x: x, tf.ones(3), 5, 4)


def _random_walk(state, seed):
    state = state + sampling.normal(tf.shape(state), seed)
    return state, state


@pytest.mark.parametrize("verbose", [1, True, 2, "auto"])
def test_run_chain_gives_the_same_chain_with_and_without_a_bar(verbose):
    base = sampling.as_stateless_seed(2)
    quiet, quiet_snaps = sampling.run_chain(_random_walk, tf.zeros(3), 6, base, every=2,
                                            verbose=0)
    shown, shown_snaps = sampling.run_chain(_random_walk, tf.zeros(3), 6, base, every=2,
                                            verbose=verbose)
    np.testing.assert_array_equal(shown, quiet)
    np.testing.assert_array_equal(shown_snaps, quiet_snaps)


def test_progress_bar_prints_when_asked_and_never_when_silent(capsys):
    base = sampling.as_stateless_seed(2)
    sampling.run_chain(_random_walk, tf.zeros(3), 6, base, verbose=1)
    assert "6/6" in capsys.readouterr().out
    sampling.run_chain(_random_walk, tf.zeros(3), 6, base, verbose=2)
    assert "6/6" in capsys.readouterr().out
    for quiet in (0, False, "auto"):                # "auto": a short run prints nothing
        sampling.run_chain(_random_walk, tf.zeros(3), 6, base, verbose=quiet)
        sampling.run_in_chunks(lambda k, x: x, tf.zeros(2), 0, 5, verbose=quiet)
        captured = capsys.readouterr()
        assert captured.out == "" and captured.err == "", (quiet, captured)
    sampling.run_in_chunks(lambda k, x: x, tf.zeros(2), 0, 5, chunk_size=2, verbose=1,
                           unit_name="sweep")
    out = capsys.readouterr().out
    assert "5/5" in out and "/sweep" in out


def test_auto_progress_bar_appears_once_a_run_is_long(capsys, monkeypatch):
    monkeypatch.setattr(sampling, "AUTO_PROGRESS_DELAY", 0.0)
    sampling.run_chain(_random_walk, tf.zeros(3), 4, sampling.as_stateless_seed(0))
    assert "4/4" in capsys.readouterr().out


@pytest.mark.parametrize("value, expected", [("auto", "auto"), (0, 0), (1, 1), (2, 2),
                                             (False, 0), (True, 1), (np.int64(2), 2)])
def test_check_verbose_takes_keras_modes(value, expected):
    assert sampling.check_verbose(value) == expected


def test_run_chain_is_one_compiled_loop_equal_to_stepping_by_hand():
    """The chain runs as compiled chunks (the step is traced once per call, not run from
    Python once per step) and gives, bit for bit, the chain a hand-written loop with the same
    per-step seeds gives; snapshots fall every ``every`` steps, the last one included."""
    traces = []

    def walk(state, seed):
        traces.append(1)
        return _random_walk(state, seed)

    base = sampling.as_stateless_seed(5)
    final, snaps = sampling.run_chain(walk, tf.zeros(3), 7, base, every=3, verbose=0)
    assert len(traces) == 1
    state, expected = tf.zeros(3), []
    for t in range(7):
        state, mean = _random_walk(state, sampling.step_seed(base, tf.constant(t)))
        if (t + 1) % 3 == 0:
            expected.append(mean.numpy())
    np.testing.assert_array_equal(final, mean.numpy())
    np.testing.assert_array_equal(snaps, np.stack(expected))
    final_all, none = sampling.run_chain(walk, tf.zeros(3), 7, base, verbose=0)
    np.testing.assert_array_equal(final_all, final)
    assert none is None
