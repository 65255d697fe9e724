"""Tests of course_lib.evaluation (exact, AIS, scores) against numpy brute force."""

import math

import keras
import numpy as np
import oracles
import pytest
import tensorflow as tf

from course_lib import sampling
from course_lib.boltzmann import DBM, BernoulliRBM, GaussianBernoulliRBM, RBMAnnealingPath
from course_lib.evaluation import (
    ais_log_partition,
    base_rate_visible_bias,
    exact_log_likelihood,
    exact_log_partition,
    free_energy_gap,
    pseudo_log_likelihood,
    published_schedule,
    reconstruction_error,
    reverse_ais_log_partition,
)
from course_lib.evaluation.ais import anneal
from course_lib.sampling import all_binary_states


def np_of(tensor):
    return np.asarray(keras.ops.convert_to_numpy(tensor), dtype=np.float64)


def bernoulli_model(D, H, seed, w_std=1.0, **kwargs):
    """A BernoulliRBM with random parameters; returns it and (W, b, c) in float64."""
    model = BernoulliRBM(D, H, seed=0, **kwargs)
    rng = np.random.default_rng(seed)
    params = (rng.normal(0, w_std, (D, H)), rng.normal(0, 1, D), rng.normal(0, 1, H))
    params = tuple(p.astype("float32") for p in params)
    for variable, value in zip((model.W, model.visible_bias, model.hidden_bias), params,
                               strict=True):
        variable.assign(value)
    return model, tuple(p.astype(np.float64) for p in params)


def np_free_energy(W, b, c, V):
    return -V @ b - oracles.softplus(c + V @ W).sum(axis=1)


# ----- exact ------------------------------------------------------------------------------
def test_all_binary_states_three_bits():
    states = all_binary_states(3)
    expected = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0], [1, 1, 0],
                         [0, 0, 1], [1, 0, 1], [0, 1, 1], [1, 1, 1]], dtype="float32")
    np.testing.assert_array_equal(states, expected)
    assert states.dtype == np.float32
    np.testing.assert_array_equal(all_binary_states(3, start=2, stop=5), expected[2:5])


@pytest.mark.parametrize("D, H", [(6, 4), (7, 3), (3, 7)])
def test_exact_log_partition_matches_brute_force(D, H):
    model, (W, b, c) = bernoulli_model(D, H, seed=D * 10 + H)
    expected = oracles.bernoulli_log_z(W, b, c)
    assert exact_log_partition(model) == pytest.approx(expected, rel=1e-6, abs=1e-4)
    for chunk in (1, 3, 4):
        assert exact_log_partition(model, chunk_size=chunk) == pytest.approx(
            expected, rel=1e-6, abs=1e-4)


def test_exact_log_partition_refuses_too_many_hidden_units():
    with pytest.raises(ValueError, match="hidden units"):
        exact_log_partition(BernoulliRBM(32, 31, seed=0))


def test_exact_log_partition_sums_over_the_smaller_layer():
    # 2 visible, 31 hidden: 2^31 hidden states are out of reach, 2^2 visible states are not.
    rng = np.random.default_rng(5)
    model = BernoulliRBM(2, 31, seed=0)
    W, b, c = rng.normal(0, 0.5, (2, 31)), rng.normal(0, 1, 2), rng.normal(0, 1, 31)
    model.W.assign(W.astype("float32"))
    model.visible_bias.assign(b.astype("float32"))
    model.hidden_bias.assign(c.astype("float32"))
    states = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float64)
    neg_free = states @ b + np.logaddexp(0.0, c + states @ W).sum(1)
    assert exact_log_partition(model) == pytest.approx(np.logaddexp.reduce(neg_free), abs=1e-4)


def test_gaussian_log_partition_matches_grid_integral():
    model = GaussianBernoulliRBM(2, 3, learn_sigma=True, seed=0)
    rng = np.random.default_rng(3)
    W, b, c = rng.normal(0, 0.8, (2, 3)), np.array([0.7, -1.2]), rng.normal(0, 1, 3)
    log_sigma = np.array([-0.4, 0.3])
    for variable, value in zip((model.W, model.visible_bias, model.hidden_bias,
                                model.log_sigma), (W, b, c, log_sigma), strict=True):
        variable.assign(value.astype("float32"))
    W, b, c = (x.astype("float32").astype(np.float64) for x in (W, b, c))
    sigma = np.exp(log_sigma.astype("float32").astype(np.float64))
    points, cell = oracles.grid(2, 14.0, 0.04)
    table = oracles.gaussian_energy_table(W, b, c, sigma, points, oracles.binary_states(3))
    expected = oracles.logsumexp(-table) + math.log(cell)
    assert exact_log_partition(model) == pytest.approx(expected, abs=2e-4)


