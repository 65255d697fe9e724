"""Tests of course_lib.training: DivergenceGuard, SafeCheckpoint, resume and Evaluator."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from course_lib.boltzmann.rbm import BernoulliRBM
from course_lib.checks import DataError
from course_lib.data.toy import bars_and_stripes
from course_lib.evaluation.exact import exact_log_likelihood
from course_lib.training import (
    DivergenceGuard,
    Evaluator,
    SafeCheckpoint,
    TrainingDivergedError,
    resume,
)
from course_lib.training.checkpoint import best_path, read_progress


def random_binary(n, d, seed=0):
    return (np.random.default_rng(seed).random((n, d)) < 0.5).astype("float32")


def np_of(variable):
    return np.asarray(keras.ops.convert_to_numpy(variable))


class PoisonWeights(keras.callbacks.Callback):
    """Sets W to NaN at the start of batch ``at_batch`` of epoch ``at_epoch`` (0-based)."""

    def __init__(self, at_epoch=0, at_batch=0):
        super().__init__()
        self.at_epoch, self.at_batch, self.epoch = at_epoch, at_batch, None

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_begin(self, batch, logs=None):
        if self.epoch == self.at_epoch and batch == self.at_batch:
            self.model.W.assign(np.full(self.model.W.shape, np.nan, "float32"))


def small_model(sampler="cd", lr=0.1, momentum=0.0, seed=0, **compile_kwargs):
    """One step per call unless told otherwise: these tests look at single batches."""
    compile_kwargs.setdefault("steps_per_execution", 1)
    model = BernoulliRBM(6, 4, sampler=sampler, num_chains=8, seed=seed)
    model.compile(optimizer=keras.optimizers.SGD(lr, momentum=momentum), **compile_kwargs)
    return model


# ----- DivergenceGuard --------------------------------------------------------------------
def test_guard_stops_at_the_first_nan_metric_with_advice():
    model = small_model()
    guard = DivergenceGuard(check_every=10**6)  # only the logged metrics are checked
    with pytest.raises(TrainingDivergedError, match="learning rate") as info:
        model.fit(random_binary(64, 6), batch_size=8, epochs=1, verbose=0,
                  callbacks=[PoisonWeights(at_batch=2), guard])
    assert "at batch 2" in str(info.value) and "nan" in str(info.value).lower()
    assert model.stop_training


def test_guard_is_added_by_fit_and_catches_a_huge_learning_rate():
    model = small_model(lr=1e9)
    with pytest.raises(TrainingDivergedError, match="learning rate"):
        model.fit(random_binary(64, 6), batch_size=8, epochs=3, verbose=0)


def test_guard_catches_weight_norm_explosion():
    model = small_model()
    w_norm = float(np.linalg.norm(np_of(model.W)))
    guard = DivergenceGuard(max_weight_norm=w_norm / 10, check_every=1)
    with pytest.raises(TrainingDivergedError, match="norm") as info:
        model.fit(random_binary(16, 6), batch_size=8, epochs=1, verbose=0, callbacks=[guard])
    assert "W" in str(info.value) and "max_weight_norm" in str(info.value)
    assert int(model.optimizer.iterations) == 1


def test_guard_lets_healthy_training_finish():
    model = small_model()
    history = model.fit(random_binary(64, 6), batch_size=8, epochs=2, verbose=0,
                        callbacks=[DivergenceGuard(check_every=1)])
    assert len(history.history["free_energy"]) == 2


# ----- SafeCheckpoint ---------------------------------------------------------------------
def test_safe_checkpoint_requires_a_keras_path(tmp_path):
    with pytest.raises(ValueError, match=".keras"):
        SafeCheckpoint(tmp_path / "model.h5")


def test_safe_checkpoint_writes_model_and_progress_in_one_file(tmp_path):
    path = tmp_path / "sub" / "ckpt.keras"
    model = small_model()
    model.fit(random_binary(32, 6), batch_size=8, epochs=2, verbose=0,
              callbacks=[SafeCheckpoint(path)])
    assert path.is_file()
    progress = read_progress(path)
    assert progress["epochs_completed"] == 2
    assert set(progress["logs"]) >= {"free_energy", "reconstruction_error"}
    assert progress["monitor"] == "reconstruction_error" and progress["mode"] == "min"
    loaded = keras.saving.load_model(path)
    np.testing.assert_array_equal(np_of(loaded.W), np_of(model.W))
    # The latest and the best; no progress file beside them that a crash could orphan.
    assert sorted(p.name for p in path.parent.iterdir()) == ["ckpt.best.keras", "ckpt.keras"]


@pytest.mark.parametrize("guard", [False, True])
def test_safe_checkpoint_keeps_the_last_good_model(tmp_path, guard):
    path = tmp_path / "ckpt.keras"
    model = small_model()
    checkpoint = SafeCheckpoint(path)
    x = random_binary(32, 6)
    model.fit(x, batch_size=8, epochs=1, verbose=0, callbacks=[checkpoint])
    good_bytes, good_w = path.read_bytes(), np_of(model.W).copy()
    best_bytes = best_path(path).read_bytes()

    callbacks = [PoisonWeights(at_epoch=1, at_batch=1), checkpoint]
    if guard:
        with pytest.raises(TrainingDivergedError):
            model.fit(x, batch_size=8, epochs=3, initial_epoch=1, verbose=0,
                      callbacks=callbacks)
    else:
        model.fit(x, batch_size=8, epochs=2, initial_epoch=1, verbose=0, callbacks=callbacks,
                  guard=False)
        assert checkpoint.skipped == [2]
        assert np.isnan(np_of(model.W)).all()
    assert path.read_bytes() == good_bytes
    assert best_path(path).read_bytes() == best_bytes
    restored, epochs = resume(path)
    assert epochs == 1
    np.testing.assert_array_equal(np_of(restored.W), good_w)


def test_a_ruined_run_never_replaces_the_best_checkpoint(tmp_path, capsys):
    """The probe: a good RBM resumed at a learning rate of 1e3 stays under the weight-norm
    limit. Without the guard, the latest checkpoint holds the ruined model but the best one
    keeps the good model, and a line says so; with the guard, the growth check stops it."""
    x = np.repeat(bars_and_stripes(3), 4, axis=0).astype("float32")
    path = tmp_path / "rbm.keras"
    model = BernoulliRBM(9, 6, seed=0)
    model.compile(optimizer=keras.optimizers.SGD(0.1))
    model.fit(x, batch_size=8, epochs=30, verbose=0, callbacks=[SafeCheckpoint(path)])
    good = best_path(path).read_bytes()
    good_model, good_epoch = resume(path, best=True)
    good_ll = exact_log_likelihood(good_model, x)

    model.optimizer.learning_rate.assign(1e3)
    with pytest.raises(TrainingDivergedError, match="max_growth"):
        model.fit(x, batch_size=8, epochs=32, initial_epoch=30, verbose=0,
                  callbacks=[SafeCheckpoint(path)])
    assert best_path(path).read_bytes() == good     # the guard stopped it before saving

    model.fit(x, batch_size=8, epochs=32, initial_epoch=30, verbose=0, guard=False,
              callbacks=[SafeCheckpoint(path)])
    assert float(np.linalg.norm(np_of(model.W))) < DivergenceGuard().max_weight_norm
    ruined_ll = exact_log_likelihood(model, x)
    assert ruined_ll < good_ll - 10.0                # the probe's situation: far worse
    assert "is not better than" in capsys.readouterr().out
    best, epochs = resume(path, best=True)
    assert epochs == good_epoch and best_path(path).read_bytes() == good
    assert exact_log_likelihood(best, x) == pytest.approx(good_ll, abs=1e-9)
    latest, epochs = resume(path)
    assert epochs == 32 and read_progress(path)["best_epoch"] == good_epoch


def test_the_best_value_survives_a_resume(tmp_path):
    path = tmp_path / "ckpt.keras"
    x = random_binary(32, 6)
    model = small_model()
    model.fit(x, batch_size=8, epochs=2, verbose=0, callbacks=[SafeCheckpoint(path)])
    best = read_progress(best_path(path))["best"]
    resumed, epochs = resume(path)
    # A fresh callback after the resume still compares against the stored best.
    checkpoint = SafeCheckpoint(path)
    checkpoint.set_model(resumed)
    checkpoint.on_train_begin()
    assert checkpoint.best == best and checkpoint.best_epoch == read_progress(
        best_path(path))["epochs_completed"]
    checkpoint.on_epoch_end(2, {"reconstruction_error": best + 1.0, "free_energy": 0.0})
    assert read_progress(path)["epochs_completed"] == 3
    assert read_progress(best_path(path))["best"] == best


@pytest.mark.parametrize("kwargs, match", [
    ({"monitor": 3}, "monitor"), ({"mode": "lowest"}, "mode"), ({"every_epochs": 0}, "every"),
])
def test_safe_checkpoint_refuses_bad_arguments(tmp_path, kwargs, match):
    with pytest.raises((TypeError, ValueError), match=match):
        SafeCheckpoint(tmp_path / "c.keras", **kwargs)


def test_safe_checkpoint_names_what_it_cannot_monitor(tmp_path):
    model = small_model()
    with pytest.raises(ValueError, match="does not log.*reconstruction_error"):
        model.fit(random_binary(16, 6), batch_size=8, verbose=0,
                  callbacks=[SafeCheckpoint(tmp_path / "c.keras", monitor="accuracy")])


def test_resume_refuses_a_corrupt_or_foreign_file(tmp_path):
    corrupt = tmp_path / "corrupt.keras"
    corrupt.write_bytes(b"not a zip at all")
    with pytest.raises(DataError, match="corrupt"):
        resume(corrupt)
    plain = tmp_path / "plain.keras"
    small_model().save(plain)
    with pytest.raises(DataError, match="not written by SafeCheckpoint"):
        resume(plain)


# ----- resume -----------------------------------------------------------------------------
def test_resume_names_the_missing_path(tmp_path):
    path = tmp_path / "nothing_here.keras"
    with pytest.raises(FileNotFoundError, match="nothing_here.keras"):
        resume(path)


def test_resume_restores_the_optimizer_state(tmp_path):
    path = tmp_path / "ckpt.keras"
    model = small_model(sampler="pcd", momentum=0.9)
    model.fit(random_binary(32, 6), batch_size=8, epochs=1, verbose=0,
              callbacks=[SafeCheckpoint(path)])
    restored, epochs = resume(path)
    assert epochs == 1
    assert int(restored.optimizer.iterations) == 4
    saved = {v.path: np_of(v) for v in model.optimizer.variables}
    loaded = {v.path: np_of(v) for v in restored.optimizer.variables}
    assert saved.keys() == loaded.keys()
    assert any("momentum" in k and np.any(v != 0) for k, v in saved.items())
    for key, value in saved.items():
        np.testing.assert_array_equal(loaded[key], value, err_msg=key)


def test_resumed_training_continues_exactly(tmp_path):
    """2 epochs straight == 1 epoch, checkpoint, resume, 1 more epoch (PCD, momentum):
    needs the weights, optimizer slots, persistent chains and the seed state in the file."""
    x = random_binary(48, 6, seed=3)
    straight = small_model(sampler="pcd", momentum=0.5, seed=7)
    straight.fit(x, batch_size=8, epochs=2, shuffle=False, verbose=0)

    path = tmp_path / "ckpt.keras"
    first = small_model(sampler="pcd", momentum=0.5, seed=7)
    first.fit(x, batch_size=8, epochs=1, shuffle=False, verbose=0,
              callbacks=[SafeCheckpoint(path)])
    resumed, epochs = resume(path)
    assert epochs == 1
    resumed.fit(x, batch_size=8, epochs=2, initial_epoch=epochs, shuffle=False, verbose=0)

    assert int(resumed.optimizer.iterations) == int(straight.optimizer.iterations) == 12
    for name in ("W", "visible_bias", "hidden_bias", "persistent_chains"):
        np.testing.assert_array_equal(np_of(getattr(resumed, name)),
                                      np_of(getattr(straight, name)), err_msg=name)


def test_resume_keeps_the_shuffle_order_of_an_uninterrupted_run(tmp_path):
    """4 epochs straight == 2 epochs, checkpoint, resume, 2 more, with shuffling on: epoch
    e's order depends only on (seed, e), not on how many epochs this fit call has run."""
    x = random_binary(40, 6, seed=4)
    straight = small_model(sampler="pcd", momentum=0.5, seed=11)
    straight.fit(x, batch_size=8, epochs=4, verbose=0)
    path = tmp_path / "ckpt.keras"
    first = small_model(sampler="pcd", momentum=0.5, seed=11)
    first.fit(x, batch_size=8, epochs=2, verbose=0, callbacks=[SafeCheckpoint(path)])
    resumed, epochs = resume(path)
    resumed.fit(x, batch_size=8, epochs=4, initial_epoch=epochs, verbose=0)
    for name in ("W", "visible_bias", "hidden_bias", "persistent_chains"):
        np.testing.assert_array_equal(np_of(getattr(resumed, name)),
                                      np_of(getattr(straight, name)), err_msg=name)
    # and the order does change between epochs (else the test above proves little)
    other = small_model(sampler="pcd", momentum=0.5, seed=11)
    other.fit(x, batch_size=8, epochs=2, verbose=0)
    other.fit(x, batch_size=8, epochs=2, verbose=0)      # epochs 0 and 1 again
    assert not np.array_equal(np_of(other.W), np_of(straight.W))


