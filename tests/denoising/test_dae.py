"""The denoising autoencoder of Chapter 7 against oracles that cannot share its bugs.

- The corruptions C(x~ | x) of Eq. (7.7): their unit-level frequencies against the nominal
  noise, ``log_corruption`` against a NumPy product over units, normalised over all 2^d
  corrupted states and matched by the frequencies of ``corrupt`` itself.
- ``exact_dae_chain`` on d = 3: T row-stochastic and equal to a NumPy sum over x~, pi T = pi,
  one ``chain_step`` from each state distributed as the row of T, and the long-run states
  of ``chain`` (many parallel chains) distributed as pi, both by a chi-square test.
- Eqs. (7.8)-(7.9): the walkback loss recomputed from the same corruptions (the seed
  generator replayed); one step moves every weight; save / load; refusals.
"""


import keras
import numpy as np
import pytest
import tensorflow as tf
from model_checks import saved_and_loaded
from refusals import BAD_COUNTS, BAD_REQUIRED_SEEDS, assert_refused, expand
from scipy import stats

from course_lib import sampling
from course_lib.denoising import DenoisingAutoencoder
from course_lib.evaluation import exact_dae_chain


def randomized(model, scale=1.5, seed=0):
    """Weights large enough that P(x | x~) is far from uniform (so is pi)."""
    rng = np.random.default_rng(seed)
    for variable in model.trainable_variables:
        variable.assign(rng.normal(0.0, scale, variable.shape).astype("float32"))
    return model


def dae(input_dim=3, corruption="salt_and_pepper", noise_level=0.4, seed=0, **kwargs):
    keras.utils.set_random_seed(seed)
    return DenoisingAutoencoder(input_dim, (8,), corruption=corruption, noise_level=noise_level,
                                seed=seed, **kwargs)


def binary(n, d, seed=0):
    return (np.random.default_rng(seed).random((n, d)) < 0.5).astype("float32")


def state_index(x):
    """The row of each binary row of x in sampling.all_binary_states (first unit = bit 0)."""
    return np.asarray(x).astype(np.int64) @ (2 ** np.arange(x.shape[1]))


def corruption_by_units(corruption, p, d):
    """C(x~ | x) for every pair of states of d units, [x~, x], as the product over units of
    the per-unit probabilities: salt and pepper keeps a unit with 1 - p/2 and flips it with
    p/2; masking keeps a 1 with 1 - p, drops it to 0 with p, and never raises a 0."""
    states = sampling.all_binary_states(d).astype(np.float64)
    new, old = states[:, None, :], states[None, :, :]
    if corruption == "salt_and_pepper":
        per_unit = np.where(new == old, 1 - p / 2, p / 2)
    else:
        per_unit = np.where(old == 1, np.where(new == 1, 1 - p, p), np.where(new == 1, 0.0, 1.0))
    return per_unit.prod(axis=-1)


def chi_square_p_value(counts, probabilities):
    """Pearson's test of counts against probabilities (cells of probability 0 must be
    empty and are left out)."""
    counts, probabilities = np.asarray(counts, np.float64), np.asarray(probabilities)
    assert counts[probabilities == 0].sum() == 0, (counts, probabilities)
    keep = probabilities > 0
    if keep.sum() == 1:
        return 1.0                     # one possible outcome, and every draw took it
    expected = counts.sum() * probabilities[keep] / probabilities[keep].sum()
    statistic = np.sum((counts[keep] - expected) ** 2 / expected)
    return stats.chi2.sf(statistic, keep.sum() - 1)


