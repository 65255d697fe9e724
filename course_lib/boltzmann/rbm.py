"""Restricted Boltzmann machines trained by contrastive divergence (CD-k, PCD, FPCD).

Paper card
----------
Smolensky 1986; Hinton 2002 (CD-k); Tieleman 2008 (persistent CD); Tieleman & Hinton 2009
(fast-weights PCD); Hinton 2010, "A practical guide to training RBMs" (Gaussian units).
Used by ``notebooks/01_rbm.ipynb`` (and as the building block of the DBN/DBM chapters).

Equations, numbered as in the chapter notebook (Bernoulli-Bernoulli RBM)::

    (1.1) E(v, h)  = -b.v - c.h - v.W.h
    (1.2) p(v, h)  = exp(-E(v, h)) / Z,        Z = sum_{v,h} exp(-E(v, h))
    (1.3) F(v)     = -b.v - sum_j softplus(c_j + (v W)_j),   p(v) = exp(-F(v)) / Z
    (1.4) p(h_j = 1 | v) = sigmoid(c_j + (v W)_j)
    (1.5) p(v_i = 1 | h) = sigmoid(b_i + (W h)_i)
    (1.6) CD-k gradient:  d/dθ [ mean F(v_data) - mean F(v_k) ],  v_k = k Gibbs steps away
    (1.7) F_h(h)   = -log sum_v exp(-E(v, h)) = -c.h - sum_i softplus(b_i + (W h)_i)

Gaussian-Bernoulli RBM (Hinton 2010, section 13.2; visible units with std sigma_i)::

    (1.8)  E(v, h) = sum_i (v_i - b_i)^2 / (2 sigma_i^2) - c.h - sum_ij (v_i / sigma_i) W_ij h_j
    (1.9)  p(h_j = 1 | v) = sigmoid(c_j + ((v / sigma) W)_j);  p(v | h) = N(b + sigma W h, sigma^2)
    (1.10) F(v)    = sum_i (v_i - b_i)^2 / (2 sigma_i^2) - sum_j softplus(c_j + ((v / sigma) W)_j)
    (1.11) F_h(h)  = -c.h - sum_i [b_i a_i / sigma_i + a_i^2 / 2 + log(sqrt(2 pi) sigma_i)], a = Wh

Symbol -> attribute: ``W -> self.W`` (n_visible x n_hidden), ``b -> self.visible_bias``,
``c -> self.hidden_bias``, ``log sigma -> self.log_sigma`` (Gaussian only), ``k -> self.k``,
persistent chains -> ``self.persistent_chains``, fast weights ``W_f, b_f, c_f ->
self.fast_W, self.fast_visible_bias, self.fast_hidden_bias``.

The training rule (1.6) is written as a loss whose gradient *is* the CD update, so any
Keras optimizer (momentum, weight decay), ``steps_per_execution`` and ``tf.distribute``
strategy work unchanged. Under several replicas (``MirroredStrategy``) each replica advances
its own block of the persistent chains and the fast weights follow the replicas' summed
gradient, so chains and fast weights stay one state, the same on every replica
(``tests/training/test_distribute.py``). Deviation from the papers: weight decay, when
wanted, is the optimizer's decoupled weight decay rather than an L2 term inside the gradient.
"""

from __future__ import annotations

import math

import keras
import numpy as np
import tensorflow as tf
from keras import ops

from course_lib import sampling
from course_lib.boltzmann.annealing import RBMAnnealingPath
from course_lib.checks import (
    check_bool,
    check_finite_array,
    check_finite_float,
    check_images,
    check_nonneg_int,
    check_positive_int,
    check_seed,
    describe,
    float32_only,
    is_concrete,
)
from course_lib.training import (
    GuardedFitMixin,
    scaled_loss,
    sum_over_replicas,
    unpack_batch,
    unscale_gradients,
)

SAMPLERS = ("cd", "pcd", "fpcd")