def test_array_dataset_order_is_keyed_by_seed_and_epoch():
    from course_lib.training import array_dataset

    x = np.arange(20, dtype="float32").reshape(20, 1)
    epoch = tf.Variable(0, dtype=tf.int64)
    dataset = array_dataset(x, 6, seed=1, epoch=epoch)
    first = np.concatenate(list(dataset))[:, 0]
    epoch.assign(1)
    second = np.concatenate(list(dataset))[:, 0]
    epoch.assign(0)
    again = np.concatenate(list(dataset))[:, 0]
    assert sorted(first) == sorted(second) == list(range(20))
    assert not np.array_equal(first, second)
    np.testing.assert_array_equal(first, again)
    other_seed = np.concatenate(list(array_dataset(x, 6, seed=2, epoch=0)))[:, 0]
    assert not np.array_equal(first, other_seed)


def test_guard_catches_growth_below_the_norm_limit():
    model = small_model()
    guard = DivergenceGuard(max_weight_norm=1e6, check_every=1)
    guard.set_model(model)
    guard.on_train_begin()
    scale = np.sqrt(24.0)                             # an RMS entry of 1 for a 6x4 matrix
    model.W.assign(np.full((6, 4), 9.0, "float32"))   # 9x: allowed
    guard.on_epoch_end(0)
    model.W.assign(np.full((6, 4), 11.0, "float32"))  # 11x the scale, far below 1e6
    with pytest.raises(TrainingDivergedError, match="max_growth=10") as info:
        guard.on_epoch_end(0)
    assert f"{11 * scale:.4g}" in str(info.value)
    guard.on_train_begin()                            # a new fit starts from here
    guard.on_epoch_end(0)


