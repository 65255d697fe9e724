"""Tests of course_lib.boltzmann.stacking (doubling RBMs, transposed RBMs, greedy layer-wise
training) against numpy oracles written from Eqs. (3.6)/(3.7) and the RBM equations."""

import math

import keras
import numpy as np
import oracles
import pytest
import tensorflow as tf

from course_lib.boltzmann.dbm import dbm_pretraining_rbms
from course_lib.boltzmann.rbm import BernoulliRBM
from course_lib.boltzmann.stacking import (
    DoublingRBM,
    greedy_layerwise,
    propagate_up,
    stack_sizes,
    transposed_rbm,
)
from course_lib.evaluation import exact_log_partition


def np_of(tensor):
    return np.asarray(keras.ops.convert_to_numpy(tensor), dtype=np.float64)


def set_params(model, seed, w_std=1.0):
    """Random N(0, w_std) weights and N(0, 1) biases; returns (W, b, c) in float64."""
    rng = np.random.default_rng(seed)
    W = rng.normal(0.0, w_std, (model.n_visible, model.n_hidden)).astype("float32")
    b = rng.normal(0.0, 1.0, model.n_visible).astype("float32")
    c = rng.normal(0.0, 1.0, model.n_hidden).astype("float32")
    model.W.assign(W)
    model.visible_bias.assign(b)
    model.hidden_bias.assign(c)
    return W.astype(np.float64), b.astype(np.float64), c.astype(np.float64)


def random_binary(n, d, seed=0, p=0.5):
    return (np.random.default_rng(seed).random((n, d)) < p).astype("float32")


FACTORS = [(2.0, 1.0), (1.0, 2.0), (1.5, 3.0)]


