"""Tests of course_lib.boltzmann.rbm against numpy oracles written from the RBM equations."""

import math
import textwrap

import keras
import numpy as np
import oracles
import pytest
import tensorflow as tf
from replicas import run_script

from course_lib.boltzmann.rbm import BernoulliRBM, GaussianBernoulliRBM


def set_params(model, seed, w_std=1.0, b_std=1.0, c_std=1.0, log_sigma=None):
    """Assigns random parameters; returns them as float64 numpy arrays (W, b, c, sigma)."""
    rng = np.random.default_rng(seed)
    W = rng.normal(0.0, w_std, (model.n_visible, model.n_hidden)).astype("float32")
    b = rng.normal(0.0, b_std, model.n_visible).astype("float32")
    c = rng.normal(0.0, c_std, model.n_hidden).astype("float32")
    model.W.assign(W)
    model.visible_bias.assign(b)
    model.hidden_bias.assign(c)
    sigma = None
    if log_sigma is not None:
        model.log_sigma.assign(np.asarray(log_sigma, dtype="float32"))
        sigma = np.exp(np.asarray(log_sigma, dtype="float32").astype(np.float64))
    return W.astype(np.float64), b.astype(np.float64), c.astype(np.float64), sigma


def np_of(tensor):
    return np.asarray(keras.ops.convert_to_numpy(tensor), dtype=np.float64)


def random_binary(n, d, seed=0, p=0.5):
    return (np.random.default_rng(seed).random((n, d)) < p).astype("float32")


def gaussian_model(D=3, H=3, seed=0, log_sigma=(-0.4, 0.3, 0.1)):
    model = GaussianBernoulliRBM(D, H, learn_sigma=True, seed=seed)
    return model, set_params(model, seed + 100, w_std=0.8, log_sigma=list(log_sigma)[:D])


# ----- energies and free energies ---------------------------------------------------------
def assert_energies_match(model, V, Hs, table):
    """E(v, h) on every (v, h) pair equals the oracle table; F(v) = -log sum_h exp(-E)."""
    vv = np.repeat(V, len(Hs), axis=0).astype("float32")
    hh = np.tile(Hs, (len(V), 1)).astype("float32")
    energy = np_of(model.energy(vv, hh)).reshape(len(V), len(Hs))
    np.testing.assert_allclose(energy, table, rtol=1e-5, atol=1e-5)
    free = np_of(model.free_energy(V.astype("float32")))
    np.testing.assert_allclose(free, -oracles.logsumexp(-table, axis=1), rtol=1e-5, atol=1e-5)


def test_bernoulli_energy_and_free_energy_match_enumeration():
    model = BernoulliRBM(5, 3, seed=0)
    W, b, c, _ = set_params(model, 1)
    V, Hs = oracles.binary_states(5), oracles.binary_states(3)
    table = oracles.bernoulli_energy_table(W, b, c, V, Hs)

    assert_energies_match(model, V, Hs, table)


def test_gaussian_energy_and_free_energy_match_enumeration():
    model, (W, b, c, sigma) = gaussian_model()
    V = np.random.default_rng(5).normal(0.0, 1.5, (12, 3))
    Hs = oracles.binary_states(3)
    table = oracles.gaussian_energy_table(W, b, c, sigma, V, Hs)

    assert_energies_match(model, V, Hs, table)


def test_bernoulli_hidden_free_energy_matches_sum_over_visibles():
    model = BernoulliRBM(5, 3, seed=0)
    W, b, c, _ = set_params(model, 2)
    V, Hs = oracles.binary_states(5), oracles.binary_states(3)
    table = oracles.bernoulli_energy_table(W, b, c, V, Hs)
    expected = -oracles.logsumexp(-table, axis=0)
    got = np_of(model.hidden_free_energy(Hs.astype("float32")))
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)


def test_gaussian_hidden_free_energy_matches_grid_integral():
    model, (W, b, c, sigma) = gaussian_model(D=2, H=3, log_sigma=(-0.5, 0.35))
    points, cell = oracles.grid(2, 14.0, 0.04)
    Hs = oracles.binary_states(3)
    table = oracles.gaussian_energy_table(W, b, c, sigma, points, Hs)
    expected = -(oracles.logsumexp(-table, axis=0) + math.log(cell))
    got = np_of(model.hidden_free_energy(Hs.astype("float32")))
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=2e-5)


