"""The training machinery every chapter's models share.

- ``fit``: :class:`GuardedFitMixin` (validated, fast array input; Keras' meaning of
  ``fit`` kept; a library-chosen ``steps_per_execution``; one optimizer or several),
  :func:`array_dataset`, :func:`unpaired_dataset` (two unpaired domains),
  :func:`unpack_batch`, :func:`replica_scale`, :func:`scaled_loss`,
  :func:`unscale_gradients`, :func:`sum_over_replicas`.
- ``guard``: :class:`DivergenceGuard` and :class:`TrainingDivergedError`.
- ``checkpoint``: :class:`SafeCheckpoint` and :func:`resume`.
- ``callbacks``: :class:`Evaluator`, a metric recorded against parameter updates.
- ``generators``: the prior, sampling and data range of models with a generator network.
- ``two_player``: :class:`TwoPlayerModel`, a generator and a second network with one
  optimizer each (the GAN of Chapter 5, the deep energy model of Chapter 7), and
  :class:`PlayerOptimizersMixin`, its one-optimizer-per-player ``compile`` alone (Chapter 8's
  translation models, whose players are two networks each).
"""

from course_lib.training.callbacks import Evaluator
from course_lib.training.checkpoint import SafeCheckpoint, resume
from course_lib.training.fit import (
    DEFAULT_STEPS_PER_EXECUTION,
    GuardedFitMixin,
    array_dataset,
    replica_scale,
    scaled_loss,
    sum_over_replicas,
    unpack_batch,
    unpaired_dataset,
    unscale_gradients,
)
from course_lib.training.guard import DivergenceGuard, TrainingDivergedError
from course_lib.training.two_player import PlayerOptimizersMixin, TwoPlayerModel

__all__ = [
    "GuardedFitMixin", "array_dataset", "unpaired_dataset", "unpack_batch", "replica_scale",
    "scaled_loss", "unscale_gradients", "sum_over_replicas",
    "DEFAULT_STEPS_PER_EXECUTION", "DivergenceGuard", "TrainingDivergedError",
    "SafeCheckpoint", "resume", "Evaluator", "TwoPlayerModel", "PlayerOptimizersMixin",
]
