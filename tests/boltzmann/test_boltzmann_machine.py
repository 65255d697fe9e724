"""Tests of course_lib.boltzmann.boltzmann_machine against brute-force numpy enumeration."""

import itertools

import keras
import numpy as np
import pytest
import tensorflow as tf

from course_lib.boltzmann.boltzmann_machine import MAX_UNITS, BoltzmannMachine
from course_lib.training import DEFAULT_STEPS_PER_EXECUTION, TrainingDivergedError

# ----- numpy oracle -------------------------------------------------------------------------


def np_states(n):
    """All binary vectors of length n (itertools order, independent of the module)."""
    return np.array(list(itertools.product([0.0, 1.0], repeat=n))).reshape(2**n, n)


def np_energy(s, L, a):
    return -0.5 * np.einsum("ni,ij,nj->n", s, L, s) - s @ a


def np_joint(L, a):
    """(states, exact probabilities) of the full Boltzmann distribution."""
    S = np_states(len(a))
    logits = -np_energy(S, L, a)
    p = np.exp(logits - logits.max())
    return S, p / p.sum()


def np_marginal(L, a, n_visible):
    """(visible states, exact p(v)) by summing the joint over h."""
    S, p = np_joint(L, a)
    V = np_states(n_visible)
    pv = np.array([p[np.all(S[:, :n_visible] == v, axis=1)].sum() for v in V])
    return V, pv


def codes(s):
    return (np.asarray(s) @ (2 ** np.arange(np.asarray(s).shape[1]))).astype(int)


def total_variation(samples, S, p):
    freq = np.bincount(codes(samples), minlength=len(p)) / len(samples)
    exact = np.zeros(len(p))
    exact[codes(S)] = p
    return 0.5 * np.abs(freq - exact).sum()


def random_params(n_units, scale, seed):
    rng = np.random.default_rng(seed)
    U = rng.normal(0.0, scale, (n_units, n_units))
    L = np.triu(U, 1) + np.triu(U, 1).T
    return L, rng.normal(0.0, 0.5, n_units)


def machine(n_visible, n_hidden, scale=1.0, seed=0):
    """A BoltzmannMachine with known symmetric, zero-diagonal L and bias a."""
    L, a = random_params(n_visible + n_hidden, scale, seed)
    bm = BoltzmannMachine(n_visible, n_hidden, seed=seed)
    bm.couplings.assign(L.astype("float32"))
    bm.bias.assign(a.astype("float32"))
    return bm, L, a


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


# ----- parametrization, energy and conditionals ----------------------------------------------


def test_coupling_matrix_is_symmetric_with_zero_diagonal_from_any_weight():
    bm = BoltzmannMachine(3, 2, seed=0)
    U = np.random.default_rng(1).normal(size=(5, 5))
    bm.couplings.assign(U.astype("float32"))
    expected = 0.5 * (U + U.T)
    np.fill_diagonal(expected, 0.0)
    np.testing.assert_allclose(bm.coupling_matrix().numpy(), expected, atol=1e-6)
    np.testing.assert_allclose(bm.L.numpy(), expected, atol=1e-6)


