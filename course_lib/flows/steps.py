"""Flow steps: Keras 3 layers that own the variables and build a TFP bijector from them.

TFP's bijectors do not track Keras 3 variables, and its Keras helpers
(``tfb.AutoregressiveNetwork``, ``real_nvp_default_template``) are tf-keras objects that a
Keras 3 model does not track. So each step here is a ``keras.layers.Layer``: its weights
are ordinary Keras weights (tracked, saved, trained, distributed), and :meth:`bijector`
returns a fresh TFP bijector that reads them. The bijector's forward direction maps the
base side z to the data side x (TFP's convention: ``forward`` samples, ``inverse``
evaluates densities). Papers and equations, as numbered in ``notebooks/06_flows.ipynb``:

* :class:`PlanarStep`, :class:`RadialStep`: Rezende & Mohamed (2015), Eqs. (6.5)-(6.7),
  through ``course_lib.flows.bijectors``.
* :class:`AffineCoupling`: Eq. (6.8), y_1 = x_1, y_2 = x_2 ⊙ exp(s(x_1)) + t(x_1) (Dinh,
  Sohl-Dickstein & Bengio 2017, RealNVP), via ``course_lib.flows.bijectors.
  AffineCouplingBijector`` (``tfb.RealNVP``'s map, computing the network once per density
  evaluation); with ``shift_only=True`` the additive coupling y_2 = x_2 + t(x_1) of NICE
  (Dinh, Krueger & Bengio 2014).
* :class:`Scaling`: NICE's diagonal scaling layer, y = exp(s) ⊙ x.
* :class:`ActNorm`: Glow's (Kingma & Dhariwal 2018) per-dimension affine map with
  data-dependent initialisation.
* :class:`InvertibleLinear`: Glow's invertible 1x1 convolution, which on a vector is a
  learned invertible matrix W = P L (U + diag(sign exp(log_s))), via ``tfb.ScaleMatvecLU``.
* :class:`Permutation`: a fixed reordering of the dimensions.
* :class:`MAFStep`: Eq. (6.9), MAF (Papamakarios, Pavlakou & Murray 2017):
  x_d = z_d exp(alpha_d) + mu_d with (mu_d, alpha_d) = MADE(x_<d), via
  ``tfb.MaskedAutoregressiveFlow``; with ``inverse=True`` IAF (Kingma et al. 2016), the same
  map the other way round: fast to sample, slow to evaluate.

Deviations from the papers, stated: every log-scale is soft-clamped,
s = B tanh(raw / B) with B = ``log_scale_bound`` (RealNVP uses a learned scale times tanh;
MAF leaves it unbounded); the last layer of every coupling or MADE network starts at zero,
so every step starts as the identity (as Glow does).
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp
from keras import ops

from course_lib.checks import (
    check_bool,
    check_finite_float,
    check_int_sequence,
    check_positive_int,
    check_seed,
    describe,
)
from course_lib.flows.bijectors import AffineCouplingBijector, PlanarBijector, RadialBijector
from course_lib.flows.made import MADE

tfb = tfp.bijectors

DEFAULT_LOG_SCALE_BOUND = 5.0


def soft_clamp(raw, bound):
    """B tanh(raw / B): close to ``raw`` for |raw| << B, never beyond +-B."""
    return bound * ops.tanh(raw / bound)


class FlowStep(keras.layers.Layer):
    """A layer that owns a flow step's variables; :meth:`bijector` builds the TFP bijector.

    Args:
        dim: the event size D.
    """

    def __init__(self, dim, **kwargs):
        super().__init__(**kwargs)
        self.dim = check_positive_int(dim, "dim")

    def bijector(self):
        """A fresh ``tfb.Bijector`` reading this layer's current weights (base -> data)."""
        raise NotImplementedError

    def call(self, z):
        return self.bijector().forward(z)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update(dim=self.dim)
        return config

    def _tensor(self, weight):
        """A weight as a tensor of the flow's dtype (the variable dtype: float32 under mixed
        precision too)."""
        return ops.convert_to_tensor(weight)