def test_exact_log_likelihood_is_a_normalized_distribution():
    model, (W, b, c) = bernoulli_model(6, 4, seed=1)
    V = oracles.binary_states(6)
    log_z = exact_log_partition(model)
    per_state = np.array([exact_log_likelihood(model, V[i:i + 1], log_z=log_z)
                          for i in range(len(V))])
    assert np.exp(per_state).sum() == pytest.approx(1.0, abs=1e-4)
    np.testing.assert_allclose(per_state, oracles.bernoulli_log_pv(W, b, c, V), atol=2e-4)
    data = V[[3, 17, 40, 63, 3]]
    assert exact_log_likelihood(model, data) == pytest.approx(
        oracles.bernoulli_log_pv(W, b, c, data).mean(), abs=2e-4)
    assert exact_log_likelihood(model, data, batch_size=2) == pytest.approx(
        exact_log_likelihood(model, data), abs=1e-5)


# ----- AIS --------------------------------------------------------------------------------
AIS_BETAS = np.linspace(0.0, 1.0, 2000).astype("float32")


@pytest.fixture(scope="module")
def ais_setup():
    model, (W, b, c) = bernoulli_model(10, 6, seed=0, w_std=1.0)
    V = oracles.binary_states(10)
    p = np.exp(oracles.bernoulli_log_pv(W, b, c, V))
    rng = np.random.default_rng(0)
    exact_samples = V[rng.choice(len(V), size=200, p=p / p.sum())].astype("float32")
    base = base_rate_visible_bias(exact_samples)
    forward = ais_log_partition(model, base, num_chains=200, betas=AIS_BETAS, seed=0)
    return model, base, exact_samples, oracles.bernoulli_log_z(W, b, c), forward


def _within_bars(result, exact, tol=0.005):
    assert result.log_z_low <= result.log_z <= result.log_z_high
    assert result.log_z_low - tol <= exact <= result.log_z_high + tol, (str(result), exact)


def test_base_rate_visible_bias_formula():
    v = np.array([[1, 0, 0], [1, 1, 0], [1, 0, 0], [1, 1, 0]], dtype="float32")
    p = (v.mean(0) + 0.005) / 1.01
    np.testing.assert_allclose(base_rate_visible_bias(v), np.log(p / (1 - p)), rtol=1e-5)


def test_forward_ais_brackets_the_exact_log_partition(ais_setup):
    model, base, _, exact, forward = ais_setup
    assert forward.direction == "forward" and len(forward.log_weights) == 200
    assert forward.num_distributions == 2000
    _within_bars(forward, exact)


def test_reverse_ais_from_exact_samples_brackets_the_exact_log_partition(ais_setup):
    model, base, exact_samples, exact, _ = ais_setup
    reverse = reverse_ais_log_partition(model, base, exact_samples, betas=AIS_BETAS, seed=1)
    assert reverse.direction == "reverse" and len(reverse.log_weights) == 200
    _within_bars(reverse, exact)


def test_ais_under_xla_brackets_the_exact_log_partition_both_ways(ais_setup):
    """jit_compile=True, what "auto" picks on a GPU: the XLA-compiled annealing loop gives
    forward and reverse estimates that bracket the exact log Z, as the plain loop does."""
    model, base, exact_samples, exact, _ = ais_setup
    forward = ais_log_partition(model, base, num_chains=200, betas=AIS_BETAS, seed=0,
                                jit_compile=True)
    reverse = reverse_ais_log_partition(model, base, exact_samples, betas=AIS_BETAS, seed=1,
                                        jit_compile=True)
    _within_bars(forward, exact)
    _within_bars(reverse, exact)


def test_ais_jit_compile_auto_follows_the_visible_devices(monkeypatch):
    monkeypatch.setattr(tf.config, "list_physical_devices", lambda kind: ["gpu:0"])
    assert sampling.resolve_jit_compile("auto") is True
    monkeypatch.setattr(tf.config, "list_physical_devices", lambda kind: [])
    assert sampling.resolve_jit_compile("auto") is False
    assert sampling.resolve_jit_compile(True) is True
    assert sampling.resolve_jit_compile(False) is False


