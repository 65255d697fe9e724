"""Checkpoints that a failed or worsening run never spoils, and resuming from them.

:class:`SafeCheckpoint` keeps two files: the latest model (to continue training from) and
the best one by a monitored quantity (to use). Each is one ``.keras`` file holding the
model (every optimizer's state, persistent chains and the random-stream state included) and
its own progress record (epochs completed, the epoch's logs, the best value so far), written
to a temporary name and renamed in one step, so a crash at any moment leaves either the old
file or the new one, never a model without its progress. Nothing is written from a model
with a non-finite weight or metric. :func:`resume` loads either file with the epoch to
start from.
"""

from __future__ import annotations

import json
import math
import os
import zipfile
from pathlib import Path

import keras

from course_lib.checks import DataError, check_positive_int
from course_lib.training.guard import weight_problem

PROGRESS_ENTRY = "course_lib_progress.json"  # stored inside the .keras zip
_MODES = {"min": lambda new, old: new < old, "max": lambda new, old: new > old}


def best_path(filepath):
    """Where :class:`SafeCheckpoint` keeps the best model beside ``filepath``."""
    filepath = Path(filepath)
    return filepath.with_name(filepath.stem + ".best.keras")


def read_progress(filepath):
    """The progress record stored in a :class:`SafeCheckpoint` file.

    Raises:
        FileNotFoundError: naming the path when there is no file.
        DataError: when the file is not a ``.keras`` zip (corrupt or truncated) or holds no
            progress record (a file saved by ``model.save`` rather than by a checkpoint).
    """
    filepath = Path(filepath)
    if not filepath.is_file():
        raise FileNotFoundError(f"no checkpoint at '{filepath.resolve()}'; train first with "
                                f"callbacks=[SafeCheckpoint('{filepath}')].")
    if not zipfile.is_zipfile(filepath):
        raise DataError(f"'{filepath}' is not a .keras file (a zip archive): it is corrupt "
                        f"or truncated ({filepath.stat().st_size} bytes). Use the other "
                        "checkpoint file, or train again.")
    with zipfile.ZipFile(filepath) as archive:
        if PROGRESS_ENTRY not in archive.namelist():
            raise DataError(f"'{filepath}' holds no training progress: it was not written by "
                            "SafeCheckpoint. Load it with keras.saving.load_model instead.")
        return json.loads(archive.read(PROGRESS_ENTRY))


def _save(model, filepath, progress):
    """Saves model + progress to ``filepath`` atomically (temporary file, then rename)."""
    partial = filepath.with_name(filepath.stem + ".partial.keras")
    model.save(partial)
    with zipfile.ZipFile(partial, "a") as archive:
        archive.writestr(PROGRESS_ENTRY, json.dumps(progress, indent=1))
    os.replace(partial, filepath)


