"""course_lib: models and machinery for the deep generative models course.

Layout (one subpackage per model family, shared machinery beside them, course tooling
apart)::

    course_lib/
      checks.py        input validation shared by everything (clear errors)
      sampling.py      random streams, Markov-chain runs, enumeration of binary states
      kernels.py       Gaussian kernels and the MMD with its gradient (Chapter 7)
      langevin.py      Langevin dynamics on an energy (Chapter 7)
      data/            MNIST offline, binarizations, 8x8 digits (and resampled to 28x28);
                       data.toy: synthetic sets
      training/        the shared fit (array input, guard), divergence guard, checkpoints,
                       evaluation callbacks, the two-player base and the generator's prior
      plotting.py      figures every chapter uses
      boltzmann/       Chapters 1-3: RBM, Boltzmann machine, DBN, DBM, stacking, AIS paths
      variational/     Chapter 4: Gaussian latent math, VAE/IWAE/CVAE, VQ-VAE
      adversarial/     Chapter 5: the two-player GAN, its losses, minibatch discrimination
      flows/           Chapter 6: flow steps on TFP bijectors, MADE, FlowModel, pixel conventions
      moment_matching/ Chapter 7: the GMMN
      denoising/       Chapter 7: the denoising autoencoder, walkback, its Markov chain
      energy/          Chapter 7: deep energy model with a generator, Langevin-sampled EBM
      translation/     Chapter 8: CycleGAN and UNIT on two unpaired image domains
      evaluation/      exact likelihood, AIS, importance-weighted bounds, scores
      course/          smoke-mode config, results log, exercise release and grading

Dependencies point one way: ``checks`` and ``sampling`` at the bottom; ``data``,
``training``, ``plotting``, ``kernels`` and ``langevin`` use only those; model families use
the shared machinery and never ``evaluation``, ``course`` or each other; ``evaluation``
reaches a model only through the named methods its family provides
(``enumerated_free_energy``, ``annealing_path``, ``log_importance_weights``, ...);
``course`` may use everything. ``tests/test_layers.py`` keeps it so.

The library runs on Keras 3 with the TensorFlow backend; importing it under another
backend fails at once.
"""

import os as _os

__version__ = "0.1.0"

_HOW_TO_FIX = ("Set the environment variable KERAS_BACKEND=tensorflow before Python starts "
               "(or before the first `import keras`), or set \"backend\": \"tensorflow\" in "
               "~/.keras/keras.json.")


def _refuse(backend):
    raise ImportError(f"course_lib needs Keras' TensorFlow backend; Keras is set to use the "
                      f"'{backend}' backend. {_HOW_TO_FIX}")


# Checked before Keras is imported: Keras itself fails to import without its backend's package.
if _os.environ.get("KERAS_BACKEND", "tensorflow") != "tensorflow":
    _refuse(_os.environ["KERAS_BACKEND"])

import keras as _keras  # noqa: E402

if _keras.backend.backend() != "tensorflow":  # e.g. chosen in ~/.keras/keras.json
    _refuse(_keras.backend.backend())