def test_annealing_step_leaves_the_intermediate_distribution_invariant():
    """Eq. (1.13): one step at beta maps exact samples of p_beta to samples of p_beta, and
    its weight increment is log f_to(v) - log f_from(v)."""
    model, (W, b, c) = bernoulli_model(4, 3, seed=7, w_std=1.5)
    base = np.array([0.5, -1.0, 1.5, 0.0])
    path = RBMAnnealingPath(model, base.astype("float32"))
    V = oracles.binary_states(4)

    def log_f(beta, x):
        return (x @ ((1 - beta) * base + beta * b)
                + oracles.softplus(beta * (c + x @ W)).sum(axis=1))

    beta, n = 0.6, 40000
    p = np.exp(log_f(beta, V) - oracles.logsumexp(log_f(beta, V)))
    rng = np.random.default_rng(0)
    start = V[rng.choice(len(V), size=n, p=p)]
    increment, state = path.step(tf.constant(start.astype("float32")), tf.constant(0.3),
                                 tf.constant(beta), tf.constant([4, 2]))
    np.testing.assert_allclose(np_of(increment), log_f(beta, start) - log_f(0.3, start),
                               rtol=1e-5, atol=1e-5)
    freq = np.bincount(oracles.state_index(np_of(state)), minlength=len(V)) / n
    assert np.all(np.abs(freq - p) < 5 * np.sqrt(p * (1 - p) / n) + 1e-4), (freq, p)


def test_ais_is_reproducible_with_a_seed(ais_setup):
    model, base, _, _, forward = ais_setup
    again = ais_log_partition(model, base, num_chains=200, betas=AIS_BETAS, seed=0)
    np.testing.assert_array_equal(again.log_weights, forward.log_weights)
    other = ais_log_partition(model, base, num_chains=200, betas=AIS_BETAS, seed=1)
    assert not np.array_equal(other.log_weights, forward.log_weights)


def test_ais_rejects_bad_schedules_and_base_biases(ais_setup):
    model, base, samples, _, _ = ais_setup
    for betas in ([0.1, 0.5, 1.0], [0.0, 0.5, 0.9], [0.0, 0.6, 0.4, 1.0], [0.0, 0.5, 0.5, 1.0],
                  [0.0]):
        with pytest.raises(ValueError, match="betas"):
            ais_log_partition(model, base, num_chains=4, betas=betas)
        with pytest.raises(ValueError, match="betas"):
            reverse_ais_log_partition(model, base, samples[:4], betas=betas)
    with pytest.raises(ValueError, match="base_visible_bias"):
        ais_log_partition(model, np.zeros(9), num_chains=4, betas=[0.0, 1.0])
    with pytest.raises(ValueError, match="base_visible_bias"):
        reverse_ais_log_partition(model, np.zeros((10, 1)), samples[:4], betas=[0.0, 1.0])



# ----- AIS in chunks: the same numbers as one loop, a progress bar between chunks -----------
def one_loop_anneal(path, betas, state, seed):
    """The plain form of ``anneal``: every transition in one ``tf.while_loop``, transition k
    seeded with ``step_seed(seed, k)``, log weights accumulated in float64."""
    betas = tf.constant(np.asarray(betas, "float32"))
    base_seed = sampling.as_stateless_seed(seed)

    @tf.function
    def run(state):
        def body(k, state, log_w):
            increment, state = path.step(state, betas[k - 1], betas[k],
                                         sampling.step_seed(base_seed, k))
            return k + 1, state, log_w + tf.cast(increment, tf.float64)
        _, _, log_w = tf.while_loop(lambda k, *_: k < tf.shape(betas)[0], body,
                                    (tf.constant(1), state,
                                     tf.zeros(tf.shape(state)[:1], tf.float64)))
        return log_w

    return run(state).numpy()


@pytest.mark.parametrize("kind", ["rbm", "dbm"])
def test_anneal_in_chunks_equals_one_loop_bit_for_bit(kind):
    if kind == "rbm":
        model = bernoulli_model(10, 6, seed=3)[0]
    else:
        model = DBM([10, 5, 4], seed=0)
    path = model.annealing_path(np.linspace(-1.0, 1.0, 10).astype("float32"))
    state = path.initial_state(8, sampling.as_stateless_seed(9))
    betas = np.linspace(0.0, 1.0, 41).astype("float32")
    expected = one_loop_anneal(path, betas, state, seed=4)
    for chunk_size in (1, 3, 7, 40, 100, None):
        for verbose in (0, 1):
            np.testing.assert_array_equal(anneal(path, betas, state, 4, chunk_size=chunk_size,
                                                 verbose=verbose), expected,
                                          err_msg=f"chunk_size={chunk_size}")