class RBM(GuardedFitMixin, keras.Model):
    """Shared machinery of the RBM family: Gibbs chains, the CD loss and ``train_step``.

    Subclasses define the unit types through ``hidden_preactivation``, ``visible_mean``,
    ``sample_visible`` (given the mean), ``free_energy``, ``energy`` and ``hidden_free_energy``.

    Args:
        n_visible: number of visible units D.
        n_hidden: number of hidden units H.
        k: Gibbs steps per update (the k of CD-k / PCD-k).
        sampler: ``"cd"`` (chains start at the data), ``"pcd"`` (persistent chains, model
            state saved with the model) or ``"fpcd"`` (persistent chains run with
            ``W + W_f``: fast weights with their own learning rate and decay).
        num_chains: number of persistent chains (``"pcd"``/``"fpcd"`` only).
        fast_learning_rate: eta_f, the fast weights' learning rate (``"fpcd"`` only).
        fast_decay: the factor applied to the fast weights at every update (19/20 in
            Tieleman & Hinton 2009).
        weight_init_std: std of the initial weights (0.01, Hinton 2010).
        visible_bias_init: optional (D,) initial visible biases, for example
            ``log(p / (1 - p))`` of the training pixel means (Hinton 2010, section 8).
        hidden_bias_init: initial value of every hidden bias c_j (0, or negative to start
            with sparse hidden activity, Hinton 2010, section 8).
        seed: integer seed for the model's ``SeedGenerator`` and initial weights.
    """

    checkpoint_monitor = "reconstruction_error"  # SafeCheckpoint keeps the lowest

    def __init__(
        self,
        n_visible,
        n_hidden,
        *,
        k=1,
        sampler="cd",
        num_chains=100,
        fast_learning_rate=0.01,
        fast_decay=19 / 20,
        weight_init_std=0.01,
        visible_bias_init=None,
        hidden_bias_init=0.0,
        seed=None,
        **kwargs,
    ):
        super().__init__(**float32_only(kwargs, type(self).__name__))
        self.n_visible = check_positive_int(n_visible, "n_visible")
        self.n_hidden = check_positive_int(n_hidden, "n_hidden")
        self.k = check_positive_int(k, "k")
        self.num_chains = check_positive_int(num_chains, "num_chains")
        if not isinstance(sampler, str) or sampler not in SAMPLERS:
            raise ValueError(f"sampler must be one of {SAMPLERS}; got {describe(sampler)}.")
        self.sampler = sampler
        self.fast_learning_rate = check_finite_float(fast_learning_rate, "fast_learning_rate",
                                                     at_least=0.0)
        self.fast_decay = check_finite_float(fast_decay, "fast_decay", at_least=0.0, below=1.0)
        self.weight_init_std = check_finite_float(weight_init_std, "weight_init_std",
                                                  at_least=0.0)
        self.seed = check_seed(seed, allow_none=True)
        if visible_bias_init is not None:
            visible_bias_init = check_finite_array(visible_bias_init, "visible_bias_init",
                                                   shape=(self.n_visible,))
        self.visible_bias_init = visible_bias_init
        self.hidden_bias_init = check_finite_float(hidden_bias_init, "hidden_bias_init")
        self.seed_generator = sampling.tracked_seed_generator(self, seed)
        self.reconstruction_error_tracker = keras.metrics.Mean(name="reconstruction_error")
        self.free_energy_tracker = keras.metrics.Mean(name="free_energy")
        self.build((None, self.n_visible))

    # ----------------------------------------------------------------- variables
    def build(self, input_shape):
        if self.built:
            return
        init_seed = None if self.seed is None else int(self.seed)
        self.W = self.add_weight(
            shape=(self.n_visible, self.n_hidden), name="W",
            initializer=keras.initializers.RandomNormal(stddev=self.weight_init_std,
                                                        seed=init_seed))
        b_init = ("zeros" if self.visible_bias_init is None
                  else keras.initializers.Constant(self.visible_bias_init))
        self.visible_bias = self.add_weight(shape=(self.n_visible,), name="visible_bias",
                                            initializer=b_init)
        self.hidden_bias = self.add_weight(
            shape=(self.n_hidden,), name="hidden_bias",
            initializer=keras.initializers.Constant(self.hidden_bias_init))
        self._build_extra_variables()
        if self.sampler in ("pcd", "fpcd"):
            self.persistent_chains = self.add_weight(
                shape=(self.num_chains, self.n_visible), name="persistent_chains",
                initializer=self._chain_initializer(init_seed), trainable=False)
        if self.sampler == "fpcd":
            self.fast_W = self.add_weight(shape=(self.n_visible, self.n_hidden),
                                          name="fast_W", initializer="zeros", trainable=False)
            self.fast_visible_bias = self.add_weight(shape=(self.n_visible,),
                                                     name="fast_visible_bias",
                                                     initializer="zeros", trainable=False)
            self.fast_hidden_bias = self.add_weight(shape=(self.n_hidden,),
                                                    name="fast_hidden_bias",
                                                    initializer="zeros", trainable=False)

    def _build_extra_variables(self):
        """Hook for unit-specific parameters (the Gaussian RBM's log sigma)."""

    def _chain_initializer(self, seed):
        raise NotImplementedError

    def parameters(self, fast=False):
        """The tensors (W, b, c), with the fast weights added when ``fast`` is True."""
        W, b, c = self.W, self.visible_bias, self.hidden_bias
        if fast:
            return (W + self.fast_W, b + self.fast_visible_bias, c + self.fast_hidden_bias)
        return (ops.convert_to_tensor(W), ops.convert_to_tensor(b), ops.convert_to_tensor(c))

    # ------------------------------------------------------ conditionals and Gibbs
    def prob_h_given_v(self, v, params=None):
        """Eq. (1.4)/(1.9): p(h_j = 1 | v) for every hidden unit."""
        return ops.sigmoid(self.hidden_preactivation(v, params))

    def sample_h_given_v(self, v, seed=None, params=None):
        """Eq. (1.4): a binary sample of h given v."""
        return sampling.bernoulli(self.prob_h_given_v(v, params), self._seed(seed))

    def sample_v_given_h(self, h, seed=None, params=None):
        """Eq. (1.5)/(1.9): a sample of v given h (binary or Gaussian units)."""
        return self.sample_visible(self.visible_mean(h, params), self._seed(seed))

    def _seed(self, seed):
        return sampling.resolve_seed(seed, self.seed_generator)

    def gibbs_step(self, v, seed=None, params=None):
        """One block Gibbs sweep v -> h -> v'. Returns (v', E[v' | h]).

        ``seed``: None (the model's ``SeedGenerator``), an int, or a stateless seed; the
        h and v draws use independent sub-streams of it.
        """
        seed = self._seed(seed)
        h = self.sample_h_given_v(v, sampling.substream(seed, 1), params)
        mean = self.visible_mean(h, params)
        return self.sample_visible(mean, sampling.substream(seed, 2)), mean

    def gibbs_chain(self, v, num_steps, seed=None, params=None):
        """``num_steps`` Gibbs sweeps from v (a Python-int loop); returns (v, mean).

        ``seed``: None (the model's ``SeedGenerator``, which advances at every draw), a
        ``SeedGenerator``, an int, or a stateless seed; an int or stateless seed is the
        chain's base seed, and sweep t draws with ``sampling.step_seed(base, t)``, so every
        sweep sees fresh noise and the same seed replays the same chain.
        """
        num_steps = check_nonneg_int(num_steps, "num_steps")
        seed = self._seed(seed)
        stateless = not isinstance(seed, keras.random.SeedGenerator)
        mean = v
        for t in range(num_steps):
            v, mean = self.gibbs_step(v, sampling.step_seed(seed, t) if stateless else seed,
                                      params)
        return v, mean

    def call(self, v):
        """Mean-field reconstruction E[v' | E[h | v]]: what the model 'sees' in v."""
        return self.visible_mean(self.prob_h_given_v(v))

    # ---------------------------------------------------------------- training
    def negative_phase(self, v_data, h_data_probs=None):
        """Negative particles for Eq. (1.6): CD starts at the data, PCD/FPCD at the chains
        (under several replicas, this replica's block of them: ``sampling.replica_rows``).

        ``h_data_probs`` (p(h | v_data), if already computed) saves one matrix product.

        Returns:
            (v_model, reconstruction): the negative particles, and p(v | h) for
            h ~ p(h | v_data), the one-step reconstruction of the data (Hinton 2010, sec. 5),
            which for CD is the chain's own first step and costs nothing extra.
        """
        if h_data_probs is None:
            h_data_probs = self.prob_h_given_v(v_data)
        h_first = sampling.bernoulli(h_data_probs, self.seed_generator)
        reconstruction = self.visible_mean(h_first)
        if self.sampler == "cd":  # the chain's first sweep is the reconstruction's
            v_first = self.sample_visible(reconstruction, self.seed_generator)
            v_model, _ = self.gibbs_chain(v_first, self.k - 1)
            return v_model, reconstruction
        params = self.parameters(fast=self.sampler == "fpcd")
        # Under several replicas each advances its own block of the chains (one device: all).
        chains = sampling.replica_rows(ops.convert_to_tensor(self.persistent_chains))
        v_model, _ = self.gibbs_chain(chains, self.k, params=params)
        self.persistent_chains.assign(sampling.gather_replica_rows(v_model))
        return v_model, reconstruction

    def contrastive_divergence_loss(self, v_data, v_model, h_data_preactivation=None):
        """Eq. (1.6): mean F(v_data) - mean F(v_model); its gradient is the CD update.

        Returns:
            (loss, mean F(v_data)); the second is logged as the ``free_energy`` metric.
        """
        free_energy_data = ops.mean(self.free_energy(v_data, h_data_preactivation))
        return free_energy_data - ops.mean(self.free_energy(ops.stop_gradient(v_model))), \
            free_energy_data

    def update_fast_weights(self, grads):
        """FPCD: W_f <- decay * W_f - eta_f * dLoss/dW (likewise for both biases)."""
        by_name = dict(zip([v.name for v in self.trainable_variables], grads, strict=True))
        for fast, name in ((self.fast_W, "W"), (self.fast_visible_bias, "visible_bias"),
                           (self.fast_hidden_bias, "hidden_bias")):
            fast.assign(self.fast_decay * fast - self.fast_learning_rate * by_name[name])

    def train_step(self, data):
        v_data, _ = unpack_batch(data, type(self).__name__)
        with tf.GradientTape() as tape:
            pre_data = self.hidden_preactivation(v_data)  # shared by both phases
            v_model, reconstruction = self.negative_phase(
                v_data, ops.stop_gradient(ops.sigmoid(pre_data)))
            loss, free_energy_data = self.contrastive_divergence_loss(v_data, v_model, pre_data)
            scaled = scaled_loss(self.optimizer, loss)   # replicas summed; loss scale
        grads = tape.gradient(scaled, self.trainable_variables)
        if self.sampler == "fpcd":   # read before apply changes the scale; all replicas' sum
            fast_grads = sum_over_replicas(unscale_gradients(self.optimizer, grads))
        self.optimizer.apply(grads, self.trainable_variables)
        if self.sampler == "fpcd":
            self.update_fast_weights(fast_grads)
        self.reconstruction_error_tracker.update_state(
            ops.mean(ops.sum(ops.square(v_data - reconstruction), axis=-1)))
        self.free_energy_tracker.update_state(free_energy_data)
        return {m.name: m.result() for m in self.metrics}

    def test_step(self, data):
        v_data, _ = unpack_batch(data, type(self).__name__)
        self.reconstruction_error_tracker.update_state(self.reconstruction_error(v_data))
        self.free_energy_tracker.update_state(ops.mean(self.free_energy(v_data)))
        return {m.name: m.result() for m in self.metrics}

    @property
    def metrics(self):
        return [self.reconstruction_error_tracker, self.free_energy_tracker]

    # ------------------------------------------------- named methods for evaluation
    def enumerated_free_energy(self):
        """For exact log Z, Eq. (1.12): (number of binary units to enumerate, their free
        energy with the other layer summed out). The hidden layer, F_h of Eq. (1.7)/(1.11)."""
        return self.n_hidden, self.hidden_free_energy

    def unnormalized_log_prob(self, v):
        """log p*(v) = -F(v), Eq. (1.3)/(1.10), so that log p(v) = log p*(v) - log Z."""
        return -self.free_energy(v)

    def reconstruction_error(self, v):
        """Squared error per image between v and p(v | h), h ~ p(h | v) (Hinton 2010, sec. 5).

        Concrete data (arrays, eager tensors) are validated by :meth:`check_visible`;
        symbolic tensors (inside ``test_step``) pass as they are."""
        if is_concrete(v):
            v = ops.convert_to_tensor(self.check_visible(v))
        _, reconstruction = self.gibbs_step(v)
        return ops.mean(ops.sum(ops.square(v - reconstruction), axis=-1))

    def check_visible(self, v, name="v"):
        """Validates a batch of visible vectors: shape (n, D), finite, unit-type range."""
        v = check_images(v, expected_dim=self.n_visible, name=name)
        self._check_visible_range(v, name)
        return v

    def _check_visible_range(self, v, name):
        """Hook: unit-specific value checks."""

    def initialize_chains(self, v):
        """Sets the persistent chains to given visible states (e.g. training images)."""
        if self.sampler == "cd":
            raise ValueError("initialize_chains needs sampler='pcd' or 'fpcd'; this model "
                             "uses sampler='cd', whose chains start at the data.")
        v = self.check_visible(v)
        if v.shape[0] != self.num_chains:
            raise ValueError(f"expected {self.num_chains} chain states; got {v.shape[0]}.")
        self.persistent_chains.assign(v)

    def sample(self, num_samples, num_steps, *, seed, init=None, every=None, verbose="auto",
               jit_compile="auto"):
        """Runs ``num_samples`` Gibbs chains for ``num_steps`` sweeps (stateless seeds).

        Args:
            num_samples: number of chains (ignored when ``init`` is given).
            num_steps: Gibbs sweeps.
            seed: Python int; the same seed gives the same samples (with the same
                ``jit_compile``: XLA draws other numbers from a seed).
            init: optional (n, D) start states; default: random binary / standard normal.
            every: if given, also return the mean-field states every ``every`` sweeps.
            verbose: the progress bar over the sweeps, as in ``keras.Model.fit``: "auto"
                (shown once the run has lasted ``sampling.AUTO_PROGRESS_DELAY`` seconds),
                0 / False, 1 / True or 2.
            jit_compile: "auto" (XLA when TensorFlow sees a GPU, as ``compile()`` does), True
                or False.

        Returns:
            (final visible means, stacked snapshots or None).
        """
        num_steps = check_nonneg_int(num_steps, "num_steps")
        verbose = sampling.check_verbose(verbose)
        jit_compile = sampling.resolve_jit_compile(jit_compile)
        if every is not None:
            every = check_positive_int(every, "every")
        base = sampling.as_stateless_seed(seed)
        if init is None:
            num_samples = check_positive_int(num_samples, "num_samples")
            init = self.random_visible(num_samples, sampling.step_seed(base, -1))
        v = ops.convert_to_tensor(self.check_visible(init, "init"))
        return sampling.run_chain(lambda v, s: self.gibbs_step(v, s), v, num_steps, base, every,
                                  verbose=verbose, jit_compile=jit_compile)

    # ----------------------------------------------------------- serialization
    def get_config(self):
        config = super().get_config()
        config.update(
            n_visible=self.n_visible, n_hidden=self.n_hidden, k=self.k, sampler=self.sampler,
            num_chains=self.num_chains, fast_learning_rate=self.fast_learning_rate,
            fast_decay=self.fast_decay, weight_init_std=self.weight_init_std,
            visible_bias_init=(None if self.visible_bias_init is None
                               else self.visible_bias_init.tolist()),
            hidden_bias_init=self.hidden_bias_init, seed=self.seed)
        return config


