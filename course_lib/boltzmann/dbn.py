"""Deep belief networks: greedy stacking, up-down fine-tuning, generation and bounds.

Paper card
----------
Hinton, Osindero & Teh 2006, "A fast learning algorithm for deep belief nets" (greedy
training, the up-down algorithm of its Appendix B); Murray & Salakhutdinov 2008 (AIS-based
lower bound on a DBN's test log-likelihood). Used by ``notebooks/02_dbn.ipynb``.

A DBN with layers h_0 = v, h_1, ..., h_L has directed sigmoid connections between h_l and
h_{l+1} for l < L - 1 and an undirected RBM between h_{L-1} and h_L (the "top RBM").
Equations, numbered as in the chapter notebook::

    (2.1) p(v, h_1, ..., h_L) = prod_{l<L-1} p(h_l | h_{l+1}) * p_top(h_{L-1}, h_L)
    (2.2) p(h_l,i = 1 | h_{l+1}) = sigmoid(g_l,i + (h_{l+1} G_l^T)_i)     generative weights
    (2.3) q(h_{l+1},j = 1 | h_l) = sigmoid(r_l,j + (h_l R_l)_j)           recognition weights
    (2.4) log p(v) >= E_q[ sum_{l<L-1} log p(h_l | h_{l+1}) - F_top(h_{L-1}) ]
                      - log Z_top + H(q),     q = prod_l q(h_{l+1} | h_l)
    (2.5) importance-weighted: log p(v) >= E log (1/K) sum_k p(v, h^k) / q(h^k | v)
    (2.6) up-down updates (Appendix B), each the gradient of a log-likelihood term:
          wake:  G_l += eps h_{l+1}^T (h_l - p(h_l | h_{l+1}))    on the up-pass states
          top:   CD-k in the top RBM started from the up-pass state of h_{L-1}
          sleep: R_l += eps h_l^T (h_{l+1} - q(h_{l+1} | h_l))    on the down-pass states

Symbol -> attribute: ``R_l -> self.recognition_W[l]``, ``r_l -> self.recognition_bias[l]``,
``G_l -> self.generative_W[l]`` (shape n_l x n_{l+1}, used transposed), ``g_l ->
self.generative_bias[l]``, the top RBM -> ``self.top`` (a ``BernoulliRBM``), ``k ->
self.top.k``. After greedy training R_l = G_l ("tied"); fine-tuning unties them.

Deviations: the wake and sleep terms use the states of one up and one down pass per
minibatch, as in the paper; the label units of the paper's top RBM are left out (the
course's DBN is an unsupervised density model; the notebook trains a classifier separately).
"""

from __future__ import annotations

import math

import keras
import numpy as np
import tensorflow as tf
from keras import ops

from course_lib import sampling
from course_lib.boltzmann.rbm import BernoulliRBM
from course_lib.boltzmann.stacking import stack_sizes
from course_lib.checks import (
    check_bool,
    check_finite_float,
    check_int_sequence,
    check_nonneg_int,
    check_positive_int,
    check_probabilities,
    check_seed,
    float32_only,
)
from course_lib.training import GuardedFitMixin, scaled_loss, unpack_batch


