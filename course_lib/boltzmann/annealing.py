"""Annealing paths of the Boltzmann family: the tempered distributions that AIS walks.

Each path goes from a base-rate model A (visible biases b_A, no weights, every hidden unit
free) to the model B at beta = 1; ``course_lib.evaluation.ais`` runs any such path. A model
returns its own path from ``model.annealing_path(base_visible_bias)``.

RBM (Salakhutdinov & Murray 2008), Eq. (1.13) of the RBM notebook::

    f_beta(v) = exp((1 - beta) b_A.v + beta b.v) prod_j (1 + exp(beta (c_j + (v W)_j)))

DBM (Salakhutdinov & Hinton 2009), Eq. (3.9) of the DBM notebook: the odd layers are
annealed, the even layers (v included) summed out analytically::

    log f_beta(h_odd) = beta sum_{l odd} b_l.h_l
                        + sum_j softplus((1 - beta) b_A,j + beta (b_0 + h_1 W_1^T)_j)
                        + sum_{l even > 0} sum_j softplus(beta (b_l + in_l)_j)

A path supplies ``initial_state(num_chains, seed)``, ``log_base_partition()``,
``state_from_samples(samples)`` (for reverse AIS) and
``step(state, beta_from, beta_to, seed) -> (log weight increment, new state)``.
"""

from __future__ import annotations

import math

import numpy as np
import tensorflow as tf

from course_lib import sampling
from course_lib.checks import check_finite_array


def _check_parameters(named):
    """Refuses model parameters with NaN or inf: AIS along them would return NaN."""
    for name, value in named:
        bad = int(np.size(value) - np.isfinite(np.asarray(value)).sum())
        if bad:
            raise ValueError(f"the model's {name} holds {bad} NaN or inf values (training "
                             "diverged?); AIS needs finite parameters.")


def softplus_difference(x, beta_from, beta_to):
    """sum_j softplus(beta_to x_j) - softplus(beta_from x_j), one value per row, for
    0 <= beta_from, beta_to.

    With softplus(y) = relu(y) + log1p(exp(-|y|)) and relu(beta x) = beta relu(x), this is
    (beta_to - beta_from) sum_j relu(x_j) + sum_j [log1p(exp(-beta_to |x_j|)) -
    log1p(exp(-beta_from |x_j|))]: the large, nearly equal terms of the two softpluses never
    meet in a float32 subtraction, and the elementwise work is cheaper than two softplus
    kernels on CPU.
    """
    magnitude = tf.abs(x)
    linear = (beta_to - beta_from) * tf.reduce_sum(tf.nn.relu(x), axis=-1)
    return linear + tf.reduce_sum(tf.math.log1p(tf.exp(-beta_to * magnitude))
                                  - tf.math.log1p(tf.exp(-beta_from * magnitude)), axis=-1)


class RBMAnnealingPath:
    """Eq. (1.13) for a ``BernoulliRBM``: from the base-rate model A to the RBM B."""

    def __init__(self, model, base_visible_bias):
        base = check_finite_array(base_visible_bias, "base_visible_bias",
                                  shape=(model.n_visible,))
        self.model = model
        self.base_bias = tf.constant(base)
        self.W, self.b, self.c = (tf.identity(t) for t in model.parameters())
        _check_parameters((("W", self.W), ("visible_bias", self.b), ("hidden_bias", self.c)))
        # Loop invariants, computed once rather than at each of the ~15,000 steps: W^T (TF's
        # CPU matmul runs h W^T ~1.5x slower from W with transpose_b than from W^T) and
        # b - b_A of the visible term.
        self.W_T = tf.transpose(self.W)
        self.visible_gap = self.b - self.base_bias

    def log_base_partition(self):
        """log Z_A + H log 2: at beta = 0 the H hidden units are free, Eq. (1.13)."""
        log_za = np.sum(np.logaddexp(0.0, self.base_bias.numpy().astype(np.float64)))
        return float(log_za + self.model.n_hidden * math.log(2.0))

    def initial_state(self, num_chains, seed):
        probs = tf.sigmoid(tf.broadcast_to(self.base_bias, (num_chains, self.base_bias.shape[0])))
        return sampling.bernoulli(probs, seed)

    def state_from_samples(self, samples):
        """Model samples (visible states) as the start of reverse AIS."""
        return tf.constant(self.model.check_visible(samples, "model_samples"))

    def log_f_ratio(self, v, pre, beta_from, beta_to):
        """log f_to(v) - log f_from(v) of Eq. (1.13), given pre = c + v W."""
        visible = (beta_to - beta_from) * tf.linalg.matvec(v, self.visible_gap)
        return visible + softplus_difference(pre, beta_from, beta_to)

    def step(self, v, beta_from, beta_to, seed):
        """Weight increment log f_to(v) - log f_from(v), then a Gibbs sweep at beta_to."""
        pre = tf.matmul(v, self.W) + self.c
        increment = self.log_f_ratio(v, pre, beta_from, beta_to)
        h = sampling.bernoulli(tf.sigmoid(beta_to * pre), sampling.step_seed(seed, 0, 1))
        # (1 - beta) b_A + beta (b + h W^T), with the bias mix formed on a vector
        logits = beta_to * tf.matmul(h, self.W_T) + ((1.0 - beta_to) * self.base_bias
                                                     + beta_to * self.b)
        return increment, sampling.bernoulli(tf.sigmoid(logits), sampling.step_seed(seed, 0, 2))


