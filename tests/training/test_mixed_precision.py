"""Mixed precision: what a GPU user turns on first must not silently stop learning.

Under ``mixed_float16`` ``compile`` wraps the optimizer in a ``LossScaleOptimizer`` that
divides every gradient by its loss scale (2^15): a ``train_step`` that does not multiply the
loss by the same scale (``optimizer.scale_loss``) updates 32,768 times too little, with no
error. Each test compares one SGD step against the same step in float32: the ratio of the
update norms must be 1.
"""

import keras
import numpy as np
import pytest
import tensorflow as tf

from course_lib import flows
from course_lib.boltzmann import DBM, DBN, BernoulliRBM, BoltzmannMachine, GaussianBernoulliRBM
from course_lib.denoising import DenoisingAutoencoder
from course_lib.energy import LangevinEBM, energy_network
from course_lib.flows import BinaryMADE, FlowModel
from course_lib.moment_matching import GMMN, gmmn_generator
from course_lib.training import scaled_loss, unscale_gradients
from course_lib.variational import VAE, VQVAE

BOLTZMANN = {
    "BernoulliRBM CD-1": lambda: BernoulliRBM(6, 4, seed=0, weight_init_std=0.5),
    "BernoulliRBM PCD": lambda: BernoulliRBM(6, 4, sampler="pcd", num_chains=8, seed=0,
                                             weight_init_std=0.5),
    "BernoulliRBM FPCD": lambda: BernoulliRBM(6, 4, sampler="fpcd", num_chains=8, seed=0,
                                              weight_init_std=0.5, fast_learning_rate=0.5),
    "GaussianBernoulliRBM": lambda: GaussianBernoulliRBM(6, 4, seed=0, weight_init_std=0.5),
    "BoltzmannMachine": lambda: BoltzmannMachine(6, 2, seed=0),
    "DBN": lambda: DBN([6, 4, 3], seed=0, weight_init_std=0.5),
    "DBM": lambda: DBM([6, 4, 3], num_chains=8, seed=0, weight_init_std=0.5),
}
NETWORKS = {
    "VAE": (lambda: VAE(6, 2, (16,), seed=0), 6),
    "IWAE": (lambda: VAE(6, 2, (16,), objective="iwae", num_samples=4, seed=0), 6),
    "VQVAE": (lambda: VQVAE((8, 8), num_embeddings=4, embedding_dim=2, filters=(4,), seed=0),
              64),
    "FlowModel MAF": (lambda: FlowModel(flows.architectures.maf(6, num_layers=2,
                                                                 hidden_units=(16,)), seed=0), 6),
    "FlowModel RealNVP": (lambda: FlowModel(flows.architectures.real_nvp(
        6, num_couplings=2, hidden_units=(16,)), seed=0), 6),
    "BinaryMADE": (lambda: BinaryMADE(6, (16,), seed=0), 6),
    # Chapter 7; the deep energy model has two optimizers and is checked, like the GAN,
    # in its own file (tests/energy/test_energy_models.py).
    "GMMN": (lambda: GMMN(gmmn_generator(2, (16,), 6), latent_dim=2, data_range=(0.0, 1.0),
                          seed=0), 6),
    "DenoisingAutoencoder": (lambda: DenoisingAutoencoder(6, (16,), walkback=2, seed=0), 6),
    "LangevinEBM": (lambda: LangevinEBM(energy_network(6, (16,), 4), data_range=(0.0, 1.0),
                                        num_steps=5, buffer_size=64, seed=0), 6),
}


@pytest.fixture
def mixed_policy():
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy("float32")


def binary(n, d, seed=0):
    return (np.random.default_rng(seed).random((n, d)) < 0.5).astype("float32")


def one_step(model, x, optimizer, start=None):
    """Weights before and after one train_step (the optimizer built first, so that only the
    step itself changes anything), from the weights ``start`` if given."""
    if start is not None:
        for variable, value in zip(model.trainable_variables, start, strict=True):
            variable.assign(value)
    model.compile(optimizer=optimizer)
    model.optimizer.build(model.trainable_variables)
    before = [v.numpy().astype(np.float64) for v in model.trainable_variables]
    model.train_step(tf.constant(x))
    after = [v.numpy().astype(np.float64) for v in model.trainable_variables]
    return before, after


def update_ratio(reference, other):
    """||update(other)|| / ||update(reference)|| over all variables, and the largest
    difference of the two updates relative to the reference update's norm."""
    ref = np.concatenate([(a - b).ravel() for b, a in zip(*reference, strict=True)])
    got = np.concatenate([(a - b).ravel() for b, a in zip(*other, strict=True)])
    norm = np.linalg.norm(ref)
    assert norm > 0, "the reference step changed nothing; the test would prove nothing"
    return np.linalg.norm(got) / norm, np.abs(got - ref).max() / norm


