"""Cheap training monitors for energy models: pseudo-likelihood, reconstruction error and
the free-energy gap (Hinton 2010, sections 5 and 6). Used by ``01_rbm.ipynb``.

    (1.17) log PL(v) = sum_i log p(v_i | v_-i) = sum_i log sigmoid(F(v with bit i flipped) - F(v))
    (1.18) gap = mean F(v_heldout) - mean F(v_train): grows when the model overfits.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from course_lib.checks import check_positive_int, check_seed


def pseudo_log_likelihood(model, v, *, num_bits=None, seed=0, batch_size=500):
    """Eq. (1.17): mean log pseudo-likelihood of binary ``v`` (nats per example).

    Args:
        model: a ``BernoulliRBM``.
        v: (n, D) binary data.
        num_bits: ``None`` sums all D terms exactly; an int m instead averages m bits
            drawn uniformly per example and scales by D (an unbiased estimate).
        seed: for the bit choice when ``num_bits`` is given, an integer >= 0.
        batch_size: rows evaluated at once.
    """
    if num_bits is not None:
        num_bits = check_positive_int(num_bits, "num_bits")
    seed = check_seed(seed)
    batch_size = check_positive_int(batch_size, "batch_size")
    v = model.check_visible(v)
    if not np.all((v == 0) | (v == 1)):
        raise ValueError("pseudo_log_likelihood needs binary data (values 0 or 1).")
    n, d = v.shape
    width = d if num_bits is None else num_bits
    chosen = (None if num_bits is None else
              np.random.default_rng(seed).integers(0, d, size=(n, num_bits)).astype(np.int32))

    def bits(i):
        """The bit indices of rows i .. i + batch_size: every bit, or the drawn ones."""
        if chosen is None:
            return np.broadcast_to(np.arange(d, dtype=np.int32), (len(v[i:i + batch_size]), d))
        return chosen[i:i + batch_size]

    @tf.function(input_signature=[tf.TensorSpec((None, d), tf.float32),
                                  tf.TensorSpec((None, width), tf.int32)])
    def batch_log_pl(vb, ib):
        """sum_j log sigmoid(F(v with bit ib[:, j] flipped) - F(v)) per row: one compiled
        loop over the bits (float32 free energies, float64 sums)."""
        free = tf.cast(model.free_energy(vb), tf.float64)

        def add_bit(j, total):
            flip = tf.one_hot(ib[:, j], d, dtype=vb.dtype) * (1.0 - 2.0 * vb)
            gap = tf.cast(model.free_energy(vb + flip), tf.float64) - free
            return j + 1, total + tf.math.log_sigmoid(gap)

        _, total = tf.while_loop(lambda j, _: j < tf.shape(ib)[1], add_bit,
                                 (tf.constant(0), tf.zeros_like(free)))
        return total

    total = np.concatenate([batch_log_pl(tf.constant(v[i:i + batch_size]),
                                         tf.constant(bits(i))).numpy()
                            for i in range(0, n, batch_size)])
    return float(total.mean() * (d / width))


def reconstruction_error(model, v, batch_size=1000):
    """Mean squared error per example of the one-step reconstruction p(v | h), h ~ p(h | v)."""
    batch_size = check_positive_int(batch_size, "batch_size")
    v = model.check_visible(v)
    errors = [float(model.reconstruction_error(tf.constant(v[i:i + batch_size]))) *
              len(v[i:i + batch_size]) for i in range(0, len(v), batch_size)]
    return float(np.sum(errors) / len(v))


def free_energy_gap(model, v_train, v_heldout, batch_size=1000):
    """Eq. (1.18): mean F(held-out) - mean F(train subset of the same size)."""
    batch_size = check_positive_int(batch_size, "batch_size")
    v_train = model.check_visible(v_train, "v_train")
    v_heldout = model.check_visible(v_heldout, "v_heldout")

    def mean_free(v):
        return float(np.concatenate([np.asarray(model.free_energy(tf.constant(v[i:i + batch_size])))
                                     for i in range(0, len(v), batch_size)]).mean())
    n = min(len(v_train), len(v_heldout))
    return mean_free(v_heldout[:n]) - mean_free(v_train[:n])
