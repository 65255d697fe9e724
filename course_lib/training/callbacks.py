"""Callbacks that record a quantity during training.

:class:`Evaluator` calls a function (log-likelihood, pseudo-likelihood, ...) at chosen
numbers of parameter updates and keeps the curve, for "metric against updates" figures.
"""

from __future__ import annotations

import keras
from keras import ops

from course_lib.checks import is_int


class Evaluator(keras.callbacks.Callback):
    """Records ``fn(model)`` whenever the number of parameter updates passes a milestone.

    Args:
        fn: function of the model returning a float (e.g. exact test log-likelihood).
        at_updates: increasing update counts at which to evaluate; 0 evaluates before
            training starts. Updates are the optimizer's steps (for a GAN, the generator's:
            the model's ``update_optimizer``).
        name: label for printing.

    After training, ``self.updates`` and ``self.values`` hold the curve. With
    ``steps_per_execution > 1`` the update count is known after each executed chunk, so a
    milestone is recorded at the first chunk boundary at or past it.

    The update count is read from the optimizer once per ``fit`` and then counted from the
    batch indices Keras passes, so a batch without a milestone costs no host sync (reading
    the step counter after every batch would stall the device for each one).
    """

    def __init__(self, fn, at_updates, name="metric", verbose=False):
        super().__init__()
        if not callable(fn):
            raise TypeError(f"fn must be a function of the model; got {type(fn).__name__}.")
        at_updates = list(at_updates)
        if not at_updates or not all(is_int(u) and u >= 0 for u in at_updates):
            raise ValueError("at_updates must be a non-empty list of integers >= 0; got "
                             f"{at_updates[:5]!r}{' ...' if len(at_updates) > 5 else ''}.")
        self.fn, self.name, self.verbose = fn, name, verbose
        self.milestones = sorted(int(u) for u in at_updates)
        self.updates, self.values = [], []

    def _record(self, updates):
        value = float(self.fn(self.model))
        self.updates.append(int(updates))
        self.values.append(value)
        if self.verbose:
            print(f"{self.name} after {updates} updates: {value:.4f}")

    def _read_updates(self):
        # The course's models name the optimizer whose steps count as their updates
        # (GuardedFitMixin.update_optimizer: the generator's for a GAN); any other Keras model
        # has its one optimizer.
        optimizer = getattr(self.model, "update_optimizer", self.model.optimizer)
        if optimizer is None:
            raise TypeError(f"Evaluator counts the updates of the model's optimizer; "
                            f"{type(self.model).__name__} has none. Compile it first.")
        return int(ops.convert_to_numpy(optimizer.iterations))

    def _maybe_record(self, updates):
        while self.milestones and updates >= self.milestones[0]:
            self.milestones.pop(0)
            if not self.updates or self.updates[-1] != updates:
                self._record(updates)

    def on_train_begin(self, logs=None):
        self._epoch_start = self._read_updates()
        self._maybe_record(self._epoch_start)

    def on_epoch_begin(self, epoch, logs=None):
        # Exact whatever the epoch's length; one read per epoch, not per batch.
        self._epoch_start = self._read_updates()

    def on_train_batch_end(self, batch, logs=None):
        # Keras passes the index of the last step of the executed chunk; at the end of an
        # epoch the chunk can be shorter than steps_per_execution, so clip to the epoch.
        done = batch + 1
        steps = (self.params or {}).get("steps")
        if steps:
            done = min(done, int(steps))
        if self.milestones and self._epoch_start + done >= self.milestones[0]:
            self._maybe_record(self._epoch_start + done)


