"""Every model the course trains with fit gets the same protection: the divergence guard runs
first, SafeCheckpoint finds the model's own monitored metric (also on validation data), and
a tf.data input is checked like an array. One tiny model per family. The two-player models
and the Langevin EBM name no checkpoint monitor; their XLA tests live with them
(tests/adversarial/test_gan.py, tests/energy/test_energy_models.py)."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from course_lib.boltzmann import DBM, DBN, BernoulliRBM, BoltzmannMachine, GaussianBernoulliRBM
from course_lib.denoising import DenoisingAutoencoder
from course_lib.flows import BinaryMADE, FlowModel, architectures
from course_lib.moment_matching import GMMN, gmmn_generator
from course_lib.training import DivergenceGuard, GuardedFitMixin, SafeCheckpoint
from course_lib.training.checkpoint import best_path, read_progress
from course_lib.variational import VAE, VQVAE

FAMILIES = {
    "BernoulliRBM": (lambda: BernoulliRBM(6, 4, seed=0), 6),
    "GaussianBernoulliRBM": (lambda: GaussianBernoulliRBM(6, 4, seed=0), 6),
    "BoltzmannMachine": (lambda: BoltzmannMachine(6, 2, seed=0), 6),
    "DBN": (lambda: DBN([6, 4, 3], seed=0), 6),
    "DBM": (lambda: DBM([6, 4, 3], num_chains=8, seed=0), 6),
    "VAE": (lambda: VAE(6, 2, (4,), seed=0), 6),
    "VQVAE": (lambda: VQVAE((8, 8), num_embeddings=4, embedding_dim=2, filters=(4,), seed=0),
              64),
    "FlowModel": (lambda: FlowModel(architectures.real_nvp(6, num_couplings=2,
                                                            hidden_units=(4,)), seed=0), 6),
    "BinaryMADE": (lambda: BinaryMADE(6, (8,), seed=0), 6),
    "GMMN": (lambda: GMMN(gmmn_generator(2, (8,), 6, output_activation="sigmoid"),
                          latent_dim=2, data_range=(0.0, 1.0), seed=0), 6),
    "DenoisingAutoencoder": (lambda: DenoisingAutoencoder(6, (4,), walkback=2, seed=0), 6),
}


def binary(n, d, seed=0):
    return (np.random.default_rng(seed).random((n, d)) < 0.5).astype("float32")


@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_every_family_is_guarded_and_checkpointed_by_its_own_metric(name, tmp_path,
                                                                    monkeypatch):
    make, dim = FAMILIES[name]
    model = make()
    assert isinstance(model, GuardedFitMixin)
    assert model.checkpoint_monitor in [m.name for m in model.metrics]
    model.compile(optimizer=keras.optimizers.SGD(0.01))

    seen = []
    original = DivergenceGuard.on_train_begin

    def spy(self, logs=None):
        seen.append(self)
        return original(self, logs)

    monkeypatch.setattr(DivergenceGuard, "on_train_begin", spy)
    path = tmp_path / f"{name}.keras"
    x = binary(16, dim)
    history = model.fit(x, batch_size=8, epochs=1, verbose=0,
                        validation_data=binary(8, dim, seed=1),
                        callbacks=[SafeCheckpoint(path)])
    assert len(seen) == 1                                     # the guard ran
    progress = read_progress(best_path(path))
    assert progress["monitor"] == f"val_{model.checkpoint_monitor}"
    assert np.isfinite(history.history[progress["monitor"]][0])

    with pytest.raises(ValueError, match="a batch of x must"):   # tf.data: the same checks
        model.fit(tf.data.Dataset.from_tensor_slices(np.full((8, dim), np.nan, "float32"))
                  .batch(4), verbose=0)


@pytest.mark.parametrize("name", sorted(FAMILIES) + ["BernoulliRBM FPCD", "BernoulliRBM PCD"])
def test_every_family_trains_under_xla(name):
    """What compile()'s jit_compile="auto" does on a GPU: XLA for every train and test step.
    Keras falls back to a plain tf.function when XLA cannot compile a step (the VQ-VAE's old
    bincount), so the flag is checked after fit; every weight must move, every metric stay
    finite."""
    if name.startswith("BernoulliRBM "):
        sampler = name.split()[1].lower()
        make, dim = (lambda: BernoulliRBM(6, 4, sampler=sampler, num_chains=8, seed=0)), 6
    else:
        make, dim = FAMILIES[name]
    model = make()
    model.compile(optimizer=keras.optimizers.SGD(0.05), jit_compile=True)
    before = [v.numpy().copy() for v in model.trainable_variables]
    x = binary(32, dim)
    history = model.fit(x, batch_size=8, epochs=2, verbose=0, validation_data=(x[:8],))
    assert model.jit_compile is True
    for key, values in history.history.items():
        assert np.all(np.isfinite(values)), (key, values)
    moved = [not np.allclose(b, v.numpy()) for b, v in zip(before, model.trainable_variables,
                                                            strict=True)]
    assert all(moved), [v.name for v, m in zip(model.trainable_variables, moved,
                                               strict=True) if not m]