# ----- the corruptions ------------------------------------------------------------------------
def test_salt_and_pepper_replaces_a_fraction_p_of_units_by_fair_coins():
    """Each unit is replaced with probability p by a fair coin: it reads 0 with p/2 and 1
    with p/2 whatever it was, so a 1 changes with probability p/2, a 0 too, and a grey 0.5
    becomes 0 with p/2, 1 with p/2 and stays with 1 - p. 160,000 units per case: a binomial
    standard error <= 0.0013, and 0.006 is > 4.5 of them."""
    p = 0.4
    model = dae(8, noise_level=p)
    for value, zeros, ones in ((1.0, p / 2, 1 - p / 2), (0.0, 1 - p / 2, p / 2),
                               (0.5, p / 2, p / 2)):
        x = np.full((20000, 8), value, "float32")
        noisy = model.corrupt(x, seed=1).numpy()
        assert set(np.unique(noisy)) <= {0.0, 1.0, value}
        assert (noisy == 0).mean() == pytest.approx(zeros, abs=0.006), value
        assert (noisy == 1).mean() == pytest.approx(ones, abs=0.006), value


def test_masking_only_turns_ones_into_zeros():
    p = 0.3
    model = dae(8, corruption="masking", noise_level=p)
    x = binary(20000, 8)
    noisy = model.corrupt(x, seed=2).numpy()
    assert np.all(noisy <= x) and set(np.unique(noisy)) <= {0.0, 1.0}
    dropped = (noisy[x == 1] == 0).mean()
    assert dropped == pytest.approx(p, abs=0.006)
    assert np.all(model.corrupt(np.zeros((100, 8), "float32"), seed=2).numpy() == 0)


def test_gaussian_corruption_adds_noise_of_the_stated_deviation():
    """160,000 draws: the sample std has a relative standard error of 0.18 %."""
    model = dae(8, corruption="gaussian", noise_level=0.3)
    x = binary(20000, 8)
    noise = model.corrupt(x, seed=3).numpy() - x
    assert np.std(noise) == pytest.approx(0.3, rel=0.01)
    assert abs(noise.mean()) < 0.003
    assert abs(np.corrcoef(noise[:, 0], noise[:, 1])[0, 1]) < 0.03      # independent units


def test_no_corruption_and_a_zero_level_leave_x_unchanged():
    x = binary(50, 4)
    for model in (dae(4, corruption="none"), dae(4, noise_level=0.0)):
        np.testing.assert_array_equal(model.corrupt(x, seed=0).numpy(), x)


# ----- log C(x~ | x) by enumeration -----------------------------------------------------------
# noise_level = 1 for masking: x~ = 0 is the one possible outcome, log C = 0 there (a count
# of 0 times log(1 - p) = -inf must give 0, not NaN).
@pytest.mark.parametrize("corruption, p", [("salt_and_pepper", 0.4), ("masking", 0.3),
                                           ("salt_and_pepper", 1.0), ("masking", 1.0)])
def test_log_corruption_is_the_product_over_units_and_is_normalised(corruption, p):
    """d = 4: for every x, sum over the 16 states x~ of C(x~ | x) = 1; every entry equals
    the product of per-unit probabilities computed independently. p = 1 is an accepted
    level: the edge where a 0 * log(0) term must count as 0."""
    model = dae(4, corruption=corruption, noise_level=p)
    states = sampling.all_binary_states(4)
    log_c = np.asarray(model.log_corruption(states, states))
    assert log_c.shape == (16, 16) and log_c.dtype == np.float64
    np.testing.assert_allclose(np.exp(log_c).sum(axis=0), 1.0, rtol=1e-12)
    np.testing.assert_allclose(np.exp(log_c), corruption_by_units(corruption, p, 4),
                               rtol=1e-12, atol=1e-300)


def test_log_corruption_of_none_is_zero_on_the_diagonal_and_minus_infinity_elsewhere():
    states = sampling.all_binary_states(4)
    log_c = np.asarray(dae(4, corruption="none").log_corruption(states, states))
    assert np.all(np.diag(log_c) == 0.0)
    assert np.all(log_c[~np.eye(16, dtype=bool)] == -np.inf)