# ----- conditionals and sampling ----------------------------------------------------------
def test_bernoulli_conditionals_match_formulas():
    model = BernoulliRBM(5, 3, seed=0)
    W, b, c, _ = set_params(model, 3)
    V, Hs = oracles.binary_states(5), oracles.binary_states(3)
    np.testing.assert_allclose(np_of(model.prob_h_given_v(V.astype("float32"))),
                               oracles.sigmoid(c + V @ W), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(np_of(model.visible_mean(Hs.astype("float32"))),
                               oracles.sigmoid(b + Hs @ W.T), rtol=1e-5, atol=1e-6)


def test_gaussian_conditionals_match_formulas():
    model, (W, b, c, sigma) = gaussian_model()
    V = np.random.default_rng(6).normal(0.0, 1.0, (7, 3))
    Hs = oracles.binary_states(3)
    np.testing.assert_allclose(np_of(model.prob_h_given_v(V.astype("float32"))),
                               oracles.sigmoid(c + (V / sigma) @ W), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(np_of(model.visible_mean(Hs.astype("float32"))),
                               b + sigma * (Hs @ W.T), rtol=1e-5, atol=1e-5)


def _assert_frequencies(samples, probs):
    """Bernoulli sample means within 5 binomial standard errors of the probabilities."""
    n = samples.shape[0]
    assert set(np.unique(samples)) <= {0.0, 1.0}
    freq = samples.mean(axis=0)
    se = np.sqrt(probs * (1 - probs) / n) + 1e-4
    assert np.all(np.abs(freq - probs) < 5 * se), (freq, probs)


def test_sample_frequencies_match_conditional_probabilities():
    model = BernoulliRBM(4, 3, seed=11)
    W, b, c, _ = set_params(model, 4)
    n = 20000
    for v in oracles.binary_states(4)[[0, 5, 15]]:
        samples = np_of(model.sample_h_given_v(np.tile(v, (n, 1)).astype("float32")))
        _assert_frequencies(samples, oracles.sigmoid(c + v @ W))
    for h in oracles.binary_states(3)[[0, 3, 7]]:
        samples = np_of(model.sample_v_given_h(np.tile(h, (n, 1)).astype("float32")))
        _assert_frequencies(samples, oracles.sigmoid(b + W @ h))


def test_gaussian_visible_samples_have_the_right_mean_and_std():
    model, (W, b, c, sigma) = gaussian_model()
    n = 20000
    h = np.array([1.0, 0.0, 1.0])
    samples = np_of(model.sample_v_given_h(np.tile(h, (n, 1)).astype("float32")))
    mean = b + sigma * (W @ h)
    assert np.all(np.abs(samples.mean(0) - mean) < 5 * sigma / math.sqrt(n))
    np.testing.assert_allclose(samples.std(0), sigma, rtol=0.03)


# ----- the CD-k gradient ------------------------------------------------------------------
CD_DATA = np.array([[1, 1, 0, 0], [0, 0, 1, 1], [1, 0, 1, 0]], dtype=np.float64)


def _cd_gradient(k, params_seed, replicas):
    """The model's CD-k gradient of W (negative phase + loss, as train_step computes it)
    and the per-sample negative-phase terms (for the Monte Carlo standard error)."""
    model = BernoulliRBM(4, 3, k=k, seed=21 + k)
    W, b, c, _ = set_params(model, params_seed, w_std=2.0)
    v_data = tf.constant(np.tile(CD_DATA, (replicas, 1)).astype("float32"))
    v_model, _ = model.negative_phase(v_data)
    with tf.GradientTape() as tape:
        loss, _ = model.contrastive_divergence_loss(v_data, v_model)
    grad = np_of(tape.gradient(loss, model.W))
    vm = np_of(v_model)
    per_sample = vm[:, :, None] * oracles.sigmoid(c + vm @ W)[:, None, :]
    se = per_sample.std(axis=0) / math.sqrt(len(vm))
    return grad, se, (W, b, c)


def _exact_gradients(W, b, c, k):
    """Exact d(mean log-likelihood)/dW and the exact expected CD-k loss gradient."""
    V = oracles.binary_states(4)
    outer = V[:, :, None] * oracles.sigmoid(c + V @ W)[:, None, :]
    p_v = np.exp(oracles.bernoulli_log_pv(W, b, c, V))
    idx = oracles.state_index(CD_DATA)
    positive = outer[idx].mean(axis=0)
    exact_ll = positive - np.einsum("v,vij->ij", p_v, outer)
    T_k = np.linalg.matrix_power(oracles.bernoulli_transition_matrix(W, b, c), k)
    cd_k_loss = -positive + np.einsum("nv,vij->ij", T_k[idx], outer) / len(idx)
    return exact_ll, cd_k_loss


def test_cd_gradient_with_many_steps_is_the_negative_log_likelihood_gradient():
    grad, se, (W, b, c) = _cd_gradient(k=50, params_seed=2, replicas=2000)
    exact_ll, _ = _exact_gradients(W, b, c, 50)
    assert np.all(np.abs(grad - (-exact_ll)) < 5 * se + 2e-3), (grad, -exact_ll)


def test_cd1_gradient_is_its_own_biased_expectation():
    grad, se, (W, b, c) = _cd_gradient(k=1, params_seed=2, replicas=2000)
    exact_ll, cd1_loss = _exact_gradients(W, b, c, 1)
    # The model's CD-1 estimate matches the exact expectation of CD-1 ...
    assert np.all(np.abs(grad - cd1_loss) < 5 * se + 2e-3), (grad, cd1_loss)
    # ... which, for these weights, is far from the log-likelihood gradient (bias ~0.26).
    bias = np.abs(cd1_loss + exact_ll).max()
    assert bias > 0.2
    assert np.abs(grad + exact_ll).max() > 0.15


def test_gaussian_cd_loss_gradient_matches_the_free_energy_derivatives():
    """d/dtheta [mean F(v_data) - mean F(v_model)] with v_model held fixed (even when it was
    computed from the parameters inside the tape), F from Eq. (1.10), learned log sigma."""
    model, (W, b, c, sigma) = gaussian_model()
    rng = np.random.default_rng(9)
    v = rng.normal(0.0, 1.0, (16, 3))
    h = (rng.random((12, 3)) < 0.5).astype("float32")
    variables = [model.W, model.visible_bias, model.hidden_bias, model.log_sigma]
    with tf.GradientTape() as tape:
        v_model = model.visible_mean(h)  # differentiable in W, b, sigma
        loss, _ = model.contrastive_divergence_loss(tf.constant(v.astype("float32")), v_model)
    got = [np_of(g) for g in tape.gradient(loss, variables)]
    vm = b + sigma * (h.astype(np.float64) @ W.T)

    expected = [d.mean(0) - m.mean(0) for d, m in zip(
        gaussian_free_energy_derivatives(W, b, c, sigma, v),
        gaussian_free_energy_derivatives(W, b, c, sigma, vm), strict=True)]
    for name, g, e in zip(("W", "b", "c", "log_sigma"), got, expected, strict=True):
        np.testing.assert_allclose(g, e, rtol=1e-4, atol=1e-5, err_msg=name)


def gaussian_free_energy_derivatives(W, b, c, sigma, x):
    """Per-example dF(x)/d(W, b, c, log sigma) for Eq. (1.10)."""
    p = oracles.sigmoid(c + (x / sigma) @ W)
    return (-(x / sigma)[:, :, None] * p[:, None, :], -(x - b) / sigma**2, -p,
            -((x - b) / sigma) ** 2 + (x / sigma) * (p @ W.T))


def test_gaussian_pcd_train_step_applies_the_cd_gradient():
    """One SGD step of fit: theta <- theta - lr * (mean dF(v_data) - mean dF(v_model)),
    v_model = the persistent chains after the step."""
    lr = 0.05
    model = GaussianBernoulliRBM(3, 3, learn_sigma=True, sampler="pcd", num_chains=16, seed=0)
    W, b, c, sigma = set_params(model, 100, w_std=0.8, log_sigma=[-0.4, 0.3, 0.1])
    model.compile(optimizer=keras.optimizers.SGD(lr))
    v = np.random.default_rng(4).normal(0.0, 1.0, (8, 3))
    before = [np_of(x) for x in (model.W, model.visible_bias, model.hidden_bias,
                                 model.log_sigma)]
    model.fit(v.astype("float32"), batch_size=8, epochs=1, verbose=0)
    vm = np_of(model.persistent_chains)
    data_terms = gaussian_free_energy_derivatives(W, b, c, sigma, v)
    model_terms = gaussian_free_energy_derivatives(W, b, c, sigma, vm)
    after = [np_of(x) for x in (model.W, model.visible_bias, model.hidden_bias,
                                model.log_sigma)]
    for name, x0, x1, d, m in zip(("W", "b", "c", "log_sigma"), before, after, data_terms,
                                  model_terms, strict=True):
        np.testing.assert_allclose(x1, x0 - lr * (d.mean(0) - m.mean(0)), rtol=1e-4,
                                   atol=1e-5, err_msg=name)


# ----- training ---------------------------------------------------------------------------
@pytest.mark.parametrize("sampler", ["cd", "pcd", "fpcd"])
def test_fit_runs_and_changes_weights(sampler):
    model = BernoulliRBM(6, 4, sampler=sampler, num_chains=8, seed=0)
    assert [v.name for v in model.trainable_variables] == ["W", "visible_bias", "hidden_bias"]
    model.compile(optimizer=keras.optimizers.SGD(0.1))
    before = [np_of(v) for v in model.trainable_variables]
    history = model.fit(random_binary(64, 6), batch_size=16, epochs=1, verbose=0)
    after = [np_of(v) for v in model.trainable_variables]
    assert all(np.all(np.isfinite(a)) for a in after)
    assert all(not np.allclose(x, y) for x, y in zip(before, after, strict=True))
    assert set(history.history) == {"reconstruction_error", "free_energy"}


def test_one_train_step_changes_the_weights_gaussian():
    model = GaussianBernoulliRBM(3, 2, learn_sigma=True, seed=0)
    assert len(model.trainable_variables) == 4
    assert len(GaussianBernoulliRBM(3, 2, seed=0).trainable_variables) == 3
    model.compile(optimizer=keras.optimizers.SGD(0.1))
    before = [np_of(v) for v in model.trainable_variables]
    x = np.random.default_rng(0).normal(size=(16, 3)).astype("float32")
    logs = model.train_step(tf.constant(x))
    assert np.isfinite(float(logs["free_energy"]))
    after = [np_of(v) for v in model.trainable_variables]
    assert all(not np.allclose(x, y) for x, y in zip(before, after, strict=True))


def test_pcd_chains_continue_from_batch_to_batch(monkeypatch):
    model = BernoulliRBM(6, 4, k=1, sampler="pcd", num_chains=8, seed=1)
    model.compile(optimizer=keras.optimizers.SGD(0.1), run_eagerly=True)
    initial = np_of(model.persistent_chains)
    calls = []
    original = model.gibbs_chain

    def spy(v, num_steps, seed=None, params=None):
        out, mean = original(v, num_steps, seed, params)
        calls.append((np_of(v), np_of(out)))
        return out, mean

    monkeypatch.setattr(model, "gibbs_chain", spy)
    model.fit(random_binary(32, 6), batch_size=8, epochs=2, shuffle=False, verbose=0)
    assert len(calls) == 8
    np.testing.assert_array_equal(calls[0][0], initial)
    for (_, out), (nxt, _) in zip(calls[:-1], calls[1:], strict=True):
        np.testing.assert_array_equal(nxt, out)
    final = np_of(model.persistent_chains)
    np.testing.assert_array_equal(final, calls[-1][1])
    assert not np.array_equal(final, initial)


@pytest.mark.parametrize("sampler", ["pcd", "fpcd"])
def test_chains_and_fast_weights_survive_save_and_load(sampler, tmp_path):
    model = BernoulliRBM(6, 4, sampler=sampler, num_chains=8, fast_learning_rate=0.05, seed=2)
    initial = np_of(model.persistent_chains)
    model.compile(optimizer=keras.optimizers.SGD(0.1))
    model.fit(random_binary(32, 6), batch_size=8, epochs=1, verbose=0)
    assert not np.array_equal(np_of(model.persistent_chains), initial)
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    names = ["persistent_chains"] + (
        ["fast_W", "fast_visible_bias", "fast_hidden_bias"] if sampler == "fpcd" else [])
    for name in names:
        value = np_of(getattr(model, name))
        if name.startswith("fast"):
            assert np.any(value != 0)
        np.testing.assert_array_equal(np_of(getattr(loaded, name)), value)


def test_fpcd_chains_run_with_the_fast_weights():
    """With b_f = +-30 the chains' next state is fixed by the fast biases alone."""
    model = BernoulliRBM(6, 3, sampler="fpcd", num_chains=10, fast_learning_rate=0.0, seed=6)
    pattern = np.array([1, 0, 1, 1, 0, 0], dtype="float32")
    model.fast_visible_bias.assign(60.0 * pattern - 30.0)
    model.compile(optimizer=keras.optimizers.SGD(0.0))
    model.fit(random_binary(10, 6), batch_size=10, epochs=1, verbose=0)
    np.testing.assert_array_equal(np_of(model.persistent_chains), np.tile(pattern, (10, 1)))


def test_fpcd_fast_weights_decay_geometrically():
    model = BernoulliRBM(5, 3, sampler="fpcd", num_chains=8, fast_learning_rate=0.0, seed=3)
    assert model.fast_decay == pytest.approx(19 / 20)
    rng = np.random.default_rng(0)
    init = {name: rng.normal(size=getattr(model, name).shape).astype("float32")
            for name in ("fast_W", "fast_visible_bias", "fast_hidden_bias")}
    for name, value in init.items():
        getattr(model, name).assign(value)
    W0 = np_of(model.W)
    model.compile(optimizer=keras.optimizers.SGD(0.0))
    n = 5
    model.fit(random_binary(8 * n, 5), batch_size=8, epochs=1, verbose=0)
    assert int(model.optimizer.iterations) == n
    np.testing.assert_array_equal(np_of(model.W), W0)
    for name, value in init.items():
        np.testing.assert_allclose(np_of(getattr(model, name)), (19 / 20) ** n * value,
                                   rtol=1e-5, atol=1e-6)


def test_fpcd_fast_weights_move_against_the_gradient():
    eta = 0.5
    model = BernoulliRBM(5, 3, sampler="fpcd", num_chains=16, fast_learning_rate=eta, seed=4)
    W, b, c, _ = set_params(model, 5)
    rng = np.random.default_rng(1)
    fast0 = {name: rng.normal(0, 0.3, getattr(model, name).shape).astype("float32")
             for name in ("fast_W", "fast_visible_bias", "fast_hidden_bias")}
    for name, value in fast0.items():
        getattr(model, name).assign(value)
    model.compile(optimizer=keras.optimizers.SGD(0.0))
    v = random_binary(8, 5, seed=3).astype(np.float64)
    model.fit(v.astype("float32"), batch_size=8, epochs=1, verbose=0)
    vm = np_of(model.persistent_chains)  # the negative particles of this step
    ph_data, ph_model = oracles.sigmoid(c + v @ W), oracles.sigmoid(c + vm @ W)
    # dLoss/dtheta for Loss = mean F(v_data) - mean F(v_model), F from Eq. (1.3).
    grads = {"fast_W": -v.T @ ph_data / len(v) + vm.T @ ph_model / len(vm),
             "fast_visible_bias": -v.mean(0) + vm.mean(0),
             "fast_hidden_bias": -ph_data.mean(0) + ph_model.mean(0)}
    for name, grad in grads.items():
        expected = (19 / 20) * fast0[name] - eta * grad
        np.testing.assert_allclose(np_of(getattr(model, name)), expected, rtol=1e-4,
                                   atol=1e-5)


# ----- serialization ----------------------------------------------------------------------
FULL_KWARGS = dict(k=3, sampler="fpcd", num_chains=7, fast_learning_rate=0.02,
                   fast_decay=0.9, weight_init_std=0.05,
                   visible_bias_init=[0.5, -1.0, 0.25, 2.0], hidden_bias_init=-1.5, seed=9,
                   name="my_rbm")


@pytest.mark.parametrize("cls, extra", [
    (BernoulliRBM, {}),
    (GaussianBernoulliRBM, {"learn_sigma": True, "sigma_init": 0.5}),
])
def test_config_round_trip_keeps_every_argument(cls, extra):
    kwargs = dict(FULL_KWARGS, **extra)
    model = cls(4, 3, **kwargs)
    config = model.get_config()
    for key, value in dict(kwargs, n_visible=4, n_hidden=3).items():
        assert config[key] == value, key
    clone = cls.from_config(config)
    assert type(clone) is cls
    assert clone.get_config() == config
    for key in ("n_visible", "n_hidden", "k", "sampler", "num_chains", "fast_learning_rate",
                "fast_decay", "weight_init_std", "hidden_bias_init", "seed", *extra):
        assert getattr(clone, key) == getattr(model, key), key
    np.testing.assert_array_equal(np_of(clone.visible_bias), kwargs["visible_bias_init"])
    np.testing.assert_array_equal(np_of(clone.hidden_bias), np.full(3, -1.5))
    np.testing.assert_array_equal(np_of(clone.W), np_of(model.W))  # same seed
    if extra:
        np.testing.assert_allclose(np_of(clone.sigma), 0.5, rtol=1e-6)


@pytest.mark.parametrize("cls", [BernoulliRBM, GaussianBernoulliRBM])
def test_keras_file_round_trip(cls, tmp_path):
    name = f"course_lib>{cls.__name__}"
    assert keras.saving.get_registered_name(cls) == name
    assert keras.saving.get_registered_object(name) is cls
    extra = {"learn_sigma": True} if cls is GaussianBernoulliRBM else {}
    model = cls(4, 3, sampler="pcd", num_chains=5, seed=1, **extra)
    set_params(model, 8, log_sigma=[0.1, -0.2, 0.3, 0.0] if extra else None)
    path = tmp_path / "rbm.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert type(loaded) is cls
    assert loaded.get_config() == model.get_config()
    v = random_binary(10, 4, seed=2)
    np.testing.assert_array_equal(np_of(loaded.free_energy(v)), np_of(model.free_energy(v)))
    for a, b in zip(model.weights, loaded.weights, strict=True):
        np.testing.assert_array_equal(np_of(a), np_of(b))


def test_seed_generator_state_survives_save_and_load(tmp_path):
    model = BernoulliRBM(6, 3, seed=5)
    model.compile(optimizer=keras.optimizers.SGD(0.1))
    model.fit(random_binary(32, 6), batch_size=8, epochs=1, verbose=0)
    state = np_of(model.seed_generator.state)
    path = tmp_path / "seeded.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    np.testing.assert_array_equal(np_of(loaded.seed_generator.state), state)


def test_same_seed_gives_the_same_training_run():
    x = random_binary(48, 6, seed=7)

    def train(seed):
        model = BernoulliRBM(6, 4, sampler="pcd", num_chains=8, seed=seed)
        model.compile(optimizer=keras.optimizers.SGD(0.1, momentum=0.5))
        model.fit(x, batch_size=16, epochs=2, shuffle=False, verbose=0)
        return [np_of(v) for v in model.weights]

    first, second, other = train(3), train(3), train(4)
    for a, b in zip(first, second, strict=True):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(first[0], other[0])


# ----- distribution -----------------------------------------------------------------------
MIRRORED_SCRIPT = textwrap.dedent("""
    import numpy as np
    import tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration(), tf.config.LogicalDeviceConfiguration()])
    import keras
    from course_lib.boltzmann.rbm import BernoulliRBM
    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    assert strategy.num_replicas_in_sync == 2, strategy.num_replicas_in_sync
    x = (np.random.default_rng(0).random((128, 8)) < 0.5).astype("float32")
    with strategy.scope():
        model = BernoulliRBM(8, 4, k=1, sampler="cd", seed=0)
        model.compile(optimizer=keras.optimizers.SGD(0.1))
    before = model.W.numpy().copy()
    model.fit(x, batch_size=32, epochs=2, verbose=0)
    after = model.W.numpy()
    assert np.all(np.isfinite(after)), after
    assert not np.allclose(before, after)
    print("MIRRORED_OK")
""")


# Weights of +-30 and biases of 15 saturate every sigmoid (|pre-activation| >= 15), so CD-1's
# samples are the same on any device and one SGD step is deterministic: under two replicas
# it must equal the single-device step (an unscaled loss would make it twice as large).
MIRRORED_STEP_SCRIPT = textwrap.dedent("""
    import numpy as np
    import tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration(), tf.config.LogicalDeviceConfiguration()])
    import keras
    from course_lib.boltzmann.rbm import BernoulliRBM
    rng = np.random.default_rng(0)
    x = (rng.random((32, 8)) < 0.5).astype("float32")
    W = (30.0 * np.sign(rng.normal(size=(8, 4)))).astype("float32")

    def one_step(strategy):
        with strategy.scope():
            model = BernoulliRBM(8, 4, k=1, sampler="cd", seed=0)
            model.compile(optimizer=keras.optimizers.SGD(1e-3))
        model.W.assign(W)
        model.visible_bias.assign(np.full(8, 15.0, "float32"))
        model.hidden_bias.assign(np.full(4, 15.0, "float32"))
        model.fit(x, batch_size=32, epochs=1, shuffle=False, verbose=0)
        return model.W.numpy() - W

    single = one_step(tf.distribute.get_strategy())
    mirrored = one_step(tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"]))
    assert np.abs(single).max() > 1e-4, single
    np.testing.assert_allclose(mirrored, single, rtol=1e-3, atol=1e-6)
    print("MIRRORED_STEP_OK")
""")


def test_mirrored_step_equals_the_single_device_step(tmp_path):
    run_script(tmp_path, MIRRORED_STEP_SCRIPT, "MIRRORED_STEP_OK", shared=True)


def test_fit_under_mirrored_strategy_on_two_logical_cpus(tmp_path):
    run_script(tmp_path, MIRRORED_SCRIPT, "MIRRORED_OK", shared=True)


# ----- input validation -------------------------------------------------------------------
def test_check_visible_rejects_bad_input():
    model = BernoulliRBM(4, 2, seed=0)
    with pytest.raises(ValueError, match=r"shape \(n, 4\)"):
        model.check_visible(np.zeros((3, 5)))
    with pytest.raises(ValueError, match=r"shape \(n, 4\)"):
        model.check_visible(np.zeros((3, 2, 2)))
    with pytest.raises(ValueError, match="NaN"):
        model.check_visible(np.array([[0.0, 1.0, np.nan, 0.0]]))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        model.check_visible(np.array([[0.0, 1.0, 2.0, 0.0]]))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        model.check_visible(np.array([[0.0, -0.5, 1.0, 0.0]]))
    with pytest.raises(TypeError, match="numeric"):
        model.check_visible(np.array([["0", "1", "0", "1"]]))
    ok = model.check_visible(np.array([[0, 1, 1, 0]], dtype=np.int64))
    assert ok.dtype == np.float32
    # Gaussian units accept any finite real value.
    gauss = GaussianBernoulliRBM(4, 2, seed=0)
    gauss.check_visible(np.array([[-3.0, 5.0, 0.5, 2.0]]))
    with pytest.raises(ValueError, match="NaN"):
        gauss.check_visible(np.array([[np.inf, 0.0, 0.0, 0.0]]))


def test_fit_validates_data_before_training():
    model = BernoulliRBM(4, 2, seed=0)
    model.compile(optimizer=keras.optimizers.SGD(0.1))
    with pytest.raises(ValueError, match=r"shape \(n, 4\)"):
        model.fit(np.zeros((8, 5), "float32"), verbose=0)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        model.fit(np.full((8, 4), 3.0, "float32"), verbose=0)
    with pytest.raises(ValueError, match="NaN"):
        model.fit(np.full((8, 4), np.nan, "float32"), verbose=0)
    assert int(model.optimizer.iterations) == 0


@pytest.mark.parametrize("kwargs, match", [
    ({"n_hidden": 0}, "n_hidden"),
    ({"n_visible": -1}, "n_visible"),
    ({"k": 0}, "k must"),
    ({"sampler": "xyz"}, "sampler"),
    ({"fast_decay": 1.5}, "fast_decay"),
    ({"visible_bias_init": [0.0, 1.0]}, "visible_bias_init"),
])
def test_constructor_rejects_bad_arguments(kwargs, match):
    args = dict({"n_visible": 4, "n_hidden": 3}, **kwargs)
    with pytest.raises(ValueError, match=match):
        BernoulliRBM(args.pop("n_visible"), args.pop("n_hidden"), **args)


def test_gaussian_constructor_rejects_nonpositive_sigma():
    with pytest.raises(ValueError, match="sigma_init"):
        GaussianBernoulliRBM(4, 3, sigma_init=0.0)


def test_initialize_chains():
    with pytest.raises(ValueError, match="initialize_chains"):
        BernoulliRBM(4, 2, sampler="cd").initialize_chains(np.zeros((100, 4)))
    model = BernoulliRBM(4, 2, sampler="pcd", num_chains=3)
    with pytest.raises(ValueError, match="3 chain states"):
        model.initialize_chains(np.zeros((2, 4)))
    states = random_binary(3, 4, seed=4)
    model.initialize_chains(states)
    np.testing.assert_array_equal(np_of(model.persistent_chains), states)


# ----- gibbs_chain: a Markov chain with fresh noise at every sweep -------------------------
def record_sweeps(model, monkeypatch):
    """Spies on ``model.gibbs_step``: returns the list of (v before, v after) of every sweep
    that ``gibbs_chain`` runs."""
    sweeps = []
    original = model.gibbs_step

    def spy(v, seed=None, params=None):
        out, mean = original(v, seed, params)
        sweeps.append((np_of(v), np_of(out)))
        return out, mean

    monkeypatch.setattr(model, "gibbs_step", spy)
    return sweeps


@pytest.mark.parametrize("seed", [3, tf.constant([3, 4], tf.int32)])
def test_seeded_gibbs_chain_draws_fresh_noise_at_every_sweep(seed, monkeypatch):
    """With W = 0 and zero biases every sweep draws v' ~ Bernoulli(1/2)^D whatever v was,
    so successive sweeps agree on each unit with probability exactly 1/2. A chain that
    reused one seed for every sweep would repeat its first sweep forever (agreement 1)."""
    model = BernoulliRBM(6, 4, seed=0)
    set_params(model, 0, w_std=0.0, b_std=0.0, c_std=0.0)
    sweeps = record_sweeps(model, monkeypatch)
    v0 = random_binary(200, 6, seed=1)
    model.gibbs_chain(tf.constant(v0), 8, seed=seed)
    assert len(sweeps) == 8
    np.testing.assert_array_equal(sweeps[0][0], v0)
    after = np.stack([out for _, out in sweeps])                 # (8, 200, 6)
    agree = (after[1:] == after[:-1]).mean()
    n = after[1:].size
    assert abs(agree - 0.5) < 5 * math.sqrt(0.25 / n), agree
    assert abs(after.mean() - 0.5) < 5 * math.sqrt(0.25 / after.size), after.mean()


def test_seeded_gibbs_chain_has_the_exact_transition_matrix(monkeypatch):
    """Every sweep of an int-seeded chain is one draw from T[v, v'] = sum_h p(h|v) p(v'|h)
    (the oracle enumerates it): the empirical transition frequencies of all sweeps, the
    later ones included, match T within five standard errors."""
    model = BernoulliRBM(3, 2, seed=0)
    W, b, c, _ = set_params(model, 8, w_std=1.5)
    T = oracles.bernoulli_transition_matrix(W, b, c)
    sweeps = record_sweeps(model, monkeypatch)
    v0 = np.tile(oracles.binary_states(3), (500, 1)).astype("float32")   # 4,000 chains
    model.gibbs_chain(tf.constant(v0), 5, seed=11)
    counts = np.zeros((8, 8))
    for before, after in sweeps[1:]:              # the second sweep on: where reuse shows
        np.add.at(counts, (oracles.state_index(before), oracles.state_index(after)), 1)
    rows = counts.sum(axis=1, keepdims=True)
    assert rows.min() > 150                       # every state is visited often
    freq = counts / rows
    se = np.sqrt(T * (1 - T) / rows)
    assert np.all(np.abs(freq - T) < 5 * se + 2e-3), np.abs(freq - T).max()


def test_gibbs_chain_seeds_reproduce_differ_and_advance():
    model = BernoulliRBM(8, 5, seed=0)
    set_params(model, 2)
    v0 = tf.constant(random_binary(50, 8, seed=3))
    first, first_mean = model.gibbs_chain(v0, 6, seed=7)
    again, again_mean = model.gibbs_chain(v0, 6, seed=7)
    np.testing.assert_array_equal(np_of(first), np_of(again))
    np.testing.assert_array_equal(np_of(first_mean), np_of(again_mean))
    other, _ = model.gibbs_chain(v0, 6, seed=8)
    assert not np.array_equal(np_of(first), np_of(other))
    # None: the model's SeedGenerator, which advances, so two chains differ; a generator in
    # the same state replays the first of them.
    twin = keras.random.SeedGenerator(0)
    twin.state.assign(model.seed_generator.state.value)
    unseeded, _ = model.gibbs_chain(v0, 6)
    assert not np.array_equal(np_of(unseeded), np_of(model.gibbs_chain(v0, 6)[0]))
    np.testing.assert_array_equal(np_of(model.gibbs_chain(v0, 6, seed=twin)[0]),
                                  np_of(unseeded))


# ----- sample() ---------------------------------------------------------------------------
def test_sample_shapes_and_seeds():
    model = BernoulliRBM(5, 3, seed=0)
    set_params(model, 6)
    means, snaps = model.sample(7, 6, seed=1, every=2)
    assert means.shape == (7, 5) and snaps.shape == (3, 7, 5)
    np.testing.assert_array_equal(snaps[-1], means)
    again, _ = model.sample(7, 6, seed=1)
    np.testing.assert_array_equal(again, means)
    other, none = model.sample(7, 6, seed=2)
    assert none is None
    assert not np.array_equal(other, means)
    from_init, _ = model.sample(99, 2, seed=1, init=random_binary(4, 5))
    assert from_init.shape == (4, 5)
    gauss_means, _ = GaussianBernoulliRBM(5, 3, seed=0).sample(6, 3, seed=0)
    assert gauss_means.shape == (6, 5) and np.all(np.isfinite(gauss_means))


# jit_compile=True is what a GPU runs ("auto"); XLA draws other numbers from the same seed,
# so the check is the distribution, not equality with the default path.
@pytest.mark.parametrize("jit_compile", [False, True])
def test_sample_draws_from_the_model_distribution(jit_compile):
    """After many sweeps, mean p(v | h) over the chains is the exact marginal p(v_i = 1),
    and mean p(v_i | h) p(v_j | h) is the exact E[v_i v_j] (v_i, v_j independent given h)."""
    model = BernoulliRBM(3, 3, seed=0)
    W, b, c, _ = set_params(model, 30, w_std=2.0)
    V = oracles.binary_states(3)
    p_v = np.exp(oracles.bernoulli_log_pv(W, b, c, V))
    n = 20000
    means, _ = model.sample(n, 60, seed=5, jit_compile=jit_compile)
    means = means.astype(np.float64)
    first = means.mean(0)
    se = means.std(0) / math.sqrt(n)
    assert np.all(np.abs(first - p_v @ V) < 5 * se + 1e-3), (first, p_v @ V)
    pairs = means[:, [0, 0, 1]] * means[:, [1, 2, 2]]
    exact_pairs = p_v @ (V[:, [0, 0, 1]] * V[:, [1, 2, 2]])
    se = pairs.std(0) / math.sqrt(n)
    assert np.all(np.abs(pairs.mean(0) - exact_pairs) < 5 * se + 1e-3), (pairs.mean(0),
                                                                         exact_pairs)