@keras.saving.register_keras_serializable(package="course_lib")
class PlanarStep(FlowStep):
    """Eq. (6.5) with the constraint (6.6): weights ``u``, ``w`` (d,) and ``b`` ()."""

    def __init__(self, dim, **kwargs):
        super().__init__(dim, **kwargs)
        normal = keras.initializers.RandomNormal(stddev=0.1)
        self.u = self.add_weight(shape=(self.dim,), initializer=normal, name="u")
        self.w = self.add_weight(shape=(self.dim,), initializer=normal, name="w")
        self.b = self.add_weight(shape=(), initializer="zeros", name="b")
        self.built = True

    def bijector(self):
        return PlanarBijector(self._tensor(self.u), self._tensor(self.w), self._tensor(self.b))


@keras.saving.register_keras_serializable(package="course_lib")
class RadialStep(FlowStep):
    """Eq. (6.7): weights ``center`` z_0 (d,), ``alpha_raw`` and ``beta_raw`` ()."""

    def __init__(self, dim, **kwargs):
        super().__init__(dim, **kwargs)
        self.center = self.add_weight(shape=(self.dim,), name="center",
                                      initializer=keras.initializers.RandomNormal(stddev=1.0))
        self.alpha_raw = self.add_weight(shape=(), initializer="zeros", name="alpha_raw")
        self.beta_raw = self.add_weight(shape=(), initializer="zeros", name="beta_raw")
        self.built = True

    def bijector(self):
        return RadialBijector(self._tensor(self.center), self._tensor(self.alpha_raw),
                              self._tensor(self.beta_raw))


def coupling_network(input_dim, output_dim, hidden_units, activation, name, dtype):
    """An MLP x_1 -> raw (shift, log-scale) of x_2; its last layer starts at zero."""
    hidden = [keras.layers.Dense(n, activation=activation, name=f"{name}_hidden{i}",
                                 dtype=dtype) for i, n in enumerate(hidden_units)]
    return keras.Sequential([keras.Input((input_dim,)), *hidden,
                             keras.layers.Dense(output_dim, kernel_initializer="zeros",
                                                name=f"{name}_out", dtype=dtype)], name=name)


@keras.saving.register_keras_serializable(package="course_lib")
class AffineCoupling(FlowStep):
    """Eq. (6.8): the affine coupling of RealNVP (or NICE's additive one).

    Args:
        dim: D >= 2.
        hidden_units: widths of the network that maps the conditioning half to the
            shift t (and log-scale s) of the other half.
        parity: 0: the first floor(D/2) dimensions condition and the rest are transformed;
            1: the last ceil(D/2) condition and the first floor(D/2) are transformed.
            Alternate it between steps so that every dimension gets transformed.
        shift_only: NICE's additive coupling (no log-scale; the Jacobian is 1).
        activation: the network's hidden activation.
        log_scale_bound: B of the soft clamp s = B tanh(raw / B).
    """

    def __init__(self, dim, hidden_units=(256, 256), *, parity=0, shift_only=False,
                 activation="relu", log_scale_bound=DEFAULT_LOG_SCALE_BOUND, **kwargs):
        super().__init__(dim, **kwargs)
        if self.dim < 2:
            raise ValueError(f"dim must be at least 2 for a coupling; got {dim}.")
        if parity not in (0, 1) or isinstance(parity, bool):
            raise ValueError(f"parity must be 0 or 1; got {describe(parity)}.")
        self.hidden_units = check_int_sequence(hidden_units, "hidden_units",
                                               item="hidden layer width", min_length=0)
        self.parity = int(parity)
        self.shift_only = check_bool(shift_only, "shift_only")
        self.activation = activation
        self.log_scale_bound = check_finite_float(log_scale_bound, "log_scale_bound",
                                                  above=0.0)
        half = self.dim // 2
        # parity 0: the first floor(D/2) dimensions condition; parity 1: the last ceil(D/2)
        self.conditioning = list(range(half)) if self.parity == 0 else list(range(half,
                                                                                   self.dim))
        transformed = self.dim - len(self.conditioning)
        self.network = coupling_network(len(self.conditioning),
                                        transformed * (1 if self.shift_only else 2),
                                        self.hidden_units, activation, "coupling_net",
                                        self.dtype_policy)
        self.built = True

    def shift_and_log_scale(self, x_1):
        """t(x_1) and s(x_1) (None for NICE), each (n, D - |conditioning|)."""
        raw = ops.cast(self.network(x_1), x_1.dtype)
        if self.shift_only:
            return raw, None
        shift, log_scale = ops.split(raw, 2, axis=-1)
        return shift, soft_clamp(log_scale, self.log_scale_bound)

    def bijector(self):
        return AffineCouplingBijector(self.conditioning, self.dim, self.shift_and_log_scale)

    def get_config(self):
        config = super().get_config()
        config.update(hidden_units=self.hidden_units, parity=self.parity,
                      shift_only=self.shift_only, activation=self.activation,
                      log_scale_bound=self.log_scale_bound)
        return config


