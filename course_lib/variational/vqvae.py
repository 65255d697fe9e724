"""Vector-quantised VAE (VQ-VAE) and a per-position categorical prior over its codes.

van den Oord, Vinyals & Kavukcuoglu (2017), Neural Discrete Representation Learning.
Equations as numbered in ``notebooks/04_vae.ipynb``:

* (4.8) quantisation: z_q(x)_p = e_k with k = argmin_j ||z_e(x)_p - e_j||^2 at every
  spatial position p of the encoder's output z_e(x);
* (4.9) straight-through estimator: the decoder reads z_e + sg[z_q - z_e], which equals z_q
  going forward and passes the decoder's gradient to the encoder unchanged;
* (4.10) loss: -log p(x | z_q) + ||sg[z_e] - e||^2 (codebook) + beta ||z_e - sg[e]||^2
  (commitment), the squared norms summed over positions and channels;
* (4.11) with q(k | x) one-hot, the ELBO is log p(x | z_q(x)) + log p(k(x)): a learned prior
  over the codes turns the model into a likelihood bound (:class:`PositionwisePrior`).

Symbols -> attributes: e (K x D codebook) -> ``VectorQuantizer.codebook``; K ->
``num_embeddings``; D -> ``embedding_dim``; beta -> ``commitment_cost``; z_e -> ``encode``;
k(x) -> ``codes``; p(x | z_q) -> Bernoulli over pixels, ``decode_codes``.

Deviations from the paper, stated: the paper used the codebook loss and an EMA variant on
natural images; here the plain loss (4.10) on binarized MNIST, with the codebook started
from encoder outputs of real images (:meth:`VQVAE.init_codebook`) to avoid dead codes; the
prior is per-position categorical rather than a PixelCNN, so its samples show only what
each position tends to hold, not how positions go together.
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf
from keras import ops

from course_lib import sampling
from course_lib.checks import (
    ArgumentTypeError,
    check_finite_float,
    check_int_sequence,
    check_positive_int,
    check_probabilities,
    check_seed,
    is_concrete,
)
from course_lib.training import GuardedFitMixin, scaled_loss, unpack_batch
from course_lib.variational import latent

# The networks compute in the model's dtype policy (float16 under mixed_float16); the
# quantizer, the losses and the metrics always in float32.
LOSS_DTYPE = "float32"


@keras.saving.register_keras_serializable(package="course_lib")
class VectorQuantizer(keras.layers.Layer):
    """Eq. (4.8): maps every D-vector of its input to the nearest of K codebook vectors.

    Args:
        num_embeddings: K.
        embedding_dim: D, the size of the input's last axis.

    Returns (from ``call``): ``(z_q, codes)``, the quantised vectors (same shape as the
    input) and the integer codes (the input's shape without its last axis).
    """

    def __init__(self, num_embeddings, embedding_dim, **kwargs):
        super().__init__(**kwargs)
        self.num_embeddings = check_positive_int(num_embeddings, "num_embeddings", minimum=2)
        self.embedding_dim = check_positive_int(embedding_dim, "embedding_dim")
        self.build((None, self.embedding_dim))      # the codebook's shape is known already

    def build(self, input_shape):
        if input_shape[-1] not in (None, self.embedding_dim):
            raise ValueError(f"the quantizer's input must end in embedding_dim = "
                             f"{self.embedding_dim}; got shape {tuple(input_shape)}.")
        if self.built:
            return
        self.codebook = self.add_weight(
            shape=(self.num_embeddings, self.embedding_dim), name="codebook",
            initializer=keras.initializers.RandomUniform(-1.0 / self.num_embeddings,
                                                         1.0 / self.num_embeddings))

    def codes(self, z_e):
        """argmin_j ||z_e - e_j||^2 = argmin_j (||e_j||^2 - 2 z_e . e_j), for every vector."""
        flat = ops.reshape(z_e, (-1, self.embedding_dim))
        distances = (ops.sum(ops.square(self.codebook), axis=1)[None, :]
                     - 2.0 * ops.matmul(flat, ops.transpose(self.codebook)))
        return ops.reshape(ops.argmin(distances, axis=1), ops.shape(z_e)[:-1])

    def lookup(self, codes):
        """e_k for integer codes of any shape: shape ``codes.shape + (D,)``."""
        return ops.take(self.codebook, ops.cast(codes, "int32"), axis=0)

    def call(self, z_e):
        codes = self.codes(z_e)
        return self.lookup(codes), codes

    def get_config(self):
        config = super().get_config()
        config.update(num_embeddings=self.num_embeddings, embedding_dim=self.embedding_dim)
        return config


def _check_code_values(codes, num_embeddings, name="codes"):
    """Integer codes in [0, K): ``take`` and ``bincount`` would otherwise fail deep inside
    TensorFlow, or, for a negative code, silently read another code's vector."""
    if codes.dtype.kind not in "iu":
        raise ArgumentTypeError(f"{name} must be integer codes; got dtype {codes.dtype} "
                                f"(shape {codes.shape}).")
    if codes.size and (codes.min() < 0 or codes.max() >= num_embeddings):
        raise ValueError(f"{name} must lie in [0, {num_embeddings}); got values in "
                         f"[{codes.min()}, {codes.max()}].")


def perplexity(codes, num_embeddings):
    """exp(entropy) of the codes' empirical distribution: the effective number of codes used
    (1 when every position takes the same code, K when all are used equally)."""
    num_embeddings = check_positive_int(num_embeddings, "num_embeddings")
    if is_concrete(codes):
        _check_code_values(np.asarray(codes), num_embeddings)
    # Counts as a sum of one-hot rows, not bincount: bincount's output length is not known
    # when the graph is built, and XLA (what compile() uses on a GPU) refuses it.
    flat = ops.reshape(ops.cast(codes, "int32"), (-1,))
    counts = ops.sum(ops.one_hot(flat, num_embeddings, dtype="float32"), axis=0)
    p = counts / ops.sum(counts)
    return ops.exp(-ops.sum(p * ops.log(p + 1e-10)))


@keras.saving.register_keras_serializable(package="course_lib")
class VQVAE(GuardedFitMixin, keras.Model):
    """A convolutional VQ-VAE for binarized images, Eqs. (4.8)-(4.10).

    The encoder halves the image size ``len(filters)`` times (stride-2 4x4 convolutions,
    ReLU) and ends in a 1x1 convolution to D channels; 28x28 becomes a 7x7 grid of codes.
    The decoder mirrors it with transposed convolutions and outputs Bernoulli logits.

    Args:
        image_shape: (height, width) of the images; inputs are flattened (n, H*W).
        num_embeddings: K, codebook size.
        embedding_dim: D.
        filters: channels of the stride-2 convolutions.
        commitment_cost: beta of Eq. (4.10) (0.25 in the paper).
        seed: int seed of the model's random draws (initial weights come from Keras' global
            generator: call ``keras.utils.set_random_seed`` first).

    Metrics (``fit``/``evaluate``): ``total_loss`` (Eq. 4.10, what the optimizer minimizes),
    ``reconstruction``, ``codebook_loss``, ``commitment_loss`` and ``perplexity``.
    """

    divergence_advice = ("lower the learning rate; re-start the codebook from data "
                         "(init_codebook) if most codes are unused")

    checkpoint_monitor = "total_loss"  # SafeCheckpoint keeps the lowest

    def __init__(self, image_shape=(28, 28), *, num_embeddings=64, embedding_dim=16,
                 filters=(32, 64), commitment_cost=0.25, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.image_shape = tuple(check_int_sequence(image_shape, "image_shape",
                                                    item="image size", length=2))
        self.filters = check_int_sequence(filters, "filters", item="filters")
        scale = 2 ** len(self.filters)
        if any(s % scale for s in self.image_shape):
            raise ValueError(f"image_shape {self.image_shape} must be divisible by {scale} "
                             f"(2 ** len(filters)).")
        self.commitment_cost = check_finite_float(commitment_cost, "commitment_cost",
                                                  at_least=0.0)
        self.seed = check_seed(seed, allow_none=True)
        self.input_dim = int(np.prod(self.image_shape))
        self.grid_shape = tuple(s // scale for s in self.image_shape)
        self._codebook_size = (num_embeddings, embedding_dim)     # checked by the quantizer
        self.seed_generator = sampling.tracked_seed_generator(self, seed)
        self.trackers = {name: keras.metrics.Mean(name=name) for name in
                         ("total_loss", "reconstruction", "codebook_loss", "commitment_loss",
                          "perplexity")}
        # Every weight exists after __init__ (a loaded model needs them to restore its
        # optimizer): the input shape is known, so the model builds itself.
        self.build((None, self.input_dim))

    def build(self, input_shape):
        if self.built:
            return
        num_embeddings, embedding_dim = self._codebook_size
        self.quantizer = VectorQuantizer(num_embeddings, embedding_dim, name="quantizer",
                                         dtype=LOSS_DTYPE)  # float32 under mixed precision
        conv = dict(kernel_size=4, strides=2, padding="same", activation="relu")
        self.encoder = keras.Sequential(
            [keras.Input((*self.image_shape, 1))]
            + [keras.layers.Conv2D(f, **conv) for f in self.filters]
            + [keras.layers.Conv2D(embedding_dim, 1)], name="encoder")
        self.decoder = keras.Sequential(
            [keras.Input((*self.grid_shape, embedding_dim))]
            + [keras.layers.Conv2DTranspose(f, **conv) for f in self.filters[::-1]]
            + [keras.layers.Conv2D(1, 3, padding="same")], name="decoder")

    @property
    def num_embeddings(self):
        return self.quantizer.num_embeddings

    @property
    def embedding_dim(self):
        return self.quantizer.embedding_dim

    def encode(self, x):
        """z_e(x): (n, h, w, D) for flattened images x (n, H*W)."""
        x = ops.convert_to_tensor(x, dtype=LOSS_DTYPE)
        if len(x.shape) != 2 or x.shape[-1] != self.input_dim:
            raise ValueError(f"x must hold flattened images of shape (n, {self.input_dim}) "
                             f"(image_shape {self.image_shape}); got shape {tuple(x.shape)}.")
        return ops.cast(self.encoder(ops.reshape(x, (-1, *self.image_shape, 1))), LOSS_DTYPE)

    def codes(self, x):
        """k(x): the (n, h, w) integer codes of images x."""
        return self.quantizer.codes(self.encode(x))

    def decode(self, z_q):
        """Bernoulli logits (n, H*W) of p(x | z_q)."""
        return ops.reshape(ops.cast(self.decoder(z_q), LOSS_DTYPE), (-1, self.input_dim))

    def decode_codes(self, codes):
        """Bernoulli logits for integer codes (n, h, w) in [0, K)."""
        if is_concrete(codes):
            codes = np.asarray(codes)
            if codes.ndim != 3 or codes.shape[1:] != self.grid_shape:
                raise ValueError(f"codes must have shape (n, {self.grid_shape[0]}, "
                                 f"{self.grid_shape[1]}); got shape {codes.shape}.")
            _check_code_values(codes, self.num_embeddings)
        return self.decode(self.quantizer.lookup(codes))

    def call(self, x):
        """The reconstruction: pixel probabilities given the quantised code of x."""
        z_q, _ = self.quantizer(self.encode(x))
        return ops.sigmoid(self.decode(z_q))

    def loss_terms(self, x):
        """Eq. (4.10)'s three terms, each (n,), and the codes."""
        x = ops.convert_to_tensor(x, dtype=LOSS_DTYPE)
        z_e = self.encode(x)
        z_q, codes = self.quantizer(z_e)
        z_st = z_e + ops.stop_gradient(z_q - z_e)                  # straight through (4.9)
        reconstruction = -latent.bernoulli_log_prob(x, self.decode(z_st))
        axes = (1, 2, 3)
        codebook = ops.sum(ops.square(ops.stop_gradient(z_e) - z_q), axis=axes)
        commitment = ops.sum(ops.square(z_e - ops.stop_gradient(z_q)), axis=axes)
        return dict(reconstruction=reconstruction, codebook_loss=codebook,
                    commitment_loss=commitment, codes=codes)

    def _update_metrics(self, terms, loss):
        self.trackers["total_loss"].update_state(loss)
        for name in ("reconstruction", "codebook_loss", "commitment_loss"):
            self.trackers[name].update_state(ops.mean(terms[name]))
        self.trackers["perplexity"].update_state(perplexity(terms["codes"],
                                                            self.num_embeddings))
        return {m.name: m.result() for m in self.metrics}

    def _loss(self, terms):
        return ops.mean(terms["reconstruction"] + terms["codebook_loss"]
                        + self.commitment_cost * terms["commitment_loss"])

    def train_step(self, data):
        x, _ = unpack_batch(data, type(self).__name__)
        with tf.GradientTape() as tape:
            terms = self.loss_terms(x)
            loss = self._loss(terms)
            scaled = scaled_loss(self.optimizer, loss)
        variables = self.trainable_variables
        self.optimizer.apply(tape.gradient(scaled, variables), variables)
        return self._update_metrics(terms, loss)

    def test_step(self, data):
        x, _ = unpack_batch(data, type(self).__name__)
        terms = self.loss_terms(x)
        return self._update_metrics(terms, self._loss(terms))

    @property
    def metrics(self):
        return list(self.trackers.values())

    def check_visible(self, x, name="x"):
        """Validates flattened images (n, H*W) with values in [0, 1]."""
        return check_probabilities(x, expected_dim=self.input_dim, name=name)

    def init_codebook(self, x, *, seed=0):
        """Sets the K codebook vectors to encoder outputs at random positions of images x,
        so that every code starts where the data are (no dead codes at the start)."""
        seed = check_seed(seed)
        z_e = ops.convert_to_numpy(self.encode(self.check_visible(x)))
        flat = z_e.reshape(-1, self.embedding_dim)
        if len(flat) < self.num_embeddings:
            raise ValueError(f"need at least {self.num_embeddings} encoder vectors to start "
                             f"the codebook; {len(x)} images give {len(flat)}.")
        rows = np.random.default_rng(seed).choice(len(flat), self.num_embeddings, replace=False)
        self.quantizer.codebook.assign(flat[rows])

    def codes_of(self, x, batch_size=1000):
        """Integer codes (n, h, w) of images x, as numpy, computed in batches."""
        batch_size = check_positive_int(batch_size, "batch_size")
        x = self.check_visible(x)
        return np.concatenate([ops.convert_to_numpy(self.codes(x[s:s + batch_size]))
                               for s in range(0, len(x), batch_size)]).astype(np.int64)

    def log_likelihood_given_codes(self, x, codes):
        """log p(x | z_q(k)) for images x and their codes (numpy, (n,))."""
        x = self.check_visible(x)
        if len(np.shape(codes)) < 1 or len(codes) != len(x):
            raise ValueError(f"codes must hold one code grid per image ({len(x)}); got "
                             f"shape {np.shape(codes)}.")
        return ops.convert_to_numpy(latent.bernoulli_log_prob(x, self.decode_codes(codes)))

    def get_config(self):
        config = super().get_config()
        config.update(image_shape=list(self.image_shape), num_embeddings=self.num_embeddings,
                      embedding_dim=self.embedding_dim, filters=self.filters,
                      commitment_cost=self.commitment_cost, seed=self.seed)
        return config


class PositionwisePrior:
    """p(k) = prod_p Categorical(k_p; pi_p): each grid position has its own distribution
    over the K codes, estimated from training codes with ``alpha`` pseudo-counts.

    It ignores how positions depend on each other (a stroke continuing from one position to
    the next), which an autoregressive prior such as the paper's PixelCNN models; its
    samples therefore look like superimposed fragments, not digits.
    """

    def __init__(self, num_embeddings, *, alpha=1.0):
        self.num_embeddings = check_positive_int(num_embeddings, "num_embeddings", minimum=2)
        self.alpha = check_finite_float(alpha, "alpha", above=0.0)
        self.log_probs, self.grid_shape = None, None

    def _check_codes(self, codes):
        codes = np.asarray(codes)
        if codes.dtype.kind not in "iu" or codes.ndim < 2 or len(codes) == 0:
            raise ValueError("codes must be a non-empty integer array (n, positions...); got "
                             f"dtype {codes.dtype} and shape {codes.shape}.")
        if codes.size and (codes.min() < 0 or codes.max() >= self.num_embeddings):
            raise ValueError(f"codes must lie in [0, {self.num_embeddings}); got values in "
                             f"[{codes.min()}, {codes.max()}].")
        return codes.reshape(len(codes), -1)

    def fit(self, codes):
        """Estimates pi_p from integer codes (n, h, w) (or (n, positions))."""
        self.grid_shape = np.asarray(codes).shape[1:]
        codes = self._check_codes(codes)
        counts = np.stack([np.bincount(codes[:, p], minlength=self.num_embeddings)
                           for p in range(codes.shape[1])]) + self.alpha
        self.log_probs = np.log(counts / counts.sum(axis=1, keepdims=True))
        return self

    def _fitted(self):
        if self.log_probs is None:
            raise RuntimeError("call fit(codes) before using the prior.")

    def log_prob(self, codes):
        """log p(k) = sum_p log pi_p[k_p], one value per row (nats)."""
        self._fitted()
        codes = self._check_codes(codes)
        if codes.shape[1] != len(self.log_probs):
            raise ValueError(f"codes must have {len(self.log_probs)} positions; got "
                             f"{codes.shape[1]}.")
        return self.log_probs[np.arange(codes.shape[1]), codes].sum(axis=1)

    def sample(self, num_samples, *, seed=0):
        """Codes drawn independently at every position, shape (num_samples, h, w)."""
        self._fitted()
        num_samples = check_positive_int(num_samples, "num_samples")
        rng = np.random.default_rng(check_seed(seed))
        probs = np.exp(self.log_probs)
        cumulative = np.cumsum(probs, axis=1)
        u = rng.random((num_samples, len(probs), 1))
        codes = np.minimum((u > cumulative[None]).sum(axis=2), self.num_embeddings - 1)
        return codes.reshape(num_samples, *self.grid_shape)
