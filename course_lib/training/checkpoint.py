"""Checkpoints that a failed run never spoils, and resuming from them.

:class:`SafeCheckpoint` saves the model (every optimizer's state, persistent chains and the
random-stream state included) atomically, and only when every weight is finite;
:func:`resume` loads it back with the epoch to start from.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import keras

from course_lib.training.guard import weight_problem


def _progress_path(filepath):
    return Path(str(filepath) + ".json")


class SafeCheckpoint(keras.callbacks.Callback):
    """Saves ``filepath`` (a ``.keras`` file) at the end of every ``every_epochs`` epochs.

    Writes to a temporary file first and renames it over the old one, so the previous
    checkpoint survives a crash during saving; refuses to save a model with non-finite
    weights (the previous good checkpoint stays). A small ``filepath + ".json"`` records
    the number of epochs completed, which :func:`resume` reads.
    """

    def __init__(self, filepath, every_epochs=1):
        super().__init__()
        filepath = Path(filepath)
        if filepath.suffix != ".keras":
            raise ValueError(f"checkpoint path must end in '.keras'; got '{filepath}'.")
        self.filepath, self.every_epochs = filepath, int(every_epochs)
        self.skipped = []

    def on_epoch_end(self, epoch, logs=None):
        if (epoch + 1) % self.every_epochs:
            return
        problem = weight_problem(self.model, math.inf)
        if problem:
            self.skipped.append(epoch + 1)
            print(f"SafeCheckpoint: not saving epoch {epoch + 1} ({problem}); "
                  f"'{self.filepath}' keeps the last good model.")
            return
        self.filepath.parent.mkdir(parents=True, exist_ok=True)
        partial = self.filepath.with_name(self.filepath.stem + ".partial.keras")
        self.model.save(partial)
        os.replace(partial, self.filepath)
        progress = {"epochs_completed": epoch + 1,
                    "logs": {k: float(v) for k, v in (logs or {}).items()}}
        tmp = _progress_path(self.filepath).with_suffix(".partial")
        tmp.write_text(json.dumps(progress, indent=1))
        os.replace(tmp, _progress_path(self.filepath))


def resume(filepath):
    """Loads a :class:`SafeCheckpoint` file. Returns ``(model, epochs_completed)``.

    Pass ``initial_epoch=epochs_completed`` to ``fit`` to continue the same schedule.

    Raises:
        FileNotFoundError: naming the path when there is no checkpoint yet.
    """
    filepath = Path(filepath)
    if not filepath.is_file():
        raise FileNotFoundError(f"no checkpoint at '{filepath.resolve()}'; train first with "
                                f"callbacks=[SafeCheckpoint('{filepath}')].")
    model = keras.saving.load_model(filepath)
    progress = _progress_path(filepath)
    epochs = json.loads(progress.read_text())["epochs_completed"] if progress.is_file() else 0
    return model, epochs