@keras.saving.register_keras_serializable(package="course_lib")
class Scaling(FlowStep):
    """NICE's scaling layer: x = exp(s) ⊙ z, log |det| = sum(s); weight ``log_scale``
    (d,), starting at 0."""

    def __init__(self, dim, **kwargs):
        super().__init__(dim, **kwargs)
        self.log_scale = self.add_weight(shape=(self.dim,), initializer="zeros",
                                         name="log_scale")
        self.built = True

    def bijector(self):
        return tfb.ScaleMatvecDiag(scale_diag=ops.exp(self._tensor(self.log_scale)))


@keras.saving.register_keras_serializable(package="course_lib")
class ActNorm(FlowStep):
    """Glow's act-norm: x = exp(s) ⊙ z + t, log |det| = sum(s). Weights ``shift`` t and
    ``log_scale`` s (d,), and ``initialized`` (not trainable).

    Data-dependent initialisation (:meth:`initialize`, which ``FlowModel.fit`` calls on its
    first batch): t and s are set from a batch of this step's data-side inputs so that the
    step maps them to zero mean and unit variance per dimension.
    """

    def __init__(self, dim, **kwargs):
        super().__init__(dim, **kwargs)
        self.shift = self.add_weight(shape=(self.dim,), initializer="zeros", name="shift")
        self.log_scale = self.add_weight(shape=(self.dim,), initializer="zeros",
                                         name="log_scale")
        self.initialized = self.add_weight(shape=(), initializer="zeros", trainable=False,
                                           name="initialized")
        self.built = True

    def initialize(self, x):
        """Sets t = mean(x) and s = log std(x) (per dimension) from data-side inputs x, so
        that ``bijector().inverse(x)`` has zero mean and unit variance."""
        x = ops.convert_to_tensor(x, self.variable_dtype)
        mean = ops.mean(x, axis=0)
        std = ops.sqrt(ops.mean(ops.square(x - mean), axis=0))
        self.shift.assign(mean)
        self.log_scale.assign(ops.log(ops.maximum(std, 1e-6)))
        self.initialized.assign(1.0)

    def bijector(self):
        return tfb.Chain([tfb.Shift(self._tensor(self.shift)),
                          tfb.ScaleMatvecDiag(scale_diag=ops.exp(self._tensor(self.log_scale)))])


@keras.saving.register_keras_serializable(package="course_lib")
class InvertibleLinear(FlowStep):
    """Glow's invertible 1x1 convolution on a vector: x = W z with W = P L (U + diag(sign
    exp(log_s))), L unit lower triangular, U strictly upper; log |det W| = sum(log_s).

    Weights: ``lower_upper`` (d, d; its strictly lower part is L, its strictly upper part U,
    its diagonal unused) and ``log_scale`` log_s (d,) are trained; P (``permutation``) and
    the signs are fixed at the LU decomposition of a random rotation drawn with ``seed``.
    """

    def __init__(self, dim, *, seed=0, **kwargs):
        super().__init__(dim, **kwargs)
        self.seed = check_seed(seed)
        rotation, _ = np.linalg.qr(np.random.default_rng(self.seed).normal(size=(dim, dim)))
        lu, permutation = tf.linalg.lu(tf.constant(rotation, tf.float64))
        diagonal = np.diag(lu.numpy())
        self.lower_upper = self.add_weight(
            shape=(dim, dim), name="lower_upper",
            initializer=keras.initializers.Constant(lu.numpy() * (1 - np.eye(dim))))
        self.log_scale = self.add_weight(
            shape=(dim,), name="log_scale",
            initializer=keras.initializers.Constant(np.log(np.abs(diagonal))))
        self.permutation = self.add_weight(
            shape=(dim,), dtype="int32", trainable=False, name="permutation",
            initializer=keras.initializers.Constant(permutation.numpy()))
        self.sign = self.add_weight(
            shape=(dim,), trainable=False, name="sign",
            initializer=keras.initializers.Constant(np.sign(diagonal)))
        self.built = True

    def bijector(self):
        off_diagonal = self._tensor(self.lower_upper) * (1.0 - ops.eye(self.dim,
                                                                        dtype=self.variable_dtype))
        diagonal = self._tensor(self.sign) * ops.exp(self._tensor(self.log_scale))
        return tfb.ScaleMatvecLU(off_diagonal + tf.linalg.diag(diagonal),
                                 self._tensor(self.permutation))

    def get_config(self):
        config = super().get_config()
        config.update(seed=self.seed)
        return config