def test_guard_checks_the_epoch_logs_validation_included():
    model = small_model()
    guard = DivergenceGuard()
    guard.set_model(model)
    guard.on_train_begin()
    with pytest.raises(TrainingDivergedError, match="val_free_energy"):
        guard.on_epoch_end(0, {"free_energy": 1.0, "val_free_energy": float("nan")})


@pytest.mark.parametrize("kwargs, match", [
    ({"max_weight_norm": float("nan")}, "max_weight_norm"),
    ({"max_weight_norm": 0}, "max_weight_norm"),
    ({"max_weight_norm": float("inf")}, "max_weight_norm"),
    ({"max_growth": 1.0}, "max_growth"),
    ({"max_growth": "10"}, "max_growth"),
    ({"check_every": 0}, "check_every"),
    ({"check_every": 2.5}, "check_every"),
    ({"advice": 3}, "advice"),
])
def test_guard_refuses_bad_arguments(kwargs, match):
    with pytest.raises((TypeError, ValueError), match=match):
        DivergenceGuard(**kwargs)


# ----- Evaluator --------------------------------------------------------------------------
@pytest.mark.parametrize("steps_per_execution, expected", [
    (1, [0, 3, 5, 7, 10]),
    (5, [0, 5, 10]),
])
def test_evaluator_records_at_the_requested_updates(steps_per_execution, expected):
    model = small_model(steps_per_execution=steps_per_execution)
    seen = []

    def fn(m):
        seen.append(np_of(m.W).copy())
        return float(int(m.optimizer.iterations)) + 0.5

    evaluator = Evaluator(fn, at_updates=[10, 0, 3, 5, 7, 100], name="iters")
    model.fit(random_binary(96, 6), batch_size=8, epochs=1, verbose=0, callbacks=[evaluator])
    assert int(model.optimizer.iterations) == 12
    assert evaluator.updates == expected
    assert evaluator.values == [u + 0.5 for u in expected]
    # The update-0 record was taken before any training (the initial weights).
    assert not np.array_equal(seen[0], seen[1])
    initial = BernoulliRBM(6, 4, sampler="cd", num_chains=8, seed=0).W
    np.testing.assert_array_equal(seen[0], np_of(initial))


