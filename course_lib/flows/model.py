"""FlowModel: a ``keras.Model`` that owns a ``tfd.TransformedDistribution``.

Equations as numbered in ``notebooks/06_flows.ipynb``:

* (6.1) change of variables: x = f(z), z ~ p_0:
  log p(x) = log p_0(f^{-1}(x)) + log |det d f^{-1} / dx|;
* (6.2) a composition f = f_K o ... o f_1 adds the steps' log-determinants;
* (6.3) maximum likelihood: minimise -E_data[log p(x)];
* (6.4) reverse KL to an unnormalised target exp(-U) / Z (Rezende & Mohamed 2015):
  KL(q || p) = E_{z_0 ~ p_0}[log q(z_K) + U(z_K)] + log Z, with
  log q(z_K) = log p_0(z_0) - sum_k log |det d f_k / d z_{k-1}|: only the forward direction
  and its log-determinant are needed, never the inverse.

Symbols -> attributes: f_1, ..., f_K -> ``steps`` (Keras 3 layers of
``course_lib.flows.steps``, listed from the base side to the data side); p_0 -> ``base``
(``"normal"``: N(0, I); ``"logistic"``: NICE's logistic prior); U -> ``energy`` (one of
``course_lib.flows.energies.ENERGY_NAMES``). The TFP distribution is rebuilt from the
steps' current weights by :meth:`distribution` at every use, so no TFP object ever holds a
stale variable.
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp
from keras import ops

from course_lib import sampling
from course_lib.checks import (
    check_finite_float,
    check_images,
    check_nonneg_int,
    check_positive_int,
    check_seed,
    describe,
)
from course_lib.flows import energies
from course_lib.flows.steps import ActNorm, FlowStep
from course_lib.training import GuardedFitMixin, scaled_loss, unpack_batch

tfb, tfd = tfp.bijectors, tfp.distributions

BASES = ("normal", "logistic")
INITIALIZATION_ROWS = 1000   # rows of the first batch of data used by ActNorm's initialisation


@keras.saving.register_keras_serializable(package="course_lib")
class FlowModel(GuardedFitMixin, keras.Model):
    """A normalizing flow x = f_K(... f_1(z)), z ~ p_0, trained by maximum likelihood
    (Eq. 6.3) or, with ``energy``, by reverse KL to exp(-U) / Z (Eq. 6.4).

    Args:
        steps: the flow steps f_1, ..., f_K (``course_lib.flows.steps`` layers), from the
            base side to the data side; all of the same ``dim``.
        base: p_0, ``"normal"`` or ``"logistic"``.
        energy: None (fit data by maximum likelihood), or the name of a 2-D target energy;
            ``fit`` then takes no data: ``fit(batch_size=..., steps_per_epoch=...,
            epochs=...)``, each step drawing ``batch_size`` fresh z_0.
        annealing_steps: with ``energy``, Rezende & Mohamed's annealing: the loss is
            E_q[log q + beta_t U] with beta_t = min(1, initial_beta + t / annealing_steps)
            after t updates, which lets q spread over every mode before U sharpens (0: no
            annealing, beta = 1). The logged ``free_energy`` is always the one with beta = 1.
        initial_beta: beta_0 of the annealing (the paper: 0.01).
        seed: seed of the model's draws (sampling, reverse-KL training); None: unseeded.

    Metrics (``fit``/``evaluate``): ``negative_log_likelihood`` (-log p(x) per example, in
    nats), or with ``energy`` ``free_energy``, E_q[log q + U] = KL(q || p) - log Z.

    Example:
        >>> steps = [MAFStep(2, (64, 64), order=o) for o in ("natural", "reversed")]
        >>> flow = FlowModel(steps, seed=0)
        >>> flow.compile(keras.optimizers.Adam(1e-3))
        >>> flow.fit(toy_2d("moons", 10_000, seed=0), batch_size=256, epochs=20)
        >>> flow.log_prob(x_test).mean()
    """

    divergence_advice = ("dequantise discrete data such as pixels first "
                         "(course_lib.flows.pixels.dequantize): a density fitted to repeated "
                         "values grows without bound; otherwise lower the learning rate (try 3x "
                         "smaller), add gradient clipping (Adam(clipnorm=1.0)) or lower the "
                         "steps' log_scale_bound")

    def __init__(self, steps, *, base="normal", energy=None, annealing_steps=0,
                 initial_beta=0.01, seed=None, **kwargs):
        super().__init__(**kwargs)
        steps = list(steps) if isinstance(steps, (list, tuple)) else steps
        if not isinstance(steps, list) or not steps \
                or not all(isinstance(s, FlowStep) for s in steps):
            raise TypeError(f"steps must be a non-empty list of flow steps "
                            f"(course_lib.flows.steps layers); got {describe(steps)}.")
        dims = sorted({s.dim for s in steps})
        if len(dims) != 1:
            raise ValueError(f"every step must have the same dim; got dims {dims}.")
        if not isinstance(base, str) or base not in BASES:
            raise ValueError(f"base must be one of {BASES}; got {describe(base)}.")
        if energy is not None:
            if not isinstance(energy, str) or energy not in energies.ENERGY_NAMES:
                raise ValueError(f"energy must be None or one of {energies.ENERGY_NAMES}; "
                                 f"got {describe(energy)}.")
            if dims[0] != 2:
                raise ValueError(f"the energies are 2-D; got steps of dim {dims[0]}.")
        self.annealing_steps = check_nonneg_int(annealing_steps, "annealing_steps")
        self.initial_beta = check_finite_float(initial_beta, "initial_beta", above=0.0,
                                               at_most=1.0)
        if self.annealing_steps and energy is None:
            raise ValueError(f"annealing_steps={annealing_steps} anneals an energy; this flow "
                             "has none (energy=None) and is fitted by maximum likelihood.")
        self.steps = steps
        self.dim = dims[0]
        self.base = base
        self.energy = energy
        self.seed = check_seed(seed, allow_none=True)
        self.seed_generator = sampling.tracked_seed_generator(self, seed)
        self.loss_name = "negative_log_likelihood" if energy is None else "free_energy"
        self.loss_tracker = keras.metrics.Mean(name=self.loss_name)
        self.built = True            # every weight exists: each step creates its own

    @property
    def checkpoint_monitor(self):
        return self.loss_name

    # ------------------------------------------------------------------ the distribution
    def base_distribution(self, temperature=1.0):
        """p_0 over R^D, with its scale multiplied by ``temperature``."""
        loc = tf.zeros(self.dim, self.flow_dtype)
        scale = tf.fill([self.dim], tf.cast(temperature, self.flow_dtype))
        if self.base == "normal":
            return tfd.MultivariateNormalDiag(loc, scale)
        return tfd.Independent(tfd.Logistic(loc, scale), reinterpreted_batch_ndims=1)

    @property
    def flow_dtype(self):
        """The flow's float dtype: the steps' variable dtype (float32 under mixed precision)."""
        return self.steps[0].variable_dtype

    def bijector(self):
        """f = f_K o ... o f_1 (Eq. 6.2) as one ``tfb.Chain`` of the steps' bijectors."""
        return tfb.Chain([step.bijector() for step in reversed(self.steps)])

    def distribution(self, temperature=1.0):
        """The flow's ``tfd.TransformedDistribution`` (Eq. 6.1), built from the current
        weights."""
        return tfd.TransformedDistribution(self.base_distribution(temperature),
                                           self.bijector())

    def call(self, z):
        """x = f(z)."""
        return self.bijector().forward(ops.convert_to_tensor(z, self.flow_dtype))

    def _compiled(self, name, fn):
        """``fn`` as a ``tf.function`` kept on the model (one per name): called eagerly, the
        steps' TFP bijectors would run op by op, and MAF's D-step sampling loop in Python."""
        functions = self.__dict__.setdefault("_compiled_functions", {})
        if name not in functions:
            functions[name] = tf.function(fn, reduce_retracing=True)
        return functions[name]

    def log_prob(self, x):
        """Eqs. (6.1)-(6.2): log p(x) of rows x (n, D), in nats: a tensor (n,).

        The steps are walked from the data side to the base, each step's inverse and its
        log-determinant taken on the same tensor, so that a step computes its network once
        for both (``distribution().log_prob`` gives the same value through TFP's
        composition, which hands them different tensors and so runs every network twice).
        """
        x = ops.convert_to_tensor(x, self.flow_dtype)
        if len(x.shape) != 2 or x.shape[-1] not in (None, self.dim):
            raise ValueError(f"x must have shape (n, {self.dim}); got shape {tuple(x.shape)}.")
        if tf.executing_eagerly():
            return self._compiled("log_prob", self._log_prob)(x)
        return self._log_prob(x)

    def _log_prob(self, x):
        log_det = ops.zeros(ops.shape(x)[:1], self.flow_dtype)
        for step in reversed(self.steps):
            bijector = step.bijector()
            log_det += bijector.inverse_log_det_jacobian(x, event_ndims=1)
            x = bijector.inverse(x)
        return self.base_distribution().log_prob(x) + log_det

    def sample_base(self, num_samples, *, temperature=1.0, seed=None):
        """z_0 ~ p_0 with its scale times ``temperature``: a tensor (num_samples, D)."""
        seed = sampling.resolve_seed(seed, self.seed_generator)
        shape = (num_samples, self.dim)
        if self.base == "normal":
            return temperature * sampling.normal(shape, seed, dtype=self.flow_dtype)
        tiny = np.finfo(self.flow_dtype).tiny
        u = ops.clip(sampling.uniform(shape, seed, dtype=self.flow_dtype), tiny, 1.0 - 1e-7)
        return temperature * (ops.log(u) - ops.log1p(-u))          # the logistic quantile

    def sample_and_log_prob(self, num_samples, *, temperature=1.0, seed=None):
        """Eq. (6.4)'s x = f(z_0), z_0 ~ p_0, and log q(x) = log p_0(z_0) - sum_k log |det J_k|
        from the forward direction only (no inverse): ``(x (n, D), log_q (n,))``."""
        z = self.sample_base(num_samples, temperature=temperature, seed=seed)
        log_q = self.base_distribution(temperature).log_prob(z)
        for step in self.steps:
            bijector = step.bijector()
            log_q -= bijector.forward_log_det_jacobian(z, event_ndims=1)
            z = bijector.forward(z)
        return z, log_q

    def sample(self, num_samples, *, temperature=1.0, seed=None):
        """x = f(z), z ~ p_0 with its scale times ``temperature`` (< 1: the typical, cleaner
        samples): a float32 array (num_samples, D)."""
        num_samples = check_positive_int(num_samples, "num_samples")
        temperature = check_finite_float(temperature, "temperature", above=0.0)
        z = self.sample_base(num_samples, temperature=temperature, seed=seed)
        x = self._compiled("forward", lambda z: self.bijector().forward(z))(z)
        return ops.convert_to_numpy(x).astype(np.float32)

    # ------------------------------------------------------------------ training
    def beta(self, step):
        """The annealed inverse temperature after ``step`` updates (1 without annealing)."""
        if not self.annealing_steps:
            return 1.0
        step = ops.cast(step, "float32")
        return ops.minimum(1.0, self.initial_beta + step / self.annealing_steps)

    def objective(self, x, beta=1.0):
        """The loss per example: -log p(x) (Eq. 6.3); or, with an energy,
        ``(log q(z_K) + beta U(z_K), log q(z_K) + U(z_K))`` for as many fresh z_0 as ``x``
        has rows (Eq. 6.4; ``x`` itself is unused)."""
        if self.energy is None:
            nll = -self.log_prob(x)
            return nll, nll
        z, log_q = self.sample_and_log_prob(ops.shape(x)[0])
        u = energies.energy(self.energy, z)
        return log_q + beta * u, log_q + u

    def train_step(self, data):
        x, _ = unpack_batch(data, type(self).__name__)
        beta = self.beta(self.optimizer.iterations)
        with tf.GradientTape() as tape:
            annealed, reported = self.objective(x, beta)
            scaled = scaled_loss(self.optimizer, ops.mean(annealed))
        variables = self.trainable_variables
        self.optimizer.apply(tape.gradient(scaled, variables), variables)
        self.loss_tracker.update_state(ops.mean(reported))
        return {self.loss_name: self.loss_tracker.result()}

    def test_step(self, data):
        x, _ = unpack_batch(data, type(self).__name__)
        self.loss_tracker.update_state(ops.mean(self.objective(x)[1]))
        return {self.loss_name: self.loss_tracker.result()}

    @property
    def metrics(self):
        return [self.loss_tracker]

    def check_visible(self, x, name="x"):
        """Validates (n, D) finite rows."""
        return check_images(x, expected_dim=self.dim, name=name)

    def initialize(self, x):
        """Data-dependent initialisation of every :class:`ActNorm` step not yet initialised
        (Glow): the rows ``x`` are carried from the data side towards the base, and each
        act-norm met on the way is set so that it standardises what reaches it."""
        h = ops.convert_to_tensor(self.check_visible(x), self.flow_dtype)
        for step in reversed(self.steps):
            if isinstance(step, ActNorm) and float(step.initialized.numpy()) == 0.0:
                step.initialize(h)
            h = step.bijector().inverse(h)

    def fit(self, x=None, y=None, *, batch_size=None, steps_per_epoch=None, **kwargs):
        """Keras' ``fit`` (through the shared guarded ``fit``). Maximum likelihood: ``x`` is
        the data; uninitialised act-norm steps are first initialised on its first rows.
        Reverse KL (``energy`` set): no data; ``batch_size`` z_0 per step,
        ``steps_per_epoch`` steps per epoch."""
        if self.energy is None:
            if x is not None and not isinstance(x, tf.data.Dataset) and any(
                    isinstance(s, ActNorm) and float(s.initialized.numpy()) == 0.0
                    for s in self.steps):
                self.initialize(np.asarray(x)[:INITIALIZATION_ROWS])
            return super().fit(x, y, batch_size=batch_size, steps_per_epoch=steps_per_epoch,
                               **kwargs)
        if x is not None or y is not None:
            raise ValueError(f"a flow fitted to the energy {self.energy} takes no data; got "
                             f"x. Call fit(batch_size=..., steps_per_epoch=..., epochs=...).")
        batch_size = check_positive_int(batch_size, "batch_size")
        steps_per_epoch = check_positive_int(steps_per_epoch, "steps_per_epoch")
        # Each batch only carries the batch size: train_step draws fresh z_0 itself.
        placeholder = tf.data.Dataset.from_tensors(
            tf.zeros((batch_size, self.dim), tf.float32)).repeat(steps_per_epoch)
        return super().fit(placeholder, **kwargs)

    def get_config(self):
        config = super().get_config()
        config.update(steps=[keras.saving.serialize_keras_object(s) for s in self.steps],
                      base=self.base, energy=self.energy,
                      annealing_steps=self.annealing_steps, initial_beta=self.initial_beta,
                      seed=self.seed)
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["steps"] = [keras.saving.deserialize_keras_object(s) for s in config["steps"]]
        return cls(**config)
