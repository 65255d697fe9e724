"""Annealed importance sampling (AIS) for the log partition function, forward and reverse.

Neal 2001; Salakhutdinov & Murray 2008 (RBMs); Burda, Grosse & Salakhutdinov 2015 (reverse
AIS as a conservative estimate). Used by ``01_rbm.ipynb`` (500 hidden units) and the DBN/DBM
chapters, which supply their own annealing paths.

Equations (numbered as in the RBM notebook)::

    (1.13) f_beta(v) = exp((1 - beta) b_A.v + beta b.v) prod_j (1 + exp(beta (c_j + (v W)_j)))
           the unnormalized marginal of the RBM with parameters scaled by beta, mixed with a
           base-rate model A (visible biases b_A, no weights); at beta = 0 the H hidden units
           are free, so log Z_0 = sum softplus(b_A) + H log 2
    (1.14) w = prod_k f_{beta_k}(v_{k-1}) / f_{beta_{k-1}}(v_{k-1}),  v_k ~ T_{beta_k}(. | v_{k-1})
    (1.15) log Z_B ~= log Z_A + log mean_m w^(m);   error bars log(mean(w) +- 3 std(w)/sqrt(M))
    (1.16) reverse: start from (approximate) samples of the RBM, anneal beta from 1 to 0:
           log Z_B ~= log Z_A - log mean_m w_rev^(m)

Forward AIS is unbiased in Z, so by Jensen's inequality it *underestimates* log Z on average
and overestimates log-likelihood. Reverse AIS overestimates log Z on average when its start
states are exact model samples, giving a conservative (lower) log-likelihood; here they come
from long Gibbs chains, so it is conservative only as far as those chains have mixed.

DBM (Salakhutdinov & Hinton 2009, numbered as in the DBM notebook): the annealed states are
the odd layers; the even layers (v included) are summed out analytically, Eq. (3.8)::

    (3.9) log f_beta(h_odd) = beta sum_{l odd} b_l.h_l
                              + sum_j softplus((1 - beta) b_A,j + beta (b_0 + h_1 W_1^T)_j)
                              + sum_{l even > 0} sum_j softplus(beta (b_l + in_l)_j)
          at beta = 0 every hidden unit is free: log Z_0 = sum softplus(b_A) + sum_l n_l log 2

A path supplies ``initial_state(num_chains, seed)``, ``log_base_partition()``,
``state_from_samples(samples)`` (for reverse AIS) and
``step(state, beta_from, beta_to, seed) -> (log weight increment, new state)``; :func:`anneal`
runs the whole schedule inside one ``tf.while_loop`` with stateless seeds.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import tensorflow as tf

from course_lib import sampling


def published_schedule():
    """Inverse temperatures of Salakhutdinov & Murray 2008: steps of 1e-3 to 0.5, 1e-4 to
    0.9 and 1e-5 to 1.0; 14,501 distributions (14,500 transitions)."""
    return np.concatenate([np.linspace(0.0, 0.5, 501), np.linspace(0.5, 0.9, 4001)[1:],
                           np.linspace(0.9, 1.0, 10001)[1:]]).astype("float32")


def base_rate_visible_bias(v_train, smoothing=0.005):
    """b_A = logit of the smoothed training pixel means (the base-rate model of Eq. 1.13)."""
    v_train = np.asarray(v_train, dtype=np.float64)
    if v_train.ndim != 2:
        raise ValueError(f"v_train must be (n, D); got shape {v_train.shape}.")
    p = (v_train.mean(axis=0) + smoothing) / (1.0 + 2.0 * smoothing)
    return np.log(p / (1.0 - p)).astype("float32")


@dataclass
class AISResult:
    """An AIS estimate of log Z with the 3-sigma interval of Eq. (1.15)."""

    log_z: float
    log_z_low: float
    log_z_high: float
    log_weights: np.ndarray
    num_distributions: int
    direction: str

    def __str__(self):
        return (f"{self.direction} AIS: log Z = {self.log_z:.3f} "
                f"[{self.log_z_low:.3f}, {self.log_z_high:.3f}] (+-3 sigma, "
                f"{len(self.log_weights)} chains, {self.num_distributions} distributions)")


def log_mean_exp_with_bars(log_w, num_sigma=3.0):
    """log mean exp(log_w) and log(mean(w) -+ num_sigma * std(w) / sqrt(M)), stably."""
    log_w = np.asarray(log_w, dtype=np.float64)
    shift = log_w.max()
    w = np.exp(log_w - shift)
    mean, err = w.mean(), num_sigma * w.std() / math.sqrt(len(w))
    low = math.log(mean - err) + shift if mean > err else -math.inf
    return math.log(mean) + shift, low, math.log(mean + err) + shift


class RBMAnnealingPath:
    """Eq. (1.13) for a ``BernoulliRBM``: from the base-rate model A to the RBM B."""

    def __init__(self, model, base_visible_bias):
        base = np.asarray(base_visible_bias, dtype="float32")
        if base.shape != (model.n_visible,):
            raise ValueError(f"base_visible_bias must have shape ({model.n_visible},); "
                             f"got {base.shape}.")
        self.model = model
        self.base_bias = tf.constant(base)
        self.W, self.b, self.c = (tf.identity(t) for t in model.parameters())

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
        visible = (beta_to - beta_from) * tf.linalg.matvec(v, self.b - self.base_bias)
        hidden = tf.nn.softplus(beta_to * pre) - tf.nn.softplus(beta_from * pre)
        return visible + tf.reduce_sum(hidden, axis=-1)

    def step(self, v, beta_from, beta_to, seed):
        """Weight increment log f_to(v) - log f_from(v), then a Gibbs sweep at beta_to."""
        pre = tf.matmul(v, self.W) + self.c
        increment = self.log_f_ratio(v, pre, beta_from, beta_to)
        h = sampling.bernoulli(tf.sigmoid(beta_to * pre), sampling.step_seed(seed, 0, 1))
        logits = ((1.0 - beta_to) * self.base_bias
                  + beta_to * (tf.matmul(h, self.W, transpose_b=True) + self.b))
        return increment, sampling.bernoulli(tf.sigmoid(logits), sampling.step_seed(seed, 0, 2))


class DBMAnnealingPath:
    """Eq. (3.9) for a ``DBM``: from the base-rate model A to the DBM, odd layers annealed."""

    def __init__(self, model, base_visible_bias):
        base = np.asarray(base_visible_bias, dtype="float32")
        if base.shape != (model.layer_sizes[0],):
            raise ValueError(f"base_visible_bias must have shape ({model.layer_sizes[0]},); "
                             f"got {base.shape}.")
        self.model = model
        self.base_bias = tf.constant(base)
        self.W = [tf.identity(w) for w in model.W]
        self.b = [tf.identity(b) for b in model.biases]
        self.num_layers = model.num_layers
        self.odd = list(range(1, self.num_layers + 1, 2))
        self.even = list(range(0, self.num_layers + 1, 2))

    def log_base_partition(self):
        """log Z_A + (number of hidden units) log 2, Eq. (3.9) at beta = 0."""
        log_za = np.sum(np.logaddexp(0.0, self.base_bias.numpy().astype(np.float64)))
        return float(log_za + sum(self.model.layer_sizes[1:]) * math.log(2.0))

    def _split(self, odd):
        sizes = [self.model.layer_sizes[l] for l in self.odd]
        return dict(zip(self.odd, tf.split(odd, sizes, axis=-1), strict=True))

    def _input(self, states, l):
        """b_l + h_{l-1} W_l + h_{l+1} W_{l+1}^T, from whichever neighbours are in states."""
        total = self.b[l]
        if l > 0:
            total = total + tf.matmul(states[l - 1], self.W[l - 1])
        if l < self.num_layers:
            total = total + tf.matmul(states[l + 1], self.W[l], transpose_b=True)
        return total

    def initial_state(self, num_chains, seed):
        size = sum(self.model.layer_sizes[l] for l in self.odd)
        return sampling.bernoulli(tf.fill((num_chains, size), 0.5), seed)

    def state_from_samples(self, samples):
        """Model samples ``[v, h_1, ..., h_L]`` (e.g. ``dbm.chain_states()``) -> odd layers."""
        if len(samples) != self.num_layers + 1:
            raise ValueError(f"model_samples must be a list of {self.num_layers + 1} layer "
                             f"states [v, h_1, ...]; got {len(samples)}.")
        return tf.concat([tf.constant(np.asarray(samples[l], "float32")) for l in self.odd], -1)

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
            else:
                low, high = beta_from * inputs, beta_to * inputs
            increment += tf.reduce_sum(tf.nn.softplus(high) - tf.nn.softplus(low), -1)
            states[l] = sampling.bernoulli(tf.sigmoid(high), sampling.step_seed(seed, 0, 1 + l))
        for l in self.odd:
            states[l] = sampling.bernoulli(tf.sigmoid(beta_to * self._input(states, l)),
                                           sampling.step_seed(seed, 0, 1 + l))
        return increment, tf.concat([states[l] for l in self.odd], -1)


def anneal(path, betas, state, seed, jit_compile=False):
    """Runs ``path.step`` along ``betas`` from ``state``; returns the (M,) log weights.

    ``jit_compile`` is off by default: on CPUs, XLA's matmul and random kernels measured
    about twice slower here than TensorFlow's own for this loop.
    """
    betas = tf.constant(np.asarray(betas, dtype="float32"))
    base_seed = sampling.as_stateless_seed(int(seed))

    @tf.autograph.experimental.do_not_convert  # an explicit tf.while_loop; nothing to convert
    def run(state):
        def body(k, state, log_w):
            increment, state = path.step(state, betas[k - 1], betas[k],
                                         sampling.step_seed(base_seed, k))
            return k + 1, state, log_w + tf.cast(increment, tf.float64)

        # float64 accumulation: 20,000 float32 increments would drift by up to ~0.1 nats.
        _, _, log_w = tf.while_loop(
            lambda k, *_: k < tf.shape(betas)[0], body,
            (tf.constant(1), state, tf.zeros(tf.shape(state)[:1], tf.float64)))
        return log_w

    return tf.function(run, jit_compile=jit_compile)(state).numpy()


def annealing_path(model, base_visible_bias):
    """The path for ``model``: :class:`DBMAnnealingPath` for a DBM, else the RBM path."""
    if hasattr(model, "odd_free_energy"):
        return DBMAnnealingPath(model, base_visible_bias)
    return RBMAnnealingPath(model, base_visible_bias)


def dbm_schedule(num_distributions=20_000):
    """A DBM schedule like the paper's: the published three-stage spacing (Salakhutdinov &
    Murray 2008) stretched or shrunk to ``num_distributions`` (20,000 in Salakhutdinov &
    Hinton 2009)."""
    published = published_schedule()
    grid = np.linspace(0.0, 1.0, len(published))
    betas = np.interp(np.linspace(0.0, 1.0, int(num_distributions)), grid, published)
    betas[0], betas[-1] = 0.0, 1.0
    return betas.astype("float32")


def _check_schedule(betas):
    betas = published_schedule() if betas is None else np.asarray(betas, dtype="float32")
    if betas.ndim != 1 or len(betas) < 2 or betas[0] != 0.0 or betas[-1] != 1.0 or np.any(
            np.diff(betas) <= 0):
        raise ValueError("betas must increase strictly from 0.0 to 1.0; got "
                         f"{len(betas)} values from {betas[:1]} to {betas[-1:]}.")
    return betas


def ais_log_partition(model, base_visible_bias, *, num_chains=100, betas=None, seed=0,
                      path=None):
    """Eqs. (1.13)-(1.15): forward AIS estimate of log Z for an RBM.

    Args:
        model: a ``BernoulliRBM`` (or any model, given a matching ``path``).
        base_visible_bias: b_A, see :func:`base_rate_visible_bias`.
        num_chains: M, independent annealing runs (100 in the papers).
        betas: inverse temperatures from 0 to 1; default :func:`published_schedule`.
        seed: Python int; the same seed gives the same estimate.
        path: an annealing path; default :func:`annealing_path` for the model.
    """
    betas = _check_schedule(betas)
    path = path or annealing_path(model, base_visible_bias)
    state = path.initial_state(num_chains, sampling.step_seed(
        sampling.as_stateless_seed(int(seed)), -1))
    log_w = anneal(path, betas, state, seed)
    mean, low, high = log_mean_exp_with_bars(log_w)
    log_za = path.log_base_partition()
    return AISResult(log_za + mean, log_za + low, log_za + high, log_w, len(betas), "forward")


def reverse_ais_log_partition(model, base_visible_bias, model_samples, *, betas=None, seed=0,
                              path=None):
    """Eq. (1.16): reverse AIS from samples of the model; a conservative log Z estimate.

    Args:
        model_samples: (M, D) states drawn from the model (e.g. persistent chains or the
            end of long Gibbs runs), or for a DBM the list of layer states
            ``dbm.chain_states()``; one annealing run starts from each.
    """
    betas = _check_schedule(betas)
    path = path or annealing_path(model, base_visible_bias)
    state = path.state_from_samples(model_samples)
    log_w = anneal(path, betas[::-1].copy(), state, seed)
    mean, low, high = log_mean_exp_with_bars(log_w)
    log_za = path.log_base_partition()
    # log Z_B = log Z_A - log mean w_rev: the interval flips.
    return AISResult(log_za - mean, log_za - high, log_za - low, log_w, len(betas), "reverse")
