"""The fully connected Boltzmann machine, exact by enumeration (tiny models only).

Paper card
----------
Ackley, Hinton & Sejnowski 1985, "A learning algorithm for Boltzmann machines".
Used by ``notebooks/01_rbm.ipynb`` to show, on a problem small enough to enumerate, what
the *restriction* of a restricted Boltzmann machine buys.

Every pair of units is connected: visible-visible, visible-hidden and hidden-hidden. The
units s = (v, h) are binary, visible units first, N = D + H::

    (1.19) E(s) = -1/2 s^T L s - a.s,   L = L^T, diag(L) = 0;   p(s) = exp(-E(s)) / Z
    (1.20) p(s_i = 1 | s_-i) = sigmoid(a_i + sum_j L_ij s_j)
    (1.21) log Z = log sum_{s in {0,1}^N} exp(-E(s)),
           log p(v) = log sum_{h in {0,1}^H} exp(-E(v, h)) - log Z
    (1.22) d mean log p(v) / d L_ij = <s_i s_j>_data - <s_i s_j>_model   (i != j, one
           parameter per pair),   d mean log p(v) / d a_i = <s_i>_data - <s_i>_model

<.>_data clamps v to each training vector and averages h over the exact posterior
p(h | v); <.>_model averages over p(s). (1.22) is the Boltzmann learning rule.

What the restriction buys: with L_vv and L_hh non-zero, p(h | v) does not factorize over
the hidden units, and Gibbs sampling must update one unit at a time with (1.20)
(single-site sweeps). Updating all units at once with (1.20) does *not* leave p(s)
invariant. In an RBM (L_vv = L_hh = 0) the units of a layer are conditionally
independent, so a whole layer is drawn in one block step (Eqs. 1.4-1.5).

Symbol -> attribute: ``L -> self.L`` (= ``self.coupling_matrix()``, (N, N)), built from the
unconstrained (N, N) weight ``U -> self.couplings`` as L = (U + U^T) / 2 with the diagonal
zeroed, so L is symmetric with a zero diagonal by construction; ``a -> self.bias`` (N,);
``D, H, N -> self.n_visible, self.n_hidden, self.n_units``.

Learning: ``train_step`` minimizes the exact negative log-likelihood -mean log p(v) of
(1.21) by automatic differentiation, with log Z and the sums over h computed by
enumerating all 2^D x 2^H states. The gradient of that loss is exactly (1.22), so no
sampling enters learning (the 1985 paper estimated both expectations by simulated
annealing; a tiny N makes them exact). Through the parametrization each U_ij (i != j)
receives half of its pair's (1.22) gradient. Enumeration limits N to ``MAX_UNITS`` = 20
(memory of about 2^N floats).
"""

from __future__ import annotations

import keras
import tensorflow as tf
from keras import ops

from course_lib import sampling
from course_lib.checks import (
    check_bool,
    check_finite_float,
    check_images,
    check_nonneg_int,
    check_positive_int,
    check_seed,
    describe,
    float32_only,
    is_int,
)
from course_lib.sampling import all_binary_states
from course_lib.training import GuardedFitMixin, scaled_loss, unpack_batch

MAX_UNITS = 20