@pytest.mark.parametrize("steps_per_execution", [1, 3, 7])
def test_evaluator_counts_updates_across_epochs_and_resumed_runs(steps_per_execution):
    """The count the evaluator keeps from batch indices equals the optimizer's own step
    counter at every record: over several epochs with a partial last batch, and in a second
    fit that continues from where the first stopped."""
    model = small_model(steps_per_execution=steps_per_execution)
    milestones = [0, 4, 13, 14, 26, 40, 41, 52, 70]
    evaluator = Evaluator(lambda m: float(int(m.optimizer.iterations)), at_updates=milestones)
    x = random_binary(100, 6)                       # 13 batches of 8 per epoch, the last of 4
    model.fit(x, batch_size=8, epochs=2, verbose=0, callbacks=[evaluator])
    model.fit(x, batch_size=8, epochs=4, initial_epoch=2, verbose=0, callbacks=[evaluator])
    assert int(model.optimizer.iterations) == 52
    assert evaluator.values == [float(u) for u in evaluator.updates]
    assert evaluator.updates[0] == 0 and evaluator.updates[-1] == 52
    for milestone in milestones[:-1]:                # each reached milestone has its record
        assert any(u >= milestone for u in evaluator.updates)
    assert evaluator.milestones == [70]


def test_evaluator_does_not_read_the_step_counter_after_every_batch(monkeypatch):
    model = small_model(steps_per_execution=1)
    evaluator = Evaluator(lambda m: 0.0, at_updates=[0, 30])
    reads = []
    real = Evaluator._read_updates
    monkeypatch.setattr(Evaluator, "_read_updates", lambda self: reads.append(1) or real(self))
    model.fit(random_binary(96, 6), batch_size=8, epochs=3, verbose=0, callbacks=[evaluator])
    assert len(reads) == 1 + 3                       # train begin, then once per epoch
    assert evaluator.updates == [0, 30]


