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

MAX_EXACT_HIDDEN = 30


def all_binary_states(n, start=0, stop=None, dtype="float32"):
    """Rows are the binary expansions of ``start .. stop-1`` over ``n`` bits (LSB first)."""
    stop = 2**n if stop is None else stop
    codes = np.arange(start, stop, dtype=np.int64)[:, None]
    return ((codes >> np.arange(n, dtype=np.int64)) & 1).astype(dtype)


def _hidden_chunk(n_hidden, start, size):
    codes = tf.range(start, start + size, dtype=tf.int64)[:, None]
    bits = tf.bitwise.bitwise_and(tf.bitwise.right_shift(codes, tf.range(n_hidden,
                                                                         dtype=tf.int64)), 1)
    return tf.cast(bits, tf.float32)


def exact_log_partition(model, chunk_size=2**14):
    """Eq. (1.12): log Z of an RBM by summing exp(-F_h(h)) over all 2^H hidden states.

    Args:
        model: a ``BernoulliRBM`` or ``GaussianBernoulliRBM`` (anything with
            ``n_hidden`` and ``hidden_free_energy``).
        chunk_size: hidden states evaluated at once.

    Returns:
        log Z as a Python float (computed in float64 accumulation across chunks).

    Raises:
        ValueError: if the model has more than ``MAX_EXACT_HIDDEN`` hidden units.
    """
    n_hidden = int(model.n_hidden)
    if n_hidden > MAX_EXACT_HIDDEN:
        raise ValueError(f"exact enumeration needs at most {MAX_EXACT_HIDDEN} hidden units "
                         f"(2^{MAX_EXACT_HIDDEN} states); this model has {n_hidden}. "
                         "Use ais_log_partition instead.")
    total = 2**n_hidden
    chunk_size = min(2 ** int(np.log2(max(int(chunk_size), 1))), total)  # divides 2^H

    @tf.function
    def chunk_logsumexp(start):
        return tf.reduce_logsumexp(-model.hidden_free_energy(_hidden_chunk(n_hidden, start,
                                                                           chunk_size)))

    parts = [float(chunk_logsumexp(tf.constant(s, tf.int64)))
             for s in range(0, total, chunk_size)]
    return float(np.logaddexp.reduce(np.asarray(parts, dtype=np.float64)))


def exact_log_likelihood(model, v, log_z=None, batch_size=1000):
    """Mean log p(v) = mean(-F(v)) - log Z over the rows of ``v`` (nats per example).

    Args:
        model: an RBM.
        v: (n, D) data; validated by ``model.check_visible``.
        log_z: a known log Z (exact or AIS); computed exactly when None.
        batch_size: rows per free-energy evaluation.
    """
    v = model.check_visible(v)
    if log_z is None:
        log_z = exact_log_partition(model)
    neg_free = [np.asarray(-model.free_energy(tf.constant(v[i:i + batch_size])), np.float64)
                for i in range(0, len(v), batch_size)]
    return float(np.concatenate(neg_free).mean() - log_z)