@pytest.mark.parametrize("corruption", ["salt_and_pepper", "masking"])
def test_corrupt_draws_with_the_probabilities_of_log_corruption(corruption):
    """4,000 corruptions of each of the 16 states of d = 4; for each x the counts of x~ pass
    Pearson's test against C(. | x) (the smallest p-value of 16 above 1e-4), and no x~ of
    probability 0 ever appears."""
    model = dae(4, corruption=corruption, noise_level=0.3)
    states = sampling.all_binary_states(4)
    probabilities = np.exp(np.asarray(model.log_corruption(states, states)))
    noisy = model.corrupt(np.repeat(states, 4000, axis=0), seed=4).numpy()
    counts = np.bincount(16 * np.repeat(np.arange(16), 4000) + state_index(noisy),
                         minlength=256).reshape(16, 16)          # [x, x~]
    p_values = [chi_square_p_value(counts[j], probabilities[:, j]) for j in range(16)]
    assert min(p_values) > 1e-4, p_values


# ----- the exact chain ------------------------------------------------------------------------
def test_exact_dae_chain_is_the_sum_over_corruptions_and_pi_is_stationary():
    model = randomized(dae(3))
    states, transition, stationary = exact_dae_chain(model)
    np.testing.assert_array_equal(states, sampling.all_binary_states(3))
    np.testing.assert_array_equal(state_index(states), np.arange(8))
    # T[x, x'] = sum_x~ C(x~ | x) prod_i P(x'_i | x~), every factor computed here
    p = np.asarray(model.reconstruct(states), np.float64)                       # [x~, i]
    p_next = np.prod(np.where(states[None] == 1, p[:, None], 1 - p[:, None]), -1)  # [x~, x']
    expected = corruption_by_units("salt_and_pepper", 0.4, 3).T @ p_next
    np.testing.assert_allclose(transition, expected, rtol=1e-6, atol=1e-12)
    np.testing.assert_allclose(transition.sum(axis=1), 1.0, rtol=1e-12)
    assert np.all(transition > 0)                     # irreducible: pi is unique
    np.testing.assert_allclose(stationary @ transition, stationary, atol=1e-12)
    assert stationary.sum() == pytest.approx(1.0) and stationary.min() > 0
    assert stationary.max() > 0.4            # far from uniform: the tests below have power


def test_one_chain_step_from_each_state_follows_the_row_of_t():
    """5,000 chains from each of the 8 states, one chain_step each: the counts of the next
    state pass Pearson's test against the row T[x] (smallest of 8 p-values above 1e-4)."""
    model = randomized(dae(3))
    states, transition, _ = exact_dae_chain(model)
    start = np.repeat(states, 5000, axis=0)
    nxt, probs = model.chain_step(tf.constant(start), sampling.as_stateless_seed(5))
    assert probs.shape == (40000, 3) and set(np.unique(nxt.numpy())) <= {0.0, 1.0}
    counts = np.bincount(8 * np.repeat(np.arange(8), 5000) + state_index(nxt.numpy()),
                         minlength=64).reshape(8, 8)
    p_values = [chi_square_p_value(counts[j], transition[j]) for j in range(8)]
    assert min(p_values) > 1e-4, p_values


def test_the_chain_on_the_discrete_toy_reaches_its_exact_stationary_distribution():
    """20,000 independent chains from x0 = 0 for 30 steps (T's second eigenvalue is about
    0.25, so the start is forgotten to 0.25^30); one more Bernoulli draw from the returned
    P(x | x~) is a state of the stationary chain. Its histogram passes Pearson's test
    against pi (p > 1e-4) and is within total variation 0.02 of it (the sampling TV of
    20,000 draws over 8 cells is about 0.006)."""
    model = randomized(dae(3))
    _, transition, stationary = exact_dae_chain(model)
    assert np.sort(np.abs(np.linalg.eigvals(transition)))[-2] < 0.3
    probs, snapshots = model.chain(np.zeros((20000, 3), "float32"), 30, seed=1, every=10)
    assert snapshots.shape == (3, 20000, 3)
    x = (np.random.default_rng(0).random(probs.shape) < probs).astype("float32")
    counts = np.bincount(state_index(x), minlength=8)
    assert chi_square_p_value(counts, stationary) > 1e-4, (counts / 20000, stationary)
    assert 0.5 * np.abs(counts / 20000 - stationary).sum() < 0.02
    again, _ = model.chain(np.zeros((20000, 3), "float32"), 30, seed=1)
    np.testing.assert_array_equal(probs, again)                   # seeded