@pytest.mark.parametrize("fn, at_updates, match", [
    ("not callable", [1], "fn must be a function"),
    (lambda m: 0.0, [], "non-empty"),
    (lambda m: 0.0, [3, -1], "integers >= 0"),
    (lambda m: 0.0, [2.5], "integers >= 0"),
])
def test_evaluator_refuses_bad_arguments(fn, at_updates, match):
    with pytest.raises((TypeError, ValueError), match=match):
        Evaluator(fn, at_updates=at_updates)


def test_array_dataset_covers_every_row_once_per_epoch():
    from course_lib.training import array_dataset

    x = np.arange(50, dtype="float32").reshape(25, 2)
    batches = list(array_dataset(x, 10, shuffle=True, seed=3))
    assert [b.shape for b in batches] == [(10, 2), (10, 2), (5, 2)]  # the 5 left over too
    rows = np.concatenate(batches)
    assert sorted(rows[:, 0]) == sorted(x[:, 0])
    assert not np.array_equal(rows, x)  # shuffled
    again = np.concatenate(list(array_dataset(x, 10, shuffle=True, seed=3)))
    np.testing.assert_array_equal(rows, again)  # same seed, same first-epoch order
    ordered = np.concatenate(list(array_dataset(x, 10, shuffle=False)))
    np.testing.assert_array_equal(ordered, x)
    assert [b.shape for b in array_dataset(x, 30)] == [(25, 2)]  # as Keras: one short batch
    for bad in (0, -3, 2.0, True):
        with pytest.raises(ValueError, match="batch_size"):
            array_dataset(x, bad)


def test_guard_ignores_large_chain_states_but_not_large_weights():
    from course_lib.boltzmann.rbm import GaussianBernoulliRBM
    from course_lib.training import DivergenceGuard, TrainingDivergedError

    model = GaussianBernoulliRBM(4, 3, sampler="pcd", num_chains=8, seed=0)
    model.persistent_chains.assign(np.full((8, 4), 1e6, "float32"))  # raw-scale data chains
    guard = DivergenceGuard(max_weight_norm=10.0)
    guard.set_model(model)
    guard.on_epoch_end(0)  # no error: chain states are not weights
    model.W.assign(np.full((4, 3), 100.0, "float32"))
    with pytest.raises(TrainingDivergedError, match="norm of weight"):
        guard.on_epoch_end(0)