class RecordingPath:
    """A stand-in annealing path whose log weights record the transitions it ran: chain 0
    counts them, chain 1 sums beta_to - beta_from, chain 2 sums one uniform draw from each
    transition's seed."""

    def step(self, state, beta_from, beta_to, seed):
        draw = sampling.uniform((), sampling.step_seed(seed, 0, 1))
        return tf.stack([tf.constant(1.0), beta_to - beta_from, draw]), state


def recorded_log_weights(betas, seed, transitions):
    """What RecordingPath's log weights must be after ``transitions`` (a list of k)."""
    base = sampling.as_stateless_seed(seed)
    log_w = np.zeros(3)
    for k in transitions:
        draw = sampling.uniform((), sampling.step_seed(sampling.step_seed(base, k), 0, 1))
        log_w += np.array([1.0, betas[k] - betas[k - 1], draw.numpy()], np.float32)
    return log_w


@pytest.mark.parametrize("chunk_size", [1, 2, 5, 21, None])
def test_ais_chunk_boundaries_neither_reuse_nor_skip_a_step_seed(chunk_size):
    betas = np.sort(np.random.default_rng(0).random(22)).astype("float32")
    betas = np.concatenate([[0.0], betas[1:-1], [1.0]]).astype("float32")   # 21 transitions
    log_w = anneal(RecordingPath(), betas, tf.zeros(3), 6, chunk_size=chunk_size, verbose=0)
    every_step = list(range(1, len(betas)))
    np.testing.assert_array_equal(log_w, recorded_log_weights(betas, 6, every_step))
    # The check can fail: a chunk that starts by repeating the step before it, or that skips
    # its first step, leaves a different record.
    repeated = recorded_log_weights(betas, 6, every_step[:10] + every_step[9:-1])
    skipped = recorded_log_weights(betas, 6, every_step[:10] + every_step[11:])
    assert not np.array_equal(log_w, repeated) and not np.array_equal(log_w, skipped)


def test_ais_progress_bar_shows_when_asked_and_never_changes_the_estimate(ais_setup, capsys):
    model, base, samples, _, _ = ais_setup
    betas = np.linspace(0.0, 1.0, 31).astype("float32")
    results = {}
    for verbose in (0, False, 1, 2, "auto"):
        forward = ais_log_partition(model, base, num_chains=5, betas=betas, seed=2,
                                    verbose=verbose)
        reverse = reverse_ais_log_partition(model, base, samples[:5], betas=betas, seed=2,
                                            verbose=verbose)
        results[repr(verbose)] = (forward.log_weights, reverse.log_weights)
        out = capsys.readouterr().out
        if verbose in (1, 2):
            assert out.count("30/30") == 2 and "/transition" in out, out
        else:                                           # "auto": a short run is silent
            assert out == "", (verbose, out)
    for forward, reverse in results.values():
        np.testing.assert_array_equal(forward, results["0"][0])
        np.testing.assert_array_equal(reverse, results["0"][1])


def test_exact_log_partition_progress_bar_shows_when_asked(capsys):
    model, _ = bernoulli_model(6, 4, seed=1)
    quiet = exact_log_partition(model, chunk_size=4, verbose=0)
    assert capsys.readouterr().out == ""
    assert exact_log_partition(model, chunk_size=4, verbose=1) == quiet
    assert "4/4" in capsys.readouterr().out

def test_published_schedule():
    betas = published_schedule().astype(np.float64)
    assert len(betas) == 14501
    assert betas[0] == 0.0 and betas[-1] == 1.0
    steps = np.diff(betas)
    assert np.all(steps > 0)
    for lo, hi, step in ((0.0, 0.5, 1e-3), (0.5, 0.9, 1e-4), (0.9, 1.0, 1e-5)):
        inside = (betas[:-1] >= lo - 1e-7) & (betas[1:] <= hi + 1e-7)
        assert inside.sum() == round((hi - lo) / step)
        np.testing.assert_allclose(steps[inside], step, rtol=0.02)


# ----- scores -----------------------------------------------------------------------------
def np_pseudo_log_likelihood_terms(W, b, c, v):
    """log p(v_i | v_-i) for every example and bit, from the exact p(v) by enumeration."""
    D = W.shape[0]
    log_p = oracles.bernoulli_log_pv(W, b, c, oracles.binary_states(D))
    idx = oracles.state_index(v)
    terms = np.empty(v.shape)
    for i in range(D):
        flipped = v.copy()
        flipped[:, i] = 1 - flipped[:, i]
        a, f = log_p[idx], log_p[oracles.state_index(flipped)]
        terms[:, i] = a - np.logaddexp(a, f)
    return terms


