"""Denoising autoencoders as generative models (Bengio, Yao, Alain & Vincent 2013), the
one-layer generative stochastic network, with walkback training.

A corruption C(x~ | x) and a learned reconstruction distribution P(x | x~) define a Markov
chain, Eqs. (7.7)-(7.9) of ``07_gmmn_gsn_ebm.ipynb``:

    (7.7) x~_t ~ C(x~ | x_t),   x_{t+1} ~ P(x | x~_t)
    (7.8) training: maximise E_data E_C log P(x | x~)        (the denoising criterion)
    (7.9) walkback: also from x~_k ~ C(x~ | x*_{k-1}), x*_{k-1} ~ P(x | x~_{k-1}), k = 2..K,
          reconstruct the same data point x

If P(x | x~) is the true posterior of the clean point given the corrupted one, the chain's
stationary distribution is the data distribution (their Theorem 1); for small Gaussian
noise the reconstruction estimates x + sigma^2 grad log p(x), the score (Alain & Bengio
2014). Walkback puts the training corruptions where the chain itself goes, so spurious
modes far from the data are unlearned.

Symbols -> code: C -> ``corrupt`` (``corruption``, ``noise_level``), P(x | x~) ->
``reconstruct`` (factorial Bernoulli probabilities, the decoder's sigmoid), K ->
``walkback``, the chain (7.7) -> ``chain``. The exact transition matrix of a small binary
model is ``course_lib.evaluation.exact_dae_chain``, through ``log_corruption`` and
``reconstruct``. Deviations, stated: a fixed number K of walkback steps per example where
the paper draws it geometrically, and no noise injected into the hidden units. The
code layer (the last of ``hidden_units``) also serves as the space of GMMN+AE (``encode``,
``decode``).
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf
from keras import ops

from course_lib import sampling
from course_lib.checks import (
    check_finite_float,
    check_images,
    check_int_sequence,
    check_positive_int,
    check_seed,
    describe,
)
from course_lib.training import GuardedFitMixin, scaled_loss, unpack_batch

CORRUPTIONS = ("salt_and_pepper", "masking", "gaussian", "none")
LOSS_DTYPE = "float32"


def _count_times_log(count, log_probability):
    """count * log_probability, with 0 * -inf = 0 (an event that happens no times)."""
    if np.isfinite(log_probability):
        return count * log_probability
    return ops.where(count > 0, ops.full_like(count, -np.inf), ops.zeros_like(count))


@keras.saving.register_keras_serializable(package="course_lib")
class DenoisingAutoencoder(GuardedFitMixin, keras.Model):
    """A denoising autoencoder on data in [0, 1] and the Markov chain it defines, (7.7)-(7.9).

    Args:
        input_dim: d.
        hidden_units: the encoder's layer widths; the decoder mirrors them (the last one
            is the code).
        corruption: C, one of ``"salt_and_pepper"`` (each unit, with probability
            ``noise_level``, set to 0 or 1 at random; the paper's MNIST setting),
            ``"masking"`` (set to 0 with probability ``noise_level``), ``"gaussian"`` (add
            N(0, noise_level^2)) or ``"none"`` (a plain autoencoder).
        noise_level: the corruption's probability or standard deviation.
        walkback: K >= 1, reconstructions per example and step (1 is the plain DAE).
        activation: of the hidden layers (the paper's tanh by default).
        code_activation: of the code layer (default ``activation``; sigmoid gives codes in
            [0, 1] for GMMN+AE).
        seed: int seed of the corruptions and walkback samples.

    Metrics: ``reconstruction_loss``, -log P(x | x~) per example in nats (summed over the
    d units, averaged over the K walkback steps); checkpoints keep the lowest.
    """

    divergence_advice = "lower the learning rate"
    checkpoint_monitor = "reconstruction_loss"

    def __init__(self, input_dim, hidden_units, *, corruption="salt_and_pepper",
                 noise_level=0.3, walkback=1, activation="tanh", code_activation=None,
                 seed=None, **kwargs):
        super().__init__(**kwargs)
        self.input_dim = check_positive_int(input_dim, "input_dim")
        self.hidden_units = check_int_sequence(hidden_units, "hidden_units")
        if not isinstance(corruption, str) or corruption not in CORRUPTIONS:
            raise ValueError(f"corruption must be one of {CORRUPTIONS}; got "
                             f"{describe(corruption)}.")
        self.corruption = corruption
        self.noise_level = check_finite_float(
            noise_level, "noise_level", at_least=0.0,
            **({} if corruption == "gaussian" else {"at_most": 1.0}))
        self.walkback = check_positive_int(walkback, "walkback")
        self.activation = keras.activations.serialize(keras.activations.get(activation))
        self.code_activation = (self.activation if code_activation is None else
                                keras.activations.serialize(
                                    keras.activations.get(code_activation)))
        self.seed = check_seed(seed, allow_none=True)
        *inner, code = self.hidden_units
        self.encoder = keras.Sequential(
            [keras.Input((self.input_dim,))]
            + [keras.layers.Dense(u, activation=activation, name=f"encoder_dense{i}")
               for i, u in enumerate(inner)]
            + [keras.layers.Dense(code, activation=self.code_activation, name="encoder_code")],
            name="encoder")
        self.decoder = keras.Sequential(
            [keras.Input((code,))]
            + [keras.layers.Dense(u, activation=activation, name=f"decoder_dense{i}")
               for i, u in enumerate(reversed(inner))]
            + [keras.layers.Dense(self.input_dim, name="decoder_logits")], name="decoder")
        self.seed_generator = sampling.tracked_seed_generator(self, seed)
        self.loss_tracker = keras.metrics.Mean(name="reconstruction_loss")
        self.build((None, self.input_dim))

    def build(self, input_shape):
        """Nothing to create: the encoder and decoder were built by the constructor."""

    def get_config(self):
        return {**super().get_config(), "input_dim": self.input_dim,
                "hidden_units": list(self.hidden_units), "corruption": self.corruption,
                "noise_level": self.noise_level, "walkback": self.walkback,
                "activation": self.activation, "code_activation": self.code_activation,
                "seed": self.seed}

    def check_visible(self, x, name="x"):
        """Validates data (n, d) in [0, 1] (binary or grey levels)."""
        arr = check_images(x, expected_dim=self.input_dim, name=name)
        if arr.size and (arr.min() < 0.0 or arr.max() > 1.0):
            raise ValueError(f"{name} must lie in [0, 1] (Bernoulli reconstructions); got "
                             f"values in [{arr.min():g}, {arr.max():g}].")
        return arr

    # ------------------------------------------------------------------ the chain's parts
    def corrupt(self, x, seed=None):
        """x~ ~ C(x~ | x), Eq. (7.7); ``seed`` as in ``sampling.uniform`` (default the
        model's generator)."""
        x = ops.convert_to_tensor(x)
        seed = sampling.resolve_seed(seed, self.seed_generator)
        p = self.noise_level
        if self.corruption == "none" or p == 0.0:
            return x
        if self.corruption == "gaussian":
            return x + p * sampling.normal(ops.shape(x), seed, dtype=x.dtype)
        u = sampling.uniform(ops.shape(x), seed, dtype=x.dtype)
        if self.corruption == "masking":
            return ops.where(u < p, ops.zeros_like(x), x)
        # salt and pepper: u < p/2 -> 0, p/2 <= u < p -> 1, else unchanged
        return ops.where(u < p, ops.cast(u >= 0.5 * p, x.dtype), x)

    def log_corruption(self, x_tilde, x):
        """log C(x~_i | x_j) for every pair of binary rows, (n~, n): the discrete corruptions
        only (``"salt_and_pepper"``, ``"masking"``, ``"none"``)."""
        x_tilde = ops.cast(ops.convert_to_tensor(x_tilde), "float64")
        x = ops.cast(ops.convert_to_tensor(x), "float64")
        p = self.noise_level
        same = (ops.matmul(x_tilde, ops.transpose(x))
                + ops.matmul(1.0 - x_tilde, ops.transpose(1.0 - x)))   # agreeing units
        d = float(self.input_dim)
        if self.corruption == "gaussian":
            raise ValueError("log_corruption enumerates discrete corruptions; the Gaussian "
                             "corruption has a density, not probabilities.")
        if self.corruption == "none" or p == 0.0:
            return ops.where(same == d, 0.0, -np.inf)
        if self.corruption == "salt_and_pepper":
            return same * np.log1p(-p / 2) + (d - same) * np.log(p / 2)
        # masking: a 1 stays with probability 1 - p and drops to 0 with p; a 0 stays 0. A
        # count of 0 contributes nothing, also where its log-probability is -inf (p = 0, 1).
        kept = ops.matmul(x_tilde, ops.transpose(x))                    # 1 -> 1
        dropped = ops.matmul(1.0 - x_tilde, ops.transpose(x))           # 1 -> 0
        raised = ops.matmul(x_tilde, ops.transpose(1.0 - x))            # 0 -> 1: impossible
        log_p = (_count_times_log(kept, np.log1p(-p) if p < 1 else -np.inf)
                 + _count_times_log(dropped, np.log(p) if p > 0 else -np.inf))
        return ops.where(raised > 0, -np.inf, log_p)

    def encode(self, x, training=False):
        """The code h(x), the last hidden layer."""
        return self.encoder(x, training=training)

    def decode(self, h, training=False):
        """P(x = 1 | h), the decoder's probabilities."""
        return ops.sigmoid(self.decoder(h, training=training))

    def reconstruction_logits(self, x_tilde, training=False):
        return self.decoder(self.encoder(x_tilde, training=training), training=training)

    def reconstruct(self, x_tilde, training=False):
        """P(x = 1 | x~), (n, d): the factorial Bernoulli reconstruction distribution."""
        return ops.sigmoid(self.reconstruction_logits(x_tilde, training=training))

    def call(self, x, training=False):
        return self.reconstruct(x, training=training)

    def chain_step(self, x, seed):
        """One step of (7.7) with a stateless seed: (next x, P(x | x~))."""
        probs = self.reconstruct(self.corrupt(x, sampling.substream(seed, 0)))
        return sampling.bernoulli(probs, sampling.substream(seed, 1)), probs

    def chain(self, x0, num_steps, *, seed=0, every=None, verbose="auto"):
        """Runs the chain (7.7) from the rows of ``x0`` for ``num_steps`` steps.

        Returns ``(probs, snapshots)``: the last reconstruction probabilities P(x | x~)
        (numpy (n, d), the images a viewer sees), and every ``every`` steps the same (an
        array (num_steps // every, n, d)) or None."""
        x0 = self.check_visible(x0, name="x0")
        num_steps = check_positive_int(num_steps, "num_steps")
        base = sampling.as_stateless_seed(check_seed(seed))
        probs, snapshots = sampling.run_chain(
            lambda state, s: self.chain_step(state, s), tf.constant(x0), num_steps, base,
            every=every, verbose=verbose)
        return probs, snapshots

    # ------------------------------------------------------------------------ training
    def negative_log_likelihood(self, logits, x):
        """-log P(x | x~) per example (nats), from the reconstruction logits (7.8)."""
        logits, x = ops.cast(logits, LOSS_DTYPE), ops.cast(x, LOSS_DTYPE)
        return ops.sum(ops.softplus(logits) - x * logits, axis=-1)

    def walkback_loss(self, x, training=True):
        """Eqs. (7.8)-(7.9): the mean over the K walkback steps of -log P(x | x~_k), each
        x~_k corrupted from the previous step's sample (the first from x itself); the
        samples between steps carry no gradient."""
        total, source = 0.0, x
        for _ in range(self.walkback):
            logits = self.reconstruction_logits(self.corrupt(source), training=training)
            total += ops.mean(self.negative_log_likelihood(logits, x))
            source = ops.stop_gradient(sampling.bernoulli(
                ops.sigmoid(ops.cast(logits, LOSS_DTYPE)), self.seed_generator))
        return total / self.walkback

    def train_step(self, data):
        x, _ = unpack_batch(data, type(self).__name__)
        with tf.GradientTape() as tape:
            loss = self.walkback_loss(x)
            scaled = scaled_loss(self.optimizer, loss)
        variables = self.trainable_variables
        self.optimizer.apply(tape.gradient(scaled, variables), variables)
        self.loss_tracker.update_state(loss)
        return {"reconstruction_loss": self.loss_tracker.result()}

    def test_step(self, data):
        x, _ = unpack_batch(data, type(self).__name__)
        self.loss_tracker.update_state(self.walkback_loss(x, training=False))
        return {"reconstruction_loss": self.loss_tracker.result()}

    @property
    def metrics(self):
        return [self.loss_tracker]