# ----- labels: array_dataset(y=...) and GuardedFitMixin.fit(x, y) --------------------------
def test_array_dataset_keeps_labels_aligned_with_their_rows():
    from course_lib.training import array_dataset

    x = np.repeat(np.arange(30, dtype="float32")[:, None], 3, axis=1) + [0.0, 0.25, 0.5]
    y = np.arange(30)  # the row index: a pair is aligned when x[:, 0] == y
    dataset = array_dataset(x, 8, y=y, shuffle=True, seed=5)
    for _ in range(2):  # a new order each epoch, aligned in every one
        pairs = list(dataset)
        assert [(tuple(a.shape), tuple(b.shape)) for a, b in pairs] == \
            [((8, 3), (8,))] * 3 + [((6, 3), (6,))]
        xs = np.concatenate([np.asarray(a) for a, _ in pairs])
        ys = np.concatenate([np.asarray(b) for _, b in pairs])
        np.testing.assert_array_equal(xs[:, 0], ys)
        np.testing.assert_array_equal(xs, x[ys])
        assert len(set(ys)) == 30 and not np.array_equal(ys, np.arange(30))  # shuffled
    ordered = list(array_dataset(x, 8, y=y, shuffle=False))
    np.testing.assert_array_equal(np.concatenate([np.asarray(b) for _, b in ordered]),
                                  np.arange(30))


def test_array_dataset_refuses_labels_of_another_length():
    from course_lib.training import array_dataset

    x = np.zeros((10, 2), "float32")
    with pytest.raises(ValueError, match="same number of rows.*10 and 9"):
        array_dataset(x, 5, y=np.arange(9))


class LabelledModel(keras.Model):
    """The smallest model GuardedFitMixin serves with labels: its train step fails unless
    every batch's labels are the row indices written into x[:, 0]."""

    seed = 0

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.w = self.add_weight(shape=(), initializer="zeros", name="w")
        self.label_checks = []
        self.batches = keras.metrics.Sum(name="batches")

    def check_visible(self, x, name="x"):
        return np.asarray(x, "float32")

    def check_labels(self, y, num_rows=None, name="y"):
        self.label_checks.append(num_rows)
        y = np.asarray(y)
        if y.dtype.kind not in "iu":
            raise ValueError(f"{name} must hold integer labels; got dtype {y.dtype}.")
        return y.astype("int32")

    def train_step(self, data):
        x, y = data
        tf.debugging.assert_equal(tf.cast(x[:, 0], "int32"), y, message="labels misaligned")
        self.batches.update_state(1.0)
        return {"batches": self.batches.result()}

    @property
    def metrics(self):
        return [self.batches]


def labelled_model():
    from course_lib.training import GuardedFitMixin

    model = type("Guarded", (GuardedFitMixin, LabelledModel), {})()
    model.compile()
    return model


def test_guarded_fit_passes_validated_labels_along_with_their_rows():
    model = labelled_model()
    x = np.stack([np.arange(40, dtype="float32"), np.ones(40, "float32")], axis=1)
    history = model.fit(x, np.arange(40), batch_size=8, epochs=2, verbose=0)
    assert history.history["batches"] == [5.0, 5.0]
    assert model.label_checks == [40]  # check_labels saw the labels and the row count
    with pytest.raises(ValueError, match="integer labels"):
        model.fit(x, np.arange(40) + 0.5, batch_size=8, verbose=0)


def test_guarded_fit_refuses_labels_for_models_without_them():
    model = BernoulliRBM(6, 4, seed=0)
    model.compile(optimizer=keras.optimizers.SGD(0.1))
    with pytest.raises(ValueError, match="labels"):
        model.fit(random_binary(16, 6), np.zeros(16, "int64"), batch_size=8, verbose=0)
    assert int(model.optimizer.iterations) == 0


def test_conditional_vae_fit_checks_its_labels():
    from course_lib.variational.vae import VAE

    x = random_binary(16, 6)
    conditional = VAE(6, 2, (4,), num_classes=3, seed=0)
    conditional.compile(keras.optimizers.Adam(1e-3))
    history = conditional.fit(x, np.arange(16) % 3, batch_size=8, epochs=1, verbose=0)
    assert np.isfinite(history.history["negative_bound"][0])
    with pytest.raises(ValueError, match=r"labels in \[0, 3\)"):
        conditional.fit(x, np.arange(16), batch_size=8, verbose=0)
    with pytest.raises(ValueError, match="one label per row"):
        conditional.fit(x, np.arange(15) % 3, batch_size=8, verbose=0)
    unconditional = VAE(6, 2, (4,), seed=0)
    unconditional.compile(keras.optimizers.Adam(1e-3))
    with pytest.raises(ValueError, match="unconditional"):
        unconditional.fit(x, np.arange(16) % 3, batch_size=8, verbose=0)