@pytest.mark.parametrize("name", sorted(BOLTZMANN))
def test_the_boltzmann_family_stays_float32_under_mixed_precision(name, mixed_policy):
    """The global policy is mixed_float16, yet the model keeps float32 variables and compute
    (it says so in its error for an explicit float16 dtype), so compile adds no loss scaling
    and the step is the float32 step exactly."""
    x = binary(8, 6)
    model = BOLTZMANN[name]()
    assert model.dtype_policy.name == "float32"
    assert all(v.dtype == "float32" for v in model.variables if "float" in v.dtype)
    mixed = one_step(model, x, keras.optimizers.SGD(0.1))
    assert not isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer)
    keras.mixed_precision.set_global_policy("float32")
    reference = one_step(BOLTZMANN[name](), x, keras.optimizers.SGD(0.1))
    for (b, a), (rb, ra) in zip(zip(*mixed, strict=True), zip(*reference, strict=True),
                                strict=True):
        np.testing.assert_allclose(a - b, ra - rb, atol=1e-6)


@pytest.mark.parametrize("name", sorted(BOLTZMANN))
def test_an_explicit_loss_scale_optimizer_gives_the_unscaled_step(name):
    """A LossScaleOptimizer passed by hand (its scale 2^15) divides the gradients by the
    scale: the train_step must have multiplied the loss by it. FPCD's fast weights, updated
    outside the optimizer, must see the unscaled gradients too."""
    x = binary(8, 6)
    scaled_model = BOLTZMANN[name]()
    scaled = one_step(scaled_model, x,
                      keras.optimizers.LossScaleOptimizer(keras.optimizers.SGD(0.1)))
    plain_model = BOLTZMANN[name]()
    plain = one_step(plain_model, x, keras.optimizers.SGD(0.1))
    ratio, largest = update_ratio(plain, scaled)
    assert abs(ratio - 1.0) < 1e-4 and largest < 1e-4, (ratio, largest)
    if name.endswith("FPCD"):
        np.testing.assert_allclose(scaled_model.fast_W.numpy(), plain_model.fast_W.numpy(),
                                   atol=1e-6)
        assert np.abs(plain_model.fast_W.numpy()).max() > 1e-3


@pytest.mark.parametrize("name", sorted(NETWORKS))
def test_networks_learn_at_the_float32_rate_under_mixed_precision(name, mixed_policy):
    """With mixed_float16 the networks compute in float16 and compile adds a loss-scale
    optimizer; the latent math, losses and metrics stay float32, and one SGD step moves the
    weights as far as the float32 step (ratio 1 within float16 rounding)."""
    make, dim = NETWORKS[name]
    x = binary(16, dim)
    keras.mixed_precision.set_global_policy("float32")
    reference_model = make()
    start = [v.numpy() for v in reference_model.trainable_variables]
    reference = one_step(reference_model, x, keras.optimizers.SGD(0.05))
    keras.mixed_precision.set_global_policy("mixed_float16")
    model = make()       # the same seed: the same noise in the step
    assert model.compute_dtype == "float16"
    mixed = one_step(model, x, keras.optimizers.SGD(0.05), start=start)
    assert isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer)
    # Dynamic loss scaling skips a step whose scaled float16 gradients overflow and halves
    # the scale; a skipped step changes no weight (plain SGD has no state), so the first
    # step taken is the one to compare. (The VQ-VAE's first steps overflow at 2^15.)
    skipped = 0
    while all(np.array_equal(a, b) for b, a in zip(*mixed, strict=True)) and skipped < 20:
        skipped += 1
        model.train_step(tf.constant(x))
        mixed = (mixed[0], [v.numpy().astype(np.float64) for v in model.trainable_variables])
    assert float(model.optimizer.dynamic_scale) == 2.0**15 / 2**skipped
    logs = model.test_step(tf.constant(x))
    assert all(v.dtype == tf.float32 for v in logs.values()), logs
    ratio, largest = update_ratio(reference, mixed)
    assert abs(ratio - 1.0) < 0.05 and largest < 0.05, (ratio, largest)


def test_an_explicit_float16_dtype_is_refused_by_the_boltzmann_family():
    for make in (lambda d: BernoulliRBM(6, 4, dtype=d), lambda d: DBM([6, 4, 3], dtype=d),
                 lambda d: DBN([6, 4, 3], dtype=d), lambda d: BoltzmannMachine(6, 2, dtype=d)):
        with pytest.raises(ValueError, match="float32 only.*mixed_float16"):
            make("mixed_float16")
        with pytest.raises(ValueError, match="float32 only"):
            make("float16")
        assert make("float32").dtype_policy.name == "float32"


def test_scaled_loss_and_unscale_gradients_round_trip():
    optimizer = keras.optimizers.LossScaleOptimizer(keras.optimizers.SGD(0.1))
    loss = tf.constant(3.0)
    np.testing.assert_allclose(float(scaled_loss(optimizer, loss)), 3.0 * 2.0**15)
    grads = [tf.constant([2.0**15, 2.0**16])]
    np.testing.assert_allclose(unscale_gradients(optimizer, grads)[0].numpy(), [1.0, 2.0])
    plain = keras.optimizers.SGD(0.1)
    assert float(scaled_loss(plain, loss)) == 3.0
    assert unscale_gradients(plain, grads)[0].numpy().tolist() == [2.0**15, 2.0**16]