def test_energy_matches_numpy_on_every_state():
    bm, L, a = machine(3, 2, seed=1)
    S = np_states(5)
    np.testing.assert_allclose(bm.energy(S).numpy(), np_energy(S, L, a), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("i", range(5))
def test_conditional_is_ratio_of_exact_joint_probabilities(i):
    bm, L, a = machine(3, 2, seed=2)
    S, p = np_joint(L, a)
    on, off = S.copy(), S.copy()
    on[:, i], off[:, i] = 1.0, 0.0
    p_on, p_off = np.exp(-np_energy(on, L, a)), np.exp(-np_energy(off, L, a))
    expected = p_on / (p_on + p_off)
    np.testing.assert_allclose(bm.conditional_prob(S, i).numpy(), expected, atol=1e-5)


# ----- exact probabilities -------------------------------------------------------------------


@pytest.mark.parametrize("n_visible, n_hidden", [(3, 0), (2, 3), (4, 2)])
def test_log_prob_matches_brute_force_marginal_and_sums_to_one(n_visible, n_hidden):
    bm, L, a = machine(n_visible, n_hidden, seed=3)
    V, pv = np_marginal(L, a, n_visible)
    log_p = bm.log_prob(V).numpy()
    np.testing.assert_allclose(log_p, np.log(pv), atol=1e-4)
    assert np.exp(log_p).sum() == pytest.approx(1.0, abs=1e-5)
    S = np_states(n_visible + n_hidden)
    expected_log_z = np.log(np.exp(-np_energy(S, L, a)).sum())
    assert float(bm.log_partition()) == pytest.approx(expected_log_z, abs=1e-4)


def test_gradient_of_mean_log_likelihood_is_the_boltzmann_learning_rule():
    n_visible, n_hidden = 3, 2
    bm, L, a = machine(n_visible, n_hidden, seed=4)
    data = np.array([[1, 0, 1], [1, 1, 0], [0, 0, 1], [1, 0, 1]], dtype="float32")
    with tf.GradientTape() as tape:
        objective = tf.reduce_mean(bm.log_prob(data))
    grad_U, grad_a = tape.gradient(objective, [bm.couplings, bm.bias])

    # <.>_data: v clamped to each row, h averaged over the exact posterior p(h | v).
    H = np_states(n_hidden)
    mean_s, mean_ss = np.zeros(5), np.zeros((5, 5))
    for v in data:
        S = np.hstack([np.tile(v, (len(H), 1)), H])
        w = np.exp(-np_energy(S, L, a))
        w /= w.sum()
        mean_s += w @ S / len(data)
        mean_ss += np.einsum("k,ki,kj->ij", w, S, S) / len(data)
    S, p = np_joint(L, a)
    model_s, model_ss = p @ S, np.einsum("k,ki,kj->ij", p, S, S)
    np.testing.assert_allclose(grad_a.numpy(), mean_s - model_s, atol=2e-5)
    expected_U = 0.5 * (mean_ss - model_ss)  # each U_ij carries half of its pair's gradient
    np.fill_diagonal(expected_U, 0.0)
    np.testing.assert_allclose(grad_U.numpy(), expected_U, atol=2e-5)


# ----- Gibbs sampling ------------------------------------------------------------------------


def exact_samples(L, a, n, seed):
    S, p = np_joint(L, a)
    return S[np.random.default_rng(seed).choice(len(p), size=n, p=p)].astype("float32"), S, p


def test_single_site_sweep_leaves_the_exact_distribution_invariant():
    bm, L, a = machine(2, 2, scale=1.5, seed=5)
    start, S, p = exact_samples(L, a, 20000, seed=0)
    assert total_variation(start, S, p) < 0.03
    after = bm.gibbs_sweep(start, seed=7).numpy()
    assert set(np.unique(after)) <= {0.0, 1.0}
    assert total_variation(after, S, p) < 0.03
    # The test can fail: a simultaneous update of all units with the same conditionals
    # moves this distribution far away (exact transition matrix, no sampling noise).
    probs_on = sigmoid(a + S @ L)  # (states, units)
    T = np.prod(np.where(S[None, :, :] == 1.0, probs_on[:, None, :],
                         1.0 - probs_on[:, None, :]), axis=-1)
    assert 0.5 * np.abs(p @ T - p).sum() > 0.1


def test_clamped_sweep_keeps_v_and_leaves_the_joint_invariant():
    bm, L, a = machine(2, 2, scale=1.5, seed=6)
    start, S, p = exact_samples(L, a, 20000, seed=1)
    after = bm.gibbs_sweep_visible_clamped(start, seed=3).numpy()
    np.testing.assert_array_equal(after[:, :2], start[:, :2])
    assert total_variation(after, S, p) < 0.03


# jit_compile=True is what a GPU runs ("auto"); XLA draws other numbers from the same seed,
# so the check is the distribution, not equality with the default path.
@pytest.mark.parametrize("jit_compile", [False, True])
def test_long_run_samples_approach_the_exact_visible_marginal(jit_compile):
    bm, L, a = machine(3, 2, scale=1.0, seed=8)
    V, pv = np_marginal(L, a, 3)
    samples = bm.sample(4000, 30, seed=0, jit_compile=jit_compile)
    assert samples.shape == (4000, 3)
    assert total_variation(samples, V, pv) < 0.04
    full = bm.sample(10, 2, seed=0, full_state=True)
    assert full.shape == (10, 5)


def test_sampling_is_reproducible_under_a_seed():
    bm, _, _ = machine(3, 2, seed=9)
    np.testing.assert_array_equal(bm.sample(50, 5, seed=3), bm.sample(50, 5, seed=3))
    assert not np.array_equal(bm.sample(50, 5, seed=3), bm.sample(50, 5, seed=4))
    s = np_states(5)
    np.testing.assert_array_equal(bm.gibbs_sweep(s, seed=1), bm.gibbs_sweep(s, seed=1))


# ----- training and saving -------------------------------------------------------------------


def test_training_lowers_the_exact_negative_log_likelihood():
    patterns = np.array([[1, 1, 0, 0], [0, 0, 1, 1], [1, 0, 1, 0]], dtype="float32")
    counts = np.array([8, 6, 2])
    data = np.repeat(patterns, counts, axis=0)
    entropy = -np.sum(counts / counts.sum() * np.log(counts / counts.sum()))

    def oracle_nll(bm):
        U, a = bm.couplings.numpy().astype(float), bm.bias.numpy().astype(float)
        L = 0.5 * (U + U.T)
        np.fill_diagonal(L, 0.0)
        V, pv = np_marginal(L, a, 4)
        return -np.mean(np.log(pv[[int(np.flatnonzero(np.all(V == x, 1))[0]) for x in data]]))

    bm = BoltzmannMachine(4, 2, seed=0)
    before = oracle_nll(bm)
    bm.compile(optimizer=keras.optimizers.Adam(0.05))
    history = bm.fit(np.tile(data, (20, 1)), batch_size=16, epochs=15, shuffle=False, verbose=0)
    after = oracle_nll(bm)
    assert list(history.history) == ["negative_log_likelihood"]
    assert before - after > 1.0
    assert entropy - 1e-6 <= after < entropy + 0.2
    assert float(bm.negative_log_likelihood(data)) == pytest.approx(after, abs=1e-4)


def test_keras_file_round_trip(tmp_path):
    bm, _, _ = machine(3, 2, seed=10)
    path = tmp_path / "bm.keras"
    bm.save(path)
    loaded = keras.saving.load_model(path)
    assert isinstance(loaded, BoltzmannMachine)
    assert loaded.get_config() == bm.get_config()
    np.testing.assert_allclose(loaded.coupling_matrix().numpy(), bm.coupling_matrix().numpy())
    V = np_states(3)
    np.testing.assert_allclose(loaded.log_prob(V).numpy(), bm.log_prob(V).numpy(), atol=1e-6)
    np.testing.assert_array_equal(loaded.sample(20, 3, seed=1), bm.sample(20, 3, seed=1))


# ----- errors --------------------------------------------------------------------------------


def test_too_many_units_for_enumeration_are_refused():
    with pytest.raises(ValueError, match=f"at most {MAX_UNITS}"):
        BoltzmannMachine(15, 6)
    BoltzmannMachine(10, 10)  # exactly the limit is allowed


@pytest.mark.parametrize("n_visible, n_hidden", [(0, 2), (2, -1), (2.5, 1)])
def test_bad_sizes_are_refused(n_visible, n_hidden):
    with pytest.raises(ValueError, match="integer"):
        BoltzmannMachine(n_visible, n_hidden)


def test_bad_inputs_raise_clear_errors():
    bm = BoltzmannMachine(4, 2, seed=0)
    with pytest.raises(ValueError, match=r"shape \(n, 4\)"):
        bm.log_prob(np.zeros((3, 5)))
    with pytest.raises(ValueError, match=r"shape \(n, 4\)"):
        bm.log_prob(np.zeros(4))
    with pytest.raises(ValueError, match="binary"):
        bm.log_prob(np.full((2, 4), 0.5))
    with pytest.raises(ValueError, match="NaN"):
        bm.log_prob(np.full((2, 4), np.nan))
    with pytest.raises(TypeError, match="numeric"):
        bm.log_prob(np.array([["a"] * 4]))
    with pytest.raises(ValueError, match=r"shape \(n, 6\)"):
        bm.energy(np.zeros((2, 4)))
    with pytest.raises(ValueError, match=r"\[0, 6\)"):
        bm.conditional_prob(np.zeros((2, 6)), 6)
    with pytest.raises(TypeError, match="seed"):
        bm.sample(5, 1, seed=1.5)
    with pytest.raises(ValueError, match="binary"):
        bm.fit(np.full((4, 4), 0.3), epochs=1, verbose=0)


# ----- the shared fit: validation and the divergence guard -----------------------------------


def test_nan_training_stops_with_a_clear_error():
    bm = BoltzmannMachine(4, 2, seed=0)
    bm.compile(optimizer=keras.optimizers.Adam(0.05))
    assert bm.steps_per_execution == DEFAULT_STEPS_PER_EXECUTION     # the shared compile
    bm.bias.assign(np.full(6, np.nan, "float32"))
    data = np.tile(np_states(4), (4, 1)).astype("float32")
    with pytest.raises(TrainingDivergedError, match="(?i)nan") as info:
        bm.fit(data, batch_size=16, epochs=3, verbose=0)
    assert "lower the learning rate" in str(info.value)
    assert bm.stop_training


def test_fit_refuses_labels_and_weights_before_training():
    bm = BoltzmannMachine(4, 2, seed=0)
    bm.compile(optimizer=keras.optimizers.Adam(0.05))
    data = np_states(4).astype("float32")
    with pytest.raises(ValueError, match="takes no labels"):
        bm.fit(data, np.zeros(len(data)), epochs=1, verbose=0)
    with pytest.raises(ValueError, match="does not weight examples"):
        bm.fit(data, sample_weight=np.ones(len(data)), epochs=1, verbose=0)
    with pytest.raises(ValueError, match=r"shape \(n, 4\)"):
        bm.fit(data, validation_data=np.zeros((2, 5)), epochs=1, verbose=0)
    assert int(bm.optimizer.iterations) == 0     # nothing ran
