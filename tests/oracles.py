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


# ----- deep Boltzmann machine -------------------------------------------------------------
def dbm_energy(Ws, bs, states):
    """E(h_0..h_L) = -sum_l b_l.h_l - sum_l h_{l-1} W_l h_l for rows of the layer states."""
    e = -sum(h @ b for h, b in zip(states, bs, strict=True))
    for l, W in enumerate(Ws, start=1):
        e = e - np.sum((states[l - 1] @ W) * states[l], axis=1)
    return e


def split_layers(states, sizes):
    """(S, sum(sizes)) -> list of (S, n_l) blocks."""
    return np.split(states, np.cumsum(sizes)[:-1], axis=1)


def dbm_joint(Ws, bs):
    """Every joint state [v, h_1, ..., h_L] of a tiny DBM with its log probability.

    Returns:
        (layers, log_p): layers is a list of (S, n_l) arrays over all S = 2^(sum n_l) joint
        states, log_p the (S,) exact log probabilities.
    """
    sizes = [len(b) for b in bs]
    layers = split_layers(binary_states(sum(sizes)), sizes)
    neg_e = -dbm_energy(Ws, bs, layers)
    return layers, neg_e - logsumexp(neg_e)


def dbm_log_z(Ws, bs):
    sizes = [len(b) for b in bs]
    return logsumexp(-dbm_energy(Ws, bs, split_layers(binary_states(sum(sizes)), sizes)))


def dbm_log_pv(Ws, bs, V):
    """log p(v) for the rows of V, summing exp(-E) over every hidden state."""
    sizes = [len(b) for b in bs]
    hidden = split_layers(binary_states(sum(sizes[1:])), sizes[1:])
    out = np.array([logsumexp(-dbm_energy(Ws, bs, [np.tile(v, (len(hidden[0]), 1))] + hidden))
                    for v in np.asarray(V, np.float64)])
    return out - dbm_log_z(Ws, bs)


def dbm_mean_field_update(Ws, bs, mus):
    """One sweep of mu_l = sigmoid(b_l + mu_{l-1} W_l + mu_{l+1} W_{l+1}^T): odd layers,
    then even hidden layers; mus[0] = v stays clamped."""
    mus = [np.asarray(m, np.float64) for m in mus]
    L = len(Ws)
    for first in (1, 2):
        for l in range(first, L + 1, 2):
            total = bs[l] + mus[l - 1] @ Ws[l - 1]
            if l < L:
                total = total + mus[l + 1] @ Ws[l].T
            mus[l] = sigmoid(total)
    return mus


def dbm_mean_field_bounds(Ws, bs, v, mu_rows):
    """The mean-field bound sum_h q(h) (-E(v, h) - log q(h)) by summing over every hidden
    state h, for one visible vector v and each row of mu_rows: (K, n_1 + ... + n_L) means
    [mu_1, ..., mu_L] of a factorial q, strictly inside (0, 1). Returns (K,)."""
    sizes = [len(b) for b in bs]
    hs = binary_states(sum(sizes[1:]))                          # (S, H)
    mu_rows = np.atleast_2d(np.asarray(mu_rows, np.float64))    # (K, H)
    log_q = hs @ np.log(mu_rows).T + (1 - hs) @ np.log1p(-mu_rows).T   # (S, K)
    states = [np.tile(np.asarray(v, np.float64), (len(hs), 1))] + split_layers(hs, sizes[1:])
    neg_e = -dbm_energy(Ws, bs, states)                         # (S,)
    return np.sum(np.exp(log_q) * (neg_e[:, None] - log_q), axis=0)


def dbm_mean_field_bound(Ws, bs, v, mus):
    """dbm_mean_field_bounds for one set of means mus = [mu_1, ..., mu_L] (each (n_l,))."""
    return float(dbm_mean_field_bounds(Ws, bs, v, np.concatenate(mus)[None])[0])