# ----- DoublingRBM, Eqs. (3.6)/(3.7) ------------------------------------------------------
@pytest.mark.parametrize("up, down", FACTORS)
def test_doubling_rbm_conditionals(up, down):
    model = DoublingRBM(5, 3, up_factor=up, down_factor=down, seed=0)
    W, b, c = set_params(model, 1)
    V, Hs = oracles.binary_states(5), oracles.binary_states(3)
    np.testing.assert_allclose(np_of(model.prob_h_given_v(V.astype("float32"))),
                               oracles.sigmoid(c + up * V @ W), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(np_of(model.visible_mean(Hs.astype("float32"))),
                               oracles.sigmoid(b + down * Hs @ W.T), rtol=1e-5, atol=1e-6)


def _cd_statistics(W, b, c, up, v_data, v_model):
    """dLoss/d(W, b, c) for the CD update dW = <v p(h|v)>_data - <v p(h|v)>_model."""
    p_data = oracles.sigmoid(c + up * v_data @ W)
    p_model = oracles.sigmoid(c + up * v_model @ W)
    return (-(v_data.T @ p_data / len(v_data) - v_model.T @ p_model / len(v_model)),
            -(v_data.mean(0) - v_model.mean(0)),
            -(p_data.mean(0) - p_model.mean(0)))


@pytest.mark.parametrize("up, down", FACTORS)
def test_doubling_rbm_cd_loss_gradient_is_the_cd_statistics(up, down):
    model = DoublingRBM(5, 3, up_factor=up, down_factor=down, seed=0)
    W, b, c = set_params(model, 2)
    v_data = random_binary(10, 5, seed=1).astype(np.float64)
    h = tf.constant(random_binary(12, 3, seed=2))
    variables = [model.W, model.visible_bias, model.hidden_bias]
    with tf.GradientTape() as tape:
        v_model = model.visible_mean(h)  # depends on W and b: must be held fixed
        loss, energy_data = model.contrastive_divergence_loss(
            tf.constant(v_data.astype("float32")), v_model)
    got = [np_of(g) for g in tape.gradient(loss, variables)]
    vm = np_of(v_model)
    for name, g, e in zip(("W", "b", "c"), got,
                          _cd_statistics(W, b, c, up, v_data, vm), strict=True):
        np.testing.assert_allclose(g, e, rtol=1e-4, atol=1e-6, err_msg=name)
    p_data = oracles.sigmoid(c + up * v_data @ W)
    expected_energy = np.mean(-v_data @ b - p_data @ c - np.sum((v_data @ W) * p_data, 1))
    assert float(energy_data) == pytest.approx(expected_energy, rel=1e-5, abs=1e-5)


def test_doubling_rbm_without_factors_has_the_ordinary_cd_gradient():
    """With both factors 1 the expected-energy loss has the free-energy loss's gradient."""
    doubling, plain = DoublingRBM(4, 3, seed=0), BernoulliRBM(4, 3, seed=0)
    set_params(doubling, 3)
    set_params(plain, 3)
    v_data, v_model = random_binary(8, 4, seed=4), random_binary(6, 4, seed=5)
    grads = []
    for model in (doubling, plain):
        with tf.GradientTape() as tape:
            loss, _ = model.contrastive_divergence_loss(tf.constant(v_data),
                                                        tf.constant(v_model))
        grads.append(tape.gradient(loss, model.trainable_variables))
    for a, b in zip(*grads, strict=True):
        np.testing.assert_allclose(np_of(a), np_of(b), rtol=1e-5, atol=1e-6)


def test_doubling_rbm_pcd_step_applies_the_cd_update():
    """One SGD step of fit moves (W, b, c) by -lr times the CD statistics, with the
    persistent chains as they are after the step (their Gibbs sweeps use the factors)."""
    lr, up = 0.1, 2.0
    model = DoublingRBM(5, 3, up_factor=up, down_factor=1.0, sampler="pcd", num_chains=7,
                        seed=0)
    W, b, c = set_params(model, 6)
    model.compile(optimizer=keras.optimizers.SGD(lr))
    v = random_binary(9, 5, seed=7)
    model.fit(v, batch_size=9, epochs=1, verbose=0)
    vm = np_of(model.persistent_chains)
    for name, before, grad in zip(("W", "visible_bias", "hidden_bias"), (W, b, c),
                                  _cd_statistics(W, b, c, up, v.astype(np.float64), vm),
                                  strict=True):
        np.testing.assert_allclose(np_of(getattr(model, name)), before - lr * grad,
                                   rtol=1e-4, atol=1e-5, err_msg=name)


def test_doubling_rbm_gibbs_chain_samples_its_conditionals():
    """A sweep h ~ sigmoid(c + up vW), v ~ sigmoid(b + down hW^T): the chain's transition
    matrix, computed in numpy, predicts the frequencies after one step from a fixed v."""
    up, down = 2.0, 0.5
    model = DoublingRBM(3, 2, up_factor=up, down_factor=down, seed=0)
    W, b, c = set_params(model, 8)
    V, Hs = oracles.binary_states(3), oracles.binary_states(2)
    start = V[5]
    ph = oracles.sigmoid(c + up * start @ W)
    p_h = np.prod(np.where(Hs == 1, ph, 1 - ph), axis=1)
    pv = oracles.sigmoid(b + down * Hs @ W.T)
    p_next = p_h @ np.prod(np.where(V[None] == 1, pv[:, None], 1 - pv[:, None]), -1)
    n = 40000
    nxt, _ = model.gibbs_step(tf.constant(np.tile(start, (n, 1)).astype("float32")), seed=3)
    freq = np.bincount(oracles.state_index(np_of(nxt)), minlength=8) / n
    assert np.all(np.abs(freq - p_next) < 5 * np.sqrt(p_next * (1 - p_next) / n) + 1e-4)


def test_doubling_rbm_rejects_bad_factors_and_round_trips_its_config(tmp_path):
    with pytest.raises(ValueError, match="up_factor must be positive"):
        DoublingRBM(4, 3, up_factor=0.0)
    with pytest.raises(ValueError, match="down_factor must be positive"):
        DoublingRBM(4, 3, down_factor=-2.0)
    model = DoublingRBM(4, 3, up_factor=2.0, down_factor=1.5, k=2, seed=4)
    set_params(model, 9)
    config = model.get_config()
    assert config["up_factor"] == 2.0 and config["down_factor"] == 1.5 and config["k"] == 2
    clone = DoublingRBM.from_config(config)
    assert type(clone) is DoublingRBM and clone.get_config() == config
    path = tmp_path / "doubling.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert type(loaded) is DoublingRBM and loaded.get_config() == config
    v = random_binary(5, 4, seed=1)
    np.testing.assert_array_equal(np_of(loaded.prob_h_given_v(v)), np_of(model.prob_h_given_v(v)))


# ----- transposed_rbm ---------------------------------------------------------------------
def test_transposed_rbm_models_the_hidden_marginal_of_the_rbm():
    """Its marginal over its visible units is the RBM's p(h) = sum_v exp(-E(v, h)) / Z."""
    rbm = BernoulliRBM(5, 3, seed=0)
    W, b, c = set_params(rbm, 10)
    top = transposed_rbm(rbm, seed=3, sampler="pcd", num_chains=4)
    assert (top.n_visible, top.n_hidden) == (3, 5)
    assert top.sampler == "pcd" and top.seed == 3 and type(top) is BernoulliRBM
    np.testing.assert_array_equal(np_of(top.W), W.T)
    V, Hs = oracles.binary_states(5), oracles.binary_states(3)
    table = oracles.bernoulli_energy_table(W, b, c, V, Hs)
    log_z = oracles.logsumexp(-table)
    expected = oracles.logsumexp(-table, axis=0) - log_z            # log p_rbm(h)
    top_log_z = exact_log_partition(top)
    assert top_log_z == pytest.approx(log_z, abs=1e-4)
    got = -np_of(top.free_energy(Hs.astype("float32"))) - top_log_z
    np.testing.assert_allclose(got, expected, atol=1e-4)
    # The copy is independent of the original afterwards.
    rbm.W.assign(np.zeros((5, 3), "float32"))
    np.testing.assert_array_equal(np_of(top.W), W.T)


# ----- propagate_up -----------------------------------------------------------------------
def test_propagate_up_probabilities():
    rbm = DoublingRBM(6, 4, up_factor=2.0, seed=0)  # the up factor is part of p(h | v)
    W, b, c = set_params(rbm, 11)
    x = np.random.default_rng(0).random((25, 6)).astype("float32")
    out = propagate_up(rbm, x, batch_size=7)
    assert out.dtype == np.float32 and out.shape == (25, 4)
    np.testing.assert_allclose(out, oracles.sigmoid(c + 2.0 * x.astype(np.float64) @ W),
                               rtol=1e-5, atol=1e-6)


def test_propagate_up_samples():
    rbm = BernoulliRBM(6, 4, seed=0)
    W, b, c = set_params(rbm, 12)
    rows = random_binary(3, 6, seed=3)
    n = 3000
    x = np.repeat(rows, n, axis=0)
    samples = propagate_up(rbm, x, propagate="samples", seed=4, batch_size=1000)
    assert samples.dtype == np.float32 and samples.shape == (3 * n, 4)
    assert set(np.unique(samples)) == {0.0, 1.0}
    np.testing.assert_array_equal(
        samples, propagate_up(rbm, x, propagate="samples", seed=4, batch_size=1000))
    assert not np.array_equal(
        samples, propagate_up(rbm, x, propagate="samples", seed=5, batch_size=1000))
    # Batches draw from different streams: the same rows in batch 0 and batch 1 differ.
    assert not np.array_equal(samples[:1000], samples[1000:2000])
    probs = oracles.sigmoid(c + rows.astype(np.float64) @ W)
    for i in range(3):
        freq = samples[i * n:(i + 1) * n].mean(0)
        se = np.sqrt(probs[i] * (1 - probs[i]) / n)
        assert np.all(np.abs(freq - probs[i]) < 5 * se + 1e-3), (freq, probs[i])


def test_propagate_up_rejects_bad_arguments():
    rbm = BernoulliRBM(4, 3, seed=0)
    x = random_binary(5, 4)
    with pytest.raises(ValueError, match=r"propagate must be one of \('probabilities', "
                                         r"'samples'\); got 'sample'"):
        propagate_up(rbm, x, propagate="sample")
    with pytest.raises(ValueError, match=r"shape \(n, 4\)"):
        propagate_up(rbm, random_binary(5, 3))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        propagate_up(rbm, x * 2.0)


# ----- stack_sizes and greedy_layerwise ---------------------------------------------------
def test_stack_sizes():
    assert stack_sizes([BernoulliRBM(6, 4)]) == [6, 4]
    assert stack_sizes(dbm_pretraining_rbms([6, 5, 4, 3])) == [6, 5, 4, 3]
    with pytest.raises(ValueError, match="at least one RBM"):
        stack_sizes([])
    with pytest.raises(ValueError, match="RBM 1 has 3 hidden units but RBM 2 has 4 visible "
                                         "units"):
        stack_sizes([BernoulliRBM(6, 5), BernoulliRBM(5, 3), BernoulliRBM(4, 2)])


def test_greedy_layerwise_trains_every_rbm_on_the_layer_below(monkeypatch):
    rbms = dbm_pretraining_rbms([6, 4, 3], seed=0)
    own = keras.optimizers.SGD(0.02)
    rbms[1].compile(optimizer=own)  # already compiled: keeps its optimizer
    x = random_binary(48, 6, seed=1)
    before = [[np_of(v) for v in r.trainable_variables] for r in rbms]
    seen = {}
    original_fit = rbms[1].fit

    def spy(data, **kwargs):
        # The first RBM is trained by now: its propagated samples are this RBM's data.
        seen["data"] = np.array(data)
        seen["expected"] = propagate_up(rbms[0], x, propagate="samples", seed=7)
        return original_fit(data, **kwargs)

    monkeypatch.setattr(rbms[1], "fit", spy)
    histories = greedy_layerwise(rbms, x, epochs=[2, 1], batch_size=16, propagate="samples",
                                 seed=7)
    assert [len(h.history["free_energy"]) for h in histories] == [2, 1]
    for rbm, old in zip(rbms, before, strict=True):
        for a, b in zip(old, rbm.trainable_variables, strict=True):
            assert np.all(np.isfinite(np_of(b))) and not np.allclose(a, np_of(b))
    np.testing.assert_array_equal(seen["data"], seen["expected"])
    assert set(np.unique(seen["data"])) <= {0.0, 1.0}
    assert rbms[1].optimizer is own
    assert isinstance(rbms[0].optimizer, keras.optimizers.SGD)
    assert float(rbms[0].optimizer.learning_rate) == pytest.approx(0.05)


def test_greedy_layerwise_uses_a_fresh_optimizer_per_rbm():
    rbms = [BernoulliRBM(5, 4, seed=0), BernoulliRBM(4, 2, seed=1)]
    made = []

    def factory():
        made.append(keras.optimizers.Adam(0.01))
        return made[-1]

    greedy_layerwise(rbms, random_binary(32, 5), epochs=1, batch_size=16, optimizer=factory)
    assert len(made) == 2 and [r.optimizer for r in rbms] == made


@pytest.mark.parametrize("rbms, epochs, match", [
    (lambda: [BernoulliRBM(6, 4), BernoulliRBM(5, 3)], 1,
     "RBM 0 has 4 hidden units but RBM 1 has 5 visible units"),
    (lambda: [BernoulliRBM(6, 4), BernoulliRBM(4, 3)], [1, 1, 1],
     r"expected one epoch count per RBM \(2\); got 3"),
    (lambda: [BernoulliRBM(6, 4), BernoulliRBM(4, 3)], [1],
     r"expected one epoch count per RBM \(2\); got 1"),
    (lambda: [], 1, "at least one RBM"),
    (lambda: [BernoulliRBM(6, 4)], 0, "epochs must be an integer >= 1"),
    (lambda: [BernoulliRBM(6, 4)], 1.5, "epochs must be an integer >= 1"),
])
def test_greedy_layerwise_rejects_bad_arguments(rbms, epochs, match):
    stack = rbms()
    weights = [np_of(r.W) for r in stack]
    with pytest.raises(ValueError, match=match):
        greedy_layerwise(stack, random_binary(16, 6), epochs=epochs, batch_size=8)
    for w, r in zip(weights, stack, strict=True):
        np.testing.assert_array_equal(w, np_of(r.W))  # nothing was trained


@pytest.mark.parametrize("kwargs, match", [
    ({"epochs": [1, 0]}, "epochs must be an integer"),
    ({"epochs": 1, "propagate": "sample"}, "propagate must be one of"),
])
def test_greedy_layerwise_rejects_bad_arguments_before_training(kwargs, match):
    rbms = [BernoulliRBM(6, 4, seed=0), BernoulliRBM(4, 3, seed=1)]
    first = np_of(rbms[0].W)
    with pytest.raises(ValueError, match=match):
        greedy_layerwise(rbms, random_binary(16, 6), batch_size=8, **kwargs)
    np.testing.assert_array_equal(np_of(rbms[0].W), first)


def test_propagated_probabilities_stay_in_the_unit_interval_through_a_stack():
    """A 3-RBM stack trained greedily with probabilities propagated: every layer's input is
    a valid (n, n_l) array in [0, 1] and the mean activity is not degenerate."""
    rbms = dbm_pretraining_rbms([6, 5, 4, 3], seed=2)
    x = random_binary(40, 6, seed=3)
    greedy_layerwise(rbms, x, epochs=1, batch_size=20)
    for rbm in rbms:
        x = propagate_up(rbm, x)
        assert x.shape == (40, rbm.n_hidden)
        assert np.all((x > 0) & (x < 1)) and 0.05 < x.mean() < 0.95
    assert math.isfinite(float(np.sum(x)))
