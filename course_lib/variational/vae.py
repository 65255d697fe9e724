"""Variational autoencoders, importance-weighted autoencoders and conditional VAEs.

Kingma & Welling (2014), Auto-Encoding Variational Bayes (the ELBO, the reparameterization
trick, the 2-D latent MLP); Burda, Grosse & Salakhutdinov (2016), Importance Weighted
Autoencoders (the k-sample bound, the 784-200-200-50 model, active units); Sohn, Lee &
Yan (2015), Learning Structured Output Representation using Deep Conditional Generative
Models (labels as side information). Equations as numbered in ``notebooks/04_vae.ipynb``:

* (4.1) ELBO: log p(x) >= E_q[log p(x | z)] - KL(q(z | x) || p(z)) = L(x);
* (4.6) beta-weighted ELBO for KL annealing: E_q[log p(x | z)] - beta KL;
* (4.7) importance-weighted bound: log p(x) >= E[log (1/k) sum_i p(x, z_i) / q(z_i | x)],
  z_i ~ q(z | x); k = 1 is the ELBO, and it rises towards log p(x) as k grows.

Symbols -> attributes: q(z | x) = N(mu, diag sigma^2) -> ``encode`` (``self.encoder`` outputs
mu and log sigma^2, clipped to ``log_var_range``); p(x | z) -> ``decode`` (``self.decoder``)
and ``log_likelihood``; p(z) = N(0, I); k -> ``num_samples``; beta -> ``self.kl_weight``;
y -> the label given to both networks when ``num_classes`` is set (conditional VAE).

Deviations from the papers, stated: Adam with a constant learning rate by default (Burda
et al. decay it over 3,280 passes); dynamic binarization is drawn inside ``train_step``
(``dynamic_binarization=True``) from the model's seed generator rather than by the input
pipeline; for ``objective="elbo"`` the KL term is the closed form (4.4), not a
Monte-Carlo estimate.
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf
from keras import ops

from course_lib import sampling
from course_lib.checks import (
    check_bool,
    check_finite_float,
    check_images,
    check_int_sequence,
    check_interval,
    check_positive_int,
    check_seed,
    describe,
    is_concrete,
)
from course_lib.training import GuardedFitMixin, scaled_loss, unpack_batch
from course_lib.variational import latent

LIKELIHOODS = ("bernoulli", "continuous_bernoulli", "gaussian")
OBJECTIVES = ("elbo", "iwae")
# The networks compute in the model's dtype policy (float16 under mixed_float16); the latent
# math, the likelihoods, the bounds and the metrics always in float32.
LOSS_DTYPE = "float32"


def mlp(hidden_units, output_dim, activation, name, input_dim):
    """A built ``keras.Sequential`` of Dense layers ``hidden_units`` then a linear output."""
    layers = [keras.layers.Dense(n, activation=activation, name=f"{name}_hidden{i}")
              for i, n in enumerate(hidden_units)]
    net = keras.Sequential([keras.Input((input_dim,)), *layers,
                            keras.layers.Dense(output_dim, name=f"{name}_out")], name=name)
    return net


UNCONDITIONAL_LABELS = ("labels were given to an unconditional VAE; build it with "
                        "num_classes=... to condition on them.")


def labels_needed(num_classes):
    """The error message for a conditional VAE called without its labels."""
    return (f"this conditional VAE (num_classes={num_classes}) needs the labels y: "
            "fit(x, y), sample(n, y=...), encode(x, y).")


@keras.saving.register_keras_serializable(package="course_lib")
class VAE(GuardedFitMixin, keras.Model):
    """A VAE (or IWAE, or conditional VAE) with MLP encoder and decoder, Eqs. (4.1)-(4.7).

    Args:
        input_dim: D, the number of pixels.
        latent_dim: d, the size of z.
        hidden_units: widths of the encoder's hidden layers; the decoder mirrors them.
            ``(200, 200)`` with d = 50 is Burda et al.'s one-stochastic-layer model;
            ``(512,)`` with d = 2 is the 2-D latent model of Kingma & Welling.
        activation: hidden-layer activation (both papers used tanh).
        likelihood: p(x | z): ``"bernoulli"`` (binary pixels), ``"continuous_bernoulli"``
            or ``"gaussian"`` (real-valued pixels), Eq. (4.5).
        objective: ``"elbo"`` (VAE) or ``"iwae"`` (the k-sample bound (4.7)).
        num_samples: k, draws of z per example in training.
        num_classes: if set, a conditional VAE: ``fit(x, labels)``, and every method takes
            the integer labels ``y``.
        kl_weight: initial beta of Eq. (4.6); 1 is the ELBO. :class:`KLAnnealing` changes it.
        decoder_log_var: Gaussian likelihood only: a float fixes log sigma^2 of every pixel;
            None learns one per pixel (clipped to ``log_var_range``).
        log_var_range: (low, high) clip of every log-variance, for numerical safety.
        dynamic_binarization: draw x ~ Bernoulli(x) afresh for every training batch (the
            inputs are then intensities in [0, 1]).
        seed: int seed of the model's random draws (None: unseeded). The initial weights
            come from Keras' global generator: call ``keras.utils.set_random_seed`` first
            for a reproducible run.

    Metrics (``fit``/``evaluate``): ``negative_bound`` (minus the training objective, the
    beta-weighted ELBO (4.6) or the IW bound (4.7): what the optimizer minimizes), ``elbo``,
    ``reconstruction`` and ``kl``, each a mean over examples, in nats.

    Example:
        >>> vae = VAE(784, 50, (200, 200), objective="iwae", num_samples=5, seed=0)
        >>> vae.compile(keras.optimizers.Adam(1e-3))
        >>> vae.fit(x_train, batch_size=100, epochs=10)
        >>> importance_weighted_bound(vae, x_test, num_samples=5000).mean()  # evaluation
    """

    divergence_advice = ("lower the learning rate (try 3x smaller) or add gradient clipping "
                         "(Adam(clipnorm=1.0)); keep log_var_range finite; check that the "
                         "inputs match the likelihood (binary or [0, 1] for Bernoulli)")

    checkpoint_monitor = "negative_bound"  # SafeCheckpoint keeps the lowest

    def __init__(self, input_dim=784, latent_dim=50, hidden_units=(200, 200), *,
                 activation="tanh", likelihood="bernoulli", objective="elbo", num_samples=1,
                 num_classes=None, kl_weight=1.0, decoder_log_var=None,
                 log_var_range=(-12.0, 8.0), dynamic_binarization=False, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.input_dim = check_positive_int(input_dim, "input_dim")
        self.latent_dim = check_positive_int(latent_dim, "latent_dim")
        self.hidden_units = check_int_sequence(hidden_units, "hidden_units",
                                               item="hidden layer width", min_length=0)
        if not isinstance(likelihood, str) or likelihood not in LIKELIHOODS:
            raise ValueError(f"likelihood must be one of {LIKELIHOODS}; got "
                             f"{describe(likelihood)}.")
        if not isinstance(objective, str) or objective not in OBJECTIVES:
            raise ValueError(f"objective must be one of {OBJECTIVES}; got "
                             f"{describe(objective)}.")
        try:
            keras.activations.get(activation)
        except (ValueError, TypeError):
            raise ValueError(f"activation must name a Keras activation (e.g. 'tanh', 'relu') "
                             f"or be a function; got {describe(activation)}.") from None
        if num_classes is not None:
            check_positive_int(num_classes, "num_classes", minimum=2)
        low, high = check_interval(log_var_range, "log_var_range")
        kl_weight = check_finite_float(kl_weight, "kl_weight", at_least=0.0)
        if decoder_log_var is not None:
            decoder_log_var = check_finite_float(decoder_log_var, "decoder_log_var",
                                                 at_least=low, at_most=high)
        dynamic_binarization = check_bool(dynamic_binarization, "dynamic_binarization")
        if dynamic_binarization and likelihood != "bernoulli":
            raise ValueError("dynamic_binarization needs likelihood='bernoulli'; got "
                             f"{likelihood!r}.")
        self.activation, self.likelihood, self.objective = activation, likelihood, objective
        self.num_samples = check_positive_int(num_samples, "num_samples")
        self.num_classes = None if num_classes is None else int(num_classes)
        self.initial_kl_weight = float(kl_weight)
        self.decoder_log_var_init = None if decoder_log_var is None else float(decoder_log_var)
        self.log_var_range = (low, high)
        self.dynamic_binarization = dynamic_binarization
        self.seed = check_seed(seed, allow_none=True)
        self.seed_generator = sampling.tracked_seed_generator(self, seed)
        # minus the training objective (the beta-weighted or IW bound): named so that it
        # does not clash with the automatic "loss" metric of keras.Model.compile
        self.negative_bound_tracker = keras.metrics.Mean(name="negative_bound")
        self.elbo_tracker = keras.metrics.Mean(name="elbo")
        self.reconstruction_tracker = keras.metrics.Mean(name="reconstruction")
        self.kl_tracker = keras.metrics.Mean(name="kl")
        self.build((None, self.input_dim))

    def build(self, input_shape):
        if self.built:
            return
        extra = self.num_classes or 0
        self.encoder = mlp(self.hidden_units, 2 * self.latent_dim, self.activation,
                           "encoder", self.input_dim + extra)
        self.decoder = mlp(self.hidden_units[::-1], self.input_dim, self.activation,
                           "decoder", self.latent_dim + extra)
        # beta, and the KL-annealing schedule that sets it inside train_step: beta rises from
        # kl_warmup_start to 1 over kl_warmup_steps updates (0: no schedule, beta stays put).
        # Every replica computes the same value, so the first replica's assignment is kept.
        scalar = dict(shape=(), trainable=False, aggregation="only_first_replica")
        self.kl_weight = self.add_weight(
            initializer=keras.initializers.Constant(self.initial_kl_weight), name="kl_weight",
            **scalar)
        self.kl_warmup_start = self.add_weight(initializer="zeros", name="kl_warmup_start",
                                               **scalar)
        self.kl_warmup_steps = self.add_weight(initializer="zeros", name="kl_warmup_steps",
                                               **scalar)
        if self.likelihood == "gaussian":
            learned = self.decoder_log_var_init is None
            self.decoder_log_var = self.add_weight(
                shape=(self.input_dim,), trainable=learned, name="decoder_log_var",
                initializer=keras.initializers.Constant(0.0 if learned
                                                        else self.decoder_log_var_init))

    # ------------------------------------------------------------------ the two networks
    def _with_label(self, a, y):
        if self.num_classes is None:
            if y is not None:
                raise ValueError(UNCONDITIONAL_LABELS)
            return a
        if y is None:
            raise ValueError(labels_needed(self.num_classes))
        if is_concrete(y):          # symbolic labels: validated where they enter (fit)
            y = self.check_labels(ops.convert_to_numpy(y) if tf.is_tensor(y) else y)
        one_hot = ops.one_hot(ops.cast(ops.reshape(y, (-1,)), "int32"), self.num_classes,
                              dtype=a.dtype)
        if len(a.shape) == 3:                      # (k, n, d): the same label for every draw
            one_hot = ops.broadcast_to(one_hot, (ops.shape(a)[0], *ops.shape(one_hot)))
        return ops.concatenate([a, one_hot], axis=-1)

    def encode(self, x, y=None):
        """q(z | x): returns ``(mu, log_var)``, each (n, d), log_var clipped to the range."""
        x = ops.convert_to_tensor(x, dtype=LOSS_DTYPE)
        if len(x.shape) != 2 or x.shape[-1] not in (None, self.input_dim):
            raise ValueError(f"x must have shape (n, {self.input_dim}); got shape "
                             f"{tuple(x.shape)}.")
        out = ops.cast(self.encoder(self._with_label(x, y)), LOSS_DTYPE)
        mean, raw_log_var = ops.split(out, 2, axis=-1)
        return mean, ops.clip(raw_log_var, *self.log_var_range)

    def decode(self, z, y=None):
        """p(x | z)'s parameters for z of shape (n, d) or (k, n, d): logits (Bernoulli and
        continuous Bernoulli) or means (Gaussian), with the shape of z's leading axes."""
        z = ops.convert_to_tensor(z, dtype=LOSS_DTYPE)
        if len(z.shape) not in (2, 3) or z.shape[-1] not in (None, self.latent_dim):
            raise ValueError(f"z must have shape (n, {self.latent_dim}) or (k, n, "
                             f"{self.latent_dim}); got shape {tuple(z.shape)}.")
        h = self._with_label(z, y)
        if len(h.shape) == 2:
            return ops.cast(self.decoder(h), LOSS_DTYPE)
        flat = ops.cast(self.decoder(ops.reshape(h, (-1, h.shape[-1]))), LOSS_DTYPE)
        return ops.reshape(flat, (*ops.shape(z)[:-1], self.input_dim))

    def log_likelihood(self, x, decoded):
        """Eq. (4.5): log p(x | z) from ``decode``'s output; broadcasts (n, D) against
        (k, n, D)."""
        if self.likelihood == "bernoulli":
            return latent.bernoulli_log_prob(x, decoded)
        if self.likelihood == "continuous_bernoulli":
            return latent.continuous_bernoulli_log_prob(x, decoded)
        log_var = ops.clip(self.decoder_log_var, *self.log_var_range)
        return latent.gaussian_log_prob(x, decoded, log_var)

    def mean_image(self, decoded):
        """E[x | z] from ``decode``'s output: what to show as an image."""
        if self.likelihood == "bernoulli":
            return ops.sigmoid(decoded)
        if self.likelihood == "continuous_bernoulli":
            return latent.continuous_bernoulli_mean(decoded)
        return decoded

    def call(self, x, y=None):
        """The reconstruction E[x | z = mu(x)] (no sampling)."""
        mean, _ = self.encode(x, y)
        return self.mean_image(self.decode(mean, y))

    # ------------------------------------------------------------------ the bounds
    def log_importance_weights(self, x, y=None, *, num_samples, seed=None):
        """log w_i = log p(x | z_i) + log p(z_i) - log q(z_i | x), z_i ~ q: shape (k, n).

        Their mean over i is an unbiased estimate of the ELBO (4.1); their log-mean-exp is
        the importance-weighted bound (4.7).
        """
        num_samples = check_positive_int(num_samples, "num_samples")
        x = ops.convert_to_tensor(x, dtype=LOSS_DTYPE)
        mean, log_var = self.encode(x, y)
        z = latent.reparameterize(mean, log_var, sampling.resolve_seed(seed, self.seed_generator),
                                  num_samples)
        log_px_given_z = self.log_likelihood(x, self.decode(z, y))
        return log_px_given_z + latent.log_standard_normal(z) - latent.log_normal(z, mean,
                                                                                   log_var)

    def bound_terms(self, x, y=None, seed=None):
        """The training objective and its parts, each (n,), with k = ``num_samples``:

        ``objective`` (the beta-weighted ELBO (4.6), or the IW bound (4.7) with beta on
        log p(z) - log q), ``elbo``, ``reconstruction`` E_q[log p(x | z)] and ``kl``
        (closed form, Eq. 4.4).
        """
        seed = sampling.resolve_seed(seed, self.seed_generator)
        x = ops.convert_to_tensor(x, dtype=LOSS_DTYPE)
        mean, log_var = self.encode(x, y)
        z = latent.reparameterize(mean, log_var, seed, self.num_samples)   # (k, n, d)
        log_px_given_z = self.log_likelihood(x, self.decode(z, y))          # (k, n)
        reconstruction = ops.mean(log_px_given_z, axis=0)
        kl = latent.gaussian_kl(mean, log_var)
        if self.objective == "elbo":
            objective = reconstruction - self.kl_weight * kl
        else:
            log_prior_ratio = latent.log_standard_normal(z) - latent.log_normal(z, mean, log_var)
            objective = latent.log_mean_exp(log_px_given_z + self.kl_weight * log_prior_ratio)
        return dict(objective=objective, elbo=reconstruction - kl,
                    reconstruction=reconstruction, kl=kl)

    def _update_metrics(self, terms):
        self.negative_bound_tracker.update_state(-ops.mean(terms["objective"]))
        for tracker in (self.elbo_tracker, self.reconstruction_tracker, self.kl_tracker):
            tracker.update_state(ops.mean(terms[tracker.name]))
        return {m.name: m.result() for m in self.metrics}

    def annealed_kl_weight(self, step):
        """Eq. (4.6)'s beta after ``step`` updates under the schedule :class:`KLAnnealing`
        set: ``min(1, start + (1 - start) step / warmup_steps)``; with no schedule
        (``kl_warmup_steps == 0``) the current ``kl_weight``."""
        warmup = ops.convert_to_tensor(self.kl_warmup_steps)
        start = ops.convert_to_tensor(self.kl_warmup_start)
        step = ops.cast(step, warmup.dtype)
        beta = ops.minimum(1.0, start + (1.0 - start) * step / ops.maximum(warmup, 1.0))
        return ops.where(warmup > 0, beta, ops.convert_to_tensor(self.kl_weight))

    def train_step(self, data):
        x, y = unpack_batch(data, type(self).__name__)
        # beta for this update, from the optimizer's step count: exact at every step of a
        # compiled call of several steps (steps_per_execution), which callbacks cannot be.
        self.kl_weight.assign(self.annealed_kl_weight(self.optimizer.iterations))
        if self.dynamic_binarization:                            # a fresh binary x per batch
            x = sampling.bernoulli(ops.convert_to_tensor(x, LOSS_DTYPE),
                                   self.seed_generator)
        with tf.GradientTape() as tape:
            terms = self.bound_terms(x, y)
            loss = scaled_loss(self.optimizer, -ops.mean(terms["objective"]))  # maximize
        variables = self.trainable_variables
        self.optimizer.apply(tape.gradient(loss, variables), variables)
        return self._update_metrics(terms)

    def test_step(self, data):
        x, y = unpack_batch(data, type(self).__name__)
        return self._update_metrics(self.bound_terms(x, y))

    @property
    def metrics(self):
        return [self.negative_bound_tracker, self.elbo_tracker, self.reconstruction_tracker,
                self.kl_tracker]

    # ------------------------------------------------------------------ data and samples
    def check_visible(self, x, name="x"):
        """Validates (n, D) inputs: finite, and in [0, 1] unless the likelihood is Gaussian."""
        arr = check_images(x, expected_dim=self.input_dim, name=name)
        if self.likelihood != "gaussian" and (arr.min() < 0.0 or arr.max() > 1.0):
            raise ValueError(f"{name} must hold values in [0, 1] for the {self.likelihood} "
                             f"likelihood; got values in [{arr.min():g}, {arr.max():g}].")
        return arr

    def check_labels(self, y, num_rows=None, name="y"):
        """Validates integer labels in [0, num_classes) (one per row); ``y=None`` is right
        exactly when the VAE is unconditional. Returns int32 labels or None."""
        if y is None:
            if self.num_classes is not None:
                raise ValueError(labels_needed(self.num_classes))
            return None
        if self.num_classes is None:
            raise ValueError(UNCONDITIONAL_LABELS)
        arr = np.asarray(y)
        if arr.dtype.kind not in "iu" or arr.ndim != 1:
            raise ValueError(f"{name} must be a 1-D array of integer labels; got dtype "
                             f"{arr.dtype} and shape {arr.shape}.")
        if num_rows is not None and len(arr) != num_rows:
            raise ValueError(f"{name} must hold one label per row of x ({num_rows}); got "
                             f"{len(arr)}.")
        if len(arr) and (arr.min() < 0 or arr.max() >= self.num_classes):
            raise ValueError(f"{name} must hold labels in [0, {self.num_classes}); got values "
                             f"in [{arr.min()}, {arr.max()}].")
        return arr.astype(np.int32)

    def sample(self, num_samples, *, y=None, seed=None):
        """Images E[x | z] for z ~ p(z) = N(0, I) (with labels ``y`` if conditional: one
        label for all, or one per sample)."""
        num_samples = check_positive_int(num_samples, "num_samples")
        if y is not None and np.ndim(y) == 0:
            y = np.full(num_samples, y)
        y = self.check_labels(y, num_samples)
        z = sampling.normal((num_samples, self.latent_dim),
                            sampling.resolve_seed(seed, self.seed_generator))
        return ops.convert_to_numpy(self.mean_image(self.decode(z, y)))

    def get_config(self):
        config = super().get_config()
        config.update(input_dim=self.input_dim, latent_dim=self.latent_dim,
                      hidden_units=self.hidden_units, activation=self.activation,
                      likelihood=self.likelihood, objective=self.objective,
                      num_samples=self.num_samples, num_classes=self.num_classes,
                      kl_weight=self.initial_kl_weight,
                      decoder_log_var=self.decoder_log_var_init,
                      log_var_range=list(self.log_var_range),
                      dynamic_binarization=self.dynamic_binarization, seed=self.seed)
        return config