def test_pseudo_log_likelihood_matches_conditionals_of_the_exact_distribution():
    model, (W, b, c) = bernoulli_model(6, 4, seed=5, w_std=1.5)
    v = (np.random.default_rng(2).random((40, 6)) < 0.5).astype("float32")
    terms = np_pseudo_log_likelihood_terms(W, b, c, v.astype(np.float64))
    exact = terms.sum(axis=1).mean()
    assert pseudo_log_likelihood(model, v) == pytest.approx(exact, abs=1e-4)
    assert pseudo_log_likelihood(model, v, batch_size=7) == pytest.approx(exact, abs=1e-4)

    # Three random bits per example, scaled by D/3: unbiased, so the mean over seeds is close.
    seeds = 40
    estimates = [pseudo_log_likelihood(model, v, num_bits=3, seed=s) for s in range(seeds)]
    D, n = 6, len(v)
    per_example_var = D**2 * terms.var(axis=1) / 3  # D * mean of 3 iid uniformly chosen terms
    se = math.sqrt(per_example_var.sum() / n**2 / seeds)
    assert abs(np.mean(estimates) - exact) < 5 * se + 1e-4
    assert len(set(estimates)) > 1


def test_pseudo_log_likelihood_rejects_non_binary_data():
    model, _ = bernoulli_model(4, 2, seed=0)
    with pytest.raises(ValueError, match="binary"):
        pseudo_log_likelihood(model, np.full((3, 4), 0.5, "float32"))


@pytest.fixture(scope="module")
def trained_and_untrained():
    rng = np.random.default_rng(0)
    prototypes = (rng.random((4, 16)) < 0.5).astype("float32")
    noise = rng.random((20, 16)) < 0.05
    train = np.abs(np.repeat(prototypes, 5, axis=0) - noise).astype("float32")
    heldout = (rng.random((20, 16)) < 0.5).astype("float32")
    untrained = BernoulliRBM(16, 8, seed=1)
    trained = BernoulliRBM(16, 8, seed=1)
    trained.compile(optimizer=keras.optimizers.SGD(0.1, momentum=0.5))
    trained.fit(np.tile(train, (30, 1)), batch_size=10, epochs=5, shuffle=False, verbose=0)
    assert int(trained.optimizer.iterations) == 300
    return trained, untrained, train, heldout


def test_free_energy_gap_is_positive_after_training(trained_and_untrained):
    trained, _, train, heldout = trained_and_untrained
    gap = free_energy_gap(trained, train, heldout[:12], batch_size=5)
    W, b, c = (np.asarray(x, np.float64) for x in trained.parameters())
    expected = (np_free_energy(W, b, c, heldout[:12].astype(np.float64)).mean()
                - np_free_energy(W, b, c, train[:12].astype(np.float64)).mean())
    assert gap == pytest.approx(expected, rel=1e-4, abs=1e-4)
    assert gap > 1.0


def test_reconstruction_error_is_smaller_after_training(trained_and_untrained):
    trained, untrained, train, _ = trained_and_untrained
    err_trained = reconstruction_error(trained, train, batch_size=7)
    err_untrained = reconstruction_error(untrained, train)
    assert 0.0 <= err_trained < err_untrained
    # Untrained (W ~ 0.01, zero biases): p(v_i | h) ~ 1/2, so the error is ~ D/4 = 4.
    assert err_untrained == pytest.approx(4.0, abs=0.1)


def test_log_z_sd_is_the_delta_method_spread_and_stays_finite():
    from course_lib.evaluation.ais import AISResult
    rng = np.random.default_rng(0)
    log_w = rng.normal(0.0, 0.3, size=400)
    w = np.exp(log_w)
    result = AISResult(0.0, 0.0, 0.0, log_w, 10, "forward")
    np.testing.assert_allclose(result.log_z_sd, w.std(ddof=1) / (w.mean() * np.sqrt(400)),
                               rtol=1e-12)
    # Heavy-tailed weights: mean(w) < 3 std(w) / sqrt(M) leaves the 3-sigma interval unbounded
    # below, while the standard deviation stays finite (and shift-invariant).
    heavy = np.array([0.0] * 9 + [8.0])
    assert np.isfinite(AISResult(0.0, -np.inf, 1.0, heavy, 10, "forward").log_z_sd)
    np.testing.assert_allclose(AISResult(0, 0, 0, heavy + 100.0, 10, "forward").log_z_sd,
                               AISResult(0, 0, 0, heavy, 10, "forward").log_z_sd)
