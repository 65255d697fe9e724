"""Energy-based models sampled by short-run Langevin dynamics with a replay buffer (Du &
Mordatch 2019; Nijkamp et al. 2019): the MCMC answer to "where do the model samples come
from", beside Kim & Bengio's generator (``deep_energy``) and Chapter 1's Gibbs chains.

The gradient is (7.10) again; the model term's samples are the ends of short Langevin chains
(7.13) started from a replay buffer of earlier chain ends (a fresh uniform start with
probability ``reinit_probability``), so every chain continues where an earlier one stopped,
as persistent contrastive divergence does for an RBM:

    (7.14) L(theta) = mean E(x_data) - mean E(x_chain)
                      + alpha (mean E(x_data)^2 + mean E(x_chain)^2)

Symbols -> code: E_theta -> ``self.energy``, epsilon -> ``step_size``, the chain's steps ->
``num_steps``, alpha -> ``energy_regularization``, the buffer -> ``self.buffer`` (a
non-trainable variable saved with the model). Deviations, stated: the chain's noise scale
is a free parameter (``noise_scale``; Du & Mordatch's is far below the Langevin
sqrt(2 epsilon)), and the chain is clipped to ``data_range``.
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf
from keras import ops

from course_lib import langevin, sampling
from course_lib.checks import (
    check_finite_float,
    check_images,
    check_positive_int,
    check_seed,
)
from course_lib.energy.losses import LOSS_DTYPE, energy_difference_and_penalty
from course_lib.training import GuardedFitMixin, scaled_loss, unpack_batch
from course_lib.training.generators import (
    check_data_range,
    check_in_data_range,
    check_keras_model,
)


@keras.saving.register_keras_serializable(package="course_lib")
class LangevinEBM(GuardedFitMixin, keras.Model):
    """An energy network trained on (7.14) with negatives from short-run Langevin chains.

    Args:
        energy: a Keras model from (n, d) to (n, 1) energies.
        data_range: (low, high) of the data: fresh chains start uniform in it, and every
            chain step is clipped to it.
        num_steps: Langevin steps per training step.
        step_size: epsilon of (7.13).
        noise_scale: the noise per step (default sqrt(2 epsilon), proper Langevin).
        buffer_size: chain ends kept in the replay buffer.
        reinit_probability: the chance that a chain starts fresh instead of from the buffer.
        energy_regularization: alpha >= 0.
        seed: int seed of the buffer's initial state, the draws and the chains.

    Metrics: ``energy_loss`` (7.14 without the penalty), ``energy_data`` and
    ``energy_model`` (the mean energies of the data and the chain ends). No checkpoint
    monitor: the loss says nothing about sample quality.
    """

    divergence_advice = ("lower the learning rate or the step size, or raise "
                         "energy_regularization")
    checkpoint_monitor = None

    def __init__(self, energy, *, data_range, num_steps=60, step_size=0.01, noise_scale=None,
                 buffer_size=10_000, reinit_probability=0.05, energy_regularization=0.1,
                 seed=None, **kwargs):
        super().__init__(**kwargs)
        check_keras_model(energy, "energy")
        self.data_range = check_data_range(data_range)
        if self.data_range is None:
            raise ValueError("data_range is required: fresh chains start uniform in it.")
        self.num_steps = check_positive_int(num_steps, "num_steps")
        self.step_size, self.noise_scale, _ = langevin.check_langevin_arguments(
            step_size, noise_scale, None)
        self.buffer_size = check_positive_int(buffer_size, "buffer_size")
        self.reinit_probability = check_finite_float(reinit_probability, "reinit_probability",
                                                     at_least=0.0, at_most=1.0)
        self.energy_regularization = check_finite_float(
            energy_regularization, "energy_regularization", at_least=0.0)
        self.seed = check_seed(seed, allow_none=True)
        self.energy = energy
        try:
            shape = tuple(energy.inputs[0].shape)
        except (AttributeError, IndexError, ValueError):
            raise ValueError("energy must be a Sequential or functional model with a known "
                             "input width (start it with keras.Input((d,))).") from None
        self.data_dim = check_positive_int(shape[-1], "the energy's input width")
        if tuple(energy(np.zeros((1, self.data_dim), "float32")).shape) != (1, 1):
            raise ValueError("energy must return one energy per input, shape (n, 1).")
        low, high = self.data_range
        self.buffer = self.add_weight(
            shape=(self.buffer_size, self.data_dim), name="replay_buffer", trainable=False,
            initializer=keras.initializers.RandomUniform(low, high, seed=self.seed))
        self.seed_generator = sampling.tracked_seed_generator(self, seed)
        self.trackers = [keras.metrics.Mean(name=n)
                         for n in ("energy_loss", "energy_data", "energy_model")]
        self.build((None, self.data_dim))

    def build(self, input_shape):
        """Nothing to create: the energy network and the buffer exist already."""

    def get_config(self):
        return {**super().get_config(),
                "energy": keras.saving.serialize_keras_object(self.energy),
                "data_range": list(self.data_range), "num_steps": self.num_steps,
                "step_size": self.step_size, "noise_scale": self.noise_scale,
                "buffer_size": self.buffer_size, "reinit_probability": self.reinit_probability,
                "energy_regularization": self.energy_regularization, "seed": self.seed}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["energy"] = keras.saving.deserialize_keras_object(config["energy"])
        return cls(**config)

    def check_visible(self, x, name="x"):
        """Validates data (n, d): finite, the energy's width, inside ``data_range``."""
        return check_in_data_range(check_images(x, expected_dim=self.data_dim, name=name),
                                   self.data_range, name)

    def call(self, x, training=False):
        """E(x), (n, 1)."""
        return self.energy(x, training=training)

    # ----------------------------------------------------------------------- sampling
    def uniform_start(self, num_samples, seed):
        low, high = self.data_range
        return low + (high - low) * sampling.uniform((num_samples, self.data_dim), seed)

    def run_chains(self, x0, num_steps, seed):
        """Eq. (7.13) from x0 for ``num_steps`` steps, clipped to ``data_range``."""
        return langevin.langevin_chain(self.energy, x0, num_steps, step_size=self.step_size,
                                       noise_scale=self.noise_scale, clip=self.data_range,
                                       seed=seed)

    def sample(self, num_samples, *, num_steps=None, seed=0, from_buffer=False):
        """``num_samples`` chain ends (numpy (n, d)): chains of ``num_steps`` steps (default
        the training chains' length) from uniform starts, or from random buffer rows
        with ``from_buffer=True`` (the persistent chains training has been running)."""
        num_samples = check_positive_int(num_samples, "num_samples")
        num_steps = self.num_steps if num_steps is None else check_positive_int(
            num_steps, "num_steps")
        base = sampling.as_stateless_seed(check_seed(seed))
        if from_buffer:
            rows = tf.random.stateless_uniform((num_samples,), sampling.step_seed(base, 0, 1),
                                               0, self.buffer_size, dtype=tf.int32)
            x0 = ops.take(self.buffer, rows, axis=0)
        else:
            x0 = self.uniform_start(num_samples, sampling.step_seed(base, 0, 1))
        chains = self.__dict__.setdefault("_chain_functions", {})
        if num_steps not in chains:      # one trace per chain length, kept on the model
            chains[num_steps] = tf.function(
                lambda x, seed: self.run_chains(x, num_steps, seed))
        return ops.convert_to_numpy(
            chains[num_steps](x0, sampling.step_seed(base, 0, 2))).astype(np.float32)

    # ------------------------------------------------------------------------ training
    def energy_loss(self, energy_data, energy_model):
        """Eq. (7.14): mean E(x_data) - mean E(x_chain) + alpha (their mean squares)."""
        return energy_difference_and_penalty(energy_data, energy_model,
                                             self.energy_regularization)

    def negative_samples(self, num_samples):
        """Chain ends for one training step: starts from the buffer (or fresh), run, and
        written back to the buffer rows they came from."""
        seed = self.seed_generator.next()
        rows = tf.random.stateless_uniform((num_samples,), sampling.step_seed(seed, 0, 0), 0,
                                           self.buffer_size, dtype=tf.int32)
        fresh = sampling.uniform((num_samples, 1), sampling.step_seed(seed, 0, 1)) \
            < self.reinit_probability
        x0 = ops.where(fresh, self.uniform_start(num_samples, sampling.step_seed(seed, 0, 2)),
                       ops.take(self.buffer, rows, axis=0))
        x = self.run_chains(x0, self.num_steps, sampling.step_seed(seed, 0, 3))
        self.buffer.value.scatter_update(tf.IndexedSlices(x, rows))   # only the rows drawn
        return x

    def train_step(self, data):
        x, _ = unpack_batch(data, type(self).__name__)
        negatives = self.negative_samples(ops.shape(x)[0])
        variables = self.energy.trainable_variables
        with tf.GradientTape() as tape:
            energy_data = self.energy(x, training=True)
            energy_model = self.energy(negatives, training=True)
            loss, penalty = self.energy_loss(energy_data, energy_model)
            scaled = scaled_loss(self.optimizer, loss + penalty)
        self.optimizer.apply(tape.gradient(scaled, variables), variables)
        return self._record(loss, energy_data, energy_model)

    def test_step(self, data):
        """The energies of held-out data and of as many buffer rows (no update; no chain is
        run and the buffer is unchanged)."""
        x, _ = unpack_batch(data, type(self).__name__)
        rows = tf.random.stateless_uniform((ops.shape(x)[0],), self.seed_generator.next(), 0,
                                           self.buffer_size, dtype=tf.int32)
        energy_data = self.energy(x, training=False)
        energy_model = self.energy(ops.take(self.buffer, rows, axis=0), training=False)
        return self._record(self.energy_loss(energy_data, energy_model)[0], energy_data,
                            energy_model)

    def _record(self, loss, energy_data, energy_model):
        for tracker, value in zip(self.trackers, (
                loss, ops.mean(ops.cast(energy_data, LOSS_DTYPE)),
                ops.mean(ops.cast(energy_model, LOSS_DTYPE))), strict=True):
            tracker.update_state(value)
        return {m.name: m.result() for m in self.metrics}

    @property
    def metrics(self):
        return list(self.trackers)
