"""Evaluation of latent-variable models trained by variational bounds (Chapter 4).

* :func:`importance_weighted_bound`: Eq. (4.7) for any k, per example, with bounded
  memory: examples go in batches and the k draws in chunks whose log-sum-exp is
  accumulated in float64 (k = 5000 is the protocol of Burda et al. 2016 for test NLL);
  a progress bar over the batches on long runs (``verbose``).
* :func:`active_units`: A_u = Cov_x(E_{q(z|x)}[z_u]) > 0.01 (Burda et al., Sec. 5.2): the
  latent units the model uses; the others have collapsed onto the prior.
* :func:`kl_per_unit`: the mean over x of each unit's KL(q(z_u | x) || p(z_u)), the
  per-unit view of posterior collapse.

Works with any model that has ``log_importance_weights(x, y, *, num_samples, seed)`` (shape
(k, n)), ``encode(x, y) -> (mu, log_var)``, ``check_visible(x)`` and ``check_labels(y, n)``:
``course_lib.variational.vae.VAE``. Used by notebook 04.
"""

from __future__ import annotations

import math

import numpy as np
import tensorflow as tf
from keras import ops

from course_lib import sampling
from course_lib.checks import check_finite_float, check_positive_int, check_seed


def _batches(x, y, batch_size):
    for start in range(0, len(x), batch_size):
        stop = start + batch_size
        yield start, x[start:stop], None if y is None else y[start:stop]


def _checked(model, x, y):
    x = model.check_visible(x)
    return x, model.check_labels(y, len(x))


def importance_weighted_bound(model, x, *, num_samples, y=None, batch_size=100,
                              samples_per_chunk=500, seed=0, verbose="auto"):
    """Eq. (4.7): ``log (1/k) sum_{i<=k} p(x, z_i) / q(z_i | x)`` for every row of ``x``.

    Args:
        model: e.g. a :class:`course_lib.variational.vae.VAE`.
        x: (n, D) data; ``y``: its labels, for a conditional model.
        num_samples: k. k = 1 gives a one-sample ELBO estimate; the expected bound rises
            with k towards log p(x).
        batch_size: examples per call.
        samples_per_chunk: draws per call; memory is about
            ``batch_size * samples_per_chunk * D`` floats.
        seed: int; the same seed gives the same draws.
        verbose: the progress bar over the batches: "auto" (shown once the run has lasted
            ``sampling.AUTO_PROGRESS_DELAY`` seconds), 0 / False (never), 1 / True (always)
            or 2 (one line at the end), as in ``keras.Model.fit``.

    Returns:
        (n,) float64 numpy array of per-example bounds (nats). Their mean is the reported
        test log-likelihood bound; the negative of it is the "NLL" of the papers.
    """
    num_samples = check_positive_int(num_samples, "num_samples")
    batch_size = check_positive_int(batch_size, "batch_size")
    chunk = min(check_positive_int(samples_per_chunk, "samples_per_chunk"), num_samples)
    seed = check_seed(seed)
    verbose = sampling.check_verbose(verbose)
    x, y = _checked(model, x, y)
    base = sampling.as_stateless_seed(seed)
    progress = sampling.LoopProgress(math.ceil(len(x) / batch_size), verbose, "batch")

    @tf.function(reduce_retracing=True)
    def chunk_logsumexp(x, y, size, seed):
        log_w = model.log_importance_weights(x, y, num_samples=size, seed=seed)
        return ops.logsumexp(log_w, axis=0)

    out = np.empty(len(x), np.float64)
    for b, (start, xb, yb) in enumerate(_batches(x, y, batch_size)):
        total = np.full(len(xb), -np.inf)
        for c, first in enumerate(range(0, num_samples, chunk)):
            size = min(chunk, num_samples - first)
            lse = chunk_logsumexp(tf.constant(xb), None if yb is None else tf.constant(yb),
                                  size, sampling.step_seed(base, b, stream=c))
            total = np.logaddexp(total, ops.convert_to_numpy(lse).astype(np.float64))
        out[start:start + len(xb)] = total - math.log(num_samples)
        progress.update(b + 1)
    return out


def posterior_means_and_log_vars(model, x, *, y=None, batch_size=1000):
    """The encoder's (mu, log_var) for every row of ``x``, as float64 numpy arrays."""
    batch_size = check_positive_int(batch_size, "batch_size")
    x, y = _checked(model, x, y)
    parts = [model.encode(xb, yb) for _, xb, yb in _batches(x, y, batch_size)]
    mean = np.concatenate([ops.convert_to_numpy(m) for m, _ in parts]).astype(np.float64)
    log_var = np.concatenate([ops.convert_to_numpy(v) for _, v in parts]).astype(np.float64)
    return mean, log_var


def active_units(model, x, *, y=None, threshold=0.01, batch_size=1000):
    """Burda et al.'s activity statistic A_u = Var_x(E_q[z_u]) and the count above
    ``threshold``.

    Returns:
        ``(num_active, variances)``: an int and a (d,) array (one variance per unit).
    """
    threshold = check_finite_float(threshold, "threshold", at_least=0.0)
    mean, _ = posterior_means_and_log_vars(model, x, y=y, batch_size=batch_size)
    variances = mean.var(axis=0)
    return int((variances > threshold).sum()), variances


def kl_per_unit(model, x, *, y=None, batch_size=1000):
    """The mean over rows of KL(q(z_u | x) || N(0, 1)) for each latent unit u, (d,) array.

    Summed over u it is the KL term of the ELBO (4.4); a unit whose value is near 0 carries
    no information about x (posterior collapse).
    """
    mean, log_var = posterior_means_and_log_vars(model, x, y=y, batch_size=batch_size)
    return (0.5 * (mean**2 + np.exp(log_var) - log_var - 1.0)).mean(axis=0)