def _dbm_parameters(model, prefix=""):
    """A DBM's ``(W, W^T, b)`` as constants (W^T a loop invariant, as for the RBM path),
    refused when any holds NaN or inf."""
    W = [tf.identity(w) for w in model.W]
    b = [tf.identity(bias) for bias in model.biases]
    _check_parameters([(f"{prefix}W{l + 1}", w) for l, w in enumerate(W)]
                      + [(f"{prefix}b{l}", bias) for l, bias in enumerate(b)])
    return W, [tf.transpose(w) for w in W], b


def _layer_input(W, W_T, b, states, l):
    """b_l + h_{l-1} W_l + h_{l+1} W_{l+1}^T, from whichever neighbours are in states."""
    total = b[l]
    if l > 0:
        total = total + tf.matmul(states[l - 1], W[l - 1])
    if l < len(W):
        total = total + tf.matmul(states[l + 1], W_T[l])
    return total


class _OddLayerPath:
    """What every DBM path shares: the odd layers it anneals (concatenated into one state)
    and the even layers it sums out."""

    def __init__(self, layer_sizes):
        self.sizes = list(layer_sizes)
        self.num_layers = len(self.sizes) - 1
        self.odd = list(range(1, self.num_layers + 1, 2))
        self.even = list(range(0, self.num_layers + 1, 2))

    def _split(self, odd):
        sizes = [self.sizes[l] for l in self.odd]
        return dict(zip(self.odd, tf.split(odd, sizes, axis=-1), strict=True))

    def _join(self, states):
        return tf.concat([states[l] for l in self.odd], -1)


class DBMAnnealingPath(_OddLayerPath):
    """Eq. (3.9) for a ``DBM``: from the base-rate model A to the DBM, odd layers annealed."""

    def __init__(self, model, base_visible_bias):
        super().__init__(model.layer_sizes)
        base = check_finite_array(base_visible_bias, "base_visible_bias",
                                  shape=(model.layer_sizes[0],))
        self.model = model
        self.base_bias = tf.constant(base)
        self.W, self.W_T, self.b = _dbm_parameters(model)

    def log_base_partition(self):
        """log Z_A + (number of hidden units) log 2, Eq. (3.9) at beta = 0."""
        log_za = np.sum(np.logaddexp(0.0, self.base_bias.numpy().astype(np.float64)))
        return float(log_za + sum(self.model.layer_sizes[1:]) * math.log(2.0))

    def _input(self, states, l):
        return _layer_input(self.W, self.W_T, self.b, states, l)

    def initial_state(self, num_chains, seed):
        size = sum(self.model.layer_sizes[l] for l in self.odd)
        return sampling.bernoulli(tf.fill((num_chains, size), 0.5), seed)

    def state_from_samples(self, samples):
        """Model samples ``[v, h_1, ..., h_L]`` (e.g. ``dbm.chain_states()``) -> odd layers."""
        states = self.model.check_layer_states(samples, "model_samples")
        return self._join({l: tf.constant(states[l]) for l in self.odd})

    def _even_logits(self, states, l, beta):
        if l == 0:
            return (1.0 - beta) * self.base_bias + beta * self._input(states, 0)
        return beta * self._input(states, l)

    def step(self, odd, beta_from, beta_to, seed):
        """Weight increment log f_to - log f_from at the odd state, then a Gibbs sweep at
        beta_to (even layers given odd, odd given even)."""
        states = self._split(odd)
        increment = (beta_to - beta_from) * sum(
            tf.linalg.matvec(states[l], self.b[l]) for l in self.odd)
        for l in self.even:
            inputs = self._input(states, l)
            if l == 0:
                low = (1.0 - beta_from) * self.base_bias + beta_from * inputs
                high = (1.0 - beta_to) * self.base_bias + beta_to * inputs
                increment += tf.reduce_sum(tf.nn.softplus(high) - tf.nn.softplus(low), -1)
            else:
                high = beta_to * inputs
                increment += softplus_difference(inputs, beta_from, beta_to)
            states[l] = sampling.bernoulli(tf.sigmoid(high), sampling.step_seed(seed, 0, 1 + l))
        for l in self.odd:
            states[l] = sampling.bernoulli(tf.sigmoid(beta_to * self._input(states, l)),
                                           sampling.step_seed(seed, 0, 1 + l))
        return increment, self._join(states)


