"""Random draws shared by the samplers: Bernoulli and Gaussian units, stateful or stateless.

Every model owns a ``keras.random.SeedGenerator`` and passes it here, so a seeded model
reproduces its numbers. Loops that run thousands of steps inside one ``tf.while_loop``
(annealed importance sampling, long Gibbs chains) instead pass a *stateless* seed, a
``(2,)`` integer tensor, which is derived per step with ``step_seed`` and never touches a
variable. Keras 3's ``keras.random`` accepts only integers or ``SeedGenerator``s, so the
stateless branch calls ``tf.random.stateless_uniform`` directly.

Used by every model family and by ``course_lib.evaluation`` (AIS, exact enumeration).
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf
from keras import ops

from course_lib.checks import (
    ArgumentTypeError,
    check_nonneg_int,
    check_positive_int,
    check_seed,
    describe,
    is_int,
)

# all_binary_states refuses to build more values than this (2^31, 8 GiB of float32).
MAX_ENUMERATED_VALUES = 2**31


def _is_stateless_seed(seed) -> bool:
    return tf.is_tensor(seed) and seed.shape.rank == 1


def _check_draw_seed(seed):
    """A seed for one draw: a ``SeedGenerator``, an int >= 0 or a stateless (2,) tensor."""
    if isinstance(seed, keras.random.SeedGenerator) or _is_stateless_seed(seed):
        return seed
    if is_int(seed):
        return check_seed(seed)
    raise ArgumentTypeError("seed must be a SeedGenerator, an integer >= 0 or a (2,) "
                            f"stateless seed tensor; got {describe(seed)} "
                            f"({type(seed).__name__}).")


def uniform(shape, seed, dtype="float32"):
    """Uniform [0, 1) draws from a ``SeedGenerator``, an int, or a stateless ``(2,)`` seed."""
    seed = _check_draw_seed(seed)
    if _is_stateless_seed(seed):
        return tf.random.stateless_uniform(shape, seed=tf.cast(seed, tf.int32), dtype=dtype)
    return keras.random.uniform(shape, seed=seed, dtype=dtype)


def normal(shape, seed, dtype="float32"):
    """Standard normal draws; ``seed`` as in :func:`uniform`."""
    seed = _check_draw_seed(seed)
    if _is_stateless_seed(seed):
        return tf.random.stateless_normal(shape, seed=tf.cast(seed, tf.int32), dtype=dtype)
    return keras.random.normal(shape, seed=seed, dtype=dtype)


def bernoulli(probs, seed):
    """Samples binary units: 1 with probability ``probs``, elementwise (float result)."""
    probs = ops.convert_to_tensor(probs)
    return ops.cast(uniform(ops.shape(probs), seed, dtype=probs.dtype) < probs, probs.dtype)


def gaussian(mean, std, seed):
    """Samples real-valued units ``mean + std * eps`` with ``eps ~ N(0, I)``."""
    mean = ops.convert_to_tensor(mean)
    return mean + std * normal(ops.shape(mean), seed, dtype=mean.dtype)


def step_seed(seed, step, stream=0):
    """Derives the stateless seed for ``step`` of a loop (and a sub-``stream`` within it).

    Args:
        seed: a ``(2,)`` integer tensor, the loop's base seed.
        step: scalar integer tensor, the loop counter.
        stream: Python int that separates independent draws within one step.

    Returns:
        A ``(2,)`` int32 tensor; distinct (step, stream) pairs give independent streams.
    """
    if isinstance(seed, np.ndarray):
        seed = tf.constant(seed)
    if not (tf.is_tensor(seed) and seed.shape.rank == 1 and seed.shape[0] in (None, 2)):
        raise ArgumentTypeError("seed must be a (2,) stateless seed tensor (see "
                                f"as_stateless_seed); got {describe(seed)}.")
    seed = tf.cast(seed, tf.int32)
    mixed = tf.stack([seed[0] + 1_000_003 * tf.cast(stream, tf.int32), seed[1]])
    return tf.random.experimental.stateless_fold_in(mixed, tf.cast(step, tf.int32))


def run_chain(step, state, num_steps, base_seed, every=None):
    """Runs a Markov chain ``state, mean = step(state, seed)`` for ``num_steps`` steps.

    Each step gets ``step_seed(base_seed, t)``; ``step`` is traced once. Returns the last
    ``mean`` (numpy) and, if ``every`` is given, the stacked means every ``every`` steps
    (else None). Used by the RBM's and the DBM's ``sample``.
    """
    num_steps = check_nonneg_int(num_steps, "num_steps")
    if every is not None:
        every = check_positive_int(every, "every")
    run = tf.function(step)
    snapshots, mean = [], state
    for t in range(num_steps):
        state, mean = run(state, step_seed(base_seed, t))
        if every and (t + 1) % every == 0:
            snapshots.append(ops.convert_to_numpy(mean))
    return ops.convert_to_numpy(mean), (np.stack(snapshots) if snapshots else None)


def all_binary_states(n, start=0, stop=None, dtype="float32"):
    """Rows are the binary expansions of ``start .. stop-1`` over ``n`` bits (LSB first).

    Exhaustive enumeration is what small models use instead of sampling (exact partition
    functions, the fully connected Boltzmann machine's gradient); this is the NumPy form.

    Raises:
        ValueError: unless ``0 <= start <= stop <= 2**n``, or if the result would hold
            more than ``MAX_ENUMERATED_VALUES`` numbers (enumerate in chunks instead).
    """
    n = check_nonneg_int(n, "n")
    start = check_nonneg_int(start, "start")
    stop = 2**n if stop is None else check_nonneg_int(stop, "stop")
    if not start <= stop <= 2**n:
        raise ValueError(f"all_binary_states needs 0 <= start <= stop <= 2**n = {2**n}; got "
                         f"start={start}, stop={stop}.")
    if (stop - start) * n > MAX_ENUMERATED_VALUES:
        raise ValueError(f"all_binary_states({n}) would hold {stop - start} rows of {n} bits, "
                         f"more than {MAX_ENUMERATED_VALUES} values; enumerate in chunks with "
                         "start and stop.")
    codes = np.arange(start, stop, dtype=np.int64)[:, None]
    return ((codes >> np.arange(n, dtype=np.int64)) & 1).astype(dtype)


def binary_states(n, start, size):
    """:func:`all_binary_states` as a float32 tensor of ``size`` rows from code ``start``
    (a scalar int64 tensor), for use inside a compiled loop."""
    n, size = check_nonneg_int(n, "n"), check_positive_int(size, "size")
    codes = tf.range(start, start + size, dtype=tf.int64)[:, None]
    bits = tf.bitwise.bitwise_and(tf.bitwise.right_shift(codes, tf.range(n, dtype=tf.int64)), 1)
    return tf.cast(bits, tf.float32)


def as_stateless_seed(seed: int):
    """Turns an integer seed >= 0 into the ``(2,)`` seed tensor the stateless helpers take."""
    seed = check_seed(seed)
    return tf.constant([seed % (2**31 - 1), (seed // (2**31 - 1)) % (2**31 - 1)], tf.int32)


def resolve_seed(seed, default):
    """Normalizes a ``seed`` argument: None -> ``default`` (a model's ``SeedGenerator``); an
    int -> a stateless ``(2,)`` seed; a ``SeedGenerator`` or stateless seed unchanged."""
    if seed is None:
        return default
    if isinstance(seed, keras.random.SeedGenerator) or _is_stateless_seed(seed):
        return seed
    if is_int(seed):
        return as_stateless_seed(seed)
    raise ArgumentTypeError("seed must be None, an integer >= 0, a SeedGenerator or a (2,) "
                            f"stateless seed tensor; got {describe(seed)} "
                            f"({type(seed).__name__}).")


def substream(seed, stream):
    """The seed for the ``stream``-th independent draw made with one resolved ``seed``.

    A ``SeedGenerator`` advances by itself, so it is returned as is; a stateless seed is
    folded with ``stream``, because two stateless draws with the same seed share their
    leading numbers whatever their shapes.
    """
    if isinstance(seed, keras.random.SeedGenerator):
        return seed
    return step_seed(seed, 0, stream)


def tracked_seed_generator(model, seed):
    """A ``keras.random.SeedGenerator`` for ``model`` whose state is saved with the model.

    Keras saves a model's variables, and a ``SeedGenerator``'s state is not among them, so a
    model resumed from a ``.keras`` file would replay its random stream. Setting the state
    variable as the attribute ``model.seed_state`` makes Keras track it like any variable
    attribute (public attribute tracking, no custom loader): it is then saved, restored
    and checkpointed with the weights. ``tests/test_sampling.py`` pins this behaviour.
    """
    seed = check_seed(seed, allow_none=True)
    # Named after the model, so a loaded model (which keeps its name) has the same paths.
    generator = keras.random.SeedGenerator(seed, name=f"{model.name}_seed_generator")
    model.seed_state = generator.state
    return generator
