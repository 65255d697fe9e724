"""Tests of course_lib.boltzmann.dbn (and the DBN parts of stacking/evaluation) against numpy
oracles written from Eqs. (2.1)-(2.6): brute-force sums over every hidden state, the exact expected
importance-weighted bound, and the wake/sleep/CD gradients as formulas."""

import math

import keras
import numpy as np
import oracles
import pytest
import tensorflow as tf

from course_lib.boltzmann.dbn import DBN
from course_lib.boltzmann.rbm import BernoulliRBM
from course_lib.boltzmann.stacking import greedy_layerwise, propagate_up, transposed_rbm
from course_lib.evaluation import exact_dbn_bound, exact_log_likelihood, exact_log_partition


def np_of(tensor):
    return np.asarray(keras.ops.convert_to_numpy(tensor), dtype=np.float64)


def random_binary(n, d, seed=0, p=0.5):
    return (np.random.default_rng(seed).random((n, d)) < p).astype("float32")


def set_dbn_params(dbn, seed, std=1.0):
    """Random N(0, std^2) values for every weight and bias (R and G drawn independently, so
    they differ); returns them as float64 arrays, keyed like the oracles' arguments."""
    rng = np.random.default_rng(seed)

    def draw(variable):
        value = rng.normal(0.0, std, tuple(variable.shape)).astype("float32")
        variable.assign(value)
        return value.astype(np.float64)

    return dict(R=[draw(w) for w in dbn.recognition_W], r=[draw(w) for w in dbn.recognition_bias],
                G=[draw(w) for w in dbn.generative_W], g=[draw(w) for w in dbn.generative_bias],
                W=draw(dbn.top.W), b=draw(dbn.top.visible_bias), c=draw(dbn.top.hidden_bias))


def params_of(dbn):
    """The DBN's current weights as float64 arrays, keyed like ``set_dbn_params``."""
    return dict(R=[np_of(w) for w in dbn.recognition_W], r=[np_of(w) for w in dbn.recognition_bias],
                G=[np_of(w) for w in dbn.generative_W], g=[np_of(w) for w in dbn.generative_bias],
                W=np_of(dbn.top.W), b=np_of(dbn.top.visible_bias), c=np_of(dbn.top.hidden_bias))


def oracle(params, V):
    """(exact log p(v), exact bound, Var_q of log p(v, h) - log q(h | v)) by enumeration."""
    log_joint, log_q, _ = dbn_tables(params, V)
    return oracles.dbn_exact_and_bound(log_joint, log_q)


def dbn_tables(params, V):
    p = params
    return oracles.dbn_tables(p["R"], p["r"], p["G"], p["g"], p["W"], p["b"], p["c"],
                              np.asarray(V, np.float64))


def tiny_dbn(sizes, seed, k=1, std=1.0):
    dbn = DBN(sizes, k=k, seed=seed)
    return dbn, set_dbn_params(dbn, seed + 100, std)


SIZES = [[5, 4, 3], [4, 3, 3, 2]]


