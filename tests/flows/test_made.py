"""MADE's autoregressive property, read off its autodiff Jacobian, and BinaryMADE's exact
likelihood against enumeration of every binary vector and its sampler against those
probabilities."""

import itertools

import keras
import numpy as np
import pytest
import tensorflow as tf

from course_lib.flows import MADE, BinaryMADE
from course_lib.flows.made import input_degrees, made_masks


def randomize(layer, seed=0):
    rng = np.random.default_rng(seed)
    for variable in layer.trainable_variables:
        variable.assign(rng.normal(0.0, 0.7, variable.shape))


ORDERS = {"natural": "natural", "reversed": "reversed", "permutation": [3, 0, 5, 1, 4, 2]}


@pytest.mark.parametrize("hidden", [(), (12,), (9, 7)], ids=["no-hidden", "one", "two"])
@pytest.mark.parametrize("order", sorted(ORDERS))
def test_made_is_autoregressive_under_its_ordering(order, hidden):
    """d output_d / d x_j is zero unless x_j comes before x_d in the ordering (the Jacobian is
    strictly triangular once rows and columns are sorted by the ordering), and every
    allowed entry is non-zero somewhere (no dimension is cut off from what it may use)."""
    dim = 6
    made = MADE(dim, hidden, num_params=2, order=ORDERS[order], activation="tanh",
                dtype="float64")
    randomize(made)
    x = tf.constant(np.random.default_rng(1).normal(size=(20, dim)))
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(x)
        out = made(x)
        params = [out[..., p] for p in range(2)]
    ranks = made.degrees
    allowed = ranks[None, :] < ranks[:, None]          # [d, j]: x_j precedes x_d
    for p in params:
        jacobian = np.abs(tape.batch_jacobian(p, x).numpy())     # (n, d, j)
        assert (jacobian[:, ~allowed] == 0).all()
        used = jacobian.max(axis=0) > 1e-6
        np.testing.assert_array_equal(used, allowed)
    first = np.argsort(ranks)
    sorted_jacobian = tape.batch_jacobian(params[0], x).numpy()[:, first][:, :, first]
    assert np.allclose(np.triu(sorted_jacobian.max(axis=0)), 0.0)


def test_degrees_and_masks_by_hand():
    """Three inputs in the natural order, one hidden layer of two units (degrees 1, 2)."""
    np.testing.assert_array_equal(input_degrees(3, "natural"), [1, 2, 3])
    np.testing.assert_array_equal(input_degrees(3, [2, 0, 1]), [2, 3, 1])
    into_hidden, into_output = made_masks(np.array([1, 2, 3]), (2,))
    np.testing.assert_array_equal(into_hidden, [[1, 1], [0, 1], [0, 0]])
    np.testing.assert_array_equal(into_output, [[0, 1, 1], [0, 0, 1]])


def all_vectors(dim):
    return np.array(list(itertools.product([0.0, 1.0], repeat=dim)), dtype="float32")


@pytest.mark.parametrize("order", ["natural", "reversed"])
def test_binary_made_is_normalised_and_samples_its_own_probabilities(order):
    keras.utils.set_random_seed(0)
    model = BinaryMADE(4, (8,), order=order, seed=3)
    randomize(model.made, seed=2)
    states = all_vectors(4)
    probs = np.exp(model.log_prob(states).numpy().astype(np.float64))
    assert abs(probs.sum() - 1.0) < 1e-5
    assert probs.max() < 0.5                      # not a degenerate distribution
    n = 20_000
    samples = model.sample(n)
    assert set(np.unique(samples)) <= {0.0, 1.0}
    index = (samples @ (2 ** np.arange(3, -1, -1))).astype(int)
    counts = np.bincount(index, minlength=16)
    std = np.sqrt(n * probs * (1 - probs))
    assert (np.abs(counts - n * probs) <= 5 * std + 1).all(), (counts, n * probs)


def test_binary_made_learns_a_product_distribution_and_round_trips(tmp_path):
    """Independent pixels with known means: the fitted log-likelihood approaches the
    entropy bound, and a saved model gives the same log-probabilities."""
    keras.utils.set_random_seed(0)
    means = np.array([0.1, 0.5, 0.9, 0.3, 0.7], "float32")
    x = (np.random.default_rng(0).random((4000, 5)) < means).astype("float32")
    model = BinaryMADE(5, (16,), seed=0)
    model.compile(keras.optimizers.Adam(1e-2))
    model.fit(x, batch_size=100, epochs=8, verbose=0)
    entropy = -(means * np.log(means) + (1 - means) * np.log(1 - means)).sum()
    nll = -model.log_prob(x).numpy().mean()
    assert entropy - 0.02 < nll < entropy + 0.05, (nll, entropy)
    path = tmp_path / "made.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    np.testing.assert_allclose(loaded.log_prob(x[:50]).numpy(), model.log_prob(x[:50]).numpy(),
                               rtol=1e-6)
    np.testing.assert_array_equal(loaded.made.degrees, model.made.degrees)
