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

from course_lib.checks import check_finite_float, check_positive_int


class TrainingDivergedError(RuntimeError):
    """Training produced NaN/inf or weights whose norm exploded."""


def _matrices(model):
    """The trainable 2-D float weights: the ones whose norm the guard watches."""
    for variable in model.trainable_variables:
        if len(variable.shape) == 2 and "float" in str(variable.dtype):
            yield variable


def weight_problem(model, max_weight_norm, reference_norms=None, max_growth=None):
    """Returns a description of the first bad weight, or None if all are fine.

    Every variable is checked for NaN/inf; trainable matrices also for their norm: above
    ``max_weight_norm``, or (with ``reference_norms``, ``{path: norm}``) above ``max_growth``
    times their reference norm, where a reference below an RMS entry of 1 counts as 1 (so
    that training from a small initialization may grow freely up to that scale). Chain
    states of real-valued data may legitimately have a large norm and are not limited.
    """
    for variable in model.weights:
        value = np.asarray(variable.numpy())
        if not np.all(np.isfinite(value)):
            return f"weight '{variable.path}' contains NaN or inf"
    for variable in _matrices(model):
        norm = float(np.linalg.norm(variable.numpy()))
        if norm > max_weight_norm:
            return (f"the norm of weight '{variable.path}' reached {norm:.4g}, above "
                    f"max_weight_norm={max_weight_norm:g}")
        if reference_norms and variable.path in reference_norms:
            start = max(reference_norms[variable.path], math.sqrt(np.prod(variable.shape)))
            if norm > max_growth * start:
                return (f"the norm of weight '{variable.path}' grew to {norm:.4g}, more than "
                        f"max_growth={max_growth:g} times its {start:.4g} at the start of "
                        f"this fit (or of an RMS entry of 1, whichever is larger)")
    return None


class DivergenceGuard(keras.callbacks.Callback):
    """Stops training clearly when it diverges.

    What diverges differs between families, so the guard watches three signs, each of
    which every course model shows when it blows up:

    - NaN/inf in a logged metric (after every executed chunk of batches, and in the
      epoch's logs, validation metrics included) or in any weight;
    - a matrix weight whose Frobenius norm passes ``max_weight_norm``;
    - a matrix weight that grows more than ``max_growth`` times during one ``fit`` call,
      measured from its norm when the call starts (or from an RMS entry of 1, if that is
      larger). This is what a too-large learning rate does to an energy model (an RBM
      resumed at a learning rate of 1e3 jumps from a norm of 25 to 8,000 in one epoch and
      its log-likelihood falls by 2,000 nats) long before any fixed limit is reached.

    Weights are checked every ``check_every`` chunks and at every epoch end. On a problem
    it sets ``model.stop_training`` and raises :class:`TrainingDivergedError` with advice.
    The shared ``fit`` adds it as the first callback, so no checkpoint or user callback
    sees weights it has not passed.

    Args:
        max_weight_norm: Frobenius-norm limit for any 2-D weight.
        max_growth: growth limit for any 2-D weight's norm within one ``fit`` call.
        check_every: check the weights every this many ``on_train_batch_end`` calls.
        advice: what to tell the user to change; a default list suits RBMs.
    """

    DEFAULT_ADVICE = (
        "lower the learning rate (try 10x smaller); add weight decay to the optimizer; "
        "for Gaussian visible units standardize the data to zero mean and unit variance, "
        "or keep sigma fixed (learn_sigma=False); resume from the last good checkpoint")

    def __init__(self, max_weight_norm=1e4, max_growth=10.0, check_every=10, advice=None):
        super().__init__()
        self.max_weight_norm = check_finite_float(max_weight_norm, "max_weight_norm", above=0)
        self.max_growth = check_finite_float(max_growth, "max_growth", above=1)
        self.check_every = check_positive_int(check_every, "check_every")
        if advice is not None and not isinstance(advice, str):
            raise TypeError(f"advice must be a string; got {type(advice).__name__}.")
        self.advice = advice or self.DEFAULT_ADVICE
        self._calls = 0
        self._reference = {}

    def _fail(self, what, where):
        self.model.stop_training = True
        raise TrainingDivergedError(f"Training diverged {where}: {what}. To fix it: "
                                    f"{self.advice}.")

    def _check_logs(self, logs, where):
        for name, value in (logs or {}).items():
            if isinstance(value, (int, float, np.floating)) and not math.isfinite(value):
                self._fail(f"metric '{name}' is {value}", where)

    def _check_weights(self, where):
        problem = weight_problem(self.model, self.max_weight_norm, self._reference,
                                 self.max_growth)
        if problem:
            self._fail(problem, where)

    def on_train_begin(self, logs=None):
        self._calls = 0
        self._reference = {v.path: float(np.linalg.norm(v.numpy()))
                           for v in _matrices(self.model)}

    def on_train_batch_end(self, batch, logs=None):
        self._calls += 1
        self._check_logs(logs, f"at batch {batch}")
        if self._calls % self.check_every == 0:
            self._check_weights(f"at batch {batch}")

    def on_epoch_end(self, epoch, logs=None):
        self._check_logs(logs, f"at the end of epoch {epoch + 1}")
        self._check_weights(f"at the end of epoch {epoch + 1}")
