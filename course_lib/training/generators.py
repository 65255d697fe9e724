"""What every model with a generator network G(z) shares (Chapters 5 and 7): the prior p(z),
drawing samples through G, and the range the data must lie in to match G's output.

- :func:`check_generator`: a generator network that takes the noise and returns flat rows.
- :func:`check_data_range` / :func:`check_in_data_range`: an optional (low, high) that the
  data must lie in (for example (-1, 1) for a tanh output), refused with a message that says
  how to rescale.
- :class:`LatentGeneratorMixin`: ``sample_latent`` (z from the model's ``prior``, standard
  normal or uniform on [-1, 1]), ``call`` (G(z)) and ``sample`` (numpy samples from seeded
  noise) for a ``keras.Model`` with the attributes ``generator``, ``latent_dim``, ``prior``
  and ``seed_generator``.

Used by ``course_lib.adversarial`` (the GAN and the models built on it) and
``course_lib.moment_matching`` (the GMMN).
"""

from __future__ import annotations

import keras
import numpy as np
from keras import ops

from course_lib import sampling
from course_lib.checks import (
    DataError,
    check_finite_float,
    check_positive_int,
    check_seed,
    describe,
)

PRIORS = ("normal", "uniform")


def check_prior(prior):
    """``prior`` if it names one of :data:`PRIORS`; a clear error otherwise."""
    if not isinstance(prior, str) or prior not in PRIORS:
        raise ValueError(f"prior must be one of {PRIORS}; got {describe(prior)}.")
    return prior


def check_data_range(data_range):
    """None, or ``data_range`` as a pair of finite floats (low, high) with low < high."""
    if data_range is None:
        return None
    if not isinstance(data_range, (tuple, list)) or len(data_range) != 2:
        raise ValueError(f"data_range must be a pair (low, high); got {describe(data_range)}.")
    low = check_finite_float(data_range[0], "data_range[0]")
    high = check_finite_float(data_range[1], "data_range[1]", above=low)
    return (low, high)


def check_in_data_range(arr, data_range, name):
    """Raises a ``DataError`` if the array ``arr`` has values outside ``data_range``."""
    if data_range is None or arr.size == 0:
        return arr
    low, high = data_range
    if arr.min() < low or arr.max() > high:
        raise DataError(f"{name} must lie in data_range [{low:g}, {high:g}] (the generator's "
                        f"output range); got values in [{arr.min():g}, {arr.max():g}]. "
                        "Rescale, e.g. 2 * x - 1 for images in [0, 1] and a tanh generator.")
    return arr


def check_keras_model(network, name):
    """``network`` if it is a ``keras.Model``; a ``TypeError`` naming ``name`` otherwise."""
    if not isinstance(network, keras.Model):
        raise TypeError(f"{name} must be a keras.Model (for example keras.Sequential); got "
                        f"{type(network).__name__}.")
    return network


def check_generator(generator, latent_dim):
    """Builds ``generator`` on one noise row and returns the width d of its samples; a clear
    error if it is no Keras model, does not take (n, latent_dim) noise or does not return
    flattened samples (n, d)."""
    check_keras_model(generator, "generator")
    try:
        sample = generator(np.zeros((1, latent_dim), "float32"))
    except Exception as error:  # noqa: BLE001 -- any failure means the shapes do not fit
        raise ValueError(f"the generator does not take (n, latent_dim={latent_dim}) noise: "
                         f"{type(error).__name__}: {error}") from None
    if len(sample.shape) != 2:
        raise ValueError(f"the generator must return flattened samples (n, d); it returns "
                         f"shape {tuple(sample.shape)}. End it with a Flatten or Reshape.")
    return int(sample.shape[1])


class LatentGeneratorMixin:
    """z ~ p(z) and samples G(z) for a model with ``generator``, ``latent_dim``, ``prior``
    (one of :data:`PRIORS`) and ``seed_generator``."""

    def sample_latent(self, num_samples, seed=None):
        """z ~ p(z), shape (num_samples, latent_dim): N(0, I) for ``prior="normal"``,
        uniform on [-1, 1]^latent_dim for ``"uniform"``. ``seed`` as in
        ``sampling.normal`` (default the model's generator)."""
        seed = sampling.resolve_seed(seed, self.seed_generator)
        shape = (num_samples, self.latent_dim)
        if self.prior == "uniform":
            return 2.0 * sampling.uniform(shape, seed) - 1.0
        return sampling.normal(shape, seed)

    def call(self, z, training=False):
        """G(z)."""
        return self.generator(z, training=training)

    def sample(self, num_samples, *, seed=0, batch_size=1000):
        """``num_samples`` generated samples (numpy, (n, d)) from z drawn with ``seed``."""
        num_samples = check_positive_int(num_samples, "num_samples")
        batch_size = check_positive_int(batch_size, "batch_size")
        base = sampling.as_stateless_seed(check_seed(seed))
        z = ops.concatenate([
            self.sample_latent(min(batch_size, num_samples - start), sampling.step_seed(base, k))
            for k, start in enumerate(range(0, num_samples, batch_size))], axis=0)
        # Keras' predict keeps its compiled function between calls: no retrace per sample().
        return self.predict(ops.convert_to_numpy(z), batch_size=batch_size,
                            verbose=0).astype(np.float32)
