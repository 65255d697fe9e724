"""Generative moment-matching networks (Li, Swersky & Zemel 2015).

A generator G maps noise z ~ p(z) (uniform on [-1, 1]^h, as in the paper) to samples, and is
trained to make the maximum mean discrepancy between a batch of its samples and a batch of
data small, Eq. (7.6) of ``07_gmmn_gsn_ebm.ipynb``:

    (7.6) L(G) = sqrt(MMD^2_b({G(z_i)}, {x_j}))       with the kernel (7.1)

MMD^2 is zero only when every moment of the two distributions that the kernel sees agrees,
so no discriminator is needed: the kernel is a fixed, infinitely wide one. The square root
(as in the authors' code) scales the gradient by 1 / (2 MMD), which keeps its size from
vanishing as the fit improves. GMMN+AE trains the same loss in the code space of an
autoencoder and decodes the samples; this model does not care which space its data live in.

Symbols -> code: G -> ``self.generator``, h -> ``latent_dim``, p(z) -> ``prior``, kernel
bandwidths s -> ``bandwidths`` (squared length scales; ``course_lib.kernels``). Deviation,
stated: the paper's MNIST GMMN is trained on batches of 1,000 with a fresh batch of 1,000
samples each; here the samples per step equal the data batch (``fit``'s ``batch_size``).
"""

from __future__ import annotations

import keras
import tensorflow as tf
from keras import ops

from course_lib import kernels, sampling
from course_lib.checks import check_bool, check_images, check_positive_int, check_seed
from course_lib.training import GuardedFitMixin, scaled_loss, unpack_batch
from course_lib.training.generators import (
    LatentGeneratorMixin,
    check_data_range,
    check_generator,
    check_in_data_range,
    check_prior,
)

LOSS_DTYPE = "float32"   # the MMD is computed in float32 whatever the generator computes in


@keras.saving.register_keras_serializable(package="course_lib")
class GMMN(LatentGeneratorMixin, GuardedFitMixin, keras.Model):
    """A generator trained to minimise the MMD to the data, Eq. (7.6).

    Args:
        generator: a Keras model from (n, ``latent_dim``) noise to (n, d) samples.
        latent_dim: h, the width of z.
        bandwidths: the kernel's bandwidths s of Eq. (7.1) (default the paper's 2, 5, 10,
            20, 40, 80 for MNIST pixels in [0, 1]; code spaces need their own).
        prior: ``"uniform"`` on [-1, 1] (the paper's, default) or ``"normal"``.
        square_root: minimise sqrt(MMD^2) (default, the paper's) or MMD^2 itself.
        data_range: optional (low, high) every data value must lie in (the generator's
            output range, for example (0, 1) for a sigmoid output).
        seed: int seed of the noise draws.

    Metrics: ``mmd2``, the biased MMD^2 (7.2) of each training batch against the
    generator's samples (the same on validation data, without an update); checkpoints keep
    the lowest. Example:

        >>> gmmn = GMMN(gmmn_generator(10, (64, 256, 256, 1024), 784), latent_dim=10,
        ...             data_range=(0.0, 1.0), seed=0)
        >>> gmmn.compile(optimizer=keras.optimizers.Adam(1e-3))
        >>> gmmn.fit(x_train, batch_size=1000, epochs=10)
    """

    divergence_advice = ("lower the learning rate; check that the bandwidths suit the data's "
                         "squared distances (see course_lib.kernels)")
    checkpoint_monitor = "mmd2"

    def __init__(self, generator, *, latent_dim, bandwidths=kernels.GMMN_BANDWIDTHS,
                 prior="uniform", square_root=True, data_range=None, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.latent_dim = check_positive_int(latent_dim, "latent_dim")
        self.bandwidths = kernels.check_bandwidths(bandwidths)
        self.prior = check_prior(prior)
        self.square_root = check_bool(square_root, "square_root")
        self.data_range = check_data_range(data_range)
        self.seed = check_seed(seed, allow_none=True)
        self.data_dim = check_generator(generator, self.latent_dim)
        self.generator = generator
        self.seed_generator = sampling.tracked_seed_generator(self, seed)
        self.mmd2_tracker = keras.metrics.Mean(name="mmd2")
        self.build((None, self.latent_dim))

    def build(self, input_shape):
        """Nothing to create: the generator was built by the constructor."""

    def check_visible(self, x, name="x"):
        """Validates data (n, d): finite, the generator's width, inside ``data_range``."""
        return check_in_data_range(check_images(x, expected_dim=self.data_dim, name=name),
                                   self.data_range, name)

    def get_config(self):
        return {**super().get_config(),
                "generator": keras.saving.serialize_keras_object(self.generator),
                "latent_dim": self.latent_dim, "bandwidths": list(self.bandwidths),
                "prior": self.prior, "square_root": self.square_root,
                "data_range": None if self.data_range is None else list(self.data_range),
                "seed": self.seed}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["generator"] = keras.saving.deserialize_keras_object(config["generator"])
        return cls(**config)

    # ------------------------------------------------------------------------ training
    def mmd2(self, samples, x):
        """Eq. (7.2): the biased MMD^2 between generated ``samples`` and data ``x``, in
        float32."""
        return kernels.mmd2(ops.cast(samples, LOSS_DTYPE), ops.cast(x, LOSS_DTYPE),
                            self.bandwidths)

    def loss_of(self, mmd2):
        """Eq. (7.6): sqrt(MMD^2) (MMD^2 itself with ``square_root=False``). The biased
        estimate can round to a hair below 0; it is floored at 1e-12 before the root."""
        return ops.sqrt(ops.maximum(mmd2, 1e-12)) if self.square_root else mmd2

    def train_step(self, data):
        x, _ = unpack_batch(data, type(self).__name__)
        z = self.sample_latent(ops.shape(x)[0])
        variables = self.generator.trainable_variables
        with tf.GradientTape() as tape:
            mmd2 = self.mmd2(self.generator(z, training=True), x)
            scaled = scaled_loss(self.optimizer, self.loss_of(mmd2))
        self.optimizer.apply(tape.gradient(scaled, variables), variables)
        self.mmd2_tracker.update_state(mmd2)
        return {"mmd2": self.mmd2_tracker.result()}

    def test_step(self, data):
        """MMD^2 between a held-out batch and as many fresh samples (no update)."""
        x, _ = unpack_batch(data, type(self).__name__)
        samples = self.generator(self.sample_latent(ops.shape(x)[0]), training=False)
        self.mmd2_tracker.update_state(self.mmd2(samples, x))
        return {"mmd2": self.mmd2_tracker.result()}

    @property
    def metrics(self):
        return [self.mmd2_tracker]


def gmmn_generator(latent_dim, hidden_units, output_dim, *, output_activation="sigmoid",
                   name="generator"):
    """The paper's MLP generator: Dense + ReLU per hidden layer (64-256-256-1024 for MNIST
    pixels), then a Dense output with ``output_activation`` (sigmoid for data in [0, 1])."""
    latent_dim = check_positive_int(latent_dim, "latent_dim")
    output_dim = check_positive_int(output_dim, "output_dim")
    layers = [keras.Input((latent_dim,))]
    for i, units in enumerate(hidden_units):
        layers.append(keras.layers.Dense(check_positive_int(units, "hidden units"),
                                         activation="relu", name=f"{name}_dense{i}"))
    layers.append(keras.layers.Dense(output_dim, activation=output_activation,
                                     name=f"{name}_out"))
    return keras.Sequential(layers, name=name)
