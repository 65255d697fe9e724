"""Deep Boltzmann machines: block Gibbs sampling, mean-field inference, PCD training.

Paper card
----------
Salakhutdinov & Hinton 2009, "Deep Boltzmann machines" (AISTATS); Salakhutdinov & Hinton
2012, "An efficient learning procedure for deep Boltzmann machines" (Neural Computation).
Used by ``notebooks/03_dbm.ipynb``; pre-training lives in
:mod:`course_lib.boltzmann.stacking`, the AIS path in :mod:`course_lib.boltzmann.annealing`.

Layers h_0 = v, h_1, ..., h_L, all binary, undirected connections between neighbours only.
Equations, numbered as in the chapter notebook::

    (3.1) E(h_0..h_L) = -sum_{l=0}^{L} b_l.h_l - sum_{l=1}^{L} h_{l-1} W_l h_l
    (3.2) p(h_l,j = 1 | rest) = sigmoid(b_l,j + (h_{l-1} W_l)_j + (h_{l+1} W_{l+1}^T)_j)
          depends on the neighbouring layers only: odd layers are independent given the
          even ones and vice versa, so block Gibbs alternates odd and even layers.
    (3.3) mean field: mu_l = sigmoid(b_l + mu_{l-1} W_l + mu_{l+1} W_{l+1}^T), mu_0 = v,
          odd layers then even layers until the fixed point (coordinate ascent of 3.4)
    (3.4) log p(v) >= -E(v, mu) + sum_{l>=1} H(mu_l) - log Z
    (3.5) learning: dW_l = <h_{l-1} h_l^T>_{data, mean field} - <h_{l-1} h_l^T>_{chains}
          written as the loss  mean E(v, mu) - mean E(chains), whose gradient it is
    (3.8) odd-layer free energy (even layers summed out analytically, for AIS/enumeration):
          F(h_odd) = -sum_{l odd} b_l.h_l - sum_{l even} sum_j softplus(b_l,j + in_l,j)
          with in_l = h_{l-1} W_l + h_{l+1} W_{l+1}^T

Symbol -> attribute: ``W_l -> self.W[l - 1]`` (n_{l-1} x n_l), ``b_l ->
self.biases[l]``, persistent chains (one tensor per layer) -> ``self.chains[l]``, number of
Gibbs sweeps per update -> ``self.gibbs_steps``, mean-field iterations ->
``self.mean_field_steps``.

Deviations: the mean field starts from a bottom-up pass with doubled weights below the top
layer (as in the authors' code) and runs a fixed number of sweeps rather than to a
tolerance; weight decay, when wanted, is the optimizer's decoupled weight decay.
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf
from keras import ops

from course_lib import sampling
from course_lib.boltzmann.annealing import DBMAnnealingPath, DBMInterpolationPath
from course_lib.boltzmann.stacking import DoublingRBM, stack_sizes
from course_lib.checks import (
    check_finite_array,
    check_finite_float,
    check_int_sequence,
    check_nonneg_int,
    check_positive_int,
    check_probabilities,
    check_seed,
    float32_only,
    is_concrete,
)
from course_lib.training import GuardedFitMixin, scaled_loss, unpack_batch

MAX_EXACT_ODD_UNITS = 20


def binary_entropy(p, eps=1e-7):
    """sum_j H(p_j) in nats, one value per row."""
    p = ops.clip(p, eps, 1.0 - eps)
    return -ops.sum(p * ops.log(p) + (1.0 - p) * ops.log(1.0 - p), axis=-1)


@keras.saving.register_keras_serializable(package="course_lib")
class DBM(GuardedFitMixin, keras.Model):
    """A deep Boltzmann machine, Eqs. (3.1)-(3.5), trained with mean field and PCD.

    Args:
        layer_sizes: ``[D, n_1, ..., n_L]`` with L >= 1 (L = 1 is an RBM).
        num_chains: M, persistent Gibbs chains (100 in the paper), saved with the model.
        gibbs_steps: block Gibbs sweeps of the chains per update (5 in the paper).
        mean_field_steps: mean-field sweeps for the data-dependent statistics (10 here; the
            paper iterates to convergence, "typically 10 to 30" sweeps, 2012 section 3).
        weight_init_std: std of the initial weights.
        visible_bias_init: optional (D,) initial b_0.
        seed: integer seed for the weights, the chains and the ``SeedGenerator``.

    Example:
        >>> dbm = DBM([784, 500, 1000], num_chains=100, gibbs_steps=5, seed=0)
        >>> dbm.compile(optimizer=keras.optimizers.SGD(0.005))
        >>> dbm.fit(x_train, batch_size=100, epochs=10)
    """

    divergence_advice = ("lower the learning rate; pre-train with dbm_pretraining_rbms; use "
                         "more persistent chains or Gibbs steps; resume from the last good "
                         "checkpoint")

    checkpoint_monitor = "reconstruction_error"  # SafeCheckpoint keeps the lowest

    def __init__(self, layer_sizes, *, num_chains=100, gibbs_steps=5, mean_field_steps=10,
                 weight_init_std=0.01, visible_bias_init=None, seed=None, **kwargs):
        super().__init__(**float32_only(kwargs, type(self).__name__))
        self.layer_sizes = check_int_sequence(layer_sizes, "layer_sizes", item="layer size")
        if len(self.layer_sizes) < 2:
            raise ValueError(f"layer_sizes must be [D, n_1, ...]; got {layer_sizes}.")
        self.num_chains = check_positive_int(num_chains, "num_chains")
        self.gibbs_steps = check_positive_int(gibbs_steps, "gibbs_steps")
        self.mean_field_steps = check_positive_int(mean_field_steps, "mean_field_steps")
        self.weight_init_std = check_finite_float(weight_init_std, "weight_init_std",
                                                  at_least=0.0)
        self.seed = check_seed(seed, allow_none=True)
        if visible_bias_init is not None:
            visible_bias_init = check_finite_array(visible_bias_init, "visible_bias_init",
                                                   shape=(self.layer_sizes[0],))
        self.visible_bias_init = visible_bias_init
        self.seed_generator = sampling.tracked_seed_generator(self, seed)
        self.reconstruction_error_tracker = keras.metrics.Mean(name="reconstruction_error")
        self.bound_tracker = keras.metrics.Mean(name="unnormalized_bound")
        self.build((None, self.layer_sizes[0]))

    @property
    def num_layers(self):
        """L, the number of hidden layers."""
        return len(self.layer_sizes) - 1

    def build(self, input_shape):
        if self.built:
            return
        seed = None if self.seed is None else int(self.seed)
        self.W, self.biases, self.chains = [], [], []
        for l in range(1, self.num_layers + 1):
            init = keras.initializers.RandomNormal(stddev=self.weight_init_std,
                                                   seed=None if seed is None else seed + l)
            self.W.append(self.add_weight(
                shape=(self.layer_sizes[l - 1], self.layer_sizes[l]), initializer=init,
                name=f"W{l}"))
        for l, n in enumerate(self.layer_sizes):
            init = ("zeros" if l or self.visible_bias_init is None
                    else keras.initializers.Constant(self.visible_bias_init))
            self.biases.append(self.add_weight(shape=(n,), initializer=init, name=f"b{l}"))
        rng = np.random.default_rng(seed)
        for l, n in enumerate(self.layer_sizes):
            start = (rng.random((self.num_chains, n)) < 0.5).astype("float32")
            self.chains.append(self.add_weight(
                shape=(self.num_chains, n), name=f"chains{l}", trainable=False,
                initializer=keras.initializers.Constant(start)))

    @classmethod
    def from_rbms(cls, rbms, **kwargs):
        """Composes pre-trained RBMs into a DBM (Salakhutdinov & Hinton 2009, section 3.1).

        ``rbms`` should come from :func:`dbm_pretraining_rbms` (doubled first and last RBM).
        Middle RBMs of a stack of three or more had their weights used once per direction in
        training and are used from both sides in the DBM, so their weights are halved. A
        layer shared by two RBMs takes the mean of the lower RBM's hidden bias and the upper
        RBM's visible bias: each RBM supplies half of the layer's input (the authors' code
        keeps the lower RBM's bias).
        """
        sizes = stack_sizes(rbms)
        dbm = cls(sizes, **kwargs)
        for l, rbm in enumerate(rbms):
            middle = 0 < l < len(rbms) - 1
            dbm.W[l].assign(rbm.W * (0.5 if middle else 1.0))
        dbm.biases[0].assign(rbms[0].visible_bias)
        dbm.biases[-1].assign(rbms[-1].hidden_bias)
        for l in range(1, len(rbms)):
            dbm.biases[l].assign(0.5 * (rbms[l - 1].hidden_bias + rbms[l].visible_bias))
        return dbm

    # ------------------------------------------------------------ energy, conditionals
    def energy(self, states):
        """Eq. (3.1): E(h_0, ..., h_L), one value per row; ``states`` = [v, h_1, ..., h_L]."""
        e = -sum(ops.sum(h * b, -1) for h, b in zip(states, self.biases, strict=True))
        for l, W in enumerate(self.W, start=1):
            e -= ops.sum(ops.matmul(states[l - 1], W) * states[l], -1)
        return e

    def layer_input(self, states, l, from_below=None, transposed=None):
        """b_l + h_{l-1} W_l + h_{l+1} W_{l+1}^T: the total input to layer l, Eq. (3.2).

        ``from_below``: h_{l-1} W_l if already computed (mean field reuses v W_1).
        ``transposed``: :meth:`transposed_weights`, if already computed.
        """
        total = self.biases[l]
        if from_below is not None:
            total = total + from_below
        elif l > 0:
            total = total + ops.matmul(states[l - 1], self.W[l - 1])
        if l < self.num_layers:
            W_T = ops.transpose(self.W[l]) if transposed is None else transposed[l]
            total = total + ops.matmul(states[l + 1], W_T)
        return total

    def transposed_weights(self):
        """[W_1^T, ..., W_L^T] as materialized tensors, for the top-down products of a
        mean-field run or of a few Gibbs sweeps, which reuse each one 5 to 20 times.

        Written as an einsum because a plain transpose feeding a matmul is folded back into
        the matmul's ``transpose_b`` by TensorFlow's graph optimizer, and TensorFlow's CPU
        matmul runs about 1.5x slower that way at these sizes.
        """
        return [ops.einsum("ij->ji", W) for W in self.W]

    def prob_layer(self, states, l):
        """Eq. (3.2): p(h_l = 1 | h_{l-1}, h_{l+1})."""
        return ops.sigmoid(self.layer_input(states, l))

    def gibbs_step(self, states, seed=None, transposed=None):
        """One block Gibbs sweep, Eq. (3.2): all odd layers, then all even layers (v too).

        ``transposed``: :meth:`transposed_weights`, when a caller runs several sweeps.

        Returns:
            (new states, p(v = 1 | h_1) from the sweep's visible update).
        """
        seed = sampling.resolve_seed(seed, self.seed_generator)
        states = list(states)
        visible_probs = None
        for parity in (1, 0):
            for l in range(parity, self.num_layers + 1, 2):
                probs = ops.sigmoid(self.layer_input(states, l, transposed=transposed))
                visible_probs = probs if l == 0 else visible_probs
                states[l] = sampling.bernoulli(probs, sampling.substream(seed, l))
        return states, visible_probs

    # ------------------------------------------------------------------ mean field
    def mean_field_init(self, v, clamped=None):
        """Bottom-up start for Eq. (3.3): doubled weights below the top layer, as the
        missing top-down input is about as large as the bottom-up one.

        ``clamped``: v W_1, if already computed."""
        mu = [v]
        for l in range(1, self.num_layers + 1):
            factor = 2.0 if l < self.num_layers else 1.0
            below = clamped if l == 1 and clamped is not None else ops.matmul(mu[-1],
                                                                           self.W[l - 1])
            mu.append(ops.sigmoid(factor * below + self.biases[l]))
        return mu

    def mean_field(self, v, num_steps=None, init=None, transposed=None):
        """Eq. (3.3): the mean-field fixed point [v, mu_1, ..., mu_L] for a batch v.

        Args:
            v: (n, D) data, clamped.
            num_steps: sweeps (odd layers, then even hidden layers); default
                ``self.mean_field_steps``.
            init: optional starting [v, mu_1, ..., mu_L]; default :meth:`mean_field_init`.
            transposed: :meth:`transposed_weights`, if already computed.
        """
        num_steps = (self.mean_field_steps if num_steps is None
                     else check_nonneg_int(num_steps, "num_steps"))
        clamped = ops.matmul(v, self.W[0])  # v W_1 does not change: computed once
        mu = list(init) if init is not None else self.mean_field_init(v, clamped)
        mu[0] = v
        if transposed is None and num_steps > 0:
            transposed = self.transposed_weights()
        for _ in range(num_steps):
            for first in (1, 2):  # odd layers, then even hidden layers
                for l in range(first, self.num_layers + 1, 2):
                    mu[l] = ops.sigmoid(self.layer_input(mu, l, clamped if l == 1 else None,
                                                         transposed))
        return mu

    def unnormalized_bound(self, mu):
        """Eq. (3.4) without log Z: -E(v, mu) + sum_l H(mu_l), one value per row."""
        return -self.energy(mu) + sum(binary_entropy(m) for m in mu[1:])

    def mean_field_bound(self, v, log_z, *, num_steps=None, batch_size=1000):
        """Eq. (3.4): the mean-field lower bound on log p(v), one value per image (float64).

        Args:
            v: (n, D) binary images.
            log_z: log Z (exact for tiny models, an AIS estimate otherwise).
            num_steps: mean-field sweeps (default ``self.mean_field_steps``; more is tighter).
            batch_size: images per call.
        """
        if num_steps is not None:
            num_steps = check_nonneg_int(num_steps, "num_steps")
        batch_size = check_positive_int(batch_size, "batch_size")
        log_z = check_finite_float(log_z, "log_z")
        v = self.check_visible(v)
        run = tf.function(lambda x: self.unnormalized_bound(self.mean_field(x, num_steps)))
        out = [run(tf.constant(v[s:s + batch_size])).numpy()
               for s in range(0, len(v), batch_size)]
        return np.concatenate(out).astype(np.float64) - float(log_z)

    def reconstruct(self, v, num_steps=None):
        """Mean-field reconstruction p(v | mu_1) = sigmoid(b_0 + mu_1 W_1^T).

        Concrete data are validated by :meth:`check_visible`; symbolic tensors (inside
        ``call``) pass as they are."""
        if is_concrete(v):
            v = self.check_visible(v)
        mu = self.mean_field(ops.convert_to_tensor(v), num_steps)
        return self.prob_layer(mu, 0)

    def call(self, v):
        return self.reconstruct(v)

    # -------------------------------------------------------------------- learning
    def negative_phase(self, transposed=None):
        """``gibbs_steps`` block Gibbs sweeps of the persistent chains; stores them and
        returns the ones this replica advanced (all of them on one device; under several
        replicas each advances its own block, see ``sampling.replica_rows``).
        ``transposed``: :meth:`transposed_weights`, if already computed."""
        states = [sampling.replica_rows(ops.convert_to_tensor(c)) for c in self.chains]
        transposed = self.transposed_weights() if transposed is None else transposed
        for _ in range(self.gibbs_steps):
            states, _ = self.gibbs_step(states, transposed=transposed)
        for chain, state in zip(self.chains, states, strict=True):
            chain.assign(sampling.gather_replica_rows(state))
        return states

    def train_step(self, data):
        v, _ = unpack_batch(data, type(self).__name__)
        transposed = self.transposed_weights()  # shared by every top-down product below
        mu = [ops.stop_gradient(m) for m in self.mean_field(v, transposed=transposed)]  # (3.3)
        chains = [ops.stop_gradient(h) for h in self.negative_phase(transposed)]
        with tf.GradientTape() as tape:
            loss = ops.mean(self.energy(mu)) - ops.mean(self.energy(chains))  # Eq. (3.5)
            loss = scaled_loss(self.optimizer, loss)     # replicas summed; loss scale
        variables = self.trainable_variables
        self.optimizer.apply(tape.gradient(loss, variables), variables)
        self.reconstruction_error_tracker.update_state(     # with the updated weights
            ops.mean(ops.sum(ops.square(v - self.prob_layer(mu, 0)), -1)))
        self.bound_tracker.update_state(ops.mean(self.unnormalized_bound(mu)))
        return {m.name: m.result() for m in self.metrics}

    def test_step(self, data):
        v, _ = unpack_batch(data, type(self).__name__)
        mu = self.mean_field(v)
        self.reconstruction_error_tracker.update_state(
            ops.mean(ops.sum(ops.square(v - self.prob_layer(mu, 0)), -1)))
        self.bound_tracker.update_state(ops.mean(self.unnormalized_bound(mu)))
        return {m.name: m.result() for m in self.metrics}

    @property
    def metrics(self):
        return [self.reconstruction_error_tracker, self.bound_tracker]

    def check_visible(self, v, name="v"):
        """Validates binary (or probability) data of shape (n, D)."""
        return check_probabilities(v, expected_dim=self.layer_sizes[0], name=name)

    # ------------------------------------------------------------------ generation
    def sample(self, num_samples, num_steps, *, seed, init=None, every=None, verbose="auto",
               jit_compile="auto"):
        """Runs block Gibbs chains from random states (or ``init`` images), stateless seeds.

        Args:
            num_samples, num_steps, seed, init, every: as in ``RBM.sample``.
            verbose: the progress bar over the sweeps, as in ``keras.Model.fit``: "auto"
                (shown once the run has lasted ``sampling.AUTO_PROGRESS_DELAY`` seconds),
                0 / False, 1 / True or 2.
            jit_compile: "auto" (XLA when TensorFlow sees a GPU, as ``compile()`` does), True
                or False.

        Returns:
            (final p(v | h_1), stacked snapshots of it every ``every`` sweeps, or None).
        """
        num_steps = check_nonneg_int(num_steps, "num_steps")
        verbose = sampling.check_verbose(verbose)
        jit_compile = sampling.resolve_jit_compile(jit_compile)
        if every is not None:
            every = check_positive_int(every, "every")
        base = sampling.as_stateless_seed(seed)
        if init is not None:
            v = tf.constant(self.check_visible(init, "init"))
            states = [sampling.bernoulli(m, sampling.step_seed(base, -1, l)) if l else m
                      for l, m in enumerate(self.mean_field(v))]
        else:
            num_samples = check_positive_int(num_samples, "num_samples")
            states = [sampling.bernoulli(tf.fill((num_samples, n), 0.5),
                                         sampling.step_seed(base, -1, l))
                      for l, n in enumerate(self.layer_sizes)]
        if num_steps == 0:
            return ops.convert_to_numpy(states[0]), None
        return sampling.run_chain(lambda s, seed: self.gibbs_step(s, seed), states, num_steps,
                                  base, every, verbose=verbose, jit_compile=jit_compile)

    def chain_states(self):
        """The persistent chains as a list of numpy arrays, [v, h_1, ..., h_L]."""
        return [ops.convert_to_numpy(c) for c in self.chains]

    def check_layer_states(self, states, name):
        """``states`` as a list [v, h_1, ..., h_L] of numpy arrays, each (M, n_l) in [0, 1]
        with the same M in every layer; a clear error naming ``name`` otherwise."""
        if not isinstance(states, (list, tuple)) or len(states) != self.num_layers + 1:
            got = len(states) if isinstance(states, (list, tuple)) else type(states).__name__
            raise ValueError(f"{name} must be a list of {self.num_layers + 1} layer states "
                             f"[v, h_1, ...]; got {got}.")
        arrays = [check_probabilities(h, expected_dim=n, name=f"{name}[{l}]")
                  for l, (h, n) in enumerate(zip(states, self.layer_sizes, strict=True))]
        if len({len(h) for h in arrays}) > 1:
            raise ValueError(f"{name} must hold the same number of chains in every layer; "
                             f"got {[len(h) for h in arrays]}.")
        return arrays

    def gibbs_states(self, num_steps, *, seed, init=None, verbose="auto", jit_compile="auto"):
        """Block Gibbs, Eq. (3.2), for ``num_steps`` sweeps; returns every layer's binary
        state, the start that reverse AIS needs.

        Args:
            num_steps: sweeps to run (compiled in chunks; sweep t uses ``step_seed(seed, t)``).
            seed: Python int.
            init: the start, a list [v, h_1, ..., h_L] of binary arrays with the same number
                of rows in every layer; default the persistent chains (``chain_states()``).
                A model that never trained has uniform random chains, which are no sample
                of it until many sweeps have run.
            verbose: the progress bar over the sweeps, as in ``keras.Model.fit``.
            jit_compile: "auto" (XLA when TensorFlow sees a GPU, as ``compile()`` does), True
                or False.

        Returns:
            The list [v, h_1, ..., h_L] of numpy arrays after the last sweep (the model is not
            changed: the persistent chains stay where they were).
        """
        num_steps = check_nonneg_int(num_steps, "num_steps")
        base = sampling.as_stateless_seed(check_seed(seed))
        verbose = sampling.check_verbose(verbose)
        jit_compile = sampling.resolve_jit_compile(jit_compile)
        states = self.check_layer_states(self.chain_states() if init is None else init, "init")
        transposed = self.transposed_weights()

        def sweep(k, carry):
            return self.gibbs_step(list(carry), sampling.step_seed(base, k),
                                   transposed=transposed)[0]

        final = sampling.run_in_chunks(sweep, [tf.constant(s) for s in states], 0, num_steps,
                                       verbose=verbose, unit_name="sweep",
                                       jit_compile=jit_compile)
        return [ops.convert_to_numpy(s) for s in final]

    # -------------------------------------------------- even layers summed out, (3.8)
    @property
    def odd_sizes(self):
        return [self.layer_sizes[l] for l in range(1, self.num_layers + 1, 2)]

    def split_odd(self, odd):
        """(n, sum of odd sizes) -> {l: h_l} for the odd layers."""
        parts = ops.split(odd, np.cumsum(self.odd_sizes)[:-1].tolist(), axis=-1) \
            if len(self.odd_sizes) > 1 else [odd]
        return dict(zip(range(1, self.num_layers + 1, 2), parts, strict=True))

    def odd_free_energy(self, odd, v=None):
        """Eq. (3.8): -log sum over the even layers of exp(-E), given the odd layers.

        With ``v`` (n, D) the visible layer is clamped rather than summed out, so
        ``-odd_free_energy(odd, v)`` is log of the joint of v and the odd layers (plus log Z).
        """
        layers = self.split_odd(odd)
        states = [layers.get(l) for l in range(self.num_layers + 1)]
        f = -sum(ops.sum(h * self.biases[l], -1) for l, h in layers.items())
        for l in range(0, self.num_layers + 1, 2):
            if l == 0 and v is not None:
                f -= ops.sum(v * self.biases[0], -1) + ops.sum(
                    ops.matmul(v, self.W[0]) * layers[1], -1)
                continue
            total = self.biases[l]
            if l > 0:
                total = total + ops.matmul(states[l - 1], self.W[l - 1])
            if l < self.num_layers:
                total = total + ops.matmul(states[l + 1], ops.transpose(self.W[l]))
            f -= ops.sum(ops.softplus(total), -1)
        return f

    def enumerated_free_energy(self):
        """For exact log Z, Eq. (3.8): (number of odd-layer units, ``odd_free_energy``)."""
        return int(sum(self.odd_sizes)), self.odd_free_energy

    def unnormalized_log_prob(self, v):
        """log p*(v) = log sum_h exp(-E(v, h)) per row (so log p(v) = log p*(v) - log Z):
        the odd layers enumerated, the even ones summed out, Eq. (3.8). At most
        ``MAX_EXACT_ODD_UNITS`` odd-layer units."""
        n_odd = int(sum(self.odd_sizes))
        if n_odd > MAX_EXACT_ODD_UNITS:
            raise ValueError(f"the exact DBM marginal enumerates 2^{n_odd} odd-layer states per "
                             f"image; use a model with at most {MAX_EXACT_ODD_UNITS} odd-layer "
                             "units.")
        odd = ops.convert_to_tensor(sampling.all_binary_states(n_odd))
        if is_concrete(v):
            v = self.check_visible(v)
        v = ops.convert_to_tensor(v)

        def one_row(row):
            clamped = ops.broadcast_to(row, (ops.shape(odd)[0], ops.shape(row)[0]))
            return ops.logsumexp(-self.odd_free_energy(odd, clamped))

        # One image at a time: each enumerates 2^n_odd states of (D + n_odd) units.
        return tf.map_fn(one_row, v, parallel_iterations=1)

    def annealing_path(self, base_visible_bias):
        """The AIS path of Eq. (3.9) from the base-rate model to this DBM."""
        return DBMAnnealingPath(self, base_visible_bias)

    def annealing_path_from(self, start):
        """The AIS path of Eq. (3.10) from another DBM ``start`` (same layer sizes) to this
        one, for the log ratio of their partition functions."""
        if not isinstance(start, DBM):
            raise TypeError(f"start must be a DBM to anneal from; got {type(start).__name__}.")
        return DBMInterpolationPath(start, self)

    def get_config(self):
        config = super().get_config()
        config.update(
            layer_sizes=self.layer_sizes, num_chains=self.num_chains,
            gibbs_steps=self.gibbs_steps, mean_field_steps=self.mean_field_steps,
            weight_init_std=self.weight_init_std, seed=self.seed,
            visible_bias_init=(None if self.visible_bias_init is None
                               else self.visible_bias_init.tolist()))
        return config


def dbm_pretraining_rbms(layer_sizes, *, seed=None, **rbm_kwargs):
    """The RBMs to pre-train a DBM greedily, Eqs. (3.6)/(3.7) of
    :mod:`course_lib.boltzmann.stacking`.

    The first RBM doubles its bottom-up input, the last its top-down input, the middle ones
    are ordinary (their weights are halved by :meth:`DBM.from_rbms`). Train them with
    :func:`course_lib.boltzmann.stacking.greedy_layerwise`, then call ``DBM.from_rbms``.
    """
    sizes = check_int_sequence(layer_sizes, "layer_sizes", item="layer size")
    seed = check_seed(seed, allow_none=True)
    if len(sizes) < 3:
        raise ValueError(f"a DBM stack needs at least two hidden layers; got {layer_sizes}.")
    rbms = []
    for l in range(len(sizes) - 1):
        up = 2.0 if l == 0 else 1.0
        down = 2.0 if l == len(sizes) - 2 else 1.0
        rbms.append(DoublingRBM(sizes[l], sizes[l + 1], up_factor=up, down_factor=down,
                                seed=None if seed is None else seed + l, **rbm_kwargs))
    return rbms
