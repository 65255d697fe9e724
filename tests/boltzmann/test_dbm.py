"""Tests of course_lib.boltzmann.dbm against numpy oracles that enumerate every joint state.

The oracles (tests/oracles.py) are written from Eqs. (3.1)-(3.4) in float64 and never call
the library: energies, exact log Z and log p(v), conditionals by normalising the joint,
and the mean-field bound as an explicit sum over every hidden state.
"""

import math

import keras
import numpy as np
import oracles
import pytest
import tensorflow as tf

from course_lib import sampling
from course_lib.boltzmann import (
    DBM,
    DBMAnnealingPath,
    DBMInterpolationPath,
    dbm_pretraining_rbms,
)
from course_lib.boltzmann.stacking import DoublingRBM
from course_lib.evaluation import (
    ais_log_partition,
    ais_log_partition_ratio,
    base_rate_visible_bias,
    dbm_schedule,
    exact_log_likelihood,
    exact_log_partition,
    reverse_ais_log_partition,
)

TWO_LAYERS, THREE_LAYERS = [5, 4, 3], [4, 3, 3, 2]
# Mean-field sweeps that reach the fixed point to float32 precision for the seeded models
# below (in float64 a sweep changes mu by < 1e-10 after 40 sweeps for both; the tests check
# the fixed point). mean_field_bound traces every sweep into one graph, which takes tens of
# seconds for 500 sweeps on a CPU.
MF_STEPS = 40


def np_of(tensor):
    return np.asarray(keras.ops.convert_to_numpy(tensor), dtype=np.float64)


def make_dbm(sizes, seed, w_std=1.0, b_std=1.0, **kwargs):
    """A DBM with N(0, w_std) weights and N(0, b_std) biases; returns it and the parameters
    (Ws, bs) as float64 numpy arrays."""
    kwargs.setdefault("num_chains", 4)
    dbm = DBM(sizes, seed=0, **kwargs)
    rng = np.random.default_rng(seed)
    Ws = [rng.normal(0.0, w_std, (a, b)).astype("float32")
          for a, b in zip(sizes[:-1], sizes[1:], strict=True)]
    bs = [rng.normal(0.0, b_std, n).astype("float32") for n in sizes]
    for variable, value in zip(dbm.W + dbm.biases, Ws + bs, strict=True):
        variable.assign(value)
    return dbm, ([w.astype(np.float64) for w in Ws], [b.astype(np.float64) for b in bs])


def random_binary(n, d, seed=0, p=0.5):
    return (np.random.default_rng(seed).random((n, d)) < p).astype("float32")


def random_states(sizes, n, seed):
    return [random_binary(n, d, seed=seed + i) for i, d in enumerate(sizes)]


def visible_rows(D, n, seed):
    """n distinct binary visible vectors."""
    V = oracles.binary_states(D)
    return V[np.random.default_rng(seed).permutation(len(V))[:n]].astype("float32")


def sample_joint(Ws, bs, n, seed):
    """n exact samples [v, h_1, ..., h_L] of the DBM, drawn from the enumerated joint."""
    layers, log_p = oracles.dbm_joint(Ws, bs)
    p = np.exp(log_p)
    idx = np.random.default_rng(seed).choice(len(p), size=n, p=p / p.sum())
    return [h[idx].astype("float32") for h in layers]


def mean_field_init_np(Ws, bs, V):
    """The documented start of Eq. (3.3): bottom-up pass, weights doubled below the top."""
    mus = [np.asarray(V, np.float64)]
    for l in range(1, len(Ws) + 1):
        factor = 2.0 if l < len(Ws) else 1.0
        mus.append(oracles.sigmoid(factor * mus[-1] @ Ws[l - 1] + bs[l]))
    return mus


def total_variation(samples, p):
    freq = np.bincount(oracles.state_index(samples), minlength=len(p)) / len(samples)
    return 0.5 * np.abs(freq - p).sum()


