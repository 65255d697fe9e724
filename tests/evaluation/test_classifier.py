"""The shipped MNIST classifier, the yardstick of every chapter's sample scores.

It must be the file the course ships (its SHA-256), classify real test digits well, and
give the scores their known values: an Inception-style score of 10 for confident, balanced
predictions and of 1 for a single class, near 10 for the real test set, and a Fréchet
distance far smaller between real image sets than between real images and noise.
"""

import shutil

import numpy as np
import pytest

from course_lib import data
from course_lib.checks import DataError
from course_lib.evaluation import classifier as yardstick
from course_lib.evaluation import frechet_distance


@pytest.fixture(scope="module")
def splits():
    return data.mnist_splits(binarization="none")


@pytest.fixture(scope="module")
def trained():
    return yardstick.load_mnist_classifier()


def test_the_shipped_weights_are_the_recorded_ones():
    assert yardstick.CLASSIFIER_SHA256 is not None
    assert yardstick.file_sha256(yardstick.CLASSIFIER_FILE) == yardstick.CLASSIFIER_SHA256


def test_a_changed_weights_file_is_refused(tmp_path, monkeypatch):
    copy = tmp_path / "mnist_classifier.weights.h5"
    shutil.copy(yardstick.CLASSIFIER_FILE, copy)
    with open(copy, "r+b") as f:
        f.seek(-100, 2)
        tail = f.read(8)
        f.seek(-100, 2)
        f.write(bytes(255 - b for b in tail))         # every byte changed
    monkeypatch.setattr(yardstick, "CLASSIFIER_FILE", copy)
    with pytest.raises(DataError, match="not the shipped"):
        yardstick.load_mnist_classifier()
    with pytest.raises(DataError, match="not the shipped"):
        yardstick.load_mnist_classifier(copy)
    yardstick.load_mnist_classifier(copy, verify=False)     # on purpose: another network
    monkeypatch.setattr(yardstick, "CLASSIFIER_FILE", tmp_path / "missing.weights.h5")
    with pytest.raises(DataError, match="missing"):
        yardstick.load_mnist_classifier()


def test_it_classifies_real_digits_and_scores_them_near_ten(trained, splits):
    x, y = splits["x_test"], splits["y_test"]
    features, probabilities = yardstick.classifier_outputs(trained, x)
    assert features.shape == (10000, 64) and probabilities.shape == (10000, 10)
    assert (probabilities.argmax(1) == y).mean() > 0.98
    score = yardstick.inception_score(probabilities)      # 10 parts of 1,000 test images
    assert 9.5 < score.mean <= 10.0
    x, y = x[:3000], y[:3000]
    # binarized digits (the Boltzmann chapters' samples) are still digits to it
    binary = data.mnist_splits(binarization="fixed")["x_test"][:3000]
    _, p_binary = yardstick.classifier_outputs(trained, binary)
    assert (p_binary.argmax(1) == y).mean() > 0.95


def test_frechet_distance_on_its_features_separates_digits_from_noise(trained, splits):
    real_a, _ = yardstick.classifier_outputs(trained, splits["x_test"][:2000])
    real_b, _ = yardstick.classifier_outputs(trained, splits["x_valid"][:2000])
    noise = np.random.default_rng(0).random((2000, 784)).astype("float32")
    fake, _ = yardstick.classifier_outputs(trained, noise)
    assert 20 * frechet_distance(real_a, real_b) < frechet_distance(real_a, fake)


def test_inception_score_has_its_known_values():
    one_hot = np.eye(10)[np.arange(1000) % 10]
    assert yardstick.inception_score(one_hot, num_splits=10).mean == pytest.approx(10.0)
    single = np.eye(10)[np.zeros(500, int)]
    assert yardstick.inception_score(single, num_splits=5).mean == pytest.approx(1.0)
    uniform = np.full((500, 10), 0.1)
    assert yardstick.inception_score(uniform, num_splits=5).mean == pytest.approx(1.0)
    rng = np.random.default_rng(0)
    p = rng.dirichlet(np.ones(10) * 0.3, size=200)
    marginal = p.mean(0)
    expected = np.exp(np.mean(np.sum(p * (np.log(p) - np.log(marginal)), axis=1)))
    assert yardstick.inception_score(p, num_splits=1).mean == pytest.approx(expected)


def test_bad_inputs_are_refused(trained):
    with pytest.raises(DataError, match=r"\[0, 1\]"):
        yardstick.classifier_outputs(trained, np.full((3, 784), -1.0, "float32"))
    with pytest.raises(DataError, match="columns"):
        yardstick.classifier_outputs(trained, np.zeros((3, 100), "float32"))
    with pytest.raises(DataError, match="summing to 1"):
        yardstick.inception_score(np.ones((4, 10)))
    with pytest.raises(ValueError, match="num_splits"):
        yardstick.inception_score(np.eye(10)[:3], num_splits=5)
