"""The divergence guard: training that produces NaN/inf or exploding weights stops clearly.

:class:`DivergenceGuard` checks the logged metrics after every executed chunk of batches and
the weights of every player (all of ``model.weights``, whatever the number of optimizers);
on a problem it stops training and raises :class:`TrainingDivergedError` with advice.

The guard reads the metrics once per executed chunk of ``steps_per_execution`` batches
(32 by default, see ``course_lib.training.fit``), so its host synchronisation costs little.
"""

from __future__ import annotations

import math

import keras
import numpy as np


class TrainingDivergedError(RuntimeError):
    """Training produced NaN/inf or weights whose norm exploded."""


def weight_problem(model, max_weight_norm):
    """Returns a description of the first bad weight, or None if all are fine.

    Every variable is checked for NaN/inf; only trainable matrices for their norm (chain
    states of real-valued data may legitimately have a large norm).
    """
    trainable = {id(v) for v in model.trainable_variables}
    for variable in model.weights:
        value = variable.numpy()
        if not np.all(np.isfinite(value)):
            return f"weight '{variable.path}' contains NaN or inf"
        if id(variable) in trainable and value.dtype.kind == "f" and value.ndim == 2:
            norm = float(np.linalg.norm(value))
            if norm > max_weight_norm:
                return (f"the norm of weight '{variable.path}' reached {norm:.4g}, above "
                        f"max_weight_norm={max_weight_norm:g}")
    return None


class DivergenceGuard(keras.callbacks.Callback):
    """Stops training clearly when it diverges.

    Checks the logged metrics after every executed chunk of batches and the weights every
    ``check_every`` chunks; on NaN/inf or a matrix weight norm above ``max_weight_norm`` it
    sets ``model.stop_training`` and raises :class:`TrainingDivergedError`. Added by the
    shared ``fit`` as the first callback, so no later callback sees weights it has not
    passed.

    Args:
        max_weight_norm: Frobenius-norm limit for any 2-D weight.
        check_every: check the weights every this many ``on_train_batch_end`` calls.
        advice: what to tell the user to change; a default list suits RBMs.
    """

    DEFAULT_ADVICE = (
        "lower the learning rate (try 10x smaller); add weight decay to the optimizer; "
        "for Gaussian visible units standardize the data to zero mean and unit variance, "
        "or keep sigma fixed (learn_sigma=False); resume from the last good checkpoint")

    def __init__(self, max_weight_norm=1e4, check_every=10, advice=None):
        super().__init__()
        self.max_weight_norm = float(max_weight_norm)
        self.check_every = int(check_every)
        self.advice = advice or self.DEFAULT_ADVICE
        self._calls = 0

    def _fail(self, what, where):
        self.model.stop_training = True
        raise TrainingDivergedError(f"Training diverged {where}: {what}. To fix it: "
                                    f"{self.advice}.")

    def on_train_batch_end(self, batch, logs=None):
        self._calls += 1
        for name, value in (logs or {}).items():
            if isinstance(value, (int, float, np.floating)) and not math.isfinite(value):
                self._fail(f"metric '{name}' is {value}", f"at batch {batch}")
        if self._calls % self.check_every == 0:
            problem = weight_problem(self.model, self.max_weight_norm)
            if problem:
                self._fail(problem, f"at batch {batch}")

    def on_epoch_end(self, epoch, logs=None):
        problem = weight_problem(self.model, self.max_weight_norm)
        if problem:
            self._fail(problem, f"at the end of epoch {epoch + 1}")