# ----- training -------------------------------------------------------------------------------
def nll(probs, x):
    """-sum_i log Bernoulli(x_i | p_i) per row, float64."""
    probs, x = np.asarray(probs, np.float64), np.asarray(x, np.float64)
    return -np.sum(x * np.log(probs) + (1 - x) * np.log1p(-probs), axis=1)


def test_the_one_step_loss_is_the_nll_of_reconstructing_x_from_one_corruption():
    model = randomized(dae(6, walkback=1), scale=0.5)
    x = binary(32, 6)
    state = model.seed_generator.state.numpy()
    loss = float(model.walkback_loss(tf.constant(x)))
    model.seed_generator.state.assign(state)                  # the same corruption again
    noisy = model.corrupt(tf.constant(x)).numpy()
    assert not np.array_equal(noisy, x)
    expected = nll(model.reconstruct(noisy), x).mean()
    assert loss == pytest.approx(expected, rel=1e-5)
    plain = randomized(dae(6, corruption="none"), scale=0.5)
    assert float(plain.walkback_loss(tf.constant(x))) == pytest.approx(
        nll(plain.reconstruct(x), x).mean(), rel=1e-5)


def test_walkback_reconstructs_the_data_point_from_the_chain_s_own_corruptions():
    """K = 2, Eq. (7.9): the second corruption is drawn from a sample of the first
    reconstruction, and the second term still scores x (not that sample)."""
    model = randomized(dae(6, walkback=2), scale=0.5)
    x = binary(32, 6)
    state = model.seed_generator.state.numpy()
    loss = float(model.walkback_loss(tf.constant(x)))
    model.seed_generator.state.assign(state)                  # replay every draw in order
    noisy_1 = model.corrupt(tf.constant(x))
    probs_1 = model.reconstruct(noisy_1)
    walked = sampling.bernoulli(probs_1, model.seed_generator)
    probs_2 = model.reconstruct(model.corrupt(walked))
    assert not np.array_equal(walked.numpy(), x)
    expected = 0.5 * (nll(probs_1, x).mean() + nll(probs_2, x).mean())
    assert loss == pytest.approx(expected, rel=1e-5)
    assert abs(loss - 0.5 * (nll(probs_1, x).mean() + nll(probs_2, walked).mean())) > 1e-3


def test_a_train_step_moves_every_weight_and_lowers_the_loss():
    model = dae(6, walkback=2)
    before = [v.numpy().copy() for v in model.trainable_variables]
    assert len(before) == 4
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    x = np.tile(np.eye(6, dtype="float32"), (20, 1))
    history = model.fit(x, batch_size=20, epochs=15, verbose=0).history
    for start, variable in zip(before, model.trainable_variables, strict=True):
        assert not np.array_equal(start, variable.numpy()), variable.path
    losses = history["reconstruction_loss"]
    assert np.isfinite(losses).all() and losses[-1] < 0.8 * losses[0]


def test_save_and_load_keep_the_networks_the_seed_and_the_optimizer(tmp_path):
    x = binary(64, 6)
    straight = dae(6, walkback=2)
    straight.compile(optimizer=keras.optimizers.Adam(1e-2), steps_per_execution=1)
    straight.fit(x, batch_size=16, epochs=3, shuffle=False, verbose=0)
    first = dae(6, walkback=2)
    first.compile(optimizer=keras.optimizers.Adam(1e-2), steps_per_execution=1)
    first.fit(x, batch_size=16, epochs=2, shuffle=False, verbose=0)
    loaded = saved_and_loaded(first, tmp_path / "dae.keras", DenoisingAutoencoder)
    np.testing.assert_array_equal(loaded.reconstruct(x).numpy(), first.reconstruct(x).numpy())
    np.testing.assert_array_equal(loaded.corrupt(x, seed=3).numpy(),
                                  first.corrupt(x, seed=3).numpy())
    np.testing.assert_array_equal(loaded.encode(x).numpy(), first.encode(x).numpy())
    loaded.fit(x, batch_size=16, epochs=1, shuffle=False, verbose=0)
    for a, b in zip(straight.weights, loaded.weights, strict=True):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-5, atol=1e-6, err_msg=a.path)