@keras.saving.register_keras_serializable(package="course_lib")
class BernoulliRBM(RBM):
    """Binary visible and hidden units, Eqs. (1.1)-(1.7).

    Example:
        >>> rbm = BernoulliRBM(784, 500, k=1, sampler="pcd", seed=0)
        >>> rbm.compile(optimizer=keras.optimizers.SGD(0.05, momentum=0.5))
        >>> rbm.fit(x_train, batch_size=100, epochs=10)
    """

    def _chain_initializer(self, seed):
        def init(shape, dtype=None):
            rng = np.random.default_rng(seed)
            return ops.convert_to_tensor((rng.random(shape) < 0.5).astype("float32"))
        return init

    def _check_visible_range(self, v, name):
        if v.size and (v.min() < 0.0 or v.max() > 1.0):
            raise ValueError(f"{name} must hold binary values (or probabilities) in [0, 1] "
                             f"for a BernoulliRBM; got values in [{v.min():g}, {v.max():g}].")

    def random_visible(self, n, seed):
        return sampling.bernoulli(ops.full((n, self.n_visible), 0.5), seed)

    def hidden_preactivation(self, v, params=None):
        W, _, c = params or self.parameters()
        return ops.matmul(v, W) + c

    def enumerated_free_energy(self):
        """As for :class:`RBM`, but over the smaller layer: with fewer visible than hidden
        units, the visible states with F(v) of Eq. (1.3) (the same Z, fewer states)."""
        if self.n_visible < self.n_hidden:
            return self.n_visible, self.free_energy
        return super().enumerated_free_energy()

    def annealing_path(self, base_visible_bias):
        """The AIS path of Eq. (1.13) from the base-rate model to this RBM."""
        return RBMAnnealingPath(self, base_visible_bias)

    def visible_mean(self, h, params=None):
        """Eq. (1.5): p(v_i = 1 | h)."""
        W, b, _ = params or self.parameters()
        return ops.sigmoid(ops.matmul(h, ops.transpose(W)) + b)

    def sample_visible(self, mean, seed):
        """Binary visible units with probabilities ``mean``."""
        return sampling.bernoulli(mean, seed)

    def energy(self, v, h):
        """Eq. (1.1): E(v, h) = -b.v - c.h - v.W.h, one value per row."""
        W, b, c = self.parameters()
        return -ops.sum(v * b, -1) - ops.sum(h * c, -1) - ops.sum(ops.matmul(v, W) * h, -1)

    def free_energy(self, v, hidden_preactivation=None):
        """Eq. (1.3): F(v) = -b.v - sum_j softplus(c_j + (v W)_j).

        ``hidden_preactivation`` (c + v W, if already computed) saves a matrix product.
        """
        pre = self.hidden_preactivation(v) if hidden_preactivation is None else \
            hidden_preactivation
        return -ops.sum(v * self.visible_bias, -1) - ops.sum(ops.softplus(pre), -1)

    def hidden_free_energy(self, h):
        """Eq. (1.7): F_h(h) = -c.h - sum_i softplus(b_i + (W h)_i)."""
        W, b, c = self.parameters()
        return -ops.sum(h * c, -1) - ops.sum(ops.softplus(ops.matmul(h, ops.transpose(W)) + b),
                                            -1)