@keras.saving.register_keras_serializable(package="course_lib")
class DBN(GuardedFitMixin, keras.Model):
    """A deep belief net with untied recognition and generative weights, Eqs. (2.1)-(2.6).

    Args:
        layer_sizes: ``[D, n_1, ..., n_L]``, at least two hidden layers (a one-hidden-layer
            DBN is an RBM: use :class:`course_lib.boltzmann.rbm.BernoulliRBM`).
        k: Gibbs steps of the top RBM's CD during up-down fine-tuning (the paper: 3 early,
            then 6 and 10).
        weight_init_std: std of the initial weights when not built from RBMs.
        seed: integer seed for the weights and the model's ``SeedGenerator``.

    Example:
        >>> rbms = [BernoulliRBM(784, 500), BernoulliRBM(500, 500), BernoulliRBM(500, 1000)]
        >>> greedy_layerwise(rbms, x_train, epochs=10)
        >>> dbn = DBN.from_rbms(rbms, k=3)
        >>> dbn.compile(optimizer=keras.optimizers.SGD(0.001))
        >>> dbn.fit(x_train, batch_size=100, epochs=5)      # up-down fine-tuning
    """

    checkpoint_monitor = "wake_nll"  # SafeCheckpoint keeps the lowest

    def __init__(self, layer_sizes, *, k=1, weight_init_std=0.01, seed=None, **kwargs):
        super().__init__(**float32_only(kwargs, type(self).__name__))
        layer_sizes = check_int_sequence(layer_sizes, "layer_sizes", item="layer size")
        if len(layer_sizes) < 3:
            raise ValueError("a DBN needs layer_sizes [D, n_1, n_2, ...] with at least two "
                             f"hidden layers; got {layer_sizes}.")
        self.layer_sizes, self.k = layer_sizes, check_positive_int(k, "k")
        self.seed = check_seed(seed, allow_none=True)
        self.weight_init_std = check_finite_float(weight_init_std, "weight_init_std",
                                                  at_least=0.0)
        self.seed_generator = sampling.tracked_seed_generator(self, seed)
        self.top = BernoulliRBM(layer_sizes[-2], layer_sizes[-1], k=self.k,
                                seed=None if self.seed is None else self.seed + 1,
                                weight_init_std=weight_init_std, name="top_rbm")
        self.wake_tracker = keras.metrics.Mean(name="wake_nll")
        self.sleep_tracker = keras.metrics.Mean(name="sleep_nll")
        self.top_free_energy_tracker = keras.metrics.Mean(name="top_free_energy")
        self.build((None, layer_sizes[0]))

    @property
    def num_directed(self):
        """Number of directed (sigmoid belief net) layers: L - 1."""
        return len(self.layer_sizes) - 2

    def build(self, input_shape):
        if self.built:
            return
        seed = None if self.seed is None else int(self.seed)
        self.recognition_W, self.recognition_bias = [], []
        self.generative_W, self.generative_bias = [], []
        for l in range(self.num_directed):
            n_below, n_above = self.layer_sizes[l], self.layer_sizes[l + 1]
            init = keras.initializers.RandomNormal(stddev=self.weight_init_std,
                                                   seed=None if seed is None else seed + l)
            self.recognition_W.append(self.add_weight(shape=(n_below, n_above), initializer=init,
                                                      name=f"recognition_W{l}"))
            self.recognition_bias.append(self.add_weight(shape=(n_above,), initializer="zeros",
                                                         name=f"recognition_bias{l}"))
            self.generative_W.append(self.add_weight(shape=(n_below, n_above), initializer=init,
                                                     name=f"generative_W{l}"))
            self.generative_bias.append(self.add_weight(shape=(n_below,), initializer="zeros",
                                                        name=f"generative_bias{l}"))

    @classmethod
    def from_rbms(cls, rbms, **kwargs):
        """A DBN whose layers are greedily trained RBMs: R_l = G_l = W_l, the last RBM on top.

        The recognition bias r_l is the RBM's hidden bias c, the generative bias g_l its
        visible bias b (the RBM's own conditionals, Eqs. 1.4/1.5).
        """
        if len(rbms) < 2:
            raise ValueError(f"from_rbms needs at least two RBMs; got {len(rbms)}.")
        sizes = stack_sizes(rbms)
        dbn = cls(sizes, **kwargs)
        for l, rbm in enumerate(rbms[:-1]):
            dbn.recognition_W[l].assign(rbm.W)
            dbn.generative_W[l].assign(rbm.W)
            dbn.recognition_bias[l].assign(rbm.hidden_bias)
            dbn.generative_bias[l].assign(rbm.visible_bias)
        for mine, theirs in zip(dbn.top.trainable_variables, rbms[-1].trainable_variables,
                                strict=True):
            mine.assign(theirs)
        return dbn

    # ------------------------------------------------------------- conditionals
    def recognition_logits(self, h_below, l):
        """Eq. (2.3): logits of q(h_{l+1} | h_l)."""
        return ops.matmul(h_below, self.recognition_W[l]) + self.recognition_bias[l]

    def generative_logits(self, h_above, l):
        """Eq. (2.2): logits of p(h_l | h_{l+1})."""
        return ops.matmul(h_above, ops.transpose(self.generative_W[l])) + self.generative_bias[l]

    def up_pass(self, v, seed=None, sample=True):
        """Recognition pass v -> h_1 -> ... -> h_{L-1} (samples, or probabilities).

        Returns:
            The list ``[v, h_1, ..., h_{L-1}]``.
        """
        seed = sampling.resolve_seed(seed, self.seed_generator)
        states = [v]
        for l in range(self.num_directed):
            probs = ops.sigmoid(self.recognition_logits(states[-1], l))
            states.append(sampling.bernoulli(probs, sampling.substream(seed, l)) if sample
                          else probs)
        return states

    def down_pass(self, h_top, seed=None):
        """Generative pass h_{L-1} -> ... -> h_1 -> v: binary samples, probabilities at v.

        Returns:
            The list ``[p(v | h_1), h_1, ..., h_{L-1}]`` (bottom first).
        """
        seed = sampling.resolve_seed(seed, self.seed_generator)
        states = [h_top]
        for l in reversed(range(self.num_directed)):
            probs = ops.sigmoid(self.generative_logits(states[0], l))
            states.insert(0, probs if l == 0 else
                          sampling.bernoulli(probs, sampling.substream(seed, l)))
        return states

    def call(self, v):
        """Deterministic up then down pass: the DBN's reconstruction of v."""
        h = self.up_pass(v, sample=False)[-1]
        h = self.top.visible_mean(self.top.prob_h_given_v(h))
        for l in reversed(range(self.num_directed)):
            h = ops.sigmoid(self.generative_logits(h, l))
        return h

    # ----------------------------------------------------------- up-down learning
    @staticmethod
    def bernoulli_log_prob(x, logits):
        """log prod_i Bernoulli(x_i | sigmoid(logits_i)) = sum_i x_i l_i - softplus(l_i), one
        value per row (never the log of 0)."""
        return ops.sum(x * logits - ops.softplus(logits), axis=-1)

    def wake_loss(self, wake):
        """Eq. (2.6), wake phase: -sum_l log p(h_l | h_{l+1}) on the up-pass states."""
        return -sum(ops.mean(self.bernoulli_log_prob(wake[l],
                                                     self.generative_logits(wake[l + 1], l)))
                    for l in range(self.num_directed))

    def sleep_loss(self, sleep):
        """Eq. (2.6), sleep phase: -sum_l log q(h_{l+1} | h_l) on the down-pass states."""
        return -sum(ops.mean(self.bernoulli_log_prob(sleep[l + 1],
                                                     self.recognition_logits(sleep[l], l)))
                    for l in range(self.num_directed))

    def train_step(self, data):
        v, _ = unpack_batch(data, type(self).__name__)
        wake = [ops.stop_gradient(h) for h in self.up_pass(v)]            # up pass
        with tf.GradientTape() as tape:
            negative, _ = self.top.negative_phase(wake[-1])                # CD-k in the top
            top_loss, top_free_energy = self.top.contrastive_divergence_loss(wake[-1], negative)
            sleep = [ops.stop_gradient(h) for h in self.down_pass(negative)]  # down pass
            wake_loss, sleep_loss = self.wake_loss(wake), self.sleep_loss(sleep)
            loss = scaled_loss(self.optimizer, wake_loss + top_loss + sleep_loss)
        variables = self.trainable_variables
        gradients = tape.gradient(loss, variables)
        # The down pass reads G_0 and g_0, but only the recognition gradients depend on it, so
        # nothing else orders that read before the generative update: without this, inside
        # fit's multi-step loop the sleep phase sometimes saw the already-updated g_0.
        with tf.control_dependencies(sleep + [negative]):
            self.optimizer.apply(gradients, variables)
        self.wake_tracker.update_state(wake_loss)
        self.sleep_tracker.update_state(sleep_loss)
        self.top_free_energy_tracker.update_state(top_free_energy)
        return {m.name: m.result() for m in self.metrics}

    def test_step(self, data):
        """The training metrics on held-out data, with no update: the wake term on the
        held-out up-pass states (how well the generative weights explain them), the top
        RBM's mean free energy of their top layer, and the sleep term on a down pass from
        CD-k chains started there (how well the recognition weights invert the generative
        ones). Used by ``evaluate`` and ``fit(validation_data=...)``."""
        v, _ = unpack_batch(data, type(self).__name__)
        wake = self.up_pass(v)
        top_free_energy = ops.mean(self.top.free_energy(wake[-1]))
        negative, _ = self.top.gibbs_chain(wake[-1], self.top.k)
        sleep = self.down_pass(negative)
        self.wake_tracker.update_state(self.wake_loss(wake))
        self.sleep_tracker.update_state(self.sleep_loss(sleep))
        self.top_free_energy_tracker.update_state(top_free_energy)
        return {m.name: m.result() for m in self.metrics}

    @property
    def metrics(self):
        return [self.wake_tracker, self.sleep_tracker, self.top_free_energy_tracker]

    def check_visible(self, v, name="v"):
        """Validates binary (or probability) data of shape (n, D)."""
        return check_probabilities(v, expected_dim=self.layer_sizes[0], name=name)

    # ------------------------------------------------------------------ generation
    def sample(self, num_samples, num_steps, *, seed, init=None, verbose="auto",
               jit_compile="auto"):
        """Gibbs sampling in the top RBM, then one top-down pass, Eq. (2.1).

        Args:
            num_samples: number of chains (ignored when ``init`` is given).
            num_steps: Gibbs sweeps in the top RBM.
            seed: Python int.
            init: optional (n, D) images; the chains then start from their up-pass states
                ("what the DBN associates with this image").
            verbose: the progress bar over the sweeps, as in ``keras.Model.fit``: "auto"
                (shown once the run has lasted ``sampling.AUTO_PROGRESS_DELAY`` seconds),
                0 / False, 1 / True or 2.
            jit_compile: "auto" (XLA when TensorFlow sees a GPU, as ``compile()`` does), True
                or False.

        Returns:
            (n, D) array of p(v | h_1): the visible probabilities of the samples.
        """
        num_steps = check_nonneg_int(num_steps, "num_steps")
        verbose = sampling.check_verbose(verbose)
        jit_compile = sampling.resolve_jit_compile(jit_compile)
        base = sampling.as_stateless_seed(seed)
        if init is None:
            num_samples = check_positive_int(num_samples, "num_samples")
            h = self.top.random_visible(num_samples, sampling.step_seed(base, -1))
        else:
            v = tf.constant(self.check_visible(init, "init"))
            h = self.up_pass(v, sampling.step_seed(base, -2))[-1]
        if num_steps:
            h, _ = self.top.sample(None, num_steps, seed=int(seed) + 1, init=h, verbose=verbose,
                                   jit_compile=jit_compile)
            h = sampling.bernoulli(tf.constant(h), sampling.step_seed(base, -3))
        return ops.convert_to_numpy(self.down_pass(h, sampling.step_seed(base, -4))[0])

    # ---------------------------------------------------------------- evaluation
    def log_joint_and_posterior(self, states, log_z_top):
        """log p(v, h_1..h_{L-1}) and log q(h_1..h_{L-1} | v) for one set of states, Eq. (2.4).

        ``states`` = ``[v, h_1, ..., h_{L-1}]``; p(h_{L-1}) is the top RBM's marginal,
        ``-F_top(h_{L-1}) - log Z_top``.
        """
        log_p = -self.top.free_energy(states[-1]) - log_z_top
        log_q = 0.0
        for l in range(self.num_directed):
            log_p += self.bernoulli_log_prob(states[l], self.generative_logits(states[l + 1], l))
            log_q += self.bernoulli_log_prob(states[l + 1], self.recognition_logits(states[l], l))
        return log_p, log_q

    def log_importance_weights(self, v, log_z_top, *, num_samples=10, seed=0,
                               batch_size=20_000, verbose="auto"):
        """log p(v, h^k) - log q(h^k | v) for K draws h^k ~ q(h | v), Eqs. (2.4)/(2.5).

        Args:
            v: (n, D) binary images.
            log_z_top: log Z of the top RBM (exact, or an AIS estimate: an AIS estimate
                that is too low makes the bound too high, so report reverse AIS too).
            num_samples: K draws per image.
            seed: Python int.
            batch_size: rows (images x K) evaluated at once.
            verbose: the progress bar over the batches, as in ``keras.Model.fit``: "auto"
                (shown once the run has lasted ``sampling.AUTO_PROGRESS_DELAY`` seconds),
                0 / False, 1 / True or 2.

        Returns:
            (n, K) float64 array. Its row means are the bound (2.4); the log of the row
            means of its exponentials is the importance-weighted bound (2.5).
        """
        num_samples = check_positive_int(num_samples, "num_samples")
        batch_size = check_positive_int(batch_size, "batch_size")
        log_z_top = check_finite_float(log_z_top, "log_z_top")
        verbose = sampling.check_verbose(verbose)
        v = self.check_visible(v)
        base = sampling.as_stateless_seed(seed)
        rows = max(1, batch_size // num_samples)      # images per call; K copies of each

        @tf.function(reduce_retracing=True)
        def per_batch(v, batch_seed):
            n = tf.shape(v)[0]
            copies = tf.tile(v, [num_samples, 1])         # row k * n + i: sample k of image i
            log_p, log_q = self.log_joint_and_posterior(self.up_pass(copies, batch_seed),
                                                        log_z_top)
            return tf.transpose(tf.reshape(log_p - log_q, (num_samples, n)))

        starts = range(0, len(v), rows)
        progress = sampling.LoopProgress(len(starts), verbose=verbose, unit_name="batch")
        out = []
        for i, s in enumerate(starts):
            out.append(per_batch(tf.constant(v[s:s + rows]), sampling.step_seed(base, i)).numpy())
            progress.update(i + 1)
        return np.concatenate(out).astype(np.float64)

    def lower_bound(self, v, log_z_top, *, num_samples=10, seed=0, importance_weighted=False,
                    batch_size=20_000, verbose="auto"):
        """Eq. (2.4) (or 2.5): a stochastic lower bound on log p(v), one value per image.

        Args:
            v, log_z_top, num_samples, seed, batch_size, verbose: as
                :meth:`log_importance_weights`.
            importance_weighted: False: the mean of log p(v, h) - log q(h | v), Eq. (2.4);
                True: log mean exp of it, Eq. (2.5), tighter as K grows.

        Returns:
            (n,) float64 array.
        """
        importance_weighted = check_bool(importance_weighted, "importance_weighted")
        log_w = self.log_importance_weights(v, log_z_top, num_samples=num_samples, seed=seed,
                                            batch_size=batch_size, verbose=verbose)
        if importance_weighted:
            return np.logaddexp.reduce(log_w, axis=1) - math.log(num_samples)
        return log_w.mean(axis=1)

    def classifier(self, num_classes, *, seed=None):
        """A sigmoid MLP initialised from the DBN, for discriminative fine-tuning.

        Hidden layers take the recognition weights R_l, r_l and, last, the top RBM's W and
        hidden bias; a softmax layer with ``num_classes`` outputs (fresh weights) sits on top
        (Hinton & Salakhutdinov 2006). Returns an uncompiled ``keras.Sequential``.
        """
        num_classes = check_positive_int(num_classes, "num_classes", minimum=2)
        seed = check_seed(seed, allow_none=True)
        sizes = self.layer_sizes
        layers = [keras.Input((sizes[0],))]
        layers += [keras.layers.Dense(n, activation="sigmoid") for n in sizes[1:]]
        layers.append(keras.layers.Dense(
            num_classes, activation="softmax",
            kernel_initializer=keras.initializers.GlorotUniform(seed=seed)))
        model = keras.Sequential(layers)
        pretrained = [(self.recognition_W[l], self.recognition_bias[l])
                      for l in range(self.num_directed)] + [(self.top.W, self.top.hidden_bias)]
        for dense, (W, c) in zip(model.layers[:-1], pretrained, strict=True):
            dense.kernel.assign(W)
            dense.bias.assign(c)
        return model

    def get_config(self):
        config = super().get_config()
        config.update(layer_sizes=self.layer_sizes, k=self.k,
                      weight_init_std=self.weight_init_std, seed=self.seed)
        return config
