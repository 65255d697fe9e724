"""Random draws shared by the samplers: Bernoulli and Gaussian units, stateful or stateless.

Every model owns a ``keras.random.SeedGenerator`` and passes it here, so a seeded model
reproduces its numbers. Loops that run thousands of steps inside one ``tf.while_loop``
(annealed importance sampling, long Gibbs chains) instead pass a *stateless* seed, a
``(2,)`` integer tensor, which is derived per step with ``step_seed`` and never touches a
variable. Keras 3's ``keras.random`` accepts only integers or ``SeedGenerator``s, so the
stateless branch calls ``tf.random.stateless_uniform`` directly.

Used by: ``course_lib.rbm``, ``course_lib.boltzmann_machine``, ``course_lib.evaluation.ais``
(notebook 01_rbm and the later Boltzmann chapters).
"""

from __future__ import annotations

import keras
import tensorflow as tf
from keras import ops


def _is_stateless_seed(seed) -> bool:
    return tf.is_tensor(seed) and seed.shape.rank == 1


def uniform(shape, seed, dtype="float32"):
    """Uniform [0, 1) draws from a ``SeedGenerator``, an int, or a stateless ``(2,)`` seed."""
    if _is_stateless_seed(seed):
        return tf.random.stateless_uniform(shape, seed=tf.cast(seed, tf.int32), dtype=dtype)
    return keras.random.uniform(shape, seed=seed, dtype=dtype)


def normal(shape, seed, dtype="float32"):
    """Standard normal draws; ``seed`` as in :func:`uniform`."""
    if _is_stateless_seed(seed):
        return tf.random.stateless_normal(shape, seed=tf.cast(seed, tf.int32), dtype=dtype)
    return keras.random.normal(shape, seed=seed, dtype=dtype)


def bernoulli(probs, seed):
    """Samples binary units: 1 with probability ``probs``, elementwise (float result)."""
    return ops.cast(uniform(ops.shape(probs), seed, dtype=probs.dtype) < probs, probs.dtype)


def gaussian(mean, std, seed):
    """Samples real-valued units ``mean + std * eps`` with ``eps ~ N(0, I)``."""
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
    seed = tf.cast(seed, tf.int32)
    mixed = tf.stack([seed[0] + 1_000_003 * tf.cast(stream, tf.int32), seed[1]])
    return tf.random.experimental.stateless_fold_in(mixed, tf.cast(step, tf.int32))


def as_stateless_seed(seed: int):
    """Turns a Python int into the ``(2,)`` seed tensor the stateless helpers take."""
    if not isinstance(seed, int):
        raise TypeError(f"seed must be a Python int; got {type(seed).__name__}.")
    return tf.constant([seed % (2**31 - 1), (seed // (2**31 - 1)) % (2**31 - 1)], tf.int32)
