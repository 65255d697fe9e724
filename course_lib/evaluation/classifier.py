"""The course's own MNIST classifier, the fixed yardstick for sample scores (Chapter 5 on).

Fréchet and kernel distances need features, and an Inception-style score needs class
probabilities, from one network that never changes, so that every chapter scores its
samples the same way, offline. That network is a small CNN trained by
``data/make_mnist_classifier.py`` (from the repository root); its weights ship inside the
package (``course_lib/data/mnist_classifier.weights.h5``) with their SHA-256 below, checked
at every load.

    (5.9) Inception-style score (Salimans et al. 2016) with p(y | x) from the classifier:
          IS = exp(E_x KL(p(y | x) || p(y))), between 1 and 10 for ten classes;
          reported as mean and sd over ``num_splits`` disjoint parts of the samples.

Images go in as (n, 784) intensities in [0, 1] (binary samples too); samples of a tanh
generator in [-1, 1] are mapped with (x + 1) / 2 first. :func:`score_samples` gives every
score of the course for one set of generated digits at once (Parzen window, Fréchet and
kernel distances, Inception-style score, class counts).
"""

from __future__ import annotations

import hashlib
import math
import pathlib
from dataclasses import dataclass

import keras
import numpy as np

from course_lib.checks import (
    DataError,
    check_bool,
    check_images,
    check_positive_int,
    check_seed,
)
from course_lib.evaluation.samples import (
    MeanWithError,
    choose_parzen_sigma,
    frechet_distance,
    kernel_distance,
    parzen_log_likelihood,
)

CLASSIFIER_FILE = pathlib.Path(__file__).resolve().parents[1] / "data" / \
    "mnist_classifier.weights.h5"
# written by data/make_mnist_classifier.py with the weights
CLASSIFIER_SHA256 = "ac8f2e6684ad41b40b9f580f6226382d36984d330943cc49e670b4b06f73d778"
FEATURES_LAYER = "features"


def mnist_classifier_network(seed=None):
    """The architecture (untrained): two 3x3 convolutions with max pooling, a 64-unit
    feature layer (``FEATURES_LAYER``, the features of the distances) and 10 logits.
    ``seed``: an int seeds every initial weight and the dropout (None: Keras' global
    generator)."""
    seed = check_seed(seed, allow_none=True)

    def init(k):
        return keras.initializers.GlorotUniform(seed=None if seed is None else seed + k)

    return keras.Sequential([
        keras.Input((784,)),
        keras.layers.Reshape((28, 28, 1)),
        keras.layers.Conv2D(32, 3, padding="same", activation="relu", name="conv1",
                            kernel_initializer=init(0)),
        keras.layers.MaxPooling2D(name="pool1"),
        keras.layers.Conv2D(64, 3, padding="same", activation="relu", name="conv2",
                            kernel_initializer=init(1)),
        keras.layers.MaxPooling2D(name="pool2"),
        keras.layers.Flatten(name="flatten"),
        keras.layers.Dropout(0.3, name="dropout", seed=seed),
        keras.layers.Dense(64, activation="relu", name=FEATURES_LAYER,
                           kernel_initializer=init(2)),
        keras.layers.Dense(10, name="logits", kernel_initializer=init(3)),
    ], name="mnist_classifier")


def file_sha256(path):
    return hashlib.sha256(pathlib.Path(path).read_bytes()).hexdigest()


def load_mnist_classifier(path=None, *, verify=True):
    """The trained classifier.

    Args:
        path: the weights file; default the one the package ships.
        verify: check the file's SHA-256 against ``CLASSIFIER_SHA256`` (pass False only
            to score with another network on purpose).

    Raises:
        DataError: if the weights file is missing or is not the one the course ships.
    """
    verify = check_bool(verify, "verify")
    path = CLASSIFIER_FILE if path is None else pathlib.Path(path)
    if not path.is_file():
        raise DataError(f"the MNIST classifier's weights {str(path)!r} are missing; run "
                        "python data/make_mnist_classifier.py from the repository root.")
    if verify and (got := file_sha256(path)) != CLASSIFIER_SHA256:
        raise DataError(f"the MNIST classifier's weights {str(path)!r} have SHA-256 {got}, "
                        f"not the shipped {CLASSIFIER_SHA256}: every chapter must score "
                        "with the same network; restore the file from the repository.")
    model = mnist_classifier_network()
    model.load_weights(path)
    return model