class KLAnnealing(keras.callbacks.Callback):
    """Raises beta (``model.kl_weight``) linearly from ``start`` to 1 over ``warmup_steps``
    parameter updates (Bowman et al. 2016; Sonderby et al. 2016): early on the decoder
    learns to use z before the KL term pulls q(z | x) onto the prior.

    The update at step t (the optimizer's ``iterations`` before it) uses ``beta(t)``. The
    callback only hands the schedule to the model (``kl_warmup_start``, ``kl_warmup_steps``)
    when training begins; the VAE's ``train_step`` sets ``kl_weight`` from the step count
    itself, so beta is exact at every step even when Keras runs many steps per call
    (``steps_per_execution``) and calls callbacks only between calls. The schedule is
    removed when training ends (``kl_weight`` keeps its last value), and saved with the
    model in between, so a run resumed from a checkpoint continues it.
    """

    def __init__(self, warmup_steps, start=0.0):
        super().__init__()
        self.warmup_steps = check_positive_int(warmup_steps, "warmup_steps")
        self.start = check_finite_float(start, "start", at_least=0.0, at_most=1.0)
        self.history = []

    def beta(self, step):
        """beta after ``step`` updates."""
        return min(1.0, self.start + (1.0 - self.start) * step / self.warmup_steps)

    def on_train_begin(self, logs=None):
        if not hasattr(self.model, "kl_warmup_steps"):
            raise TypeError(f"KLAnnealing needs a VAE (a model with kl_warmup_steps); got "
                            f"{type(self.model).__name__}.")
        self.model.kl_warmup_start.assign(self.start)
        self.model.kl_warmup_steps.assign(float(self.warmup_steps))

    def on_train_end(self, logs=None):
        self.model.kl_warmup_steps.assign(0.0)

    def on_epoch_end(self, epoch, logs=None):
        self.history.append(float(ops.convert_to_numpy(self.model.kl_weight)))
