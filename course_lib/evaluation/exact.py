"""Exact log partition function and log-likelihood of RBMs by enumerating hidden states.

Eq. (1.12) of the RBM notebook: with the hidden free energy F_h of Eq. (1.7)/(1.11),

    log Z = log sum_{h in {0,1}^H} exp(-F_h(h)),      log p(v) = -F(v) - log Z.

The 2^H states are enumerated in chunks of ``chunk_size`` so memory stays bounded (about
``chunk_size * D`` floats at a time) and combined with a running log-sum-exp. H up to about
25 is practical on a CPU (2^25 states x 784 visible units). Used by ``01_rbm.ipynb`` for the
CD/PCD/FPCD comparison and by the tests as the oracle for AIS.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from course_lib.checks import ArgumentTypeError, check_finite_float, check_positive_int, describe
from course_lib.sampling import all_binary_states, binary_states, check_verbose, run_in_chunks

MAX_EXACT_HIDDEN = 30


def exact_log_partition(model, chunk_size=2**14, *, verbose="auto"):
    """Eq. (1.12): log Z of an RBM by summing exp(-F_h(h)) over all 2^H hidden states.

    A binary RBM with fewer visible than hidden units is summed over its visible states with
    F(v) instead (the same Z). For a DBM the sum runs over the odd layers' states with
    ``odd_free_energy``, Eq. (3.8).

    Args:
        model: any model with ``enumerated_free_energy()``, which returns the number of
            binary units to enumerate and their free energy with every other unit summed
            out: an RBM (``BernoulliRBM``, ``GaussianBernoulliRBM``) or a ``DBM``.
        chunk_size: hidden states evaluated at once.
        verbose: the progress bar over the chunks: "auto" (shown once the run has lasted
            ``sampling.AUTO_PROGRESS_DELAY`` seconds), 0 / False, 1 / True or 2, as in
            ``keras.Model.fit``.

    Returns:
        log Z as a Python float (computed in float64 accumulation across chunks).

    Raises:
        ValueError: if the model has more than ``MAX_EXACT_HIDDEN`` hidden units.
    """
    try:
        enumerated_free_energy = model.enumerated_free_energy
    except AttributeError:
        raise ArgumentTypeError("model must offer enumerated_free_energy() (an RBM or a "
                                f"DBM); got {describe(model)}.") from None
    chunk_size = check_positive_int(chunk_size, "chunk_size")
    verbose = check_verbose(verbose)
    n_hidden, free_energy = enumerated_free_energy()
    if n_hidden > MAX_EXACT_HIDDEN:
        raise ValueError(f"exact enumeration needs at most {MAX_EXACT_HIDDEN} hidden units "
                         f"(2^{MAX_EXACT_HIDDEN} states); this model has {n_hidden}. "
                         "Use ais_log_partition instead.")
    total = 2**n_hidden
    chunk_size = min(2 ** int(np.log2(chunk_size)), total)  # a power of 2: divides 2^H

    def add_chunk(k, log_sum):
        """Chunk k's log-sum-exp (float32, as the free energies) added to the running sum
        in float64, in chunk order."""
        states = binary_states(n_hidden, tf.cast(k, tf.int64) * chunk_size, chunk_size)
        part = tf.cast(tf.reduce_logsumexp(-free_energy(states)), tf.float64)
        return tf.reduce_logsumexp(tf.stack([log_sum, part]))

    # Compiled loops over the chunks, with the bar advancing between calls (no host round
    # trip per chunk).
    log_sum = run_in_chunks(add_chunk, tf.constant(-np.inf, tf.float64), 0,
                            total // chunk_size, verbose=verbose, unit_name="chunk")
    return float(log_sum)


def exact_log_likelihood(model, v, log_z=None, batch_size=1000):
    """Mean log p(v) = mean log p*(v) - log Z over the rows of ``v`` (nats per example).

    Args:
        model: an RBM or a DBM: anything with ``check_visible``,
            ``unnormalized_log_prob`` (log p*(v) = -F(v) for an RBM; for a DBM the hidden
            layers summed out by enumeration) and, when ``log_z`` is None,
            ``enumerated_free_energy``.
        v: (n, D) data; validated by ``model.check_visible``.
        log_z: a known log Z (exact or AIS); computed exactly when None.
        batch_size: rows per evaluation.
    """
    batch_size = check_positive_int(batch_size, "batch_size")
    if log_z is not None:
        log_z = check_finite_float(log_z, "log_z")
    v = model.check_visible(v)
    if log_z is None:
        log_z = exact_log_partition(model)
    # One compiled call per batch (a DBM's marginal enumerates per image: eagerly, that
    # would be a host round trip per image).
    log_p_star = tf.function(model.unnormalized_log_prob, reduce_retracing=True)
    log_p = [np.asarray(log_p_star(tf.constant(v[i:i + batch_size])), np.float64)
             for i in range(0, len(v), batch_size)]
    return float(np.concatenate(log_p).mean() - log_z)


def _log_sigmoid_terms(x, logits):
    """sum_i log Bernoulli(x_i | sigmoid(logits_i)) over the last axis (numpy, float64)."""
    return np.sum(x * logits - np.logaddexp(0.0, logits), axis=-1)


def exact_dbn_bound(dbn, v, log_z_top=None):
    """Exact log p(v) and exact variational bound, Eq. (2.4), for a tiny DBN.

    Sums over every joint state of the directed hidden layers h_1..h_{L-1} (at most 20 units
    in all); p(h_{L-1}) is the top RBM's exact marginal.

    Args:
        dbn: a ``DBN``.
        v: (n, D) binary data.
        log_z_top: log Z of the top RBM; computed exactly when None.

    Returns:
        (log_p, bound): two (n,) float64 arrays, with ``bound <= log_p``.
    """
    if log_z_top is not None:
        log_z_top = check_finite_float(log_z_top, "log_z_top")
    v = dbn.check_visible(v).astype(np.float64)
    sizes = dbn.layer_sizes[1:-1]
    if sum(sizes) > 20:
        raise ValueError(f"exact_dbn_bound enumerates 2^{sum(sizes)} hidden states; use at most "
                         "20 units in the directed hidden layers.")
    if log_z_top is None:
        log_z_top = exact_log_partition(dbn.top)
    codes = all_binary_states(sum(sizes), dtype="float64")
    layers = np.split(codes, np.cumsum(sizes)[:-1], axis=1)
    weights = lambda ws: [np.asarray(w, np.float64) for w in ws]  # noqa: E731
    G, g = weights(dbn.generative_W), weights(dbn.generative_bias)
    R, r = weights(dbn.recognition_W), weights(dbn.recognition_bias)
    # Terms that depend on the hidden states only: (S,)
    log_p_hidden = -np.asarray(dbn.top.free_energy(tf.constant(layers[-1], tf.float32)),
                               np.float64) - log_z_top
    log_q_hidden = np.zeros(len(codes))
    for l in range(1, dbn.num_directed):
        log_p_hidden += _log_sigmoid_terms(layers[l - 1], layers[l] @ G[l].T + g[l])
        log_q_hidden += _log_sigmoid_terms(layers[l], layers[l - 1] @ R[l] + r[l])
    # Terms that involve v: (n, S)
    logits_v = layers[0] @ G[0].T + g[0]                      # (S, D)
    log_p = v @ logits_v.T - np.logaddexp(0.0, logits_v).sum(1) + log_p_hidden
    logits_h = v @ R[0] + r[0]                                # (n, n_1)
    log_q = (logits_h @ layers[0].T - np.logaddexp(0.0, logits_h).sum(1, keepdims=True)
             + log_q_hidden)
    q = np.exp(log_q)
    exact = np.logaddexp.reduce(log_p, axis=1)
    bound = np.sum(q * (log_p - log_q), axis=1)
    return exact, bound


MAX_EXACT_CHAIN_UNITS = 12   # 4,096 states: a 4,096 x 4,096 transition matrix


def exact_dae_chain(model):
    """The exact Markov chain of a denoising autoencoder on binary data, Eq. (7.7), by
    enumerating all 2^d states (d <= ``MAX_EXACT_CHAIN_UNITS``).

    T[x, x'] = sum_x~ C(x~ | x) P(x' | x~), through the model's ``log_corruption`` and
    ``reconstruct`` (factorial Bernoulli). Returns ``(states, transition, stationary)``:
    the (2^d, d) states in the order of ``sampling.all_binary_states``, the row-stochastic
    (2^d, 2^d) matrix T (float64) and its stationary distribution pi = pi T, the left
    eigenvector of eigenvalue 1, normalised to sum to 1 (unique when every transition has
    positive probability, as under salt-and-pepper noise)."""
    d = model.input_dim
    if d > MAX_EXACT_CHAIN_UNITS:
        raise ValueError(f"exact_dae_chain enumerates 2^d states; d = {d} is more than "
                         f"{MAX_EXACT_CHAIN_UNITS}.")
    states = all_binary_states(d)
    corruption = np.exp(np.asarray(model.log_corruption(states, states), np.float64)).T
    probs = np.clip(np.asarray(model.reconstruct(states), np.float64), 0.0, 1.0)
    log_p = states @ np.log(np.clip(probs, 1e-300, None)).T \
        + (1.0 - states) @ np.log(np.clip(1.0 - probs, 1e-300, None)).T   # [x', x~]
    transition = corruption @ np.exp(log_p).T                # [x, x~] @ [x~, x']
    values, vectors = np.linalg.eig(transition.T)
    stationary = np.abs(np.real(vectors[:, np.argmin(np.abs(values - 1.0))]))
    return states, transition, stationary / stationary.sum()
