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


# ----- Deep belief nets (used by tests/test_dbn.py) ---------------------------------------
def bernoulli_log_prob(x, logits):
    """sum_i log Bernoulli(x_i | sigmoid(logits_i)) over the last axis."""
    return np.sum(x * logits - softplus(logits), axis=-1)


def dbn_tables(R, r, G, g, W, b, c, V):
    """Brute-force tables of a DBN with layers [D, n_1, ..., n_L], Eqs. (2.1)-(2.3).

    R[l], G[l] (n_l x n_{l+1}) and r[l], g[l] are the recognition and generative weights
    and biases of the directed layers l = 0..L-2 (layer 0 = v); W, b, c the top RBM between
    h_{L-1} and h_L with energy -b.x - c.h - x W h.

    Returns:
        log_joint: (n, S, T) log p(v, h_1, ..., h_{L-1}, h_L), the full joint of Eq. (2.1),
            for every row of V, every state of h_1..h_{L-1} (S = 2^(n_1+...+n_{L-1}),
            concatenated in that order, as in ``binary_states``) and every state of h_L.
        log_q: (n, S) log q(h_1..h_{L-1} | v) = sum_l log q(h_{l+1} | h_l).
        hidden: the list of (S, n_l) arrays h_1..h_{L-1}.
    """
    sizes = [w.shape[1] for w in R]
    hidden = np.split(binary_states(sum(sizes)), np.cumsum(sizes)[:-1], axis=1)
    log_directed, log_q = 0.0, 0.0
    for l in range(len(R)):
        lower = V[:, None, :] if l == 0 else hidden[l - 1][None]
        upper = hidden[l][None]
        log_directed = log_directed + bernoulli_log_prob(lower, upper @ G[l].T + g[l])
        log_q = log_q + bernoulli_log_prob(upper, lower @ R[l] + r[l])
    log_top = (-bernoulli_energy_table(W, b, c, hidden[-1], binary_states(W.shape[1]))
               - bernoulli_log_z(W, b, c))                                   # (S, T)
    log_joint = log_directed[:, :, None] + log_top[None]
    return log_joint, np.broadcast_to(log_q, log_joint.shape[:2]), hidden


def dbn_exact_and_bound(log_joint, log_q):
    """(log p(v), sum_h q(h|v) (log p(v, h) - log q(h|v)), Var_q of that ratio) per row;
    h = h_1..h_{L-1}, with p(v, h) = sum_{h_L} p(v, h, h_L)."""
    log_p_vh = logsumexp(log_joint, axis=2)
    q = np.exp(log_q)
    ratio = log_p_vh - log_q
    bound = np.sum(q * ratio, axis=1)
    variance = np.sum(q * (ratio - bound[:, None]) ** 2, axis=1)
    return logsumexp(log_p_vh, axis=1), bound, variance


def expected_importance_weighted_bound(log_joint, log_q, K):
    """E over K i.i.d. h^k ~ q(h | v) of log (1/K) sum_k p(v, h^k) / q(h^k | v), Eq. (2.5),
    by enumerating all S^K tuples (keep S^K small)."""
    log_w = logsumexp(log_joint, axis=2) - log_q                           # (n, S)
    S = log_w.shape[1]
    idx = np.indices((S,) * K).reshape(K, -1)                              # (K, S^K)
    log_mean_w = logsumexp(log_w[:, idx], axis=1) - np.log(K)              # (n, S^K)
    log_prob_tuple = np.sum(log_q[:, idx], axis=1)
    return np.sum(np.exp(log_prob_tuple) * log_mean_w, axis=1)


def sigmoid_layer_nll_gradients(x, h, M, a):
    """Gradients of -mean_n log Bernoulli(x | sigmoid(a + h M)) w.r.t. M and a:
    dM = -h^T (x - sigmoid(a + h M)) / n, da = -mean_n (x - sigmoid(a + h M))."""
    err = x - sigmoid(a + h @ M)
    return -h.T @ err / len(x), -err.mean(axis=0)


def rbm_free_energy_gradients(W, b, c, x):
    """Mean over the rows of x of dF(x)/d(W, b, c), F(x) = -b.x - sum_j softplus(c + x W)."""
    p = sigmoid(c + x @ W)
    return -x.T @ p / len(x), -x.mean(axis=0), -p.mean(axis=0)
# ----- end of the DBN block ---------------------------------------------------------------


def dbm_tempered_odd_log_f(Ws, bs, base_bias, beta):
    """log f_beta(h_odd) = log sum over the even layers (v included) of
    exp((1 - beta) b_A.v - beta E(v, h)), the AIS intermediate distribution of a DBM, for
    every state of the odd layers (h_1, h_3, ... concatenated) in binary_states order.

    Returns:
        (odd_states, log_f): (2^n_odd, n_odd) and (2^n_odd,) arrays.
    """
    sizes = [len(b) for b in bs]
    layers = split_layers(binary_states(sum(sizes)), sizes)
    log_w = (1.0 - beta) * layers[0] @ np.asarray(base_bias, np.float64) \
        - beta * dbm_energy(Ws, bs, layers)
    odd = np.concatenate(layers[1::2], axis=1)
    log_f = np.full(2 ** odd.shape[1], -np.inf)
    np.logaddexp.at(log_f, state_index(odd), log_w)
    return binary_states(odd.shape[1]), log_f