def _images(images):
    x = check_images(images, expected_dim=784, name="images")
    if x.min() < 0.0 or x.max() > 1.0:
        raise DataError(f"images must be intensities in [0, 1]; got values in "
                        f"[{x.min():g}, {x.max():g}] (map tanh samples with (x + 1) / 2).")
    return x


def classifier_outputs(classifier, images, *, batch_size=1000):
    """``(features (n, 64), probabilities (n, 10))`` as float64 NumPy arrays."""
    batch_size = check_positive_int(batch_size, "batch_size")
    x = _images(images)
    # One two-output view per classifier, kept on it: a new view per call would compile a new
    # predict function each time (and Keras warns about retracing after a few).
    both = classifier.__dict__.get("_features_and_logits")
    if both is None:
        both = keras.Model(classifier.inputs, [classifier.get_layer(FEATURES_LAYER).output,
                                               classifier.outputs[0]])
        classifier.__dict__["_features_and_logits"] = both
    features, logits = both.predict(x, batch_size=batch_size, verbose=0)
    logits = logits.astype(np.float64)
    logits -= logits.max(axis=1, keepdims=True)
    probabilities = np.exp(logits)
    probabilities /= probabilities.sum(axis=1, keepdims=True)
    return features.astype(np.float64), probabilities


def inception_score(probabilities, *, num_splits=10):
    """Eq. (5.9) from class probabilities (n, K): the mean and sd of exp(E KL(p(y|x) || p(y)))
    over ``num_splits`` consecutive parts (the sd is the spread of the parts, as reported
    in the literature, not an error of the mean)."""
    p = np.asarray(probabilities, dtype=np.float64)
    if p.ndim != 2 or len(p) == 0 or not np.all(np.isfinite(p)) or p.min() < 0 \
            or not np.allclose(p.sum(axis=1), 1.0, atol=1e-6):
        raise DataError(f"probabilities must be rows (n, K) of non-negative numbers summing to "
                        f"1; got shape {p.shape}.")
    num_splits = check_positive_int(num_splits, "num_splits")
    if num_splits > len(p):
        raise ValueError(f"num_splits={num_splits} exceeds the {len(p)} samples.")
    scores = []
    for part in np.array_split(p, num_splits):
        marginal = part.mean(axis=0, keepdims=True)
        with np.errstate(divide="ignore", invalid="ignore"):
            terms = np.where(part > 0, part * (np.log(part) - np.log(marginal)), 0.0)
        scores.append(math.exp(terms.sum(axis=1).mean()))
    scores = np.array(scores)
    return MeanWithError(float(scores.mean()),
                         float(scores.std(ddof=1)) if num_splits > 1 else 0.0)


@dataclass(frozen=True)
class SampleScores:
    """Every score of :func:`score_samples` for one set of generated images."""

    count: int
    sigma: float
    parzen: MeanWithError
    frechet: float
    kernel: MeanWithError
    inception: MeanWithError
    classes: int
    largest_class: float

    def __str__(self):
        return (f"sigma {self.sigma:.3f} | Parzen {self.parzen} | FD {self.frechet:7.2f} | "
                f"KID {self.kernel.mean:.4f} | IS {self.inception} | classes {self.classes}")


def score_samples(images, *, classifier, x_valid, x_test, sigmas, test_features=None, seed=0):
    """The course's scores of generated MNIST images in [0, 1], Eqs. (5.5)-(5.7) and (5.9):
    the Parzen log-likelihood of ``x_test`` with sigma chosen among ``sigmas`` on
    ``x_valid`` (Goodfellow et al.'s protocol), the Fréchet and kernel distances to the test
    images' classifier features, the Inception-style score, and the number of classes that
    hold at least 1% of the samples (and the largest class's share).

    ``test_features``: the classifier features of ``x_test`` if already computed (they are
    the same for every generator scored against one test set)."""
    images = check_images(images, expected_dim=784, name="images")
    sigma, _ = choose_parzen_sigma(images, x_valid, sigmas, verbose=0)
    parzen = parzen_log_likelihood(images, x_test, sigma, verbose=0)
    if test_features is None:
        test_features, _ = classifier_outputs(classifier, x_test)
    features, probs = classifier_outputs(classifier, images)
    shares = np.bincount(probs.argmax(1), minlength=probs.shape[1]) / len(probs)
    return SampleScores(len(images), sigma, parzen, frechet_distance(features, test_features),
                        kernel_distance(features, test_features, num_subsets=50, seed=seed),
                        inception_score(probs), int((shares >= 0.01).sum()),
                        float(shares.max()))