@keras.saving.register_keras_serializable(package="course_lib")
class BoltzmannMachine(GuardedFitMixin, keras.Model):
    """A Boltzmann machine with all-to-all symmetric couplings, Eqs. (1.19)-(1.22).

    Args:
        n_visible: number of visible units D (at least 1).
        n_hidden: number of hidden units H (0 gives a fully visible Boltzmann machine).
        weight_init_std: std of the initial entries of U; off-diagonal entries of
            L = (U + U^T) / 2 then have std ``weight_init_std / sqrt(2)``.
        seed: integer seed for the initial weights and the model's ``SeedGenerator``.

    Raises:
        ValueError: if D + H exceeds ``MAX_UNITS`` (exact enumeration of 2^N states).

    ``fit`` is the course's shared one (:class:`course_lib.training.GuardedFitMixin`): array
    data are validated by :meth:`check_visible` (shape (n, D), binary) and shuffled with
    ``seed``, and training that produces NaN/inf stops with ``TrainingDivergedError``.

    Example:
        >>> bm = BoltzmannMachine(4, 2, seed=0)
        >>> bm.compile(optimizer=keras.optimizers.Adam(0.05))
        >>> bm.fit(x_train, batch_size=len(x_train), epochs=300, verbose=0)
        >>> v = bm.sample(1000, num_sweeps=50, seed=1)
    """

    divergence_advice = ("lower the learning rate (try 10x smaller); start from smaller "
                         "weights (weight_init_std); resume from the last good checkpoint")

    checkpoint_monitor = "negative_log_likelihood"  # SafeCheckpoint keeps the lowest

    def __init__(self, n_visible, n_hidden, *, weight_init_std=0.1, seed=None, **kwargs):
        super().__init__(**float32_only(kwargs, type(self).__name__))
        check_positive_int(n_visible, "n_visible")
        check_nonneg_int(n_hidden, "n_hidden")
        if int(n_visible) + int(n_hidden) > MAX_UNITS:
            raise ValueError(
                f"a BoltzmannMachine enumerates all 2^N states, so N = n_visible + n_hidden "
                f"must be at most {MAX_UNITS}; got {n_visible} + {n_hidden} = "
                f"{int(n_visible) + int(n_hidden)}. Use an RBM (course_lib.boltzmann) for "
                "larger models.")
        self.n_visible, self.n_hidden = int(n_visible), int(n_hidden)
        self.n_units = self.n_visible + self.n_hidden
        self.weight_init_std = check_finite_float(weight_init_std, "weight_init_std",
                                                  at_least=0.0)
        self.seed = check_seed(seed, allow_none=True)
        self.seed_generator = sampling.tracked_seed_generator(self, seed)
        self.nll_tracker = keras.metrics.Mean(name="negative_log_likelihood")
        self.build((None, self.n_visible))

    # ----------------------------------------------------------------- variables
    def build(self, input_shape):
        if self.built:
            return
        self.couplings = self.add_weight(
            shape=(self.n_units, self.n_units), name="couplings",
            initializer=keras.initializers.RandomNormal(stddev=self.weight_init_std,
                                                        seed=self.seed))
        self.bias = self.add_weight(shape=(self.n_units,), name="bias", initializer="zeros")

    def coupling_matrix(self):
        """Eq. (1.19): L = (U + U^T) / 2 with a zero diagonal, an (N, N) tensor."""
        U = ops.convert_to_tensor(self.couplings)
        return 0.5 * (U + ops.transpose(U)) * (1.0 - ops.eye(self.n_units))

    @property
    def L(self):
        """Eq. (1.19): the symmetric, zero-diagonal coupling matrix (see ``coupling_matrix``)."""
        return self.coupling_matrix()

    # ---------------------------------------------------------------- validation
    def check_states(self, x, width, name="s"):
        """Validates binary rows of length ``width``: shape (n, width), values in {0, 1}.

        Symbolic tensors (inside ``tf.function``) are checked for shape only.

        Returns:
            float32 array (or the symbolic tensor cast to float32).
        """
        if tf.is_tensor(x) and not tf.executing_eagerly():
            if x.shape.rank != 2 or x.shape[-1] not in (None, width):
                raise ValueError(f"{name} must have shape (n, {width}); got {x.shape}.")
            return tf.cast(x, "float32")
        return check_images(x, expected_dim=width, binary=True, name=name)

    def check_visible(self, v, name="v"):
        """Validates a batch of visible vectors, shape (n, D), values in {0, 1}."""
        return self.check_states(v, self.n_visible, name)

    # ------------------------------------------------------ energy, conditionals
    def energy(self, s):
        """Eq. (1.19): E(s) = -1/2 s^T L s - a.s for each row s = (v, h) of shape (n, N)."""
        s = ops.convert_to_tensor(self.check_states(s, self.n_units, "s"))
        return (-0.5 * ops.sum(ops.matmul(s, self.coupling_matrix()) * s, -1)
                - ops.sum(s * self.bias, -1))

    def conditional_prob(self, s, i):
        """Eq. (1.20): p(s_i = 1 | s_-i) for each row of s (the value of s_i is ignored).

        Args:
            s: (n, N) binary states.
            i: unit index in [0, N); visible units come first.

        Returns:
            (n,) tensor of probabilities.
        """
        if not is_int(i) or not 0 <= i < self.n_units:
            raise ValueError(f"unit index i must be an integer in [0, {self.n_units}); "
                             f"got {describe(i)}.")
        s = ops.convert_to_tensor(self.check_states(s, self.n_units, "s"))
        return self._conditional(s, int(i), self.coupling_matrix(),
                                 ops.convert_to_tensor(self.bias))

    @staticmethod
    def _conditional(s, i, L, a):
        return ops.sigmoid(a[i] + ops.matmul(s, L[:, i]))

    # ----------------------------------------------------------- Gibbs sampling
    def _seed(self, seed):
        return sampling.resolve_seed(seed, self.seed_generator)

    def _sweep(self, s, units, seed):
        """Updates ``units`` of s one at a time, in order, each from Eq. (1.20)."""
        seed = self._seed(seed)
        L, a = self.coupling_matrix(), ops.convert_to_tensor(self.bias)
        eye = ops.eye(self.n_units)
        for i in units:
            unit_seed = sampling.substream(seed, i)
            new = sampling.bernoulli(self._conditional(s, i, L, a), unit_seed)
            s = s + (new - s[:, i])[:, None] * eye[i]
        return s

    def gibbs_sweep(self, s, seed=None):
        """Eq. (1.20), single-site: one sweep updating units 0, 1, ..., N-1 in turn.

        Each unit is drawn given the *current* values of all others, so the sweep leaves
        p(s) invariant; a simultaneous update of all units would not.

        Args:
            s: (n, N) binary states, one chain per row.
            seed: None (the model's ``SeedGenerator``), an int, a ``SeedGenerator`` or a
                (2,) stateless seed tensor.

        Returns:
            (n, N) tensor, the states after the sweep.
        """
        s = ops.convert_to_tensor(self.check_states(s, self.n_units, "s"))
        return self._sweep(s, range(self.n_units), seed)

    def gibbs_sweep_visible_clamped(self, s, seed=None):
        """Eq. (1.20) for the hidden units only: a sweep that samples p(h | v) with v fixed.

        This is the clamped ("positive") phase of the 1985 algorithm. p(h | v) does not
        factorize, so the hidden units are updated one at a time as well.

        Args:
            s: (n, N) binary states (v, h); the first D columns are kept.
            seed: as for :meth:`gibbs_sweep`.

        Returns:
            (n, N) tensor with the same v and new h.
        """
        s = ops.convert_to_tensor(self.check_states(s, self.n_units, "s"))
        return self._sweep(s, range(self.n_visible, self.n_units), seed)

    def sample(self, num_samples, num_sweeps, *, seed, init=None, full_state=False,
               verbose="auto", jit_compile="auto"):
        """Runs independent single-site Gibbs chains (Eq. 1.20) with stateless seeds.

        Args:
            num_samples: number of chains (ignored when ``init`` is given).
            num_sweeps: Gibbs sweeps per chain (each sweep updates all N units once).
            seed: Python int; the same seed gives the same samples (with the same
                ``jit_compile``: XLA draws other numbers from a seed).
            init: optional (n, N) binary start states; default: uniform random bits.
            full_state: return the full states (v, h) instead of v only.
            verbose: the progress bar over the sweeps, as in ``keras.Model.fit``: "auto"
                (shown once the run has lasted ``sampling.AUTO_PROGRESS_DELAY`` seconds),
                0 / False, 1 / True or 2.
            jit_compile: "auto" (XLA when TensorFlow sees a GPU, as ``compile()`` does), True
                or False.

        Returns:
            numpy array (n, D) of visible samples, or (n, N) if ``full_state``.
        """
        num_sweeps = check_nonneg_int(num_sweeps, "num_sweeps")
        full_state = check_bool(full_state, "full_state")
        verbose = sampling.check_verbose(verbose)
        jit_compile = sampling.resolve_jit_compile(jit_compile)
        base = sampling.as_stateless_seed(seed)
        if init is None:
            num_samples = check_positive_int(num_samples, "num_samples")
            s = sampling.bernoulli(ops.full((int(num_samples), self.n_units), 0.5),
                                   sampling.step_seed(base, -1))
        else:
            s = ops.convert_to_tensor(self.check_states(init, self.n_units, "init"))
        def sweep(step, s):  # sweep t draws with step_seed(base, t), however it is chunked
            return self._sweep(s, range(self.n_units), sampling.step_seed(base, step))

        s = ops.convert_to_numpy(sampling.run_in_chunks(
            sweep, s, 0, num_sweeps, verbose=verbose, unit_name="sweep", jit_compile=jit_compile))
        return s if full_state else s[:, :self.n_visible]

    # ------------------------------------------------------ exact probabilities
    def _log_unnormalized_marginal(self, v):
        """log sum_h exp(-E(v, h)) for each row v, Eq. (1.21), by enumerating h."""
        D = self.n_visible
        L, a = self.coupling_matrix(), ops.convert_to_tensor(self.bias)
        h = ops.convert_to_tensor(all_binary_states(self.n_hidden))  # (2^H, H)
        h_term = (0.5 * ops.sum(ops.matmul(h, L[D:, D:]) * h, -1)
                  + ops.sum(h * a[D:], -1))  # (2^H,)
        v_term = 0.5 * ops.sum(ops.matmul(v, L[:D, :D]) * v, -1) + ops.sum(v * a[:D], -1)
        cross = ops.matmul(ops.matmul(v, L[:D, D:]), ops.transpose(h))  # (n, 2^H)
        return v_term + ops.logsumexp(cross + h_term, axis=-1)

    def log_partition(self):
        """Eq. (1.21): exact log Z, summing exp(-E) over all 2^D x 2^H states (scalar)."""
        v_all = ops.convert_to_tensor(all_binary_states(self.n_visible))
        return ops.logsumexp(self._log_unnormalized_marginal(v_all))

    def log_prob(self, v):
        """Eq. (1.21): exact log p(v) = log sum_h exp(-E(v, h)) - log Z, one value per row.

        Args:
            v: (n, D) binary visible vectors.

        Returns:
            (n,) tensor of log-probabilities in nats (differentiable in the weights).
        """
        v = ops.convert_to_tensor(self.check_visible(v))
        return self._log_unnormalized_marginal(v) - self.log_partition()

    def negative_log_likelihood(self, v):
        """Eq. (1.21)-(1.22): -mean log p(v); its gradient is the Boltzmann learning rule."""
        return -ops.mean(self.log_prob(v))

    def call(self, v):
        """Exact log p(v) for each row (Eq. 1.21), without input validation."""
        return self._log_unnormalized_marginal(ops.cast(v, "float32")) - self.log_partition()

    # ---------------------------------------------------------------- training
    def train_step(self, data):
        v, _ = unpack_batch(data, type(self).__name__)
        with tf.GradientTape() as tape:
            loss = self.negative_log_likelihood(v)
            scaled = scaled_loss(self.optimizer, loss)   # replicas summed; loss scale
        grads = tape.gradient(scaled, self.trainable_variables)
        self.optimizer.apply(grads, self.trainable_variables)
        self.nll_tracker.update_state(loss)
        return {m.name: m.result() for m in self.metrics}

    def test_step(self, data):
        v, _ = unpack_batch(data, type(self).__name__)
        self.nll_tracker.update_state(self.negative_log_likelihood(v))
        return {m.name: m.result() for m in self.metrics}

    @property
    def metrics(self):
        return [self.nll_tracker]

    # ----------------------------------------------------------- serialization
    def get_config(self):
        config = super().get_config()
        config.update(n_visible=self.n_visible, n_hidden=self.n_hidden,
                      weight_init_std=self.weight_init_std, seed=self.seed)
        return config
