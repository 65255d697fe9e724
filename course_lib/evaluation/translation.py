"""Scores of an unpaired translation between two digit domains (Chapter 8).

The protocol of the UNIT / CoGAN / CyCADA tables (``TARGETS.md``), with the source-only
baseline always beside the translated score:

- **label preservation** (:func:`label_preservation`): a digit classifier trained on the
  target domain's training labels reads the source domain's test images, once as they are
  (the source-only baseline) and once translated into the target domain. A translation that
  keeps each digit's identity raises the accuracy; one that turns 3s into 8s lowers it.
- **adaptation** (:func:`adaptation_accuracy`): a classifier trained on the source domain's
  training images *translated* into the target domain, with their source labels, reads the
  target domain's real test images; the baseline trains on the untranslated source images.
- :func:`cycle_error`: the mean absolute difference between images and their round trips,
  in intensity units of [0, 1];
- :func:`feature_distance`: the Fréchet distance (Eq. 5.6) between translated and real
  images of a domain, on a classifier's ``features`` layer (Chapter 5's yardstick).

Images go in as the translation models take them: (n, 28, 28, 1) in [-1, 1]; classifiers
take (n, 784) intensities in [0, 1] (:func:`classifier_images`). A model is reached only
through its ``translate(images, direction)`` and ``cycle(images, domain)`` methods.
"""

from __future__ import annotations

from dataclasses import dataclass

import keras
import numpy as np

from course_lib.checks import (
    DataError,
    check_finite_float,
    check_positive_int,
    check_seed,
    describe,
)
from course_lib.evaluation.classifier import classifier_outputs, mnist_classifier_network
from course_lib.evaluation.samples import frechet_distance

DIRECTIONS = ("x_to_y", "y_to_x")


def classifier_images(images):
    """Translation images (n, h, w, c) in [-1, 1] as a classifier takes them: flattened
    intensities (n, h w c) in [0, 1]."""
    x = np.asarray(images, dtype=np.float32)
    if x.ndim != 4:
        raise DataError(f"images must be (n, height, width, channels) in [-1, 1]; got shape "
                        f"{x.shape}.")
    if not np.isfinite(x).all():
        raise DataError(f"images must be finite; got {x.size - np.isfinite(x).sum()} NaN or "
                        "inf values.")
    if x.min() < -1.0 or x.max() > 1.0:
        raise DataError(f"images must lie in [-1, 1]; got values in [{x.min():g}, "
                        f"{x.max():g}].")
    return ((x + 1.0) / 2.0).reshape(len(x), -1)


def _labels(labels, count, name="labels"):
    y = np.asarray(labels)
    if y.dtype.kind not in "iu" or y.shape != (count,):
        raise DataError(f"{name} must be {count} integer class labels, shape ({count},); got "
                        f"{describe(labels)}.")
    return y


def accuracy(classifier, images, labels, *, batch_size=1000):
    """The fraction of ``images`` ((n, 784) in [0, 1]) whose most probable class under
    ``classifier`` is their label."""
    _, probabilities = classifier_outputs(classifier, images, batch_size=batch_size)
    return float(np.mean(probabilities.argmax(axis=1) == _labels(labels, len(probabilities))))


def _check_direction(direction):
    if direction not in DIRECTIONS:
        raise ValueError(f"direction must be one of {DIRECTIONS}; got {describe(direction)}.")
    return direction


@dataclass(frozen=True)
class TranslationAccuracy:
    """A source-only accuracy and the accuracy after translation, for one direction."""
    direction: str
    source_only: float
    translated: float

    def __str__(self):
        return (f"{self.direction}: source only {100 * self.source_only:.2f}%, translated "
                f"{100 * self.translated:.2f}%")


def label_preservation(model, direction, images, labels, target_classifier, *,
                       batch_size=256):
    """The target domain's classifier on the source test ``images`` (in [-1, 1]), as they
    are and translated by ``model.translate(images, direction)``."""
    direction = _check_direction(direction)
    labels = _labels(labels, len(images))
    translated = model.translate(images, direction, batch_size=batch_size)
    return TranslationAccuracy(direction,
                               accuracy(target_classifier, classifier_images(images), labels),
                               accuracy(target_classifier, classifier_images(translated),
                                        labels))


def train_digit_classifier(images, labels, *, epochs=10, batch_size=64, seed=0,
                           learning_rate=1e-3):
    """A digit classifier of the course's architecture (``mnist_classifier_network``)
    trained on ``images`` ((n, 784) in [0, 1]) and integer ``labels`` with Adam, for a
    domain without a shipped classifier or for the adaptation score. Silent.

    ``seed`` fixes the initial weights, the dropout and each epoch's order (a NumPy
    permutation), so the same call gives the same classifier; Keras' global random state
    is neither read for them nor reset."""
    epochs = check_positive_int(epochs, "epochs")
    batch_size = check_positive_int(batch_size, "batch_size")
    seed = check_seed(seed)
    x = np.asarray(images, dtype=np.float32)
    if x.ndim != 2 or x.shape[1] != 784 or x.min() < 0 or x.max() > 1:
        raise DataError(f"images must be (n, 784) intensities in [0, 1]; got {describe(images)}.")
    y = _labels(labels, len(x))
    model = mnist_classifier_network(seed=seed)
    model.compile(optimizer=keras.optimizers.Adam(learning_rate),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    rng = np.random.default_rng(seed)
    for _ in range(epochs):
        order = rng.permutation(len(x))
        model.fit(x[order], y[order], batch_size=batch_size, epochs=1, shuffle=False, verbose=0)
    return model


def adaptation_accuracy(model, direction, source_images, source_labels, target_images,
                        target_labels, *, epochs=10, seed=0, source_only=None):
    """Classifiers trained on the source training images (in [-1, 1]) with their labels,
    untranslated (the baseline) and translated by ``model`` into the target domain, each
    reading the target domain's real test images.

    ``source_only``: the baseline's accuracy when it is already known (the same images,
    labels, epochs and seed give the same classifier), so that scoring several models trains
    it once; None trains it here."""
    direction = _check_direction(direction)
    source_labels = _labels(source_labels, len(source_images), "source_labels")
    target_labels = _labels(target_labels, len(target_images), "target_labels")
    target = classifier_images(target_images)

    def trained_on(images):
        classifier = train_digit_classifier(classifier_images(images), source_labels,
                                            epochs=epochs, seed=seed)
        return accuracy(classifier, target, target_labels)

    if source_only is None:
        source_only = trained_on(source_images)
    else:
        source_only = check_finite_float(source_only, "source_only", at_least=0.0,
                                         at_most=1.0)
    return TranslationAccuracy(direction, source_only,
                               trained_on(model.translate(source_images, direction)))


def cycle_error(model, images, domain):
    """Mean |cycle(x) - x| over pixels, in intensity units of [0, 1] (half the [-1, 1]
    difference)."""
    cycled = model.cycle(images, domain)
    return float(np.mean(np.abs(cycled - np.asarray(images, np.float32))) / 2.0)


def feature_distance(classifier, images_a, images_b):
    """The Fréchet distance between two sets of images (in [-1, 1]) on ``classifier``'s
    features."""
    features_a, _ = classifier_outputs(classifier, classifier_images(images_a))
    features_b, _ = classifier_outputs(classifier, classifier_images(images_b))
    return frechet_distance(features_a, features_b)