@keras.saving.register_keras_serializable(package="course_lib")
class GaussianBernoulliRBM(RBM):
    """Real-valued Gaussian visible units with std sigma, binary hidden units, Eqs. (1.8)-(1.11).

    Args:
        learn_sigma: if False (default) sigma stays at ``sigma_init`` (1 for standardized
            data, the usual choice); if True, log sigma is learned with the other weights.
            Learned variances are the classic cause of divergence: keep the learning rate
            small and watch the weight norm (``DivergenceGuard`` does).
        sigma_init: initial (or fixed) standard deviation of every visible unit.
        **kwargs: as for :class:`RBM`.
    """

    def __init__(self, n_visible, n_hidden, *, learn_sigma=False, sigma_init=1.0, **kwargs):
        self.learn_sigma = check_bool(learn_sigma, "learn_sigma")
        self.sigma_init = check_finite_float(sigma_init, "sigma_init", above=0.0)
        super().__init__(n_visible, n_hidden, **kwargs)

    def _build_extra_variables(self):
        self.log_sigma = self.add_weight(
            shape=(self.n_visible,), name="log_sigma", trainable=self.learn_sigma,
            initializer=keras.initializers.Constant(math.log(self.sigma_init)))

    def _chain_initializer(self, seed):
        def init(shape, dtype=None):
            rng = np.random.default_rng(seed)
            return ops.convert_to_tensor(rng.standard_normal(shape).astype("float32"))
        return init

    @property
    def sigma(self):
        return ops.exp(self.log_sigma)

    def random_visible(self, n, seed):
        return sampling.normal((n, self.n_visible), seed)

    def hidden_preactivation(self, v, params=None):
        W, _, c = params or self.parameters()
        return ops.matmul(v / self.sigma, W) + c

    def visible_mean(self, h, params=None):
        """Eq. (1.9): E[v | h] = b + sigma * (W h)."""
        W, b, _ = params or self.parameters()
        return b + self.sigma * ops.matmul(h, ops.transpose(W))

    def sample_visible(self, mean, seed):
        """Gaussian visible units N(mean, sigma^2)."""
        return sampling.gaussian(mean, self.sigma, seed)

    def energy(self, v, h):
        """Eq. (1.8)."""
        W, b, c = self.parameters()
        quadratic = ops.sum(ops.square(v - b) / (2.0 * ops.square(self.sigma)), -1)
        return quadratic - ops.sum(h * c, -1) - ops.sum(ops.matmul(v / self.sigma, W) * h, -1)

    def free_energy(self, v, hidden_preactivation=None):
        """Eq. (1.10); ``hidden_preactivation`` as for the Bernoulli RBM."""
        pre = self.hidden_preactivation(v) if hidden_preactivation is None else \
            hidden_preactivation
        quadratic = ops.sum(ops.square(v - self.visible_bias) / (2.0 * ops.square(self.sigma)),
                            -1)
        return quadratic - ops.sum(ops.softplus(pre), -1)

    def hidden_free_energy(self, h):
        """Eq. (1.11): -log of the Gaussian integral of exp(-E(v, h)) over v."""
        W, b, c = self.parameters()
        a = ops.matmul(h, ops.transpose(W))
        per_unit = b * a / self.sigma + 0.5 * ops.square(a)
        log_norm = ops.sum(ops.log(math.sqrt(2.0 * math.pi) * self.sigma))
        return -ops.sum(h * c, -1) - ops.sum(per_unit, -1) - log_norm

    def get_config(self):
        config = super().get_config()
        config.update(learn_sigma=self.learn_sigma, sigma_init=self.sigma_init)
        return config
