"""MADE: masked autoencoders for distribution estimation, in Keras 3.

Germain, Gregor, Murray & Larochelle (2015), MADE: Masked Autoencoder for Distribution
Estimation. Equations as numbered in ``notebooks/06_flows.ipynb``:

* (6.10) the autoregressive factorisation p(x) = prod_d p(x_d | x_<d) under an ordering of
  the dimensions; MADE computes every conditional's parameters in one pass;
* (6.11) the masks: unit k of a hidden layer gets a degree m(k) in {1, ..., D - 1}; input d
  has degree m(d) = its rank in the ordering; a hidden connection k' -> k exists when
  m(k) >= m(k'), an output connection k -> d when m(d) > m(k). Then output d depends only
  on the inputs that come before d in the ordering.

Symbols -> attributes: the ordering -> ``MADE.degrees`` (the rank of each input, 1..D); the
masks -> ``MADE.masks`` (constants, one per layer, recomputed from the config); W ⊙ M ->
``MADE.kernels[i] * masks[i]``.

:class:`MADE` is the layer: D inputs, ``num_params`` outputs per dimension. It is MAF's
shift-and-log-scale network (``course_lib.flows.steps.MAFStep``) and, with one output per
dimension (the Bernoulli logit), :class:`BinaryMADE`, Germain et al.'s density model of
binary images.

Deviations from the paper, stated: the hidden degrees cycle through 1..D-1 (Germain et al.
draw them at random; cycling gives every degree the same number of units, so no output is
cut off); one fixed ordering (no order- or connectivity-agnostic training, so the 32-mask
ensemble row of the paper is not reproduced); no direct input-to-output connections.
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf
from keras import ops

from course_lib import sampling
from course_lib.checks import (
    check_images,
    check_int_sequence,
    check_positive_int,
    check_seed,
    describe,
)
from course_lib.training import GuardedFitMixin, scaled_loss, unpack_batch

ORDERS = ("natural", "reversed")


def input_degrees(dim, order):
    """The rank (1..D) of each input under ``order``: ``"natural"`` (x_1 first),
    ``"reversed"`` (x_D first) or a permutation of range(D) listing the inputs first to
    last."""
    if isinstance(order, str):
        if order not in ORDERS:
            raise ValueError(f"order must be one of {ORDERS} or a permutation of "
                             f"range({dim}); got {describe(order)}.")
        ranks = np.arange(1, dim + 1)
        return ranks if order == "natural" else ranks[::-1].copy()
    perm = np.asarray(order)
    if perm.shape != (dim,) or perm.dtype.kind not in "iu" \
            or not np.array_equal(np.sort(perm), np.arange(dim)):
        raise ValueError(f"order must be one of {ORDERS} or a permutation of range({dim}); "
                         f"got {describe(order)}.")
    ranks = np.empty(dim, dtype=np.int64)
    ranks[perm] = np.arange(1, dim + 1)
    return ranks


def made_masks(degrees, hidden_units):
    """Eq. (6.11): the 0/1 masks (float32) of every layer, input to output, for inputs of
    the given ``degrees`` and hidden layers of the given widths. The output mask has one
    column per input dimension."""
    dim = len(degrees)
    masks, previous = [], np.asarray(degrees)
    for width in hidden_units:
        hidden = np.arange(width) % (dim - 1) + 1          # degrees cycle through 1..D-1
        masks.append((hidden[None, :] >= previous[:, None]).astype(np.float32))
        previous = hidden
    masks.append((np.asarray(degrees)[None, :] > previous[:, None]).astype(np.float32))
    return masks


@keras.saving.register_keras_serializable(package="course_lib")
class MADE(keras.layers.Layer):
    """Eq. (6.11): a masked MLP whose output for dimension d depends only on the inputs that
    precede d in the ordering.

    Args:
        input_dim: D >= 2.
        hidden_units: widths of the hidden layers (each >= 1; D - 1 or more lets every
            degree appear).
        num_params: outputs per dimension (2 for MAF's shift and log-scale, 1 for a
            Bernoulli logit).
        order: ``"natural"``, ``"reversed"``, or a permutation of range(D) listing the
            dimensions first to last.
        activation: the hidden layers' activation.
        zero_output: initialise the output layer at zero, so that a MAF step starts as the
            identity (shift 0, log-scale 0).

    Call: ``made(x)`` with x of shape (n, D) returns (n, D, num_params), float32.
    """

    def __init__(self, input_dim, hidden_units=(512,), num_params=2, *, order="natural",
                 activation="relu", zero_output=False, **kwargs):
        super().__init__(**kwargs)
        self.input_dim = check_positive_int(input_dim, "input_dim", minimum=2)
        self.hidden_units = check_int_sequence(hidden_units, "hidden_units",
                                               item="hidden layer width", min_length=0)
        self.num_params = check_positive_int(num_params, "num_params")
        self.degrees = input_degrees(self.input_dim, order)
        self.order = order if isinstance(order, str) else [int(i) for i in order]
        try:
            self.activation_fn = keras.activations.get(activation)
        except (ValueError, TypeError):
            raise ValueError(f"activation must name a Keras activation; got "
                             f"{describe(activation)}.") from None
        self.activation = activation
        self.zero_output = bool(zero_output)
        self.masks = made_masks(self.degrees, self.hidden_units)
        self.build((None, self.input_dim))

    def build(self, input_shape):
        if self.built:
            return
        self.kernels, self.biases = [], []
        fan_ins = [self.input_dim, *self.hidden_units]
        fan_outs = [*self.hidden_units, self.input_dim]
        for i, (fan_in, fan_out) in enumerate(zip(fan_ins, fan_outs, strict=True)):
            last = i == len(self.hidden_units)
            width = fan_out * self.num_params if last else fan_out
            init = "zeros" if last and self.zero_output else "glorot_uniform"
            self.kernels.append(self.add_weight(shape=(fan_in, width), initializer=init,
                                                name=f"kernel{i}"))
            self.biases.append(self.add_weight(shape=(width,), initializer="zeros",
                                               name=f"bias{i}"))

    def masked_kernels(self):
        """W ⊙ M of every layer (the output mask repeated for the ``num_params`` outputs of
        each dimension, which are laid out dimension-major)."""
        out = [k * ops.cast(m, k.dtype)
               for k, m in zip(self.kernels[:-1], self.masks[:-1], strict=True)]
        last = np.repeat(self.masks[-1], self.num_params, axis=1)
        return [*out, self.kernels[-1] * ops.cast(last, self.kernels[-1].dtype)]

    def call(self, x):
        h = ops.cast(x, self.compute_dtype)
        kernels = self.masked_kernels()
        for kernel, bias in zip(kernels[:-1], self.biases[:-1], strict=True):
            h = self.activation_fn(ops.matmul(h, ops.cast(kernel, h.dtype))
                                   + ops.cast(bias, h.dtype))
        out = ops.matmul(h, ops.cast(kernels[-1], h.dtype)) + ops.cast(self.biases[-1], h.dtype)
        out = ops.reshape(out, (-1, self.input_dim, self.num_params))
        return ops.cast(out, self.variable_dtype)     # float32 under mixed precision

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.input_dim, self.num_params)

    def get_config(self):
        config = super().get_config()
        config.update(input_dim=self.input_dim, hidden_units=self.hidden_units,
                      num_params=self.num_params, order=self.order,
                      activation=self.activation, zero_output=self.zero_output)
        return config


@keras.saving.register_keras_serializable(package="course_lib")
class BinaryMADE(GuardedFitMixin, keras.Model):
    """Germain et al.'s density model of binary vectors, Eq. (6.10) with Bernoulli
    conditionals: log p(x) = sum_d [x_d log sigma(l_d) + (1 - x_d) log sigma(-l_d)], where
    l = MADE(x) is computed in one pass. ``log_prob`` is exact.

    Args:
        input_dim: D (784 for MNIST).
        hidden_units: MADE's hidden widths (Germain et al.'s one-mask MNIST model: (500,)).
        order: the ordering of the dimensions (see :class:`MADE`).
        activation: hidden activation (the paper: relu).
        seed: seed of ``sample``'s draws.

    Metric (``fit``/``evaluate``): ``negative_log_likelihood``, -log p(x) in nats per
    example.
    """

    divergence_advice = "lower the learning rate (try 3x smaller) or add clipnorm=1.0"
    checkpoint_monitor = "negative_log_likelihood"

    def __init__(self, input_dim=784, hidden_units=(500,), *, order="natural",
                 activation="relu", seed=None, **kwargs):
        super().__init__(**kwargs)
        self.made = MADE(input_dim, hidden_units, 1, order=order, activation=activation,
                         name="made")
        self.input_dim = self.made.input_dim
        self.seed = check_seed(seed, allow_none=True)
        self.seed_generator = sampling.tracked_seed_generator(self, seed)
        self.nll_tracker = keras.metrics.Mean(name="negative_log_likelihood")
        self.built = True            # every weight exists: MADE builds itself

    def logits(self, x):
        """l_d of every conditional p(x_d = 1 | x_<d) = sigma(l_d): shape (n, D)."""
        return self.made(x)[..., 0]

    def call(self, x):
        return ops.sigmoid(self.logits(x))

    def log_prob(self, x):
        """Eq. (6.10): log p(x) of binary rows x (n, D), in nats: shape (n,)."""
        x = ops.convert_to_tensor(x, "float32")
        if len(x.shape) != 2 or x.shape[-1] not in (None, self.input_dim):
            raise ValueError(f"x must have shape (n, {self.input_dim}); got shape "
                             f"{tuple(x.shape)}.")
        logits = self.logits(x)
        return -ops.sum(ops.binary_crossentropy(x, logits, from_logits=True), axis=-1)

    def train_step(self, data):
        x, _ = unpack_batch(data, type(self).__name__)
        with tf.GradientTape() as tape:
            nll = -ops.mean(self.log_prob(x))
            loss = scaled_loss(self.optimizer, nll)
        variables = self.trainable_variables
        self.optimizer.apply(tape.gradient(loss, variables), variables)
        self.nll_tracker.update_state(nll)
        return {"negative_log_likelihood": self.nll_tracker.result()}

    def test_step(self, data):
        x, _ = unpack_batch(data, type(self).__name__)
        self.nll_tracker.update_state(-ops.mean(self.log_prob(x)))
        return {"negative_log_likelihood": self.nll_tracker.result()}

    @property
    def metrics(self):
        return [self.nll_tracker]

    def check_visible(self, x, name="x"):
        """Validates (n, D) binary rows."""
        return check_images(x, expected_dim=self.input_dim, binary=True, name=name)

    def sample(self, num_samples, *, seed=None):
        """Ancestral samples, Eq. (6.10): D passes of MADE, drawing x_d ~ p(x_d | x_<d) in
        the model's ordering. Returns float32 binary rows (num_samples, D)."""
        num_samples = check_positive_int(num_samples, "num_samples")
        seed = sampling.resolve_seed(seed, self.seed_generator)
        uniforms = sampling.uniform((num_samples, self.input_dim), seed)
        first_to_last = np.argsort(self.made.degrees)
        return ops.convert_to_numpy(self._ancestral(uniforms, tf.constant(first_to_last)))

    @tf.function
    def _ancestral(self, uniforms, first_to_last):
        x = tf.zeros_like(uniforms)
        for t in tf.range(self.input_dim):
            d = first_to_last[t]
            p = tf.sigmoid(self.logits(x)[:, d])
            column = tf.cast(uniforms[:, d] < p, x.dtype)
            x = x + column[:, None] * tf.one_hot(d, self.input_dim, dtype=x.dtype)
        return x

    def get_config(self):
        config = super().get_config()
        config.update(input_dim=self.input_dim, hidden_units=self.made.hidden_units,
                      order=self.made.order, activation=self.made.activation, seed=self.seed)
        return config