class DBMInterpolationPath(_OddLayerPath):
    """Eq. (3.10): the geometric path between two DBMs A and B of one architecture, odd layers
    annealed, even layers summed out as in Eq. (3.9).

    The intermediate model at beta is the DBM whose parameters are (1 - beta) theta_A +
    beta theta_B (the energy is linear in the parameters, so this is p_A^(1 - beta) p_B^beta
    on the whole state), and::

        log f_beta(h_odd) = sum_{l odd} ((1 - beta) b_l^A + beta b_l^B).h_l
                            + sum_{l even} sum_j softplus((1 - beta) x_l^A + beta x_l^B)_j

    with x_l^M = b_l^M + h_{l-1} W_l^M + h_{l+1} (W_{l+1}^M)^T the input of even layer l under
    model M. AIS along it from samples of A estimates log Z_B - log Z_A: two models near each
    other (a DBM and the pre-trained DBM it started from) are far closer than a DBM and a
    base-rate model, so the anneal has far less ground to cover. Its start states must be
    samples of A (``state_from_samples``); there is no exact ``initial_state`` and no
    closed-form ``log_base_partition``.
    """

    def __init__(self, start, end):
        if list(start.layer_sizes) != list(end.layer_sizes):
            raise ValueError(f"the two DBMs must have the same layer sizes to anneal between "
                             f"them; got {list(start.layer_sizes)} and "
                             f"{list(end.layer_sizes)}.")
        super().__init__(end.layer_sizes)
        self.start = start
        self.parameters = [_dbm_parameters(start, "start "), _dbm_parameters(end, "end ")]
        self.odd_bias_gap = {l: self.parameters[1][2][l] - self.parameters[0][2][l]
                             for l in self.odd}

    def state_from_samples(self, samples):
        """Samples ``[v, h_1, ..., h_L]`` of the start model -> its odd layers."""
        states = self.start.check_layer_states(samples, "start_samples")
        return self._join({l: tf.constant(states[l]) for l in self.odd})

    def _inputs(self, states, l):
        """Layer l's input under A and under B, from whichever neighbours are in states."""
        return [_layer_input(*parameters, states, l) for parameters in self.parameters]

    def step(self, odd, beta_from, beta_to, seed):
        """Weight increment log f_to - log f_from at the odd state, then a Gibbs sweep of
        the DBM at beta_to (even layers given odd, odd given even)."""
        states = self._split(odd)
        increment = (beta_to - beta_from) * sum(
            tf.linalg.matvec(states[l], self.odd_bias_gap[l]) for l in self.odd)
        for l in self.even:
            x_a, x_b = self._inputs(states, l)
            low = x_a + beta_from * (x_b - x_a)
            high = x_a + beta_to * (x_b - x_a)
            increment += tf.reduce_sum(tf.nn.softplus(high) - tf.nn.softplus(low), -1)
            states[l] = sampling.bernoulli(tf.sigmoid(high), sampling.step_seed(seed, 0, 1 + l))
        for l in self.odd:
            x_a, x_b = self._inputs(states, l)
            states[l] = sampling.bernoulli(tf.sigmoid(x_a + beta_to * (x_b - x_a)),
                                           sampling.step_seed(seed, 0, 1 + l))
        return increment, self._join(states)
