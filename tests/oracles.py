"""Reference formulas for the RBM tests, written from the equations in plain numpy.

Nothing here imports course_lib: these are the independent oracles the tests compare the
library against (brute-force enumeration, Gaussian integrals on a grid, transition
matrices of the Gibbs chain).
"""

import itertools

import numpy as np


def binary_states(n):
    """All 2^n binary vectors as rows (order: itertools.product, first bit slowest)."""
    return np.array(list(itertools.product((0.0, 1.0), repeat=n)), dtype=np.float64)


def softplus(x):
    return np.logaddexp(0.0, x)


def sigmoid(x):
    return np.exp(-np.logaddexp(0.0, -x))


def logsumexp(x, axis=None):
    x = np.asarray(x, dtype=np.float64)
    m = np.max(x, axis=axis, keepdims=True)
    out = m + np.log(np.sum(np.exp(x - m), axis=axis, keepdims=True))
    return np.squeeze(out, axis=axis) if axis is not None else out.item()


# ----- Bernoulli-Bernoulli RBM ------------------------------------------------------------
def bernoulli_energy_table(W, b, c, V, Hs):
    """E(v, h) = -b.v - c.h - v W h for every row of V (axis 0) and of Hs (axis 1)."""
    return -(V @ b)[:, None] - (Hs @ c)[None, :] - V @ W @ Hs.T


def bernoulli_log_z(W, b, c):
    """log Z by summing exp(-E) over every (v, h) pair."""
    D, H = W.shape
    return logsumexp(-bernoulli_energy_table(W, b, c, binary_states(D), binary_states(H)))


def bernoulli_log_pv(W, b, c, V):
    """log p(v) for the rows of V: log sum_h exp(-E(v, h)) - log Z, both by enumeration."""
    H = W.shape[1]
    unnorm = logsumexp(-bernoulli_energy_table(W, b, c, V, binary_states(H)), axis=1)
    return unnorm - bernoulli_log_z(W, b, c)


def bernoulli_transition_matrix(W, b, c):
    """T[v, v'] = sum_h p(h | v) p(v' | h) over the states of binary_states(D)."""
    D, H = W.shape
    V, Hs = binary_states(D), binary_states(H)
    ph = sigmoid(c + V @ W)                       # (2^D, H)
    p_h_given_v = np.prod(np.where(Hs[None] == 1, ph[:, None], 1 - ph[:, None]), -1)
    pv = sigmoid(b + Hs @ W.T)                    # (2^H, D)
    p_v_given_h = np.prod(np.where(V[None] == 1, pv[:, None], 1 - pv[:, None]), -1)
    return p_h_given_v @ p_v_given_h


def state_index(V):
    """Index of each binary row of V within binary_states(D)."""
    D = V.shape[1]
    weights = 2 ** np.arange(D - 1, -1, -1)
    return (np.asarray(V).astype(np.int64) @ weights).astype(np.int64)


# ----- Gaussian-Bernoulli RBM -------------------------------------------------------------
def gaussian_energy_table(W, b, c, sigma, V, Hs):
    """E(v, h) = sum_i (v_i - b_i)^2 / (2 s_i^2) - c.h - sum_ij (v_i / s_i) W_ij h_j."""
    quad = np.sum((V - b) ** 2 / (2 * sigma**2), axis=1)
    return quad[:, None] - (Hs @ c)[None, :] - (V / sigma) @ W @ Hs.T


def grid(D, half_width, step):
    """A D-dimensional square grid (points as rows) and the volume of one cell."""
    axis = np.arange(-half_width, half_width + step / 2, step)
    mesh = np.meshgrid(*([axis] * D), indexing="ij")
    return np.stack([m.ravel() for m in mesh], axis=1), step**D