# ----- exact log p(v) and the exact bound, Eqs. (2.1)-(2.4) -------------------------------
@pytest.mark.parametrize("sizes", SIZES)
def test_exact_dbn_bound_matches_brute_force_sum_over_every_layer(sizes):
    dbn, params = tiny_dbn(sizes, seed=1)
    assert not np.allclose(params["R"][0], params["G"][0])
    V = oracles.binary_states(sizes[0])
    log_p, bound = exact_dbn_bound(dbn, V)
    expected_log_p, expected_bound, _ = oracle(params, V)
    assert log_p.shape == bound.shape == (len(V),)
    np.testing.assert_allclose(log_p, expected_log_p, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(bound, expected_bound, rtol=1e-5, atol=1e-5)
    # The bound is a bound, and strictly so when recognition and generative weights differ.
    assert np.all(bound <= log_p + 1e-9)
    assert np.all(log_p - bound > 1e-3)
    # p(v) is a distribution over the 2^D visible vectors.
    assert oracles.logsumexp(log_p) == pytest.approx(0.0, abs=1e-5)
    assert oracles.logsumexp(expected_log_p) == pytest.approx(0.0, abs=1e-10)


def test_exact_dbn_bound_accepts_a_known_log_z_top():
    dbn, params = tiny_dbn([4, 3, 3, 2], seed=2)
    V = random_binary(6, 4, seed=1)
    log_z = exact_log_partition(dbn.top)
    assert log_z == pytest.approx(oracles.bernoulli_log_z(params["W"], params["b"], params["c"]),
                                  abs=1e-5)
    log_p, bound = exact_dbn_bound(dbn, V)
    shifted_p, shifted_bound = exact_dbn_bound(dbn, V, log_z_top=log_z + 1.0)
    np.testing.assert_allclose(shifted_p, log_p - 1.0, atol=1e-6)
    np.testing.assert_allclose(shifted_bound, bound - 1.0, atol=1e-6)


# ----- the stacking argument (Hinton, Osindero & Teh 2006, section 4) -----------------------
def _rbm(D, H, seed, std=1.0):
    rbm = BernoulliRBM(D, H, seed=seed)
    rng = np.random.default_rng(seed + 50)
    for variable in (rbm.W, rbm.visible_bias, rbm.hidden_bias):
        variable.assign(rng.normal(0.0, std, tuple(variable.shape)).astype("float32"))
    return rbm


def test_transposed_rbm_on_top_makes_the_bound_equal_the_rbm_log_likelihood():
    rbm = _rbm(5, 4, seed=3)
    top = transposed_rbm(rbm)
    np.testing.assert_array_equal(np_of(top.W), np_of(rbm.W).T)
    np.testing.assert_array_equal(np_of(top.visible_bias), np_of(rbm.hidden_bias))
    np.testing.assert_array_equal(np_of(top.hidden_bias), np_of(rbm.visible_bias))
    dbn = DBN.from_rbms([rbm, top])
    assert dbn.layer_sizes == [5, 4, 5]
    V = oracles.binary_states(5)
    log_p, bound = exact_dbn_bound(dbn, V)
    log_z = exact_log_partition(rbm)
    rbm_log_p = np.array([exact_log_likelihood(rbm, v[None], log_z=log_z) for v in V])
    # Equal up to float32 rounding (about 1e-6 on values of about -5).
    np.testing.assert_allclose(bound, rbm_log_p, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(log_p, rbm_log_p, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(bound, log_p, atol=1e-9)
    W, b, c = (np_of(x).astype(np.float64) for x in (rbm.W, rbm.visible_bias, rbm.hidden_bias))
    np.testing.assert_allclose(rbm_log_p, oracles.bernoulli_log_pv(W, b, c, V), atol=1e-5)


def test_training_the_top_rbm_on_posterior_samples_does_not_lower_the_bound():
    """Greedy step: with q(h1 | v) fixed, the bound changes by exactly the change of
    E_data E_q[log p_top(h1)], so fitting the top RBM to samples of the aggregated posterior
    raises it (the data come from a fixed distribution unlike the RBM's own p(v))."""
    D, H = 5, 4
    rbm = _rbm(D, H, seed=4)
    dbn = DBN.from_rbms([rbm, transposed_rbm(rbm)], seed=0)
    V = oracles.binary_states(D)
    rng = np.random.default_rng(0)
    p_data = rng.dirichlet(np.full(len(V), 0.3))
    x = V[rng.choice(len(V), size=4000, p=p_data)].astype("float32")
    h1 = propagate_up(rbm, x, propagate="samples", seed=1)
    assert set(np.unique(h1)) <= {0.0, 1.0}

    def mean_bound():
        return float(p_data @ exact_dbn_bound(dbn, V)[1])

    def top_log_prior():
        Hs = oracles.binary_states(H)
        W, b, c = (np_of(x) for x in (dbn.top.W, dbn.top.visible_bias, dbn.top.hidden_bias))
        return oracles.bernoulli_log_pv(W, b, c, Hs)

    before, prior_before = mean_bound(), top_log_prior()
    dbn.top.compile(optimizer=keras.optimizers.SGD(0.05))
    dbn.top.fit(h1, batch_size=20, epochs=2, verbose=0)            # 400 CD-1 updates
    after, prior_after = mean_bound(), top_log_prior()
    # Exact identity: the change of the bound is E_data E_q [log p_top'(h) - log p_top(h)].
    _, log_q, hidden = dbn_tables(params_of(dbn), V)
    idx = oracles.state_index(hidden[0])
    expected_change = p_data @ (np.exp(log_q) @ (prior_after - prior_before)[idx])
    assert after - before == pytest.approx(expected_change, abs=1e-4)
    assert after >= before - 1e-3, (before, after)
    assert after > before + 0.01, (before, after)   # and it clearly improved here


# ----- the Monte Carlo bounds, Eqs. (2.4) and (2.5) -----------------------------------------
MC_V = np.array([[1, 0, 1, 1], [0, 0, 0, 0], [1, 1, 0, 1]], dtype="float32")


def _mc_dbn():
    dbn, params = tiny_dbn([4, 3, 3, 2], seed=5)
    log_joint, log_q, _ = dbn_tables(params, MC_V)
    return dbn, exact_log_partition(dbn.top), log_joint, log_q


def _replicated(dbn, log_z, replicas, **kwargs):
    """lower_bound on each row of MC_V repeated ``replicas`` times (independent draws per
    row, one traced batch): the (len(MC_V), replicas) values."""
    v = np.repeat(MC_V, replicas, axis=0)
    values = dbn.lower_bound(v, log_z, batch_size=len(v), **kwargs)
    assert values.dtype == np.float64 and values.shape == (len(v),)
    return values.reshape(len(MC_V), replicas)


def test_lower_bound_matches_the_exact_bound_within_monte_carlo_error():
    dbn, log_z, log_joint, log_q = _mc_dbn()
    exact, bound, variance = oracles.dbn_exact_and_bound(log_joint, log_q)
    np.testing.assert_allclose(exact_dbn_bound(dbn, MC_V)[1], bound, atol=1e-5)
    assert np.all(variance > 0.1) and np.all(bound < exact - 0.1)   # a non-trivial check
    K, replicas = 8, 1000                       # 8000 draws of h ~ q(h | v) per image
    values = _replicated(dbn, log_z, replicas, num_samples=K, seed=3)
    se = np.sqrt(variance / (K * replicas))
    assert np.all(np.abs(values.mean(1) - bound) < 5 * se + 1e-4), (values.mean(1), bound, se)
    # Each value averages K independent draws: its variance is Var_q / K.
    np.testing.assert_allclose(values.var(1), variance / K, rtol=0.2)


def test_lower_bound_is_reproducible_for_a_seed():
    dbn, log_z, _, _ = _mc_dbn()
    v = random_binary(7, 4, seed=2)
    first = dbn.lower_bound(v, log_z, num_samples=2, seed=11)
    np.testing.assert_array_equal(dbn.lower_bound(v, log_z, num_samples=2, seed=11), first)
    assert not np.array_equal(dbn.lower_bound(v, log_z, num_samples=2, seed=12), first)
    # With K = 1 the importance-weighted bound is the plain bound, draw for draw.
    np.testing.assert_allclose(
        dbn.lower_bound(v, log_z, num_samples=1, seed=5, importance_weighted=True),
        dbn.lower_bound(v, log_z, num_samples=1, seed=5), atol=1e-6)


def test_importance_weighted_bound_matches_its_exact_expectation():
    """E[log (1/2) (w_1 + w_2)], w = p(v, h) / q(h | v), enumerated over all pairs of h."""
    dbn, log_z, log_joint, log_q = _mc_dbn()
    exact, bound, _ = oracles.dbn_exact_and_bound(log_joint, log_q)
    iw = [oracles.expected_importance_weighted_bound(log_joint, log_q, K) for K in (1, 2, 3)]
    np.testing.assert_allclose(iw[0], bound, atol=1e-9)
    assert np.all(bound + 0.05 < iw[1]) and np.all(iw[1] + 0.05 < iw[2])
    assert np.all(iw[2] < exact - 0.05)
    expected = iw[1]
    values = _replicated(dbn, log_z, 4000, num_samples=2, seed=7, importance_weighted=True)
    se = values.std(1) / math.sqrt(values.shape[1])
    assert np.all(np.abs(values.mean(1) - expected) < 5 * se + 1e-4), (values.mean(1),
                                                                         expected, se)


def test_importance_weighted_bound_lies_between_bound_and_log_p_and_tightens():
    dbn, log_z, log_joint, log_q = _mc_dbn()
    exact, bound, _ = oracles.dbn_exact_and_bound(log_joint, log_q)
    gaps, errors = [], []
    for K in (1, 4, 16):
        values = _replicated(dbn, log_z, 400, num_samples=K, seed=K, importance_weighted=True)
        mean, se = values.mean(1), values.std(1) / math.sqrt(values.shape[1])
        assert np.all(mean > bound - 5 * se - 1e-4), (K, mean, bound)
        assert np.all(mean < exact + 5 * se + 1e-4), (K, mean, exact)
        gaps.append(exact - mean)
        errors.append(se)
    gaps, errors = np.array(gaps), np.array(errors)
    assert np.all(gaps[1] + 3 * errors[1] < gaps[0]), gaps
    assert np.all(gaps[2] + 3 * errors[2] < gaps[1]), gaps
    assert np.all(gaps[2] < 0.6 * gaps[0]), gaps


# ----- up-down fine-tuning, Eq. (2.6) --------------------------------------------------------
def test_wake_and_sleep_losses_have_the_delta_rule_gradients():
    dbn, p = tiny_dbn([4, 3, 3, 2], seed=6)
    n = 9
    states = [random_binary(n, size, seed=s) for s, size in enumerate(dbn.layer_sizes[:-1])]
    states[0] = np.random.default_rng(5).random((n, 4)).astype("float32")   # probabilities
    x = [s.astype(np.float64) for s in states]
    generative = dbn.generative_W + dbn.generative_bias
    recognition = dbn.recognition_W + dbn.recognition_bias
    with tf.GradientTape(persistent=True) as tape:
        wake = dbn.wake_loss([tf.constant(s) for s in states])
        sleep = dbn.sleep_loss([tf.constant(s) for s in states])
    expected_wake = -sum(oracles.bernoulli_log_prob(x[l], x[l + 1] @ p["G"][l].T + p["g"][l])
                         .mean() for l in range(2))
    expected_sleep = -sum(oracles.bernoulli_log_prob(x[l + 1], x[l] @ p["R"][l] + p["r"][l])
                          .mean() for l in range(2))
    assert float(wake) == pytest.approx(expected_wake, rel=1e-5)
    assert float(sleep) == pytest.approx(expected_sleep, rel=1e-5)
    wake_grads = tape.gradient(wake, generative + recognition)
    sleep_grads = tape.gradient(sleep, recognition + generative)
    assert all(g is None for g in wake_grads[4:]) and all(g is None for g in sleep_grads[4:])
    for l in range(2):
        # wake: dG_l = -(h_l - sigmoid(g_l + h_{l+1} G_l^T))^T h_{l+1} / n (G_l is n_l x n_{l+1})
        dGt, dg = oracles.sigmoid_layer_nll_gradients(x[l], x[l + 1], p["G"][l].T, p["g"][l])
        np.testing.assert_allclose(np_of(wake_grads[l]), dGt.T, rtol=1e-4, atol=1e-6)
        np.testing.assert_allclose(np_of(wake_grads[2 + l]), dg, rtol=1e-4, atol=1e-6)
        # sleep: dR_l = -h_l^T (h_{l+1} - sigmoid(r_l + h_l R_l)) / n
        dR, dr = oracles.sigmoid_layer_nll_gradients(x[l + 1], x[l], p["R"][l], p["r"][l])
        np.testing.assert_allclose(np_of(sleep_grads[l]), dR, rtol=1e-4, atol=1e-6)
        np.testing.assert_allclose(np_of(sleep_grads[2 + l]), dr, rtol=1e-4, atol=1e-6)


def test_one_fit_step_applies_the_wake_top_and_sleep_updates():
    """Biases of +-30 make every sampled state deterministic (the up pass, the top CD chain
    and the down pass), so one SGD step of fit can be recomputed exactly in numpy:
    theta <- theta - lr * (wake, CD and sleep gradients of Eq. 2.6)."""
    lr, n = 0.1, 6
    dbn, p = tiny_dbn([4, 3, 3, 2], seed=7, k=2)
    rng = np.random.default_rng(8)
    sat = {}
    for name, variable in (("r0", dbn.recognition_bias[0]), ("r1", dbn.recognition_bias[1]),
                           ("g1", dbn.generative_bias[1]), ("b", dbn.top.visible_bias),
                           ("c", dbn.top.hidden_bias)):
        sat[name] = np.where(rng.random(tuple(variable.shape)) < 0.5, -30.0, 30.0)
        variable.assign(sat[name].astype("float32"))
    p["r"], p["g"][1], p["b"], p["c"] = [sat["r0"], sat["r1"]], sat["g1"], sat["b"], sat["c"]
    v = random_binary(n, 4, seed=9).astype(np.float64)

    def rows(pattern):
        return np.tile((pattern > 0).astype(np.float64), (n, 1))

    # Up pass (recognition biases decide), CD-2 in the top (its biases decide), down pass.
    h1, h2 = rows(sat["r0"]), rows(sat["r1"])
    negative = rows(sat["b"])
    sleep_h1 = rows(sat["g1"])
    sleep_v = oracles.sigmoid(sleep_h1 @ p["G"][0].T + p["g"][0])
    expected = {}
    for l, (below, above) in enumerate(((v, h1), (h1, h2))):
        dGt, dg = oracles.sigmoid_layer_nll_gradients(below, above, p["G"][l].T, p["g"][l])
        expected[f"generative_W{l}"] = p["G"][l] - lr * dGt.T
        expected[f"generative_bias{l}"] = p["g"][l] - lr * dg
    for l, (below, above) in enumerate(((sleep_v, sleep_h1), (sleep_h1, negative))):
        dR, dr = oracles.sigmoid_layer_nll_gradients(above, below, p["R"][l], p["r"][l])
        expected[f"recognition_W{l}"] = p["R"][l] - lr * dR
        expected[f"recognition_bias{l}"] = p["r"][l] - lr * dr
    data_grads = oracles.rbm_free_energy_gradients(p["W"], p["b"], p["c"], h2)
    model_grads = oracles.rbm_free_energy_gradients(p["W"], p["b"], p["c"], negative)
    for name, value, d, m in zip(("W", "visible_bias", "hidden_bias"),
                                 (p["W"], p["b"], p["c"]), data_grads, model_grads,
                                 strict=True):
        expected[f"top_rbm/{name}"] = value - lr * (d - m)

    dbn.compile(optimizer=keras.optimizers.SGD(lr))
    history = dbn.fit(v.astype("float32"), batch_size=n, epochs=1, verbose=0)
    assert int(dbn.optimizer.iterations) == 1
    top_ids = {id(w) for w in dbn.top.trainable_variables}
    got = {("top_rbm/" if id(w) in top_ids else "") + w.name: np_of(w)
           for w in dbn.trainable_variables}
    assert set(got) == set(expected)
    for name, value in expected.items():
        np.testing.assert_allclose(got[name], value, rtol=1e-5, atol=1e-5, err_msg=name)
    wake_nll = -sum(oracles.bernoulli_log_prob(a, b @ p["G"][l].T + p["g"][l]).mean()
                    for l, (a, b) in enumerate(((v, h1), (h1, h2))))
    assert history.history["wake_nll"][0] == pytest.approx(wake_nll, rel=1e-5)


@pytest.mark.parametrize("jit_compile", [False, True])
def test_fine_tuning_unties_the_weights(jit_compile):
    rbms = [_rbm(6, 4, seed=10, std=0.5), _rbm(4, 3, seed=11, std=0.5),
            _rbm(3, 2, seed=12, std=0.5)]
    dbn = DBN.from_rbms(rbms, k=2, seed=1)
    for R, G in zip(dbn.recognition_W, dbn.generative_W, strict=True):
        np.testing.assert_array_equal(np_of(R), np_of(G))
    before = [np_of(w) for w in dbn.trainable_variables]
    dbn.compile(optimizer=keras.optimizers.SGD(0.1), jit_compile=jit_compile)
    history = dbn.fit(random_binary(64, 6, seed=3), batch_size=16, epochs=1, verbose=0)
    assert int(dbn.optimizer.iterations) == 4
    assert set(history.history) == {"wake_nll", "sleep_nll", "top_free_energy"}
    assert all(math.isfinite(values[-1]) for values in history.history.values())
    for R, G in zip(dbn.recognition_W, dbn.generative_W, strict=True):
        assert not np.allclose(np_of(R), np_of(G))
    for w, old in zip(dbn.trainable_variables, before, strict=True):
        assert np.all(np.isfinite(np_of(w)))
        assert not np.array_equal(np_of(w), old), w.path


# ----- generation ------------------------------------------------------------------------------
def test_sample_shapes_ranges_and_seeds():
    dbn, _ = tiny_dbn([5, 4, 3], seed=12)
    samples = dbn.sample(7, 5, seed=1)
    assert samples.shape == (7, 5)
    assert np.all((samples >= 0) & (samples <= 1))
    np.testing.assert_array_equal(dbn.sample(7, 5, seed=1), samples)
    assert not np.array_equal(dbn.sample(7, 5, seed=2), samples)
    images = random_binary(3, 5, seed=4)
    from_images = dbn.sample(None, 4, seed=1, init=images)
    assert from_images.shape == (3, 5) and np.all((from_images >= 0) & (from_images <= 1))
    np.testing.assert_array_equal(dbn.sample(None, 4, seed=1, init=images), from_images)
    assert dbn.sample(None, 0, seed=1, init=images).shape == (3, 5)
    assert dbn.sample(2, 0, seed=1).shape == (2, 5)


def test_sample_draws_from_the_dbn_marginal():
    """After many top-level Gibbs sweeps, the mean of p(v | h_1) over the chains is the exact
    E[v] = sum_v p(v) v of Eq. (2.1)."""
    dbn, params = tiny_dbn([4, 3, 3, 2], seed=13)
    V = oracles.binary_states(4)
    exact, _, _ = oracle(params, V)
    mean_v = np.exp(exact) @ V
    n = 20000
    samples = dbn.sample(n, 40, seed=3).astype(np.float64)
    se = samples.std(0) / math.sqrt(n)
    assert np.all(np.abs(samples.mean(0) - mean_v) < 5 * se + 1e-3), (samples.mean(0), mean_v)


def test_passes_and_call_shapes():
    dbn, p = tiny_dbn([4, 3, 3, 2], seed=14)
    v = random_binary(5, 4, seed=1)
    up = dbn.up_pass(v, seed=1)
    assert [tuple(s.shape) for s in up] == [(5, 4), (5, 3), (5, 3)]
    assert all(set(np.unique(np_of(s))) <= {0.0, 1.0} for s in up[1:])
    probs = dbn.up_pass(v, sample=False)
    h1 = oracles.sigmoid(v @ p["R"][0] + p["r"][0])
    np.testing.assert_allclose(np_of(probs[1]), h1, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(np_of(probs[2]), oracles.sigmoid(h1 @ p["R"][1] + p["r"][1]),
                               rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(np_of(dbn.up_pass(v, seed=1)[2]), np_of(up[2]))
    h_top = random_binary(5, 3, seed=2)
    down = dbn.down_pass(tf.constant(h_top), seed=2)
    assert [tuple(s.shape) for s in down] == [(5, 4), (5, 3), (5, 3)]
    np.testing.assert_array_equal(np_of(down[2]), h_top)
    h1 = np_of(down[1])
    assert set(np.unique(h1)) <= {0.0, 1.0}
    np.testing.assert_allclose(np_of(down[0]), oracles.sigmoid(h1 @ p["G"][0].T + p["g"][0]),
                               rtol=1e-5, atol=1e-6)
    out = np_of(dbn(tf.constant(v)))
    assert out.shape == (5, 4) and np.all((out >= 0) & (out <= 1))
    # call: mean-field up pass, top RBM round trip, mean-field down pass.
    h1_probs = oracles.sigmoid(v @ p["R"][0] + p["r"][0])
    h2 = oracles.sigmoid(h1_probs @ p["R"][1] + p["r"][1])
    top = oracles.sigmoid(p["b"] + oracles.sigmoid(p["c"] + h2 @ p["W"]) @ p["W"].T)
    expected = oracles.sigmoid(oracles.sigmoid(top @ p["G"][1].T + p["g"][1]) @ p["G"][0].T
                               + p["g"][0])
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-6)


# ----- serialization ---------------------------------------------------------------------------
def test_save_and_load_keep_every_weight_and_the_seed_state(tmp_path):
    dbn, _ = tiny_dbn([5, 4, 3, 2], seed=15, k=2)
    dbn.compile(optimizer=keras.optimizers.SGD(0.05))
    dbn.fit(random_binary(32, 5, seed=5), batch_size=8, epochs=1, verbose=0)
    path = tmp_path / "dbn.keras"
    dbn.save(path)
    loaded = keras.saving.load_model(path)
    assert type(loaded) is DBN
    assert loaded.get_config() == dbn.get_config()
    assert [w.path for w in loaded.weights] == [w.path for w in dbn.weights]
    for a, b in zip(dbn.weights, loaded.weights, strict=True):
        np.testing.assert_array_equal(np_of(a), np_of(b), err_msg=a.path)
    assert len(loaded.top.trainable_variables) == 3          # the nested top RBM's W, b, c
    for a, b in zip(dbn.top.weights, loaded.top.weights, strict=True):
        np.testing.assert_array_equal(np_of(a), np_of(b), err_msg=a.path)
    fresh = DBN([5, 4, 3, 2], k=2, seed=15)
    for mine, theirs, new in ((dbn, loaded, fresh), (dbn.top, loaded.top, fresh.top)):
        state = np_of(mine.seed_generator.state)
        assert not np.array_equal(np_of(new.seed_generator.state), state)  # fit advanced it
        np.testing.assert_array_equal(np_of(theirs.seed_generator.state), state)
    # ... so the loaded model continues the same random stream.
    v = random_binary(6, 5, seed=6)
    np.testing.assert_array_equal(np_of(loaded.up_pass(v)[-1]), np_of(dbn.up_pass(v)[-1]))
    log_z = exact_log_partition(dbn.top)
    assert exact_log_partition(loaded.top) == pytest.approx(log_z, abs=1e-6)
    np.testing.assert_array_equal(exact_dbn_bound(loaded, v)[1], exact_dbn_bound(dbn, v)[1])


def test_config_round_trip():
    dbn = DBN([6, 4, 3, 2], k=3, weight_init_std=0.05, seed=4, name="my_dbn")
    config = dbn.get_config()
    for key, value in dict(layer_sizes=[6, 4, 3, 2], k=3, weight_init_std=0.05, seed=4,
                           name="my_dbn").items():
        assert config[key] == value, key
    clone = DBN.from_config(config)
    assert clone.get_config() == config
    assert clone.top.k == 3 and clone.num_directed == 2
    for a, b in zip(dbn.weights, clone.weights, strict=True):   # same seed, same weights
        np.testing.assert_array_equal(np_of(a), np_of(b))
    # Seeded initialisation is tied: R_l = G_l before any fine-tuning.
    for R, G in zip(dbn.recognition_W, dbn.generative_W, strict=True):
        np.testing.assert_array_equal(np_of(R), np_of(G))
        assert 0.01 < np_of(R).std() < 0.1


# ----- bad input -------------------------------------------------------------------------------
def test_constructor_and_from_rbms_reject_bad_stacks():
    with pytest.raises(ValueError, match="at least two hidden layers"):
        DBN([5, 4])
    with pytest.raises(ValueError, match="layer size"):
        DBN([5, 0, 3])
    with pytest.raises(ValueError, match="at least two RBMs"):
        DBN.from_rbms([BernoulliRBM(5, 4)])
    with pytest.raises(ValueError, match="must match"):
        DBN.from_rbms([BernoulliRBM(5, 4), BernoulliRBM(3, 2)])


def test_bad_data_is_rejected_with_clear_errors():
    dbn, _ = tiny_dbn([4, 3, 2], seed=16)
    dbn.compile(optimizer=keras.optimizers.SGD(0.1))
    log_z = exact_log_partition(dbn.top)
    bad = [(np.zeros((3, 5), "float32"), r"shape \(n, 4\)"),
           (np.array([[0.0, 1.0, np.nan, 0.0]]), "NaN"),
           (np.array([[0.0, 1.0, 2.0, 0.0]]), r"\[0, 1\]"),
           (np.array([[0.0, -0.5, 1.0, 0.0]]), r"\[0, 1\]")]
    for x, match in bad:
        with pytest.raises(ValueError, match=match):
            dbn.check_visible(x)
        with pytest.raises(ValueError, match=match):
            dbn.fit(x, verbose=0)
        with pytest.raises(ValueError, match=match):
            dbn.lower_bound(x, log_z)
        with pytest.raises(ValueError, match=match):
            exact_dbn_bound(dbn, x)
        with pytest.raises(ValueError, match=match):
            dbn.sample(None, 1, seed=0, init=x)
    assert int(dbn.optimizer.iterations) == 0
    with pytest.raises(ValueError, match="num_samples"):
        dbn.lower_bound(random_binary(2, 4), log_z, num_samples=0)


def test_exact_dbn_bound_refuses_too_many_directed_hidden_units():
    dbn = DBN([3, 11, 10, 2], seed=0)
    with pytest.raises(ValueError, match="at most 20"):
        exact_dbn_bound(dbn, random_binary(2, 3), log_z_top=0.0)
    with pytest.raises(ValueError, match="at most 20"):
        exact_dbn_bound(DBN([3, 21, 2], seed=0), random_binary(2, 3))


# ----- greedy training then stacking -----------------------------------------------------------
def test_greedy_layerwise_then_from_rbms_gives_tied_weights():
    rbms = [BernoulliRBM(6, 4, seed=1), BernoulliRBM(4, 3, seed=2), BernoulliRBM(3, 2, seed=3)]
    initial = [np_of(r.W) for r in rbms]
    histories = greedy_layerwise(rbms, random_binary(40, 6, seed=7), epochs=1, batch_size=10,
                                 propagate="samples")
    assert len(histories) == 3
    assert all(not np.array_equal(np_of(r.W), w0) for r, w0 in zip(rbms, initial, strict=True))
    dbn = DBN.from_rbms(rbms, k=2)
    assert dbn.layer_sizes == [6, 4, 3, 2] and dbn.k == 2 and dbn.top.k == 2
    for l, rbm in enumerate(rbms[:-1]):
        for variable, source in ((dbn.recognition_W[l], rbm.W), (dbn.generative_W[l], rbm.W),
                                 (dbn.recognition_bias[l], rbm.hidden_bias),
                                 (dbn.generative_bias[l], rbm.visible_bias)):
            np.testing.assert_array_equal(np_of(variable), np_of(source))
    for mine, theirs in zip(dbn.top.trainable_variables, rbms[-1].trainable_variables,
                            strict=True):
        np.testing.assert_array_equal(np_of(mine), np_of(theirs))


def test_classifier_starts_from_the_recognition_weights():
    dbn = DBN([6, 5, 4, 3], seed=0, weight_init_std=0.5)
    model = dbn.classifier(7, seed=0)
    dense = model.layers
    assert len(dense) == 4
    for layer, (W, c) in zip(dense[:2], zip(dbn.recognition_W, dbn.recognition_bias, strict=True),
                             strict=True):
        np.testing.assert_array_equal(layer.kernel.numpy(), W.numpy())
        np.testing.assert_array_equal(layer.bias.numpy(), c.numpy())
    np.testing.assert_array_equal(dense[2].kernel.numpy(), dbn.top.W.numpy())
    np.testing.assert_array_equal(dense[2].bias.numpy(), dbn.top.hidden_bias.numpy())
    x = np.random.default_rng(0).random((5, 6)).astype("float32")
    h = x
    for W, c in zip(dbn.recognition_W, dbn.recognition_bias, strict=True):
        h = 1.0 / (1.0 + np.exp(-(h @ W.numpy() + c.numpy())))
    h = 1.0 / (1.0 + np.exp(-(h @ dbn.top.W.numpy() + dbn.top.hidden_bias.numpy())))
    logits = h @ dense[3].kernel.numpy() + dense[3].bias.numpy()
    expected = np.exp(logits - logits.max(1, keepdims=True))
    expected /= expected.sum(1, keepdims=True)
    np.testing.assert_allclose(model(x).numpy(), expected, atol=1e-5)
    with pytest.raises(ValueError, match="num_classes"):
        dbn.classifier(0)


def test_bound_and_sample_progress_bars_show_when_asked_and_change_nothing(capsys):
    dbn, log_z, _, _ = _mc_dbn()
    v = random_binary(30, dbn.layer_sizes[0], seed=1)
    quiet = dbn.log_importance_weights(v, log_z, num_samples=4, seed=3, batch_size=20, verbose=0)
    assert capsys.readouterr().out == ""
    shown = dbn.log_importance_weights(v, log_z, num_samples=4, seed=3, batch_size=20, verbose=1)
    out = capsys.readouterr().out
    np.testing.assert_array_equal(quiet, shown)
    assert "6/6" in out, out                     # 30 images x 4 copies in batches of 5 images
    samples_quiet = dbn.sample(3, 4, seed=2, verbose=0)
    assert capsys.readouterr().out == ""
    samples_shown = dbn.sample(3, 4, seed=2, verbose=1)
    assert "4/4" in capsys.readouterr().out
    np.testing.assert_array_equal(samples_quiet, samples_shown)