@keras.saving.register_keras_serializable(package="course_lib")
class Permutation(FlowStep):
    """A fixed permutation of the dimensions: ``order="reversed"`` or a permutation of
    range(d) (x = z[order])."""

    def __init__(self, dim, order="reversed", **kwargs):
        super().__init__(dim, **kwargs)
        if isinstance(order, str) and order == "reversed":
            perm = np.arange(self.dim)[::-1]
        else:
            perm = np.asarray(order)
            if perm.shape != (self.dim,) or perm.dtype.kind not in "iu" \
                    or not np.array_equal(np.sort(perm), np.arange(self.dim)):
                raise ValueError(f"order must be 'reversed' or a permutation of "
                                 f"range({self.dim}); got {describe(order)}.")
        self.order = order if isinstance(order, str) else [int(i) for i in perm]
        self.perm = np.ascontiguousarray(perm, dtype=np.int32)
        self.built = True

    def bijector(self):
        return tfb.Permute(self.perm)

    def get_config(self):
        config = super().get_config()
        config.update(order=self.order)
        return config


@keras.saving.register_keras_serializable(package="course_lib")
class MAFStep(FlowStep):
    """Eq. (6.9): a MAF step, x_d = z_d exp(alpha_d) + mu_d with (mu_d, alpha_d) computed by
    a :class:`MADE` from x_<d (one MADE pass to evaluate a density, D passes to sample); with
    ``inverse=True`` an IAF step (the MADE reads z_<d: one pass to sample, D to evaluate).

    Args:
        dim: D >= 2.
        hidden_units: MADE's hidden widths.
        order: MADE's ordering (``"natural"``, ``"reversed"`` or a permutation); MAF
            reverses it between steps.
        inverse: IAF instead of MAF.
        activation: MADE's hidden activation.
        log_scale_bound: B of the soft clamp alpha = B tanh(raw / B).
    """

    def __init__(self, dim, hidden_units=(512,), *, order="natural", inverse=False,
                 activation="relu", log_scale_bound=DEFAULT_LOG_SCALE_BOUND, **kwargs):
        super().__init__(dim, **kwargs)
        self.inverse = check_bool(inverse, "inverse")
        self.log_scale_bound = check_finite_float(log_scale_bound, "log_scale_bound",
                                                  above=0.0)
        self.made = MADE(self.dim, hidden_units, 2, order=order, activation=activation,
                         zero_output=True, name="made",
                         dtype=self.dtype_policy)
        self.built = True

    def shift_and_log_scale(self, y):
        """(mu, alpha) of Eq. (6.9), each (n, D), from MADE(y)."""
        out = ops.cast(self.made(y), y.dtype)
        return out[..., 0], soft_clamp(out[..., 1], self.log_scale_bound)

    def bijector(self):
        # TFP's MAF calls the function once for the inverse and once more, on the same
        # tensor, for its log-determinant; remembering the last call halves the cost of a
        # density evaluation (maximum-likelihood training).
        last = []

        def shift_and_log_scale(y):
            if not last or last[0] is not y:
                last[:] = [y, self.shift_and_log_scale(y)]
            return last[1]

        maf = tfb.MaskedAutoregressiveFlow(shift_and_log_scale_fn=shift_and_log_scale)
        return tfb.Invert(maf) if self.inverse else maf

    def get_config(self):
        config = super().get_config()
        config.update(hidden_units=self.made.hidden_units, order=self.made.order,
                      inverse=self.inverse, activation=self.made.activation,
                      log_scale_bound=self.log_scale_bound)
        return config
