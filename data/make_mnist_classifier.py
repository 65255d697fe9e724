"""Trains the course's MNIST classifier, the fixed yardstick of the sample scores, and writes
its weights into the package with their SHA-256.

    python data/make_mnist_classifier.py [--epochs 6]

About four minutes on two CPU cores. Trains
``course_lib.evaluation.classifier.mnist_classifier_network`` on the course's first 50,000
training images (intensities in [0, 1]) with Adam, keeps the weights of the epoch with the
best accuracy on the 10,000 validation images, reports the test accuracy and the
Inception-style score of the real test set, writes ``course_lib/data/mnist_classifier.weights.h5``
and sets ``CLASSIFIER_SHA256`` in ``course_lib/evaluation/classifier.py`` to the new file's
hash. Run it only to change the yardstick: every score of every chapter changes with it.
"""

import argparse
import os
import pathlib
import re
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402

from course_lib import data  # noqa: E402
from course_lib.evaluation import classifier as yardstick  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=6)
    args = parser.parse_args()
    keras.utils.set_random_seed(0)
    splits = data.mnist_splits(binarization="none")
    model = yardstick.mnist_classifier_network()
    model.compile(optimizer=keras.optimizers.Adam(1e-3),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"])
    with tempfile.TemporaryDirectory() as scratch:
        best_file = pathlib.Path(scratch) / "best.weights.h5"
        best = keras.callbacks.ModelCheckpoint(
            str(best_file), monitor="val_accuracy", mode="max", save_best_only=True,
            save_weights_only=True)
        model.fit(splits["x_train"], splits["y_train"], batch_size=128, epochs=args.epochs,
                  validation_data=(splits["x_valid"], splits["y_valid"]), callbacks=[best],
                  verbose=2)
        # The best epoch's weights, without the optimizer's state, into the package.
        trained = yardstick.mnist_classifier_network()
        trained.load_weights(best_file)
    trained.save_weights(yardstick.CLASSIFIER_FILE)
    _, probabilities = yardstick.classifier_outputs(trained, splits["x_test"])  # in memory
    accuracy = float((probabilities.argmax(axis=1) == splits["y_test"]).mean())
    score = yardstick.inception_score(probabilities)
    digest = yardstick.file_sha256(yardstick.CLASSIFIER_FILE)
    source = pathlib.Path(yardstick.__file__)
    text = source.read_text()
    text, count = re.subn(r'^CLASSIFIER_SHA256 = .*$',
                          f'CLASSIFIER_SHA256 = "{digest}"',
                          text, flags=re.MULTILINE)
    if count != 1:
        raise SystemExit(f"could not find CLASSIFIER_SHA256 in {source}")
    source.write_text(text)
    print(f"test accuracy {accuracy:.4f}; Inception-style score of the test set {score}; "
          f"weights {yardstick.CLASSIFIER_FILE} ({yardstick.CLASSIFIER_FILE.stat().st_size} "
          f"bytes), SHA-256 {digest}")
    np.testing.assert_array_less(0.98, accuracy)


if __name__ == "__main__":
    main()