class SafeCheckpoint(keras.callbacks.Callback):
    """Saves the latest model to ``filepath`` and the best one beside it, every
    ``every_epochs`` epochs.

    - The latest (``filepath``) is what :func:`resume` continues from.
    - The best (``<stem>.best.keras``, see :func:`best_path`) is replaced only by a model
      whose ``monitor`` value is better; when the latest is worse than the best, a line
      says so and which file holds what. The best value survives a resume: it is read back
      from the best file when training starts again.
    - A model with a NaN/inf weight or logged metric is not saved at all (both files keep
      the last good models); the epoch is listed in ``self.skipped``.

    With the shared ``fit``, the :class:`~course_lib.training.DivergenceGuard` runs before
    this callback, so a model that the guard stops is never written either.

    Args:
        filepath: the latest checkpoint, a path ending in ``.keras``.
        monitor: the logged quantity that decides which model is best. ``"auto"`` (default)
            takes the model's ``checkpoint_monitor`` (its validation version ``val_...`` when
            validation data is given); ``None`` keeps the latest only.
        mode: ``"min"`` or ``"max"``: whether a lower or higher ``monitor`` is better
            (default: the model's ``checkpoint_mode`` for ``"auto"``, else ``"min"``).
        every_epochs: save every this many epochs.
        verbose: print a line when the latest is not the best or an epoch is skipped.
    """

    def __init__(self, filepath, *, monitor="auto", mode=None, every_epochs=1, verbose=True):
        super().__init__()
        filepath = Path(filepath)
        if filepath.suffix != ".keras":
            raise ValueError(f"checkpoint path must end in '.keras'; got '{filepath}'.")
        if filepath.stem.endswith((".best", ".partial")):
            raise ValueError(f"checkpoint path must not end in '.best.keras' or "
                             f"'.partial.keras' (names the checkpoint uses itself); got "
                             f"'{filepath}'.")
        if monitor is not None and not isinstance(monitor, str):
            raise TypeError(f"monitor must be a metric name, 'auto' or None; got {monitor!r}.")
        if mode is not None and mode not in _MODES:
            raise ValueError(f"mode must be 'min' or 'max'; got {mode!r}.")
        self.filepath, self.best_filepath = filepath, best_path(filepath)
        self.monitor, self.mode = monitor, mode
        self.every_epochs = check_positive_int(every_epochs, "every_epochs")
        self.verbose = bool(verbose)
        self.skipped = []
        self.best, self.best_epoch = None, None

    def _say(self, text):
        if self.verbose:
            print(f"SafeCheckpoint: {text}")

    def _resolve_monitor(self, logs):
        """The monitored name and mode, decided at the first saved epoch (the logs show
        whether validation metrics exist)."""
        name, mode = self.monitor, self.mode
        if name == "auto":
            name = getattr(self.model, "checkpoint_monitor", None)
            if name is None:
                raise ValueError(f"{type(self.model).__name__} names no checkpoint_monitor: "
                                 "pass SafeCheckpoint(..., monitor='<a logged metric>', "
                                 "mode='min' or 'max'), or monitor=None to keep only the "
                                 "latest model.")
            mode = mode or getattr(self.model, "checkpoint_mode", "min")
            if f"val_{name}" in logs:
                name = f"val_{name}"
        if name is not None and name not in logs:
            raise ValueError(f"SafeCheckpoint monitors '{name}', which this fit does not log; "
                             f"it logs {sorted(logs)}.")
        return name, mode or "min"

    def on_train_begin(self, logs=None):
        self.best, self.best_epoch = None, None
        if self.monitor is not None and self.best_filepath.is_file():
            progress = read_progress(self.best_filepath)
            self.best, self.best_epoch = progress.get("best"), progress.get("epochs_completed")

    def on_epoch_end(self, epoch, logs=None):
        if (epoch + 1) % self.every_epochs:
            return
        logs = {k: float(v) for k, v in (logs or {}).items()}
        problem = weight_problem(self.model, math.inf) or next(
            (f"metric '{k}' is {v}" for k, v in logs.items() if not math.isfinite(v)), None)
        if problem:
            self.skipped.append(epoch + 1)
            self._say(f"not saving epoch {epoch + 1} ({problem}); '{self.filepath}' and "
                      f"'{self.best_filepath}' keep the last good models.")
            return
        monitor, mode = self._resolve_monitor(logs)   # self.monitor stays as given
        value = None if monitor is None else logs[monitor]
        improved = value is not None and (self.best is None
                                          or _MODES[mode](value, self.best))
        if improved:
            self.best, self.best_epoch = value, epoch + 1
        progress = {"epochs_completed": epoch + 1, "logs": logs, "monitor": monitor,
                    "mode": mode, "best": self.best, "best_epoch": self.best_epoch}
        self.filepath.parent.mkdir(parents=True, exist_ok=True)
        _save(self.model, self.filepath, progress)
        if improved:
            _save(self.model, self.best_filepath, progress)
        elif value is not None:
            self._say(f"epoch {epoch + 1}: {monitor} = {value:.6g} is not better than "
                      f"{self.best:.6g} (epoch {self.best_epoch}); '{self.filepath}' holds "
                      f"epoch {epoch + 1}, '{self.best_filepath}' keeps epoch "
                      f"{self.best_epoch}.")


def resume(filepath, *, best=False):
    """Loads a :class:`SafeCheckpoint` file. Returns ``(model, epochs_completed)``.

    Pass ``initial_epoch=epochs_completed`` to ``fit`` to continue the same schedule: the
    weights, every optimizer's state, the chains, the random stream and the shuffle order
    (which depends only on the model's seed and the epoch) continue exactly.

    Args:
        filepath: the ``filepath`` given to :class:`SafeCheckpoint`.
        best: load the best model (``<stem>.best.keras``) instead of the latest.

    Raises:
        FileNotFoundError: naming the path when there is no checkpoint yet.
        DataError: when the file is corrupt or was not written by :class:`SafeCheckpoint`.
    """
    filepath = best_path(filepath) if best else Path(filepath)
    progress = read_progress(filepath)
    return keras.saving.load_model(filepath), int(progress["epochs_completed"])