def test_encode_and_decode_compose_to_reconstruct():
    model = randomized(dae(6, code_activation="sigmoid"), scale=0.5)
    x = binary(10, 6)
    code = model.encode(x).numpy()
    assert code.shape == (10, 8) and code.min() >= 0 and code.max() <= 1
    np.testing.assert_allclose(model.decode(code).numpy(), model.reconstruct(x).numpy(),
                               rtol=1e-6)


# ----- refusals -------------------------------------------------------------------------------
BAD_LEVELS = [(1.5, ValueError), (-0.1, ValueError), (float("nan"), ValueError),
              ("a", TypeError), (None, TypeError)]
CASES = [
    ("input_dim", lambda v: DenoisingAutoencoder(v, (4,)), "input_dim", BAD_COUNTS),
    ("corruption", lambda v: DenoisingAutoencoder(4, (4,), corruption=v), "corruption",
     [("blur", ValueError), (None, ValueError), (1, ValueError)]),
    ("noise_level", lambda v: DenoisingAutoencoder(4, (4,), noise_level=v), "noise_level",
     BAD_LEVELS),
    ("masking-noise_level", lambda v: DenoisingAutoencoder(4, (4,), corruption="masking",
                                                           noise_level=v), "noise_level",
     BAD_LEVELS),
    ("gaussian-noise_level", lambda v: DenoisingAutoencoder(4, (4,), corruption="gaussian",
                                                            noise_level=v), "noise_level",
     [(-0.1, ValueError), (float("inf"), ValueError)]),
    ("walkback", lambda v: DenoisingAutoencoder(4, (4,), walkback=v), "walkback", BAD_COUNTS),
    ("seed", lambda v: DenoisingAutoencoder(4, (4,), seed=v), "seed",
     [(-1, ValueError), (1.5, TypeError), ("3", TypeError)]),
    ("chain-steps", lambda v: dae(4).chain(binary(2, 4), v), "num_steps", BAD_COUNTS),
    ("chain-seed", lambda v: dae(4).chain(binary(2, 4), 1, seed=v), "seed",
     BAD_REQUIRED_SEEDS),
]


@pytest.mark.parametrize("call, name, value, error", expand(CASES))
def test_bad_arguments_are_refused(call, name, value, error):
    assert_refused(lambda: call(value), name, value, error)


def test_bad_data_and_models_are_refused_with_what_was_expected():
    assert DenoisingAutoencoder(4, (4,), corruption="gaussian", noise_level=1.5).noise_level \
        == 1.5                                  # a standard deviation may pass 1
    model = dae(4)
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    with pytest.raises(ValueError, match=r"must lie in \[0, 1\].*\[-1, 1\]"):
        model.fit(2 * binary(8, 4) - 1, verbose=0)
    with pytest.raises(ValueError, match=r"4 columns"):
        model.fit(binary(8, 5), verbose=0)
    with pytest.raises(ValueError, match=r"x0 must lie in \[0, 1\]"):
        model.chain(np.full((2, 4), 2.0, "float32"), 3)
    with pytest.raises(ValueError, match="Gaussian corruption has a density"):
        dae(4, corruption="gaussian", noise_level=0.1).log_corruption(binary(2, 4),
                                                                      binary(2, 4))
    with pytest.raises(ValueError, match="d = 13 is more than 12"):
        exact_dae_chain(dae(13))