# ----- Eq. (3.1), (3.2): energy and conditionals ------------------------------------------
@pytest.mark.parametrize("sizes", [TWO_LAYERS, THREE_LAYERS])
def test_energy_matches_numpy(sizes):
    dbm, (Ws, bs) = make_dbm(sizes, seed=1)
    states = random_states(sizes, 50, seed=3)
    np.testing.assert_allclose(np_of(dbm.energy(states)),
                               oracles.dbm_energy(Ws, bs, [s.astype(np.float64)
                                                           for s in states]),
                               rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("sizes", [TWO_LAYERS, THREE_LAYERS])
def test_prob_layer_is_the_conditional_of_the_enumerated_joint(sizes):
    """p(h_l = 1 | every other layer), by normalising the joint over the states that agree
    with the others, equals prob_layer(neighbours): the non-neighbours do not matter."""
    dbm, (Ws, bs) = make_dbm(sizes, seed=2)
    layers, log_p = oracles.dbm_joint(Ws, bs)
    p = np.exp(log_p)
    given = random_states(sizes, 6, seed=11)
    for l in range(len(sizes)):
        got = np_of(dbm.prob_layer(given, l))
        for row in range(6):
            agree = np.ones(len(p), bool)
            for k, h in enumerate(layers):
                if k != l:
                    agree &= np.all(h == given[k][row], axis=1)
            expected = p[agree] @ layers[l][agree] / p[agree].sum()
            np.testing.assert_allclose(got[row], expected, rtol=1e-5, atol=1e-6,
                                       err_msg=f"layer {l}, row {row}")


# ----- Eq. (3.8): exact log Z and log p(v) ------------------------------------------------
@pytest.mark.parametrize("sizes, seed", [(TWO_LAYERS, 3), (THREE_LAYERS, 4), ([3, 2], 5)])
def test_exact_log_partition_and_likelihood_match_enumeration(sizes, seed):
    """Three layers exercise the odd-layer split (layers 1 and 3 enumerated together)."""
    dbm, (Ws, bs) = make_dbm(sizes, seed=seed)
    log_z = oracles.dbm_log_z(Ws, bs)
    assert exact_log_partition(dbm) == pytest.approx(log_z, abs=1e-4)
    assert exact_log_partition(dbm, chunk_size=2) == pytest.approx(log_z, abs=1e-4)

    V = oracles.binary_states(sizes[0])
    log_pv = oracles.dbm_log_pv(Ws, bs, V)
    assert oracles.logsumexp(log_pv) == pytest.approx(0.0, abs=1e-9)  # the oracle itself
    data = V[[0, 3, 5, 5, len(V) - 1]]
    expected = log_pv[oracles.state_index(data)].mean()
    assert exact_log_likelihood(dbm, data) == pytest.approx(expected, abs=1e-4)
    rows = np.arange(0, len(V), max(1, len(V) // 8))
    per_row = np.array([exact_log_likelihood(dbm, V[i][None], log_z=log_z) for i in rows])
    np.testing.assert_allclose(per_row, log_pv[rows], atol=1e-4)


# ----- Eqs. (3.3), (3.4): mean field ------------------------------------------------------
@pytest.mark.parametrize("sizes, seed", [(TWO_LAYERS, 1), (THREE_LAYERS, 2)])
def test_mean_field_fixed_point_and_bound(sizes, seed):
    dbm, (Ws, bs) = make_dbm(sizes, seed=seed)
    V = visible_rows(sizes[0], 6, seed=seed)
    mus = [np_of(m) for m in dbm.mean_field(tf.constant(V), num_steps=MF_STEPS)]
    np.testing.assert_array_equal(mus[0], V)
    # A fixed point of Eq. (3.3): one more sweep changes nothing.
    after = oracles.dbm_mean_field_update(Ws, bs, mus)
    for l, (a, b) in enumerate(zip(mus, after, strict=True)):
        np.testing.assert_allclose(a, b, atol=1e-5, err_msg=f"layer {l}")
    # The same number of sweeps from the documented start, in float64.
    ref = mean_field_init_np(Ws, bs, V)
    for _ in range(MF_STEPS):
        ref = oracles.dbm_mean_field_update(Ws, bs, ref)
    for a, b in zip(mus, ref, strict=True):
        np.testing.assert_allclose(a, b, atol=1e-5)

    log_z = oracles.dbm_log_z(Ws, bs)
    got = dbm.mean_field_bound(V, log_z, num_steps=MF_STEPS)
    assert got.dtype == np.float64 and got.shape == (6,)
    brute = np.array([oracles.dbm_mean_field_bound(Ws, bs, V[i], [m[i] for m in after[1:]])
                      for i in range(6)]) - log_z
    np.testing.assert_allclose(got, brute, atol=2e-5)
    log_pv = oracles.dbm_log_pv(Ws, bs, V)
    assert np.all(got <= log_pv + 1e-6), (got, log_pv)
    assert np.all(log_pv - got > 1e-3)  # the factorial q is not the exact posterior here


@pytest.mark.parametrize("sizes, seed", [(TWO_LAYERS, 1), (THREE_LAYERS, 2)])
def test_mean_field_fixed_point_is_a_local_maximum_of_the_brute_force_bound(sizes, seed):
    dbm, (Ws, bs) = make_dbm(sizes, seed=seed)
    V = visible_rows(sizes[0], 3, seed=seed + 10)
    mus = oracles.dbm_mean_field_update(
        Ws, bs, [np_of(m) for m in dbm.mean_field(tf.constant(V), num_steps=MF_STEPS)])
    rng = np.random.default_rng(0)
    eps = 1e-5
    for i, v in enumerate(V):
        mu = np.concatenate([m[i] for m in mus[1:]])
        logit = np.log(mu) - np.log1p(-mu)
        n = len(mu)

        def bounds(logits, v=v):
            return oracles.dbm_mean_field_bounds(Ws, bs, v, oracles.sigmoid(logits))

        at = bounds(logit[None])[0]
        # Stationary: central differences in logit space vanish in every direction.
        steps = np.concatenate([logit + eps * np.eye(n), logit - eps * np.eye(n)])
        values = bounds(steps)
        gradient = (values[:n] - values[n:]) / (2 * eps)
        assert np.abs(gradient).max() < 1e-5, gradient
        # A local maximum: small random moves inside (0, 1) never increase the bound.
        moved = bounds(logit + rng.normal(0.0, 0.1, (300, n)))
        assert np.all(moved <= at + 1e-9), (moved.max() - at)
        assert np.mean(moved < at - 1e-6) > 0.9


def test_gradient_ascent_on_the_brute_force_bound_lands_on_the_mean_field_solution():
    """Diagonally preconditioned gradient ascent of the enumerated bound, from the same
    documented start, converges to the mu that coordinate ascent (Eq. 3.3) found."""
    sizes = THREE_LAYERS
    dbm, (Ws, bs) = make_dbm(sizes, seed=2)
    V = visible_rows(sizes[0], 2, seed=7)
    mus = [np_of(m) for m in dbm.mean_field(tf.constant(V), num_steps=MF_STEPS)]
    start = mean_field_init_np(Ws, bs, V)
    eps = 1e-5
    for i, v in enumerate(V):
        logit = np.concatenate([np.log(m[i]) - np.log1p(-m[i]) for m in start[1:]])
        n = len(logit)
        for _ in range(400):
            p = oracles.sigmoid(logit)
            steps = np.concatenate([logit + eps * np.eye(n), logit - eps * np.eye(n)])
            values = oracles.dbm_mean_field_bounds(Ws, bs, v, oracles.sigmoid(steps))
            gradient = (values[:n] - values[n:]) / (2 * eps)
            if np.abs(gradient).max() < 1e-9:
                break
            logit = logit + gradient / np.maximum(p * (1 - p), 1e-3)
        found = np.concatenate([m[i] for m in mus[1:]])
        np.testing.assert_allclose(oracles.sigmoid(logit), found, atol=1e-5)


def test_mean_field_with_init_and_reconstruct():
    dbm, (Ws, bs) = make_dbm(TWO_LAYERS, seed=1)
    V = visible_rows(5, 4, seed=0)
    init = [V, np.full((4, 4), 0.5, "float32"), np.full((4, 3), 0.5, "float32")]
    one = [np_of(m) for m in dbm.mean_field(tf.constant(V), num_steps=1, init=init)]
    expected = oracles.dbm_mean_field_update(Ws, bs, init)
    for a, b in zip(one, expected, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    mus = oracles.dbm_mean_field_update(Ws, bs, mean_field_init_np(Ws, bs, V))
    np.testing.assert_allclose(np_of(dbm.reconstruct(V, num_steps=1)),
                               oracles.sigmoid(bs[0] + mus[1] @ Ws[0].T), rtol=1e-5,
                               atol=1e-6)


# ----- block Gibbs ------------------------------------------------------------------------
def test_block_gibbs_samples_the_exact_joint():
    """Many chains, many sweeps with stateless int seeds: the joint frequencies of
    (v, h_1, h_2) and the visible marginal match the enumerated distribution."""
    sizes = [3, 2, 2]
    dbm, (Ws, bs) = make_dbm(sizes, seed=6)
    layers, log_p = oracles.dbm_joint(Ws, bs)
    p_joint = np.exp(log_p)
    V = oracles.binary_states(3)
    p_v = np.exp(oracles.dbm_log_pv(Ws, bs, V))
    n = 30000
    states = [tf.constant(s) for s in random_states(sizes, n, seed=0)]
    for step in range(40):
        states, visible_probs = dbm.gibbs_step(states, seed=1000 + step)
    samples = [np_of(s) for s in states]
    for s in samples:
        assert set(np.unique(s)) <= {0.0, 1.0}
    assert total_variation(samples[0], p_v) < 0.02
    assert total_variation(np.concatenate(samples, axis=1), p_joint) < 0.05
    # The returned probabilities are p(v | h_1) of the final sweep.
    np.testing.assert_allclose(np_of(visible_probs),
                               oracles.sigmoid(bs[0] + samples[1] @ Ws[0].T), rtol=1e-5,
                               atol=1e-6)


def test_gibbs_step_seeds():
    dbm, _ = make_dbm(THREE_LAYERS, seed=4)
    states = [tf.constant(s) for s in random_states(THREE_LAYERS, 64, seed=1)]
    first, _ = dbm.gibbs_step(states, seed=7)
    again, _ = dbm.gibbs_step(states, seed=7)
    other, _ = dbm.gibbs_step(states, seed=8)
    for a, b in zip(first, again, strict=True):
        np.testing.assert_array_equal(np_of(a), np_of(b))
    assert any(not np.array_equal(np_of(a), np_of(b)) for a, b in zip(first, other,
                                                                     strict=True))
    stateful = np.array(np_of(dbm.seed_generator.state))
    dbm.gibbs_step(states)  # seed=None advances the model's SeedGenerator
    assert not np.array_equal(np_of(dbm.seed_generator.state), stateful)


# ----- AIS --------------------------------------------------------------------------------
@pytest.mark.parametrize("sizes, seed", [(TWO_LAYERS, 3), (THREE_LAYERS, 4)])
def test_forward_and_reverse_ais_find_the_exact_log_partition(sizes, seed):
    dbm, (Ws, bs) = make_dbm(sizes, seed=seed)
    exact = oracles.dbm_log_z(Ws, bs)
    samples = sample_joint(Ws, bs, 100, seed=0)
    base = base_rate_visible_bias(samples[0])
    betas = dbm_schedule(1000)

    forward = ais_log_partition(dbm, base, num_chains=100, betas=betas, seed=0)
    assert forward.direction == "forward" and len(forward.log_weights) == 100
    assert forward.num_distributions == 1000
    assert forward.log_z_low <= forward.log_z <= forward.log_z_high
    assert forward.log_z_low - 0.01 <= exact <= forward.log_z_high + 0.01, (str(forward), exact)
    assert abs(forward.log_z - exact) < 0.05

    reverse = reverse_ais_log_partition(dbm, base, samples, betas=betas, seed=1)
    assert reverse.direction == "reverse" and len(reverse.log_weights) == 100
    assert reverse.log_z_low - 0.01 <= exact <= reverse.log_z_high + 0.01, (str(reverse), exact)
    assert abs(reverse.log_z - exact) < 0.05


def assert_step_from_03_to_06(path, odd_states, log_f_from, log_f_to):
    """One ``path.step`` from beta = 0.3 to 0.6 on 40,000 exact samples of p_0.6 (drawn from
    the enumerated log f_0.6 over ``odd_states``): its increments are log f_0.6 - log f_0.3
    and its new states are again distributed as p_0.6 (every state's frequency within 5
    standard errors)."""
    p = np.exp(log_f_to - oracles.logsumexp(log_f_to))
    n = 40000
    idx = np.random.default_rng(0).choice(len(p), size=n, p=p)
    increment, state = path.step(tf.constant(odd_states[idx].astype("float32")),
                                 tf.constant(0.3), tf.constant(0.6), tf.constant([4, 2]))
    np.testing.assert_allclose(np_of(increment), log_f_to[idx] - log_f_from[idx], rtol=1e-5,
                               atol=1e-5)
    freq = np.bincount(oracles.state_index(np_of(state)), minlength=len(p)) / n
    assert np.all(np.abs(freq - p) < 5 * np.sqrt(p * (1 - p) / n) + 1e-4), (freq, p)


def test_annealing_step_leaves_the_intermediate_distribution_invariant():
    """Eq. (3.9): one step from beta = 0.3 to 0.6 maps exact samples of p_0.6 over the odd
    layers (1 and 3) to samples of p_0.6, and its weight increment is
    log f_0.6 - log f_0.3, both enumerated in numpy from the tempered joint."""
    dbm, (Ws, bs) = make_dbm(THREE_LAYERS, seed=4)
    base = np.array([0.5, -1.0, 1.5, 0.0])
    path = DBMAnnealingPath(dbm, base.astype("float32"))
    odd_states, log_f_to = oracles.dbm_tempered_odd_log_f(Ws, bs, base, 0.6)
    _, log_f_from = oracles.dbm_tempered_odd_log_f(Ws, bs, base, 0.3)
    # The end points: Z_0 = Z_A 2^(hidden units) and Z_1 = Z.
    _, log_f_0 = oracles.dbm_tempered_odd_log_f(Ws, bs, base, 0.0)
    _, log_f_1 = oracles.dbm_tempered_odd_log_f(Ws, bs, base, 1.0)
    assert path.log_base_partition() == pytest.approx(oracles.logsumexp(log_f_0), abs=1e-6)
    assert oracles.logsumexp(log_f_1) == pytest.approx(oracles.dbm_log_z(Ws, bs), abs=1e-9)

    assert_step_from_03_to_06(path, odd_states, log_f_from, log_f_to)


def test_reverse_ais_from_the_models_own_chains():
    dbm, (Ws, bs) = make_dbm(TWO_LAYERS, seed=3, num_chains=100, gibbs_steps=20)
    dbm.negative_phase()
    chains = dbm.chain_states()
    assert [c.shape for c in chains] == [(100, 5), (100, 4), (100, 3)]
    base = base_rate_visible_bias(chains[0])
    reverse = reverse_ais_log_partition(dbm, base, chains, betas=dbm_schedule(1000), seed=2)
    assert abs(reverse.log_z - oracles.dbm_log_z(Ws, bs)) < 0.05, str(reverse)
    with pytest.raises(ValueError, match="list of 3 layer states"):
        reverse_ais_log_partition(dbm, base, chains[:2], betas=[0.0, 1.0])


def mixed_parameters(params_a, params_b, beta):
    """(1 - beta) theta_A + beta theta_B, layer by layer: the DBM at beta on Eq. (3.10)."""
    return tuple([(1.0 - beta) * a + beta * b for a, b in zip(pa, pb, strict=True)]
                 for pa, pb in zip(params_a, params_b, strict=True))


def test_interpolation_step_leaves_the_intermediate_model_invariant():
    """Eq. (3.10): one step from beta = 0.3 to 0.6 maps exact samples of the DBM with mixed
    parameters at 0.6 (odd layers) to samples of it, and its weight increment is
    log f_0.6 - log f_0.3, both enumerated in numpy from the mixed model's joint. A mix taken
    the wrong way round, a sweep under either end model or a wrong odd-bias term fails."""
    a, params_a = make_dbm(THREE_LAYERS, seed=4)
    b, params_b = make_dbm(THREE_LAYERS, seed=5)
    path = b.annealing_path_from(a)
    assert isinstance(path, DBMInterpolationPath)
    no_base = np.zeros(THREE_LAYERS[0])

    def log_f(beta):       # the mixed DBM's unnormalized marginal over the odd layers
        return oracles.dbm_tempered_odd_log_f(*mixed_parameters(params_a, params_b, beta),
                                              no_base, 1.0)
    odd_states, log_f_to = log_f(0.6)
    _, log_f_from = log_f(0.3)
    # The end points are the two models.
    assert oracles.logsumexp(log_f(0.0)[1]) == pytest.approx(oracles.dbm_log_z(*params_a))
    assert oracles.logsumexp(log_f(1.0)[1]) == pytest.approx(oracles.dbm_log_z(*params_b))

    assert_step_from_03_to_06(path, odd_states, log_f_from, log_f_to)


@pytest.mark.parametrize("sizes, seed", [(TWO_LAYERS, 3), (THREE_LAYERS, 4)])
def test_ais_between_two_dbms_finds_the_exact_log_ratio_both_ways(sizes, seed):
    """log Z_B - log Z_A from exact samples of A, and log Z_A - log Z_B from exact samples
    of B, each within its 3-sigma interval (plus 0.01 for the float32 increments) of the
    enumerated ratio; the two directions then agree with each other."""
    a, params_a = make_dbm(sizes, seed=seed)
    b, params_b = make_dbm(sizes, seed=seed + 10)
    exact = oracles.dbm_log_z(*params_b) - oracles.dbm_log_z(*params_a)
    betas = np.linspace(0.0, 1.0, 1000)
    up = ais_log_partition_ratio(a, b, sample_joint(*params_a, 100, seed=0), betas=betas,
                                 seed=0)
    down = ais_log_partition_ratio(b, a, sample_joint(*params_b, 100, seed=1), betas=betas,
                                   seed=1)
    assert up.direction == down.direction == "ratio" and len(up.log_weights) == 100
    assert up.num_distributions == 1000 and "log Z_end - log Z_start" in str(up)
    assert up.log_z_low - 0.01 <= exact <= up.log_z_high + 0.01, (str(up), exact)
    assert down.log_z_low - 0.01 <= -exact <= down.log_z_high + 0.01, (str(down), exact)
    assert abs(up.log_z - exact) < 0.05 and abs(down.log_z + exact) < 0.05


def test_ais_between_two_dbms_under_xla_finds_the_exact_log_ratio():
    """The same anneal compiled by XLA, as a GPU runs it ("auto")."""
    a, params_a = make_dbm(TWO_LAYERS, seed=3)
    b, params_b = make_dbm(TWO_LAYERS, seed=13)
    exact = oracles.dbm_log_z(*params_b) - oracles.dbm_log_z(*params_a)
    up = ais_log_partition_ratio(a, b, sample_joint(*params_a, 100, seed=0),
                                 betas=np.linspace(0.0, 1.0, 1000), seed=0, jit_compile=True)
    assert up.log_z_low - 0.01 <= exact <= up.log_z_high + 0.01, (str(up), exact)


def test_ais_between_dbms_refuses_what_it_cannot_anneal():
    a, params_a = make_dbm(TWO_LAYERS, seed=3)
    samples = sample_joint(*params_a, 10, seed=0)
    with pytest.raises(ValueError, match=r"same layer sizes.*\[5, 4, 3\] and \[5, 4, 2\]"):
        ais_log_partition_ratio(a, make_dbm([5, 4, 2], seed=1)[0], samples, betas=[0.0, 1.0])
    with pytest.raises(TypeError, match="start must be a DBM"):
        ais_log_partition_ratio("not a model", a, samples, betas=[0.0, 1.0])
    b, _ = make_dbm(TWO_LAYERS, seed=4)
    with pytest.raises(ValueError, match="list of 3 layer states"):
        ais_log_partition_ratio(a, b, samples[:2], betas=[0.0, 1.0])
    with pytest.raises(ValueError, match="betas"):
        ais_log_partition_ratio(a, b, samples, betas=[0.0, 0.5])
    b.W[0].assign(np.full((5, 4), np.nan, "float32"))
    with pytest.raises(ValueError, match="end W1 holds 20 NaN or inf"):
        ais_log_partition_ratio(a, b, samples, betas=[0.0, 1.0])


def test_dbm_schedule():
    betas = dbm_schedule(20000)
    assert len(betas) == 20000 and betas.dtype == np.float32
    assert betas[0] == 0.0 and betas[-1] == 1.0
    assert np.all(np.diff(betas) > 0)
    short = dbm_schedule(100)
    assert len(short) == 100 and short[0] == 0.0 and short[-1] == 1.0
    assert np.all(np.diff(short) > 0)


# ----- training ---------------------------------------------------------------------------
def test_fit_one_epoch_changes_weights_and_chains():
    dbm = DBM([6, 4, 3], num_chains=8, gibbs_steps=2, mean_field_steps=3, seed=0)
    dbm.compile(optimizer=keras.optimizers.SGD(0.1))
    before = [np_of(v) for v in dbm.trainable_variables]
    chains = dbm.chain_states()
    history = dbm.fit(random_binary(32, 6), batch_size=8, epochs=1, verbose=0)
    assert len(before) == 2 + 3  # W_1, W_2, b_0, b_1, b_2
    after = [np_of(v) for v in dbm.trainable_variables]
    for x, y in zip(before, after, strict=True):
        assert np.all(np.isfinite(y)) and not np.allclose(x, y)
    assert set(history.history) == {"reconstruction_error", "unnormalized_bound"}
    assert all(np.isfinite(v[0]) for v in history.history.values())
    new_chains = dbm.chain_states()
    assert any(not np.array_equal(a, b) for a, b in zip(chains, new_chains, strict=True))
    for c in new_chains:
        assert set(np.unique(c)) <= {0.0, 1.0}


def test_train_step_applies_the_eq_3_5_update():
    """theta <- theta + lr (<h_{l-1} h_l^T>_{mean field} - <h_{l-1} h_l^T>_{chains}), the
    mean field from the documented start, the chains as they are after the step."""
    lr, steps = 0.05, 4
    dbm, (Ws, bs) = make_dbm([5, 3, 2], seed=8, w_std=0.5, num_chains=6,
                             mean_field_steps=steps)
    dbm.compile(optimizer=keras.optimizers.SGD(lr))
    v = random_binary(10, 5, seed=5)
    dbm.fit(v, batch_size=10, epochs=1, verbose=0)
    mus = mean_field_init_np(Ws, bs, v)
    for _ in range(steps):
        mus = oracles.dbm_mean_field_update(Ws, bs, mus)
    chains = [c.astype(np.float64) for c in dbm.chain_states()]
    for l in range(1, 3):
        positive = mus[l - 1].T @ mus[l] / len(v)
        negative = chains[l - 1].T @ chains[l] / len(chains[0])
        np.testing.assert_allclose(np_of(dbm.W[l - 1]), Ws[l - 1] + lr * (positive - negative),
                                   rtol=1e-4, atol=1e-5, err_msg=f"W{l}")
    for l in range(3):
        np.testing.assert_allclose(np_of(dbm.biases[l]),
                                   bs[l] + lr * (mus[l].mean(0) - chains[l].mean(0)),
                                   rtol=1e-4, atol=1e-5, err_msg=f"b{l}")


def test_training_increases_the_exact_log_likelihood():
    """100 PCD updates on data from three noisy prototypes raise the exact mean log p(v)
    (enumerated in numpy from the trained weights) well above the uniform start."""
    rng = np.random.default_rng(0)
    prototypes = np.array([[1, 1, 0, 0], [0, 0, 1, 1], [1, 0, 1, 0]], dtype="float32")
    data = prototypes[rng.integers(0, 3, 240)]
    data = np.abs(data - (rng.random(data.shape) < 0.05)).astype("float32")
    counts = np.bincount(oracles.state_index(data), minlength=16) / len(data)

    def mean_log_likelihood(model):
        Ws = [np_of(w) for w in model.W]
        bs = [np_of(b) for b in model.biases]
        return counts @ oracles.dbm_log_pv(Ws, bs, oracles.binary_states(4))

    dbm = DBM([4, 3, 2], num_chains=50, gibbs_steps=3, mean_field_steps=5,
              weight_init_std=0.1, seed=1)
    before = mean_log_likelihood(dbm)
    assert before == pytest.approx(-4 * math.log(2), abs=0.05)
    dbm.compile(optimizer=keras.optimizers.SGD(0.3))
    dbm.fit(data, batch_size=24, epochs=10, verbose=0)  # 100 updates
    after = mean_log_likelihood(dbm)
    assert after > before + 0.25, (before, after)
    assert exact_log_likelihood(dbm, data) == pytest.approx(after, abs=1e-4)


def test_train_step_under_xla():
    dbm = DBM([6, 4, 3], num_chains=8, gibbs_steps=1, mean_field_steps=1, seed=0)
    dbm.compile(optimizer=keras.optimizers.SGD(0.1), jit_compile=True)
    assert dbm.jit_compile is True  # Keras did not fall back to a plain tf.function
    before = np_of(dbm.W[0])
    history = dbm.fit(random_binary(32, 6), batch_size=16, epochs=1, verbose=0)
    assert all(np.isfinite(v[0]) for v in history.history.values())
    assert not np.allclose(before, np_of(dbm.W[0]))


# ----- serialization ----------------------------------------------------------------------
def test_save_and_load_keep_weights_chains_and_random_stream(tmp_path):
    dbm = DBM([6, 4, 3], num_chains=8, gibbs_steps=2, mean_field_steps=3, seed=3)
    dbm.compile(optimizer=keras.optimizers.SGD(0.1))
    dbm.fit(random_binary(32, 6), batch_size=8, epochs=1, verbose=0)
    path = tmp_path / "dbm.keras"
    dbm.save(path)
    loaded = keras.saving.load_model(path)
    assert type(loaded) is DBM
    assert loaded.get_config() == dbm.get_config()
    for a, b in zip(dbm.weights, loaded.weights, strict=True):
        np.testing.assert_array_equal(np_of(a), np_of(b))
    for a, b in zip(dbm.chain_states(), loaded.chain_states(), strict=True):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(np_of(loaded.seed_generator.state),
                                  np_of(dbm.seed_generator.state))
    states = [tf.constant(s) for s in random_states([6, 4, 3], 16, seed=2)]
    ours, _ = dbm.gibbs_step(states)
    theirs, _ = loaded.gibbs_step(states)
    for a, b in zip(ours, theirs, strict=True):
        np.testing.assert_array_equal(np_of(a), np_of(b))


def test_config_round_trip():
    kwargs = dict(num_chains=7, gibbs_steps=3, mean_field_steps=12, weight_init_std=0.05,
                  visible_bias_init=[0.5, -1.0, 0.25, 2.0], seed=9, name="my_dbm")
    dbm = DBM([4, 3, 2, 2], **kwargs)
    config = dbm.get_config()
    for key, value in dict(kwargs, layer_sizes=[4, 3, 2, 2]).items():
        assert config[key] == value, key
    clone = DBM.from_config(config)
    assert type(clone) is DBM and clone.get_config() == config
    assert clone.num_layers == 3 and clone.odd_sizes == [3, 2]
    np.testing.assert_array_equal(np_of(clone.biases[0]), kwargs["visible_bias_init"])
    for a, b in zip(dbm.weights, clone.weights, strict=True):  # same seed, same start
        np.testing.assert_array_equal(np_of(a), np_of(b))
    assert keras.saving.get_registered_object("course_lib>DBM") is DBM


# ----- input validation -------------------------------------------------------------------
def test_check_visible_rejects_bad_input():
    dbm = DBM([4, 3, 2], seed=0)
    with pytest.raises(ValueError, match=r"shape \(n, 4\)"):
        dbm.check_visible(np.zeros((3, 5)))
    with pytest.raises(ValueError, match=r"2-D"):
        dbm.check_visible(np.zeros(4))
    with pytest.raises(ValueError, match="NaN"):
        dbm.check_visible(np.array([[0.0, 1.0, np.nan, 0.0]]))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        dbm.check_visible(np.array([[0.0, 1.0, 2.0, 0.0]]))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        dbm.check_visible(np.array([[0.0, -0.5, 1.0, 0.0]]))
    with pytest.raises(ValueError, match=r"shape \(n, 4\)"):
        dbm.mean_field_bound(np.zeros((3, 5)), 0.0)
    with pytest.raises(ValueError, match=r"shape \(n, 4\)"):
        exact_log_likelihood(dbm, np.zeros((3, 5)))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        dbm.sample(2, 1, seed=0, init=np.full((2, 4), 3.0))


def test_fit_validates_data_before_training():
    dbm = DBM([4, 3, 2], num_chains=4, seed=0)
    dbm.compile(optimizer=keras.optimizers.SGD(0.1))
    with pytest.raises(ValueError, match=r"shape \(n, 4\)"):
        dbm.fit(np.zeros((8, 5), "float32"), verbose=0)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        dbm.fit(np.full((8, 4), 3.0, "float32"), verbose=0)
    with pytest.raises(ValueError, match="NaN"):
        dbm.fit(np.full((8, 4), np.nan, "float32"), verbose=0)
    assert int(dbm.optimizer.iterations) == 0


@pytest.mark.parametrize("args, kwargs, match", [
    ([5], {}, r"layer_sizes must be \[D, n_1, \.\.\.\]"),
    ([], {}, "layer_sizes"),
    ([5, 3.5], {}, "layer size must be an integer >= 1; got 3.5"),
    ([5, "3"], {}, "layer size must be an integer"),
    ([5, 0], {}, "layer size must be an integer >= 1; got 0"),
    ([5, True], {}, "layer size must be an integer"),
    ([5, 3], {"num_chains": 0}, "num_chains must be an integer"),
    ([5, 3], {"gibbs_steps": 1.0}, "gibbs_steps must be an integer"),
    ([5, 3], {"mean_field_steps": -1}, "mean_field_steps must be an integer"),
    ([5, 3], {"visible_bias_init": [0.0, 1.0]}, r"visible_bias_init must have shape \(5,\)"),
])
def test_constructor_rejects_bad_arguments(args, kwargs, match):
    with pytest.raises(ValueError, match=match):
        DBM(args, **kwargs)


def test_dbm_pretraining_rbms_rejects_short_stacks():
    with pytest.raises(ValueError, match="at least two hidden layers"):
        dbm_pretraining_rbms([5, 4])
    with pytest.raises(ValueError, match="layer size must be an integer"):
        dbm_pretraining_rbms([5, 4, 2.5])


# ----- composing pre-trained RBMs ---------------------------------------------------------
def _random_rbm_params(rbms, seed):
    rng = np.random.default_rng(seed)
    params = []
    for rbm in rbms:
        W = rng.normal(0, 1, (rbm.n_visible, rbm.n_hidden)).astype("float32")
        b = rng.normal(0, 1, rbm.n_visible).astype("float32")
        c = rng.normal(0, 1, rbm.n_hidden).astype("float32")
        rbm.W.assign(W)
        rbm.visible_bias.assign(b)
        rbm.hidden_bias.assign(c)
        params.append((W.astype(np.float64), b.astype(np.float64), c.astype(np.float64)))
    return params


def test_dbm_pretraining_rbms_have_the_doubling_factors():
    rbms = dbm_pretraining_rbms([6, 5, 4, 3], seed=0, k=2)
    assert all(isinstance(r, DoublingRBM) for r in rbms)
    assert [(r.n_visible, r.n_hidden) for r in rbms] == [(6, 5), (5, 4), (4, 3)]
    assert [(r.up_factor, r.down_factor) for r in rbms] == [(2.0, 1.0), (1.0, 1.0), (1.0, 2.0)]
    assert all(r.k == 2 for r in rbms)
    assert [r.seed for r in rbms] == [0, 1, 2]
    two = dbm_pretraining_rbms([6, 5, 4])
    assert [(r.up_factor, r.down_factor) for r in two] == [(2.0, 1.0), (1.0, 2.0)]


def test_from_rbms_copies_halves_and_averages():
    rbms = dbm_pretraining_rbms([6, 5, 4, 3], seed=0)
    params = _random_rbm_params(rbms, seed=1)
    dbm = DBM.from_rbms(rbms, num_chains=5, seed=2)
    assert dbm.layer_sizes == [6, 5, 4, 3] and dbm.num_chains == 5
    (W1, b1, c1), (W2, b2, c2), (W3, b3, c3) = params
    for got, expected in zip(dbm.W, (W1, 0.5 * W2, W3), strict=True):
        np.testing.assert_allclose(np_of(got), expected, rtol=1e-6, atol=1e-7)
    for got, expected in zip(dbm.biases, (b1, 0.5 * (c1 + b2), 0.5 * (c2 + b3), c3),
                             strict=True):
        np.testing.assert_allclose(np_of(got), expected, rtol=1e-6, atol=1e-7)
    # Two RBMs: no middle RBM, so no weight is halved.
    two = dbm_pretraining_rbms([4, 3, 2], seed=0)
    (V1, a1, d1), (V2, a2, d2) = _random_rbm_params(two, seed=3)
    small = DBM.from_rbms(two, num_chains=2)
    np.testing.assert_allclose(np_of(small.W[0]), V1, rtol=1e-6)
    np.testing.assert_allclose(np_of(small.W[1]), V2, rtol=1e-6)
    np.testing.assert_allclose(np_of(small.biases[1]), 0.5 * (d1 + a2), rtol=1e-6)


def test_from_rbms_rejects_a_stack_that_does_not_fit():
    rbms = [DoublingRBM(6, 5, up_factor=2.0), DoublingRBM(4, 3, down_factor=2.0)]
    with pytest.raises(ValueError, match="RBM 0 has 5 hidden units but RBM 1 has 4 visible"):
        DBM.from_rbms(rbms)


# ----- gibbs_states: the start of reverse AIS ----------------------------------------------
# jit_compile=True is what a GPU runs ("auto"); XLA draws other numbers from the same seed,
# so the check is the distribution, not equality with the default path.
@pytest.mark.parametrize("jit_compile", [False, True])
def test_gibbs_states_samples_the_exact_joint_and_leaves_the_chains_alone(jit_compile):
    """Compiled sweeps from uniform random starts reach the enumerated joint of (v, h_1, h_2);
    the persistent chains are not moved; equal seeds reproduce, other seeds differ."""
    sizes = [3, 2, 2]
    dbm, (Ws, bs) = make_dbm(sizes, seed=6)
    _, log_p = oracles.dbm_joint(Ws, bs)
    init = random_states(sizes, 30000, seed=0)
    before = dbm.chain_states()
    samples = dbm.gibbs_states(40, seed=3, init=init, verbose=0, jit_compile=jit_compile)
    assert [s.shape for s in samples] == [(30000, n) for n in sizes]
    for s in samples:
        assert set(np.unique(s)) <= {0.0, 1.0}
    assert total_variation(np.concatenate(samples, axis=1), np.exp(log_p)) < 0.05
    for a, b in zip(before, dbm.chain_states(), strict=True):
        np.testing.assert_array_equal(a, b)
    again = dbm.gibbs_states(40, seed=3, init=init, verbose=0, jit_compile=jit_compile)
    other = dbm.gibbs_states(40, seed=4, init=init, verbose=0, jit_compile=jit_compile)
    for a, b in zip(samples, again, strict=True):
        np.testing.assert_array_equal(a, b)
    assert any(not np.array_equal(a, b) for a, b in zip(samples, other, strict=True))


def test_gibbs_states_is_a_markov_chain_from_the_persistent_chains():
    """Default start: the persistent chains. Zero sweeps return them; each sweep moves them;
    one sweep equals gibbs_step with the first step's seed."""
    dbm, _ = make_dbm(THREE_LAYERS, seed=4)
    chains = dbm.chain_states()
    for a, b in zip(dbm.gibbs_states(0, seed=1, verbose=0), chains, strict=True):
        np.testing.assert_array_equal(a, b)
    one = dbm.gibbs_states(1, seed=1, verbose=0)
    expected, _ = dbm.gibbs_step([tf.constant(c) for c in chains],
                                 seed=sampling.step_seed(sampling.as_stateless_seed(1), 0))
    for a, b in zip(one, expected, strict=True):
        np.testing.assert_array_equal(a, np_of(b))
    two = dbm.gibbs_states(2, seed=1, verbose=0)
    assert any(not np.array_equal(a, b) for a, b in zip(one, two, strict=True))


def test_gibbs_states_refuses_bad_starts():
    dbm, _ = make_dbm(THREE_LAYERS, seed=4)
    chains = dbm.chain_states()
    with pytest.raises(ValueError, match="list of 4 layer states"):
        dbm.gibbs_states(1, seed=0, init=chains[:2])
    with pytest.raises(ValueError, match="same number of chains"):
        dbm.gibbs_states(1, seed=0, init=[chains[0][:3]] + chains[1:])
    with pytest.raises(ValueError, match=r"values in \[0, 1\]"):
        dbm.gibbs_states(1, seed=0, init=[chains[0] * 2] + chains[1:])
    with pytest.raises(ValueError):
        dbm.gibbs_states(-1, seed=0)
    with pytest.raises((TypeError, ValueError)):
        dbm.gibbs_states(1, seed=None)
