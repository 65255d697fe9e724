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

The annealing paths themselves (Eq. 1.13 for an RBM, Eq. 3.9 for a DBM) belong to the
models: ``model.annealing_path(base_visible_bias)`` returns one (see
``course_lib.boltzmann.annealing``). A path supplies ``initial_state(num_chains, seed)``,
``log_base_partition()``, ``state_from_samples(samples)`` (for reverse AIS) and
``step(state, beta_from, beta_to, seed) -> (log weight increment, new state)``; :func:`anneal`
runs the schedule as compiled ``tf.while_loop`` chunks with stateless per-transition seeds,
showing a progress bar between chunks on long runs (``verbose``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import tensorflow as tf

from course_lib import sampling
from course_lib.checks import (
    check_finite_float,
    check_increasing_schedule,
    check_positive_int,
    check_probabilities,
    check_seed,
)


def published_schedule():
    """Inverse temperatures of Salakhutdinov & Murray 2008: steps of 1e-3 to 0.5, 1e-4 to
    0.9 and 1e-5 to 1.0; 14,501 distributions (14,500 transitions)."""
    return np.concatenate([np.linspace(0.0, 0.5, 501), np.linspace(0.5, 0.9, 4001)[1:],
                           np.linspace(0.9, 1.0, 10001)[1:]]).astype("float32")


def base_rate_visible_bias(v_train, smoothing=0.005):
    """b_A = logit of the smoothed training pixel means (the base-rate model of Eq. 1.13).

    With pixel means m, p = (m + s) / (1 + 2 s) and b_A = log(p / (1 - p)) =
    log(m + s) - log(1 - m + s), computed in that second form so that a pixel that is
    always on (m = 1) loses nothing to rounding.

    Args:
        v_train: (n, D) binary data or probabilities in [0, 1].
        smoothing: s > 0, pseudo-counts that keep every logit finite: with s = 0, a pixel
            that is never on (MNIST has many) gets b_A = -inf and AIS returns NaN.

    Returns:
        (D,) float32 array, every value finite.
    """
    smoothing = check_finite_float(smoothing, "smoothing", above=0.0)
    v_train = check_probabilities(v_train, name="v_train")
    means = v_train.mean(axis=0, dtype=np.float64)
    bias = (np.log(means + smoothing) - np.log(1.0 - means + smoothing)).astype("float32")
    if not np.isfinite(bias).all():               # a smoothing too small for float32
        raise ValueError(f"smoothing={smoothing!r} makes some base-rate logits infinite in "
                         "float32; use a larger smoothing (the default is 0.005).")
    return bias


@dataclass
class AISResult:
    """An AIS estimate of log Z with the 3-sigma interval of Eq. (1.15)."""

    log_z: float
    log_z_low: float
    log_z_high: float
    log_weights: np.ndarray
    num_distributions: int
    direction: str

    @property
    def log_z_sd(self):
        """The delta-method standard deviation of log Z: std(w) / (mean(w) sqrt(M)), in nats.

        Finite even when the 3-sigma interval of Eq. (1.15) is unbounded (which happens as
        soon as mean(w) < 3 std(w) / sqrt(M)), so it is what a tolerance can be built from."""
        w = np.exp(self.log_weights - np.max(self.log_weights))
        return float(w.std(ddof=1) / (w.mean() * math.sqrt(len(w))))

    def __str__(self):
        what = ("AIS between models: log Z_end - log Z_start" if self.direction == "ratio"
                else f"{self.direction} AIS: log Z")
        return (f"{what} = {self.log_z:.3f} "
                f"[{self.log_z_low:.3f}, {self.log_z_high:.3f}] (+-3 sigma, "
                f"{len(self.log_weights)} chains, {self.num_distributions} distributions)")


def log_mean_exp_with_bars(log_w, num_sigma=3.0):
    """log mean exp(log_w) and log(mean(w) -+ num_sigma * std(w) / sqrt(M)), stably.

    Raises:
        ValueError: if ``log_w`` is empty or holds NaN or +inf (a diverged model, a bad
            base rate), rather than returning NaN.
    """
    num_sigma = check_finite_float(num_sigma, "num_sigma", at_least=0.0)
    log_w = np.asarray(log_w, dtype=np.float64).reshape(-1)
    if log_w.size == 0:
        raise ValueError("log_w must hold at least one log weight; got none.")
    bad = int(np.isnan(log_w).sum() + np.isposinf(log_w).sum())
    if bad:
        raise ValueError(f"{bad} of {log_w.size} AIS log weights are NaN or +inf; check that "
                         "the model's parameters and the base-rate biases are finite.")
    shift = log_w.max()
    w = np.exp(log_w - shift)
    mean, err = w.mean(), num_sigma * w.std() / math.sqrt(len(w))
    low = math.log(mean - err) + shift if mean > err else -math.inf
    return math.log(mean) + shift, low, math.log(mean + err) + shift


def anneal(path, betas, state, seed, jit_compile="auto", *, chunk_size=None, verbose="auto"):
    """Runs ``path.step`` along ``betas`` from ``state``; returns the (M,) log weights.

    The transitions run as compiled chunks (:func:`course_lib.sampling.run_in_chunks`, one
    trace per call) with a progress bar between them; transition k always gets
    ``step_seed(seed, k)``, so ``chunk_size`` never changes the result.

    Args:
        path: an annealing path (see the module docstring).
        betas: the inverse temperatures, in the order to walk them.
        state: the start state of the M chains.
        seed: Python int.
        jit_compile: "auto" (XLA when TensorFlow sees a GPU, as ``compile()`` does; off on a
            CPU, where XLA's matmul and random kernels measured about twice slower than
            TensorFlow's own for this loop), True or False.
        chunk_size: transitions per compiled call; default about a hundredth of the schedule.
        verbose: "auto" (a bar once the run has lasted ``sampling.AUTO_PROGRESS_DELAY``
            seconds), 0 / False, 1 / True or 2, as in ``keras.Model.fit``.
    """
    betas = tf.constant(np.asarray(betas, dtype="float32"))
    base_seed = sampling.as_stateless_seed(seed)

    def transition(k, carry):
        state, log_w = carry
        increment, state = path.step(state, betas[k - 1], betas[k],
                                     sampling.step_seed(base_seed, k))
        return state, log_w + tf.cast(increment, tf.float64)

    # float64 accumulation: 20,000 float32 increments would drift by up to ~0.1 nats.
    log_w = tf.zeros(tf.shape(state)[:1], tf.float64)
    _, log_w = sampling.run_in_chunks(transition, (state, log_w), 1, int(betas.shape[0]),
                                      chunk_size=chunk_size, verbose=verbose,
                                      unit_name="transition",
                                      jit_compile=sampling.resolve_jit_compile(jit_compile))
    return log_w.numpy()


def dbm_schedule(num_distributions=20_000):
    """A DBM schedule like the paper's: the published three-stage spacing (Salakhutdinov &
    Murray 2008) stretched or shrunk to ``num_distributions`` (20,000 in Salakhutdinov &
    Hinton 2009)."""
    num_distributions = check_positive_int(num_distributions, "num_distributions", minimum=2)
    published = published_schedule()
    grid = np.linspace(0.0, 1.0, len(published))
    betas = np.interp(np.linspace(0.0, 1.0, num_distributions), grid, published)
    betas[0], betas[-1] = 0.0, 1.0
    return betas.astype("float32")


def _check_schedule(betas):
    """The inverse temperatures: finite, from 0 to 1, strictly increasing (a repeated beta
    would be a wasted transition)."""
    if betas is None:
        return published_schedule()
    return check_increasing_schedule(betas, "betas", start=0.0, stop=1.0, strict=True)


def ais_log_partition(model, base_visible_bias, *, num_chains=100, betas=None, seed=0,
                      path=None, verbose="auto", jit_compile="auto"):
    """Eqs. (1.13)-(1.15): forward AIS estimate of log Z for an RBM.

    Args:
        model: a ``BernoulliRBM`` (or any model, given a matching ``path``).
        base_visible_bias: b_A, see :func:`base_rate_visible_bias`.
        num_chains: M, independent annealing runs (100 in the papers).
        betas: inverse temperatures from 0 to 1; default :func:`published_schedule`.
        seed: Python int; the same seed gives the same estimate.
        path: an annealing path; default ``model.annealing_path(base_visible_bias)``.
        verbose: the progress bar over the transitions: "auto" (shown once the run has
            lasted ``sampling.AUTO_PROGRESS_DELAY`` seconds), 0 / False (never), 1 / True
            (always) or 2 (one line at the end), as in ``keras.Model.fit``.
        jit_compile: XLA for the annealing loop: "auto" (when TensorFlow sees a GPU, as
            ``keras.Model.compile`` decides), True or False.
    """
    num_chains = check_positive_int(num_chains, "num_chains")
    seed = check_seed(seed)
    verbose = sampling.check_verbose(verbose)
    jit_compile = sampling.resolve_jit_compile(jit_compile)
    betas = _check_schedule(betas)
    path = path or model.annealing_path(base_visible_bias)
    state = path.initial_state(num_chains, sampling.step_seed(
        sampling.as_stateless_seed(seed), -1))
    log_w = anneal(path, betas, state, seed, jit_compile, verbose=verbose)
    mean, low, high = log_mean_exp_with_bars(log_w)
    log_za = path.log_base_partition()
    return AISResult(log_za + mean, log_za + low, log_za + high, log_w, len(betas), "forward")


def reverse_ais_log_partition(model, base_visible_bias, model_samples, *, betas=None, seed=0,
                              path=None, verbose="auto", jit_compile="auto"):
    """Eq. (1.16): reverse AIS from samples of the model; a conservative log Z estimate.

    Args:
        model_samples: (M, D) states drawn from the model (e.g. persistent chains or the
            end of long Gibbs runs), or for a DBM the list of layer states
            ``dbm.chain_states()``; one annealing run starts from each.
        betas, seed, path, verbose, jit_compile: as in :func:`ais_log_partition`.
    """
    path = path or model.annealing_path(base_visible_bias)
    betas = _check_schedule(betas)
    mean, low, high, log_w = _anneal_from_samples(path, model_samples, betas[::-1].copy(), seed,
                                                  verbose, jit_compile)
    log_za = path.log_base_partition()
    # log Z_B = log Z_A - log mean w_rev: the interval flips.
    return AISResult(log_za - mean, log_za - high, log_za - low, log_w, len(betas), "reverse")


def ais_log_partition_ratio(start, end, start_samples, *, betas=None, seed=0, verbose="auto",
                            jit_compile="auto"):
    """log Z_end - log Z_start by AIS along ``end.annealing_path_from(start)`` (for DBMs, Eq.
    3.10: the parameters move from ``start``'s to ``end``'s), from samples of ``start``.

    Like forward AIS it is unbiased in Z_end / Z_start when its start states are exact samples
    of ``start``, so on average it underestimates the log ratio. Run in both directions (the
    models swapped, each from its own samples) it brackets log Z_end:
    log Z_start + ratio(start -> end) <~ log Z_end <~ log Z_start - ratio(end -> start).

    Args:
        start, end: the two models (for DBMs, the same layer sizes).
        start_samples: states drawn from ``start`` (for a DBM, the list of layer states
            ``gibbs_states`` returns); one annealing run starts from each.
        betas, seed, verbose, jit_compile: as in :func:`ais_log_partition`.

    Returns:
        An :class:`AISResult` whose ``log_z`` and interval hold the log ratio (direction
        ``"ratio"``); the uncertainty of log Z_start is not in it.
    """
    betas = _check_schedule(betas)
    mean, low, high, log_w = _anneal_from_samples(end.annealing_path_from(start), start_samples,
                                                  betas, seed, verbose, jit_compile)
    return AISResult(mean, low, high, log_w, len(betas), "ratio")


def _anneal_from_samples(path, samples, betas, seed, verbose, jit_compile):
    """``path`` walked along ``betas`` (in the order given) from ``samples``: the log mean
    weight with its 3-sigma interval, and the log weights."""
    seed = check_seed(seed)
    verbose = sampling.check_verbose(verbose)
    jit_compile = sampling.resolve_jit_compile(jit_compile)
    log_w = anneal(path, betas, path.state_from_samples(samples), seed, jit_compile,
                   verbose=verbose)
    return (*log_mean_exp_with_bars(log_w), log_w)
